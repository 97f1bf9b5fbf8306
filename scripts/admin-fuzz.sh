#!/usr/bin/env bash
# Fuzzes the admin API from its OpenAPI document (schemathesis, property-based) against
# the first member's console of a 4-validator devnet, logged in: every operation with
# generated valid and invalid inputs, over HTTPS verified against the member's CA, with
# the session cookie and CSRF token. Any server error, or any answer whose status,
# content type or body the document does not describe, fails it, with the request that
# reproduces it; the seed is fixed, so a run replays.
#
#   scripts/admin-fuzz.sh [examples-per-operation]      (default 20)
#
# ADMIN_FUZZ_SECONDS bounds the whole run (default 240; the test command uses 120).
# Login and logout are left out (they would end the session the run uses; the console
# test checks them), and so is the event stream (it never ends; it has its own tests).
#
# Needs a release build of `pactum` and scripts/setup.sh's schemathesis. Starts and
# stops its own devnet on ports 18901.., 19001.. and 19101...
set -euo pipefail
cd "$(dirname "$0")/.."
examples="${1:-20}"
target="${CARGO_TARGET_DIR:-$HOME/.cache/pactum/target}"
pactum="$target/release/pactum"
venv="$HOME/.cache/pactum/venv"
directory="$(mktemp -d /tmp/pactum-admin-fuzz.XXXXXX)"
cleanup() {
  "$pactum" devnet down --dir "$directory" >/dev/null 2>&1 || true
  rm -rf "$directory"
}
trap cleanup EXIT

"$pactum" devnet up --dir "$directory" --p2p-base-port 18901 --api-base-port 19001 --console-base-port 19101 >/dev/null
console="https://127.0.0.1:19101"
ca="$directory/organisations/member-1/ca-certificate.pem"
token="$(cat "$directory/consoles/member-1/data/login-token")"
# Log in as the operator would: the cookie and the session's CSRF token.
read -r cookie csrf < <("$venv/bin/python" - "$console" "$ca" "$token" <<'PY'
import json, ssl, sys, urllib.request
console, ca, token = sys.argv[1:]
context = ssl.create_default_context(cafile=ca)
login = urllib.request.Request(f"{console}/admin/api/login", data=json.dumps({"token": token}).encode(),
                               headers={"Content-Type": "application/json"}, method="POST")
with urllib.request.urlopen(login, context=context, timeout=10) as answer:
    cookie = answer.headers["Set-Cookie"].split(";")[0]
session = urllib.request.Request(f"{console}/admin/api/session", headers={"Cookie": cookie})
with urllib.request.urlopen(session, context=context, timeout=10) as answer:
    print(cookie, json.load(answer)["csrf"])
PY
)
echo "admin-fuzz: devnet up in $directory; fuzzing $console ($examples examples per operation)"
"$venv/bin/schemathesis" run admin/openapi.json \
  --url "$console" \
  --tls-verify "$ca" \
  -H "Cookie: $cookie" \
  -H "X-CSRF-Token: $csrf" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --exclude-path /admin/api/login \
  --exclude-path /admin/api/logout \
  --exclude-path /admin/api/events \
  --max-examples "$examples" \
  --seed 20261130 \
  --max-time "${ADMIN_FUZZ_SECONDS:-240}" \
  --no-color
