import VesselManifest
import VesselTensor

/// The `detections` step: a YOLO detection head's raw output into boxes, scores and classes,
/// with non-maximum suppression — Ultralytics' `non_max_suppression` (one label per box, boxes of
/// different classes kept apart unless `class_agnostic`) and torchvision's `nms`.
///
/// - `yolov8` (also v9–v11 and YOLO-World exports): `[batch, 4 + classes, anchors]`, rows
///   `cx, cy, w, h`, then one score per class.
/// - `yolov5` (and v7): `[batch, anchors, 5 + classes]`, `cx, cy, w, h, objectness`, then class
///   scores, each multiplied by the objectness.
///
/// Writes `<as>` (boxes `[batch, n, 4]` as `x1, y1, x2, y2` in the model's input pixels),
/// `<as>_scores` `[batch, n]`, `<as>_classes` int64 `[batch, n]` and `<as>_count` int64
/// `[batch]`; `n` is the largest count in the batch, the rest of each row zero (classes -1).
struct DetectionSpec: Sendable {
    enum Format: String, Sendable { case yolov8, yolov5 }
    var format: Format
    var scoreThreshold: Double
    var iouThreshold: Double
    var maxDetections: Int
    var classAgnostic: Bool

    /// Ultralytics' offset between classes, so boxes of different classes never overlap.
    static let classOffset = 7680.0
    /// Ultralytics' `max_nms`: at most this many candidates, best first, go into the suppression.
    static let maxCandidates = 30_000

    init(_ parameters: [String: Value]) throws(StepFailure) {
        guard case .string(let raw)? = parameters["format"], let format = Format(rawValue: raw) else {
            throw StepFailure("needs `format`: yolov8 ([batch, 4 + classes, anchors]) or yolov5 ([batch, anchors, 5 + classes])")
        }
        self.format = format
        func number(_ key: String, _ fallback: Double) -> Double {
            switch parameters[key] {
            case .double(let value)?: value
            case .int(let value)?: Double(value)
            default: fallback
            }
        }
        scoreThreshold = number("score_threshold", 0.25)
        iouThreshold = number("iou_threshold", 0.45)
        guard (0...1).contains(scoreThreshold), (0...1).contains(iouThreshold) else {
            throw StepFailure("`score_threshold` and `iou_threshold` must be from 0 to 1")
        }
        if case .int(let count)? = parameters["max_detections"] {
            guard count >= 1, count <= 100_000 else { throw StepFailure("`max_detections` must be from 1 to 100000") }
            maxDetections = count
        } else {
            maxDetections = 300
        }
        if case .bool(let flag)? = parameters["class_agnostic"] { classAgnostic = flag } else { classAgnostic = false }
    }

    /// The classes a head of this shape scores, when its shape says.
    func classes(of spec: TensorSpec) throws(StepFailure) -> Int? {
        guard spec.shape.count == 3, spec.dtype.isFloatingPoint else {
            throw StepFailure("decodes a rank-3 floating-point YOLO head; `\(spec.name)` is \(spec.dtype.rawValue) of rank \(spec.shape.count)")
        }
        let axis = format == .yolov8 ? 1 : 2, extra = format == .yolov8 ? 4 : 5
        guard case .fixed(let width) = spec.shape[axis] else { return nil }
        guard width > extra else { throw StepFailure("a \(format.rawValue) head has \(extra) + classes rows on axis \(axis); `\(spec.name)` has \(width)") }
        return width - extra
    }

