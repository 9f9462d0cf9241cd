import Crypto
import Foundation
import VesselManifest
public import VesselStore
#if canImport(Glibc)
import Glibc
#endif

/// The content digest of every file of an artifact, for checking the files once they lie unpacked
/// outside the store — in an image's root filesystem, where a container runtime put them.
///
/// `vessel image` writes it into the image (``pathInImage``); the image's entrypoint serves with
/// `--verify-files`, so the model is ready only once every file matches, as when serving from
/// the store.
public struct UnpackedFileIndex: Codable, Sendable, Hashable {
    public static let pathInImage = "vessel/model.json"

    public struct File: Codable, Sendable, Hashable {
        public var path: String
        /// `sha256:…` of the content; nil for a symlink.
        public var digest: String?
        public var size: Int64
        /// A symlink's target.
        public var link: String?
    }

    /// The artifact's manifest digest.
    public var artifact: String
    public var name: String
    public var version: String
    public var files: [File]

    public struct Mismatch: Error, Sendable, CustomStringConvertible {
        public var path: String
        public var reason: String
        public var description: String { "model file \(path) \(reason)" }
    }

    /// Reads every layer of a (verified) artifact and records what each file holds.
    public static func make(_ artifact: Artifact, store: Store) throws -> UnpackedFileIndex {
        var files: [File] = []
        for layer in artifact.imageManifest.layers {
            let context = layer.annotations?[ModelPack.filepathAnnotation] ?? layer.mediaType
            guard let (_, packing) = ModelPack.parseLayerMediaType(layer.mediaType) else {
                throw Artifact.LoadError.malformed(artifact.reference, "layer \(layer.digest) has media type \(layer.mediaType)")
            }
            switch packing {
            case .raw:
                files.append(File(path: try Unpacker.checked(context), digest: layer.digest.description, size: layer.size))
            case .tar:
                let fd = try FileSystem.openForReading(store.blobPath(layer.digest))
                defer { close(fd) }
                let reader = TarReader(fd: fd, path: context)
                while let entry = try reader.next() {
                    let path = try Unpacker.checked(entry.path)
                    switch entry.kind {
                    case .file:
                        var hasher = SHA256()
                        try reader.readContent { hasher.update(bufferPointer: $0) }
                        files.append(File(path: path, digest: VesselStore.Digest(bytes: hasher.finalize()).description, size: entry.size))
                    case .symlink(let target):
                        files.append(File(path: path, size: 0, link: target))
                    default:
                        break
                    }
                }
            }
        }
        return UnpackedFileIndex(artifact: artifact.descriptor.digest.description, name: artifact.manifest.name,
                                 version: artifact.manifest.version, files: files)
    }

    /// Re-hashes every file under `root`; throws naming the first that is missing or differs.
    public func verify(root: String) throws {
        for file in files {
            let full = (root as NSString).appendingPathComponent(file.path)
            if let link = file.link {
                var buffer = [CChar](repeating: 0, count: 4097)
                let length = readlink(full, &buffer, 4096)
                guard length >= 0 else { throw Mismatch(path: file.path, reason: "is missing (expected a symlink to \(link))") }
                let target = String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                guard target == link else { throw Mismatch(path: file.path, reason: "links to \(target), expected \(link)") }
                continue
            }
            guard FileSystem.exists(full) else { throw Mismatch(path: file.path, reason: "is missing") }
            let fd = try FileSystem.openForReading(full)
            defer { close(fd) }
            var hasher = SHA256()
            var size: Int64 = 0
            try FileSystem.forEachChunk(fd, path: full) {
                hasher.update(bufferPointer: $0)
                size += Int64($0.count)
            }
            let digest = VesselStore.Digest(bytes: hasher.finalize()).description
            guard size == file.size, digest == file.digest else {
                throw Mismatch(path: file.path, reason: "does not match the artifact: \(size) bytes with \(digest), expected \(file.size) bytes with \(file.digest ?? "?")")
            }
        }
    }
}
