#!/usr/bin/env bash
# A short, coverage-guided run of every fuzz target on stable Rust, so the targets can't
# rot and a shallow crash fails CI. Builds the targets as `cargo fuzz build -s none`
# does (libFuzzer with SanitizerCoverage, no sanitizer; debug assertions on), then runs
# each for RUNS inputs, starting from its seeds in corpus/<target>/ (when present) and
# writing what it finds to a scratch directory, not the committed corpus.
#   RUNS  inputs per target [200000: a few seconds each]
set -euo pipefail
cd "$(dirname "$0")"
runs=${RUNS:-200000}
triple=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
  -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
  -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions"
# --target keeps RUSTFLAGS off build scripts and proc macros.
cargo build --release --bins --target "$triple" --target-dir target/smoke
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for source in fuzz_targets/*.rs; do
  target=$(basename "$source" .rs)
  seeds=()
  [ -d "corpus/$target" ] && seeds=("corpus/$target")
  mkdir -p "$scratch/$target"
  echo "fuzz smoke: $target ($runs runs)"
  "target/smoke/$triple/release/$target" -runs="$runs" -seed=1 -max_len=4096 \
    -artifact_prefix="$scratch/" "$scratch/$target" "${seeds[@]}" 2>"$scratch/$target.log" || {
    tail -n 40 "$scratch/$target.log"
    echo "fuzz smoke: $target failed (the crashing input is printed above)" >&2
    exit 1
  }
  tail -n 1 "$scratch/$target.log"
done
