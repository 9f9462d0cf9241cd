import HTTPTypes
import NIOCore
import NIOHTTPTypes
import Synchronization
import VesselManifest
import VesselModel
import VesselONNX
import VesselTensor

/// The fast lane for small OIP v2 inference requests. For a model whose examples ran in
/// microseconds (``InferenceQueue/inlineElements``), a JSON request that small is answered here,
/// on the event loop that read it, with the same checks, metrics, log line and response body as
/// the router gives, but without a Swift task or a thread hop: at concurrency 1 those were most of
/// an iris request's time.
///
/// Everything else goes on to Hummingbird as it came, and the router answers it: other routes,
/// binary tensors, bodies over 64 KiB, a request that fails decoding or validation (so errors
/// have one author), a model that is not ready, a batching model that is busy or has requests
/// waiting to merge (an idle one runs a lone request here, as its batcher would run it at once
/// and alone), a version that is not served, no free slot, a wrong bearer token, shutdown. Requests on one connection are answered in order: while
/// a request passed on is unanswered, the ones after it are passed on too.
final class FastInferHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    static let maxBody = 64 << 10

    private let server: InferenceServer
    /// The request being collected for the fast lane, and its body so far.
    private var held: (head: HTTPRequest, model: ServedModel, version: String?, limit: Int)?
    private var body = ByteBuffer()
    /// Requests passed on whose response has not ended.
    private var passedOn = 0

    init(server: InferenceServer) {
        self.server = server
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request):
            if passedOn == 0, let (model, version, limit) = candidate(request) {
                held = (request, model, version, limit)
                body.clear()
                return
            }
            passedOn += 1
            context.fireChannelRead(data)
        case .body(var part):
            guard let current = held else { return context.fireChannelRead(data) }
            guard body.readableBytes + part.readableBytes <= current.limit else {
                passOn(current.head, context: context)
                return context.fireChannelRead(data)
            }
            body.writeBuffer(&part)
        case .end:
            guard let current = held else { return context.fireChannelRead(data) }
            held = nil
            if !answer(current, context: context) {
                passOn(current.head, context: context)
                context.fireChannelRead(data)
            }
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data), passedOn > 0 { passedOn -= 1 }
        context.write(data, promise: promise)
    }

    private func closes(_ head: HTTPRequest) -> Bool { head.headerFields[.connection]?.lowercased() == "close" }

    /// Hands a held request to the router after all.
    private func passOn(_ head: HTTPRequest, context: ChannelHandlerContext) {
        held = nil
        passedOn += 1
        context.fireChannelRead(wrapInboundOut(.head(head)))
        if body.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(.body(body))) }
        body = ByteBuffer()
    }

    /// The model an inference request names, if the fast lane may take it, and the most body it
    /// holds back (past that the router answers, 413 past the model's limit).
    private func candidate(_ request: HTTPRequest) -> (ServedModel, String?, Int)? {
        guard request.method == .post, let path = request.path, !path.contains("?"), !server.shuttingDown.load(ordering: .relaxed),
              request.headerFields[.inferenceHeaderContentLength] == nil,
              request.headerFields[.contentType].map({ $0.lowercased().hasPrefix("application/json") }) ?? true else { return nil }
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        let version: String?
        switch parts.count {
        case 5 where parts[0].isEmpty && parts[1] == "v2" && parts[2] == "models" && parts[4] == "infer": version = nil
        case 7 where parts[0].isEmpty && parts[1] == "v2" && parts[2] == "models" && parts[4] == "versions" && parts[6] == "infer":
            version = String(parts[5])
        default: return nil
        }
        if let token = server.configuration.token, !Tokens.bearer(request.headerFields[.authorization] ?? "", matches: Array(token.utf8)) {
            return nil
        }
        guard let model = server.models.first(where: { $0.name == parts[3] }),
              case .ready(let loaded, let queue, _) = model.current, queue.inlineElements > 0,
              version == nil || version == loaded.version else { return nil }
        return (model, version, min(Self.maxBody, server.configuration.maxBodyBytes ?? loaded.manifest.serving.maxBodyBytes))
    }

    /// Answers a held request; false, with nothing written or counted, to pass it on instead.
    private func answer(_ request: (head: HTTPRequest, model: ServedModel, version: String?, limit: Int), context: ChannelHandlerContext) -> Bool {
        let model = request.model
        guard case .ready(let loaded, let queue, let batcher) = model.current, !server.shuttingDown.load(ordering: .relaxed),
              let decoded = try? OIPCodec.decodeRequest(Array(buffer: body), headerLength: nil),
              !decoded.allOutputsBinary, decoded.binaryOutputs.isEmpty,
              InferenceQueue.elements(decoded.inputs) <= queue.inlineElements else { return false }
        let outputNames = loaded.signature.outputs.map(\.name)
        if let requested = decoded.requestedOutputs, requested.contains(where: { !outputNames.contains($0) }) { return false }
        guard (try? loaded.signature.validate(decoded.inputs, allowNaN: loaded.manifest.serving.allowNaN)) != nil,
              InferenceServer.claimInline(queue, batcher) else { return false }

        // Taken: from here the request is answered here, whatever happens.
        server.fastLaneAnswers.add(1, ordering: .relaxed)
        let call = InferenceServer.Call(server, headers: request.head.headerFields, model: model.name, version: request.version)
        call.entry.version = loaded.version
        call.entry.digest = loaded.digest
        call.admitted(loaded, decoded.inputs, order: decoded.inputOrder)
        server.metrics.inFlight(model: model.name, version: loaded.version, queue.inFlight)
        let outcome: Batcher.Outcome
        let timeout = max(1, loaded.manifest.serving.timeoutMilliseconds)
        do {
            // Only models whose cost is bounded by their inputs get here (see `warmUp`); the
            // deadline still stops one that a loaded machine makes slow.
            let control = RunControl(deadline: call.started + .microseconds(Int(timeout * 1000)))
            outcome = try InferenceServer.runInline(loaded.backend, decoded.inputs, queue: queue, batcher: batcher, rows: call.entry.batchSize, control: control)
        } catch ONNXError.stopped {
            server.metrics.inFlight(model: model.name, version: loaded.version, queue.inFlight)
            return fail(call, 504, InferenceServer.timeoutMessage(timeout, stopped: true), close: closes(request.head), context: context)
        } catch {
            server.metrics.inFlight(model: model.name, version: loaded.version, queue.inFlight)
            return fail(call, 500, "inference failed: \(error)", close: closes(request.head), context: context)
        }
        server.metrics.inFlight(model: model.name, version: loaded.version, queue.inFlight)
        if (ContinuousClock.now - call.started).milliseconds > timeout {
            return fail(call, 504, InferenceServer.timeoutMessage(timeout, stopped: false), close: closes(request.head), context: context)
        }
        call.ran(model, loaded, waited: outcome.waited, computed: outcome.computed)
        let selected: [(String, Tensor)]
        switch InferenceServer.select(outcome.outputs, decoded.requestedOutputs ?? outputNames) {
        case .success(let chosen): selected = chosen
        case .failure(let error): return fail(call, error.status, error.description, close: closes(request.head), context: context)
        }
        let (json, _) = OIPCodec.encodeResponse(model: model.name, version: loaded.version, id: decoded.id, outputs: selected, binary: { _ in false })
        respond(.ok, json, requestID: call.requestID, close: closes(request.head), context: context)
        call.record(200)
        return true
    }

    private func fail(_ call: InferenceServer.Call, _ status: Int, _ message: String, close: Bool, context: ChannelHandlerContext) -> Bool {
        call.entry.error = message
        respond(HTTPResponse.Status(code: status), Array(OIPCodec.errorBody(message).utf8), requestID: call.requestID, close: close,
                context: context)
        call.record(status)
        return true
    }

    private func respond(_ status: HTTPResponse.Status, _ json: [UInt8], requestID: String, close: Bool, context: ChannelHandlerContext) {
        var head = HTTPResponse(status: status)
        head.headerFields[.contentType] = "application/json"
        head.headerFields[.contentLength] = String(json.count)
        head.headerFields[.requestID] = requestID
        head.headerFields[.server] = "vessel/\(InferenceServer.version)"
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(context.channel.allocator.buffer(bytes: json))), promise: nil)
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        // As the router does: `Connection: close` closes the connection after the response.
        if close {
            let channel = context.channel
            written.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
