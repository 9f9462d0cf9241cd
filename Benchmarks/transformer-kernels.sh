#!/usr/bin/env bash
# The transformer row kernels beside onnxruntime, same run, same inputs: Softmax and LogSoftmax
# over attention scores [4, 12, 128, 128] (batch 4 × 128 tokens, 12 heads: 786,432 values), and
# LayerNormalization with scale and bias over [4, 128, 384]. 1 and 2 threads; vessel bench and
# onnxruntime alternate, the better p50 of two rounds is kept.
# Usage: Benchmarks/transformer-kernels.sh [ITERATIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-50}"
source Benchmarks/ort-venv.sh
python="$venv/bin/python"
work=".build/bench-kernels"
rm -rf "$work" && mkdir -p "$work"
"$python" - "$work" <<'PY'
import json, os, sys, numpy as np, onnx
from onnx import helper, numpy_helper, TensorProto
work = sys.argv[1]
rng = np.random.default_rng(11)
def save(name, nodes, inputs, outputs, inits, feeds):
    graph = helper.make_graph(nodes, name, inputs, outputs, inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), f"{work}/{name}.onnx")
    paths = {}
    for key, value in feeds.items():
        paths[key] = f"{work}/{name}.{key}.npy"
        np.save(paths[key], value)
    json.dump(paths, open(f"{work}/{name}.inputs", "w"))
scores = (rng.standard_normal((4, 12, 128, 128)) * 3).astype(np.float32)
for op in ("Softmax", "LogSoftmax"):
    save(op.lower(), [helper.make_node(op, ["x"], ["y"], axis=-1)],
         [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 12, 128, 128])],
         [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 12, 128, 128])], [], {"x": scores})
hidden = rng.standard_normal((4, 128, 384)).astype(np.float32)
save("layernorm", [helper.make_node("LayerNormalization", ["x", "scale", "bias"], ["y"], axis=-1, epsilon=1e-12)],
     [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 128, 384])],
     [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 128, 384])],
     [numpy_helper.from_array((1 + 0.1 * rng.standard_normal(384)).astype(np.float32), "scale"),
      numpy_helper.from_array((0.1 * rng.standard_normal(384)).astype(np.float32), "bias")], {"x": hidden})
PY
p50() { "$python" -c 'import json,sys; print(round(json.load(sys.stdin)["p50_ms"], 3))'; }
echo "| model | threads | vessel p50 ms | onnxruntime p50 ms | ratio (vessel / ort) |"
echo "|---|---|---|---|---|"
for name in softmax logsoftmax layernorm; do
  for threads in 1 2; do
    best_v=999999; best_o=999999
    for round in 1 2; do
      v=$("$vessel" bench "$work/$name.onnx" --threads "$threads" --iterations "$n" --warmup 3 --input "x=$work/$name.x.npy" --json | p50)
      o=$("$python" Benchmarks/ort_bench.py run "$work/$name.onnx" "$threads" "$n" "$work/$name.inputs" | p50)
      best_v=$("$python" -c "print(min($best_v, $v))"); best_o=$("$python" -c "print(min($best_o, $o))")
    done
    echo "| $name | $threads | $best_v | $best_o | $("$python" -c "print(round($best_v / $best_o, 2))") |"
  done
done
