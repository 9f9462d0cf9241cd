#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Synchronization
import VesselManifest
import VesselModel
import VesselONNX
import VesselTensor

/// Dynamic batching for one model (`serving.max_batch_size` > 1): requests whose inputs agree
/// in every dimension but the first are merged along it, run once, and the outputs split back by
/// rows. The merged run goes through the model's `InferenceQueue` like any request.
///
/// A request never waits for company it may not get: while fewer batches run than the model
/// has slots (`InferenceQueue.maxConcurrent`), a request with nobody waiting before it runs at
/// once, alone. Requests that arrive while every slot is busy wait together, and when a run
/// finishes the oldest waiting group runs next, as one batch. So a lone request costs what it
/// costs without batching, and under load batches fill from the queue that forms anyway.
/// `maxDelay` only bounds the wait: a group still waiting after it runs then (its run waits for
/// a slot in the queue), and a group that reaches `maxRows` runs at once.
final class Batcher: Sendable {
    struct Outcome: Sendable {
        var outputs: [String: Tensor]
        var waited: Duration
        var computed: Duration
        var batchRows: Int
    }

    private struct Pending {
        var inputs: [String: Tensor]
        var rows: Int
        var arrived: ContinuousClock.Instant
        var continuation: CheckedContinuation<Outcome, any Error>
    }

    private struct State {
        /// Waiting requests, by the shape of their inputs beyond the first dimension.
        var pending: [String: [Pending]] = [:]
        /// The timer that will run each key's waiting requests, by number. A group that runs
        /// for another reason (it filled, or a slot freed) takes its key's entry away, so that
        /// timer finds itself stale and the next group starts a timer of its own: every request
        /// waits at most `maxDelay`.
        var timers: [String: UInt64] = [:]
        var nextTimer: UInt64 = 0
        /// Batches started and not yet finished.
        var running = 0

        /// Requests waiting to join a batch.
        var waiting: Int { pending.values.reduce(0) { $0 + $1.count } }

        /// Claims a run for a request the batcher would run at once and alone: fewer batches
        /// running than `capacity` slots, nobody waiting.
        mutating func claimIdle(capacity: Int) -> Bool {
            guard running < capacity, pending.isEmpty else { return false }
            running += 1
            return true
        }

        /// Takes the group whose first request has waited longest, if any.
        mutating func takeOldest() -> [Pending]? {
            guard let key = pending.min(by: { $0.value[0].arrived < $1.value[0].arrived })?.key else { return nil }
            timers[key] = nil
            return pending.removeValue(forKey: key)
        }
    }

    let maxRows: Int
    let maxDelay: Duration
    let backend: any Backend
    let queue: InferenceQueue
    let outputNames: [String]
    /// `serving.timeout_ms`: a merged run stops once its newest request's deadline passes.
    let timeout: Duration
    private let state = Mutex(State())

    init(
        maxRows: Int, maxDelay: Duration, backend: any Backend, queue: InferenceQueue, outputNames: [String],
        timeout: Duration = .seconds(3600)
    ) {
        self.timeout = timeout
        self.maxRows = maxRows
        self.maxDelay = maxDelay
        self.backend = backend
        self.queue = queue
        self.outputNames = outputNames
    }

    /// Whether a signature can be batched: every input and output has a dynamic first dimension.
    static func canBatch(_ signature: Signature) -> Bool {
        (signature.inputs + signature.outputs).allSatisfy { spec in
            guard let first = spec.shape.first else { return false }
            if case .dynamic = first { return true }
            return false
        }
    }

