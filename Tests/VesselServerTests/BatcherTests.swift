import Dispatch
import Foundation
import Synchronization
import Testing
@testable import VesselServer
import VesselModel
import VesselONNX
import VesselTensor
import VesselSystem

/// Returns its input as `Y`, so each request can check it got its own rows back. While `gate` is
/// closed, the first run blocks in `predict` (the model is busy), so tests decide what arrives
/// while it runs without depending on how fast this machine is.
private final class Echo: Backend {
    var platform: String { "echo" }
    var costIsBoundedByInputs: Bool { true }
    let gate = DispatchSemaphore(value: 0)
    let gated: Bool
    let runs = Mutex<[Int]>([])

    init(gated: Bool = false) { self.gated = gated }

    func predict(_ inputs: [String: Tensor], control: RunControl?) throws -> [String: Tensor] {
        let first = runs.withLock { runs in
            runs.append(inputs["X"]!.shape[0])
            return runs.count == 1
        }
        if gated && first { gate.wait() }
        return ["Y": inputs["X"]!]
    }
}

@Suite("Batcher")
struct BatcherTests {
    private func batcher(_ backend: Echo, maxRows: Int, maxDelay: Duration, slots: Int = 1) -> Batcher {
        Batcher(
            maxRows: maxRows, maxDelay: maxDelay, backend: backend,
            queue: InferenceQueue(maxConcurrent: slots, maxQueued: 16), outputNames: ["Y"])
    }

    private func row(_ value: Float) -> [String: Tensor] { ["X": Tensor([Float]([value, value + 0.5]), shape: [1, 2])] }

    /// Waits (on a thread of its own) until the gated backend's first run has begun.
    private func waitUntilBusy(_ echo: Echo) async {
        await BlockingThreads.shared.run { while echo.runs.withLock({ $0.count }) == 0 { usleep(1000) } }
    }

    /// Waits (on a thread of its own) until `count` requests wait in the batcher.
    private func waitUntilWaiting(_ batcher: Batcher, _ count: Int) async {
        await BlockingThreads.shared.run { while batcher.waitingRequests != count { usleep(1000) } }
    }

    @Test("a lone request on an idle model runs at once, alone, without waiting for max_delay")
    func loneRequestRunsAtOnce() async throws {
        let batcher = batcher(Echo(), maxRows: 32, maxDelay: .seconds(600))
        let outcome = try await batcher.submit(row(1))
        #expect(outcome.batchRows == 1)
        #expect(outcome.outputs["Y"]?.scalars(as: Float.self) == [1, 1.5])
        // Had it waited for company, it would have waited the full ten minutes.
        #expect(outcome.waited < .seconds(600))
    }

    @Test("requests that arrive while the model is busy run together, as one batch, as soon as it frees")
    func busyModelMerges() async throws {
        let echo = Echo(gated: true)
        let batcher = batcher(echo, maxRows: 32, maxDelay: .seconds(600))
        async let first = batcher.submit(row(1))
        await waitUntilBusy(echo)
        async let b = batcher.submit(row(2))
        async let c = batcher.submit(row(3))
        async let d = batcher.submit(row(4))
        await waitUntilWaiting(batcher, 3)
        echo.gate.signal()
        let (a, outcomes) = try await (first, [b, c, d])
        #expect(a.batchRows == 1)
        #expect(outcomes.allSatisfy { $0.batchRows == 3 })
        #expect(outcomes.map { $0.outputs["Y"]?.scalars(as: Float.self) ?? [] } == [[2, 2.5], [3, 3.5], [4, 4.5]])
        #expect(echo.runs.withLock { $0 } == [1, 3])
    }

    @Test("requests with different trailing shapes never merge; a group that reaches max_batch_size runs at once; rows come back in order")
    func shapesKeepApart() async throws {
        let echo = Echo(gated: true)
        let batcher = batcher(echo, maxRows: 3, maxDelay: .seconds(600))
        async let first = batcher.submit(row(0))
        await waitUntilBusy(echo)
        // The model is busy: these wait, by shape, and each group leaves (for the queue) once
        // it holds three rows.
        async let a = batcher.submit(row(1))
        await waitUntilWaiting(batcher, 1)
        async let wide = batcher.submit(["X": Tensor([Float](repeating: 7, count: 9), shape: [3, 3])])
        async let c = batcher.submit(["X": Tensor([Float]([4, 5, 6, 7]), shape: [2, 2])])
        await waitUntilWaiting(batcher, 0)
        echo.gate.signal()
        let (zero, one, three, two) = try await (first, a, wide, c)
        #expect(zero.batchRows == 1)
        #expect(one.batchRows == 3 && two.batchRows == 3)
        #expect(three.batchRows == 3 && three.outputs["Y"]?.shape == [3, 3])
        #expect(one.outputs["Y"]?.scalars(as: Float.self) == [1, 1.5])
        #expect(two.outputs["Y"]?.scalars(as: Float.self) == [4, 5, 6, 7])
        #expect(two.outputs["Y"]?.shape == [2, 2])
    }

    @Test("max_delay bounds the wait: a group still waiting after it goes to the queue even while the model is busy")
    func delayIsAnUpperBound() async throws {
        let echo = Echo(gated: true)
        let batcher = batcher(echo, maxRows: 32, maxDelay: .milliseconds(50))
        async let first = batcher.submit(row(1))
        await waitUntilBusy(echo)
        async let late = batcher.submit(row(2))
        await waitUntilWaiting(batcher, 1)
        // The timer takes the group out of the batcher (into the queue, behind the busy slot).
        await waitUntilWaiting(batcher, 0)
        echo.gate.signal()
        let (a, b) = try await (first, late)
        #expect(a.batchRows == 1 && b.batchRows == 1)
        #expect(b.outputs["Y"]?.scalars(as: Float.self) == [2, 2.5])
    }
}
