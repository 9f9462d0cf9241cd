import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
@testable import VesselServer
import VesselModelSources
import VesselTestSupport

/// The router driven in memory (no socket): every route of the table, auth, and the documents.
@Suite("router in memory")
struct RouterTests {
    /// A server for the bundled iris, its model loaded and warmed up, never listening.
    static func loaded(token: String? = nil) throws -> InferenceServer {
        let sources = [try ModelSource.directory(TestSupport.exampleDirectory)]
        let configuration = ServerConfiguration(port: 0, logInferences: false, announce: false, token: token)
        let server = InferenceServer(sources: sources, names: try InferenceServer.servedNames(sources), configuration: configuration)
        for model in server.models { server.load(model) }
        return server
    }

    static let inferBody = #"{"inputs":[{"name":"X","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}"#
    static let mlflowBody = #"{"inputs":[[5.1,3.5,1.4,0.2]]}"#

    static func body(_ route: Route) -> ByteBuffer? {
        switch route {
        case .infer, .versionInfer: ByteBuffer(string: inferBody)
        case .invocations: ByteBuffer(string: mlflowBody)
        case .predictions: ByteBuffer(string: #"{"id":"p1","input":{"X":[5.1,3.5,1.4,0.2]}}"#)
        default: nil
        }
    }

    @Test("every route of the table answers 200 for the served model, with the body its protocol says")
    func everyRoute() async throws {
        let server = try Self.loaded()
        let app = Application(router: server.buildRouter())
        try await app.test(.router) { client in
            for route in Route.allCases {
                let path = route.path(model: "iris", version: "1.0.0")
                try await client.execute(uri: path, method: route.method, headers: [.contentType: "application/json"], body: Self.body(route)) { response in
                    #expect(response.status == .ok, "\(route) \(path): \(String(buffer: response.body))")
                    let text = String(buffer: response.body)
                    switch route {
                    case .infer, .versionInfer:
                        #expect(text.contains(#""model_name":"iris""#) && text.contains(#""name":"label""#), "\(text)")
                        #expect(response.headers[.requestID]?.isEmpty == false)
                    case .invocations: #expect(text.hasPrefix(#"{"predictions":"#), "\(text)")
                    case .predictions:
                        // Cog's answer: one item, not a batch; several outputs as an object.
                        #expect(text.hasPrefix(#"{"id":"p1","status":"succeeded","output":{"label":0,"probabilities":["#), "\(text)")
                        #expect(text.contains(#""species":"setosa""#), "\(text)")
                    case .healthCheck: #expect(text == #"{"status":"READY"}"#)
                    case .version: #expect(text == InferenceServer.version)
                    case .metrics: #expect(text.contains("vessel_inference_requests_total"))
                    default: break
                    }
                }
            }
        }
    }

    @Test("with a token, only the table's open routes answer without it; every other path, unknown ones too, is 401")
    func authFollowsTheTable() async throws {
        let server = try Self.loaded(token: "s3cret")
        let app = Application(router: server.buildRouter())
        try await app.test(.router) { client in
            for route in Route.allCases {
                let path = route.path(model: "iris", version: "1.0.0")
                try await client.execute(uri: path, method: route.method, headers: [.contentType: "application/json"], body: Self.body(route)) { response in
                    #expect((response.status == .unauthorized) == !route.isOpen, "\(route): \(response.status)")
                    if !route.isOpen { #expect(response.headers[.wwwAuthenticate] == "Bearer") }
                }
                try await client.execute(
                    uri: path, method: route.method, headers: [.contentType: "application/json", .authorization: "Bearer s3cret"],
                    body: Self.body(route)
                ) { response in
                    #expect(response.status == .ok, "\(route) with the token: \(response.status)")
                }
            }
            try await client.execute(uri: "/no/such/path", method: .get) { #expect($0.status == .unauthorized) }
            try await client.execute(uri: "/no/such/path", method: .post, headers: [.authorization: "Bearer s3cret"]) { response in
                #expect(response.status == .notFound)
                #expect(String(buffer: response.body) == #"{"error":"no route for POST /no/such/path"}"#)
            }
            try await client.execute(uri: "/no/such/path", method: .get, headers: [.authorization: "Bearer s3cret"]) { #expect($0.status == .notFound) }
        }
    }

    @Test("/openapi.json documents the table's paths for each served model")
    func openAPIFollowsTheTable() throws {
        let server = try Self.loaded()
        guard case .ready(let loaded, _, _) = server.models[0].current else { Issue.record("iris did not load"); return }
        let document = try #require(JSONSerialization.jsonObject(with: Data(OpenAPI.document(models: [("iris", loaded)], version: "t"))) as? [String: Any])
        let paths = Set((document["paths"] as? [String: Any] ?? [:]).keys)
        let expected: [Route] = [.live, .ready, .metrics, .model, .modelReady, .infer, .invocations, .predictions]
        #expect(paths == Set(expected.map { $0.path(model: "iris") }))
    }

    @Test(
        "the fast lane's path match agrees with the router's patterns",
        arguments: [
            ("/v2/models/iris/infer", "iris", nil),
            ("/v2/models/iris/versions/1.0.0/infer", "iris", "1.0.0"),
            ("/v2/models//infer", nil, nil),
            ("/v2/models/iris/versions//infer", nil, nil),
            ("/v2/models/iris", nil, nil),
            ("/v2/models/iris/infer/", nil, nil),
            ("/v3/models/iris/infer", nil, nil),
            ("v2/models/iris/infer", nil, nil)
        ] as [(String, String?, String?)])
    func inferenceMatch(path: String, model: String?, version: String?) {
        let match = Route.matchInference(path)
        #expect(match.map { String($0.model) } == model)
        #expect(match?.version.map(String.init) == version)
    }

    @Test("Cog's /predictions: a missing, unknown or misshapen input is 422 with FastAPI's detail; async is refused")
    func cogErrors() async throws {
        let server = try Self.loaded()
        let app = Application(router: server.buildRouter())
        try await app.test(.router) { client in
            for (body, message) in [
                (#"{"input":{}}"#, "missing input `X`"), (#"{"input":{"Y":1,"X":[1,2,3,4]}}"#, "unknown input `Y`"),
                (#"{"input":{"X":[1,2,3]}}"#, "expected shape"), (#"{"inputs":[]}"#, "the request body must be"), ("not json", "not valid JSON")
            ] {
                try await client.execute(uri: "/predictions", method: .post, headers: [.contentType: "application/json"], body: ByteBuffer(string: body)) {
                    response in
                    let text = String(buffer: response.body)
                    #expect(response.status.code == 422 && text.hasPrefix(#"{"detail":[{"loc":["body","input"]"#) && text.contains(message), "\(body): \(text)")
                }
            }
            try await client.execute(
                uri: "/predictions", method: .post, headers: [.contentType: "application/json", HTTPField.Name("Prefer")!: "respond-async"],
                body: ByteBuffer(string: #"{"input":{"X":[1,2,3,4]}}"#)
            ) { response in
                #expect(response.status == .badRequest && String(buffer: response.body).contains("\"status\":\"failed\""))
            }
        }
    }
}
