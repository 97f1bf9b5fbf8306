#!/usr/bin/env bash
# Starts a local 4-validator Pactum consortium with the sample contracts:
# installs what a fresh machine lacks, builds `pactum` (release), then runs
# `pactum devnet up` with any arguments given to this script.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pactum/target}"
cargo build --release --locked -p pactum
exec "$CARGO_TARGET_DIR/release/pactum" devnet up "$@"
