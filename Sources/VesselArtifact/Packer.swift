import Foundation
public import VesselManifest
import VesselManifestYAML
public import VesselPython
public import VesselStore
#if canImport(Glibc)
import Glibc
#endif

/// Turns a model directory with its `vessel.yaml` into a ModelPack artifact in a store.
///
/// The result is reproducible: the same files give the same manifest digest whatever the
/// directory, user, time or machine. Each file is one layer, an uncompressed deterministic tar of
/// that one file (so identical weights dedupe across versions, and the same blob serves as a
/// layer of a runnable image); a directory is one tar layer; the manifest itself is one more
/// layer, found through the `dev.vessel.manifest` annotation.
public struct Packer {
    public let store: Store
    /// Called with each file's label and size; returns the progress to draw for it.
    public var progress: @Sendable (String, Int64) -> ProgressBar

    public init(store: Store, progress: @escaping @Sendable (String, Int64) -> ProgressBar = { _, _ in .silent() }) {
        self.store = store
        self.progress = progress
    }

    public struct Result: Sendable {
        public var reference: Reference
        public var manifest: Descriptor
        public var layers: [Descriptor]
        public var warnings: [Diagnostic]
        /// Every file packed (the model's, the wheels, vessel.yaml), by its path in the artifact,
        /// with the SHA-256 of its bytes (not of the layer around it), in the order stored.
        public var files: [PackedFile]
        /// The vessel.yaml packed, as parsed.
        public var packedManifest: Manifest
        /// The wheels packed, as vessel.lock pins them (none for other backends).
        public var wheels: [PythonLock.Entry]
    }

    public struct PackedFile: Sendable, Equatable {
        public var path: String
        public var sha256: Digest
        public var size: Int64
        /// The layer that carries it.
        public var layer: Digest
        public var role: FileRole
    }

    public enum PackError: Error, Sendable, CustomStringConvertible {
        case unsupportedFile(path: String, reason: String)

        public var description: String {
            switch self {
            case .unsupportedFile(let path, let reason): "cannot pack \(path): \(reason)"
            }
        }
    }

    /// Validates `directory/vessel.yaml`, stores every file, and tags the artifact.
    ///
    /// - Parameter reference: the tag to give it; defaults to `name:version` from the manifest.
    /// - Parameter annotations: added to the image manifest (the manifest's own win on a clash).
    public func pack(directory: String, reference: Reference? = nil, annotations extra: [String: String] = [:]) throws -> Result {
        let parsed = try ManifestParser.load(directory: directory)
        let manifest = parsed.manifest
        let target = reference ?? Reference(name: manifest.name, tag: manifest.version)
        return try store.withWriterLock {
            var layers: [Descriptor] = []
            var files: [PackedFile] = []
            for entry in manifest.allFiles {
                layers.append(try storeFile(entry, directory: directory, files: &files))
            }
            let wheels = try wheelsToPack(manifest, directory: directory)
            layers += try storeWheels(wheels, files: &files)
            let manifestPath = (directory as NSString).appendingPathComponent(ManifestParser.fileName)
            let manifestLayer = try storeSingleFile(
                path: manifestPath, name: ManifestParser.fileName, role: .weightConfig, executable: false, files: &files)
            layers.append(manifestLayer)

            let config = Self.config(for: manifest, layers: layers)
            let configDescriptor = try store.ingest(Array(CanonicalJSON.encode(config)), mediaType: ModelPack.configMediaType)
            var annotations: [String: String] = [
                OCIAnnotation.title: manifest.name,
                OCIAnnotation.version: manifest.version,
                VesselAnnotation.manifest: manifestLayer.digest.description,
                VesselAnnotation.schemaVersion: String(manifest.schemaVersion)
            ]
            if let description = manifest.description { annotations[OCIAnnotation.description] = description }
            if !manifest.authors.isEmpty { annotations[OCIAnnotation.authors] = manifest.authors.joined(separator: ", ") }
            if let license = manifest.license { annotations[OCIAnnotation.licenses] = license }
            if let created = Self.sourceDateEpoch() { annotations[OCIAnnotation.created] = created }
            for (key, value) in extra { annotations[key] = value }
            for (key, value) in manifest.annotations { annotations[key] = value }
            let imageManifest = ImageManifest(artifactType: ModelPack.artifactType, config: configDescriptor, layers: layers, annotations: annotations)
            var manifestDescriptor = try store.ingest(Array(CanonicalJSON.encode(imageManifest)), mediaType: OCIMediaType.imageManifest)
            manifestDescriptor.artifactType = ModelPack.artifactType
            try store.tag(manifestDescriptor, as: target)
            return Result(
                reference: target, manifest: manifestDescriptor, layers: layers, warnings: parsed.warnings, files: files, packedManifest: manifest,
                wheels: wheels)
        }
    }

