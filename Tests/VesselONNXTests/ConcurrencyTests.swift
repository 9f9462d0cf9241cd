import Foundation
import Testing
@testable import VesselONNX
import VesselTensor
import VesselTestSupport

@Suite("concurrent runs")
struct ConcurrencyTests {
    @Test("one loaded model gives bit-identical results from many threads at once")
    func concurrentRuns() async throws {
        let model = try ONNXModel(path: ModelSuiteTests.dataDirectory + "/light/light_squeezenet.onnx")
        let input = try #require(model.graph.inputs.first { model.graph.initializers[$0.name] == nil })
        let shape = [1, 3, 224, 224]
        let count = Tensor.count(of: shape)
        let feed = Tensor((0..<count).map { Float(($0 * 7919) % 1000) / 1000 }, shape: shape)
        let reference = try model.run([input.name: feed])[model.graph.outputs[0].name]!.scalars(as: Float.self)
        try await withThrowingTaskGroup(of: [Float].self) { group in
            for _ in 0..<8 {
                group.addTask { try model.run([input.name: feed])[model.graph.outputs[0].name]!.scalars(as: Float.self) }
            }
            for try await result in group {
                #expect(result == reference)
            }
        }
    }
}
