#!/usr/bin/env bash
# The `image` step beside Pillow + numpy, same run, one thread each: a 640×480 JPEG to a
# normalized 1×3×224×224 float32 tensor, torchvision's Resize(256) + CenterCrop(224) with
# bilinear resampling, then ImageNet mean/std. Vessel is timed with `vessel predict --repeat`
# on a model that is one Identity (so the time is the pipeline's); Pillow + numpy in one Python
# process over the same bytes. Rounds alternate; the better p50 of each tool is kept.
# Usage: Benchmarks/image-preprocess.sh [REPETITIONS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
repetitions="${1:-300}"
rounds="${2:-3}"
work=".build/bench-image"
rm -rf "$work" && mkdir -p "$work/model"
scripts/onnx-test-data.sh >/dev/null   # the test venv: numpy, onnx, Pillow 12
python=".build/venv/bin/python"
swift build -c release --product vessel >/dev/null
vessel=".build/release/vessel"

"$python" - "$work" <<'PY'
import sys, numpy as np, onnx
from onnx import helper, TensorProto
from PIL import Image
work = sys.argv[1]
rng = np.random.default_rng(3)
y, x = np.mgrid[0:480, 0:640].astype(np.float64)
photo = np.stack([128 + 100 * np.sin(x / 23) * np.cos(y / 17), 255 * x / 639, 127 + 120 * np.sin((x + y) / 40)], -1)
photo = np.clip(photo + rng.normal(0, 10, photo.shape), 0, 255).astype(np.uint8)
Image.fromarray(photo).save(f"{work}/photo.jpg", quality=90)
graph = helper.make_graph([helper.make_node("Identity", ["image"], ["pixels"])], "identity",
                          [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 224, 224])],
                          [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["batch", 3, 224, 224])])
onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), f"{work}/model/model.onnx")
open(f"{work}/model/vessel.yaml", "w").write("""schemaVersion: 1
name: preprocess
version: 1.0.0
model: {format: onnx, file: model.onnx}
signature:
  inputs: [{name: image, dtype: float32, shape: [batch, 3, 224, 224]}]
  outputs: [{name: pixels, dtype: float32, shape: [batch, 3, 224, 224]}]
preprocess:
  - {type: image, input: image, size: [224, 224], resize: center_crop, shorter_side: 256, filter: bilinear}
  - {type: normalize, input: image, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]}
""")
PY

pillow() {
  "$python" - "$work/photo.jpg" "$repetitions" <<'PY'
import io, sys, time, numpy as np
from PIL import Image
data = open(sys.argv[1], "rb").read()
mean = np.array([0.485, 0.456, 0.406], np.float32); std = np.array([0.229, 0.224, 0.225], np.float32)
def run():
    im = Image.open(io.BytesIO(data)).convert("RGB")
    w, h = im.size
    nw, nh = (256, int(256 * h / w)) if w <= h else (int(256 * w / h), 256)
    im = im.resize((nw, nh), Image.BILINEAR)
    left, top = int(round((nw - 224) / 2.0)), int(round((nh - 224) / 2.0))
    a = np.asarray(im.crop((left, top, left + 224, top + 224)), dtype=np.float32) / np.float32(255)
    return np.ascontiguousarray(((a - mean) / std).transpose(2, 0, 1)[None])
run()
times = []
for _ in range(int(sys.argv[2])):
    t = time.perf_counter(); run(); times.append((time.perf_counter() - t) * 1000)
times.sort()
print(f"{times[len(times) // 2]:.3f} {times[0]:.3f}")
PY
}

vessel_p50() {
  "$vessel" predict "$work/model" -i "image=@$work/photo.jpg" --repeat "$repetitions" 2>&1 >/dev/null \
    | sed -E 's/.*p50 ([0-9.]+) ms.*min ([0-9.]+) ms.*/\1 \2/'
}

# Agreement first: the same tensor within one 8-bit level (divided by std).
"$vessel" predict "$work/model" -i "image=@$work/photo.jpg" --json > "$work/vessel.json"
"$python" - "$work" <<'PY'
import io, json, sys, numpy as np
from PIL import Image
work = sys.argv[1]
got = np.array(json.load(open(f"{work}/vessel.json"))["outputs"][0]["data"], np.float32).reshape(1, 3, 224, 224)
im = Image.open(f"{work}/photo.jpg").convert("RGB").resize((341, 256), Image.BILINEAR).crop((58, 16, 282, 240))
a = np.asarray(im, dtype=np.float32) / np.float32(255)
want = ((a - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]).transpose(2, 0, 1)[None]
print(f"max difference from Pillow + numpy: {np.abs(got - want).max() * 0.229 * 255:.3f} levels")
PY

best_v=999999; best_p=999999
echo "| round | tool | p50 ms | min ms |"
echo "|---|---|---|---|"
for round in $(seq 1 "$rounds"); do
  for tool in vessel pillow; do
    if [ "$tool" = vessel ]; then read -r p50 min < <(vessel_p50); else read -r p50 min < <(pillow); fi
    echo "| $round | $tool | $p50 | $min |"
    if [ "$tool" = vessel ]; then best_v=$(python3 -c "print(min($best_v, $p50))"); else best_p=$(python3 -c "print(min($best_p, $p50))"); fi
  done
done
echo
echo "best p50: vessel $best_v ms, Pillow + numpy $best_p ms; Pillow / vessel = $(python3 -c "print(round($best_p / $best_v, 2))")×"
