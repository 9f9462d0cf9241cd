import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1

/// Hummingbird's HTTP/1 channel with a handler more, right after NIO's request decoder: an
/// HTTP/1.0 request without `Connection: keep-alive` gets `Connection: close`, so the
/// connection closes after its response as HTTP/1.0 says. (The request reaches the rest of the
/// pipeline as swift-http-types, which carry no HTTP version: without this, an HTTP/1.0 client
/// that waits for the close never gets it, and its connection stays open.)
///
/// It also places the fast lane (``FastInferHandler``) after Hummingbird's connection state
/// handler rather than before it, where `additionalChannelHandlers` go: the requests the fast
/// lane answers must count as activity for the idle timeout (else a busy connection served only
/// by the fast lane is closed as idle) and for graceful shutdown.
struct VesselHTTP1Channel: ServerChildChannel, HTTPChannelHandler {
    typealias Value = HTTP1Channel.Value
    let inner: HTTP1Channel
    let fastLane: @Sendable () -> FastInferHandler?

    var responder: HTTPChannelHandler.Responder { inner.responder }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        inner.setup(channel: channel, logger: logger).flatMapThrowing { value in
            let decoder = try channel.pipeline.syncOperations.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try channel.pipeline.syncOperations.addHandler(HTTP10CloseHandler(), position: .after(decoder))
            if let fastLane = fastLane() {
                let state = try channel.pipeline.syncOperations.handler(type: HTTPConnectionStateHandler.self)
                try channel.pipeline.syncOperations.addHandler(fastLane, position: .after(state))
            }
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}

/// Marks HTTP/1.0 requests that did not ask to keep the connection `Connection: close`.
final class HTTP10CloseHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(var head) = unwrapInboundIn(data), head.version.major == 1, head.version.minor == 0,
            !head.headers["connection"].contains(where: { $0.lowercased().contains("keep-alive") })
        {
            head.headers.replaceOrAdd(name: "connection", value: "close")
            context.fireChannelRead(wrapInboundOut(.head(head)))
            return
        }
        context.fireChannelRead(data)
    }
}

extension HTTPServerBuilder {
    /// `.http1(configuration:)` with HTTP/1.0 connections closed after their response.
    static func vesselHTTP1(configuration: HTTP1Channel.Configuration, fastLane: @escaping @Sendable () -> FastInferHandler?) -> HTTPServerBuilder {
        .init { responder in VesselHTTP1Channel(inner: HTTP1Channel(responder: responder, configuration: configuration), fastLane: fastLane) }
    }
}
