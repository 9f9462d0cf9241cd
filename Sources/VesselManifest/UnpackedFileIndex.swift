import Crypto
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

import VesselStore
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
        /// Installed into the image's Python environment rather than carried as this file (a
        /// wheel): listed, for the artifact's signature, but not looked for.
        public var installed: Bool?

        public init(path: String, digest: String?, size: Int64, link: String? = nil) {
            self.path = path
            self.digest = digest
            self.size = size
            self.link = link
        }
    }

    /// The artifact's manifest digest.
    public var artifact: String
    public var name: String
    public var version: String
    public var files: [File]
    /// The artifact's vessel.yaml as read when the image was built, so that the runtime binary
    /// serves it without a YAML parser (absent in images built before it was added).
    public var manifest: Manifest?
    /// The artifact's Model Signing bundles (Sigstore bundle JSON) when the image was built, for
    /// the runtime's `--require-signature`.
    public var signatures: [String]?

    public init(artifact: String, name: String, version: String, files: [File], manifest: Manifest?, signatures: [String]? = nil) {
        self.artifact = artifact
        self.name = name
        self.version = version
        self.files = files
        self.manifest = manifest
        self.signatures = signatures
    }

    public struct Mismatch: Error, Sendable, CustomStringConvertible {
        public var path: String
        public var reason: String
        public var description: String { "model file \(path) \(reason)" }
    }

    /// Marks the files under `directory` (a relative path) as installed, not carried.
    public mutating func markInstalled(under directory: String) {
        for k in files.indices where files[k].path.hasPrefix(directory + "/") { files[k].installed = true }
    }

    /// Re-hashes every file under `root`; throws naming the first that is missing or differs.
    public func verify(root: String) throws {
        for file in files where file.installed != true {
            let full = FileSystem.join(root, file.path)
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
                throw Mismatch(
                    path: file.path, reason: "does not match the artifact: \(size) bytes with \(digest), expected \(file.size) bytes with \(file.digest ?? "?")"
                )
            }
        }
    }
}
