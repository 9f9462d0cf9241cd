import Crypto
import Foundation
public import VesselStore
#if canImport(Glibc)
import Glibc
#endif

/// An image read back from the store and unpacked into a root filesystem, as a container
/// runtime does it: layers in order, gzip or plain, whiteouts applied, each layer checked against
/// its digest and its DiffID.
///
/// Paths are untrusted: each is normalized and refused if it climbs out, nothing is written
/// through a symlink, and hard links must point inside the root.
/// See https://github.com/opencontainers/image-spec/blob/main/layer.md
public struct RootFilesystem {
    public var manifest: ImageManifest
    public var config: ImageConfig

    public enum UnpackError: Error, Sendable, CustomStringConvertible {
        case notAnImage(String)
        case unsupportedLayer(VesselStore.Digest, String)
        case diffIDMismatch(VesselStore.Digest, expected: String, actual: String)
        case unsafePath(String, String)

        public var description: String {
            switch self {
            case .notAnImage(let reason): "not a runnable image: \(reason)"
            case .unsupportedLayer(let digest, let type): "layer \(digest) has media type \(type), which is not a tar layer"
            case .diffIDMismatch(let digest, let expected, let actual):
                "layer \(digest) unpacks to \(actual), but the config's DiffID is \(expected)"
            case .unsafePath(let path, let reason): "refusing layer entry `\(path)`: \(reason)"
            }
        }
    }

    /// Reads an image's manifest and config from the store.
    public static func load(_ descriptor: Descriptor, from store: Store) throws -> RootFilesystem {
        let manifestData = try store.readBlob(descriptor, context: "image manifest")
        let manifest = try CanonicalJSON.decode(ImageManifest.self, from: manifestData, path: store.blobPath(descriptor.digest))
        guard manifest.config.mediaType == OCIMediaType.imageConfig || manifest.config.mediaType == "application/vnd.docker.container.image.v1+json" else {
            throw UnpackError.notAnImage("its config has media type \(manifest.config.mediaType) (a model artifact? build an image with `vessel image`)")
        }
        let configData = try store.readBlob(manifest.config, context: "image config")
        let config = try CanonicalJSON.decode(ImageConfig.self, from: configData, path: store.blobPath(manifest.config.digest))
        guard config.rootfs.diffIDs.count == manifest.layers.count else {
            throw UnpackError.notAnImage("the config lists \(config.rootfs.diffIDs.count) DiffIDs for \(manifest.layers.count) layers")
        }
        return RootFilesystem(manifest: manifest, config: config)
    }

    /// Unpacks every layer into `directory` (created; should be empty).
    public func unpack(from store: Store, into directory: String) throws {
        try FileSystem.makeDirectories(directory)
        for (layer, diffID) in zip(manifest.layers, config.rootfs.diffIDs) {
            switch layer.mediaType {
            case OCIMediaType.layerTar, "application/vnd.docker.image.rootfs.diff.tar":
                try store.verifyBlob(layer, context: "layer \(layer.digest)")
                guard layer.digest.description == diffID else {
                    throw UnpackError.diffIDMismatch(layer.digest, expected: diffID, actual: layer.digest.description)
                }
                try apply(tarAt: store.blobPath(layer.digest), context: layer.digest.description, into: directory)
            case OCIMediaType.layerTarGzip, "application/vnd.docker.image.rootfs.diff.tar.gzip":
                // Decompress to a scratch file (checking both digests), then apply it.
                let scratch = FileSystem.join(directory, ".vessel-layer-\(getpid())")
                let fd = try FileSystem.open(scratch, O_WRONLY | O_CREAT | O_TRUNC, mode: 0o600)
                defer { unlink(scratch) }
                var hasher = SHA256()
                do {
                    let gunzip = try GzipReader(context: "layer \(layer.digest)") { chunk in
                        hasher.update(bufferPointer: chunk)
                        try FileSystem.writeAll(fd, chunk, path: scratch)
                    }
                    try store.readBlobVerifying(layer, context: "layer \(layer.digest)") { try gunzip.write($0) }
                    try gunzip.finish()
                    close(fd)
                } catch {
                    close(fd)
                    throw error
                }
                let actual = VesselStore.Digest(bytes: hasher.finalize()).description
                guard actual == diffID else { throw UnpackError.diffIDMismatch(layer.digest, expected: diffID, actual: actual) }
                try apply(tarAt: scratch, context: layer.digest.description, into: directory)
            default:
                throw UnpackError.unsupportedLayer(layer.digest, layer.mediaType)
            }
        }
    }

