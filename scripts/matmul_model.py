"""Writes the serving benchmarks' synthetic model: X[N, SIZE] @ w, an activation, @ w again (w
a SIZE×SIZE matrix of WEIGHT), with a vessel.yaml whose `serving:` line is given. Written by
TestSupport.makeSlowModel and by Benchmarks/idle-rss.sh and soak.sh; run with the test venv.

    python matmul_model.py DIR NAME SIZE WEIGHT ACTIVATION 'SERVING_FLOW_MAPPING'
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper, numpy_helper

directory, name, size, weight, activation, serving = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5], sys.argv[6]
weights = numpy_helper.from_array(np.full((size, size), weight, np.float32), 'w')
graph = helper.make_graph(
    [helper.make_node('MatMul', ['X', 'w'], ['m']), helper.make_node(activation, ['m'], ['a']), helper.make_node('MatMul', ['a', 'w'], ['Y'])],
    name, [helper.make_tensor_value_info('X', T.FLOAT, ['N', size])], [helper.make_tensor_value_info('Y', T.FLOAT, ['N', size])], [weights])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
model.ir_version = 8
onnx.save(model, directory + '/model.onnx')
open(directory + '/vessel.yaml', 'w').write(f'''schemaVersion: 1
name: {name}
version: "1"
model: {{format: onnx, file: model.onnx}}
signature:
  inputs: [{{name: X, dtype: float32, shape: [batch, {size}]}}]
  outputs: [{{name: Y, dtype: float32, shape: [batch, {size}]}}]
serving: {serving}
''')
