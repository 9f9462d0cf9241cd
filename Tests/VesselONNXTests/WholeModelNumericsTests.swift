import Foundation
import Testing
@testable import VesselONNX
import VesselTensor
import VesselTestSupport

/// Whole models with random weights (Fixtures/make_models.py) against the outputs onnxruntime
/// computed for them: a ResNet block with BatchNorm, a transformer encoder layer with a padding
/// mask, Gelu (opset 20), a bidirectional LSTM tagger, and a ConvTranspose + Resize decoder.
@Suite("whole models against onnxruntime")
struct WholeModelNumericsTests {
    static var fixtures: String { TestSupport.packageRoot + "/Tests/VesselONNXTests/Fixtures/models" }

    @Test("outputs match onnxruntime within 1e-4 relative", arguments: [
        "resnet_block", "transformer_layer", "gelu_layer", "lstm_tagger", "upsampling_decoder",
    ])
    func matches(_ name: String) {
        let outcome = NodeConformanceTests.run(case: Self.fixtures + "/" + name, tolerance: (1e-4, 1e-6))
        #expect(outcome == .passed, "\(name): \(outcome)")
    }

    @Test("Conv + BatchNormalization (+ Relu) become one node at load, and still match onnxruntime")
    func batchNormFolded() throws {
        let model = try ONNXModel(path: Self.fixtures + "/resnet_block/model.onnx")
        let kinds = model.graph.nodes.map(\.name)
        #expect(!model.graph.nodes.contains { $0.opType == "BatchNormalization" }, "\(kinds)")
        #expect(kinds.filter { $0.hasSuffix("+BatchNormalization+Relu") }.count == 1, "\(kinds)")
        #expect(kinds.filter { $0.hasSuffix("+BatchNormalization") }.count == 1, "\(kinds)")
        // The folded parameters replace the originals rather than sit beside them.
        #expect(model.graph.initializers.keys.filter { ["g1", "b1", "m1", "v1", "w1"].contains($0) }.isEmpty)
        #expect(NodeConformanceTests.run(case: Self.fixtures + "/resnet_block", tolerance: (1e-4, 1e-6)) == .passed)
    }

    @Test("without OpenBLAS the built-in GEMM gives the same results")
    func builtinGEMM() throws {
        // A product large enough for blocking to matter, compared with the BLAS path.
        let (m, n, k) = (37, 129, 65)
        var generator = SystemRandomNumberGenerator()
        let a = (0..<(m * k)).map { _ in Float.random(in: -1...1, using: &generator) }
        let b = (0..<(k * n)).map { _ in Float.random(in: -1...1, using: &generator) }
        var blas = [Float](repeating: 0, count: m * n), builtin = [Float](repeating: 0, count: m * n)
        for transB in [false, true] {
            GEMM.multiply(m: m, n: n, k: k, a: a, b: b, transB: transB, c: &blas)
            GEMM.builtin(m: m, n: n, k: k, alpha: 1, a: a, transA: false, b: b, transB: transB, beta: 0, c: &builtin)
            for index in 0..<(m * n) { #expect(abs(blas[index] - builtin[index]) <= 1e-4 * (1 + abs(blas[index]))) }
        }
    }
}
