import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Answers `Expect: 100-continue` with an interim `100 Continue`, so clients that ask before
/// sending a large body (curl does, past 1 MiB) send it at once instead of waiting out their
/// timeout. The body limit is still enforced when the handler reads it (413).
///
/// A request whose `Content-Length` already exceeds every body limit is answered 413 at once,
/// before any `100 Continue` and without reading its body, and the connection is closed: a
/// client announcing a gigabyte is told so before it sends one.
final class ExpectContinueHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundOut = HTTPResponsePart

    let server: InferenceServer
    /// Set once a request was refused: the rest of the connection's input is dropped.
    private var refused = false

    init(server: InferenceServer) {
        self.server = server
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if refused { return }
        guard case .head(var request) = unwrapInboundIn(data) else {
            context.fireChannelRead(data)
            return
        }
        let limit = server.largestBodyLimit
        if let length = request.headerFields[.contentLength].flatMap({ Int($0) }), length > limit {
            refused = true
            let body = ByteBuffer(string: OIPCodec.errorBody("the request body (\(length) bytes) is larger than \(limit) bytes (serving.max_body_bytes)"))
            var response = HTTPResponse(status: .contentTooLarge)
            response.headerFields[.contentType] = "application/json"
            response.headerFields[.contentLength] = String(body.readableBytes)
            response.headerFields[.connection] = "close"
            context.write(wrapOutboundOut(.head(response)), promise: nil)
            context.write(wrapOutboundOut(.body(body)), promise: nil)
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
            return
        }
        if request.headerFields[.expect]?.lowercased() == "100-continue" {
            request.headerFields[.expect] = nil
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponse(status: .continue))), promise: nil)
            context.fireChannelRead(wrapInboundOut(.head(request)))
            return
        }
        context.fireChannelRead(data)
    }
}
