"""Counts the ONNX backend node cases onnxruntime passes, judged as NodeConformanceTests judges
Vessel: each case's own rtol/atol (tolerances.tsv), every output of every data set.

    .build/venv-bench/bin/python Benchmarks/ort_node_suite.py .build/onnx-node-cases
"""
import glob
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

ort.set_default_logger_severity(4)
cases = sys.argv[1] if len(sys.argv) > 1 else ".build/onnx-node-cases"
tolerances = {}
for line in open(os.path.join(cases, "tolerances.tsv")):
    name, rtol, atol = line.rstrip("\n").split("\t")
    tolerances[name] = (float(rtol), float(atol))


def read(path):
    tensor = onnx.TensorProto()
    with open(path, "rb") as f:
        tensor.ParseFromString(f.read())
    return numpy_helper.to_array(tensor)


passed = failed = unloadable = 0
for directory in sorted(glob.glob(os.path.join(cases, "test_*"))):
    name = os.path.basename(directory)
    try:
        session = ort.InferenceSession(os.path.join(directory, "model.onnx"), providers=["CPUExecutionProvider"])
    except Exception:
        unloadable += 1
        continue
    rtol, atol = tolerances.get(name, (1e-3, 1e-7))
    ok = True
    try:
        for data in sorted(glob.glob(os.path.join(directory, "test_data_set_*"))):
            feeds = {}
            for k, info in enumerate(session.get_inputs()):
                path = os.path.join(data, f"input_{k}.pb")
                if os.path.exists(path):
                    feeds[info.name] = read(path)
            outputs = session.run(None, feeds)
            for k, value in enumerate(outputs):
                path = os.path.join(data, f"output_{k}.pb")
                if not os.path.exists(path):
                    continue
                expected = read(path)
                if expected.dtype == object or np.asarray(value).dtype == object:
                    ok = ok and np.array_equal(np.asarray(value, dtype=object), expected)
                else:
                    ok = ok and np.asarray(value).shape == expected.shape and np.allclose(
                        np.asarray(value).astype(np.float64), expected.astype(np.float64), rtol=rtol, atol=atol, equal_nan=True)
    except Exception:
        ok = False
    passed += ok
    failed += not ok
print(f"onnxruntime {ort.__version__}: {passed} passed, {failed} failed, {unloadable} not loadable, of {passed + failed + unloadable}")
