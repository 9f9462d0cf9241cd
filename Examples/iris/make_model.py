"""Regenerates model.onnx and the expected outputs in vessel.yaml's examples.

Run from this directory with scikit-learn, skl2onnx and onnxruntime installed (a venv):
    python make_model.py
Vessel itself never needs Python; this script only makes the bundled fixture.
"""
import numpy as np
import onnxruntime as ort
from skl2onnx import to_onnx
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

X, y = load_iris(return_X_y=True)
X = X.astype(np.float32)
pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, random_state=0)).fit(X, y)
onnx_model = to_onnx(
    pipeline, X[:1], target_opset=17,
    options={id(pipeline.steps[-1][1]): {"zipmap": False}},
)
# Stable bytes: no producer version that changes with the installed skl2onnx.
onnx_model.producer_version = ""
onnx_model.doc_string = ""
with open("model.onnx", "wb") as f:
    f.write(onnx_model.SerializeToString())

session = ort.InferenceSession("model.onnx")
names = [i.name for i in session.get_inputs()]
samples = X[[0, 50, 100]]
labels, probabilities = session.run(None, {names[0]: samples})
print("input:", names, "outputs:", [o.name for o in session.get_outputs()])
for row, label, prob in zip(samples.tolist(), labels.tolist(), probabilities.tolist()):
    print(row, label, [round(p, 6) for p in prob])
