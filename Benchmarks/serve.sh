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

source Benchmarks/common.sh

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
  wrk_measure "http://127.0.0.1:$2/v2/models/$3/infer" "$work/${1}_${3}.lua" "$4" "$seconds"
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
wrk --version 2>&1 | head -1 || true   # wrk exits 1 after printing its version
