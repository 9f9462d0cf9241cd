import Dispatch
import Foundation
public import VesselStore
import VesselSystem
#if canImport(Glibc)
import Glibc
#endif

/// Writes an artifact's files back into a directory, as they were packed.
///
/// Paths come from the artifact and are untrusted: each is normalized and refused if absolute or
/// climbing out with `..`; nothing is ever written through a symlink, and a symlink is created
/// only if it points inside the directory. Each file is written to a temporary name, checked
/// against its digest while written, and renamed into place, so a corrupt blob leaves no file.
public struct Unpacker {
    public let store: Store
    public var overwrite: Bool
    /// Each file is fsynced before it is renamed into place, so an unpacked directory survives a
    /// crash (`vessel unpack`). A server's work directory is unpacked anew at every start, so it
    /// skips that: flushing a 100 MB model to disk was most of the time its unpacking took.
    public var durable: Bool

    public init(store: Store, overwrite: Bool = false, durable: Bool = true) {
        self.store = store
        self.overwrite = overwrite
        self.durable = durable
    }

    public enum UnpackError: Error, Sendable, CustomStringConvertible {
        case unsafePath(String, reason: String)
        case exists(String)
        case throughSymlink(String)

        public var description: String {
            switch self {
            case .unsafePath(let path, let reason): "refusing to unpack `\(path)`: it \(reason)"
            case .exists(let path): "\(path) already exists (pass --force to overwrite)"
            case .throughSymlink(let path): "refusing to write `\(path)`: a directory on its way is a symlink"
            }
        }
    }

    /// Unpacks every file and `vessel.yaml` into `directory` (created if needed). Returns the
    /// relative paths written.
    @discardableResult
    public func unpack(_ artifact: Artifact, into directory: String) throws -> [String] {
        try unpack(artifact, into: directory, leave: { _ in false })
    }

