#!/usr/bin/env bash
# Fuzzes the REST API from its OpenAPI document (schemathesis, property-based) against a
# running 4-validator devnet: every operation with generated valid and invalid inputs,
# checking that no answer is a server error and that every answer (status, content type,
# body) matches the document. Bounded: a fixed number of examples per operation.
#
#   scripts/api-fuzz.sh [examples-per-operation]      (default 40)
#
# API_FUZZ_SECONDS bounds the whole run (default 300; the test command uses 180). Any
# server error or answer that does not match the document fails it, with the request
# that reproduces it; the seed is fixed, so a run replays.
#
# Needs a release build of `pactum` and scripts/setup.sh's schemathesis. Starts and
# stops its own devnet on ports 18601.. and 18701...
set -euo pipefail
cd "$(dirname "$0")/.."
examples="${1:-40}"
target="${CARGO_TARGET_DIR:-$HOME/.cache/pactum/target}"
pactum="$target/release/pactum"
schemathesis="$HOME/.cache/pactum/venv/bin/schemathesis"
directory="$(mktemp -d /tmp/pactum-api-fuzz.XXXXXX)"
cleanup() {
  "$pactum" devnet down --dir "$directory" >/dev/null 2>&1 || true
  rm -rf "$directory"
}
trap cleanup EXIT

"$pactum" devnet up --dir "$directory" --p2p-base-port 18601 --api-base-port 18701 --console-base-port 0 >/dev/null
echo "api-fuzz: devnet up in $directory; fuzzing http://127.0.0.1:18701 ($examples examples per operation)"
# The event stream never ends by design; it has its own tests.
"$schemathesis" run docs/api/openapi.json \
  --url http://127.0.0.1:18701 \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --exclude-path /v1/events \
  --max-examples "$examples" \
  --seed 20261129 \
  --max-time "${API_FUZZ_SECONDS:-300}" \
  --no-color
