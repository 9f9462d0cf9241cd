"""Helper for conv-shapes.sh: each distinct Conv of a model, alone (with a bias and a Relu,
random weights and input), timed by vessel and by onnxruntime in the same run, and the totals
weighted by how often each shape appears in the model."""
import collections
import json
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper, shape_inference


def extract(model_path, work):
    model = shape_inference.infer_shapes(onnx.load(model_path))
    values = list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in values}
    initializers = {i.name: list(i.dims) for i in model.graph.initializer}
    count = collections.Counter()
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        a = {x.name: helper.get_attribute_value(x) for x in node.attribute}
        x = shapes[node.input[0]]
        w = initializers.get(node.input[1]) or shapes[node.input[1]]
        count[(x[1], w[0], x[2], x[3], w[2], w[3], tuple(a.get("strides", [1, 1])), tuple(a.get("pads", [0, 0, 0, 0])), a.get("group", 1))] += 1
    rng = np.random.default_rng(0)
    cases = []
    for i, (key, times) in enumerate(sorted(count.items(), key=lambda kv: -kv[1])):
        cin, cout, h, w, kh, kw, strides, pads, group = key
        weights = numpy_helper.from_array((rng.standard_normal((cout, cin // group, kh, kw)) * 0.05).astype(np.float32), "w")
        bias = numpy_helper.from_array(rng.standard_normal((cout,)).astype(np.float32), "b")
        nodes = [
            helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[kh, kw], strides=list(strides), pads=list(pads), group=group),
            helper.make_node("Relu", ["c"], ["y"]),
        ]
        graph = helper.make_graph(
            nodes, "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, cin, h, w])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [weights, bias])
        made = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        made.ir_version = 8
        name = f"{work}/conv{i}"
        onnx.save(made, f"{name}.onnx")
        np.save(f"{name}_x.npy", rng.standard_normal((1, cin, h, w)).astype(np.float32))
        cases.append((name, times, list(key)))
    json.dump(cases, open(f"{work}/cases.json", "w"))


def run(work, vessel, threads, iterations):
    tv = to = 0.0
    print("| Conv (in, out, H, W, kh, kw, strides, pads, group) | in model | vessel p50 ms | onnxruntime p50 ms | ratio |")
    print("|---|---|---|---|---|")
    for name, times, key in json.load(open(f"{work}/cases.json")):
        inputs = f"{work}/inputs.json"
        json.dump({"x": f"{name}_x.npy"}, open(inputs, "w"))
        best_v = best_o = float("inf")
        for _ in range(2):
            v = subprocess.run([vessel, "bench", f"{name}.onnx", "--threads", threads, "--iterations", iterations, "--warmup", "5",
                                "--input", f"x={name}_x.npy", "--json"], capture_output=True, text=True, check=True)
            o = subprocess.run([sys.executable, "Benchmarks/ort_bench.py", "run", f"{name}.onnx", threads, iterations, inputs],
                               capture_output=True, text=True, check=True)
            best_v = min(best_v, json.loads(v.stdout)["p50_ms"])
            best_o = min(best_o, json.loads(o.stdout)["p50_ms"])
        tv += times * best_v
        to += times * best_o
        print(f"| {tuple(key)} | ×{times} | {best_v:.3f} | {best_o:.3f} | {best_v / best_o:.2f} |", flush=True)
    print(f"\nWeighted by appearances: vessel {tv:.2f} ms, onnxruntime {to:.2f} ms, {tv / to:.2f}×")


if __name__ == "__main__":
    if sys.argv[1] == "extract":
        extract(sys.argv[2], sys.argv[3])
    else:
        run(*sys.argv[2:6])
