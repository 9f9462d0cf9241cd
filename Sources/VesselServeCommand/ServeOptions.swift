public import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
public import VesselManifest
public import VesselServer
import VesselSystem

/// The `serve` options both binaries share — `vessel serve` and the runtime binary an image
/// ships — and the server they run.
public struct ServeOptions: ParsableArguments {
    @Option(help: "Address to listen on (default 127.0.0.1, or $VESSEL_HOST).")
    public var host: String?

    @Option(help: "Port (default 8080, or $VESSEL_PORT; 0 picks a free one).")
    public var port: Int?

    @Option(name: .customLong("max-body-bytes"), help: "Largest request body, overriding each model's serving.max_body_bytes.")
    public var maxBodyBytes: Int?

    @Option(name: .customLong("grace-seconds"), help: "How long requests in flight may finish after SIGTERM.")
    public var graceSeconds: Double = 30

    @Flag(name: .customLong("no-log"), help: "Do not write a JSON line per inference.")
    public var noLog = false

    @Flag(name: .customLong("no-ui"), help: "Do not serve the browser pages (GET / and /ui/…).")
    public var noUI = false

    @Option(name: .customLong("token-file"), help: "Require Authorization: Bearer <the file's token> on all but the health checks.")
    public var tokenFile: String?

    @Option(
        name: .customLong("verify-files"),
        help: ArgumentHelp(
            "Check the model directory's files against this file-digest index before the model turns ready (what an image's entrypoint does).",
            valueName: "index.json"))
    public var verifyFiles: String?

    @Option(
        name: .customLong("idle-timeout"), help: "Close a connection that sends nothing (no complete header, no body, no next request) for this many seconds.")
    public var idleTimeout: Double = 30

    @Option(
        name: .customLong("max-connections"),
        help: "Most connections open at once (default: half the descriptor limit, at most 8192); others wait to be accepted.")
    public var maxConnections: Int?

    public init() {}

    /// `ALIAS=TARGET` → the alias and the target; a target that exists as given is never split.
    public static func splitAlias(_ argument: String) throws -> (alias: String?, target: String) {
        guard let equals = argument.firstIndex(of: "="), !FileManager.default.fileExists(atPath: argument) else { return (nil, argument) }
        let alias = String(argument[..<equals])
        guard !alias.isEmpty, alias.allSatisfy({ $0.isLetter || $0.isNumber || "._-".contains($0) }) else {
            throw ValidationError("`\(argument)`: an alias may hold letters, digits, `.`, `_` and `-` only")
        }
        return (alias, String(argument[argument.index(after: equals)...]))
    }

    /// The `--verify-files` index, if given.
    public func fileIndex() throws -> UnpackedFileIndex? {
        guard let verifyFiles else { return nil }
        guard let data = FileManager.default.contents(atPath: verifyFiles) else { throw ValidationError("cannot read --verify-files \(verifyFiles)") }
        do { return try JSONDecoder().decode(UnpackedFileIndex.self, from: data) } catch {
            throw ValidationError("--verify-files \(verifyFiles) is not a file-digest index: \(error)")
        }
    }

    /// The server's configuration from these options and the environment (`VESSEL_HOST`,
    /// `VESSEL_PORT`), each checked: an error names the option and what it must be.
    public func configuration(environment: [String: String]) throws -> ServerConfiguration {
        let host = host ?? environment["VESSEL_HOST"] ?? "127.0.0.1"
        guard let port = port ?? Int(environment["VESSEL_PORT"] ?? "8080"), (0...65535).contains(port) else {
            throw ValidationError("the port must be 0…65535")
        }
        var token: String?
        if let tokenFile {
            guard let data = FileManager.default.contents(atPath: tokenFile) else { throw ValidationError("cannot read --token-file \(tokenFile)") }
            let text = String(decoding: data, as: UTF8.self).trimmingWhitespace
            guard !text.isEmpty else { throw ValidationError("--token-file \(tokenFile) is empty") }
            // A token is sent in one header line: one with a line break, a space or a control
            // character could never be presented, and nothing would authenticate.
            guard text.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7f }) else {
                throw ValidationError("--token-file \(tokenFile) must hold one token of visible ASCII characters on one line (no spaces or line breaks)")
            }
            token = text
        }
        guard idleTimeout > 0, idleTimeout <= 86400 else { throw ValidationError("--idle-timeout must be above 0 and at most 86400 seconds") }
        if let maxConnections, maxConnections < 1 { throw ValidationError("--max-connections must be at least 1") }
        guard graceSeconds >= 0, graceSeconds <= 86400 else { throw ValidationError("--grace-seconds must be 0…86400") }
        if let maxBodyBytes, maxBodyBytes < 1 { throw ValidationError("--max-body-bytes must be at least 1") }
        var configuration = ServerConfiguration(
            host: host, port: port, maxBodyBytes: maxBodyBytes, shutdownGrace: .milliseconds(Int(graceSeconds * 1000)), logInferences: !noLog,
            token: token)
        configuration.ui = !noUI
        configuration.idleTimeout = .milliseconds(Int(idleTimeout * 1000))
        configuration.maxConnections = maxConnections
        return configuration
    }

    /// Serves `sources` until SIGTERM/SIGINT. A problem with the sources or the options exits
    /// non-zero before anything listens.
    /// - Parameter signatures: what was checked of each model's signature, by served name.
    public func serve(signatures: [String: String] = [:], _ makeSources: () throws -> [ModelSource]) async throws {
        var configuration = try configuration(environment: ProcessInfo.processInfo.environment)
        configuration.signatures = signatures
        let host = configuration.host
        let sources: [ModelSource]
        let names: [String]
        do {
            sources = try makeSources()
            names = try InferenceServer.servedNames(sources)
        } catch let error as ValidationError {
            throw error
        } catch {
            StandardStreams.error("error: \(error)")
            throw ExitCode.failure
        }
        let server = InferenceServer(sources: sources, names: names, configuration: configuration)
        do {
            try await server.run { bound in
                StandardStreams.error("vessel: listening on http://\(host):\(bound) (\(names.joined(separator: ", ")))")
            }
        } catch {
            StandardStreams.error("error: \(error)")
            throw ExitCode.failure
        }
        StandardStreams.error("vessel: stopped")
    }
}

/// `vessel health`: exit 0 if a local server is ready. It is the image's health check, so it
/// lives in both binaries.
public struct Health: ParsableCommand {
    public static let configuration = CommandConfiguration(
        abstract: "Exit 0 if a local server is ready (the image's health check).",
        discussion: "Asks http://127.0.0.1:$VESSEL_PORT/v2/health/ready (port 8080 when unset), or the port and path given."
    )

    @Option(help: "Port (default $VESSEL_PORT, or 8080).")
    var port: Int?

    @Option(help: "Path to ask.")
    var path = "/v2/health/ready"

    public init() {}

    public func run() throws {
        let port = port ?? Int(ProcessInfo.processInfo.environment["VESSEL_PORT"] ?? "") ?? 8080
        let status: Int
        do { status = try LoopbackClient.request("GET", port: port, path: path, timeout: 3).status } catch {
            StandardStreams.error("not ready: \(error)")
            throw ExitCode.failure
        }
        guard status == 200 else {
            StandardStreams.error("not ready: \(path) answered \(status)")
            throw ExitCode.failure
        }
    }
}
