import Testing
@testable import VesselServer
import VesselModel
import VesselONNX
import VesselTensor

/// Returns its input as `Y`, so each request can check it got its own rows back.
private struct Echo: Backend {
    var platform: String { "echo" }
    var costIsBoundedByInputs: Bool { true }
    func predict(_ inputs: [String: Tensor], control: RunControl?) throws -> [String: Tensor] { ["Y": inputs["X"]!] }
}

@Suite("Batcher")
struct BatcherTests {
    private func batcher(maxRows: Int, maxDelay: Duration) -> Batcher {
        Batcher(maxRows: maxRows, maxDelay: maxDelay, backend: Echo(),
                queue: InferenceQueue(maxConcurrent: 2, maxQueued: 16, label: "batcher-test"), outputNames: ["Y"])
    }

    private func row(_ value: Float) -> [String: Tensor] { ["X": Tensor([Float]([value, value + 0.5]), shape: [1, 2])] }

    @Test("a batch that fills runs at once, and the next request waits its own max_delay, not what was left of the first one's")
    func filledBatchLeavesNoTimer() async throws {
        let delay = Duration.milliseconds(400)
        let batcher = batcher(maxRows: 2, maxDelay: delay)
        async let first = batcher.submit(row(1))
        async let second = batcher.submit(row(2))
        let (a, b) = try await (first, second)
        #expect(a.batchRows == 2 && b.batchRows == 2)
        #expect(a.outputs["Y"]?.scalars(as: Float.self) == [1, 1.5] && b.outputs["Y"]?.scalars(as: Float.self) == [2, 2.5])
        // Well inside the first request's delay: with the filled batch's timer still armed,
        // this one would run when that timer fires, after far less than its own delay.
        try await Task.sleep(for: .milliseconds(150))
        let late = try await batcher.submit(row(3))
        #expect(late.batchRows == 1)
        #expect(late.waited >= delay, "waited \(late.waited)")
        #expect(late.outputs["Y"]?.scalars(as: Float.self) == [3, 3.5])
    }

    @Test("requests with different trailing shapes never merge; rows come back in order within a batch")
    func shapesKeepApart() async throws {
        // Every batch here fills, so the long delay never elapses.
        let batcher = batcher(maxRows: 3, maxDelay: .seconds(30))
        async let a = batcher.submit(row(1))
        async let b = batcher.submit(["X": Tensor([Float](repeating: 7, count: 9), shape: [3, 3])])
        async let c = batcher.submit(["X": Tensor([Float]([4, 5, 6, 7]), shape: [2, 2])])
        let (one, wide, two) = try await (a, b, c)
        #expect(one.batchRows == 3 && two.batchRows == 3)
        #expect(wide.batchRows == 3 && wide.outputs["Y"]?.shape == [3, 3])
        #expect(one.outputs["Y"]?.scalars(as: Float.self) == [1, 1.5])
        #expect(two.outputs["Y"]?.scalars(as: Float.self) == [4, 5, 6, 7])
        #expect(two.outputs["Y"]?.shape == [2, 2])
    }
}
