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
            let result = try builder.build(artifact, tag: target, options: .init(
                binary: shipped, dlopened: [BLASLibrary.candidates], port: port, revision: revision, source: source,
                format: format))
            for warning in result.warnings { printError("warning: \(warning)") }
            print("built \(target) \(result.manifest.digest)")
            print("  runtime layer: \(ProgressBar.bytes(result.runtimeLayer.size)) gzip (\(ProgressBar.bytes(result.runtimeUncompressedSize)) uncompressed), \(result.libraries.libraries.count) shared libraries")
            print("  binary:        \(shipped) (\(ProgressBar.bytes((try? FileSystem.size(of: shipped)) ?? 0)))")
            let modelBytes = result.modelLayers.reduce(Int64(0)) { $0 + $1.size }
            print("  model layers:  \(result.modelLayers.count), \(ProgressBar.bytes(modelBytes)), shared with \(artifactReference)")
            if let output {
                let total = try store.closure(of: result.manifest).reduce(Int64(0)) { $0 + $1.size }
                try store.exportArchive(result.manifest, refName: target.refName ?? target.description, to: output,
                                        progress: progressBar(label: "export", total: total))
                print("wrote \(output)")
            }
        }
    }
}

struct Deploy: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print manifests that run a model's image on a cluster.",
        discussion: """
        --kubernetes prints a Deployment and a Service (probes on /v2/health/live and /v2/health/ready, resources from \
        serving.resources in vessel.yaml), and a KServe InferenceService for the same image. The image is pinned by \
        digest; REF may be an image or an artifact (whose image is built if the store has none).
        """
    )

    @Argument(help: "An image or a model artifact: NAME[:TAG] or NAME@sha256:DIGEST.")
    var reference: String

    @Flag(help: "Kubernetes and KServe manifests.")
    var kubernetes = false

    @Option(help: ArgumentHelp("Where the cluster pulls the image from, e.g. registry.example.com/team/iris (push it there with `vessel push`).", valueName: "repository"))
    var image: String?

    @Option(help: "Namespace to put in the manifests.")
    var namespace: String?

    @OptionGroup var store: StoreOptions

    func run() throws {
        try vessel.run {
            guard kubernetes else { throw ValidationError("choose a target: --kubernetes") }
            let store = try store.open()
            let reference = try parseReference(reference)
            var descriptor = try store.resolve(reference)
            var localName = reference.description
            if descriptor.artifactType == ModelPack.artifactType {
                let artifact = try Artifact.load(reference, from: store)
                if let existing = try store.list().first(where: { entry in
                    guard entry.descriptor.artifactType == nil, let data = try? store.readBlob(entry.descriptor, context: "manifest"),
                          let manifest = try? JSONDecoder().decode(ImageManifest.self, from: data) else { return false }
                    return manifest.annotations?["dev.vessel.artifact"] == artifact.descriptor.digest.description
                }) {
                    descriptor = existing.descriptor
                    localName = existing.refName
                } else {
                    let tag = Reference(name: artifact.manifest.name + "-image", tag: artifact.manifest.version)
                    descriptor = try ImageBuilder(store: store).build(artifact, tag: tag, options: .init(dlopened: [BLASLibrary.candidates])).manifest
                    localName = tag.description
                    printError("built image \(tag) \(descriptor.digest)")
                }
            }
            let built = try RootFilesystem.load(descriptor, from: store)
            guard let yamlLayer = built.manifest.layers.first(where: { $0.annotations?[ModelPack.filepathAnnotation] == ManifestParser.fileName }) else {
                throw ValidationError("\(reference) is not an image built by vessel image (no vessel.yaml layer)")
            }
            let text = try Artifact.readSingleFile(yamlLayer, from: store, limit: Int64(Manifest.maximumBytes), reference: reference)
            let manifest = try ManifestParser.parse(data: Data(text), file: "\(reference)/vessel.yaml", baseDirectory: nil).manifest
            let modelBytes = built.manifest.layers.dropFirst().reduce(Int64(0)) { $0 + $1.size }
            let port = built.config.config?.exposedPorts?.keys.compactMap { Int($0.split(separator: "/").first ?? "") }.first ?? 8080
            let repository = self.image ?? localName
            let pinned = repository.contains("@") ? repository : "\(repository)@\(descriptor.digest)"
            if self.image == nil { printError("note: the manifests name the local tag \(localName); push the image with `vessel push` and pass --image REPOSITORY") }
            print(KubernetesManifests.render(.init(image: pinned, manifest: manifest, modelBytes: modelBytes, port: port, namespace: namespace)), terminator: "")
        }
    }
}
