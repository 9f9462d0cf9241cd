"""Writes the ONNX backend-test node cases as model.onnx + test_data_set_N/{input,output}_K.pb.

The `onnx` wheel carries the case definitions but not the files; this materializes them, the
same way onnx's own tooling does. Usage (scripts/test.sh runs it):
    python generate_node_cases.py OUTPUT_DIR
Also writes OUTPUT_DIR/tolerances.tsv (case, rtol, atol) from each case's own tolerances.
"""
import os
import sys
import warnings

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.backend.test.case.node import collect_testcases


def value_proto(value, name):
    # Sequences, maps and optionals have their own protos; plain arrays are tensors.
    if isinstance(value, list):
        return onnx.helper.make_sequence(name, onnx.SequenceProto.TENSOR, [numpy_helper.from_array(v) for v in value])
    if isinstance(value, onnx.TensorProto):
        proto = onnx.TensorProto()
        proto.CopyFrom(value)
        proto.name = name
        return proto  # cases that build exact bit patterns (Cast) give protos directly
    if value is None or isinstance(value, dict):
        return None  # optional-absent and map values: no tensor file; the harness skips such data
    return numpy_helper.from_array(np.asarray(value), name)


def main(out):
    warnings.simplefilter("ignore")  # the case definitions overflow and divide by zero on purpose
    os.makedirs(out, exist_ok=True)
    rows = []
    for case in collect_testcases(None):
        directory = os.path.join(out, case.name)
        os.makedirs(directory, exist_ok=True)
        onnx.save(case.model, os.path.join(directory, "model.onnx"))
        for index, (inputs, outputs) in enumerate(case.data_sets or []):
            data = os.path.join(directory, f"test_data_set_{index}")
            os.makedirs(data, exist_ok=True)
            for kind, values, infos in (("input", inputs, case.model.graph.input), ("output", outputs, case.model.graph.output)):
                for k, value in enumerate(values):
                    name = infos[k].name if k < len(infos) else f"{kind}_{k}"
                    try:
                        proto = value_proto(value, name)
                    except (NotImplementedError, ValueError, TypeError, AttributeError):
                        proto = None  # values numpy_helper cannot encode (e.g. nested protos)
                    if proto is None:
                        continue
                    with open(os.path.join(data, f"{kind}_{k}.pb"), "wb") as f:
                        f.write(proto.SerializeToString())
        rows.append(f"{case.name}\t{case.rtol}\t{case.atol}")
    with open(os.path.join(out, "tolerances.tsv"), "w") as f:
        f.write("\n".join(sorted(rows)) + "\n")
    print(f"{len(rows)} node cases written to {out} (onnx {onnx.__version__})")


if __name__ == "__main__":
    main(sys.argv[1])
