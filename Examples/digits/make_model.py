"""Regenerates model.onnx, the example images and the expected outputs in vessel.yaml.

The model: a logistic regression trained on scikit-learn's bundled digits data set (1,797 8×8
greyscale scans, 0–16 ink), exported with skl2onnx behind an ONNX Flatten so it takes images
[N, 1, 8, 8]. The examples are held-out digits drawn dark on white at 32×32, as PNG and JPEG,
and their expected outputs come from onnxruntime fed by the Python pipeline vessel.yaml
declares (Pillow: greyscale, nearest resize to 8×8, /255, inverted) — so `vessel test` checks
Vessel's processing and runtime against Pillow + onnxruntime end to end.

Run from this directory with scikit-learn, skl2onnx, onnxruntime and Pillow installed (a venv):
    python make_model.py
Vessel itself never needs Python; this script only makes the bundled fixture.
"""
import re
import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, TensorProto
from PIL import Image
from skl2onnx import to_onnx
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

digits = load_digits()
X = (digits.data / 16.0).astype(np.float32)
y = digits.target
train = np.arange(len(X)) % 5 != 0  # every fifth digit held out
model = LogisticRegression(max_iter=2000, random_state=0).fit(X[train], y[train])
print("held-out accuracy", (model.predict(X[~train]) == y[~train]).mean())

classifier = to_onnx(model, X[:1], target_opset=17, options={id(model): {"zipmap": False}})
flatten = helper.make_graph(
    [helper.make_node("Flatten", ["image"], ["pixels"], axis=1)], "flatten",
    [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, 8, 8])],
    [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["batch", 64])],
)
flatten_model = helper.make_model(flatten, opset_imports=classifier.opset_import, ir_version=classifier.ir_version)
merged = onnx.compose.merge_models(flatten_model, classifier, io_map=[("pixels", classifier.graph.input[0].name)])
merged.producer_name, merged.producer_version, merged.doc_string = "make_model.py", "", ""
onnx.checker.check_model(merged)
with open("model.onnx", "wb") as f:
    f.write(merged.SerializeToString())

with open("labels.txt", "w") as f:
    f.write("".join(f"{name}\n" for name in ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]))

# Held-out digits the model gets right, drawn as a client would send them.
held = np.flatnonzero(~train)
chosen = []
for digit in (3, 7, 9):
    index = next(i for i in held if y[i] == digit and model.predict(X[i:i + 1])[0] == digit)
    chosen.append((digit, index))
session = ort.InferenceSession("model.onnx")
examples = []
for k, (digit, index) in enumerate(chosen):
    ink = digits.images[index] / 16.0
    picture = Image.fromarray(np.round(255 * (1 - ink)).astype(np.uint8), "L").resize((32, 32), Image.NEAREST)
    path = f"examples/{digit}.{'jpg' if k == 2 else 'png'}"
    picture.convert("RGB").save(path, **({"quality": 95} if path.endswith(".jpg") else {}))
    # The declared pipeline, in Pillow: greyscale, nearest to 8×8, /255, then 1 − x.
    seen = np.asarray(Image.open(path).convert("L").resize((8, 8), Image.NEAREST), dtype=np.float32) / np.float32(255)
    seen = (np.float32(1) - seen)[None, None]
    label, probabilities = session.run(None, {"image": seen})
    examples.append((digit, path, int(label[0]), probabilities[0]))

yaml = open("vessel.yaml").read()
block = "examples:\n"
for digit, path, label, probabilities in examples:
    block += f"  - name: digit-{digit}\n    inputs:\n      image: {{file: {path}}}\n    outputs:\n"
    block += f"      label: [{label}]\n      digit: [{['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'][label]}]\n"
    block += "      probabilities: [[" + ", ".join(f"{p:.6g}" for p in probabilities) + "]]\n"
    block += "    rtol: 1.0e-4\n    atol: 1.0e-5\n"
yaml = re.sub(r"examples:\n(?:  .*\n|    .*\n)*", block, yaml)
open("vessel.yaml", "w").write(yaml)
