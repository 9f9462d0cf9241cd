import Crypto
import Foundation
import VesselManifest
import VesselPython
public import VesselArtifact
public import VesselStore
#if canImport(Glibc)
import Glibc
#endif

/// Builds a runnable OCI image from a model artifact, with no container daemon.
///
/// Layers, bottom to top:
/// 1. the runtime: the `vessel` binary at `/vessel/bin/vessel`, exactly the shared libraries it
///    needs in `/vessel/lib` (its ELF dependencies, and the BLAS it loads at run time), the
///    dynamic loader at the path the binary names, `/etc/passwd` and `/etc/group` with the
///    non-root `vessel` user, and `/tmp` (gzip; the same for every model built by one binary);
/// 1½. for a Python model, its interpreter and its locked environment (``PythonImageParts``);
/// 2. the artifact's own layers (a Python model's wheels left out: they are installed), the same blobs with the same digests (uncompressed tars, each
///    file at its path from the model root, so the model lies at `/`);
/// 3. `/vessel/model.json`: every model file's content digest, which the entrypoint checks
///    before the model turns ready.
///
/// The same artifact, binary and options give the same image digest: tar entries are fixed
/// (mtime 0, owner 0), gzip carries no time, and `created` is fixed (1970, or `SOURCE_DATE_EPOCH`).
public struct ImageBuilder {
    public let store: Store
    public var progress: @Sendable (String, Int64) -> ProgressBar

    public init(store: Store, progress: @escaping @Sendable (String, Int64) -> ProgressBar = { _, _ in .silent() }) {
        self.store = store
        self.progress = progress
    }

    public struct Options: Sendable {
        /// The binary to ship as `/vessel/bin/vessel`: ``defaultBinary`` unless given.
        public var binary: String
        /// Libraries loaded with dlopen: each an ordered list of alternatives.
        public var dlopened: [[String]]
        public var port: Int
        public var user: String
        public var revision: String?
        public var source: String?
        public var labels: [String: String]
        public var format: Format

        /// `vessel-runtime` beside the running executable (the serve-only binary, linking
        /// FoundationEssentials only: a third of the full one), else the running executable.
        public static var defaultBinary: String {
            let running = (try? SharedLibraries.realPath("/proc/self/exe")) ?? "/proc/self/exe"
            let runtime = FileSystem.join(FileSystem.dirname(running), "vessel-runtime")
            return access(runtime, X_OK) == 0 ? runtime : running
        }

        public init(
            binary: String = Options.defaultBinary, dlopened: [[String]] = [], port: Int = 8080, user: String = "65532:65532",
            revision: String? = nil, source: String? = nil, labels: [String: String] = [:], format: Format = .oci
        ) {
            self.format = format
            self.binary = binary
            self.dlopened = dlopened
            self.port = port
            self.user = user
            self.revision = revision
            self.source = source
            self.labels = labels
        }
    }

    /// OCI media types, or Docker's schema 2 ones: the same blobs and config either way, but
    /// Podman honours `Healthcheck` only in Docker-format images.
    public enum Format: String, Sendable, CaseIterable {
        case oci, docker

        var manifest: String { self == .oci ? OCIMediaType.imageManifest : OCIMediaType.dockerManifest }
        var config: String { self == .oci ? OCIMediaType.imageConfig : "application/vnd.docker.container.image.v1+json" }
        var layerTar: String { self == .oci ? OCIMediaType.layerTar : "application/vnd.docker.image.rootfs.diff.tar" }
        var layerTarGzip: String { self == .oci ? OCIMediaType.layerTarGzip : "application/vnd.docker.image.rootfs.diff.tar.gzip" }
    }

    public struct Result: Sendable {
        public var manifest: Descriptor
        public var config: ImageConfig
        public var runtimeLayer: Descriptor
        /// The runtime layer's tar size before compression.
        public var runtimeUncompressedSize: Int64
        public var libraries: SharedLibraries
        public var modelLayers: [Descriptor]
        public var warnings: [String]
        /// What the image holds, for its SBOM and provenance (read when asked for: it hashes
        /// every binary and library).
        public var contents: ImageContents.Source
    }

