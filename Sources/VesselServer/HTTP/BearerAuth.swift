import Hummingbird
import HTTPTypes

/// Optional bearer-token auth (`--token-file`), the middleware of the route group that holds every
/// route of ``Route`` but the open ones (the health checks, which orchestrators probe without
/// credentials, and the page shells) and the catch-all for unknown paths: requests there need
/// `Authorization: Bearer <token>`. Tokens are compared in constant time.
struct BearerAuth<Context: RequestContext>: RouterMiddleware {
    let token: [UInt8]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let header = request.headers[.authorization] ?? ""
        guard Tokens.bearer(header, matches: token) else {
            return InferenceServer.error(
                401, header.isEmpty ? "this server needs Authorization: Bearer <token>" : "the bearer token is not valid",
                extra: [.wwwAuthenticate: "Bearer"])
        }
        return try await next(request, context)
    }

}

enum Tokens {
    /// Whether an `Authorization` header value is `Bearer <token>`, compared in constant time.
    static func bearer(_ header: String, matches token: [UInt8]) -> Bool {
        // The scheme is case-insensitive (RFC 9110 §11.1), followed by one or more spaces.
        let bytes = Array(header.utf8)
        let scheme = Array("bearer".utf8)
        guard bytes.count > scheme.count, bytes[scheme.count] == UInt8(ascii: " "),
            zip(bytes, scheme).allSatisfy({ $0 | 0x20 == $1 })
        else {
            return constantTimeEqual([], token)
        }
        let presented = Array(bytes[scheme.count...].drop(while: { $0 == UInt8(ascii: " ") }))
        return constantTimeEqual(presented, token)
    }

    /// Equal bytes, in time that depends only on the lengths, not on where they differ.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt64(a.count ^ b.count)
        for k in 0..<max(a.count, b.count) {
            let x = k < a.count ? a[k] : 0, y = k < b.count ? b[k] : 0
            difference |= UInt64(x ^ y)
        }
        return difference == 0
    }
}
