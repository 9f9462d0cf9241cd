#!/usr/bin/env bash
# Two builds of `vessel serve` side by side, same machine, same run: a change to the serving
# path measured against the build before it. Each build serves the bundled iris model and a
# scikit-learn model on the Python backend (two workers); wrk sends OIP v2 requests that take
# the worker-thread path (iris with 256 rows, past the fast lane) and Python requests, at
# concurrency 1 and 8, builds alternating, the better of two rounds each. Results go into
# Benchmarks/RESULTS.md by hand.
#
#   cp .build/release/vessel /tmp/vessel-before    # before the change
#   swift build -c release --product vessel         # after it
#   Benchmarks/serve-ab.sh /tmp/vessel-before .build/release/vessel [SECONDS_PER_RUN]
set -euo pipefail
cd "$(dirname "$0")/.."
source Benchmarks/common.sh
before=$(realpath "$1") after=$(realpath "$2") seconds="${3:-5}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
python="$PWD/.build/venv/bin/python"
[ -x "$python" ] || scripts/onnx-test-data.sh >/dev/null
work="$PWD/Benchmarks/work/serve-ab"
rm -rf "$work" && mkdir -p "$work/python"
"$python" - "$work" <<'PY'
import json, sys, joblib, sklearn
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
work = sys.argv[1]
X, y = load_iris(return_X_y=True)
joblib.dump(LogisticRegression(max_iter=1000).fit(X, y), f"{work}/python/model.joblib")
open(f"{work}/python/vessel.yaml", "w").write(f"""name: pyiris
version: "1"
model: {{format: joblib, file: model.joblib}}
runtime:
  backend: python
  requirements: [scikit-learn=={sklearn.__version__}]
serving: {{max_concurrency: 2}}
signature:
  inputs: [{{name: x, dtype: float64, shape: [-1, 4]}}]
  outputs: [{{name: label, dtype: int64, shape: [-1]}}]
""")
json.dump({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": X[0].tolist()}]}, open(f"{work}/python.json", "w"))
rows = X[:256].astype("float32")
json.dump({"inputs": [{"name": "X", "shape": list(rows.shape), "datatype": "FP32", "data": rows.ravel().tolist()}]}, open(f"{work}/iris.json", "w"))
for name in ("python", "iris"):
    open(f"{work}/{name}.lua", "w").write(f"""wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("{work}/{name}.json", "r"); wrk.body = f:read("*a"); f:close()
""")
PY
port=18931
declare -A best
for round in 1 2; do
  for build in before after; do
    binary=$before; [ "$build" = after ] && binary=$after
    VESSEL_PYTHON="$python" VESSEL_HOME="$work/home-$build" "$binary" serve Examples/iris "$work/python" --port $port >"$work/$build.log" 2>&1 &
    pid=$!
    wait_ready "$(now)" "http://127.0.0.1:$port/v2/health/ready" >/dev/null
    for case in "iris 1" "iris 8" "pyiris 1" "pyiris 8"; do
      set -- $case
      script="$work/iris.lua"; [ "$1" = pyiris ] && script="$work/python.lua"
      result=$(wrk_measure "http://127.0.0.1:$port/v2/models/$1/infer" "$script" "$2" "$seconds")
      key="$build $1 c=$2"
      if [ -z "${best[$key]:-}" ] || [ "${result%% *}" -gt "${best[$key]%% *}" ]; then best[$key]=$result; fi
    done
    kill $pid; wait $pid 2>/dev/null || true
  done
done
printf '%-16s %12s %12s %7s\n' case before after ratio
for case in "iris c=1" "iris c=8" "pyiris c=1" "pyiris c=8"; do
  b=${best["before $case"]%% *} a=${best["after $case"]%% *}
  printf '%-16s %12s %12s %7s\n' "$case" "$b" "$a" "$(python3 -c "print(f'{$a / $b:.2f}')")"
done
