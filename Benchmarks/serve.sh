#!/usr/bin/env bash
# `vessel serve` beside MLServer (PyPI) on the same models, same protocol (OIP v2 JSON), same
# machine, same run: start-to-ready time, then requests/s and p50/p99 latency with wrk at
# concurrency 1, 8 and 64 on loopback, for a small tabular model (iris, StandardScaler +
# LogisticRegression: MLServer's scikit-learn runtime) and for SqueezeNet (MLServer: a minimal
# custom runtime on onnxruntime). Run by hand; results go into Benchmarks/RESULTS.md.
#
#   Benchmarks/serve.sh [SECONDS_PER_RUN]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl >/dev/null; }
scripts/onnx-test-data.sh >/dev/null     # the light SqueezeNet comes with the onnx wheel
swift build -c release --product vessel >/dev/null
vessel="$PWD/.build/release/vessel"
venv=".build/venv-mlserver"
if [ ! -x "$venv/bin/mlserver" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check mlserver mlserver-sklearn scikit-learn skl2onnx onnxruntime numpy onnx==1.23.2
fi
work="$PWD/Benchmarks/work/serve"
"$venv/bin/python" Benchmarks/serve_models.py "$work" "$PWD/.build/onnx-backend-data/light/light_squeezenet.onnx"

now() { date +%s.%N; }
wait_ready() {  # URL → seconds until it answers 200
  local start=$1 url=$2
  for _ in $(seq 1 1200); do
    if curl -sf "$url" >/dev/null 2>&1; then python3 -c "print(f'{$(now) - $start:.2f}')"; return 0; fi
    sleep 0.05
  done
  echo "never ready: $url" >&2; return 1
}

start=$(now)
"$vessel" serve "$work/vessel/iris" "$work/vessel/squeezenet" --port 18090 --no-log > "$work/vessel.log" 2>&1 &
vessel_pid=$!
vessel_ready=$(wait_ready "$start" http://127.0.0.1:18090/v2/health/ready)
start=$(now)
mlserver_bin="$PWD/$venv/bin/mlserver"
(cd "$work/mlserver" && exec "$mlserver_bin" start . > "$work/mlserver.log" 2>&1) &
mlserver_pid=$!
mlserver_ready=$(wait_ready "$start" http://127.0.0.1:18091/v2/health/ready)
trap 'kill $vessel_pid $mlserver_pid 2>/dev/null || true' EXIT
vessel_rss=$(ps -o rss= -p $vessel_pid)
mlserver_rss=$(ps -o rss= --ppid $mlserver_pid -p $mlserver_pid | awk '{s+=$1} END {print s}')

echo "Start to ready: vessel ${vessel_ready} s, MLServer ${mlserver_ready} s (both models)."
echo
printf "| model | concurrency | vessel req/s | vessel p50 ms | vessel p99 ms | MLServer req/s | MLServer p50 ms | MLServer p99 ms | throughput ratio | errors (vessel / MLServer) |\n|---|---|---|---|---|---|---|---|---|---|\n"
measure() {  # name port model concurrency → "rps p50 p99 errors"
  local name=$1 port=$2 model=$3 connections=$4 threads=2
  [ "$connections" -lt 2 ] && threads=1
  wrk -t"$threads" -c"$connections" -d"${seconds}s" --latency -s "$work/${name}_${model}.lua" \
    "http://127.0.0.1:$port/v2/models/$model/infer" | python3 -c '
import re, sys
text = sys.stdin.read()
def ms(v, unit): return float(v) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
p = {k: ms(v, u) for k, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)}
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
print("%.0f %.3f %.3f %s" % (rps, p["50"], p["99"], errors.group(1) if errors else 0))'
}
for model in iris squeezenet; do
  for connections in 1 8 64; do
    read -r vr vp50 vp99 ve <<<"$(measure vessel 18090 $model $connections)"
    read -r mr mp50 mp99 me <<<"$(measure mlserver 18091 $model $connections)"
    ratio=$(python3 -c "print(f'{$vr / max($mr, 1e-9):.1f}')")
    echo "| $model | $connections | $vr | $vp50 | $vp99 | $mr | $mp50 | $mp99 | ${ratio}x | $ve / $me |"
  done
done
echo
echo "Resident memory after loading both models: vessel $((vessel_rss / 1024)) MiB, MLServer (all processes) $((mlserver_rss / 1024)) MiB."
"$venv/bin/python" -c "import mlserver, sklearn, onnxruntime; print('mlserver', mlserver.__version__, 'scikit-learn', sklearn.__version__, 'onnxruntime', onnxruntime.__version__)"
wrk --version 2>&1 | head -1
