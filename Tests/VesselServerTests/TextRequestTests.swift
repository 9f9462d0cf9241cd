import Foundation
import Testing
@testable import VesselServer
import VesselTensor
import VesselTestSupport

/// The bundled sentence-embedding model (Examples/minilm, made by scripts/examples.sh) served:
/// text in, one unit vector per text out, the same through every entry.
@Suite("text requests")
struct TextRequestTests {
    static let minilm = TestSupport.packageRoot + "/Examples/minilm"
    static let sentences = ["A man is eating food.", "A man is eating a piece of bread.", "The new movie is awesome."]

    /// examples/sentences.npy: what the tokenizers library, onnxruntime and numpy make of them.
    static func expected() throws -> [[Double]] {
        guard FileManager.default.fileExists(atPath: minilm + "/model.onnx") else { throw ExampleMissing() }
        let tensor = try Tensor(npy: Array(try Data(contentsOf: URL(fileURLWithPath: minilm + "/examples/sentences.npy"))))
        let values = tensor.doubles()
        return (0..<3).map { Array(values[$0 * 384..<($0 + 1) * 384]) }
    }

    struct ExampleMissing: Error, CustomStringConvertible {
        var description: String { "Examples/minilm has no model.onnx: run scripts/examples.sh (scripts/test.sh does)" }
    }

    func embeddings(_ response: LoopbackClient.Response) -> [[Double]] {
        let outputs = jsonObject(response)["outputs"] as? [[String: Any]] ?? []
        let data = (outputs.first { $0["name"] as? String == "embedding" }?["data"] as? [Any] ?? []).compactMap { ($0 as? NSNumber)?.doubleValue }
        return stride(from: 0, to: data.count, by: 384).map { Array(data[$0..<min(data.count, $0 + 384)]) }
    }

    func close(_ a: [[Double]], _ b: [[Double]]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { x, y in x.count == y.count && zip(x, y).allSatisfy { abs($0 - $1) < 1e-4 } }
    }

    @Test(
        "UTF-8 strings in OIP JSON, base64 with content_type, binary BYTES, Cog's /predictions and MLflow's /invocations give the Python pipeline's embeddings")
    func everyEntry() async throws {
        let expected = try Self.expected()
        let running = try await RunningServer.start([Self.minilm])
        defer { Task { await running.stop() } }
        let quoted = Self.sentences.map { "\"\($0)\"" }.joined(separator: ",")

        let plain = try await running.infer(#"{"inputs":[{"name":"text","shape":[3],"datatype":"BYTES","data":[\#(quoted)]}]}"#, model: "minilm")
        #expect(plain.status == 200 && close(embeddings(plain), expected), "\(plain.status) \(plain.text.prefix(300))")
        #expect(!plain.text.contains("last_hidden_state"), "the token vectors are dropped")

        let encoded = Self.sentences.map { "\"\(Base64.encode(Array($0.utf8)))\"" }.joined(separator: ",")
        let base64 = try await running.infer(
            #"{"inputs":[{"name":"text","shape":[3],"datatype":"BYTES","parameters":{"content_type":"base64"},"data":[\#(encoded)]}]}"#, model: "minilm")
        #expect(base64.status == 200 && close(embeddings(base64), expected), "\(base64.text.prefix(300))")

        var tail: [UInt8] = []
        for sentence in Self.sentences { tail += withUnsafeBytes(of: UInt32(sentence.utf8.count).littleEndian, Array.init) + Array(sentence.utf8) }
        let header =
            #"{"inputs":[{"name":"text","shape":[3],"datatype":"BYTES","parameters":{"binary_data_size":\#(tail.count)}}],"outputs":[{"name":"embedding"}]}"#
        let binary = try await running.request(
            "POST", "/v2/models/minilm/infer", headers: ["Inference-Header-Content-Length": String(header.utf8.count)],
            body: Array(header.utf8) + tail)
        #expect(binary.status == 200 && close(embeddings(binary), expected), "\(binary.text.prefix(300))")

        let cog = try await running.request(
            "POST", "/predictions", headers: ["Content-Type": "application/json"],
            body: Array(#"{"input":{"text":"\#(Self.sentences[1])"}}"#.utf8))
        // One output: Cog's `output` is the value itself, MLflow's `predictions` the rows.
        let cogEmbedding = (jsonObject(cog)["output"] as? [Any])?.compactMap { ($0 as? NSNumber)?.doubleValue } ?? []
        #expect(cog.status == 200 && close([cogEmbedding], [expected[1]]), "\(cog.text.prefix(300))")

        let mlflow = try await running.request(
            "POST", "/invocations", headers: ["Content-Type": "application/json"],
            body: Array(#"{"inputs":{"text":[\#(quoted)]}}"#.utf8))
        let rows = (jsonObject(mlflow)["predictions"] as? [[Any]])?.map { $0.compactMap { ($0 as? NSNumber)?.doubleValue } } ?? []
        #expect(mlflow.status == 200 && close(rows, expected), "\(mlflow.text.prefix(300))")

        // The served signature: text in.
        let metadata = jsonObject(try await running.request("GET", "/v2/models/minilm"))
        let input = (metadata["inputs"] as? [[String: Any]])?.first
        #expect(input?["name"] as? String == "text" && input?["datatype"] as? String == "BYTES", "\(metadata)")
    }

    @Test(
        "text longer than the tokenizer's 128 tokens is cut as its file declares; numbers, non-UTF-8 bytes and a missing input are a 400; the server keeps answering"
    )
    func badText() async throws {
        _ = try Self.expected()
        let running = try await RunningServer.start([Self.minilm])
        defer { Task { await running.stop() } }
        let long = String(repeating: "very long text ", count: 400)
        let truncated = try await running.infer(
            #"{"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":["\#(long)"]}],"outputs":[{"name":"embedding"}]}"#, model: "minilm")
        #expect(truncated.status == 200, "\(truncated.text.prefix(300))")
        let numbers = try await running.infer(#"{"inputs":[{"name":"text","shape":[1],"datatype":"FP32","data":[1.5]}]}"#, model: "minilm")
        #expect(numbers.status == 400 && numbers.text.contains("text"), "\(numbers.text)")
        let bytes: [UInt8] = [0xFF, 0xFE, 0x00, 0x41]
        let tail = withUnsafeBytes(of: UInt32(bytes.count).littleEndian, Array.init) + bytes
        let header = #"{"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":\#(tail.count)}}]}"#
        let binary = try await running.request(
            "POST", "/v2/models/minilm/infer", headers: ["Inference-Header-Content-Length": String(header.utf8.count)],
            body: Array(header.utf8) + tail)
        #expect(binary.status == 400 && binary.text.contains("not UTF-8"), "\(binary.text)")
        let missing = try await running.infer(#"{"inputs":[]}"#, model: "minilm")
        #expect(missing.status == 400, "\(missing.text)")
        let good = try await running.infer(#"{"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":["\#(Self.sentences[0])"]}]}"#, model: "minilm")
        let first = try Self.expected()[0]
        #expect(good.status == 200 && close(embeddings(good), [first]), "\(good.text.prefix(300))")
    }
}
