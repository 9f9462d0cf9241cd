"""YOLO heads and what Ultralytics' `non_max_suppression` makes of them, for the `detections`
step's test: `python nms_reference.py DIR` writes DIR/<case>.head.npy and DIR/<case>.json
({"boxes": [[x1, y1, x2, y2], …] per image, "scores", "classes"}).

The reference follows ultralytics/utils/ops.py (8.3) line by line in numpy — the candidate filter,
xywh → xyxy, best class per box, sort by score, the class offset of 7680 — with torchvision's
`nms` (greedy, suppress when IoU > threshold) written out, since torch is not installed here.
"""
import json
import sys

import numpy as np

out = sys.argv[1]
rng = np.random.default_rng(5)


def head(batch, anchors, classes, v5):
    """Boxes in clusters (so suppression matters), random class scores."""
    centers = rng.uniform(50, 590, (batch, 8, 2))
    which = rng.integers(0, 8, (batch, anchors))
    cxcy = np.take_along_axis(centers, which[..., None], 1) + rng.normal(0, 6, (batch, anchors, 2))
    wh = rng.uniform(20, 120, (batch, anchors, 2))
    scores = rng.uniform(0, 1, (batch, anchors, classes)) ** 3
    if v5:
        objectness = rng.uniform(0, 1, (batch, anchors, 1))
        return np.concatenate([cxcy, wh, objectness, scores], -1).astype(np.float32)  # [b, anchors, 5 + c]
    return np.concatenate([cxcy, wh, scores], -1).transpose(0, 2, 1).astype(np.float32)  # [b, 4 + c, anchors]


def nms(boxes, scores, iou):
    order = np.argsort(-scores, kind="stable")
    keep = []
    suppressed = np.zeros(len(boxes), bool)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    for n, i in enumerate(order):
        if suppressed[i]:
            continue
        keep.append(i)
        rest = order[n + 1:]
        xx1 = np.maximum(boxes[i, 0], boxes[rest, 0]); yy1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[rest, 2]); yy2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        suppressed[rest[inter / (area[i] + area[rest] - inter) > iou]] = True
    return np.array(keep, int)


def non_max_suppression(prediction, conf_thres, iou_thres, agnostic, max_det, v5):
    prediction = prediction.astype(np.float64)
    if v5:
        prediction = prediction.copy()
        prediction[..., 5:] *= prediction[..., 4:5]
        prediction = np.delete(prediction, 4, axis=2).transpose(0, 2, 1)  # as v8: [b, 4 + c, anchors]
        xc = None
    nc = prediction.shape[1] - 4
    results = []
    for xi, x in enumerate(prediction.transpose(0, 2, 1)):
        box = np.stack([x[:, 0] - x[:, 2] / 2, x[:, 1] - x[:, 3] / 2, x[:, 0] + x[:, 2] / 2, x[:, 1] + x[:, 3] / 2], 1)
        cls = x[:, 4:4 + nc]
        conf, j = cls.max(1), cls.argmax(1)
        mask = conf > conf_thres
        if v5:
            mask &= prediction_objectness[xi] > conf_thres
        box, conf, j = box[mask], conf[mask], j[mask]
        order = np.argsort(-conf, kind="stable")[:30000]
        box, conf, j = box[order], conf[order], j[order]
        c = j[:, None] * (0 if agnostic else 7680.0)
        keep = nms(box + c, conf, iou_thres)[:max_det]
        results.append({"boxes": box[keep].tolist(), "scores": conf[keep].tolist(), "classes": j[keep].tolist()})
    return results


cases = {
    "v8": dict(batch=2, anchors=2100, classes=5, v5=False, conf=0.25, iou=0.45, agnostic=False, max_det=3000),
    "v8-agnostic": dict(batch=1, anchors=900, classes=3, v5=False, conf=0.1, iou=0.6, agnostic=True, max_det=20),
    "v5": dict(batch=2, anchors=1500, classes=4, v5=True, conf=0.3, iou=0.5, agnostic=False, max_det=100),
    "v8-empty": dict(batch=1, anchors=50, classes=2, v5=False, conf=0.999, iou=0.45, agnostic=False, max_det=300),
}
for name, case in cases.items():
    h = head(case["batch"], case["anchors"], case["classes"], case["v5"])
    prediction_objectness = h[..., 4].astype(np.float64) if case["v5"] else None
    np.save(f"{out}/{name}.head.npy", h)
    ref = non_max_suppression(h, case["conf"], case["iou"], case["agnostic"], case["max_det"], case["v5"])
    with open(f"{out}/{name}.json", "w") as f:
        json.dump({"case": case, "images": ref}, f)
    print(name, [len(r["scores"]) for r in ref])
