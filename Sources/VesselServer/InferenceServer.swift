#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import UnixSignals
public import VesselManifest
public import VesselModel
public import VesselStore
import VesselSystem

/// A model to serve: the name it is served under, known before anything loads, and how to load
/// it. Where models come from (a vessel.yaml directory, an artifact in the store) is the caller's
/// business; this module knows only an image's unpacked root (``unpacked(root:index:alias:)``), so
/// the runtime binary needs no YAML parser and no store.
public struct ModelSource: Sendable {
    /// The manifest's name, or the `ALIAS=` it was given.
    public var name: String
    /// Loads, verifies and opens the model; `workDirectory` is the server's own directory for
    /// this model (where an artifact may be unpacked). Errors leave the model not ready.
    public var open: @Sendable (_ workDirectory: String) throws -> LoadedModel

    public init(name: String, open: @escaping @Sendable (_ workDirectory: String) throws -> LoadedModel) {
        self.name = name
        self.open = open
    }

    /// The model of an image: files a container runtime unpacked under `root`, each checked
    /// against `index` before the model loads; the manifest is the one the index carries.
    public static func unpacked(root: String, index: UnpackedFileIndex, alias: String? = nil) throws -> ModelSource {
        guard let manifest = index.manifest else {
            throw RequestError(
                400, "the file index of \(index.name) \(index.version) carries no manifest (an image built by an older vessel); rebuild the image")
        }
        return ModelSource(name: alias ?? manifest.name) { _ in
            let started = Date()
            try index.verify(root: root)
            return try LoadedModel.open(manifest: manifest, directory: root, digest: index.artifact, started: started)
        }
    }
}

public struct ServerConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// Overrides each model's `serving.max_body_bytes`.
    public var maxBodyBytes: Int?
    /// How long in-flight requests may take to finish after SIGTERM/SIGINT.
    public var shutdownGrace: Duration
    /// One JSON line per inference on standard output.
    public var logInferences: Bool
    /// Where artifacts are unpacked to be served.
    public var workDirectory: String
    /// Say on standard error when each model is ready or failed.
    public var announce: Bool
    /// Bearer token every endpoint but the health checks needs (`--token-file`).
    public var token: String?
    /// Run each model's examples as its warm-up, ready only if they match (off for
    /// `vessel test`, which runs them over HTTP and reports each).
    public var warmUpWithExamples: Bool
    /// A model whose examples each run within this serves requests up to four times their size
    /// on the task that decoded them: for a tabular model, the hop to a worker thread and back
    /// costs more than the model. Zero turns it off.
    public var inlineBudget: Duration = .microseconds(100)
    /// Such a model's small JSON inference requests are answered on the event loop that read
    /// them (``FastInferHandler``); off, every request goes through the router.
    public var fastLane = true
    /// The browser pages (`GET /`, `/ui/…`); `--no-ui` turns them off.
    public var ui = true
    /// What was checked of each model's signature before serving (`--require-signature`), by
    /// served name, for the pages.
    public var signatures: [String: String] = [:]
    /// A connection that sends nothing for this long (no complete header, no body bytes, no next
    /// request) is closed: slow clients cannot hold descriptors forever.
    public var idleTimeout: Duration = .seconds(30)
    /// The most connections open at once; past it the server stops accepting until one closes
    /// (new clients wait in the listen backlog). Nil: half the process's descriptor limit, at
    /// most 8,192.
    public var maxConnections: Int?

    /// The connection cap in force.
    var connectionLimit: Int {
        if let maxConnections { return max(1, maxConnections) }
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 512 }
        return Int(max(16, min(8192, limit.rlim_cur / 2)))
    }

    public init(
        host: String = "127.0.0.1", port: Int = 8080, maxBodyBytes: Int? = nil, shutdownGrace: Duration = .seconds(30),
        logInferences: Bool = true, announce: Bool = true, warmUpWithExamples: Bool = true, token: String? = nil,
        workDirectory: String = FileSystem.join(
            ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp",
            "vessel-serve-\(ProcessInfo.processInfo.processIdentifier)-\(UInt32.random(in: 0...UInt32.max))")
    ) {
        self.host = host
        self.port = port
        self.maxBodyBytes = maxBodyBytes
        self.shutdownGrace = shutdownGrace
        self.logInferences = logInferences
        self.workDirectory = workDirectory
        self.announce = announce
        self.warmUpWithExamples = warmUpWithExamples
        self.token = token
    }
}

