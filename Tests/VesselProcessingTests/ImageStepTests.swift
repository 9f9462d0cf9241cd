import Foundation
import Testing
import VesselManifest
import VesselProcessing
import VesselTensor
import VesselTestSupport

/// The `image` step against its Python reference: Pillow + numpy on the same bytes
/// (Reference/pillow_reference.py), for every filter, fit, colour and layout, on JPEGs (4:2:0,
/// 4:4:4, progressive, greyscale, EXIF-rotated), PNGs (RGB, RGBA, palette, grey, grey+alpha) and
/// WebPs (lossy, lossless with alpha).
@Suite("image step")
struct ImageStepTests {
    /// The reference images and tensors, written once per test process.
    static let reference: Result<String, any Error> = Result {
        let directory = try TestSupport.makeTemporaryDirectory("pillow-reference")
        let script = TestSupport.packageRoot + "/Tests/VesselProcessingTests/Reference/pillow_reference.py"
        let result = try TestSupport.run(TestSupport.python, [script, directory])
        guard result.status == 0 else { throw ReferenceFailed(message: result.standardError) }
        return directory
    }

    struct ReferenceFailed: Error { var message: String }

    static func plan(
        size: (Int, Int), resize: String, filter: String, color: String, shorter: Int, layout: String, scale: Double,
        pad: Int, maxPixels: Int? = nil
    ) throws -> ProcessingPlan {
        let channels = color == "gray" ? 1 : 3
        let shape: [Dim] =
            layout == "NCHW"
            ? [.dynamic(name: "batch"), .fixed(channels), .fixed(size.0), .fixed(size.1)]
            : [.dynamic(name: "batch"), .fixed(size.0), .fixed(size.1), .fixed(channels)]
        var parameters: [String: Value] = [
            "input": .string("image"), "size": .array([.int(size.0), .int(size.1)]), "resize": .string(resize),
            "filter": .string(filter), "color": .string(color), "layout": .string(layout), "scale": .double(scale)
        ]
        if resize == "center_crop", shorter > 0 { parameters["shorter_side"] = .int(shorter) }
        if resize == "letterbox" { parameters["pad"] = .int(pad) }
        let signature = Signature(
            inputs: [TensorSpec(name: "image", dtype: .float32, shape: shape)],
            outputs: [TensorSpec(name: "y", dtype: .float32, shape: [.dynamic(name: "batch")])])
        return try ProcessingPlan(
            signature: signature, preprocess: [ProcessingStep(type: "image", parameters: parameters)], postprocess: [],
            maxImagePixels: maxPixels)
    }

    static func cases() throws -> [[String]] {
        let directory = try reference.get()
        return try String(contentsOfFile: directory + "/cases.tsv", encoding: .utf8).split(separator: "\n").map { $0.components(separatedBy: "\t") }
    }

    @Test("every case equals Pillow + numpy: the same 8-bit pixels, scaled")
    func matchesPillow() throws {
        let directory = try Self.reference.get()
        let cases = try Self.cases()
        #expect(cases.count > 80)
        var exact = 0
        for row in cases {
            let (index, file) = (row[0], row[1])
            let plan = try Self.plan(
                size: (Int(row[2])!, Int(row[3])!), resize: row[4], filter: row[5], color: row[6], shorter: Int(row[7])!,
                layout: row[8], scale: Double(row[9])!, pad: Int(row[10])!)
            let bytes = try Data(contentsOf: URL(fileURLWithPath: directory + "/" + file))
            // Sent as a client would: a data URI in JSON.
            let sent = Tensor(strings: [BytesElement.dataURI(Array(bytes), mediaType: "image/*")], shape: [1])
            let got = try plan.preprocess(["image": sent])["image"]!
            let want = try Tensor(npy: Array(try Data(contentsOf: URL(fileURLWithPath: "\(directory)/case\(index).npy"))))
            #expect(got.shape == want.shape, "case \(index) \(row)")
            guard got.shape == want.shape else { continue }
            let a = got.scalars(as: Float.self), b = want.scalars(as: Float.self)
            let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
            let unit = Float(Double(row[9])!)
            #expect(worst <= unit * 1.0001, "case \(index) \(row.joined(separator: " ")): off by \(worst / unit) levels")
            if worst <= unit * 1e-3 { exact += 1 }
        }
        // Bit-exact is the aim (same algorithm, same fixed point); a level of JPEG IDCT
        // difference between libjpeg-turbo builds is the tolerance.
        #expect(exact * 10 >= cases.count * 9, "\(exact) of \(cases.count) cases bit-exact")
    }

