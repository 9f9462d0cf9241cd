public import AsyncHTTPClient
import Foundation
public import NIOCore
public import NIOHTTP1
import Synchronization

/// An OCI distribution API client for one registry: requests, the token flow and errors.
///
/// A 401 answers with `WWW-Authenticate`. `Bearer realm=…,service=…,scope=…` sends it to the
/// realm for a token (with the credentials as basic auth when there are any), cached per scope;
/// `Basic` sends the credentials themselves. The request is then retried once.
/// See https://github.com/opencontainers/distribution-spec/blob/main/spec.md and
/// https://distribution.github.io/distribution/spec/auth/token/
public final class RegistryClient: Sendable {
    public let registry: String
    public let baseURL: String
    let http: HTTPClient
    let credentials: Credentials?
    private let authorizations = Mutex<[String: String]>([:])

    public init(registry: String, apiHost: String, insecure: Bool, credentials: Credentials?) {
        self.registry = registry
        self.baseURL = (insecure ? "http://" : "https://") + apiHost
        self.credentials = credentials
        var configuration = HTTPClient.Configuration(redirectConfiguration: .follow(max: 5, allowCycles: false))
        configuration.timeout = .init(connect: .seconds(15), read: .seconds(300))
        configuration.decompression = .disabled
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    public func shutdown() async {
        try? await http.shutdown()
    }

    /// A failed request: what was asked, the status, and the registry's own error message.
    public struct RegistryError: Error, Sendable, CustomStringConvertible {
        public var method: String
        public var url: String
        public var status: Int
        public var message: String
        public var description: String { "\(method) \(url): \(status) \(message)" }
    }

    public struct TransportError: Error, Sendable, CustomStringConvertible {
        public var url: String
        public var underlying: String
        public var description: String { "cannot reach \(url): \(underlying)" }
    }

    /// A URL for a path (`/v2/…`), or a Location header's value resolved against the registry.
    public func url(_ pathOrURL: String) -> String {
        if pathOrURL.hasPrefix("http://") || pathOrURL.hasPrefix("https://") { return pathOrURL }
        return baseURL + (pathOrURL.hasPrefix("/") ? "" : "/") + pathOrURL
    }

    /// Sends a request, authenticating when the registry asks; throws `RegistryError` for a
    /// status outside `expect`. `body` is called again for the retry after a 401.
    public func send(
        _ method: HTTPMethod, _ pathOrURL: String, headers: [(String, String)] = [], scopes: [String],
        expect: Set<Int>, timeout: TimeAmount = .seconds(600), body: (@Sendable () -> HTTPClientRequest.Body)? = nil
    ) async throws -> HTTPClientResponse {
        let target = url(pathOrURL)
        let scopeKey = scopes.joined(separator: " ")
        var retried = false
        while true {
            var request = HTTPClientRequest(url: target)
            request.method = method
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            if let authorization = authorizations.withLock({ $0[scopeKey] }) { request.headers.replaceOrAdd(name: "Authorization", value: authorization) }
            if let body { request.body = body() }
            let response: HTTPClientResponse
            do {
                response = try await http.execute(request, timeout: timeout)
            } catch {
                throw TransportError(url: target, underlying: "\(error)")
            }
            let status = Int(response.status.code)
            if status == 401, !retried, let challenge = response.headers.first(name: "WWW-Authenticate") {
                _ = try? await response.body.collect(upTo: 1 << 20)
                let authorization = try await authorize(challenge: challenge, scopes: scopes)
                authorizations.withLock { $0[scopeKey] = authorization }
                retried = true
                continue
            }
            if expect.contains(status) { return response }
            let text = (try? await response.body.collect(upTo: 1 << 20)).map { String(buffer: $0) } ?? ""
            throw RegistryError(method: method.rawValue, url: target, status: status, message: Self.errorMessage(text, status: status))
        }
    }

    /// The `message` (and `detail`) of the spec's `{"errors": [...]}` body, else the body itself.
    static func errorMessage(_ text: String, status: Int) -> String {
        struct Body: Decodable {
            struct Item: Decodable {
                var code: String?
                var message: String?
            }
            var errors: [Item]?
        }
        if let body = try? JSONDecoder().decode(Body.self, from: Data(text.utf8)), let errors = body.errors, !errors.isEmpty {
            return errors.map { [$0.code, $0.message].compactMap { $0 }.joined(separator: ": ") }.joined(separator: "; ")
        }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if !trimmed.isEmpty { return String(trimmed.prefix(300)) }
        return HTTPResponseStatus(statusCode: status).reasonPhrase
    }

    /// `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`, parsed.
    static func parseChallenge(_ header: String) -> (scheme: String, parameters: [String: String]) {
        let trimmed = header.trimmingCharacters(in: .whitespaces)
        let scheme = String(trimmed.prefix(while: { $0 != " " }))
        var parameters: [String: String] = [:]
        var rest = Substring(trimmed.dropFirst(scheme.count))
        while !rest.isEmpty {
            rest = rest.drop(while: { $0 == " " || $0 == "," })
            guard let equals = rest.firstIndex(of: "=") else { break }
            let key = rest[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            rest = rest[rest.index(after: equals)...]
            var value = ""
            if rest.first == "\"" {
                rest = rest.dropFirst()
                while let character = rest.first, character != "\"" {
                    if character == "\\", let next = rest.dropFirst().first {
                        value.append(next)
                        rest = rest.dropFirst(2)
                    } else {
                        value.append(character)
                        rest = rest.dropFirst()
                    }
                }
                rest = rest.dropFirst()
            } else {
                value = String(rest.prefix(while: { $0 != "," }))
                rest = rest.dropFirst(value.count)
            }
            parameters[key] = value
        }
        return (scheme, parameters)
    }

    private func authorize(challenge: String, scopes: [String]) async throws -> String {
        let (scheme, parameters) = Self.parseChallenge(challenge)
        switch scheme.lowercased() {
        case "basic":
            guard let credentials else {
                throw RegistryError(
                    method: "AUTH", url: baseURL, status: 401, message: "the registry wants a user name and password (vessel login \(registry))")
            }
            return credentials.basicAuthorization
        case "bearer":
            guard let realm = parameters["realm"], var components = URLComponents(string: realm) else {
                throw RegistryError(method: "AUTH", url: baseURL, status: 401, message: "a Bearer challenge without a realm: \(challenge)")
            }
            var query = components.queryItems ?? []
            if let service = parameters["service"] { query.append(URLQueryItem(name: "service", value: service)) }
            let wanted = scopes.isEmpty ? (parameters["scope"].map { [$0] } ?? []) : scopes
            for scope in wanted { query.append(URLQueryItem(name: "scope", value: scope)) }
            components.queryItems = query.isEmpty ? nil : query
            guard let tokenURL = components.string else { throw RegistryError(method: "AUTH", url: realm, status: 401, message: "a malformed realm") }
            var request = HTTPClientRequest(url: tokenURL)
            if let credentials { request.headers.add(name: "Authorization", value: credentials.basicAuthorization) }
            let response: HTTPClientResponse
            do { response = try await http.execute(request, timeout: .seconds(60)) } catch {
                throw TransportError(url: tokenURL, underlying: "\(error)")
            }
            let body = try await response.body.collect(upTo: 1 << 20)
            guard response.status.code == 200 else {
                throw RegistryError(
                    method: "GET", url: tokenURL, status: Int(response.status.code),
                    message: "no token: " + Self.errorMessage(String(buffer: body), status: Int(response.status.code)))
            }
            struct Token: Decodable {
                var token: String?
                var access_token: String?
            }
            guard let token = try? JSONDecoder().decode(Token.self, from: Data(Array(buffer: body))), let value = token.token ?? token.access_token else {
                throw RegistryError(method: "GET", url: tokenURL, status: 200, message: "the token response has no token")
            }
            return "Bearer " + value
        default:
            throw RegistryError(method: "AUTH", url: baseURL, status: 401, message: "an authentication scheme Vessel does not speak: \(challenge)")
        }
    }

    // MARK: Scopes

    public static func pullScope(_ repository: String) -> String { "repository:\(repository):pull" }
    public static func pushScope(_ repository: String) -> String { "repository:\(repository):pull,push" }
}
