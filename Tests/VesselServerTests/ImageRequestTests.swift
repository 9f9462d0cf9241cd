import Foundation
import Testing
@testable import VesselServer
import VesselTensor
import VesselTestSupport

/// The bundled digits model served: pictures in, digits out, over every way OIP v2 carries bytes.
@Suite("image requests")
struct ImageRequestTests {
    static let digits = TestSupport.packageRoot + "/Examples/digits"

    static func file(_ name: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: digits + "/examples/" + name))) }

    func digit(_ response: LoopbackClient.Response) -> String? {
        let outputs = jsonObject(response)["outputs"] as? [[String: Any]] ?? []
        return (outputs.first { $0["name"] as? String == "digit" }?["data"] as? [String])?.first
    }

    @Test("a PNG as a data URI, a JPEG as base64 with content_type, a PNG as binary BYTES, and a batch of two all get their digit")
    func encodings() async throws {
        let running = try await RunningServer.start([Self.digits])
        defer { Task { await running.stop() } }
        let seven = try Self.file("7.png"), nine = try Self.file("9.jpg"), three = try Self.file("3.png")

        let uri = try await running.infer(
            #"{"inputs":[{"name":"image","shape":[1],"datatype":"BYTES","data":["\#(BytesElement.dataURI(seven, mediaType: "image/png"))"]}]}"#, model: "digits"
        )
        #expect(uri.status == 200 && digit(uri) == "seven", "\(uri.text)")

        let base64 = try await running.infer(
            #"{"inputs":[{"name":"image","shape":[1],"datatype":"BYTES","parameters":{"content_type":"base64"},"data":["\#(Base64.encode(nine))"]}]}"#,
            model: "digits")
        #expect(base64.status == 200 && digit(base64) == "nine", "\(base64.text)")

        // Binary tensor data: each BYTES element a 4-byte little-endian length, then the bytes.
        let tail: [UInt8] = withUnsafeBytes(of: UInt32(three.count).littleEndian, Array.init) + three
        let header = #"{"inputs":[{"name":"image","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":\#(tail.count)}}]}"#
        let binary = try await running.request(
            "POST", "/v2/models/digits/infer", headers: ["Inference-Header-Content-Length": String(header.utf8.count)],
            body: Array(header.utf8) + tail)
        #expect(binary.status == 200 && digit(binary) == "three", "\(binary.text)")

        let batch = try await running.infer(
            #"{"inputs":[{"name":"image","shape":[2],"datatype":"BYTES","data":["\#(BytesElement.dataURI(three))","\#(BytesElement.dataURI(seven))"]}]}"#,
            model: "digits")
        let outputs = jsonObject(batch)["outputs"] as? [[String: Any]] ?? []
        #expect((outputs.first { $0["name"] as? String == "digit" }?["data"] as? [String]) == ["three", "seven"], "\(batch.text)")

        // Cog's API (one item, a data URI) and MLflow's (a list of items) give the same digit.
        let cog = try await running.request(
            "POST", "/predictions", headers: ["Content-Type": "application/json"],
            body: Array(#"{"input":{"image":"\#(BytesElement.dataURI(seven, mediaType: "image/png"))"}}"#.utf8))
        let cogOutput = jsonObject(cog)["output"] as? [String: Any]
        #expect(cog.status == 200 && cogOutput?["digit"] as? String == "seven" && cogOutput?["label"] as? Int == 7, "\(cog.text)")
        let mlflow = try await running.request(
            "POST", "/invocations", headers: ["Content-Type": "application/json"],
            body: Array(#"{"inputs":{"image":["\#(BytesElement.dataURI(nine))"]}}"#.utf8))
        let predictions = jsonObject(mlflow)["predictions"] as? [String: Any]
        #expect(mlflow.status == 200 && predictions?["digit"] as? [String] == ["nine"], "\(mlflow.text)")

        // The served signature: BYTES in, the digit's name out.
        let metadata = jsonObject(try await running.request("GET", "/v2/models/digits"))
        #expect((metadata["inputs"] as? [[String: Any]])?.first?["datatype"] as? String == "BYTES")
        #expect((metadata["outputs"] as? [[String: Any]])?.last?["name"] as? String == "digit")
    }

    @Test(
        "a broken, hostile or non-image element is a 400 naming the input and element; the server keeps answering",
        arguments: [
            ("not base64 at all!", "base64", "is not base64"),
            (Base64.encode(Array("hello, not an image".utf8)), "base64", "is not a JPEG, PNG or WebP image"),
            ("data:image/png;base64,iVBORw0KGgo=", nil, "PNG")
        ] as [(String, String?, String)])
    func refused(element: String, contentType: String?, message: String) async throws {
        let running = try await RunningServer.start([Self.digits])
        defer { Task { await running.stop() } }
        let parameters = contentType.map { #","parameters":{"content_type":"\#($0)"}"# } ?? ""
        let bad = try await running.infer(
            #"{"inputs":[{"name":"image","shape":[1],"datatype":"BYTES"\#(parameters),"data":["\#(element)"]}]}"#, model: "digits")
        #expect(bad.status == 400 && bad.text.contains("image") && bad.text.contains(message), "\(bad.status) \(bad.text)")
        let good = try await running.infer(
            #"{"inputs":[{"name":"image","shape":[1],"datatype":"BYTES","data":["\#(BytesElement.dataURI(try Self.file("7.png")))"]}]}"#, model: "digits")
        #expect(good.status == 200 && digit(good) == "seven")
    }

    @Test("parameters.raw reaches the model's own tensors around the steps; the served signature is checked otherwise")
    func raw() async throws {
        let running = try await RunningServer.start([Self.digits])
        defer { Task { await running.stop() } }
        let pixels = (0..<64).map { $0 % 9 == 0 ? "1" : "0" }.joined(separator: ",")
        let raw = try await running.infer(
            #"{"parameters":{"raw":true},"inputs":[{"name":"image","shape":[1,1,8,8],"datatype":"FP32","data":[\#(pixels)]}]}"#, model: "digits")
        let names = (jsonObject(raw)["outputs"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
        #expect(raw.status == 200 && names == ["label", "probabilities"], "\(raw.text)")
        // Without raw, the same tensor is not what the served signature takes.
        let served = try await running.infer(#"{"inputs":[{"name":"image","shape":[1,1,8,8],"datatype":"FP32","data":[\#(pixels)]}]}"#, model: "digits")
        #expect(served.status == 400, "\(served.text)")
        // And a raw request is checked against the model's signature.
        let picture = try await running.infer(
            #"{"parameters":{"raw":true},"inputs":[{"name":"image","shape":[1],"datatype":"BYTES","data":["\#(BytesElement.dataURI(try Self.file("7.png")))"]}]}"#,
            model: "digits")
        #expect(picture.status == 400, "\(picture.text)")
        let bad = try await running.infer(
            #"{"parameters":{"raw":"yes"},"inputs":[{"name":"image","shape":[1,1,8,8],"datatype":"FP32","data":[\#(pixels)]}]}"#, model: "digits")
        #expect(bad.status == 400 && bad.text.contains("parameters.raw"), "\(bad.text)")
    }
}
