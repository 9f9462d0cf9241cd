import Synchronization
import VesselSystem
import VesselTensor

/// Admission control for one model: at most `maxConcurrent` inferences run, at most
/// `maxQueued` wait; one more is refused at once, so an overloaded server answers 503 instead
/// of letting latency grow without bound. Runs go to ``BlockingThreads``, off the event loops
/// and off the cooperative pool, so a model computing (or a Python worker thinking) never
/// stalls HTTP handling, timers or health probes.
final class InferenceQueue: Sendable {
    struct Overloaded: Error {}

    private struct State {
        var running = 0
        var waiting: [(id: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []
        var nextID: UInt64 = 0
    }

    let maxConcurrent: Int
    let maxQueued: Int
    /// Requests with at most this many input elements run on the task that decoded them, not on
    /// a worker thread (``tryAcquire()``): 0 unless the model's examples showed it is that cheap.
    let inlineElements: Int
    private let state = Mutex(State())

    init(maxConcurrent: Int, maxQueued: Int, inlineElements: Int = 0) {
        self.maxConcurrent = max(1, maxConcurrent)
        self.maxQueued = max(0, maxQueued)
        self.inlineElements = inlineElements
    }

    /// The measure `inlineElements` is in: every input's element count, summed.
    static func elements(_ inputs: [String: Tensor]) -> Int {
        inputs.values.reduce(0) { $0 + $1.count }
    }

    /// Takes a slot if one is free and nobody waits, without suspending; `release()` gives it
    /// back.
    func tryAcquire() -> Bool {
        state.withLock { state in
            guard state.running < maxConcurrent, state.waiting.isEmpty else { return false }
            state.running += 1
            return true
        }
    }

    /// Requests running plus waiting.
    var inFlight: Int { state.withLock { $0.running + $0.waiting.count } }

    /// Requests waiting for a slot.
    var queued: Int { state.withLock { $0.waiting.count } }

    /// Runs `work` when a slot is free; returns how long it waited and what it computed.
    func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> (waited: Duration, result: T) {
        let clock = ContinuousClock()
        let start = clock.now
        try await acquire()
        let waited = clock.now - start
        defer { release() }
        let result = try await BlockingThreads.shared.run(work)
        return (waited, result)
    }

    private func acquire() async throws {
        // One decision under the lock: run, wait (resumed by `release`, which hands over its
        // slot), or refuse. A waiter whose task is cancelled (its request timed out) leaves the
        // line without taking a slot.
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                state.withLock { state in
                    if Task.isCancelled {
                        continuation.resume(throwing: CancellationError())
                    } else if state.running < maxConcurrent {
                        state.running += 1
                        continuation.resume()
                    } else if state.waiting.count < maxQueued {
                        state.waiting.append((id, continuation))
                    } else {
                        continuation.resume(throwing: Overloaded())
                    }
                }
            }
        } onCancel: {
            let waiter: CheckedContinuation<Void, any Error>? = state.withLock { state in
                guard let index = state.waiting.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiting.remove(at: index).continuation
            }
            waiter?.resume(throwing: CancellationError())
        }
    }

    func release() {
        let next: CheckedContinuation<Void, any Error>? = state.withLock { state in
            if state.waiting.isEmpty {
                state.running -= 1
                return nil
            }
            return state.waiting.removeFirst().continuation
        }
        next?.resume()
    }
}
