#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization
import VesselManifest
import VesselModel
import VesselONNX
import VesselTensor

extension HTTPField.Name {
    static let inferenceHeaderContentLength = HTTPField.Name("Inference-Header-Content-Length")!
    static let requestID = HTTPField.Name("X-Request-ID")!
}

extension InferenceServer {
    func addRoutes(_ router: Router<BasicRequestContext>) {
        router.get("/v2") { _, _ in
            Self.json(.ok, "{\"name\":\"vessel\",\"version\":\"\(Self.version)\",\"extensions\":[\"binary_tensor_data\",\"model_metadata\",\"metrics\"]}")
        }
        router.get("/v2/health/live") { _, _ in Self.json(.ok, "{\"live\":true}") }
        router.get("/v2/health/ready") { [self] _, _ in
            isReady ? Self.json(.ok, "{\"ready\":true}") : Self.json(.serviceUnavailable, "{\"ready\":false}")
        }
        router.get("/v2/models/:model") { [self] _, context in metadata(context, version: nil) }
        router.get("/v2/models/:model/versions/:version") { [self] _, context in metadata(context, version: context.parameters.get("version")) }
        router.get("/v2/models/:model/ready") { [self] _, context in modelReady(context, version: nil) }
        router.get("/v2/models/:model/versions/:version/ready") { [self] _, context in modelReady(context, version: context.parameters.get("version")) }
        router.post("/v2/models/:model/infer") { [self] request, context in await infer(request, context, version: nil) }
        router.post("/v2/models/:model/versions/:version/infer") { [self] request, context in
            await infer(request, context, version: context.parameters.get("version"))
        }
        // MLflow's scoring protocol.
        router.post("/invocations") { [self] request, _ in await invocations(request) }
        router.get("/ping") { [self] _, _ in isReady ? Self.json(.ok, "{}") : Self.json(.serviceUnavailable, "{}") }
        router.get("/health") { [self] _, _ in isReady ? Self.json(.ok, "{}") : Self.json(.serviceUnavailable, "{}") }
        router.get("/version") { _, _ in Response(status: .ok, headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: Self.version))) }
        router.get("/openapi.json") { [self] _, _ in
            let ready = models.compactMap { model -> (name: String, model: LoadedModel)? in
                if case .ready(let loaded, _, _) = model.current { return (model.name, loaded) }
                return nil
            }
            return Response(status: .ok, headers: [.contentType: "application/json"],
                            body: .init(byteBuffer: ByteBuffer(bytes: OpenAPI.document(models: ready, version: Self.version))))
        }
        router.get("/metrics") { [self] _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(bytes: metrics.text())))
        }
    }

    static func json(_ status: HTTPResponse.Status, _ text: String, requestID: String? = nil, extra: HTTPFields = [:]) -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let requestID { headers[.requestID] = requestID }
        headers.append(contentsOf: extra)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func error(_ status: Int, _ message: String, requestID: String? = nil, extra: HTTPFields = [:]) -> Response {
        json(HTTPResponse.Status(code: status), OIPCodec.errorBody(message), requestID: requestID, extra: extra)
    }

    /// The served model a path names, or the 404 to answer.
    func lookup(_ context: BasicRequestContext, version: String?) -> Result<ServedModel, RequestError> {
        let name = context.parameters.get("model") ?? ""
        guard let model = models.first(where: { $0.name == name }) else {
            return .failure(RequestError(404, "unknown model `\(name)`; this server serves \(models.map(\.name).joined(separator: ", "))"))
        }
        if let version, case .ready(let loaded, _, _) = model.current, loaded.version != version {
            return .failure(RequestError(404, "model `\(name)` has no version `\(version)`; it serves \(loaded.version)"))
        }
        return .success(model)
    }

    func metadata(_ context: BasicRequestContext, version: String?) -> Response {
        let model: ServedModel
        switch lookup(context, version: version) {
        case .success(let found): model = found
        case .failure(let error): return Self.error(error.status, error.description)
        }
        switch model.current {
        case .loading: return Self.error(503, "model `\(model.name)` is loading")
        case .failed(let reason): return Self.error(503, "model `\(model.name)` failed to load: \(reason)")
        case .ready(let loaded, _, _):
            func tensors(_ specs: [TensorSpec]) -> String {
                specs.map { spec in
                    let shape = spec.shape.map { if case .fixed(let size) = $0 { String(size) } else { "-1" } }.joined(separator: ",")
                    return "{\"name\":\(OIPCodec.quote(spec.name)),\"datatype\":\"\(spec.dtype.oipName)\",\"shape\":[\(shape)]}"
                }.joined(separator: ",")
            }
            var text = "{\"name\":\(OIPCodec.quote(model.name)),\"versions\":[\(OIPCodec.quote(loaded.version))],\"platform\":\"\(loaded.backend.platform)\""
            text += ",\"inputs\":[\(tensors(loaded.signature.inputs))],\"outputs\":[\(tensors(loaded.signature.outputs))]"
            if let digest = loaded.digest { text += ",\"parameters\":{\"digest\":\(OIPCodec.quote(digest))}" }
            return Self.json(.ok, text + "}")
        }
    }

    func modelReady(_ context: BasicRequestContext, version: String?) -> Response {
        switch lookup(context, version: version) {
        case .failure(let error): return Self.error(error.status, error.description)
        case .success(let model):
            if case .ready = model.current, !shuttingDown.load(ordering: .relaxed) {
                return Self.json(.ok, "{\"name\":\(OIPCodec.quote(model.name)),\"ready\":true}")
            }
            return Self.json(.serviceUnavailable, "{\"name\":\(OIPCodec.quote(model.name)),\"ready\":false}")
        }
    }

    /// One inference request's bookkeeping: its id, its log entry, and the metrics and log line
    /// written when it is answered, whatever the answer.
    final class Call {
        let server: InferenceServer
        let requestID: String
        let started = ContinuousClock().now
        var entry: InferenceLog.Entry

        init(_ server: InferenceServer, headers: HTTPFields, model: String, version: String?) {
            self.server = server
            requestID = headers[.requestID].flatMap { $0.isEmpty || $0.count > 200 ? nil : $0 } ?? Self.randomID()
            entry = InferenceLog.Entry(requestID: requestID, model: model, version: version ?? "", digest: nil, inputShapes: [], batchSize: 0,
                                       queueMilliseconds: 0, computeMilliseconds: 0, status: 200, error: nil)
            server.idleMemory.began()
        }

        func finish(_ response: Response) -> Response {
            var response = response
            response.headers[.requestID] = requestID
            record(Int(response.status.code))
            return response
        }

        /// A random (version 4) UUID, lowercase. Foundation's `UUID()` opened and read
        /// /dev/urandom on every call here: a seventh of a small request's time.
        static func randomID() -> String {
            var generator = SystemRandomNumberGenerator()
            let high = (generator.next() as UInt64) & 0xFFFF_FFFF_FFFF_0FFF | 0x4000
            let low = (generator.next() as UInt64) & 0x3FFF_FFFF_FFFF_FFFF | 0x8000_0000_0000_0000
            let hex = Array("0123456789abcdef".utf8)
            var text = [UInt8]()
            text.reserveCapacity(36)
            for (index, shift) in stride(from: 60, through: 0, by: -4).enumerated() {
                if index == 8 || index == 12 { text.append(UInt8(ascii: "-")) }
                text.append(hex[Int((high >> UInt64(shift)) & 0xF)])
            }
            for (index, shift) in stride(from: 60, through: 0, by: -4).enumerated() {
                if index == 0 || index == 4 { text.append(UInt8(ascii: "-")) }
                text.append(hex[Int((low >> UInt64(shift)) & 0xF)])
            }
            return String(decoding: text, as: UTF8.self)
        }

        /// Counts the answer and writes the log line.
        func record(_ status: Int) {
            server.idleMemory.ended()
            entry.status = status
            let labels = server.metricLabels(model: entry.model, version: entry.version)
            server.metrics.request(model: labels.model, version: labels.version, status: entry.status)
            if server.configuration.logInferences { InferenceLog.write(entry) }
        }

        /// Inputs that passed validation: their shapes and rows for the log.
        func admitted(_ loaded: LoadedModel, _ inputs: [String: Tensor], order: [String]) {
            entry.inputShapes = order.map { ($0, inputs[$0]?.shape ?? []) }
            entry.batchSize = loaded.signature.inputs.first.flatMap { inputs[$0.name]?.shape.first } ?? 1
        }

        /// A run that finished: its times in the log and the latency and batch metrics.
        func ran(_ model: ServedModel, _ loaded: LoadedModel, waited: Duration, computed: Duration) {
            entry.queueMilliseconds = waited.milliseconds
            entry.computeMilliseconds = computed.milliseconds
            server.metrics.latency(model: model.name, version: loaded.version, queue: waited, compute: computed, total: ContinuousClock().now - started)
            server.metrics.batch(model: model.name, version: loaded.version, size: entry.batchSize)
        }

        func fail(_ status: Int, _ message: String, extra: HTTPFields = [:]) -> Response {
            entry.error = message
            return finish(InferenceServer.error(status, message, extra: extra))
        }
    }

    /// The outputs a request asked for (all of them by default), in that order.
    static func select(_ outputs: [String: Tensor], _ names: [String]) -> Result<[(String, Tensor)], RequestError> {
        var selected: [(String, Tensor)] = []
        for name in names {
            guard let tensor = outputs[name] else { return .failure(RequestError(500, "the model did not produce output `\(name)`")) }
            selected.append((name, tensor))
        }
        return .success(selected)
    }

    /// The 504 message for a request past `serving.timeout_ms`; `stopped` when the run itself was
    /// stopped at the deadline rather than finishing late.
    static func timeoutMessage(_ milliseconds: Double, stopped: Bool) -> String {
        "the inference took longer than serving.timeout_ms (\(Int(milliseconds)) ms)\(stopped ? " and was stopped" : "")"
    }

    /// Takes what a request run on the calling task or event loop needs: a free slot at once,
    /// and for a batching model an idle batcher (nothing running or waiting), so a lone request
    /// skips the batcher's hop just as it skips its wait. ``runInline`` gives both back.
    static func claimInline(_ queue: InferenceQueue, _ batcher: Batcher?) -> Bool {
        guard let batcher else { return queue.tryAcquire() }
        guard batcher.beginInline() else { return false }
        if queue.tryAcquire() { return true }
        batcher.endInline()
        return false
    }

    /// Runs the model on the calling task, in the slot and batcher claim `claimInline` took.
    static func runInline(_ backend: any Backend, _ inputs: [String: Tensor], queue: InferenceQueue, batcher: Batcher?, rows: Int,
                          control: RunControl) throws -> Batcher.Outcome {
        defer {
            queue.release()
            batcher?.endInline()
        }
        let start = ContinuousClock.now
        let outputs = try backend.predict(inputs, control: control)
        return Batcher.Outcome(outputs: outputs, waited: .zero, computed: ContinuousClock.now - start, batchRows: rows)
    }

    /// Checks inputs against the signature, waits for a slot, runs the model: the outputs, or
    /// the error response to give.
    func execute(_ call: Call, _ model: ServedModel, _ loaded: LoadedModel, _ queue: InferenceQueue, _ batcher: Batcher?,
                 _ inputs: [String: Tensor], order: [String]) async -> Step<[String: Tensor]> {
        do {
            try loaded.signature.validate(inputs, allowNaN: loaded.manifest.serving.allowNaN)
        } catch {
            call.entry.inputShapes = order.map { ($0, inputs[$0]?.shape ?? []) }
            return .answered(call.fail(400, error.description))
        }
        call.admitted(loaded, inputs, order: order)
        let backend = loaded.backend
        metrics.inFlight(model: model.name, version: loaded.version, queue.inFlight + 1)
        defer { metrics.inFlight(model: model.name, version: loaded.version, queue.inFlight) }
        let outputs: [String: Tensor]
        let waited: Duration, computed: Duration
        let timeout = Duration.microseconds(Int(max(1, loaded.manifest.serving.timeoutMilliseconds) * 1000))
        let deadline = ContinuousClock.now + timeout
        // The run itself stops at the deadline (between nodes and loop iterations), so a slow
        // request frees its slot and thread instead of running on after its 504.
        let control = RunControl(deadline: deadline)
        let rows = call.entry.batchSize
        do {
            // A request as small as the examples that ran in microseconds runs right here, if a
            // slot is free at once: no worker thread, no timer task.
            let inline = queue.inlineElements > 0 && InferenceQueue.elements(inputs) <= queue.inlineElements
                && Self.claimInline(queue, batcher)
            // The request's own work races its deadline; past it the client gets 504, and the
            // run stops at the same deadline (`control`), freeing its slot.
            let outcome: Batcher.Outcome? = inline ? try Self.runInline(backend, inputs, queue: queue, batcher: batcher, rows: rows, control: control) : try await withThrowingTaskGroup(of: Batcher.Outcome?.self) { group in
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
            // The timer shares the cooperative threads with request decoding and can fire late
            // under load; a result that arrives after the deadline is late all the same.
            guard let outcome, ContinuousClock.now <= deadline else {
                return .answered(call.fail(504, Self.timeoutMessage(timeout.milliseconds, stopped: false)))
            }
            (outputs, waited, computed) = (outcome.outputs, outcome.waited, outcome.computed)
            call.entry.batchSize = outcome.batchRows
        } catch ONNXError.stopped {
            return .answered(call.fail(504, Self.timeoutMessage(timeout.milliseconds, stopped: true)))
        } catch is InferenceQueue.Overloaded {
            return .answered(call.fail(503, "model `\(model.name)` is at capacity (\(queue.maxConcurrent) running, \(queue.maxQueued) queued); retry later",
                                      extra: [.retryAfter: "1"]))
        } catch {
            return .answered(call.fail(500, "inference failed: \(error)"))
        }
        call.ran(model, loaded, waited: waited, computed: computed)
        return .proceed(outputs)
    }

    /// The model to run, once ready, or the answer to give instead.
    func readyModel(_ call: Call, _ found: Result<ServedModel, RequestError>) -> Step<(ServedModel, LoadedModel, InferenceQueue, Batcher?)> {
        let model: ServedModel
        switch found {
        case .success(let served): model = served
        case .failure(let error): return .answered(call.fail(error.status, error.description))
        }
        guard case .ready(let loaded, let queue, let batcher) = model.current, !shuttingDown.load(ordering: .relaxed) else {
            return .answered(call.fail(503, "model `\(model.name)` is not ready", extra: [.retryAfter: "1"]))
        }
        call.entry.version = loaded.version
        call.entry.digest = loaded.digest
        return .proceed((model, loaded, queue, batcher))
    }

    func readBody(_ call: Call, _ request: Request, limit: Int) async -> Step<[UInt8]> {
        do {
            return .proceed(Array(buffer: try await request.body.collect(upTo: limit)))
        } catch is NIOTooManyBytesError {
            return .answered(call.fail(413, "the request body is larger than \(limit) bytes (serving.max_body_bytes)"))
        } catch {
            return .answered(call.fail(400, "could not read the request body: \(error)"))
        }
    }

    func infer(_ request: Request, _ context: BasicRequestContext, version: String?) async -> Response {
        let call = Call(self, headers: request.headers, model: context.parameters.get("model") ?? "", version: version)
        let model: ServedModel, loaded: LoadedModel, queue: InferenceQueue, batcher: Batcher?
        switch readyModel(call, lookup(context, version: version)) {
        case .proceed(let ready): (model, loaded, queue, batcher) = ready
        case .answered(let response): return response
        }
        let headerLength = request.headers[.inferenceHeaderContentLength]
        if headerLength == nil, let type = request.headers[.contentType], !type.lowercased().hasPrefix("application/json") {
            return call.fail(415, "send the request as Content-Type: application/json (or with Inference-Header-Content-Length for binary tensors), not \(type)")
        }
        let body: [UInt8]
        switch await readBody(call, request, limit: configuration.maxBodyBytes ?? loaded.manifest.serving.maxBodyBytes) {
        case .proceed(let bytes): body = bytes
        case .answered(let response): return response
        }
        let decoded: InferenceRequest
        do {
            var jsonLength: Int?
            if let headerLength {
                guard let value = Int(headerLength) else { return call.fail(400, "Inference-Header-Content-Length `\(headerLength)` is not a number") }
                jsonLength = value
            }
            decoded = try OIPCodec.decodeRequest(body, headerLength: jsonLength)
        } catch {
            return call.fail(error.status, error.description)
        }
        let outputNames = loaded.signature.outputs.map(\.name)
        if let requested = decoded.requestedOutputs, let unknown = requested.first(where: { !outputNames.contains($0) }) {
            return call.fail(400, "unknown output `\(unknown)`; the model's outputs are \(outputNames.joined(separator: ", "))")
        }
        let outputs: [String: Tensor]
        switch await execute(call, model, loaded, queue, batcher, decoded.inputs, order: decoded.inputOrder) {
        case .proceed(let result): outputs = result
        case .answered(let response): return response
        }
        let selected: [(String, Tensor)]
        switch Self.select(outputs, decoded.requestedOutputs ?? outputNames) {
        case .success(let chosen): selected = chosen
        case .failure(let error): return call.fail(error.status, error.description)
        }
        let binary = { (name: String) in decoded.allOutputsBinary || decoded.binaryOutputs.contains(name) }
        let (json, tail) = OIPCodec.encodeResponse(model: model.name, version: loaded.version, id: decoded.id, outputs: selected, binary: binary)
        if !selected.contains(where: { binary($0.0) }) {
            return call.finish(Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: json))))
        }
        var headers: HTTPFields = [.contentType: "application/octet-stream"]
        headers[.inferenceHeaderContentLength] = String(json.count)
        return call.finish(Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: json + tail))))
    }

    /// MLflow's `POST /invocations`, on the one model this server serves.
    func invocations(_ request: Request) async -> Response {
        guard models.count == 1 else {
            let call = Call(self, headers: request.headers, model: "", version: nil)
            return call.fail(400, "/invocations needs a server with one model; this one serves \(models.map(\.name).joined(separator: ", ")) (use /v2/models/{name}/infer)")
        }
        let call = Call(self, headers: request.headers, model: models[0].name, version: nil)
        let model: ServedModel, loaded: LoadedModel, queue: InferenceQueue, batcher: Batcher?
        switch readyModel(call, .success(models[0])) {
        case .proceed(let ready): (model, loaded, queue, batcher) = ready
        case .answered(let response): return response
        }
        if let type = request.headers[.contentType], !type.lowercased().hasPrefix("application/json") {
            return call.fail(415, "send the request as Content-Type: application/json, not \(type)")
        }
        let body: [UInt8]
        switch await readBody(call, request, limit: configuration.maxBodyBytes ?? loaded.manifest.serving.maxBodyBytes) {
        case .proceed(let bytes): body = bytes
        case .answered(let response): return response
        }
        let inputs: [String: Tensor]
        do { inputs = try MLflowAdapter.inputs(body, signature: loaded.signature) } catch { return call.fail(error.status, error.description) }
        switch await execute(call, model, loaded, queue, batcher, inputs, order: loaded.signature.inputs.map(\.name)) {
        case .answered(let response): return response
        case .proceed(let outputs):
            let selected = loaded.signature.outputs.compactMap { spec in outputs[spec.name].map { (spec.name, $0) } }
            return call.finish(Self.json(.ok, MLflowAdapter.response(selected)))
        }
    }
}

/// A step of handling a request: go on with a value, or the response has been given.
enum Step<T> {
    case proceed(T)
    case answered(Response)
}

extension Duration {
    var milliseconds: Double { Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15 }
}
