#!/usr/bin/env bash
# Classic-ML models (scikit-learn → skl2onnx) in Vessel's runtime beside onnxruntime, same
# models, same input files, same run: one row and a batch of 1000 rows, 1 and 2 threads.
# Run by hand; results go into Benchmarks/RESULTS.md.
#
#   Benchmarks/classic-ml.sh [ITERATIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
iterations="${1:-2000}"
swift build -c release --product vessel >/dev/null
vessel="$PWD/.build/release/vessel"
venv=".build/venv-ml"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import sklearn, skl2onnx, onnxruntime" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check onnx==1.23.2 onnxruntime scikit-learn skl2onnx numpy
fi
python="$venv/bin/python"
work="$PWD/Benchmarks/work/classic-ml"
"$python" Benchmarks/classic_ml_models.py "$work"

printf "| model | rows | threads | vessel p50 ms | vessel p99 | onnxruntime p50 ms | ort p99 | p50 ratio (vessel ÷ ort) |\n|---|---|---|---|---|---|---|---|\n"
for name in identity logistic_pipeline random_forest gradient_boosting_510; do
  for rows in 1 1000; do
    n=$iterations
    [ "$rows" = 1000 ] && n=$(( iterations / 10 ))
    for threads in 1 2; do
      v=$("$vessel" bench "$work/$name.onnx" --threads "$threads" --iterations "$n" --warmup 20 --input "X=$work/rows$rows.npy" --json)
      o=$("$python" Benchmarks/ort_bench.py run "$work/$name.onnx" "$threads" "$n" "$work/rows$rows.inputs")
      "$python" - "$name" "$rows" "$threads" "$v" "$o" <<'PY'
import json, sys
name, rows, threads, v, o = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), json.loads(sys.argv[5])
print(f"| {name} | {rows} | {threads} | {v['p50_ms']:.4f} | {v['p99_ms']:.4f} | {o['p50_ms']:.4f} | {o['p99_ms']:.4f} | {v['p50_ms'] / o['p50_ms']:.2f} |")
PY
    done
  done
done
"$python" -c "import onnxruntime, sklearn, skl2onnx; print('onnxruntime', onnxruntime.__version__, 'scikit-learn', sklearn.__version__, 'skl2onnx', skl2onnx.__version__)"
echo "The identity rows measure the per-call cost of each harness (onnxruntime's is its Python binding)."