    @Test("a batch of images in one tensor gives each its own slice; raw bytes, bare base64 and data URIs are the same image")
    func batchAndEncodings() throws {
        let directory = try Self.reference.get()
        let plan = try Self.plan(size: (8, 8), resize: "stretch", filter: "bilinear", color: "rgb", shorter: 0, layout: "NCHW", scale: 1, pad: 0)
        let jpeg = Array(try Data(contentsOf: URL(fileURLWithPath: directory + "/photo420.jpg")))
        let png = Array(try Data(contentsOf: URL(fileURLWithPath: directory + "/rgb.png")))
        let one = try plan.preprocess(["image": Tensor(strings: [BytesElement.string(png)], shape: [1])])["image"]!
        let batch = try plan.preprocess(["image": Tensor(strings: [Base64.encode(jpeg), BytesElement.dataURI(png)], shape: [2])])["image"]!
        #expect(batch.shape == [2, 3, 8, 8])
        #expect(Array(batch.scalars(as: Float.self)[192...]) == one.scalars(as: Float.self))
    }

    @Test(
        "hostile images are refused with a message naming the input and element, before decoding a bomb",
        arguments: [
            ("bomb.png", "30000×30000 pixels, over serving.max_image_pixels"),
            ("half.jpg", "is not a complete JPEG"),
            ("half.png", "PNG"),
            ("empty.png", "PNG"),
            ("text.txt", "is not a JPEG, PNG or WebP image")
        ])
    func hostile(file: String, message: String) throws {
        let directory = try Self.reference.get()
        let plan = try Self.plan(size: (8, 8), resize: "stretch", filter: "bilinear", color: "rgb", shorter: 0, layout: "NCHW", scale: 1, pad: 0)
        let good = Array(try Data(contentsOf: URL(fileURLWithPath: directory + "/rgb.png")))
        let bad = Array(try Data(contentsOf: URL(fileURLWithPath: directory + "/" + file)))
        #expect {
            _ = try plan.preprocess(["image": Tensor(strings: [BytesElement.string(good), BytesElement.string(bad)], shape: [2])])
        } throws: { error in
            let text = "\(error)"
            return text.contains("input `image` element 1") && text.contains(message) && text.hasPrefix("preprocess step 1 (`image`)")
        }
    }

    @Test("serving.max_image_pixels is the bound: an image over it is refused, one under it decodes")
    func pixelBound() throws {
        let directory = try Self.reference.get()
        let png = Array(try Data(contentsOf: URL(fileURLWithPath: directory + "/rgb.png")))  // 97×64
        let tight = try Self.plan(
            size: (8, 8), resize: "stretch", filter: "bilinear", color: "rgb", shorter: 0, layout: "NCHW", scale: 1, pad: 0,
            maxPixels: 97 * 64 - 1)
        #expect(throws: ProcessingError.self) { try tight.preprocess(["image": Tensor(strings: [BytesElement.string(png)], shape: [1])]) }
        let exact = try Self.plan(
            size: (8, 8), resize: "stretch", filter: "bilinear", color: "rgb", shorter: 0, layout: "NCHW", scale: 1, pad: 0,
            maxPixels: 97 * 64)
        _ = try exact.preprocess(["image": Tensor(strings: [BytesElement.string(png)], shape: [1])])
    }

    @Test("the served input is a list of encoded images; a model that does not take what the step writes is refused")
    func servedSignature() throws {
        let plan = try Self.plan(size: (8, 8), resize: "stretch", filter: "bilinear", color: "rgb", shorter: 0, layout: "NCHW", scale: 1, pad: 0)
        #expect(plan.served.inputs[0].dtype == .string && plan.served.inputs[0].shape == [.dynamic(name: "batch")])
        let wrong = Signature(
            inputs: [TensorSpec(name: "image", dtype: .float32, shape: [.dynamic(name: "batch"), .fixed(3), .fixed(224), .fixed(224)])],
            outputs: [])
        #expect {
            _ = try ProcessingPlan(
                signature: wrong,
                preprocess: [
                    ProcessingStep(
                        type: "image",
                        parameters: [
                            "input": .string("image"), "size": .array([.int(8), .int(8)])
                        ])
                ], postprocess: [])
        } throws: { "\($0)".contains("writes images of shape") }
    }
}
