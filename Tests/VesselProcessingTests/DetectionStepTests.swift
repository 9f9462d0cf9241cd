import Foundation
import Testing
import VesselManifest
import VesselProcessing
import VesselTensor
import VesselTestSupport

/// The `detections` step against Ultralytics' `non_max_suppression` (Reference/nms_reference.py,
/// numpy, line by line): YOLOv8 and YOLOv5 heads with clustered boxes, class-aware and agnostic,
/// capped and not, and a head with nothing above the threshold.
@Suite("detections step")
struct DetectionStepTests {
    static let reference: Result<String, any Error> = Result {
        let directory = try TestSupport.makeTemporaryDirectory("nms-reference")
        let result = try TestSupport.run(TestSupport.python, [TestSupport.packageRoot + "/Tests/VesselProcessingTests/Reference/nms_reference.py", directory])
        guard result.status == 0 else { throw TokenizerTests.ReferenceFailed(message: result.standardError) }
        return directory
    }

    @Test("boxes, scores and classes equal the reference's, in its order; counts per image; -1 past them", arguments: ["v8", "v8-agnostic", "v5", "v8-empty"])
    func matchesUltralytics(name: String) throws {
        let directory = try Self.reference.get()
        let head = try Tensor(npy: Array(try Data(contentsOf: URL(fileURLWithPath: "\(directory)/\(name).head.npy"))))
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(directory)/\(name).json"))) as? [String: Any])
        let setup = try #require(json["case"] as? [String: Any])
        let images = try #require(json["images"] as? [[String: Any]])
        let v5 = setup["v5"] as? Bool == true
        let shape: [Dim] = [.dynamic(name: "batch")] + head.shape.dropFirst().map { Dim.fixed($0) }
        let signature = Signature(
            inputs: [TensorSpec(name: "images", dtype: .float32, shape: [.dynamic(name: "batch"), .fixed(3), .fixed(640), .fixed(640)])],
            outputs: [TensorSpec(name: "output0", dtype: .float32, shape: shape)])
        let step = ProcessingStep(
            type: "detections",
            parameters: [
                "output": .string("output0"), "format": .string(v5 ? "yolov5" : "yolov8"), "as": .string("boxes"),
                "score_threshold": .double(setup["conf"] as! Double), "iou_threshold": .double(setup["iou"] as! Double),
                "max_detections": .int(setup["max_det"] as! Int), "class_agnostic": .bool(setup["agnostic"] as! Bool)
            ])
        let plan = try ProcessingPlan(signature: signature, preprocess: [], postprocess: [step])
        #expect(plan.served.outputs.map(\.name) == ["output0", "boxes", "boxes_scores", "boxes_classes", "boxes_count"])
        let out = try plan.postprocess(["output0": head])
        let counts = try #require(out["boxes_count"]).integers()
        let n = try #require(out["boxes"]).shape[1]
        let boxes = out["boxes"]!.doubles(), scores = out["boxes_scores"]!.doubles(), classes = out["boxes_classes"]!.integers()
        #expect(counts == images.map { ($0["scores"] as! [Double]).count })
        for (b, image) in images.enumerated() {
            let wantBoxes = image["boxes"] as! [[Double]], wantScores = image["scores"] as! [Double], wantClasses = image["classes"] as! [Int]
            for k in 0..<wantScores.count {
                let at = b * n + k
                #expect(classes[at] == wantClasses[k], "\(name) image \(b) box \(k)")
                #expect(abs(scores[at] - wantScores[k]) < 1e-5, "\(name) image \(b) box \(k)")
                for c in 0..<4 { #expect(abs(boxes[at * 4 + c] - wantBoxes[k][c]) < 1e-3, "\(name) image \(b) box \(k)") }
                if classes[at] != wantClasses[k] { return }
            }
            for k in wantScores.count..<n { #expect(classes[b * n + k] == -1) }
        }
    }

    @Test("a head that is not YOLO-shaped, or a format the step does not know, is refused when the plan compiles")
    func refused() {
        let signature = Signature(
            inputs: [TensorSpec(name: "x", dtype: .float32, shape: [.dynamic(name: "batch"), .fixed(4)])],
            outputs: [
                TensorSpec(name: "y", dtype: .float32, shape: [.dynamic(name: "batch"), .fixed(4), .fixed(100)]),
                TensorSpec(name: "z", dtype: .float32, shape: [.dynamic(name: "batch"), .fixed(10)])
            ])
        for (parameters, message) in [
            (["output": Value.string("y"), "format": .string("yolov8")], "4 + classes"),
            (["output": .string("z"), "format": .string("yolov8")], "rank-3"),
            (["output": .string("y"), "format": .string("detr")], "needs `format`"),
            (["output": .string("y"), "format": .string("yolov5"), "iou_threshold": .double(2)], "from 0 to 1")
        ] {
            #expect {
                _ = try ProcessingPlan(signature: signature, preprocess: [], postprocess: [ProcessingStep(type: "detections", parameters: parameters)])
            } throws: { "\($0)".contains(message) }
        }
    }
}