    func run(_ tensor: Tensor) throws(StepFailure) -> (boxes: Tensor, scores: Tensor, classes: Tensor, count: Tensor) {
        guard tensor.rank == 3, tensor.dtype.isFloatingPoint else { throw StepFailure("takes a rank-3 YOLO head, got \(tensor.dtype.rawValue)\(tensor.shape)") }
        let values = tensor.doubles()
        let batch = tensor.shape[0]
        let (anchors, width) = format == .yolov8 ? (tensor.shape[2], tensor.shape[1]) : (tensor.shape[1], tensor.shape[2])
        let extra = format == .yolov8 ? 4 : 5
        guard width > extra else { throw StepFailure("the head has \(width) values per anchor; \(format.rawValue) needs \(extra) + classes") }
        let classes = width - extra
        // value(b, anchor, k): the k-th number of an anchor, whatever the layout.
        func value(_ b: Int, _ a: Int, _ k: Int) -> Double {
            format == .yolov8 ? values[(b * width + k) * anchors + a] : values[(b * anchors + a) * width + k]
        }
        var kept: [[(box: (Double, Double, Double, Double), score: Double, cls: Int)]] = []
        for b in 0..<batch {
            var candidates: [(box: (Double, Double, Double, Double), score: Double, cls: Int)] = []
            for a in 0..<anchors {
                var best = -Double.infinity, cls = 0
                if format == .yolov5 {
                    let objectness = value(b, a, 4)
                    guard objectness > scoreThreshold else { continue }
                    for c in 0..<classes {
                        let score = value(b, a, 5 + c) * objectness
                        if score > best { best = score; cls = c }
                    }
                } else {
                    for c in 0..<classes {
                        let score = value(b, a, 4 + c)
                        if score > best { best = score; cls = c }
                    }
                }
                guard best > scoreThreshold else { continue }
                let (cx, cy, w, h) = (value(b, a, 0), value(b, a, 1), value(b, a, 2), value(b, a, 3))
                candidates.append(((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), best, cls))
            }
            // Best first (equal scores keep anchor order), at most maxCandidates.
            candidates = candidates.enumerated().sorted {
                $0.element.score > $1.element.score || ($0.element.score == $1.element.score && $0.offset < $1.offset)
            }
            .prefix(Self.maxCandidates).map(\.element)
            var suppressed = [Bool](repeating: false, count: candidates.count)
            var result: [(box: (Double, Double, Double, Double), score: Double, cls: Int)] = []
            for i in candidates.indices where !suppressed[i] {
                result.append(candidates[i])
                if result.count == maxDetections { break }
                let offset = classAgnostic ? 0 : Double(candidates[i].cls) * Self.classOffset
                let a = candidates[i].box
                let (ax1, ay1, ax2, ay2) = (a.0 + offset, a.1 + offset, a.2 + offset, a.3 + offset)
                let areaA = (ax2 - ax1) * (ay2 - ay1)
                for j in (i + 1)..<candidates.count where !suppressed[j] {
                    let otherOffset = classAgnostic ? 0 : Double(candidates[j].cls) * Self.classOffset
                    let o = candidates[j].box
                    let (bx1, by1, bx2, by2) = (o.0 + otherOffset, o.1 + otherOffset, o.2 + otherOffset, o.3 + otherOffset)
                    let iw = max(0, min(ax2, bx2) - max(ax1, bx1)), ih = max(0, min(ay2, by2) - max(ay1, by1))
                    let intersection = iw * ih
                    let union = areaA + (bx2 - bx1) * (by2 - by1) - intersection
                    // torchvision: suppressed when IoU > threshold.
                    if union > 0, intersection / union > iouThreshold { suppressed[j] = true }
                }
            }
            kept.append(result)
        }
        let n = kept.map(\.count).max() ?? 0
        var boxes = [Double](repeating: 0, count: batch * n * 4), scores = [Double](repeating: 0, count: batch * n)
        var labels = [Int64](repeating: -1, count: batch * n)
        for (b, rows) in kept.enumerated() {
            for (k, row) in rows.enumerated() {
                let at = b * n + k
                (boxes[at * 4], boxes[at * 4 + 1], boxes[at * 4 + 2], boxes[at * 4 + 3]) = row.box
                scores[at] = row.score
                labels[at] = Int64(row.cls)
            }
        }
        return (
            Tensor(converting: boxes, to: tensor.dtype, shape: [batch, n, 4]), Tensor(converting: scores, to: tensor.dtype, shape: [batch, n]),
            Tensor(labels, shape: [batch, n]), Tensor(kept.map { Int64($0.count) }, shape: [batch])
        )
    }
}
