#!/usr/bin/env bash
# A real transformer on the native runtime beside onnxruntime, same run: Examples/minilm's
# all-MiniLM-L6-v2 (6-layer BERT, 384 wide; made by scripts/examples.sh) at batch × sequence
# 1×16, 1×128 and 8×128, 1 and 2 threads, the better p50 of two interleaved rounds per tool —
# as it is (float32), dynamically quantized to int8 by onnxruntime's `quantize_dynamic`, and
# converted to float16 by onnxruntime's `convert_float_to_float16` (inputs and outputs kept).
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
"$python" - "$model" "$work" <<'PY' 2>/dev/null
import sys, onnx
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.transformers.float16 import convert_float_to_float16
model, work = sys.argv[1], sys.argv[2]
quantize_dynamic(model, f"{work}/int8.onnx", weight_type=QuantType.QInt8)
onnx.save(convert_float_to_float16(onnx.load(model), keep_io_types=True), f"{work}/fp16.onnx")
PY
printf "| model | batch × sequence | threads | vessel p50 ms | p90 | onnxruntime p50 ms | p90 | p50 ratio (vessel ÷ ort) |\n|---|---|---|---|---|---|---|---|\n"
for variant in float32 int8 fp16; do
model=Examples/minilm/model.onnx; [ "$variant" != float32 ] && model="$work/$variant.onnx"
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
    "$python" - "$variant" "$shape" "$threads" "$v1" "$v2" "$o1" "$o2" <<'PY'
import json, sys
variant, shape, threads = sys.argv[1], sys.argv[2], sys.argv[3]
v = min((json.loads(a) for a in sys.argv[4:6]), key=lambda r: r["p50_ms"])
o = min((json.loads(a) for a in sys.argv[6:8]), key=lambda r: r["p50_ms"])
print(f"| {variant} | {shape} | {threads} | {v['p50_ms']:.2f} | {v['p90_ms']:.2f} | {o['p50_ms']:.2f} | {o['p90_ms']:.2f} | {v['p50_ms'] / o['p50_ms']:.2f} |")
PY
  done
done
done
"$python" -c "import onnxruntime; print('onnxruntime', onnxruntime.__version__)"