    private func apply(tarAt path: String, context: String, into root: String) throws {
        let fd = try FileSystem.openForReading(path)
        defer { close(fd) }
        let reader = TarReader(fd: fd, path: context)
        while let entry = try reader.next() {
            let relative: String
            switch SafePath.normalize(entry.path) {
            case .success(let value): relative = value
            case .failure(.empty): continue  // "./", the root itself
            case .failure(let problem): throw UnpackError.unsafePath(entry.path, problem.description)
            }
            let slash = relative.lastIndex(of: "/")
            let name = slash.map { String(relative[relative.index(after: $0)...]) } ?? relative
            let parent = slash.map { String(relative[..<$0]) } ?? ""
            try prepareParents(of: relative, in: root)
            let target = root + "/" + relative
            if name == ".wh..wh..opq" {
                // An opaque directory: what lower layers put there is hidden.
                let directory = parent.isEmpty ? root : root + "/" + parent
                for child in FileSystem.listDirectory(directory) { try removeTree(directory + "/" + child) }
                continue
            }
            if name.hasPrefix(".wh.") {
                let hidden = (parent.isEmpty ? root : root + "/" + parent) + "/" + name.dropFirst(4)
                try removeTree(hidden)
                continue
            }
            let mode = mode_t(entry.mode & 0o7777)
            switch entry.kind {
            case .directory:
                var info = stat()
                if lstat(target, &info) == 0, info.st_mode & S_IFMT != S_IFDIR { try removeTree(target) }
                if mkdir(target, 0o755) != 0, errno != EEXIST { throw StoreError.io(operation: "cannot create directory", path: target, errno: errno) }
                try FileSystem.check(chmod(target, mode), "cannot chmod", target)
            case .file:
                try removeTree(target)
                let out = try FileSystem.open(target, O_WRONLY | O_CREAT | O_EXCL, mode: 0o600)
                do {
                    try reader.readContent { try FileSystem.writeAll(out, $0, path: target) }
                    try FileSystem.check(fchmod(out, mode), "cannot chmod", target)
                    close(out)
                } catch {
                    close(out)
                    throw error
                }
            case .symlink(let link):
                try removeTree(target)
                // A symlink may point anywhere: the container resolves it inside its root. It is
                // never followed here, since no later entry is written through one.
                try FileSystem.check(symlink(link, target), "cannot create symlink", target)
            case .hardlink(let link):
                guard case .success(let source) = SafePath.normalize(link) else {
                    throw UnpackError.unsafePath(entry.path, "a hard link to `\(link)`, outside the root")
                }
                try removeTree(target)
                try FileSystem.check(Glibc.link(root + "/" + source, target), "cannot link", target)
            case .other(let type):
                throw UnpackError.unsafePath(entry.path, "a special file (type \(Character(UnicodeScalar(type))))")
            }
        }
    }

    private func prepareParents(of relative: String, in root: String) throws {
        var current = root
        for component in relative.split(separator: "/").dropLast() {
            current += "/" + component
            var info = stat()
            if lstat(current, &info) == 0 {
                if info.st_mode & S_IFMT == S_IFLNK { throw UnpackError.unsafePath(relative, "a directory on its way is a symlink") }
                if info.st_mode & S_IFMT != S_IFDIR { throw UnpackError.unsafePath(relative, "\(current) is not a directory") }
            } else if mkdir(current, 0o755) != 0, errno != EEXIST {
                throw StoreError.io(operation: "cannot create directory", path: current, errno: errno)
            }
        }
    }

    private func removeTree(_ path: String) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        if info.st_mode & S_IFMT == S_IFDIR {
            for child in FileSystem.listDirectory(path) { try removeTree(path + "/" + child) }
            try FileSystem.check(rmdir(path), "cannot remove", path)
        } else {
            try FileSystem.check(unlink(path), "cannot remove", path)
        }
    }
}
