import ArgumentParser
import Foundation
import VesselImage
import VesselModel
import VesselServer
import VesselServing
import VesselSources
import VesselStore

/// `REF_OR_DIR` or `ALIAS=REF_OR_DIR` → a model source: an existing directory with a
/// vessel.yaml is served from there, anything else is a reference in the store.
func modelSource(_ argument: String, store: StoreOptions) throws -> ModelSource {
    let (alias, target) = try ServeOptions.splitAlias(argument)
    if FileSystem.isDirectory(target) {
        return try .directory(target, alias: alias)
    }
    return try .reference(try parseReference(target), store: try store.open(), alias: alias)
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

    @OptionGroup var options: ServeOptions

    @OptionGroup var store: StoreOptions

    func run() async throws {
        let index = try options.fileIndex()
        try await options.serve {
            guard let index else { return try models.map { try modelSource($0, store: store) } }
            guard models.count == 1, case let (alias, root) = try ServeOptions.splitAlias(models[0]), FileSystem.isDirectory(root) else {
                throw ValidationError("--verify-files needs exactly one model directory")
            }
            // An index from an older image has no manifest: read the vessel.yaml beside the files.
            return [index.manifest == nil ? try .directory(root, alias: alias, verifying: index) : try .unpacked(root: root, index: index, alias: alias)]
        }
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
