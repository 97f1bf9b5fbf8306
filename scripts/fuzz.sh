#!/usr/bin/env bash
# Coverage-guided fuzzing of the decoders that read bytes from peers and clients
# (tests/fuzz: transactions, blocks, signed PBFT messages, transport frames, the wire
# messages inside them (gossip, block requests, state-transfer answers), genesis files,
# contract-call arguments). libFuzzer, built on stable Rust with LLVM's SanitizerCoverage passes (the
# flags cargo-fuzz uses, without its nightly-only sanitizers), in a target directory of
# its own so the workspace build is never invalidated.
#
#   scripts/fuzz.sh [seconds-per-target]      (default 20; the test command uses 15)
#
# Each target asserts more than "no panic": whatever decodes re-encodes to exactly the
# bytes it came from (encodings are canonical). A finding fails the run and leaves the
# crashing input in the target directory's artifacts/ with the command that replays it.
# The corpus is kept between runs under the target directory.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
target_dir="${PACTUM_FUZZ_TARGET_DIR:-$HOME/.cache/pactum/fuzz-target}"
host="$(rustc -vV | sed -n 's/^host: //p')"
# --target keeps the instrumentation off build scripts and proc macros.
RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing" \
  cargo build --release --locked --manifest-path tests/fuzz/Cargo.toml \
  --target "$host" --target-dir "$target_dir" --bins
binaries="$target_dir/$host/release"
mkdir -p "$target_dir/artifacts"
status=0
for target in transaction block consensus_message frame wire genesis call_arguments; do
  corpus="$target_dir/corpus/$target"
  mkdir -p "$corpus"
  # Checked-in seeds (a valid genesis file, ...) start a new corpus where random bytes
  # would take long to find the structure.
  if [ -d "tests/fuzz/seeds/$target" ] && [ -z "$(ls -A "$corpus")" ]; then
    cp "tests/fuzz/seeds/$target"/* "$corpus"/
  fi
  log="$target_dir/$target.log"
  if "$binaries/$target" "$corpus" -max_total_time="$seconds" -max_len=65536 \
    -use_value_profile=1 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$target_dir/artifacts/$target-" \
    >"$log" 2>&1; then
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
    echo "fuzz: $target: ${runs:-?} executions in ${seconds} s, no finding (corpus $(ls "$corpus" | wc -l))"
  else
    status=1
    echo "fuzz: $target FOUND A FAILURE; log $log; replay: $binaries/$target <artifact>" >&2
    tail -30 "$log" >&2
  fi
done
exit "$status"
