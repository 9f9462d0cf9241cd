"""Helper for classic-ml.sh: trains the benchmark models, converts them with skl2onnx, and writes
input files (one row, and a batch of 1000 rows).

    python classic_ml_models.py WORK_DIR
"""
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper
from skl2onnx import to_onnx
from sklearn.datasets import make_classification
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler


def main(work):
    os.makedirs(work, exist_ok=True)
    x, y = make_classification(n_samples=5000, n_features=20, n_informative=12, n_classes=3, random_state=1)
    x = x.astype(np.float32)
    models = {
        "random_forest": RandomForestClassifier(n_estimators=100, max_depth=12, random_state=2),
        "gradient_boosting_510": GradientBoostingClassifier(n_estimators=170, max_depth=3, random_state=3),
        "logistic_pipeline": Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=1000))]),
    }
    for name, model in models.items():
        model.fit(x, y)
        onnx_model = to_onnx(model, x[:1], target_opset={"": 17, "ai.onnx.ml": 3}, options={id(model): {"zipmap": False}}
                             if not isinstance(model, Pipeline) else {id(model.steps[-1][1]): {"zipmap": False}})
        onnx.save(onnx_model, os.path.join(work, f"{name}.onnx"))
        nodes = sum(len(a.ints) for n in onnx_model.graph.node for a in n.attribute if a.name == "nodes_nodeids")
        print(f"{name}: {len(onnx_model.SerializeToString()) / 1e6:.1f} MB, {nodes} tree nodes")
    # A model that only copies its input: the per-call cost of the Python binding, to read the
    # per-row numbers with.
    graph = helper.make_graph([helper.make_node("Identity", ["X"], ["Y"])], "identity",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 20])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 20])])
    identity = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    identity.ir_version = 8
    onnx.save(identity, os.path.join(work, "identity.onnx"))
    rng = np.random.default_rng(4)
    for rows in (1, 1000):
        data = x[rng.integers(0, len(x), rows)] + rng.normal(0, 0.1, (rows, 20)).astype(np.float32)
        path = os.path.join(work, f"rows{rows}.npy")
        np.save(path, data.astype(np.float32))
        with open(os.path.join(work, f"rows{rows}.inputs"), "w") as f:
            json.dump({"X": path}, f)


if __name__ == "__main__":
    main(sys.argv[1])
