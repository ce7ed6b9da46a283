#!/usr/bin/env bash
# A short run of every cargo-fuzz target (docs/fuzzing.md), from its committed seeds: catches a
# parser that panics on its own seeds or on the first mutations of them. The long runs (>= 5 M
# executions each) are by hand, with the table in docs/fuzzing.md.
#
# Usage: scripts/fuzz-smoke.sh [SECONDS_PER_TARGET=30]
# Needs cargo-fuzz (installed here once from crates.io) and RUSTC_BOOTSTRAP=1 for the nightly
# sanitizer flags on the stable toolchain.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-30}"
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install --quiet cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O
work="$(mktemp -d -t avs-fuzz-smoke.XXXXXX)"
trap 'rm -rf "$work"' EXIT
for target in $(cargo fuzz list); do
  mkdir -p "$work/$target"
  # A scratch corpus (new inputs go there, not into the repository), then the seeds.
  seeds="seeds/$target"
  [ -d "$seeds" ] || seeds=""
  printf '  %-16s ' "$target"
  if ! cargo fuzz run -O "$target" "$work/$target" $seeds -- \
      -max_total_time="$secs" -max_len=4096 -rss_limit_mb=1024 -print_final_stats=1 \
      >"$work/$target.log" 2>&1; then
    echo "FAILED"
    tail -n 60 "$work/$target.log"
    exit 1
  fi
  grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/$target.log" | awk '{print $2 " executions, no crash"}'
done
