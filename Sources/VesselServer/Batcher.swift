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
/// in every dimension but the first are merged along it, up to `maxRows` rows or until the
/// oldest has waited `maxDelay`, run once, and the outputs split back by rows. The merged run
/// goes through the model's `InferenceQueue` like any request.
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
        /// The timer that will run each key's waiting requests, by number. A batch that fills
        /// takes its key's entry away, so that timer finds itself stale and the next request
        /// starts a timer of its own: every request waits at most `maxDelay`, and at least that
        /// long unless its batch fills.
        var timers: [String: UInt64] = [:]
        var nextTimer: UInt64 = 0
    }

    let maxRows: Int
    let maxDelay: Duration
    let backend: any Backend
    let queue: InferenceQueue
    let outputNames: [String]
    /// `serving.timeout_ms`: a merged run stops once its newest request's deadline passes.
    let timeout: Duration
    private let state = Mutex(State())

    init(maxRows: Int, maxDelay: Duration, backend: any Backend, queue: InferenceQueue, outputNames: [String],
         timeout: Duration = .seconds(3600)) {
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
        return try await withCheckedThrowingContinuation { continuation in
            let (ready, timer): ([Pending]?, UInt64?) = state.withLock { state in
                state.pending[key, default: []].append(Pending(inputs: inputs, rows: rows, arrived: .now, continuation: continuation))
                let waiting = state.pending[key]!
                if waiting.reduce(0, { $0 + $1.rows }) >= maxRows {
                    state.pending[key] = nil
                    state.timers[key] = nil
                    return (waiting, nil)
                }
                if state.timers[key] != nil { return (nil, nil) }
                state.nextTimer += 1
                state.timers[key] = state.nextTimer
                return (nil, state.nextTimer)
            }
            if let ready { run(ready) }
            if let timer {
                Task.detached { [self] in
                    try? await Task.sleep(for: maxDelay)
                    let due: [Pending]? = state.withLock { state in
                        guard state.timers[key] == timer else { return nil }
                        state.timers[key] = nil
                        return state.pending.removeValue(forKey: key)
                    }
                    if let due, !due.isEmpty { run(due) }
                }
            }
        }
    }

    /// Merges, runs once, splits; each request gets its own rows (or the shared error).
    private func run(_ batch: [Pending]) {
        Task.detached { [self] in
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
                            throw RequestError(500, "output `\(name)` has \(tensor.shape.first ?? 0) rows for a batch of \(total); set serving.max_batch_size to 1 for this model")
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
