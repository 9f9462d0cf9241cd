import HTTPTypes
import NIOCore
import NIOHTTPTypes
import Synchronization
import VesselManifest
import VesselModel

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
            request.headerFields[.contentType].map({ $0.lowercased().hasPrefix("application/json") }) ?? true,
            let (name, version) = Route.matchInference(path)
        else { return nil }
        if let token = server.configuration.token, !Tokens.bearer(request.headerFields[.authorization] ?? "", matches: Array(token.utf8)) {
            return nil
        }
        guard let model = server.models.first(where: { $0.name == name }),
            case .ready(let loaded, let queue, _) = model.current, queue.inlineElements > 0,
            version.map({ $0 == loaded.version }) ?? true
        else { return nil }
        return (model, version.map(String.init), min(Self.maxBody, server.configuration.maxBodyBytes ?? loaded.manifest.serving.maxBodyBytes))
    }

    /// Answers a held request through the inference pipeline, run on this thread; false, with
    /// nothing written or counted, to pass it on instead. A request the pipeline would refuse
    /// (it fails decoding or its checks) is passed on, so the router is the one author of those
    /// answers and the fast lane never holds up an error.
    private func answer(_ request: (head: HTTPRequest, model: ServedModel, version: String?, limit: Int), context: ChannelHandlerContext) -> Bool {
        guard case .ready(let loaded, let queue, let batcher) = request.model.current, !server.shuttingDown.load(ordering: .relaxed),
            let oip = try? OIPCodec.decodeRequest(Array(buffer: body), headerLength: nil),
            !oip.allOutputsBinary, oip.binaryOutputs.isEmpty, !oip.raw,
            InferenceQueue.elements(oip.inputs) <= queue.inlineElements
        else { return false }
        let model = ReadyModel(served: request.model, loaded: loaded, queue: queue, batcher: batcher)
        let decoded = DecodedInference(inputs: oip.inputs, order: oip.inputOrder, requestedOutputs: oip.requestedOutputs)
        guard (try? InferenceServer.check(decoded, against: model)) != nil, InferenceServer.claimInline(queue, batcher) else { return false }

        // Taken: from here the request is answered here, whatever happens.
        server.fastLaneAnswers.add(1, ordering: .relaxed)
        let call = InferenceCall(server, headers: request.head.headerFields, model: model.name, version: request.version)
        call.uses(model)
        call.received(decoded, signature: loaded.signature)
        let close = request.head.headerFields[.connection]?.lowercased() == "close"
        do throws(RequestError) {
            let outputs = try server.runClaimed(call, decoded, on: model)
            let selected = try InferenceServer.select(outputs, decoded, of: model)
            let (json, _) = OIPCodec.encodeResponse(model: model.name, version: loaded.version, id: oip.id, outputs: selected, binary: { _ in false })
            respond(.ok, json, requestID: call.requestID, close: close, context: context)
            call.record(200)
        } catch {
            respond(
                HTTPResponse.Status(code: error.status), Array(OIPCodec.errorBody(error.description).utf8), requestID: call.requestID,
                close: close, context: context)
            call.record(error.status, error: error.description)
        }
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