/// One served model's state: loading, ready (loaded, verified, examples passed), or failed.
final class ServedModel: Sendable {
    enum State: Sendable {
        case loading
        case ready(LoadedModel, InferenceQueue, Batcher?)
        case failed(String)
    }

    let name: String
    let source: ModelSource
    let state = Mutex<State>(.loading)

    init(name: String, source: ModelSource) {
        self.name = name
        self.source = source
    }

    var current: State { state.withLock { $0 } }

    /// The body limit in force for this model, once it is loaded.
    var maxBodyBytes: Int? {
        if case .ready(let loaded, _, _) = current { return loaded.manifest.serving.maxBodyBytes }
        return nil
    }
}

/// The Open Inference Protocol v2 server (REST): health, server and model metadata, readiness,
/// inference with JSON and binary tensors; `/metrics`; graceful shutdown.
public final class InferenceServer: Sendable {
    public let configuration: ServerConfiguration
    let models: [ServedModel]
    let metrics = ServerMetrics()
    /// Returns memory to the system after the server has been idle a while.
    let idleMemory = IdleMemoryService()
    let shuttingDown = Atomic<Bool>(false)
    /// Inference requests ``FastInferHandler`` answered.
    let fastLaneAnswers = Atomic<Int>(0)
    private let group = Mutex<ServiceGroup?>(nil)
    /// The port once listening (0 if the server stopped before it listened).
    let listeningPort = Latch<Int>()
    /// Set once every model has loaded or failed (or the server stopped).
    let loadingFinished = Latch<Bool>()
    public static let version = "0.1.0"

    /// `names` are the served names, from `servedNames`, which checks they are unique.
    ///
    /// Not optimized: Swift 6.3.1's release pipeline crashes in CopyPropagation on this
    /// initializer ("Found outside of lifetime use", the `Atomic` properties' drop_deinit). It
    /// runs once per server.
    @_optimize(none)
    public init(sources: [ModelSource], names: [String], configuration: ServerConfiguration) {
        self.configuration = configuration
        models = zip(names, sources).map { ServedModel(name: $0, source: $1) }
    }

    /// The served name of each source, read from its manifest (or its alias) before anything
    /// loads, so a duplicate name fails at once.
    public static func servedNames(_ sources: [ModelSource]) throws -> [String] {
        var names: [String] = []
        for name in sources.map(\.name) {
            guard !names.contains(name) else { throw RequestError(400, "two models would be served as `\(name)`; rename one with ALIAS=REF") }
            names.append(name)
        }
        return names
    }

    /// The largest body any endpoint accepts: the override, else the largest of the loaded
    /// models' limits (the manifest default until one is loaded).
    var largestBodyLimit: Int {
        configuration.maxBodyBytes ?? models.compactMap(\.maxBodyBytes).max() ?? ServingSettings().maxBodyBytes
    }

    /// The labels a request is counted under: a served model's name and version, or `_unknown`
    /// for any other name, so hostile names cannot grow the metrics without bound.
    func metricLabels(model: String, version: String) -> (model: String, version: String) {
        guard let served = models.first(where: { $0.name == model }) else { return ("_unknown", "") }
        if case .ready(let loaded, _, _) = served.current, loaded.version == version { return (model, version) }
        return (model, "")
    }

    /// Every model is ready and the server is not shutting down.
    var isReady: Bool {
        // A model whose worker processes are all restarting is not ready until one is back.
        !shuttingDown.load(ordering: .relaxed)
            && models.allSatisfy { if case .ready(let loaded, _, _) = $0.current { loaded.backend.unavailableReason == nil } else { false } }
    }

