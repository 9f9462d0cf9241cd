#!/usr/bin/env bash
# Image requests end to end, same machine, same run: `vessel serve` with the `image` and
# `normalize` steps against a FastAPI + Pillow + numpy + onnxruntime server written the way
# people write one (uvicorn, two workers), both serving the same small ONNX classifier
# (GlobalAveragePool → Gemm → Softmax, so the time is the request, the decode and the resize,
# not the network). Each request: a 640×480 JPEG as base64 in JSON; torchvision's Resize(256) +
# CenterCrop(224), bilinear, ImageNet mean/std; ten class probabilities back. Requests/s and
# p50/p99 with wrk at concurrency 1 and 4, alternating tools, the better of two rounds each.
#
#   Benchmarks/image-serve.sh [SECONDS_PER_RUN]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
swift build -c release --product vessel >/dev/null
vessel="$PWD/.build/release/vessel"
venv="$PWD/.build/venv-image-bench"
if ! "$venv/bin/python" -c "import fastapi, uvicorn, PIL, onnxruntime, numpy" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check fastapi uvicorn pillow==12.3.0 numpy==2.4.6 onnxruntime==1.32.0 onnx==1.23.2
fi
work="$PWD/Benchmarks/work/image-serve"
rm -rf "$work" && mkdir -p "$work/model"
"$venv/bin/python" - "$work" <<'PY'
import base64, json, sys, numpy as np, onnx
from onnx import helper, numpy_helper, TensorProto
from PIL import Image
work = sys.argv[1]
rng = np.random.default_rng(3)
y, x = np.mgrid[0:480, 0:640].astype(np.float64)
photo = np.stack([128 + 100 * np.sin(x / 23) * np.cos(y / 17), 255 * x / 639, 127 + 120 * np.sin((x + y) / 40)], -1)
Image.fromarray(np.clip(photo + rng.normal(0, 10, photo.shape), 0, 255).astype(np.uint8)).save(f"{work}/photo.jpg", quality=90)
w = numpy_helper.from_array(rng.normal(0, 1, (3, 10)).astype(np.float32), "w")
b = numpy_helper.from_array(np.zeros(10, np.float32), "b")
graph = helper.make_graph([helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
                           helper.make_node("Flatten", ["pooled"], ["flat"]),
                           helper.make_node("Gemm", ["flat", "w", "b"], ["logits"]),
                           helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1)], "classifier",
                          [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 224, 224])],
                          [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 10])], [w, b])
onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), f"{work}/model/model.onnx")
open(f"{work}/model/vessel.yaml", "w").write("""schemaVersion: 1
name: classifier
version: 1.0.0
model: {format: onnx, file: model.onnx}
signature:
  inputs: [{name: image, dtype: float32, shape: [batch, 3, 224, 224]}]
  outputs: [{name: probabilities, dtype: float32, shape: [batch, 10]}]
preprocess:
  - {type: image, input: image, size: [224, 224], resize: center_crop, shorter_side: 256, filter: bilinear}
  - {type: normalize, input: image, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]}
serving: {max_concurrency: 2}
""")
encoded = base64.b64encode(open(f"{work}/photo.jpg", "rb").read()).decode()
open(f"{work}/oip.lua", "w").write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = \'%s\'\n' % json.dumps(
    {"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "parameters": {"content_type": "base64"}, "data": [encoded]}]}))
open(f"{work}/fastapi.lua", "w").write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = \'%s\'\n' % json.dumps(
    {"image": encoded}))
open(f"{work}/server.py", "w").write('''
import base64, io, numpy as np, onnxruntime as ort
from fastapi import FastAPI
from PIL import Image
from pydantic import BaseModel
options = ort.SessionOptions(); options.intra_op_num_threads = 1
session = ort.InferenceSession("model/model.onnx", options, providers=["CPUExecutionProvider"])
mean = np.array([0.485, 0.456, 0.406], np.float32); std = np.array([0.229, 0.224, 0.225], np.float32)
app = FastAPI()
class Request(BaseModel):
    image: str
@app.get("/health")
def health():
    return {"ok": True}
@app.post("/predict")
def predict(request: Request):
    im = Image.open(io.BytesIO(base64.b64decode(request.image))).convert("RGB")
    w, h = im.size
    nw, nh = (256, int(256 * h / w)) if w <= h else (int(256 * w / h), 256)
    im = im.resize((nw, nh), Image.BILINEAR)
    left, top = int(round((nw - 224) / 2.0)), int(round((nh - 224) / 2.0))
    a = np.asarray(im.crop((left, top, left + 224, top + 224)), dtype=np.float32) / np.float32(255)
    x = np.ascontiguousarray(((a - mean) / std).transpose(2, 0, 1)[None])
    return {"probabilities": session.run(None, {"image": x})[0].tolist()}
''')
PY

source Benchmarks/common.sh
export VESSEL_HOME="$work/home"
start=$(now); "$vessel" serve "$work/model" --port 18290 --no-log > "$work/vessel.log" 2>&1 & vessel_pid=$!
vessel_ready=$(wait_ready "$start" http://127.0.0.1:18290/v2/health/ready)
start=$(now)
(cd "$work" && exec "$venv/bin/uvicorn" server:app --host 127.0.0.1 --port 18291 --workers 2 --log-level warning > "$work/fastapi.log" 2>&1) &
fastapi_pid=$!
fastapi_ready=$(wait_ready "$start" http://127.0.0.1:18291/health)
trap 'kill $vessel_pid $fastapi_pid 2>/dev/null || true; pkill -f "uvicorn server:app --host 127.0.0.1 --port 18291" || true' EXIT

# The same answer from both first.
curl -s -H 'Content-Type: application/json' --data-binary @<(sed -n "s/^wrk.body = '\(.*\)'$/\1/p" "$work/oip.lua") \
  http://127.0.0.1:18290/v2/models/classifier/infer > "$work/vessel.json"
curl -s -H 'Content-Type: application/json' --data-binary @<(sed -n "s/^wrk.body = '\(.*\)'$/\1/p" "$work/fastapi.lua") \
  http://127.0.0.1:18291/predict > "$work/fastapi.json"
python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
v = json.load(open(f"{work}/vessel.json"))["outputs"][0]["data"]
f = json.load(open(f"{work}/fastapi.json"))["probabilities"][0]
print("largest difference between the two servers' probabilities: %.2e" % max(abs(a - b) for a, b in zip(v, f)))
PY

echo "Start to ready: vessel ${vessel_ready} s, FastAPI (uvicorn, 2 workers) ${fastapi_ready} s."
echo
printf "| concurrency | vessel req/s | p50 ms | p99 ms | FastAPI + Pillow + onnxruntime req/s | p50 ms | p99 ms | ratio | errors |\n|---|---|---|---|---|---|---|---|---|\n"
for connections in 1 4; do
  read -r vr vp50 vp99 ve <<<"$(wrk_best http://127.0.0.1:18290/v2/models/classifier/infer "$work/oip.lua" $connections "$seconds")"
  read -r fr fp50 fp99 fe <<<"$(wrk_best http://127.0.0.1:18291/predict "$work/fastapi.lua" $connections "$seconds")"
  echo "| $connections | $vr | $vp50 | $vp99 | $fr | $fp50 | $fp99 | $(python3 -c "print(f'{$vr / max($fr, 1e-9):.1f}')")x | $ve / $fe |"
done
"$venv/bin/python" -c "import fastapi, PIL, onnxruntime, numpy; print('fastapi', fastapi.__version__, 'Pillow', PIL.__version__, 'onnxruntime', onnxruntime.__version__, 'numpy', numpy.__version__)"
