import ArgumentParser
import Foundation
import VesselArtifact
import VesselImage
import VesselModel
import VesselServer
import VesselStore

/// `REF_OR_DIR` or `ALIAS=REF_OR_DIR` → a model source: an existing directory with a
/// vessel.yaml is served from there, anything else is a reference in the store.
func modelSource(_ argument: String, store: StoreOptions) throws -> ModelSource {
    var alias: String?
    var target = argument
    if let equals = argument.firstIndex(of: "="), !FileManager.default.fileExists(atPath: argument) {
        alias = String(argument[..<equals])
        target = String(argument[argument.index(after: equals)...])
        guard let name = alias, !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || "._-".contains($0) }) else {
            throw ValidationError("`\(argument)`: an alias may hold letters, digits, `.`, `_` and `-` only")
        }
    }
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: target, isDirectory: &isDirectory), isDirectory.boolValue {
        return ModelSource(location: .directory(target), alias: alias)
    }
    return ModelSource(location: .reference(try parseReference(target), try store.open()), alias: alias)
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve models over the Open Inference Protocol v2 (KServe/Triton REST), with health, metrics and logs.",
        discussion: """
        Each model is served under the name in its vessel.yaml (ALIAS=REF to rename). Settings also come from \
        VESSEL_HOST and VESSEL_PORT. SIGTERM or SIGINT stops accepting, turns readiness off, and lets requests \
        in flight finish.
        """
    )

    @Argument(help: ArgumentHelp("Artifacts (NAME[:TAG], NAME@DIGEST) or model directories, optionally ALIAS=….", valueName: "ref-or-dir"))
    var models: [String]

    @Option(help: "Address to listen on (default 127.0.0.1, or $VESSEL_HOST).")
    var host: String?

    @Option(help: "Port (default 8080, or $VESSEL_PORT; 0 picks a free one).")
    var port: Int?

    @Option(name: .customLong("max-body-bytes"), help: "Largest request body, overriding each model's serving.max_body_bytes.")
    var maxBodyBytes: Int?

    @Option(name: .customLong("grace-seconds"), help: "How long requests in flight may finish after SIGTERM.")
    var graceSeconds: Double = 30

    @Flag(name: .customLong("no-log"), help: "Do not write a JSON line per inference.")
    var noLog = false

    @Option(name: .customLong("token-file"), help: "Require Authorization: Bearer <the file's token> on all but the health checks.")
    var tokenFile: String?

    @Option(name: .customLong("verify-files"), help: ArgumentHelp(
        "Check the model directory's files against this file-digest index before the model turns ready (what an image's entrypoint does).",
        valueName: "index.json"))
    var verifyFiles: String?

    @OptionGroup var store: StoreOptions

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let host = host ?? environment["VESSEL_HOST"] ?? "127.0.0.1"
        guard let port = port ?? Int(environment["VESSEL_PORT"] ?? "8080"), (0...65535).contains(port) else {
            throw ValidationError("the port must be 0…65535")
        }
        let sources: [ModelSource]
        let names: [String]
        do {
            var found = try models.map { try modelSource($0, store: store) }
            if let verifyFiles {
                guard found.count == 1, case .directory = found[0].location else {
                    throw ValidationError("--verify-files needs exactly one model directory")
                }
                guard let data = FileManager.default.contents(atPath: verifyFiles) else { throw ValidationError("cannot read --verify-files \(verifyFiles)") }
                do { found[0].verifyFiles = try JSONDecoder().decode(UnpackedFileIndex.self, from: data) } catch {
                    throw ValidationError("--verify-files \(verifyFiles) is not a file-digest index: \(error)")
                }
            }
            sources = found
            names = try InferenceServer.servedNames(sources)
        } catch let error as ValidationError {
            throw error
        } catch {
            printError("error: \(error)")
            throw ExitCode.failure
        }
        var token: String?
        if let tokenFile {
            guard let data = FileManager.default.contents(atPath: tokenFile) else { throw ValidationError("cannot read --token-file \(tokenFile)") }
            token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard token?.isEmpty == false else { throw ValidationError("--token-file \(tokenFile) is empty") }
        }
        let server = InferenceServer(sources: sources, names: names, configuration: ServerConfiguration(
            host: host, port: port, maxBodyBytes: maxBodyBytes, shutdownGrace: .milliseconds(Int(graceSeconds * 1000)), logInferences: !noLog,
            token: token))
        do {
            try await server.run { bound in
                printError("vessel: listening on http://\(host):\(bound) (\(names.joined(separator: ", ")))")
            }
        } catch {
            printError("error: \(error)")
            throw ExitCode.failure
        }
        printError("vessel: stopped")
    }
}

struct Test: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a model's bundled examples through a real server on a loopback port, and compare the outputs."
    )

    @Argument(help: ArgumentHelp("An artifact (NAME[:TAG], NAME@DIGEST) or a model directory; with --in-image, an artifact or an image.", valueName: "ref-or-dir"))
    var model: String

    @Flag(name: .customLong("in-image"), help: "Test in the image as it ships: unpack its layers into a root filesystem, start its entrypoint isolated there, run its health check and the examples over HTTP, stop it with SIGTERM.")
    var inImage = false

    @Option(help: ArgumentHelp("Runtime for --in-image: bwrap or chroot (default: the first that works here).", valueName: "name"))
    var runtime: String?

    @OptionGroup var store: StoreOptions

    func run() async throws {
        if inImage {
            var requested: ContainerProcess.Runtime?
            if let runtime {
                guard let value = ContainerProcess.Runtime(rawValue: runtime) else { throw ValidationError("--runtime must be bwrap or chroot") }
                requested = value
            }
            let chosen = requested, model = model, store = store
            let passed = try await offThePool { () -> Result<Bool, any Error> in
                Result { try InImageTest.run(reference: model, store: try store.open(), runtime: chosen) }
            }.get()
            if !passed { throw ExitCode.failure }
            return
        }
        let source: ModelSource
        do { source = try modelSource(model, store: store) } catch let error as ValidationError { throw error } catch {
            printError("error: \(error)")
            throw ExitCode.failure
        }
        let report = await ExampleRun.run(source)
        printReport(report)
        if !report.passed { throw ExitCode.failure }
    }
}

/// The examples table: example, output, max abs/rel error, pass/fail.
func printReport(_ report: ExampleRun.Report) {
    print("\(report.model) \(report.version)")
    if !report.rows.isEmpty {
        let header = ["example", "output", "max abs err", "max rel err", "result"]
        let rows = report.rows.map { row -> [String] in
            let c = row.comparison
            return [row.example, row.output, String(format: "%.3g", c.maxAbsolute), String(format: "%.3g", c.maxRelative),
                    c.passed ? "pass" : "FAIL: \(c.problem ?? "")"]
        }
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        for line in [header] + rows {
            print(zip(line, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  "))
        }
    }
    if let failure = report.failure { printError("error: \(failure)") }
    let failed = report.rows.filter { !$0.comparison.passed }.count
    print(report.passed ? "\(report.rows.count) output(s) of the examples passed" : "\(failed) of \(report.rows.count) output(s) failed")
}