    /// Serves until SIGTERM/SIGINT (or `shutdown()`); `onListening` gets the bound port (useful
    /// with port 0). Models load after the server listens: liveness answers at once, readiness
    /// once each model is loaded, verified and has passed its examples.
    public func run(onListening: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        var logger = Logger(label: "vessel")
        logger.logLevel = .warning
        let app = Application(
            responder: buildRouter().buildResponder(),
            server: .vesselHTTP1(
                configuration: .init(
                    additionalChannelHandlers: [ExpectContinueHandler(server: self)],
                    idleTimeout: .nanoseconds(Int64(configuration.idleTimeout.milliseconds * 1_000_000))),
                fastLane: { self.configuration.fastLane ? FastInferHandler(server: self) : nil }),
            configuration: .init(
                address: .hostname(configuration.host, port: configuration.port), serverName: "vessel/\(Self.version)",
                availableConnectionsDelegate: MaximumAvailableConnections(configuration.connectionLimit)),
            onServerRunning: { [listeningPort] channel in
                let port = channel.localAddress?.port ?? 0
                listeningPort.set(port)
                onListening(port)
            },
            logger: logger
        )
        let loader = ModelLoader(server: self)
        let serviceGroup = ServiceGroup(
            configuration: .init(
                services: [.init(service: app), .init(service: loader), .init(service: idleMemory)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                cancellationSignals: [],
                logger: logger
            ).withGrace(configuration.shutdownGrace))
        group.withLock { $0 = serviceGroup }
        defer {
            try? FileManager.default.removeItem(atPath: configuration.workDirectory)
            // Whoever awaits these learns the server is gone rather than waiting forever.
            listeningPort.set(0)
            loadingFinished.set(false)
        }
        try await serviceGroup.run()
    }

    /// The port the server listens on, once it does (port 0 asks the system for one); 0 if it
    /// stopped first.
    public func boundPort() async -> Int { await listeningPort.wait() }

    /// Returns once every model has loaded (ready) or failed; false if the server stopped first.
    @discardableResult
    public func modelsLoaded() async -> Bool { await loadingFinished.wait() }

    /// Every route of ``Route``: what `run` serves, and what tests drive in memory
    /// (HummingbirdTesting's `.router`). With a token, the routes that are not open form a group
    /// behind ``BearerAuth``, and so does the catch-all for paths no route matches (a 401 before
    /// the 404), so an unauthenticated client learns nothing of what is served.
    func buildRouter() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        let protected: RouterGroup<BasicRequestContext>
        if let token = configuration.token {
            addRoutes(router, where: \.isOpen)
            protected = router.group().add(middleware: BearerAuth(token: Array(token.utf8)))
        } else {
            protected = router.group()
        }
        addRoutes(protected, where: { configuration.token == nil || !$0.isOpen })
        for method in [HTTPRequest.Method.get, .post, .put, .delete, .patch, .head, .options] {
            protected.on("**", method: method) { request, _ in
                InferenceServer.error(404, "no route for \(request.method) \(request.uri.path)")
            }
        }
        return router
    }

    /// Starts a graceful shutdown, as SIGTERM does.
    public func shutdown() async {
        shuttingDown.store(true, ordering: .relaxed)
        await group.withLock { $0 }?.triggerGracefulShutdown()
    }

