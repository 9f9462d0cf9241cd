#!/usr/bin/env bash
# What the browser pages cost: the bundled iris served with the pages (the default) and with
# `--no-ui`, same run, alternating, the better of two rounds each, wrk on OIP v2 JSON at
# concurrency 1 and 8; then how fast a warm server answers the page and its JSON (curl).
#   Benchmarks/ui-cost.sh [SECONDS_PER_RUN]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-8}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
swift build -c release --product vessel >/dev/null
vessel="$PWD/.build/release/vessel"
work="$PWD/Benchmarks/work/ui-cost"
rm -rf "$work" && mkdir -p "$work"
source Benchmarks/common.sh
cat > "$work/oip.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"inputs": [{"name": "X", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}'
LUA
measure() {  # flags connections → "rps p50 p99 errors"
  "$vessel" serve Examples/iris --port 18500 --no-log $1 > "$work/serve.log" 2>&1 & local pid=$!
  wait_ready "$(now)" http://127.0.0.1:18500/v2/health/ready >/dev/null
  wrk_measure http://127.0.0.1:18500/v2/models/iris/infer "$work/oip.lua" "$2" "$seconds"
  kill $pid; wait $pid 2>/dev/null || true
}
echo "| concurrency | with pages req/s | p50 ms | p99 ms | --no-ui req/s | p50 ms | p99 ms |"
echo "|---|---|---|---|---|---|---|"
for connections in 1 8; do
  best_u=""; best_n=""
  for round in 1 2; do
    u=$(measure "" $connections); n=$(measure "--no-ui" $connections)
    if [ -z "$best_u" ] || [ "${u%% *}" -gt "${best_u%% *}" ]; then best_u=$u; fi
    if [ -z "$best_n" ] || [ "${n%% *}" -gt "${best_n%% *}" ]; then best_n=$n; fi
  done
  read -r ur up50 up99 _ <<<"$best_u"; read -r nr np50 np99 _ <<<"$best_n"
  echo "| $connections | $ur | $up50 | $up99 | $nr | $np50 | $np99 |"
done
"$vessel" serve Examples/iris --port 18500 --no-log > "$work/serve.log" 2>&1 & pid=$!
wait_ready "$(now)" http://127.0.0.1:18500/v2/health/ready >/dev/null
for path in / /ui/models/iris /ui/api/models/iris; do
  curl -s -o /dev/null "http://127.0.0.1:18500$path"   # warm (the contract hashes the files once)
  times=$(for _ in $(seq 1 20); do curl -s -o /dev/null -w "%{time_total}\n" "http://127.0.0.1:18500$path"; done | sort -n)
  echo "GET $path: median $(echo "$times" | sed -n 10p | python3 -c 'import sys; print(f"{float(sys.stdin.read()) * 1000:.2f}")') ms over 20 (curl, warm)"
done
kill $pid; wait $pid 2>/dev/null || true
