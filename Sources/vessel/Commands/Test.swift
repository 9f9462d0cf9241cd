import ArgumentParser
import Foundation
import VesselImage
import VesselModel
import VesselServer
import VesselServeCommand
import VesselModelSources
import VesselStore
import VesselSystem

struct Test: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a model's bundled examples through a real server on a loopback port, and compare the outputs."
    )

    @Argument(
        help: ArgumentHelp("An artifact (NAME[:TAG], NAME@DIGEST) or a model directory; with --in-image, an artifact or an image.", valueName: "ref-or-dir"))
    var model: String

    @Flag(
        name: .customLong("in-image"),
        help:
            "Test in the image as it ships: unpack its layers into a root filesystem, start its entrypoint isolated there, run its health check and the examples over HTTP, stop it with SIGTERM."
    )
    var inImage = false

    @Option(help: ArgumentHelp("Runtime for --in-image: bwrap or chroot (default: the first that works here).", valueName: "name"))
    var runtime: String?

    @Option(
        name: .customLong("ready-timeout"),
        help: ArgumentHelp("With --in-image, seconds the container may take to answer /v2/health/ready.", valueName: "seconds"))
    var readyTimeout: Double = 300

    @OptionGroup var store: StoreOptions

    func run() async throws {
        if inImage {
            var requested: ContainerProcess.Runtime?
            if let runtime {
                guard let value = ContainerProcess.Runtime(rawValue: runtime) else { throw ValidationError("--runtime must be bwrap or chroot") }
                requested = value
            }
            guard readyTimeout > 0, readyTimeout.isFinite else { throw ValidationError("--ready-timeout must be a positive number of seconds") }
            let chosen = requested, model = model, store = store, readyTimeout = readyTimeout
            let passed = try await BlockingThreads.shared.run { () -> Result<Bool, any Error> in
                Result { try InImageTest.run(reference: model, store: try store.open(), runtime: chosen, readyTimeout: readyTimeout) }
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
