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
import VesselTensor

extension InferenceServer {
    /// Registers every route of the ``Route`` table with its handler.
    func addRoutes<Routes: RouterMethods<BasicRequestContext>>(_ router: Routes, where include: (Route) -> Bool) {
        for route in Route.allCases where (configuration.ui || !route.isUI) && include(route) {
            let handle = handler(route)
            router.on(RouterPath(route.path), method: route.method) { request, context in await handle(request, context) }
        }
    }

    func handler(_ route: Route) -> @Sendable (Request, BasicRequestContext) async -> Response {
        switch route {
        case .server:
            return { _, _ in
                Self.json(.ok, "{\"name\":\"vessel\",\"version\":\"\(Self.version)\",\"extensions\":[\"binary_tensor_data\",\"model_metadata\",\"metrics\"]}")
            }
        case .live: return { _, _ in Self.json(.ok, "{\"live\":true}") }
        case .ready:
            return { [self] _, _ in isReady ? Self.json(.ok, "{\"ready\":true}") : Self.json(.serviceUnavailable, "{\"ready\":false}") }
        case .model: return { [self] _, context in metadata(context, version: nil) }
        case .modelVersion: return { [self] _, context in metadata(context, version: context.parameters.get("version")) }
        case .modelReady: return { [self] _, context in modelReady(context, version: nil) }
        case .modelVersionReady: return { [self] _, context in modelReady(context, version: context.parameters.get("version")) }
        case .infer: return { [self] request, context in await infer(request, context, version: nil) }
        case .versionInfer: return { [self] request, context in await infer(request, context, version: context.parameters.get("version")) }
        case .invocations: return { [self] request, _ in await invocations(request) }
        case .predictions: return { [self] request, _ in await predictions(request) }
        case .home: return { [self] _, _ in homePage() }
        case .modelPage: return { [self] _, context in modelPage(context) }
        case .uiModels: return { [self] _, _ in modelList() }
        case .uiModel: return { [self] _, context in await modelContract(context) }
        case .healthCheck:
            // Cog's: READY once every model is, STARTING while loading, else FAILED.
            return { [self] _, _ in
                let states = models.map(\.current)
                let status = isReady ? "READY" : states.contains { if case .failed = $0 { true } else { false } } ? "FAILED" : "STARTING"
                return Self.json(status == "READY" ? .ok : .serviceUnavailable, "{\"status\":\"\(status)\"}")
            }
        case .ping, .health: return { [self] _, _ in isReady ? Self.json(.ok, "{}") : Self.json(.serviceUnavailable, "{}") }
        case .version:
            return { _, _ in Response(status: .ok, headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: Self.version))) }
        case .openAPI:
            return { [self] _, _ in
                let ready = models.compactMap { model -> (name: String, model: LoadedModel)? in
                    if case .ready(let loaded, _, _) = model.current { return (model.name, loaded) }
                    return nil
                }
                return Response(
                    status: .ok, headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(bytes: OpenAPI.document(models: ready, version: Self.version))))
            }
        case .metrics:
            return { [self] _, _ in
                for model in models {
                    guard case .ready(let loaded, let queue, _) = model.current else { continue }
                    metrics.inFlight(model: model.name, version: loaded.version, queue.inFlight, queued: queue.queued)
                    if let workers = loaded.backend.workers {
                        metrics.workers(model: model.name, version: loaded.version, workers)
                    }
                }
                return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(bytes: metrics.text())))
            }
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

    /// A failure's response: `{"error": …}`, or the transport's own `body`, with `Retry-After`
    /// when the failure gives one.
    static func error(_ failure: RequestError, body: String? = nil) -> Response {
        json(
            HTTPResponse.Status(code: failure.status), body ?? OIPCodec.errorBody(failure.description),
            extra: failure.retryAfterSeconds.map { [.retryAfter: String($0)] } ?? [:])
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
        case .failure(let error): return Self.error(error)
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
        case .failure(let error): return Self.error(error)
        case .success(let model):
            if case .ready(let loaded, _, _) = model.current, loaded.backend.unavailableReason == nil, !shuttingDown.load(ordering: .relaxed) {
                return Self.json(.ok, "{\"name\":\(OIPCodec.quote(model.name)),\"ready\":true}")
            }
            return Self.json(.serviceUnavailable, "{\"name\":\(OIPCodec.quote(model.name)),\"ready\":false}")
        }
    }

    func readBody(_ request: Request, limit: Int) async throws(RequestError) -> [UInt8] {
        do {
            return Array(buffer: try await request.body.collect(upTo: limit))
        } catch is NIOTooManyBytesError {
            throw RequestError(413, "the request body is larger than \(limit) bytes (serving.max_body_bytes)")
        } catch {
            throw RequestError(400, "could not read the request body: \(error)")
        }
    }

    /// `POST /v2/models/{model}[/versions/{version}]/infer`: the OIP v2 transport over the
    /// pipeline (JSON, and binary tensors with `Inference-Header-Content-Length`).
    func infer(_ request: Request, _ context: BasicRequestContext, version: String?) async -> Response {
        let call = InferenceCall(self, headers: request.headers, model: context.parameters.get("model") ?? "", version: version)
        do throws(RequestError) {
            let model = try ready(call, lookup(context, version: version).get())
            let headerLength = request.headers[.inferenceHeaderContentLength]
            if headerLength == nil, let type = request.headers[.contentType], !type.lowercased().hasPrefix("application/json") {
                throw RequestError(
                    415, "send the request as Content-Type: application/json (or with Inference-Header-Content-Length for binary tensors), not \(type)")
            }
            let body = try await readBody(request, limit: configuration.maxBodyBytes ?? model.loaded.manifest.serving.maxBodyBytes)
            var jsonLength: Int?
            if let headerLength {
                guard let value = Int(headerLength) else { throw RequestError(400, "Inference-Header-Content-Length `\(headerLength)` is not a number") }
                jsonLength = value
            }
            let oip = try OIPCodec.decodeRequest(body, headerLength: jsonLength)
            let decoded = DecodedInference(inputs: oip.inputs, order: oip.inputOrder, requestedOutputs: oip.requestedOutputs, raw: oip.raw)
            try admit(call, decoded, to: model)
            let outputs = try await run(call, decoded, on: model)
            let selected = try Self.select(outputs, decoded, of: model)
            let binary = { (name: String) in oip.allOutputsBinary || oip.binaryOutputs.contains(name) }
            let (json, tail) = OIPCodec.encodeResponse(model: model.name, version: model.loaded.version, id: oip.id, outputs: selected, binary: binary)
            if !selected.contains(where: { binary($0.0) }) {
                return call.finish(Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: json))))
            }
            var headers: HTTPFields = [.contentType: "application/octet-stream"]
            headers[.inferenceHeaderContentLength] = String(json.count)
            return call.finish(Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: json + tail))))
        } catch {
            return call.fail(error)
        }
    }

    /// Cog's `POST /predictions`, on the one model this server serves: the Cog transport over
    /// the pipeline. Input problems are 422 with FastAPI's `detail` (as Cog answers); a failed
    /// run is `{"status": "failed", "error": …}` with the pipeline's status.
    func predictions(_ request: Request) async -> Response {
        let call = InferenceCall(self, headers: request.headers, model: models.count == 1 ? models[0].name : "", version: nil)
        var id: String?
        do throws(RequestError) {
            guard models.count == 1 else {
                throw RequestError(
                    400,
                    "/predictions needs a server with one model; this one serves \(models.map(\.name).joined(separator: ", ")) (use /v2/models/{name}/infer)")
            }
            if let prefer = request.headers[HTTPField.Name("Prefer")!], prefer.lowercased().contains("respond-async") {
                throw RequestError(400, "asynchronous predictions (Prefer: respond-async, webhooks) are not supported; send the request without it")
            }
            let model = try ready(call, models[0])
            if let type = request.headers[.contentType], !type.lowercased().hasPrefix("application/json") {
                throw RequestError(415, "send the request as Content-Type: application/json, not \(type)")
            }
            let body = try await readBody(request, limit: configuration.maxBodyBytes ?? model.loaded.manifest.serving.maxBodyBytes)
            let parsed = try CogAdapter.inputs(body, signature: model.loaded.signature)
            id = parsed.id
            let decoded = DecodedInference(inputs: parsed.inputs, order: model.loaded.signature.inputs.map(\.name), requestedOutputs: nil)
            do throws(RequestError) { try admit(call, decoded, to: model) } catch {
                throw RequestError(422, error.description)
            }
            let started = ContinuousClock.now
            let outputs: [String: Tensor]
            do throws(RequestError) { outputs = try await run(call, decoded, on: model) } catch {
                // An input the predictor's own constraints refuse (Cog's `Input(ge=…)`) is a 422 too.
                throw error.status == 400 ? RequestError(422, error.description) : error
            }
            let selected = try Self.select(outputs, decoded, of: model)
            let text = CogAdapter.response(
                id: id, outputs: selected, signature: model.loaded.signature,
                seconds: (ContinuousClock.now - started).milliseconds / 1000)
            return call.finish(Self.json(.ok, text))
        } catch {
            return call.fail(
                error,
                body: error.status == 422
                    ? CogAdapter.validationError(error.description, input: nil)
                    : CogAdapter.failed(id: id, error.description))
        }
    }

    /// MLflow's `POST /invocations`, on the one model this server serves: the MLflow transport
    /// over the same pipeline.
    func invocations(_ request: Request) async -> Response {
        let call = InferenceCall(self, headers: request.headers, model: models.count == 1 ? models[0].name : "", version: nil)
        do throws(RequestError) {
            guard models.count == 1 else {
                throw RequestError(
                    400,
                    "/invocations needs a server with one model; this one serves \(models.map(\.name).joined(separator: ", ")) (use /v2/models/{name}/infer)")
            }
            let model = try ready(call, models[0])
            if let type = request.headers[.contentType], !type.lowercased().hasPrefix("application/json") {
                throw RequestError(415, "send the request as Content-Type: application/json, not \(type)")
            }
            let body = try await readBody(request, limit: configuration.maxBodyBytes ?? model.loaded.manifest.serving.maxBodyBytes)
            let inputs = try MLflowAdapter.inputs(body, signature: model.loaded.signature)
            let decoded = DecodedInference(inputs: inputs, order: model.loaded.signature.inputs.map(\.name), requestedOutputs: nil)
            try admit(call, decoded, to: model)
            let outputs = try await run(call, decoded, on: model)
            let selected = model.outputNames.compactMap { name in outputs[name].map { (name, $0) } }
            return call.finish(Self.json(.ok, MLflowAdapter.response(selected)))
        } catch {
            return call.fail(error)
        }
    }
}