    public enum BuildError: Error, Sendable, CustomStringConvertible {
        case reservedPath(String, reserved: [String])
        case shell(String)
        case unsupportedMachine(UInt16)
        case python(String)

        public var description: String {
            switch self {
            case .reservedPath(let path, let reserved):
                "model file `\(path)` would land on the image's own files (\(reserved.map { "/" + $0 }.joined(separator: ", ")) are reserved); move or rename it"
            case .shell(let reason): reason
            case .unsupportedMachine(let machine): "the binary is for ELF machine \(machine), which has no OCI architecture name here"
            case .python(let reason): "a Python model's image: \(reason)"
            }
        }
    }

    /// Where image files live, and the entrypoint's arguments.
    public enum Layout {
        public static let binary = "/vessel/bin/vessel"
        public static let libraries = "/vessel/lib"
        public static let fileIndex = "/" + UnpackedFileIndex.pathInImage
        public static let entrypoint = [binary, "serve", "--verify-files", fileIndex, "/"]
    }

    /// Builds the image, stores every blob and, if `tag` is given, tags it.
    public func build(_ artifact: Artifact, tag: Reference?, options: Options) throws -> Result {
        let binary = try SharedLibraries.realPath(options.binary)
        let architecture = try Self.architecture(of: binary)
        let libraries = try SharedLibraries.resolve(binary: binary, dlopened: options.dlopened)
        var index = try UnpackedFileIndex.make(artifact, store: store)
        try Self.checkReserved(index, Self.reservedPrefixes(interpreter: libraries.interpreter?.requested))
        // A Python model: its interpreter and environment, collected and built before the lock.
        let python = artifact.manifest.runtime.backend == .python ? try pythonParts(artifact, runtimeLibraries: libraries) : nil
        if python != nil { index.markInstalled(under: PythonLock.wheelDirectory) }

        return try store.withWriterLock {
            let runtime = try buildRuntimeLayer(binary: binary, libraries: libraries)
            var pythonLayers: [(layer: RuntimeLayer, what: String)] = []
            if let python {
                let interpreter = try buildFilesLayer(python.interpreterLayer.entries, kind: "vessel-python-layer-v1", title: "python \(python.version)")
                pythonLayers.append((interpreter, "python \(python.version) (\(python.libraries.count) shared libraries)"))
                if let environment = python.environmentLayer {
                    let layer = try buildFilesLayer(environment.entries, kind: "vessel-python-environment-v1", title: "python environment")
                    pythonLayers.append((layer, "python environment (\(python.packages.count) packages from vessel.lock)"))
                }
            }
            // The wheels are installed in the environment layer: not carried again as files.
            let (modelLayers, warnings) = try imageLayers(of: artifact, format: options.format, leavingWheels: python != nil)
            let indexLayer = try buildIndexLayer(index)
            let created = Self.createdTime()
            let labels = Self.labels(of: artifact, role: .server, created: created, options: options)
            let config = ImageConfig(
                created: created, architecture: architecture, os: "linux",
                config: Self.runtimeSettings(options: options, entrypoint: Layout.entrypoint, cmd: nil, labels: labels, python: python),
                rootfs: .init(
                    type: "layers",
                    diffIDs: [runtime.diffID.description] + pythonLayers.map(\.layer.diffID.description) + modelLayers.map(\.digest.description)
                        + [indexLayer.digest.description]),
                history: [Self.history(created, "runtime (\(libraries.libraries.count) shared libraries)")]
                    + pythonLayers.map { Self.history(created, $0.what) }
                    + modelLayers.map { Self.history(created, "model file \($0.annotations?[ModelPack.filepathAnnotation] ?? "?")") }
                    + [Self.history(created, UnpackedFileIndex.pathInImage)]
            )
            var runtimeLayer = runtime.descriptor
            runtimeLayer.mediaType = options.format.layerTarGzip
            let pythonDescriptors = pythonLayers.map { part in
                var descriptor = part.layer.descriptor
                descriptor.mediaType = options.format.layerTarGzip
                return descriptor
            }
            var fileIndexLayer = indexLayer
            fileIndexLayer.mediaType = options.format.layerTar
            let descriptor = try storeImage(
                config: config, layers: [runtimeLayer] + pythonDescriptors + modelLayers + [fileIndexLayer], labels: labels, format: options.format,
                tag: tag)
            return Result(
                manifest: descriptor, config: config, runtimeLayer: runtimeLayer, runtimeUncompressedSize: runtime.uncompressedSize,
                libraries: libraries, modelLayers: modelLayers, warnings: warnings + (python?.warnings ?? []),
                contents: .runtime(binary: binary, libraries: libraries, model: index, python: python.map(ImageContents.PythonParts.init)))
        }
    }

