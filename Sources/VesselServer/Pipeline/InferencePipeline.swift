import Synchronization
import VesselManifest
import VesselModel
import VesselONNX
import VesselProcessing
import VesselTensor

/// A served model that is ready, as one request sees it.
struct ReadyModel {
    let served: ServedModel
    let loaded: LoadedModel
    let queue: InferenceQueue
    let batcher: Batcher?

    var name: String { served.name }
    var outputNames: [String] { loaded.signature.outputs.map(\.name) }

    /// What a request is checked against and runs on: the served signature and the backend with
    /// the processing steps, or for a raw request the model's own signature and backend.
    func signature(raw: Bool) -> Signature { raw ? loaded.modelSignature : loaded.signature }
    func backend(raw: Bool) -> any Backend {
        raw ? (loaded.backend as? ProcessedBackend)?.model ?? loaded.backend : loaded.backend
    }
    /// `serving.timeout_ms`, at least a millisecond.
    var timeoutMilliseconds: Double { max(1, loaded.manifest.serving.timeoutMilliseconds) }
}

/// What a transport decoded from a request body, whatever its protocol: the model's inputs,
/// their order (for the log), and the outputs asked for, in order (nil: every output).
struct DecodedInference {
    var inputs: [String: Tensor]
    var order: [String]
    var requestedOutputs: [String]?
    /// The model's own tensors, without the processing steps (OIP v2 `parameters.raw`).
    var raw = false
}

/// The inference pipeline every transport runs — the router's OIP v2 and MLflow routes and the
/// event-loop fast lane (``FastInferHandler``) — so a serving feature is written once:
///
///     ready → (transport decodes) → check → admit → run → select → (transport encodes) → record
///
/// Each stage returns its value or throws the one failure type, ``RequestError``, which the
/// transport turns into its status and `{"error": …}` body in one place
/// (``InferenceCall/fail(_:)``, or the fast lane's writer).
extension InferenceServer {
    /// Stage 1: the model, if ready and the server is not shutting down.
    func ready(_ call: InferenceCall, _ model: ServedModel) throws(RequestError) -> ReadyModel {
        guard case .ready(let loaded, let queue, let batcher) = model.current, !shuttingDown.load(ordering: .relaxed) else {
            throw RequestError(503, "model `\(model.name)` is not ready", retryAfterSeconds: 1)
        }
        if let reason = loaded.backend.unavailableReason {
            throw RequestError(503, "model `\(model.name)` cannot answer now: \(reason)", retryAfterSeconds: 1)
        }
        let ready = ReadyModel(served: model, loaded: loaded, queue: queue, batcher: batcher)
        call.uses(ready)
        return ready
    }

    /// Stage 2: the request fits the model — known outputs, inputs that match the signature.
    /// Pure, so the fast lane can ask before it takes a request.
    static func check(_ request: DecodedInference, against model: ReadyModel) throws(RequestError) {
        let signature = model.signature(raw: request.raw)
        let outputNames = signature.outputs.map(\.name)
        if let requested = request.requestedOutputs, let unknown = requested.first(where: { !outputNames.contains($0) }) {
            throw RequestError(400, "unknown output `\(unknown)`; the model's outputs are \(outputNames.joined(separator: ", "))")
        }
        do {
            try signature.validate(request.inputs, allowNaN: model.loaded.manifest.serving.allowNaN)
        } catch {
            throw RequestError(400, error.description)
        }
    }

    /// Stage 3: the request is logged with its inputs and checked.
    func admit(_ call: InferenceCall, _ request: DecodedInference, to model: ReadyModel) throws(RequestError) {
        call.received(request, signature: model.loaded.signature)
        try Self.check(request, against: model)
    }

