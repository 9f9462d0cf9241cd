import ArgumentParser
import Foundation
import VesselArtifact
import VesselImage
import VesselManifest
import VesselManifestYAML
import VesselONNX
import VesselServer
import VesselStore

struct Image: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Build a runnable OCI image of a model artifact, with no container daemon.",
        discussion: """
            The image holds the runtime binary (vessel-runtime: serve and health only) and exactly the shared libraries \
            it needs, then the artifact's own layers \
            (the same blobs, so a registry stores the weights once). Its entrypoint serves the model on 0.0.0.0:8080 as a \
            non-root user, checks every model file against the artifact before turning ready, and has a health check on \
            /v2/health/ready. The same artifact and binary always give the same image digest.
            """
    )

    @Argument(help: "The model artifact: NAME[:TAG] or NAME@sha256:DIGEST.")
    var reference: String

    @Option(name: .shortAndLong, help: "Tag for the image in the store, NAME[:TAG] (default: NAME:TAG of the artifact with `-image` added to the name).")
    var tag: String?

    @Option(name: .shortAndLong, help: "Also write the image as an OCI archive (podman load, docker load, skopeo oci-archive:).")
    var output: String?

    @Option(help: ArgumentHelp("The binary to put in the image (default: vessel-runtime beside this vessel, else this vessel).", valueName: "path"))
    var binary: String?

    @Option(help: "org.opencontainers.image.revision label (e.g. a commit).")
    var revision: String?

    @Option(help: "org.opencontainers.image.source label (e.g. a repository URL).")
    var source: String?

    @Option(help: "Port the server listens on inside the container.")
    var port: Int = 8080

    @Option(help: "Media types: oci, or docker (Docker schema 2, whose health check Podman also honours).")
    var format: String = "oci"

    @OptionGroup var store: StoreOptions

    func run() throws {
        try vessel.run {
            let store = try store.open()
            let artifactReference = try parseReference(reference)
            let artifact = try Artifact.load(artifactReference, from: store)
            let target = try tag.map(parseReference) ?? Reference(name: artifact.manifest.name + "-image", tag: artifact.manifest.version)
            guard target.digest == nil else { throw ValidationError("-t needs NAME[:TAG], not a digest") }
            guard (1...65535).contains(port) else { throw ValidationError("--port must be 1…65535") }
            guard let format = ImageBuilder.Format(rawValue: format) else { throw ValidationError("--format must be oci or docker") }
            let builder = ImageBuilder(store: store, progress: { progressBar(label: $0, total: $1) })
            let shipped = binary ?? ImageBuilder.Options.defaultBinary
            let result = try builder.build(
                artifact, tag: target,
                options: .init(
                    binary: shipped, dlopened: [BLASLibrary.candidates], port: port, revision: revision, source: source,
                    format: format))
            for warning in result.warnings { printError("warning: \(warning)") }
            print("built \(target) \(result.manifest.digest)")
            print(
                "  runtime layer: \(ProgressBar.bytes(result.runtimeLayer.size)) gzip (\(ProgressBar.bytes(result.runtimeUncompressedSize)) uncompressed), \(result.libraries.libraries.count) shared libraries"
            )
            print("  binary:        \(shipped) (\(ProgressBar.bytes((try? FileSystem.size(of: shipped)) ?? 0)))")
            let modelBytes = result.modelLayers.reduce(Int64(0)) { $0 + $1.size }
            print("  model layers:  \(result.modelLayers.count), \(ProgressBar.bytes(modelBytes)), shared with \(artifactReference)")
            if let output {
                let total = try store.closure(of: result.manifest).reduce(Int64(0)) { $0 + $1.size }
                try store.exportArchive(
                    result.manifest, refName: target.refName ?? target.description, to: output,
                    progress: progressBar(label: "export", total: total))
                print("wrote \(output)")
            }
        }
    }
}