    static func config(for manifest: Manifest, layers: [Descriptor]) -> ModelConfig {
        ModelConfig(
            descriptor: .init(
                createdAt: sourceDateEpoch(), authors: manifest.authors.isEmpty ? nil : manifest.authors,
                name: manifest.name, version: manifest.version, description: manifest.description,
                licenses: manifest.license.map { [$0] }, family: manifest.model.family
            ),
            config: .init(
                architecture: manifest.model.architecture, format: manifest.model.format.rawValue,
                paramSize: manifest.model.paramSize, precision: manifest.model.precision,
                quantization: manifest.model.quantization
            ),
            // Layers are stored uncompressed, so each DiffID is the layer digest itself.
            modelfs: .init(type: "layers", diffIds: layers.map(\.digest.description))
        )
    }

    /// RFC 3339 time from `SOURCE_DATE_EPOCH`, the reproducible-builds convention; without it the
    /// artifact carries no time at all, so packing twice gives one digest.
    static func sourceDateEpoch() -> String? {
        guard let text = ProcessInfo.processInfo.environment["SOURCE_DATE_EPOCH"], let seconds = Double(text) else { return nil }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: Date(timeIntervalSince1970: seconds))
    }

    // MARK: Layers

    /// The wheels `vessel.lock` pins, for a Python model with requirements.
    private func wheelsToPack(_ manifest: Manifest, directory: String) throws -> [PythonLock.Entry] {
        guard manifest.runtime.backend == .python, !manifest.runtime.requirements.isEmpty,
            let lock = try PythonLock.read(directory: directory)
        else { return [] }
        return lock.entries
    }

    /// A Python model's wheels, each a layer of its own: models that share a wheel share its blob,
    /// in the store and in a registry.
    private func storeWheels(_ wheels: [PythonLock.Entry], files: inout [PackedFile]) throws -> [Descriptor] {
        let cache = PythonEnvironment.wheelCache(environment: ProcessInfo.processInfo.environment)
        return try wheels.map { entry in
            guard let path = PythonEnvironment.verifiedWheel(entry, in: cache) else {
                throw WorkerError.unavailable(
                    "the wheel \(entry.file) that vessel.lock names is not in \(cache) with its recorded sha256; `vessel pack` downloads it")
            }
            return try storeSingleFile(path: path, name: PythonLock.wheelDirectory + "/" + entry.file, role: .code, executable: false, files: &files)
        }
    }

    private func storeFile(_ entry: FileEntry, directory: String, files: inout [PackedFile]) throws -> Descriptor {
        let full = (directory as NSString).appendingPathComponent(entry.path)
        var info = stat()
        guard stat(full, &info) == 0 else { throw StoreError.io(operation: "cannot stat", path: full, errno: errno) }
        switch info.st_mode & S_IFMT {
        case S_IFREG:
            return try storeSingleFile(path: full, name: entry.path, role: entry.role, executable: info.st_mode & 0o111 != 0, files: &files)
        case S_IFDIR:
            return try storeTree(path: full, name: entry.path, role: entry.role, files: &files)
        default:
            throw PackError.unsupportedFile(path: full, reason: "only regular files and directories can be packed")
        }
    }

    /// A file becomes a tar layer holding that one entry, at its path from the model root. A tar
    /// (not the raw bytes) so the same blob can also be a layer of a runnable image: a container
    /// runtime unpacks it into the root filesystem, and a registry stores the weights once for
    /// both the artifact and the image.
    private func storeSingleFile(path: String, name: String, role: FileRole, executable: Bool, files: inout [PackedFile]) throws -> Descriptor {
        let fd = try FileSystem.openForReading(path)
        defer { close(fd) }
        var info = stat()
        try FileSystem.check(fstat(fd, &info), "cannot stat", path)
        let size = Int64(info.st_size)
        let bar = progress(name, size)
        let ingest = try store.beginIngest()
        do {
            var tar = TarWriter { try ingest.append($0) }
            try tar.writeHeader(path: name, kind: .file(size: size, executable: executable))
            let content = try copyContent(fd, path: path, size: size, into: ingest, progress: bar)
            try tar.finishEntry()
            try tar.finish()
            let (digest, stored) = try ingest.commit()
            files.append(PackedFile(path: name, sha256: content, size: size, layer: digest, role: role))
            bar.finish()
            let metadata = FileMetadata(name: name, mode: executable ? 0o755 : 0o644, size: size, typeflag: Int(UInt8(ascii: "0")))
            return Descriptor(
                mediaType: ModelPack.layerMediaType(role: role, packing: .tar), digest: digest, size: stored,
                annotations: [
                    ModelPack.filepathAnnotation: name,
                    ModelPack.fileMetadataAnnotation: String(decoding: try CanonicalJSON.encode(metadata), as: UTF8.self),
                    ModelPack.untestedAnnotation: "false",
                    OCIAnnotation.title: name
                ]
            )
        } catch {
            ingest.abort()
            throw error
        }
    }

    /// Copies a file's `size` bytes into a layer as its tar entry's content (the entry's header
    /// written before, its padding after) and returns their SHA-256. The bytes go to the blob
    /// directly — `TarWriter.writeContent` only forwards them — so the file's own digest is taken
    /// beside the layer's. A file that grows or shrinks meanwhile is refused.
    private func copyContent(_ fd: Int32, path: String, size: Int64, into ingest: BlobIngest, progress bar: ProgressBar) throws -> Digest {
        var written: Int64 = 0
        var content = ContentDigest()
        try FileSystem.forEachChunk(fd, path: path) { chunk in
            written += Int64(chunk.count)
            guard written <= size else { throw PackError.unsupportedFile(path: path, reason: "it grew while being packed") }
            try ingest.append(chunk, alsoHashing: &content)
            bar.advance(by: chunk.count)
        }
        guard written == size else { throw PackError.unsupportedFile(path: path, reason: "it shrank while being packed") }
        return content.finalize()
    }

    /// A directory becomes one tar layer whose entries carry their path from the model root.
    private func storeTree(path: String, name: String, role: FileRole, files: inout [PackedFile]) throws -> Descriptor {
        let entries = try TreeWalker.entries(root: path, prefix: name)
        let total = entries.reduce(Int64(0)) { $0 + $1.size }
        let bar = progress(name + "/", total)
        let ingest = try store.beginIngest()
        do {
            var tar = TarWriter { try ingest.append($0) }
            var treeFiles: [(path: String, sha256: Digest, size: Int64)] = []
            for entry in entries {
                try tar.writeHeader(path: entry.archivePath, kind: entry.kind)
                if case .file = entry.kind {
                    let fd = try FileSystem.openForReading(entry.fullPath)
                    defer { close(fd) }
                    let content = try copyContent(fd, path: entry.fullPath, size: entry.size, into: ingest, progress: bar)
                    try tar.finishEntry()
                    treeFiles.append((entry.archivePath, content, entry.size))
                }
            }
            try tar.finish()
            let (digest, size) = try ingest.commit()
            files += treeFiles.map { PackedFile(path: $0.path, sha256: $0.sha256, size: $0.size, layer: digest, role: role) }
            bar.finish()
            return Descriptor(
                mediaType: ModelPack.layerMediaType(role: role, packing: .tar), digest: digest, size: size,
                annotations: [
                    ModelPack.filepathAnnotation: name,
                    ModelPack.untestedAnnotation: "false",
                    OCIAnnotation.title: name
                ]
            )
        } catch {
            ingest.abort()
            throw error
        }
    }
}