    /// Stage 4: runs the model. A request as small as the examples that ran in microseconds runs
    /// on the calling task if a slot is free at once (no worker thread, no timer task);
    /// otherwise it waits for a slot (or joins the batcher) and races `serving.timeout_ms`.
    func run(_ call: InferenceCall, _ request: DecodedInference, on model: ReadyModel) async throws(RequestError) -> [String: Tensor] {
        let queue = model.queue
        if !request.raw, queue.inlineElements > 0, InferenceQueue.elements(request.inputs) <= queue.inlineElements,
            Self.claimInline(queue, model.batcher)
        {
            return try runClaimed(call, request, on: model)
        }
        let timeout = Duration.microseconds(Int(model.timeoutMilliseconds * 1000))
        let deadline = ContinuousClock.now + timeout
        // The run itself stops at the deadline (between nodes and loop iterations), so a slow
        // request frees its slot and thread instead of running on after its 504.
        let control = RunControl(deadline: deadline)
        // A raw request skips the batcher, which merges requests for the steps' backend.
        let (backend, batcher, inputs, rows) = (model.backend(raw: request.raw), request.raw ? nil : model.batcher, request.inputs, call.entry.batchSize)
        let outcome: Batcher.Outcome?
        do {
            outcome = try await withThrowingTaskGroup(of: Batcher.Outcome?.self) { group in
                group.addTask {
                    if let batcher { return try await batcher.submit(inputs) }
                    let (wait, timed) = try await queue.run { () -> (Duration, [String: Tensor]) in
                        let start = ContinuousClock().now
                        let result = try backend.predict(inputs, control: control)
                        return (ContinuousClock().now - start, result)
                    }
                    return Batcher.Outcome(outputs: timed.1, waited: wait, computed: timed.0, batchRows: rows)
                }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    control.cancel()
                    return nil
                }
                let first = try await group.next()!
                group.cancelAll()
                return first
            }
        } catch {
            throw Self.runFailure(error, model)
        }
        // The timer shares the cooperative threads with request decoding and can fire late
        // under load; a result that arrives after the deadline is late all the same.
        guard let outcome, ContinuousClock.now <= deadline else {
            throw RequestError(504, Self.timeoutMessage(model.timeoutMilliseconds, stopped: false))
        }
        call.ran(model, outcome)
        return outcome.outputs
    }

    /// Stage 4 on the calling thread, in the slot (and batcher claim) ``claimInline`` took,
    /// which it gives back. Only models whose cost is bounded by their inputs run here (see
    /// `warmUp`); the deadline still stops one that a loaded machine makes slow.
    func runClaimed(_ call: InferenceCall, _ request: DecodedInference, on model: ReadyModel) throws(RequestError) -> [String: Tensor] {
        let queue = model.queue
        let control = RunControl(deadline: call.started + .microseconds(Int(model.timeoutMilliseconds * 1000)))
        let outputs: [String: Tensor]
        let start = ContinuousClock.now
        do {
            defer {
                queue.release()
                model.batcher?.endInline()
            }
            outputs = try model.loaded.backend.predict(request.inputs, control: control)
        } catch {
            throw Self.runFailure(error, model)
        }
        let computed = ContinuousClock.now - start
        if (ContinuousClock.now - call.started).milliseconds > model.timeoutMilliseconds {
            throw RequestError(504, Self.timeoutMessage(model.timeoutMilliseconds, stopped: false))
        }
        call.ran(model, Batcher.Outcome(outputs: outputs, waited: .zero, computed: computed, batchRows: call.entry.batchSize))
        return outputs
    }

    /// Stage 5: the outputs the request asked for (all of them by default), in that order.
    static func select(_ outputs: [String: Tensor], _ request: DecodedInference, of model: ReadyModel) throws(RequestError) -> [(String, Tensor)] {
        var selected: [(String, Tensor)] = []
        for name in request.requestedOutputs ?? model.signature(raw: request.raw).outputs.map(\.name) {
            guard let tensor = outputs[name] else { throw RequestError(500, "the model did not produce output `\(name)`") }
            selected.append((name, tensor))
        }
        return selected
    }

    /// What a failed run answers: 504 when stopped at the deadline, 503 when at capacity, 500
    /// for the model's own error.
    static func runFailure(_ error: any Error, _ model: ReadyModel) -> RequestError {
        switch error {
        case ONNXError.stopped:
            return RequestError(504, timeoutMessage(model.timeoutMilliseconds, stopped: true))
        case is InferenceQueue.Overloaded:
            return RequestError(
                503, "model `\(model.name)` is at capacity (\(model.queue.maxConcurrent) running, \(model.queue.maxQueued) queued); retry later",
                retryAfterSeconds: 1)
        case let error as RequestError:
            return error
        case BackendError.invalidInput(let message):
            return RequestError(400, message)
        case let error as ProcessingError:
            // A preprocess step that cannot take the client's input is the client's to fix.
            return RequestError(error.stage == .pre ? 400 : 500, "\(error)")
        default:
            return RequestError(500, "inference failed: \(error)")
        }
    }

    /// The 504 message for a request past `serving.timeout_ms`; `stopped` when the run itself was
    /// stopped at the deadline rather than finishing late.
    static func timeoutMessage(_ milliseconds: Double, stopped: Bool) -> String {
        "the inference took longer than serving.timeout_ms (\(Int(milliseconds)) ms)\(stopped ? " and was stopped" : "")"
    }

    /// Takes what a request run on the calling task or event loop needs: a free slot at once,
    /// and for a batching model an idle batcher (nothing running or waiting), so a lone request
    /// skips the batcher's hop just as it skips its wait. ``runClaimed`` gives both back.
    static func claimInline(_ queue: InferenceQueue, _ batcher: Batcher?) -> Bool {
        guard let batcher else { return queue.tryAcquire() }
        guard batcher.beginInline() else { return false }
        if queue.tryAcquire() { return true }
        batcher.endInline()
        return false
    }
}
