import ArgumentParser
import Foundation
import VesselArtifact
import VesselImage
import VesselImport
import VesselManifest
import VesselStore

/// `vessel import ARCHIVE` (an OCI layout tar into the store), or `vessel import mlflow DIR`
/// (another tool's model directory as a Vessel model directory).
struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read an OCI image-layout tar into the store, or turn an MLflow model directory into a Vessel one.",
        subcommands: [ImportArchive.self, ImportMLflow.self],
        defaultSubcommand: ImportArchive.self
    )
}

struct ImportArchive: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "archive", abstract: "Read an OCI image-layout tar into the store, verifying every blob.")

    @Argument(help: "The .tar file.")
    var archive: String

    @Option(name: .customLong("as"), help: "NAME[:TAG] to give the imported artifact.")
    var rename: String?

    @OptionGroup var store: StoreOptions

    func run() throws {
        try vessel.run {
            let size = (try? FileSystem.size(of: archive)) ?? 0
            let tagged = try store.open().importArchive(
                from: archive, as: try rename.map(parseReference), progress: progressBar(label: "import", total: size)
            )
            for entry in tagged { print("imported \(entry.refName) \(entry.descriptor.digest)") }
        }
    }
}

struct ImportMLflow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mlflow",
        abstract: "Write a Vessel model directory from an MLflow model directory (flavors onnx and sklearn).",
        discussion: """
            The onnx flavor becomes a native ONNX model; the sklearn flavor (pickle, cloudpickle or skops) a \
            python-backend model with MLflow's Python version and requirements. The signature and input example \
            are carried over; a column-based signature becomes a `columns` step. Then `vessel pack OUT`.
            """
    )

    @Argument(help: "The MLflow model directory (holding MLmodel).")
    var source: String

    @Option(name: .shortAndLong, help: "The directory to write (must not exist; default: NAME beside the current directory).")
    var output: String?

    @Option(help: "The artifact name (default: from the source directory's name).")
    var name: String?

    func run() throws {
        try vessel.run {
            let trimmed = source.hasSuffix("/") ? String(source.dropLast()) : source
            let target = output ?? (name ?? (trimmed as NSString).lastPathComponent) + "-vessel"
            let result = try MLflowImporter.run(source: source, output: target, name: name)
            for note in result.notes { printError("note: \(note)") }
            print("wrote \(result.directory)/vessel.yaml; next: vessel pack \(result.directory)")
        }
    }
}
