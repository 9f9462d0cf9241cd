import ArgumentParser
import Foundation
import VesselArtifact
import VesselImage
import VesselManifest
import VesselManifestYAML
import VesselONNX
import VesselServer
import VesselStore
import VesselTrust

struct Image: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Build a runnable OCI image of a model artifact, with no container daemon.",
        discussion: """
            The image holds the runtime binary (vessel-runtime: serve and health only) and exactly the shared libraries \
            it needs, then the artifact's own layers \
            (the same blobs, so a registry stores the weights once). Its entrypoint serves the model on 0.0.0.0:8080 as a \
            non-root user, checks every model file against the artifact before turning ready, and has a health check on \
            /v2/health/ready. The same artifact and binary always give the same image digest. The artifact's files \
            signatures (vessel sign, before this) go into the image's file index, for the runtime's --require-signature \
            (or VESSEL_REQUIRE_SIGNATURE). SLSA provenance and a CycloneDX SBOM (the binary and each library with its \
            Debian package, the runtime's Swift packages, the model's files) are attached to the image unless \
            --no-attestations.

            --modelcar builds the model without the runtime instead, for KServe's ModelCar (storageUri: oci://…) or a \
            Kubernetes image volume: the artifact's layers and file index, /models linking to the image's root, and a static \
            busybox for the sidecar's shell command. --runtime builds the runtime without a model, serving the model mounted \
            at /mnt/models once every file matches its index. `vessel deploy --mounted` writes the manifests for the pair.
            """
    )

    @Argument(help: "The model artifact: NAME[:TAG] or NAME@sha256:DIGEST (none with --runtime).")
    var reference: String?

    @Flag(help: "Build a ModelCar image: the model alone, at /models, for KServe's oci:// storageUri or an image volume.")
    var modelcar = false

    @Flag(help: "Build the runtime alone, serving a model mounted at /mnt/models (default tag vessel-runtime:VERSION).")
    var runtime = false

    @Option(help: ArgumentHelp("With --modelcar: the static busybox to ship for the sidecar's sh, ln and sleep.", valueName: "path"))
    var shell: String = ImageBuilder.Mounted.defaultShell

    @Flag(help: "Attach no SLSA provenance and CycloneDX SBOM to the image.")
    var noAttestations = false

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
            let started = Date()
            let store = try store.open()
            guard (1...65535).contains(port) else { throw ValidationError("--port must be 1…65535") }
            guard let format = ImageBuilder.Format(rawValue: format) else { throw ValidationError("--format must be oci or docker") }
            if modelcar, runtime { throw ValidationError("--modelcar (the model alone) and --runtime (the runtime alone) are two images: build each") }
            if shell != ImageBuilder.Mounted.defaultShell, !modelcar { throw ValidationError("--shell goes with --modelcar") }
            let builder = ImageBuilder(store: store, progress: { progressBar(label: $0, total: $1) })
            let shipped = binary ?? ImageBuilder.Options.defaultBinary
            let options = ImageBuilder.Options(
                binary: shipped, dlopened: [BLASLibrary.candidates], port: port, revision: revision, source: source, format: format)
            if runtime {
                guard reference == nil else { throw ValidationError("--runtime builds the runtime without a model: give no artifact") }
                let target = try tag.map(parseReference) ?? Reference(name: "vessel-runtime", tag: Vessel.configuration.version)
                guard target.digest == nil else { throw ValidationError("-t needs NAME[:TAG], not a digest") }
                let result = try builder.buildRuntime(tag: target, options: options)
                print("built \(target) \(result.manifest.digest)")
                print("  runtime layer: \(ProgressBar.bytes(result.baseLayer.size)) gzip (\(ProgressBar.bytes(result.baseUncompressedSize)) uncompressed)")
                print(
                    "  serves:        the model mounted at \(ImageBuilder.Mounted.path) (\(ImageBuilder.Mounted.serveArguments(name: "model").joined(separator: " ")))"
                )
                try attest(
                    result.manifest, target, role: .runtime, artifact: nil, contents: result.contents, executable: shipped, started: started, store: store)
                try export(result.manifest, target, store)
                return
            }
            guard let reference else { throw ValidationError("give the model artifact to build an image of (or --runtime for the runtime alone)") }
            let artifactReference = try parseReference(reference)
            let artifact = try Artifact.load(artifactReference, from: store)
            let suffix = modelcar ? "-modelcar" : "-image"
            let target = try tag.map(parseReference) ?? Reference(name: artifact.manifest.name + suffix, tag: artifact.manifest.version)
            guard target.digest == nil else { throw ValidationError("-t needs NAME[:TAG], not a digest") }
            if modelcar {
                let result = try builder.buildModelCar(artifact, tag: target, shell: shell, options: options)
                for warning in result.warnings { printError("warning: \(warning)") }
                print("built \(target) \(result.manifest.digest)")
                print("  shell layer:   \(ProgressBar.bytes(result.baseLayer.size)) gzip (\(shell))")
                let modelBytes = result.modelLayers.reduce(Int64(0)) { $0 + $1.size }
                print("  model layers:  \(result.modelLayers.count), \(ProgressBar.bytes(modelBytes)), shared with \(artifactReference)")
                try attest(
                    result.manifest, target, role: .modelCar, artifact: artifact, contents: result.contents, executable: shell, started: started, store: store)
                try export(result.manifest, target, store)
                return
            }
            let result = try builder.build(artifact, tag: target, options: options)
            for warning in result.warnings { printError("warning: \(warning)") }
            print("built \(target) \(result.manifest.digest)")
            print(
                "  runtime layer: \(ProgressBar.bytes(result.runtimeLayer.size)) gzip (\(ProgressBar.bytes(result.runtimeUncompressedSize)) uncompressed), \(result.libraries.libraries.count) shared libraries"
            )
            print("  binary:        \(shipped) (\(ProgressBar.bytes((try? FileSystem.size(of: shipped)) ?? 0)))")
            let modelBytes = result.modelLayers.reduce(Int64(0)) { $0 + $1.size }
            print("  model layers:  \(result.modelLayers.count), \(ProgressBar.bytes(modelBytes)), shared with \(artifactReference)")
            try attest(
                result.manifest, target, role: .server, artifact: artifact, contents: result.contents, executable: shipped, started: started, store: store)
            try export(result.manifest, target, store)
        }
    }

    /// Unless --no-attestations: the image's SLSA provenance and CycloneDX SBOM, attached to it.
    private func attest(
        _ manifest: Descriptor, _ target: Reference, role: ImageBuilder.Role, artifact: Artifact?, contents source: ImageContents.Source,
        executable: String, started: Date, store: Store
    ) throws {
        guard !noAttestations else { return }
        let contents = try source.read()
        let parameters = ["port": String(port), "format": format, role == .modelCar ? "shell" : "binary": executable]
        let record = Attestations.ImageRecord(
            reference: target.description, manifest: manifest, role: role.rawValue, artifactReference: artifact?.reference.description,
            artifactDigest: artifact?.descriptor.digest, modelName: artifact?.manifest.name, modelVersion: artifact?.manifest.version,
            contents: contents, parameters: parameters, vesselVersion: Vessel.configuration.version, started: started, finished: Date())
        try Attestations.attach(try Attestations.imageProvenance(record), kind: .provenance, to: manifest, store: store)
        try Attestations.attach(try Attestations.imageSBOM(record), kind: .sbom, to: manifest, store: store)
        let binaries = contents.executables + contents.libraries
        let packaged = binaries.compactMap { $0.package?.name }
        print(
            "  attached:      SLSA provenance and a CycloneDX SBOM (\(binaries.count) binaries, \(packaged.count) of them from \(Set(packaged).count) Debian packages; \(contents.swiftPackages.count) Swift packages)"
        )
    }

    /// With -o: the image as an OCI archive too.
    private func export(_ manifest: Descriptor, _ target: Reference, _ store: Store) throws {
        guard let output else { return }
        let total = try store.closure(of: manifest).reduce(Int64(0)) { $0 + $1.size }
        try store.exportArchive(manifest, refName: target.refName ?? target.description, to: output, progress: progressBar(label: "export", total: total))
        print("wrote \(output)")
    }
}
