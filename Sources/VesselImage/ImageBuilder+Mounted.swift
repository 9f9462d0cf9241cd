public import VesselArtifact
import VesselManifest
public import VesselStore
#if canImport(Glibc)
import Glibc
#endif

/// Images for a model mounted into the runtime rather than built into it: the model alone
/// (KServe's ModelCar, or a Kubernetes image volume) and the runtime alone.
///
/// A ModelCar image holds the artifact's own layers (the same blobs as the artifact and as
/// `vessel image`), the file index at `/vessel/model.json`, a static busybox for the sidecar
/// command KServe gives it (`sh -c "ln -sf /proc/$$/root/models /mnt/models && sleep infinity"`)
/// and `/models`, a relative symlink to the image's root, so `/proc/PID/root/models` is the model
/// directory. Mounted as an image volume, the same image's root is the model directory too.
///
/// The runtime image serves whatever is mounted at ``Mounted/path``, once every file there
/// matches the index found beside it.
extension ImageBuilder {
    public enum Mounted {
        /// Where KServe puts the model for the serving container, and where the runtime image
        /// looks for it by default.
        public static let path = "/mnt/models"
        public static let defaultShell = "/bin/busybox"

        /// The runtime's arguments for a model mounted at ``path`` (KServe substitutes `{{.Name}}`).
        public static func serveArguments(name: String) -> [String] {
            ["serve", "--verify-files", path + "/" + UnpackedFileIndex.pathInImage, "\(name)=\(path)"]
        }

        /// What the model files may not be called in a ModelCar image.
        static let reserved = ["bin", "models", "vessel", "proc", "dev", "sys"]
    }

    public struct MountedResult: Sendable {
        public var manifest: Descriptor
        public var config: ImageConfig
        /// The ModelCar's busybox layer, or the runtime layer (gzip).
        public var baseLayer: Descriptor
        public var baseUncompressedSize: Int64
        public var modelLayers: [Descriptor]
        public var warnings: [String]
        /// What the image holds, for its SBOM and provenance (read when asked for).
        public var contents: ImageContents.Source
    }

    /// A ModelCar image of `artifact`: the model at `/`, `/models` linking to it, busybox's `sh`,
    /// `ln` and `sleep`, and the file index. Runs as the runtime's user (65532), which KServe
    /// needs to reach the model through `/proc`.
    public func buildModelCar(_ artifact: Artifact, tag: Reference?, shell: String = Mounted.defaultShell, options: Options) throws -> MountedResult {
        // The runtime image serves ONNX models only; a Python model's files would never load.
        if artifact.manifest.runtime.backend == .python {
            throw BuildError.python(
                "the runtime image a ModelCar is mounted into carries no Python; build `vessel image \(artifact.reference)` (the model with its interpreter and environment) instead"
            )
        }
        guard FileSystem.exists(shell) else {
            throw BuildError.shell(
                "a ModelCar image needs a static busybox for the sidecar's `sh -c \"ln … && sleep infinity\"`, and \(shell) does not exist: install busybox-static, or give --shell PATH"
            )
        }
        let busybox = try SharedLibraries.realPath(shell)
        let elf = try ELFFile(path: busybox)
        guard elf.interpreter == nil, elf.needed.isEmpty else {
            throw BuildError.shell(
                "\(shell) is dynamically linked (it needs \(elf.interpreter ?? elf.needed.joined(separator: ", "))); a ModelCar image carries no libraries: give a static busybox (busybox-static)"
            )
        }
        let architecture = try Self.architecture(of: busybox)
        let index = try UnpackedFileIndex.make(artifact, store: store)
        try Self.checkReserved(index, Mounted.reserved)

        return try store.withWriterLock {
            let entries: [String: Content] = [
                "bin": .directory(mode: 0o755),
                "bin/busybox": .file(source: busybox, executable: true),
                "bin/sh": .symlink("busybox"),
                "bin/ln": .symlink("busybox"),
                "bin/sleep": .symlink("busybox"),
                // Relative, so it resolves inside the image even when reached through /proc/PID/root.
                "models": .symlink(".")
            ]
            let shellLayer = try buildFilesLayer(entries, kind: "vessel-modelcar-layer-v1", title: "modelcar shell")
            let (modelLayers, warnings) = try imageLayers(of: artifact, format: options.format)
            var indexLayer = try buildIndexLayer(index)
            indexLayer.mediaType = options.format.layerTar
            let created = Self.createdTime()
            let labels = Self.labels(of: artifact, role: .modelCar, created: created, options: options)
            let config = ImageConfig(
                created: created, architecture: architecture, os: "linux",
                config: .init(
                    user: options.user, exposedPorts: nil, env: ["PATH=/bin"], entrypoint: nil, cmd: ["/bin/sleep", "infinity"], workingDir: "/",
                    labels: labels, stopSignal: nil, healthcheck: nil),
                rootfs: .init(
                    type: "layers", diffIDs: [shellLayer.diffID.description] + modelLayers.map(\.digest.description) + [indexLayer.digest.description]),
                history: [Self.history(created, "modelcar shell (busybox sh, ln, sleep; /models → /)")]
                    + modelLayers.map { Self.history(created, "model file \($0.annotations?[ModelPack.filepathAnnotation] ?? "?")") }
                    + [Self.history(created, UnpackedFileIndex.pathInImage)]
            )
            var base = shellLayer.descriptor
            base.mediaType = options.format.layerTarGzip
            let descriptor = try storeImage(config: config, layers: [base] + modelLayers + [indexLayer], labels: labels, format: options.format, tag: tag)
            return MountedResult(
                manifest: descriptor, config: config, baseLayer: base, baseUncompressedSize: shellLayer.uncompressedSize, modelLayers: modelLayers,
                warnings: warnings, contents: .modelCar(shell: busybox, model: index))
        }
    }

    /// The runtime alone: `vessel-runtime` and its libraries, serving the model mounted at
    /// ``Mounted/path`` (ModelCar or image volume) under the name `model` unless its arguments
    /// say otherwise.
    public func buildRuntime(tag: Reference?, options: Options) throws -> MountedResult {
        let binary = try SharedLibraries.realPath(options.binary)
        let architecture = try Self.architecture(of: binary)
        let libraries = try SharedLibraries.resolve(binary: binary, dlopened: options.dlopened)
        return try store.withWriterLock {
            let runtime = try buildRuntimeLayer(binary: binary, libraries: libraries)
            let created = Self.createdTime()
            let labels = Self.labels(of: nil, role: .runtime, created: created, options: options)
            let config = ImageConfig(
                created: created, architecture: architecture, os: "linux",
                config: Self.runtimeSettings(options: options, entrypoint: [Layout.binary], cmd: Mounted.serveArguments(name: "model"), labels: labels),
                rootfs: .init(type: "layers", diffIDs: [runtime.diffID.description]),
                history: [Self.history(created, "runtime (\(libraries.libraries.count) shared libraries)")]
            )
            var base = runtime.descriptor
            base.mediaType = options.format.layerTarGzip
            let descriptor = try storeImage(config: config, layers: [base], labels: labels, format: options.format, tag: tag)
            return MountedResult(
                manifest: descriptor, config: config, baseLayer: base, baseUncompressedSize: runtime.uncompressedSize, modelLayers: [], warnings: [],
                contents: .runtime(binary: binary, libraries: libraries, model: nil))
        }
    }
}