    func submit(_ inputs: [String: Tensor]) async throws -> Outcome {
        let rows = inputs.values.first?.shape.first ?? 1
        // Requests merge only with others whose inputs have the same trailing shapes and dtypes.
        let key = inputs.keys.sorted().map { name in
            let tensor = inputs[name]!
            return "\(name):\(tensor.dtype.rawValue):\(tensor.shape.dropFirst().map(String.init).joined(separator: "x"))"
        }.joined(separator: ";")
        let capacity = queue.maxConcurrent
        return try await withCheckedThrowingContinuation { continuation in
            let request = Pending(inputs: inputs, rows: rows, arrived: .now, continuation: continuation)
            let (ready, timer, overloaded): ([Pending]?, UInt64?, Bool) = state.withLock { state in
                // Idle and nobody waiting: run now, alone.
                if state.claimIdle(capacity: capacity) { return ([request], nil, false) }
                // As many requests may wait here as the queue would hold batches of them.
                if state.waiting >= Swift.max(queue.maxQueued, 1) * maxRows {
                    return (nil, nil, true)
                }
                state.pending[key, default: []].append(request)
                let waiting = state.pending[key]!
                if waiting.reduce(0, { $0 + $1.rows }) >= maxRows {
                    state.pending[key] = nil
                    state.timers[key] = nil
                    state.running += 1
                    return (waiting, nil, false)
                }
                if state.timers[key] != nil { return (nil, nil, false) }
                state.nextTimer += 1
                state.timers[key] = state.nextTimer
                return (nil, state.nextTimer, false)
            }
            if overloaded {
                continuation.resume(throwing: InferenceQueue.Overloaded())
                return
            }
            if let ready { run(ready) }
            if let timer {
                Task.detached { [self] in
                    try? await Task.sleep(for: maxDelay)
                    let due: [Pending]? = state.withLock { state in
                        guard state.timers[key] == timer, let due = state.pending.removeValue(forKey: key) else { return nil }
                        state.timers[key] = nil
                        state.running += 1
                        return due
                    }
                    if let due { run(due) }
                }
            }
        }
    }

    /// Claims the model for one request run outside the batcher (inline, on the calling task or
    /// event loop) when the batcher would have run it at once and alone anyway: fewer batches
    /// running than slots, nobody waiting. ``endInline()`` gives the claim back.
    func beginInline() -> Bool {
        state.withLock { $0.claimIdle(capacity: queue.maxConcurrent) }
    }

    /// Ends an inline run; a group that formed meanwhile runs now.
    func endInline() { finished() }

    /// Requests waiting to join a batch.
    var waitingRequests: Int { state.withLock { $0.waiting } }

    /// A batch finished: the oldest waiting group, if any, runs in its place.
    private func finished() {
        let next: [Pending]? = state.withLock { state in
            state.running -= 1
            guard state.running < queue.maxConcurrent, let group = state.takeOldest() else { return nil }
            state.running += 1
            return group
        }
        if let next { run(next) }
    }

    /// Merges, runs once, splits; each request gets its own rows (or the shared error).
    private func run(_ batch: [Pending]) {
        Task.detached { [self] in
            defer { finished() }
            let total = batch.reduce(0) { $0 + $1.rows }
            do {
                let merged = Self.concatenate(batch.map(\.inputs))
                let backend = backend
                let runStarted = ContinuousClock.now
                let control = RunControl(deadline: (batch.map(\.arrived).max() ?? runStarted) + timeout)
                let (waited, timed) = try await queue.run { () -> (Duration, [String: Tensor]) in
                    let start = ContinuousClock.now
                    let result = try backend.predict(merged, control: control)
                    return (ContinuousClock.now - start, result)
                }
                let (computed, outputs) = timed
                var offset = 0
                for request in batch {
                    var own: [String: Tensor] = [:]
                    for (name, tensor) in outputs {
                        guard tensor.shape.first == total else {
                            throw RequestError(
                                500,
                                "output `\(name)` has \(tensor.shape.first ?? 0) rows for a batch of \(total); set serving.max_batch_size to 1 for this model")
                        }
                        own[name] = Self.rows(tensor, offset, request.rows)
                    }
                    offset += request.rows
                    // Its queue time: waiting for the batch to form, then for a slot.
                    let queued = (runStarted - request.arrived) + waited
                    request.continuation.resume(returning: Outcome(outputs: own, waited: queued, computed: computed, batchRows: total))
                }
            } catch {
                for request in batch { request.continuation.resume(throwing: error) }
            }
        }
    }

    static func concatenate(_ requests: [[String: Tensor]]) -> [String: Tensor] {
        guard requests.count > 1, let first = requests.first else { return requests.first ?? [:] }
        return Dictionary(uniqueKeysWithValues: first.keys.map { name in (name, Tensor.concatenate(requests.map { $0[name]! }, axis: 0)) })
    }

    /// Rows `start..<start+count` of a tensor.
    static func rows(_ tensor: Tensor, _ start: Int, _ count: Int) -> Tensor {
        let rowSize = tensor.shape.dropFirst().reduce(1, *)
        let shape = [count] + tensor.shape.dropFirst()
        if tensor.dtype == .string { return Tensor(strings: Array(tensor.strings[start * rowSize..<(start + count) * rowSize]), shape: shape) }
        let size = tensor.dtype.byteSize!
        let out = Tensor(uninitialized: tensor.dtype, shape: shape)
        out.storage.pointer.copyMemory(from: tensor.storage.pointer + start * rowSize * size, byteCount: count * rowSize * size)
        return out
    }
}
