#!/usr/bin/env bash
# Installs what a fresh machine lacks to build and test Pactum, and skips what is present:
#   - clang and libclang-dev, which RocksDB's Rust bindings (bindgen) need;
#   - the wasm32-unknown-unknown Rust target, for the sample contracts;
#   - the kill command (procps), with which `pactum devnet down` signals validators;
#   - lld (wasm-ld), with which the test suite links the C sample contract;
#   - python3-venv and, in a virtual environment under $HOME/.cache/pactum/venv,
#     schemathesis (from PyPI), which fuzzes the REST API from its OpenAPI document, and
#     Playwright (from PyPI), which drives the browser tests of the console;
#   - Debian's chromium, the browser those tests run (Playwright never downloads one).
# Safe to run any number of times.
set -euo pipefail

need_apt=()
command -v clang >/dev/null 2>&1 || need_apt+=(clang)
[ -x /usr/bin/kill ] || [ -x /bin/kill ] || need_apt+=(procps)
# The PKI tests make certificates with the openssl command line, as operators do.
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v wasm-ld >/dev/null 2>&1 || ls /usr/bin/wasm-ld* /usr/lib/llvm-*/bin/wasm-ld >/dev/null 2>&1 \
  || need_apt+=(lld)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need_apt+=(python3-venv)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
if ! ls /usr/lib/llvm-*/lib/libclang.so* /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1; then
  need_apt+=(libclang-dev)
fi

if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${need_apt[@]}" >/dev/null
else
  echo "setup: clang, libclang, lld, kill, python3-venv and chromium present"
fi

if rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  echo "setup: wasm32-unknown-unknown target present"
else
  echo "setup: adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

venv="$HOME/.cache/pactum/venv"
schemathesis_version="4.32.5"
if [ -x "$venv/bin/schemathesis" ] \
  && "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$schemathesis_version"; then
  echo "setup: schemathesis $schemathesis_version present"
else
  echo "setup: installing schemathesis $schemathesis_version into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$schemathesis_version"
fi

playwright_version="1.65.2"
if "$venv/bin/python" -c "import playwright, sys; from importlib.metadata import version; sys.exit(version('playwright') != '$playwright_version')" 2>/dev/null; then
  echo "setup: playwright $playwright_version present"
else
  echo "setup: installing playwright $playwright_version into $venv (no browser download: the tests use /usr/bin/chromium)"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "playwright==$playwright_version"
fi
