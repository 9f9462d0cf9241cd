#!/usr/bin/env bash
# Dynamic batching that never makes a lone request wait, measured: the bundled iris (batching on,
# max_batch_size 32, max_delay_ms 2) beside the same model with batching off, served by this
# build and by another vessel binary (the fixed-delay batcher, built from an earlier commit), in
# the same run. wrk at concurrency 1 and 64 on loopback; rounds alternate between the servers and
# the better of the rounds is kept (this machine is noisy). Run by hand; results go into
# Benchmarks/RESULTS.md.
#
#   Benchmarks/batching.sh OTHER_VESSEL [SECONDS_PER_RUN] [ROUNDS]
# (VESSEL=path uses that binary as this build instead of building one.)
set -euo pipefail
cd "$(dirname "$0")/.."
other="${1:?the other vessel binary to compare with}"
seconds="${2:-5}"
rounds="${3:-2}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
this="${VESSEL:-}"
if [ -z "$this" ]; then
  swift build -c release --product vessel >/dev/null
  this="$PWD/.build/release/vessel"
fi
work="$PWD/Benchmarks/work/batching"
rm -rf "$work" && mkdir -p "$work"
cp -r Examples/iris "$work/batched"
cp -r Examples/iris "$work/unbatched"
sed -i 's/max_batch_size: 32/max_batch_size: 1/' "$work/unbatched/vessel.yaml"
sed -i 's/^name: iris$/name: iris1/' "$work/unbatched/vessel.yaml"
cat > "$work/request.lua" <<'EOF'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"inputs":[{"name":"X","shape":[1,4],"datatype":"FP32","data":[[5.1,3.5,1.4,0.2]]}]}'
EOF

pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
serve() {  # binary port
  "$1" serve "$work/batched" "$work/unbatched" --port "$2" --no-log > "$work/serve-$2.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$2/v2/health/ready" >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "never ready on $2" >&2; return 1
}
serve "$this" 18095
serve "$other" 18096

measure() {  # port model connections → "rps p50"
  local threads=2
  [ "$3" -lt 2 ] && threads=1
  wrk -t"$threads" -c"$3" -d"${seconds}s" --latency -s "$work/request.lua" "http://127.0.0.1:$1/v2/models/$2/infer" | python3 -c '
import re, sys
text = sys.stdin.read()
def ms(v, unit): return float(v) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
p50 = [ms(v, u) for v, u in re.findall(r"^\s+50%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)][0]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
print("%.0f %.3f%s" % (rps, p50, " errors=" + errors.group(1) if errors else ""))'
}

declare -A best
for round in $(seq 1 "$rounds"); do
  for connections in 1 64; do
    for server in this:18095 other:18096; do
      name=${server%%:*} port=${server##*:}
      for model in iris iris1; do
        read -r rps p50 rest <<<"$(measure "$port" "$model" "$connections")"
        key="$name $model $connections"
        previous=${best[$key]:-0 0}
        if [ "${previous%% *}" -lt "$rps" ]; then best[$key]="$rps $p50 $rest"; fi
      done
    done
  done
done
echo "| server | model | concurrency | requests/s | p50 ms |"
echo "|---|---|---|---|---|"
for key in "${!best[@]}"; do echo "$key ${best[$key]}"; done | sort | while read -r name model connections rps p50 rest; do
  label=$([ "$model" = iris ] && echo "iris (batching on)" || echo "iris (max_batch_size 1)")
  echo "| $name | $label | $connections | $rps | $p50 $rest |"
done
echo
echo "this: $this; other: $other; ${seconds}s per run, better of $rounds alternating rounds"
