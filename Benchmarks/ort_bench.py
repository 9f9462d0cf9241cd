"""Helper for onnx-runtime.sh: prepares inputs and times onnxruntime exactly as vessel bench
times itself (warm-up, then per-run wall clock, nearest-rank percentiles)."""
import json
import math
import os
import sys
import time

import numpy as np


def prepare(work, light):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(7)
    sizes = [784, 512, 256, 10]
    inits, nodes, previous = [], [], "x"
    for k in range(3):
        inits += [numpy_helper.from_array((rng.standard_normal((sizes[k], sizes[k + 1])) * 0.05).astype(np.float32), f"w{k}"),
                  numpy_helper.from_array(np.zeros(sizes[k + 1], np.float32), f"b{k}")]
        nodes += [helper.make_node("Gemm", [previous, f"w{k}", f"b{k}"], [f"h{k}"])]
        previous = f"h{k}"
        if k < 2:
            nodes += [helper.make_node("Relu", [previous], [f"r{k}"])]
            previous = f"r{k}"
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 784])],
                              [helper.make_tensor_value_info(previous, TensorProto.FLOAT, ["N", 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, os.path.join(work, "mlp.onnx"))

    def inputs_for(name, path, batch=None):
        m = onnx.load(path, load_external_data=False)
        init = {i.name for i in m.graph.initializer}
        args, files = [], {}
        for inp in m.graph.input:
            if inp.name in init:
                continue
            dims = [d.dim_value if d.dim_value > 0 else (batch or 1) for d in inp.type.tensor_type.shape.dim]
            n = int(np.prod(dims))
            data = (np.arange(n, dtype=np.float32) / n).reshape(dims)
            file = os.path.join(work, f"{name}_{len(files)}.npy")
            np.save(file, data)
            files[inp.name] = file
            args.append(f"--input {inp.name}={file}")
        with open(os.path.join(work, f"{name}.args"), "w") as f:
            f.write(" ".join(args))
        with open(os.path.join(work, f"{name}.inputs"), "w") as f:
            json.dump(files, f)

    for name in ["resnet50", "squeezenet", "vgg19", "densenet121", "inception_v1"]:
        inputs_for(name, os.path.join(light, f"light_{name}.onnx"))
    inputs_for("mlp_b1", os.path.join(work, "mlp.onnx"), batch=1)
    inputs_for("mlp_b64", os.path.join(work, "mlp.onnx"), batch=64)


def run(model, threads, iterations, inputs_file):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    with open(inputs_file) as f:
        feeds = {name: np.load(path) for name, path in json.load(f).items()}
    for _ in range(3):
        session.run(None, feeds)
    latencies = []
    for _ in range(int(iterations)):
        start = time.perf_counter()
        session.run(None, feeds)
        latencies.append((time.perf_counter() - start) * 1000)
    latencies.sort()

    def percentile(p):
        rank = math.ceil(p / 100 * len(latencies))
        return latencies[min(max(rank - 1, 0), len(latencies) - 1)]

    print(json.dumps({"p50_ms": percentile(50), "p90_ms": percentile(90), "p99_ms": percentile(99)}))


if __name__ == "__main__":
    if sys.argv[1] == "prepare":
        prepare(sys.argv[2], sys.argv[3])
    else:
        run(*sys.argv[2:6])