    /// Every regular file ``unpack(_:into:)`` writes, by the relative path it writes it at, in
    /// layer order then vessel.yaml, with a reader of its bytes: what a signature over the
    /// unpacked files (Model Signing) hashes. Each layer is checked against its digest first. A
    /// symbolic link is refused: such signatures cover regular files only.
    public func forEachFile(
        _ artifact: Artifact,
        _ body: (_ path: String, _ read: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws -> Void
    ) throws {
        for file in artifact.files {
            let base = try Self.checked(file.path)
            switch file.packing {
            case .raw:
                try body(base) { sink in try store.readBlobVerifying(file.descriptor, context: file.path) { try sink($0) } }
            case .tar:
                // The layer's digest is checked on another thread while its entries are read
                // here: one pass over the bytes in wall-clock time, not two. Nothing read is
                // trusted until both are done.
                let verified = BlobCheck(store: store, blob: file.descriptor, context: file.path)
                do {
                    try forEachEntry(of: file, base: base) { entry, relative, reader in
                        switch entry.kind {
                        case .directory: break
                        case .file: try body(relative) { sink in try reader.readContent { try sink($0) } }
                        default: throw UnpackError.unsafePath(entry.path, reason: "is not a regular file or directory")
                        }
                    }
                } catch {
                    _ = try? verified.wait()
                    throw error
                }
                try verified.wait()
            }
        }
        let manifestBytes = Array(artifact.manifestText.utf8)
        try body("vessel.yaml") { sink in try manifestBytes.withUnsafeBytes { try sink($0) } }
    }

    /// A file to be read where it lies in its blob: `size` bytes at `offset` of `blobPath` (all of
    /// a raw layer's blob, or the one entry of a single-file tar layer).
    public struct InPlaceFile: Sendable {
        public var file: Artifact.PackedFile
        public var blobPath: String
        public var offset: Int64
        public var size: Int64
    }

    /// The files `pick` selects (given each file and its checked path) whose layer holds just
    /// that one file, located in their blobs by reading the tar headers only: to be read where
    /// they lie, and unpacked by
    /// ``unpack(_:into:except:)`` with everything else. Their blobs are not checked here; the
    /// caller must check them (``Store/verifyBlob(_:context:progress:)``) before trusting what it
    /// read. A picked file whose layer holds more than that file, or whose blob is missing or not
    /// the size its descriptor says, is left out (unpacked, and checked, as usual).
    public func inPlaceFiles(_ artifact: Artifact, picking pick: (_ file: Artifact.PackedFile, _ path: String) -> Bool) -> [String: InPlaceFile] {
        var found: [String: InPlaceFile] = [:]
        for file in artifact.files {
            guard let base = try? Self.checked(file.path), pick(file, base), let located = singleFile(file, base: base) else { continue }
            found[base] = located
        }
        return found
    }

    /// Unpacks as ``unpack(_:into:)`` does, except the files in `inPlace` (by their checked
    /// paths), which are not written at all.
    @discardableResult
    public func unpack(_ artifact: Artifact, into directory: String, except inPlace: [String: InPlaceFile]) throws -> [String] {
        try unpack(artifact, into: directory, leave: { inPlace[$0] != nil })
    }

    /// Unpacks only the layers whose checked path `pick` selects, and vessel.yaml.
    @discardableResult
    public func unpack(_ artifact: Artifact, into directory: String, only pick: (String) -> Bool) throws -> [String] {
        try unpack(artifact, into: directory, leave: { !pick($0) })
    }

    /// `leave`: the checked paths of files not to write.
    private func unpack(_ artifact: Artifact, into directory: String, leave: (String) -> Bool) throws -> [String] {
        try FileSystem.makeDirectories(directory)
        var written: [String] = []
        for file in artifact.files {
            let base = try Self.checked(file.path)
            if leave(base) { continue }
            switch file.packing {
            case .raw:
                try writeFile(relative: base, in: directory, mode: file.executable ? 0o755 : 0o644) { sink in
                    try store.readBlobVerifying(file.descriptor, context: file.path) { try sink($0) }
                }
                written.append(base)
            case .tar:
                written += try extractTar(file, base: base, into: directory)
            }
        }
        let manifestBytes = Array(artifact.manifestText.utf8)
        try writeFile(relative: "vessel.yaml", in: directory, mode: 0o644) { sink in
            try manifestBytes.withUnsafeBytes { try sink($0) }
        }
        written.append("vessel.yaml")
        return written
    }

    /// Where a layer's one file lies in its blob, found by reading the tar header only; nil when
    /// the layer holds anything else, or its blob is missing or not the size its descriptor says.
    private func singleFile(_ file: Artifact.PackedFile, base: String) -> InPlaceFile? {
        let blob = store.blobPath(file.descriptor.digest)
        guard let size = try? FileSystem.size(of: blob), size == file.descriptor.size else { return nil }
        switch file.packing {
        case .raw:
            return InPlaceFile(file: file, blobPath: blob, offset: 0, size: size)
        case .tar:
            guard let fd = try? FileSystem.openForReading(blob) else { return nil }
            defer { close(fd) }
            let reader = TarReader(fd: fd, path: file.path)
            guard let entry = try? reader.next(), entry.kind == .file, (try? Self.checked(entry.path)) == base else { return nil }
            let offset = reader.contentOffset
            guard offset >= 0, offset + entry.size <= size else { return nil }
            do {
                try reader.seekPastContent()
                guard try reader.next() == nil else { return nil }
            } catch {
                return nil
            }
            return InPlaceFile(file: file, blobPath: blob, offset: offset, size: entry.size)
        }
    }

    public static func checked(_ path: String) throws -> String {
        switch SafePath.normalize(path) {
        case .success(let value): return value
        case .failure(let problem): throw UnpackError.unsafePath(path, reason: problem.description)
        }
    }

    /// Creates the parent directories of `relative`, refusing to pass through a symlink.
    private func prepareParents(of relative: String, in directory: String) throws {
        var current = directory
        for component in relative.split(separator: "/").dropLast() {
            current += "/" + component
            var info = stat()
            if lstat(current, &info) == 0 {
                if info.st_mode & S_IFMT == S_IFLNK { throw UnpackError.throughSymlink(relative) }
                if info.st_mode & S_IFMT != S_IFDIR { throw UnpackError.exists(current) }
            } else if mkdir(current, 0o755) != 0, errno != EEXIST {
                throw StoreError.io(operation: "cannot create directory", path: current, errno: errno)
            }
        }
    }

    /// Whether `target` may be (re)placed. An existing symlink there is replaced as a link by the
    /// rename, never followed, so with `overwrite` it is as safe to replace as a file.
    private func checkTarget(_ target: String, relative: String) throws {
        var info = stat()
        guard lstat(target, &info) == 0 else { return }
        if !overwrite || info.st_mode & S_IFMT == S_IFDIR { throw UnpackError.exists(target) }
    }

    private func writeFile(
        relative: String, in directory: String, mode: mode_t,
        _ produce: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void
    ) throws {
        try prepareParents(of: relative, in: directory)
        let target = directory + "/" + relative
        try checkTarget(target, relative: relative)
        let temporary = FileSystem.dirname(target) + "/.vessel-unpack-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = try FileSystem.open(temporary, O_WRONLY | O_CREAT | O_EXCL, mode: mode)
        do {
            try produce { try FileSystem.writeAll(fd, $0, path: temporary) }
            try FileSystem.check(fchmod(fd, mode), "cannot chmod", temporary)
            if durable { try FileSystem.check(fsync(fd), "cannot fsync", temporary) }
            close(fd)
            try FileSystem.check(rename(temporary, target), "cannot rename into", target)
        } catch {
            close(fd)
            unlink(temporary)
            throw error
        }
    }

    private func extractTar(_ file: Artifact.PackedFile, base: String, into directory: String) throws -> [String] {
        // Verify the whole layer first: a tar is extracted entry by entry, and a corrupt one must
        // not leave half its files behind.
        try store.verifyBlob(file.descriptor, context: file.path)
        var written: [String] = []
        try forEachEntry(of: file, base: base) { entry, relative, reader in
            switch entry.kind {
            case .directory:
                try prepareParents(of: relative + "/x", in: directory)
            case .file:
                try writeFile(relative: relative, in: directory, mode: entry.mode & 0o111 != 0 ? 0o755 : 0o644) { sink in
                    try reader.readContent { try sink($0) }
                }
                written.append(relative)
            case .symlink(let target):
                guard SafePath.symlinkStaysInside(linkPath: relative, target: target) else {
                    throw UnpackError.unsafePath(entry.path, reason: "is a symlink to `\(target)`, outside the directory")
                }
                try prepareParents(of: relative, in: directory)
                let path = directory + "/" + relative
                try checkTarget(path, relative: relative)
                if overwrite { unlink(path) }
                try FileSystem.check(symlink(target, path), "cannot create symlink", path)
                written.append(relative)
            case .hardlink:
                throw UnpackError.unsafePath(entry.path, reason: "is a hard link, which Vessel does not unpack")
            case .other:
                throw UnpackError.unsafePath(entry.path, reason: "is a device or other special file")
            }
        }
        return written
    }

    /// Each entry of a tar layer with its checked path, which must lie inside `base` (the file or
    /// directory the layer holds), and the reader positioned at its content. The layer's digest
    /// is the caller's to check.
    private func forEachEntry(
        of file: Artifact.PackedFile, base: String,
        _ body: (TarReader.Entry, String, TarReader) throws -> Void
    ) throws {
        let fd = try FileSystem.openForReading(store.blobPath(file.descriptor.digest))
        defer { close(fd) }
        let reader = TarReader(fd: fd, path: file.path)
        while let entry = try reader.next() {
            let relative = try Self.checked(entry.path)
            guard relative == base || relative.hasPrefix(base + "/") else {
                throw UnpackError.unsafePath(entry.path, reason: "lies outside `\(base)`, the directory its layer holds")
            }
            try body(entry, relative, reader)
        }
    }
}

/// A blob's digest checked on a thread of its own; ``wait()`` gives its verdict.
private final class BlobCheck: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var failure: (any Error)?

    init(store: Store, blob: Descriptor, context: String) {
        // Hashing gigabytes takes seconds: not on the threads a server's tasks need.
        DetachedThread.start { [self] in
            do { try store.verifyBlob(blob, context: context) } catch { failure = error }
            done.signal()
        }
    }

    func wait() throws {
        done.wait()
        if let failure { throw failure }
    }
}
