#!/usr/bin/env bash
# The Python backend beside the servers people use for the same scikit-learn model, same
# machine, same run: `vessel serve` (the model imported with `vessel import mlflow`, two
# workers) against `mlflow models serve` (uvicorn, two workers) on MLflow's /invocations, and
# against MLServer's scikit-learn runtime on OIP v2 (in process: MLServer 1.7.1's parallel
# workers fail to start here, uvloop "no current event loop", as in serve.sh). Requests/s and
# p50/p99 with wrk at concurrency 1 and 8, alternating tools, the better of two rounds each;
# then start-to-ready for vessel with its environment built from the artifact's wheels (cold)
# and reused (warm). Run by hand; results go into Benchmarks/RESULTS.md.
#
#   Benchmarks/python-serve.sh [SECONDS_PER_RUN]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
swift build -c release --product vessel >/dev/null
vessel="$PWD/.build/release/vessel"
venv="$PWD/.build/venv-python-bench"
if [ ! -x "$venv/bin/mlserver" ] || [ ! -x "$venv/bin/mlflow" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check scikit-learn==1.9.1 numpy==2.4.6 pandas mlflow-skinny==3.17.2 uvicorn mlserver mlserver-sklearn
fi
work="$PWD/Benchmarks/work/python-serve"
rm -rf "$work" && mkdir -p "$work/mlserver/iris"
"$venv/bin/python" - "$work" <<'PY'
import json, sys, warnings, joblib
warnings.filterwarnings("ignore")
import mlflow.sklearn
from mlflow.models import infer_signature
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
work = sys.argv[1]
X, y = load_iris(return_X_y=True)
model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
mlflow.sklearn.save_model(model, f"{work}/mlflow", signature=infer_signature(X, model.predict(X)), input_example=X[:1],
                          serialization_format="cloudpickle")
joblib.dump(model, f"{work}/mlserver/iris/model.joblib")
json.dump({"name": "iris", "implementation": "mlserver_sklearn.SKLearnModel",
           "parameters": {"uri": "./model.joblib"}}, open(f"{work}/mlserver/iris/model-settings.json", "w"))
json.dump({"http_port": 18191, "grpc_port": 18192, "metrics_port": 18193, "parallel_workers": 0},
          open(f"{work}/mlserver/settings.json", "w"))
PY
export VESSEL_PYTHON="$venv/bin/python" VESSEL_HOME="$work/home" VESSEL_CACHE="$work/cache"
"$vessel" import mlflow "$work/mlflow" -o "$work/vessel" --name iris >/dev/null
sed -i 's/^runtime:/serving: {max_concurrency: 2}\nruntime:/' "$work/vessel/vessel.yaml"
"$vessel" pack "$work/vessel" >/dev/null 2>&1    # resolves the requirements into vessel.lock (needs the index once)
# The same model with dynamic batching: queued requests merge into one predict call (a lone
# request never waits), as `serving.max_batch_size` lets any Vessel model do.
cp -r "$work/vessel" "$work/vessel-batched"
sed -i 's/^name: .*/name: "iris-batched"/; s/^serving: {max_concurrency: 2}/serving: {max_concurrency: 1, max_batch_size: 16, max_delay_ms: 2}/' "$work/vessel-batched/vessel.yaml"
"$vessel" pack "$work/vessel-batched" >/dev/null 2>&1

source Benchmarks/common.sh
# Start to ready from the store: the environment built from the artifact's wheels, then reused.
rm -rf "$work/cache/envs"
start=$(now); "$vessel" serve iris:1 --port 18190 --no-log > "$work/vessel-cold.log" 2>&1 & pid=$!
cold=$(wait_ready "$start" http://127.0.0.1:18190/v2/health/ready); kill $pid; wait $pid 2>/dev/null || true
start=$(now); "$vessel" serve iris:1 --port 18190 --no-log > "$work/vessel.log" 2>&1 & vessel_pid=$!
warm=$(wait_ready "$start" http://127.0.0.1:18190/v2/health/ready)
"$vessel" serve iris-batched:1 --port 18196 --no-log > "$work/vessel-batched.log" 2>&1 & batched_pid=$!
wait_ready "$(now)" http://127.0.0.1:18196/v2/health/ready >/dev/null
start=$(now)
(cd "$work" && PATH="$venv/bin:$PATH" exec "$venv/bin/mlflow" models serve -m "$work/mlflow" --env-manager local -p 18194 -w 2 > "$work/mlflow.log" 2>&1) &
mlflow_pid=$!
mlflow_ready=$(wait_ready "$start" http://127.0.0.1:18194/ping)
start=$(now)
(cd "$work/mlserver" && exec "$venv/bin/mlserver" start . > "$work/mlserver.log" 2>&1) &
mlserver_pid=$!
mlserver_ready=$(wait_ready "$start" http://127.0.0.1:18191/v2/models/iris/ready)
trap 'kill $vessel_pid $batched_pid $mlflow_pid $mlserver_pid 2>/dev/null || true; pkill -f "uvicorn --host 127.0.0.1 --port 18194" || true' EXIT

cat > "$work/invocations.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"inputs": [[5.1, 3.5, 1.4, 0.2]]}'
LUA
cat > "$work/oip.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}]}'
LUA
sed 's/"features"/"predict"/' "$work/oip.lua" > "$work/oip-mlserver.lua"
echo "Start to ready: vessel ${cold} s with the environment built from the artifact's wheels, ${warm} s reused;"
echo "mlflow models serve ${mlflow_ready} s; MLServer ${mlserver_ready} s."
echo
printf "| protocol | concurrency | vessel req/s | p50 ms | p99 ms | other | other req/s | p50 ms | p99 ms | ratio | errors |\n|---|---|---|---|---|---|---|---|---|---|---|\n"
for connections in 1 8; do
  read -r vr vp50 vp99 ve <<<"$(wrk_best http://127.0.0.1:18190/invocations "$work/invocations.lua" $connections "$seconds")"
  read -r mr mp50 mp99 me <<<"$(wrk_best http://127.0.0.1:18194/invocations "$work/invocations.lua" $connections "$seconds")"
  echo "| MLflow /invocations | $connections | $vr | $vp50 | $vp99 | mlflow models serve | $mr | $mp50 | $mp99 | $(python3 -c "print(f'{$vr / max($mr, 1e-9):.1f}')")x | $ve / $me |"
  read -r vr vp50 vp99 ve <<<"$(wrk_best http://127.0.0.1:18190/v2/models/iris/infer "$work/oip.lua" $connections "$seconds")"
  read -r sr sp50 sp99 se <<<"$(wrk_best http://127.0.0.1:18191/v2/models/iris/infer "$work/oip-mlserver.lua" $connections "$seconds")"
  echo "| OIP v2 | $connections | $vr | $vp50 | $vp99 | MLServer (sklearn) | $sr | $sp50 | $sp99 | $(python3 -c "print(f'{$vr / max($sr, 1e-9):.1f}')")x | $ve / $se |"
  # Batched: against the better of the two others at this concurrency.
  read -r br bp50 bp99 be <<<"$(wrk_best http://127.0.0.1:18196/invocations "$work/invocations.lua" $connections "$seconds")"
  best=$(python3 -c "print(max($mr, $sr))")
  echo "| MLflow /invocations, batched | $connections | $br | $bp50 | $bp99 | the better of the two | $best | | | $(python3 -c "print(f'{$br / max($best, 1e-9):.1f}')")x | $be |"
  read -r br bp50 bp99 be <<<"$(wrk_best http://127.0.0.1:18196/v2/models/iris-batched/infer "$work/oip.lua" $connections "$seconds")"
  echo "| OIP v2, batched | $connections | $br | $bp50 | $bp99 | the better of the two | $best | | | $(python3 -c "print(f'{$br / max($best, 1e-9):.1f}')")x | $be |"
done
"$venv/bin/python" -c "import mlflow, mlserver, sklearn; print('mlflow', mlflow.__version__, 'mlserver', mlserver.__version__, 'scikit-learn', sklearn.__version__)"
