#!/usr/bin/env bash
# Packs a generated weights file (default 4 GiB) and measures it beside `cp` of the same file to
# the same filesystem and `openssl dgst -sha256` of it, in the same run, from a warm page cache.
# Peak RSS comes from GNU time. Run by hand; results go into Benchmarks/RESULTS.md.
#
#   Benchmarks/pack-throughput.sh [SIZE_MIB] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib="${1:-4096}"
runs="${2:-3}"
swift build -c release --product vessel >/dev/null
vessel="$PWD/.build/release/vessel"
work="$PWD/Benchmarks/work"
rm -rf "$work"
mkdir -p "$work/model"
trap 'rm -rf "$work"' EXIT

source Benchmarks/weights-model.sh
weights_model "$work/model" bench "$size_mib"
bytes=$(stat -c %s "$work/model/weights.bin")

# Seconds and peak RSS (KiB) of one command, from GNU time.
measure() {
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" >/dev/null 2>&1
  cat "$work/time"
}
rate() { awk -v b="$bytes" -v s="$1" 'BEGIN { printf "%.2f", b / s / 1e9 }'; }

# Before every measurement: flush what earlier steps wrote, let the disk settle, and warm the
# source into the page cache, so no tool pays for another's writeback.
settle() { sync; sleep 3; cat "$work/model/weights.bin" > /dev/null; }

row() { printf "| %d | %s | %s | %s | %d |\n" "$run" "$1" "$2" "$(rate "$2")" "$(($3 / 1024))"; }

bench_cp() {
  settle; read -r t m < <(measure cp "$work/model/weights.bin" "$work/copy.bin"); row "cp" "$t" "$m"
  rm -f "$work/copy.bin"
  settle; read -r t m < <(measure sh -c "cp '$work/model/weights.bin' '$work/copy.bin' && sync '$work/copy.bin'"); row "cp + sync" "$t" "$m"
  rm -f "$work/copy.bin"
}
bench_openssl() {
  settle; read -r t m < <(measure openssl dgst -sha256 "$work/model/weights.bin"); row "openssl dgst -sha256" "$t" "$m"
}
bench_vessel() {
  rm -rf "$work/home"
  settle; read -r t m < <(VESSEL_HOME="$work/home" measure "$vessel" pack "$work/model" --no-test); row "vessel pack (new store, fsynced)" "$t" "$m"
  settle; read -r t m < <(VESSEL_HOME="$work/home" measure "$vessel" pack "$work/model" --no-test); row "vessel pack (blob already stored)" "$t" "$m"
  settle; read -r t m < <(VESSEL_HOME="$work/home" measure "$vessel" verify bench:1); row "vessel verify" "$t" "$m"
}

printf "| run | tool | seconds | GB/s | peak RSS MiB |\n|---|---|---|---|---|\n"
for run in $(seq 1 "$runs"); do
  # Alternate the order so neither side always goes first.
  if ((run % 2)); then bench_cp; bench_openssl; bench_vessel; else bench_vessel; bench_openssl; bench_cp; fi
done
