#!/usr/bin/env bash
# A real transformer on the native runtime beside onnxruntime, same run: Examples/minilm's
# all-MiniLM-L6-v2 (6-layer BERT, 384 wide; made by scripts/examples.sh) at batch × sequence
# 1×16, 1×128 and 8×128, 1 and 2 threads, the better p50 of two interleaved rounds per tool.
#
#   Benchmarks/bert.sh [ITERATIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
iterations="${1:-30}"
scripts/examples.sh >/dev/null
source Benchmarks/ort-venv.sh                # sets $vessel and $venv
work="$PWD/Benchmarks/work/bert"
mkdir -p "$work"
model=Examples/minilm/model.onnx
python="$venv/bin/python"
"$python" - "$work" <<'PY'
import json, sys, numpy as np
work = sys.argv[1]
rng = np.random.default_rng(1)
for b, s in ((1, 16), (1, 128), (8, 128)):
    files = {}
    for name in ("input_ids", "attention_mask", "token_type_ids"):
        data = rng.integers(1000, 30000, (b, s)).astype(np.int64) if name == "input_ids" else \
            (np.ones((b, s), np.int64) if name == "attention_mask" else np.zeros((b, s), np.int64))
        files[name] = f"{work}/{b}x{s}_{name}.npy"
        np.save(files[name], data)
    json.dump(files, open(f"{work}/{b}x{s}.inputs", "w"))
    open(f"{work}/{b}x{s}.args", "w").write(" ".join(f"--input {k}={v}" for k, v in files.items()))
PY
printf "| batch × sequence | threads | vessel p50 ms | p90 | onnxruntime p50 ms | p90 | p50 ratio (vessel ÷ ort) |\n|---|---|---|---|---|---|---|\n"
for shape in 1x16 1x128 8x128; do
  args=$(cat "$work/$shape.args")
  n=$iterations; [ "$shape" = 8x128 ] && n=$(( (iterations + 2) / 3 ))
  for threads in 1 2; do
    # shellcheck disable=SC2086
    v1=$("$vessel" bench "$model" --threads "$threads" --iterations "$n" --warmup 3 $args --json)
    o1=$("$python" Benchmarks/ort_bench.py run "$model" "$threads" "$n" "$work/$shape.inputs")
    # shellcheck disable=SC2086
    v2=$("$vessel" bench "$model" --threads "$threads" --iterations "$n" --warmup 3 $args --json)
    o2=$("$python" Benchmarks/ort_bench.py run "$model" "$threads" "$n" "$work/$shape.inputs")
    "$python" - "$shape" "$threads" "$v1" "$v2" "$o1" "$o2" <<'PY'
import json, sys
shape, threads = sys.argv[1], sys.argv[2]
v = min((json.loads(a) for a in sys.argv[3:5]), key=lambda r: r["p50_ms"])
o = min((json.loads(a) for a in sys.argv[5:7]), key=lambda r: r["p50_ms"])
print(f"| {shape} | {threads} | {v['p50_ms']:.2f} | {v['p90_ms']:.2f} | {o['p50_ms']:.2f} | {o['p90_ms']:.2f} | {v['p50_ms'] / o['p50_ms']:.2f} |")
PY
  done
done
"$python" -c "import onnxruntime; print('onnxruntime', onnxruntime.__version__)"
