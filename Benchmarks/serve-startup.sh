#!/usr/bin/env bash
# Time from `vessel serve` starting to `/v2/health/ready` answering 200, for a 100 MB ONNX model
# (an MLP 1024-4096-4096-1024-16, random float32 weights, 25.2M parameters). Ready means loaded,
# every blob's digest checked and the bundled example run and matched (issue 5: under 150 ms).
# Run by hand; results go into Benchmarks/RESULTS.md.
#
#   Benchmarks/serve-startup.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"
source Benchmarks/ort-venv.sh                # sets $vessel and $venv
work="$PWD/Benchmarks/work/startup"
rm -rf "$work" && mkdir -p "$work/model"

# The model, and one example whose expected output onnxruntime computes.
"$venv/bin/python" - "$work/model" <<'PY'
import json, os, sys
import numpy as np, onnx, onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
directory = sys.argv[1]
rng = np.random.default_rng(11)
sizes = [1024, 4096, 4096, 1024, 16]
inits, nodes, previous = [], [], "x"
for k in range(len(sizes) - 1):
    inits += [numpy_helper.from_array((rng.standard_normal((sizes[k], sizes[k + 1])) / np.sqrt(sizes[k])).astype(np.float32), f"w{k}"),
              numpy_helper.from_array(np.zeros(sizes[k + 1], np.float32), f"b{k}")]
    nodes.append(helper.make_node("Gemm", [previous, f"w{k}", f"b{k}"], [f"h{k}"]))
    previous = f"h{k}"
    if k < len(sizes) - 2:
        nodes.append(helper.make_node("Relu", [previous], [f"r{k}"]))
        previous = f"r{k}"
graph = helper.make_graph(nodes, "mlp100", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", sizes[0]])],
                          [helper.make_tensor_value_info(previous, TensorProto.FLOAT, ["N", sizes[-1]])], inits)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
model.ir_version = 8
path = os.path.join(directory, "model.onnx")
onnx.save(model, path)
x = rng.uniform(-1, 1, (1, sizes[0])).astype(np.float32)
y = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
with open(os.path.join(directory, "vessel.yaml"), "w") as f:
    f.write(f"""schemaVersion: 1
name: mlp100
version: "1"
model: {{format: onnx, file: model.onnx}}
signature:
  inputs: [{{name: x, dtype: float32, shape: [batch, {sizes[0]}]}}]
  outputs: [{{name: {previous}, dtype: float32, shape: [batch, {sizes[-1]}]}}]
examples:
  - name: random
    inputs: {{x: {json.dumps(x.tolist())}}}
    outputs: {{{previous}: {json.dumps(y.tolist())}}}
    rtol: 1.0e-4
    atol: 1.0e-5
""")
print(f"model.onnx: {os.path.getsize(path) / 1e6:.1f} MB", file=sys.stderr)
PY
"$vessel" pack "$work/model" --home "$work/home" >/dev/null

# Start to ready, polled every millisecond from the process that starts the server.
"$venv/bin/python" - "$vessel" "$work/home" "$runs" <<'PY'
import http.client, statistics, subprocess, sys, time
vessel, home, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
times = []
for run in range(runs):
    start = time.monotonic()
    server = subprocess.Popen([vessel, "serve", "mlp100:1", "--home", home, "--port", "18095", "--no-log"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ready = None
    while ready is None and time.monotonic() - start < 30:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", 18095, timeout=1)
            connection.request("GET", "/v2/health/ready")
            if connection.getresponse().status == 200:
                ready = time.monotonic() - start
            connection.close()
        except OSError:
            pass
        if ready is None:
            time.sleep(0.001)
    server.terminate()
    server.wait()
    if ready is None:
        sys.exit("never ready")
    times.append(ready * 1000)
print("start to ready, ms: " + ", ".join(f"{t:.0f}" for t in times) + f" (median {statistics.median(times):.0f})")
PY
