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
        abstract: "Read an OCI image-layout tar into the store, or turn an MLflow model, a Cog project or a Bento into a Vessel model directory.",
        subcommands: [ImportArchive.self, ImportMLflow.self, ImportCog.self, ImportBento.self],
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

    @OptionGroup var destination: ImportDestination

    func run() throws {
        try destination.write(from: source) { try MLflowImporter.run(source: source, output: $0, name: $1) }
    }
}

struct ImportCog: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cog",
        abstract: "Write a Vessel model directory from a Cog project (cog.yaml and its predictor).",
        discussion: """
            The predictor runs unchanged on the python backend; its typed inputs become the signature \
            (those with a default are optional), read by importing it with the `cog` package in the \
            interpreter VESSEL_PYTHON (or python3) names. cog.yaml's Python version and packages become \
            runtime.python and runtime.requirements. Then `vessel pack OUT`.
            """
    )

    @Argument(help: "The Cog project directory (holding cog.yaml).")
    var source: String

    @OptionGroup var destination: ImportDestination

    func run() throws {
        try destination.write(from: source) {
            try CogImporter.run(source: source, output: $0, name: $1, environment: ProcessInfo.processInfo.environment)
        }
    }
}

struct ImportBento: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bento",
        abstract: "Write Vessel model directories from a built Bento (bentoml build), one per API.",
        discussion: """
            SOURCE is a Bento directory (in the Bento store, or an exported Bento unpacked) or a NAME[:VERSION] \
            tag in $BENTOML_HOME/bentos (default ~/bentoml). Each @bentoml.api method becomes a model on the python \
            backend — OUT itself for one API, OUT/API for several — carrying the Bento's src/, the models its \
            service names, and a predictor that instantiates the service and calls the method. The API's input \
            schema becomes the signature (annotate numpy arrays with DType and Shape, or edit vessel.yaml); the \
            Bento's Python version and locked requirements become the runtime. Then `vessel pack OUT[/API]`.
            """
    )

    @Argument(help: "The Bento directory (holding bento.yaml), or NAME[:VERSION] in the Bento store.")
    var source: String

    @Option(help: "Import only this API (a method name).")
    var api: String?

    @OptionGroup var destination: ImportDestination

    func run() throws {
        try destination.write(from: source.replacingOccurrences(of: ":", with: "-")) {
            try BentoImporter.run(source: source, output: $0, name: $1, api: api, environment: ProcessInfo.processInfo.environment)
        }
    }
}

/// Where an importer writes, and what it tells the user after.
struct ImportDestination: ParsableArguments {
    @Option(name: .shortAndLong, help: "The directory to write (must not exist; default: NAME-vessel).")
    var output: String?

    @Option(help: "The artifact name (default: from the source directory's name).")
    var name: String?

    func write(from source: String, _ importer: (_ output: String, _ name: String?) throws -> ImportResult) throws {
        try vessel.run {
            let trimmed = source.hasSuffix("/") ? String(source.dropLast()) : source
            let result = try importer(output ?? (name ?? (trimmed as NSString).lastPathComponent) + "-vessel", name)
            for note in result.notes { printError("note: \(note)") }
            for directory in result.directories { print("wrote \(directory)/vessel.yaml; next: vessel pack \(directory)") }
        }
    }
}
