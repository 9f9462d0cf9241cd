import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization
import VesselManifest
import VesselModel
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
        json(HTTPResponse.Status(code: status), "{\"error\":\(OIPCodec.quote(message))}", requestID: requestID, extra: extra)
    }

    /// The served model a path names, or the 404 to answer.
    func lookup(_ context: BasicRequestContext, version: String?) -> Result<ServedModel, RequestError> {
        let name = context.parameters.get("model") ?? ""
        guard let model = models.first(where: { $0.name == name }) else {
            return .failure(RequestError(404, "unknown model `\(name)`; this server serves \(models.map(\.name).joined(separator: ", "))"))
        }
        if let version, case .ready(let loaded, _) = model.current, loaded.version != version {
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
        case .ready(let loaded, _):
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

    func infer(_ request: Request, _ context: BasicRequestContext, version: String?) async -> Response {
        let clock = ContinuousClock()
        let started = clock.now
        let requestID = request.headers[.requestID].flatMap { $0.isEmpty || $0.count > 200 ? nil : $0 } ?? UUID().uuidString.lowercased()
        var entry = InferenceLog.Entry(requestID: requestID, model: context.parameters.get("model") ?? "", version: version ?? "", digest: nil,
                                       inputShapes: [], batchSize: 0, queueMilliseconds: 0, computeMilliseconds: 0, status: 200, error: nil)
        func finish(_ response: Response) -> Response {
            entry.status = Int(response.status.code)
            metrics.request(model: entry.model, version: entry.version, status: entry.status)
            if configuration.logInferences { InferenceLog.write(entry) }
            return response
        }
        func fail(_ status: Int, _ message: String, extra: HTTPFields = [:]) -> Response {
            entry.error = message
            return finish(Self.error(status, message, requestID: requestID, extra: extra))
        }

        let model: ServedModel
        switch lookup(context, version: version) {
        case .success(let found): model = found
        case .failure(let error): return fail(error.status, error.description)
        }
        guard case .ready(let loaded, let queue) = model.current else {
            return fail(503, "model `\(model.name)` is not ready", extra: [.retryAfter: "1"])
        }
        entry.version = loaded.version
        entry.digest = loaded.digest
        let headerLength = request.headers[.inferenceHeaderContentLength]
        if headerLength == nil, let type = request.headers[.contentType],
           !type.lowercased().hasPrefix("application/json") {
            return fail(415, "send the request as Content-Type: application/json (or with Inference-Header-Content-Length for binary tensors), not \(type)")
        }
        let limit = configuration.maxBodyBytes ?? loaded.manifest.serving.maxBodyBytes
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            return fail(413, "the request body is larger than \(limit) bytes (serving.max_body_bytes)")
        } catch {
            return fail(400, "could not read the request body: \(error)")
        }
        var decoded: InferenceRequest
        do {
            var jsonLength: Int?
            if let headerLength {
                guard let value = Int(headerLength) else { return fail(400, "Inference-Header-Content-Length `\(headerLength)` is not a number") }
                jsonLength = value
            }
            decoded = try OIPCodec.decodeRequest(Array(buffer: body), headerLength: jsonLength)
            entry.inputShapes = decoded.inputOrder.map { ($0, decoded.inputs[$0]?.shape ?? []) }
            try loaded.signature.validate(decoded.inputs, allowNaN: loaded.manifest.serving.allowNaN)
        } catch let error as RequestError {
            return fail(error.status, error.description)
        } catch {
            return fail(400, "\(error)")
        }
        let outputNames = loaded.signature.outputs.map(\.name)
        if let requested = decoded.requestedOutputs, let unknown = requested.first(where: { !outputNames.contains($0) }) {
            return fail(400, "unknown output `\(unknown)`; the model's outputs are \(outputNames.joined(separator: ", "))")
        }
        entry.batchSize = loaded.signature.inputs.first.flatMap { decoded.inputs[$0.name]?.shape.first } ?? 1
        let inputs = decoded.inputs
        let backend = loaded.backend
        metrics.inFlight(model: model.name, version: loaded.version, queue.inFlight + 1)
        defer { metrics.inFlight(model: model.name, version: loaded.version, queue.inFlight) }
        let outputs: [String: Tensor]
        let waited: Duration, computed: Duration
        do {
            let (wait, timed) = try await queue.run { () -> (Duration, [String: Tensor]) in
                let start = ContinuousClock().now
                let result = try backend.predict(inputs)
                return (ContinuousClock().now - start, result)
            }
            waited = wait
            (computed, outputs) = timed
        } catch is InferenceQueue.Overloaded {
            return fail(503, "model `\(model.name)` is at capacity (\(queue.maxConcurrent) running, \(queue.maxQueued) queued); retry later",
                        extra: [.retryAfter: "1"])
        } catch {
            return fail(500, "inference failed: \(error)")
        }
        entry.queueMilliseconds = Double(waited.components.attoseconds) / 1e15 + Double(waited.components.seconds) * 1000
        entry.computeMilliseconds = Double(computed.components.attoseconds) / 1e15 + Double(computed.components.seconds) * 1000
        metrics.latency(model: model.name, version: loaded.version, queue: waited, compute: computed, total: clock.now - started)
        metrics.batch(model: model.name, version: loaded.version, size: entry.batchSize)

        let names = decoded.requestedOutputs ?? outputNames
        var selected: [(String, Tensor)] = []
        for name in names {
            guard let tensor = outputs[name] else { return fail(500, "the model did not produce output `\(name)`") }
            selected.append((name, tensor))
        }
        let (json, binary) = OIPCodec.encodeResponse(model: model.name, version: loaded.version, id: decoded.id, outputs: selected) { name in
            decoded.allOutputsBinary || decoded.binaryOutputs.contains(name)
        }
        if binary.isEmpty && !selected.contains(where: { decoded.allOutputsBinary || decoded.binaryOutputs.contains($0.0) }) {
            return finish(Response(status: .ok, headers: [.contentType: "application/json", .requestID: requestID],
                                   body: .init(byteBuffer: ByteBuffer(bytes: json))))
        }
        var headers: HTTPFields = [.contentType: "application/octet-stream", .requestID: requestID]
        headers[.inferenceHeaderContentLength] = String(json.count)
        return finish(Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: json + binary))))
    }
}