    /// A Python model's interpreter and environment (``PythonImageParts``), the environment
    /// installed from the artifact's own `vessel.lock` and wheels, unpacked to a scratch
    /// directory for the purpose.
    func pythonParts(_ artifact: Artifact, runtimeLibraries: SharedLibraries) throws -> PythonImageParts {
        let environment = ProcessInfo.processInfo.environment
        guard !artifact.manifest.runtime.requirements.isEmpty else {
            return try PythonImageParts.collect(manifest: artifact.manifest, unpacked: nil, runtimeLibraries: runtimeLibraries, environment: environment)
        }
        let scratch = try PythonEnvironment.temporaryDirectory(in: PythonEnvironment.cacheDirectory(environment: environment), label: "image")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        try Unpacker(store: store, durable: false).unpack(artifact, into: scratch) { path in
            path == PythonLock.fileName || path.hasPrefix(PythonLock.wheelDirectory + "/")
        }
        return try PythonImageParts.collect(manifest: artifact.manifest, unpacked: scratch, runtimeLibraries: runtimeLibraries, environment: environment)
    }

    /// The OCI architecture of an ELF executable.
    static func architecture(of binary: String) throws -> String {
        let elf = try ELFFile(path: binary)
        switch elf.machine {
        case 62: return "amd64"
        case 183: return "arm64"
        default: throw BuildError.unsupportedMachine(elf.machine)
        }
    }

    static func checkReserved(_ index: UnpackedFileIndex, _ reserved: [String]) throws {
        for file in index.files where reserved.contains(where: { file.path == $0 || file.path.hasPrefix($0 + "/") }) {
            throw BuildError.reservedPath(file.path, reserved: reserved)
        }
    }

    static func history(_ created: String, _ what: String) -> ImageConfig.History {
        ImageConfig.History(created: created, createdBy: "vessel image: \(what)", comment: nil)
    }

    /// The runtime's process settings: non-root, its port, its libraries, SIGTERM to drain and a
    /// health check the engine runs.
    static func runtimeSettings(
        options: Options, entrypoint: [String], cmd: [String]?, labels: [String: String], python: PythonImageParts? = nil
    ) -> ImageConfig.Settings {
        let second: Int64 = 1_000_000_000
        let libraryPath = ([Layout.libraries] + (python?.libraryPath ?? [])).joined(separator: ":")
        return .init(
            user: options.user, exposedPorts: ["\(options.port)/tcp": EmptyObject()],
            env: ["PATH=/vessel/bin", "LD_LIBRARY_PATH=\(libraryPath)", "HOME=/tmp", "VESSEL_HOST=0.0.0.0", "VESSEL_PORT=\(options.port)"]
                + (python?.env ?? []),
            entrypoint: entrypoint, cmd: cmd, workingDir: "/", labels: labels, stopSignal: "SIGTERM",
            healthcheck: .init(test: ["CMD", Layout.binary, "health"], interval: 10 * second, timeout: 3 * second, startPeriod: 5 * second, retries: 3)
        )
    }

    static func reservedPrefixes(interpreter: String?) -> [String] {
        var result = ["vessel", "etc/passwd", "etc/group", "tmp", "proc", "dev", "sys"]
        if let interpreter { result.append(String(interpreter.drop(while: { $0 == "/" }))) }
        return result
    }

