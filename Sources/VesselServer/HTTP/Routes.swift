import HTTPTypes

/// Every endpoint the server answers, in one table: the router registers each from here, bearer
/// auth reads which are open, the fast lane matches the inference paths with it, and
/// `/openapi.json` documents the same paths. A path is written once, as a Hummingbird pattern
/// (`:model`, `:version` are parameters).
enum Route: CaseIterable, Sendable {
    case server, live, ready
    case model, modelVersion, modelReady, modelVersionReady
    case infer, versionInfer
    case invocations, ping, health, version, openAPI, metrics
    case predictions, healthCheck
    /// The browser pages and what they read (`--no-ui` leaves these out).
    case home, modelPage, uiModels, uiModel

    var method: HTTPRequest.Method {
        switch self {
        case .infer, .versionInfer, .invocations, .predictions: .post
        default: .get
        }
    }

    var path: String {
        switch self {
        case .server: "/v2"
        case .live: "/v2/health/live"
        case .ready: "/v2/health/ready"
        case .model: "/v2/models/:model"
        case .modelVersion: "/v2/models/:model/versions/:version"
        case .modelReady: "/v2/models/:model/ready"
        case .modelVersionReady: "/v2/models/:model/versions/:version/ready"
        case .infer: "/v2/models/:model/infer"
        case .versionInfer: "/v2/models/:model/versions/:version/infer"
        case .invocations: "/invocations"
        case .ping: "/ping"
        case .health: "/health"
        case .version: "/version"
        case .openAPI: "/openapi.json"
        case .metrics: "/metrics"
        case .predictions: "/predictions"
        case .healthCheck: "/health-check"
        case .home: "/"
        case .modelPage: "/ui/models/:model"
        case .uiModels: "/ui/api/models"
        case .uiModel: "/ui/api/models/:model"
        }
    }

    /// Health checks, which orchestrators probe without credentials: the only routes
    /// `--token-file` leaves open.
    var isOpen: Bool {
        switch self {
        // The pages are shells that show nothing until their JSON routes answer, which need it.
        case .live, .ready, .ping, .health, .healthCheck, .home, .modelPage: true
        default: false
        }
    }

    /// A browser page or what one reads.
    var isUI: Bool {
        switch self {
        case .home, .modelPage, .uiModels, .uiModel: true
        default: false
        }
    }

    /// The path with its parameters filled in (for documents and clients).
    func path(model: String, version: String? = nil) -> String {
        path.replacingParameter(":model", with: model).replacingParameter(":version", with: version ?? "")
    }

    /// The model and version an inference path names (`.infer` or `.versionInfer`), if it is one.
    static func matchInference(_ path: String) -> (model: Substring, version: Substring?)? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        for route in [Route.infer, .versionInfer] {
            let pattern = route.path.split(separator: "/", omittingEmptySubsequences: false)
            guard pattern.count == parts.count else { continue }
            var model: Substring?, version: Substring?
            var matched = true
            for (want, have) in zip(pattern, parts) {
                switch want {
                case ":model": model = have
                case ":version": version = have
                default: matched = matched && want == have
                }
            }
            if matched, let model, !model.isEmpty, version.map({ !$0.isEmpty }) ?? true { return (model, version) }
        }
        return nil
    }
}

extension String {
    fileprivate func replacingParameter(_ parameter: String, with value: String) -> String {
        split(separator: "/", omittingEmptySubsequences: false).map { $0 == parameter ? value : String($0) }.joined(separator: "/")
    }
}