    /// Loads one model: verify and unpack (artifacts), load the backend, run the examples; ready
    /// only once the blobs it reads in place (checked meanwhile) passed as well.
    func load(_ model: ServedModel) {
        do {
            let loaded = try model.source.open(FileSystem.join(configuration.workDirectory, model.name))
            let started = Date()
            let inlineElements: Int
            do {
                inlineElements = try warmUp(loaded)
            } catch {
                // A blob that fails its check explains a failed example better than the example.
                try loaded.pendingCheck?.wait()
                throw error
            }
            try loaded.pendingCheck?.wait()
            let serving = loaded.manifest.serving
            let queue = InferenceQueue(
                maxConcurrent: serving.maxConcurrency, maxQueued: serving.maxQueue,
                inlineElements: inlineElements)
            var batcher: Batcher?
            if serving.maxBatchSize > 1 {
                if Batcher.canBatch(loaded.signature) {
                    batcher = Batcher(
                        maxRows: serving.maxBatchSize, maxDelay: .microseconds(Int(serving.maxDelayMilliseconds * 1000)),
                        backend: loaded.backend, queue: queue, outputNames: loaded.signature.outputs.map(\.name),
                        timeout: .microseconds(Int(max(1, serving.timeoutMilliseconds) * 1000)))
                } else if configuration.announce {
                    StandardStreams.error(
                        "vessel: model `\(model.name)`: dynamic batching is off, since not every input and output has a dynamic first dimension")
                }
            }
            model.state.withLock { $0 = .ready(loaded, queue, batcher) }
            metrics.loaded(model: model.name, version: loaded.version, seconds: loaded.loadSeconds + Date().timeIntervalSince(started))
            if configuration.announce {
                StandardStreams.error("vessel: model `\(model.name)` \(loaded.version) ready (\(loaded.manifest.examples.count) example(s) passed)")
            }
        } catch {
            model.state.withLock { $0 = .failed("\(error)") }
            if configuration.announce { StandardStreams.error("vessel: model `\(model.name)` failed to load: \(error)") }
        }
    }
}

extension InferenceServer {
    /// Runs the model's examples and checks their outputs; returns how many input elements a
    /// request may have and still run inline: 4× the largest example that ran within
    /// `inlineBudget` (timed again when the first, cold run was quick), 0 if none did.
    func warmUp(_ loaded: LoadedModel) throws -> Int {
        var inlineElements = 0
        // A request small in bytes can still be slow when the work is data (a Loop's trip
        // count, a Range or Expand size): such models never run on an event loop.
        let mayInline = configuration.inlineBudget > .zero && loaded.backend.costIsBoundedByInputs
        let clock = ContinuousClock()
        for example in configuration.warmUpWithExamples ? try loaded.examples() : [] {
            var start = clock.now
            let outputs = try loaded.backend.predict(example.inputs)
            var took = clock.now - start
            if configuration.inlineBudget > .zero, took < .milliseconds(2) {
                start = clock.now
                _ = try loaded.backend.predict(example.inputs)
                took = min(took, clock.now - start)
            }
            if mayInline, took <= configuration.inlineBudget {
                inlineElements = max(inlineElements, 4 * InferenceQueue.elements(example.inputs))
            }
            for (name, expected) in example.outputs.sorted(by: { $0.key < $1.key }) {
                let comparison = OutputComparison.compare(name, actual: outputs[name], expected: expected, rtol: example.rtol, atol: example.atol)
                if !comparison.passed {
                    throw RequestError(500, "example `\(example.name)` output `\(name)`: \(comparison.problem ?? "differs")")
                }
            }
        }
        return inlineElements
    }
}

extension ServiceGroupConfiguration {
    func withGrace(_ grace: Duration) -> ServiceGroupConfiguration {
        var copy = self
        copy.maximumGracefulShutdownDuration = grace
        return copy
    }
}

/// Loads the models once the server listens; on graceful shutdown turns readiness off first
/// (it is shut down before the HTTP server, which then drains in-flight requests).
struct ModelLoader: Service {
    let server: InferenceServer

    func run() async throws {
        // Loading blocks for as long as models take (imports, checks, examples): on a thread of
        // its own, so the server answers health probes and metadata meanwhile.
        BlockingThreads.shared.submit { [server] in
            for model in server.models where !server.shuttingDown.load(ordering: .relaxed) { server.load(model) }
            server.loadingFinished.set(true)
        }
        try? await gracefulShutdown()
        server.shuttingDown.store(true, ordering: .relaxed)
    }
}
