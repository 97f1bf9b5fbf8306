#!/usr/bin/env bash
# The whole Pactum test suite, exactly as CI runs it (.ci/run calls this script).
#
#  1. installs what a fresh machine lacks (scripts/setup.sh);
#  2. checks formatting and runs clippy with warnings as errors (the contracts also for
#     wasm32, where their host imports and allocator live);
#  3. runs every test in the workspace;
#  4. runs each coverage-guided fuzz target of the decoders for 10 s (scripts/fuzz.sh);
#  5. fuzzes the REST API of a running devnet from its OpenAPI document
#     (scripts/api-fuzz.sh, schemathesis, three minutes);
#  6. fuzzes the admin API of a devnet's console the same way, logged in
#     (scripts/admin-fuzz.sh, two minutes);
#  7. runs the browser tests of the admin console in headless Chromium against a devnet
#     (tests/browser/console_test.py, Playwright driving Debian's chromium).
#
# Everything builds in the `release` profile only, so RocksDB's C++ is compiled once and
# shared by clippy, the tests, the benchmarks and the devnet. The target directory lives
# outside the clone ($HOME/.cache/pactum/target unless CARGO_TARGET_DIR says otherwise),
# so a second run, or CI after a developer's run on the same machine, reuses it.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pactum/target}"
mkdir -p "$CARGO_TARGET_DIR"
echo "test: target directory $CARGO_TARGET_DIR"

start=$SECONDS
echo "test: cargo fmt --check"
cargo fmt --all -- --check
echo "test: cargo build (release, all targets)"
cargo build --release --workspace --all-targets --locked
echo "test: cargo clippy -D warnings"
cargo clippy --release --workspace --all-targets --locked -- -D warnings
echo "test: cargo clippy -D warnings, contracts for wasm32-unknown-unknown"
CARGO_TARGET_DIR="$CARGO_TARGET_DIR/wasm-clippy" cargo clippy --release --locked \
  --target wasm32-unknown-unknown -p pactum-sdk -p pactum-contract-token \
  -p pactum-contract-supply-chain -p pactum-contract-healthcare -p pactum-contract-escrow \
  -- -D warnings
echo "test: cargo test"
cargo test --release --workspace --locked
echo "test: coverage-guided fuzzing of the decoders (libFuzzer)"
bash scripts/fuzz.sh 10
echo "test: REST API fuzzing from the OpenAPI document (schemathesis)"
API_FUZZ_SECONDS=180 bash scripts/api-fuzz.sh
echo "test: admin API fuzzing from its OpenAPI document (schemathesis, logged in)"
ADMIN_FUZZ_SECONDS=120 bash scripts/admin-fuzz.sh
echo "test: browser tests of the console (Playwright, Debian's chromium)"
"$HOME/.cache/pactum/venv/bin/python" tests/browser/console_test.py --pactum "$CARGO_TARGET_DIR/release/pactum"
echo "test: done in $((SECONDS - start)) s"
