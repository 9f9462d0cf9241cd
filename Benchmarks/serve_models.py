"""Helper for serve.sh: the same two models for Vessel and for MLServer.

    python serve_models.py WORK_DIR SQUEEZENET_ONNX

- iris: StandardScaler + LogisticRegression. Vessel serves the skl2onnx export (zipmap off);
  MLServer serves the joblib file with its scikit-learn runtime.
- squeezenet: the onnx wheel's light SqueezeNet. Vessel serves it natively; MLServer serves it
  with a minimal custom runtime on onnxruntime (squeezenet_runtime.py, written here).
Also writes the request bodies (JSON, one row / one image) and wrk's Lua scripts.
"""
import json
import os
import shutil
import sys

import joblib
import numpy as np
import onnx
from skl2onnx import to_onnx
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

RUNTIME = '''
import numpy as np
import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse


class SqueezeNet(MLModel):
    async def load(self) -> bool:
        options = ort.SessionOptions()
        self.session = ort.InferenceSession(self.settings.parameters.uri, options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        x = NumpyCodec.decode_input(payload.inputs[0]).astype(np.float32)
        (y,) = self.session.run(None, {self.input: x})
        return InferenceResponse(model_name=self.name, outputs=[NumpyCodec.encode_output("output", y)])
'''


def main(work, squeezenet):
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    x, y = load_iris(return_X_y=True)
    x = x.astype(np.float32)
    pipeline = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=500))]).fit(x, y)

    vessel_iris = os.path.join(work, "vessel", "iris")
    os.makedirs(vessel_iris)
    onnx.save(to_onnx(pipeline, x[:1], target_opset={"": 17, "ai.onnx.ml": 3}, options={id(pipeline.steps[-1][1]): {"zipmap": False}}),
              os.path.join(vessel_iris, "model.onnx"))
    # One bundled example, as a packed model carries: the server runs it at load (and a model
    # whose examples take microseconds answers small requests without a thread hop).
    row = x[:1]
    example = {"name": "first", "inputs": {"X": row.tolist()},
               "outputs": {"label": pipeline.predict(row).tolist(), "probabilities": pipeline.predict_proba(row).tolist()},
               "rtol": 1e-3, "atol": 1e-4}
    with open(os.path.join(vessel_iris, "vessel.yaml"), "w") as f:
        f.write("""schemaVersion: 1
name: iris
version: "1"
model: {format: onnx, file: model.onnx}
signature:
  inputs: [{name: X, dtype: float32, shape: [batch, 4]}]
  outputs: [{name: label, dtype: int64, shape: [batch]}, {name: probabilities, dtype: float32, shape: [batch, 3]}]
serving: {max_concurrency: 2, max_queue: 256}
examples: [%s]
""" % json.dumps(example))
    ml_iris = os.path.join(work, "mlserver", "iris")
    os.makedirs(ml_iris)
    joblib.dump(pipeline, os.path.join(ml_iris, "model.joblib"))
    with open(os.path.join(ml_iris, "model-settings.json"), "w") as f:
        json.dump({"name": "iris", "implementation": "mlserver_sklearn.SKLearnModel",
                   "parameters": {"uri": "./model.joblib", "version": "1"}}, f)

    vessel_squeeze = os.path.join(work, "vessel", "squeezenet")
    os.makedirs(vessel_squeeze)
    shutil.copy(squeezenet, os.path.join(vessel_squeeze, "model.onnx"))
    m = onnx.load(squeezenet)
    initialized = {i.name for i in m.graph.initializer}
    inp = next(i for i in m.graph.input if i.name not in initialized)
    out = m.graph.output[0]
    in_shape = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    out_shape = [d.dim_value for d in out.type.tensor_type.shape.dim]
    with open(os.path.join(vessel_squeeze, "vessel.yaml"), "w") as f:
        f.write(f"""schemaVersion: 1
name: squeezenet
version: "1"
model: {{format: onnx, file: model.onnx}}
signature:
  inputs: [{{name: {inp.name}, dtype: float32, shape: {in_shape}}}]
  outputs: [{{name: {out.name}, dtype: float32, shape: {out_shape}}}]
serving: {{max_concurrency: 2, max_queue: 256}}
""")
    ml_squeeze = os.path.join(work, "mlserver", "squeezenet")
    os.makedirs(ml_squeeze)
    shutil.copy(squeezenet, os.path.join(ml_squeeze, "model.onnx"))
    with open(os.path.join(ml_squeeze, "squeezenet_runtime.py"), "w") as f:
        f.write(RUNTIME)
    with open(os.path.join(ml_squeeze, "model-settings.json"), "w") as f:
        json.dump({"name": "squeezenet", "implementation": "squeezenet_runtime.SqueezeNet",
                   "parameters": {"uri": os.path.join(ml_squeeze, "model.onnx"), "version": "1"}}, f)
    with open(os.path.join(work, "mlserver", "settings.json"), "w") as f:
        json.dump({"http_port": 18091, "grpc_port": 18092, "metrics_port": 18093, "parallel_workers": 0}, f)

    rng = np.random.default_rng(1)
    image = rng.random(in_shape, dtype=np.float32)
    bodies = {
        "vessel_iris": {"inputs": [{"name": "X", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]},
        "mlserver_iris": {"inputs": [{"name": "predict", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]},
        "vessel_squeezenet": {"inputs": [{"name": inp.name, "shape": in_shape, "datatype": "FP32", "data": image.ravel().round(5).tolist()}]},
        "mlserver_squeezenet": {"inputs": [{"name": inp.name, "shape": in_shape, "datatype": "FP32", "data": image.ravel().round(5).tolist()}]},
    }
    for name, body in bodies.items():
        text = json.dumps(body)
        with open(os.path.join(work, f"{name}.json"), "w") as f:
            f.write(text)
        with open(os.path.join(work, f"{name}.lua"), "w") as f:
            f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                    f'local file = io.open("{os.path.join(work, name + ".json")}", "r")\nwrk.body = file:read("*a")\nfile:close()\n')


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