    /// `SOURCE_DATE_EPOCH` as RFC 3339, or the Unix epoch: never the wall clock.
    static func createdTime() -> String {
        guard let text = ProcessInfo.processInfo.environment["SOURCE_DATE_EPOCH"], let seconds = Double(text) else { return "1970-01-01T00:00:00Z" }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: Date(timeIntervalSince1970: seconds))
    }

    /// What an image built here is for: its `dev.vessel.image` label.
    public enum Role: String, Sendable {
        /// The runtime and a model: `vessel image REF`.
        case server
        /// A model only, at `/models` for KServe's ModelCar sidecar: `vessel image REF --modelcar`.
        case modelCar = "modelcar"
        /// The runtime only, serving a model mounted at `/mnt/models`: `vessel image --runtime`.
        case runtime
    }

    public static let roleLabel = "dev.vessel.image"
    public static let artifactLabel = "dev.vessel.artifact"

    /// The image's labels for an artifact: its name, version, licence and source, and which
    /// artifact (and role) it was built from.
    static func labels(of artifact: Artifact?, role: Role, created: String, options: Options) -> [String: String] {
        var labels: [String: String] = [OCIAnnotation.created: created, roleLabel: role.rawValue]
        if let artifact {
            labels[OCIAnnotation.title] = artifact.manifest.name
            labels[OCIAnnotation.version] = artifact.manifest.version
            labels[artifactLabel] = artifact.descriptor.digest.description
            if let description = artifact.manifest.description { labels[OCIAnnotation.description] = description }
            if let license = artifact.manifest.license { labels[OCIAnnotation.licenses] = license }
        }
        let annotations = artifact?.imageManifest.annotations ?? [:]
        if let revision = options.revision ?? annotations["org.opencontainers.image.revision"] { labels["org.opencontainers.image.revision"] = revision }
        if let source = options.source ?? annotations["org.opencontainers.image.source"] { labels["org.opencontainers.image.source"] = source }
        for (key, value) in options.labels { labels[key] = value }
        return labels
    }

    /// The artifact's layers as image layers: the same blobs (a raw layer becomes a new
    /// one-entry tar, with a warning), with the image format's layer media type.
    func imageLayers(of artifact: Artifact, format: Format, leavingWheels: Bool = false) throws -> (layers: [Descriptor], warnings: [String]) {
        var layers: [Descriptor] = []
        var warnings: [String] = []
        for layer in artifact.imageManifest.layers {
            guard let (_, packing) = ModelPack.parseLayerMediaType(layer.mediaType) else { continue }
            if leavingWheels, layer.annotations?[ModelPack.filepathAnnotation]?.hasPrefix(PythonLock.wheelDirectory + "/") == true { continue }
            var imageLayer = layer
            if packing == .raw {
                imageLayer = try wrapRawLayer(layer)
                warnings.append(
                    "\(layer.annotations?[ModelPack.filepathAnnotation] ?? layer.digest.description) is a raw layer; the image holds it as a new tar layer (re-pack with this vessel to share one blob)"
                )
            }
            imageLayer.mediaType = format.layerTar
            layers.append(imageLayer)
        }
        return (layers, warnings)
    }

    /// Stores the config and the manifest, and tags the manifest.
    func storeImage(config: ImageConfig, layers: [Descriptor], labels: [String: String], format: Format, tag: Reference?) throws -> Descriptor {
        let configDescriptor = try store.ingest(Array(CanonicalJSON.encode(config)), mediaType: format.config)
        var manifestAnnotations = labels
        manifestAnnotations.removeValue(forKey: OCIAnnotation.description)
        var manifest = ImageManifest(artifactType: nil, config: configDescriptor, layers: layers, annotations: format == .oci ? manifestAnnotations : nil)
        manifest.mediaType = format.manifest
        let descriptor = try store.ingest(Array(CanonicalJSON.encode(manifest)), mediaType: format.manifest)
        if let tag { try store.tag(descriptor, as: tag) }
        return descriptor
    }

    // MARK: Layers

    struct RuntimeLayer: Codable {
        var descriptor: Descriptor
        var diffID: VesselStore.Digest
        var uncompressedSize: Int64
    }

    /// Runtime layers built before, by the digest of their content: `runtime-layers.json` in
    /// the store, best effort (a miss only costs the compression).
    struct RuntimeLayerCache {
        let path: String

        init(store: Store) { path = FileSystem.join(store.root, "runtime-layers.json") }

        private func load() -> [String: RuntimeLayer] {
            guard let data = FileManager.default.contents(atPath: path) else { return [:] }
            return (try? JSONDecoder().decode([String: RuntimeLayer].self, from: data)) ?? [:]
        }

        func lookup(_ key: String) -> RuntimeLayer? { load()[key] }

        func save(_ key: String, _ layer: RuntimeLayer) {
            var entries = load()
            entries[key] = layer
            if let bytes = try? Array(CanonicalJSON.encode(entries)) { try? FileSystem.writeAtomically(bytes, to: path) }
        }
    }

    enum Content {
        case directory(mode: Int)
        case file(source: String, executable: Bool)
        case bytes([UInt8])
        case symlink(String)

        /// Entries by their path in the image (relative), with every parent directory.
        struct Tree {
            var entries: [String: Content] = [:]

            mutating func add(_ path: String, _ content: Content) {
                addDirectories(leadingTo: path)
                entries[path] = content
            }

            mutating func addDirectories(leadingTo path: String) {
                var parts = path.split(separator: "/").map(String.init)
                parts.removeLast()
                var current = ""
                for part in parts where part != "." {
                    current = current.isEmpty ? part : current + "/" + part
                    if entries[current] == nil { entries[current] = .directory(mode: 0o755) }
                }
            }
        }
    }

    func buildRuntimeLayer(binary: String, libraries: SharedLibraries) throws -> RuntimeLayer {
        var tree = Content.Tree(entries: [
            "etc": .directory(mode: 0o755),
            "etc/passwd": .bytes(Array("root:x:0:0:root:/root:/sbin/nologin\nvessel:x:65532:65532:vessel:/tmp:/sbin/nologin\n".utf8)),
            "etc/group": .bytes(Array("root:x:0:\nvessel:x:65532:\n".utf8)),
            "tmp": .directory(mode: 0o1777),
            "vessel": .directory(mode: 0o755),
            "vessel/bin": .directory(mode: 0o755),
            "vessel/lib": .directory(mode: 0o755),
            "vessel/bin/vessel": .file(source: binary, executable: true)
        ])
        if let interpreter = libraries.interpreter {
            tree.add(String(interpreter.requested.drop(while: { $0 == "/" })), .file(source: interpreter.path, executable: true))
        }
        for library in libraries.libraries {
            tree.add("vessel/lib/\(library.name)", .file(source: library.path, executable: true))
        }
        return try buildFilesLayer(tree.entries, kind: "vessel-runtime-layer-v1", title: "vessel runtime")
    }

    /// A gzip layer of `entries` (path in the image → content), in path order. Layers built
    /// before are found again by a digest of every entry's content (hashing ~100 MB takes a tenth
    /// of a second; compressing it takes seconds).
    func buildFilesLayer(_ entries: [String: Content], kind: String, title: String) throws -> RuntimeLayer {
        let sortedPaths = entries.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        var keyHasher = SHA256()
        keyHasher.update(data: Array(kind.utf8))
        for path in sortedPaths {
            keyHasher.update(data: Array((path + "\0").utf8))
            switch entries[path]! {
            case .directory(let mode): keyHasher.update(data: Array("dir \(mode)\0".utf8))
            case .bytes(let bytes): keyHasher.update(data: bytes)
            case .symlink(let target): keyHasher.update(data: Array("link \(target)\0".utf8))
            case .file(let source, let executable):
                keyHasher.update(data: Array("file \(executable)\0".utf8))
                let fd = try FileSystem.openForReading(source)
                defer { close(fd) }
                try FileSystem.forEachChunk(fd, path: source) { keyHasher.update(bufferPointer: $0) }
            }
        }
        let key = VesselStore.Digest(bytes: keyHasher.finalize()).hex
        let cache = RuntimeLayerCache(store: store)
        if let cached = cache.lookup(key), store.hasBlob(cached.descriptor.digest) { return cached }
        let total = sortedPaths.reduce(Int64(0)) { sum, path in
            if case .file(let source, _) = entries[path]! { return sum + ((try? FileSystem.size(of: source)) ?? 0) }
            return sum
        }
        let bar = progress(title, total)
        let ingest = try store.beginIngest()
        do {
            var uncompressed = SHA256()
            var uncompressedSize: Int64 = 0
            let gzip = try GzipWriter(level: 6) { try ingest.append($0) }
            var tar = TarWriter { chunk in
                uncompressed.update(bufferPointer: chunk)
                uncompressedSize += Int64(chunk.count)
                try gzip.write(chunk)
            }
            for path in sortedPaths {
                switch entries[path]! {
                case .directory(let mode):
                    try tar.writeHeader(path: path, kind: .directory, mode: mode)
                case .bytes(let bytes):
                    try tar.writeHeader(path: path, kind: .file(size: Int64(bytes.count), executable: false))
                    try bytes.withUnsafeBytes { try tar.writeContent($0) }
                    try tar.finishEntry()
                case .symlink(let target):
                    try tar.writeHeader(path: path, kind: .symlink(target: target))
                case .file(let source, let executable):
                    let fd = try FileSystem.openForReading(source)
                    defer { close(fd) }
                    var info = stat()
                    try FileSystem.check(fstat(fd, &info), "cannot stat", source)
                    let size = Int64(info.st_size)
                    try tar.writeHeader(path: path, kind: .file(size: size, executable: executable))
                    var written: Int64 = 0
                    try FileSystem.forEachChunk(fd, path: source) { chunk in
                        written += Int64(chunk.count)
                        guard written <= size else { throw StoreError.io(operation: "changed while being read", path: source, errno: 0) }
                        try tar.writeContent(chunk)
                        bar.advance(by: chunk.count)
                    }
                    guard written == size else { throw StoreError.io(operation: "changed while being read", path: source, errno: 0) }
                    try tar.finishEntry()
                }
            }
            try tar.finish()
            try gzip.finish()
            let (digest, size) = try ingest.commit()
            bar.finish()
            let layer = RuntimeLayer(
                descriptor: Descriptor(
                    mediaType: OCIMediaType.layerTarGzip, digest: digest, size: size,
                    annotations: [OCIAnnotation.title: title]),
                diffID: VesselStore.Digest(bytes: uncompressed.finalize()), uncompressedSize: uncompressedSize)
            cache.save(key, layer)
            return layer
        } catch {
            ingest.abort()
            throw error
        }
    }

    func buildIndexLayer(_ index: UnpackedFileIndex) throws -> Descriptor {
        let json = try Array(CanonicalJSON.encode(index))
        let ingest = try store.beginIngest()
        do {
            var tar = TarWriter { try ingest.append($0) }
            try tar.writeHeader(path: "vessel", kind: .directory)
            try tar.writeHeader(path: UnpackedFileIndex.pathInImage, kind: .file(size: Int64(json.count), executable: false))
            try json.withUnsafeBytes { try tar.writeContent($0) }
            try tar.finishEntry()
            try tar.finish()
            let (digest, size) = try ingest.commit()
            return Descriptor(mediaType: OCIMediaType.layerTar, digest: digest, size: size, annotations: [OCIAnnotation.title: UnpackedFileIndex.pathInImage])
        } catch {
            ingest.abort()
            throw error
        }
    }

    /// A raw ModelPack layer (one file's bytes) as a one-entry tar, for artifacts packed that way.
    private func wrapRawLayer(_ layer: Descriptor) throws -> Descriptor {
        let path = try Unpacker.checked(layer.annotations?[ModelPack.filepathAnnotation] ?? layer.digest.hex)
        let executable = (layer.annotations?[ModelPack.fileMetadataAnnotation]).map { $0.contains("\"mode\":493") } ?? false
        let ingest = try store.beginIngest()
        do {
            var tar = TarWriter { try ingest.append($0) }
            try tar.writeHeader(path: path, kind: .file(size: layer.size, executable: executable))
            try store.readBlobVerifying(layer, context: path) { try tar.writeContent($0) }
            try tar.finishEntry()
            try tar.finish()
            let (digest, size) = try ingest.commit()
            return Descriptor(mediaType: OCIMediaType.layerTar, digest: digest, size: size, annotations: layer.annotations)
        } catch {
            ingest.abort()
            throw error
        }
    }
}
