#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif
import Crypto
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A content-addressed store: an OCI image layout on disk (`oci-layout`, `index.json`,
/// `blobs/sha256/…`) that `skopeo`, `umoci` and `oras` read as it is.
///
/// The store knows OCI, not models: blobs, manifests and tags. Every write is crash-safe (temp
/// file, fsync, rename), every read of a blob is checked against its digest, and concurrent
/// vessel processes coordinate through advisory locks: writers share `.lock`, `gc` takes it
/// alone; index updates are serialized on `.index.lock`.
///
/// See https://github.com/opencontainers/image-spec/blob/main/image-layout.md
public final class Store: Sendable {
    public let root: String
    let blobsDirectory: String
    let temporaryDirectory: String
    var indexPath: String { FileSystem.join(root, "index.json") }

    public static let layoutVersion = "1.0.0"

    /// `$VESSEL_HOME`, or `~/.vessel`.
    public static var defaultRoot: String {
        let environment = ProcessInfo.processInfo.environment
        if let home = environment["VESSEL_HOME"], !home.isEmpty { return home }
        return FileSystem.join(environment["HOME"] ?? FileManager.default.homeDirectoryForCurrentUser.path, ".vessel")
    }

    /// Opens the store at `root`, creating an empty layout there if there is none.
    public init(root: String = Store.defaultRoot) throws {
        self.root = root.count > 1 && root.hasSuffix("/") ? String(root.dropLast()) : root
        blobsDirectory = FileSystem.join(FileSystem.join(self.root, "blobs"), "sha256")
        temporaryDirectory = FileSystem.join(self.root, "tmp")
        try FileSystem.makeDirectories(blobsDirectory)
        try FileSystem.makeDirectories(temporaryDirectory)
        let markerPath = FileSystem.join(self.root, "oci-layout")
        if FileSystem.exists(markerPath) {
            let marker = try CanonicalJSON.decode(OCILayoutMarker.self, from: Data(FileSystem.readFile(markerPath)), path: markerPath)
            guard marker.imageLayoutVersion.hasPrefix("1.") else {
                throw StoreError.unsupportedLayout(path: self.root, version: marker.imageLayoutVersion)
            }
        } else {
            try FileSystem.writeAtomically(Array(CanonicalJSON.encode(OCILayoutMarker(imageLayoutVersion: Self.layoutVersion))), to: markerPath)
        }
        if !FileSystem.exists(indexPath) {
            try FileSystem.writeAtomically(Array(CanonicalJSON.encode(ImageIndex(manifests: []))), to: indexPath)
        }
    }

    // MARK: Blobs

    public func blobPath(_ digest: Digest) -> String {
        FileSystem.join(blobsDirectory, digest.hex)
    }

    public func hasBlob(_ digest: Digest) -> Bool {
        FileSystem.exists(blobPath(digest))
    }

    /// Starts writing a blob whose digest is known only at the end.
    public func beginIngest() throws -> BlobIngest {
        try BlobIngest(store: self)
    }

    /// Stores small in-memory content (JSON documents) and returns its descriptor.
    public func ingest(_ bytes: [UInt8], mediaType: String, annotations: [String: String]? = nil) throws -> Descriptor {
        let ingest = try beginIngest()
        try ingest.append(bytes)
        let (digest, size) = try ingest.commit()
        return Descriptor(mediaType: mediaType, digest: digest, size: size, annotations: annotations)
    }

    /// Stores a file of any size, streaming it with flat memory.
    ///
    /// When the store already holds a blob of exactly this size, the file is hashed first and,
    /// if the blob is there, not written at all; otherwise hashing and writing share one pass.
    public func ingest(file path: String, progress: ProgressBar = .silent()) throws -> (digest: Digest, size: Int64) {
        let source = try FileSystem.open(path, O_RDONLY)
        defer { close(source) }
        _ = posix_fadvise(source, 0, 0, Int32(POSIX_FADV_SEQUENTIAL))
        var info = stat()
        try FileSystem.check(fstat(source, &info), "cannot stat", path)
        let size = Int64(info.st_size)
        if size > 0, blobSizes().contains(size) {
            let digest = try hash(fd: source, path: path, progress: ProgressBar.silent())
            if hasBlob(digest) {
                progress.advance(by: Int(size))
                return (digest, size)
            }
            if lseek(source, 0, SEEK_SET) < 0 { throw StoreError.io(operation: "cannot seek", path: path, errno: errno) }
        }
        let ingest = try beginIngest()
        do {
            try ingest.appendFile(source, path: path, progress: progress)
            return try ingest.commit()
        } catch {
            ingest.abort()
            throw error
        }
    }

    /// Sizes of the blobs present, to decide when hashing before writing can save a write.
    private func blobSizes() -> Set<Int64> {
        Set(FileSystem.listDirectory(blobsDirectory).compactMap { try? FileSystem.size(of: FileSystem.join(blobsDirectory, $0)) })
    }

    func hash(fd: Int32, path: String, progress: ProgressBar) throws -> Digest {
        var hasher = SHA256()
        try FileSystem.forEachChunk(fd, path: path) { chunk in
            hasher.update(bufferPointer: chunk)
            progress.advance(by: chunk.count)
        }
        return Digest(bytes: hasher.finalize())
    }

    /// Reads a small blob (a manifest or config) whole, after checking its digest and size.
    public func readBlob(_ descriptor: Descriptor, limit: Int64 = 16 << 20, context: String) throws -> Data {
        guard descriptor.size <= limit else { throw StoreError.tooLarge(descriptor.digest, limit: limit) }
        let path = blobPath(descriptor.digest)
        guard FileSystem.exists(path) else { throw StoreError.blobMissing(descriptor.digest, context: context) }
        let bytes = try FileSystem.readFile(path, limit: limit)
        let actual = Digest(bytes: SHA256.hash(data: bytes))
        guard actual == descriptor.digest else {
            throw StoreError.digestMismatch(expected: descriptor.digest, actual: actual, context: context)
        }
        guard Int64(bytes.count) == descriptor.size else {
            throw StoreError.sizeMismatch(descriptor.digest, expected: descriptor.size, actual: Int64(bytes.count))
        }
        return Data(bytes)
    }

    /// Re-hashes a blob of any size and checks it against its descriptor.
    public func verifyBlob(_ descriptor: Descriptor, context: String, progress: ProgressBar = .silent()) throws {
        let path = blobPath(descriptor.digest)
        guard FileSystem.exists(path) else { throw StoreError.blobMissing(descriptor.digest, context: context) }
        let fd = try FileSystem.open(path, O_RDONLY)
        defer { close(fd) }
        _ = posix_fadvise(fd, 0, 0, Int32(POSIX_FADV_SEQUENTIAL))
        let actual = try hash(fd: fd, path: path, progress: progress)
        guard actual == descriptor.digest else {
            throw StoreError.digestMismatch(expected: descriptor.digest, actual: actual, context: context)
        }
        let size = try FileSystem.size(of: path)
        guard size == descriptor.size else {
            throw StoreError.sizeMismatch(descriptor.digest, expected: descriptor.size, actual: size)
        }
    }

    /// Streams a blob's content to `body` in chunks while hashing it; throws after the last chunk
    /// if the content does not match. Callers write to a temporary place and keep it only when
    /// this returns, so corrupt content is never used.
    public func readBlobVerifying(_ descriptor: Descriptor, context: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let path = blobPath(descriptor.digest)
        guard FileSystem.exists(path) else { throw StoreError.blobMissing(descriptor.digest, context: context) }
        let fd = try FileSystem.open(path, O_RDONLY)
        defer { close(fd) }
        var hasher = SHA256()
        var total: Int64 = 0
        try FileSystem.forEachChunk(fd, path: path) { chunk in
            hasher.update(bufferPointer: chunk)
            try body(chunk)
            total += Int64(chunk.count)
        }
        let actual = Digest(bytes: hasher.finalize())
        guard actual == descriptor.digest else {
            throw StoreError.digestMismatch(expected: descriptor.digest, actual: actual, context: context)
        }
        guard total == descriptor.size else {
            throw StoreError.sizeMismatch(descriptor.digest, expected: descriptor.size, actual: total)
        }
    }

    // MARK: Locks

    /// Holds the shared writer lock for the duration of `body`: `gc` waits until no writer is
    /// between storing blobs and tagging the manifest that references them.
    ///
    /// Every writer first reclaims the temporaries of writers that died (a `kill -9` mid-pack
    /// left its partial blob behind, and without this they piled up until `vessel gc`).
    public func withWriterLock<T>(_ body: () throws -> T) throws -> T {
        let lock = try beginWriting()
        defer { withExtendedLifetime(lock) {} }
        return try body()
    }

    /// The same, around async work (`vessel pull`: from its first blob to its tag). Taking
    /// the lock waits only while a `gc` holds it exclusively.
    public func withWriterLock<T>(_ body: () async throws -> T) async throws -> T {
        let lock = try beginWriting()
        defer { withExtendedLifetime(lock) {} }
        return try await body()
    }

    /// The shared writer lock, held until the result is released, with dead writers'
    /// temporaries reclaimed.
    private func beginWriting() throws -> FileLock {
        let lock = try FileLock(path: FileSystem.join(root, ".lock"), exclusive: false)
        _ = reclaimAbandonedTemporaries()
        return lock
    }

    /// Removes temporaries (`tmp/blob-*`, `tmp/.tmp-*`) whose writer is gone: a live writer
    /// holds an exclusive `flock` on its temporary from the moment it creates it until it is
    /// renamed into place, so a temporary that can be locked, and has not changed for
    /// `age`, was left by a process that died. Resumable downloads (`partial-*`) and upload
    /// state are kept for the next pull or push. Returns the files and bytes removed.
    @discardableResult
    public func reclaimAbandonedTemporaries(age: Duration = .seconds(60)) -> (files: Int, bytes: Int64) {
        var files = 0, bytes: Int64 = 0
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        for name in FileSystem.listDirectory(temporaryDirectory) where name.hasPrefix("blob-") || name.hasPrefix(".tmp-") {
            let path = FileSystem.join(temporaryDirectory, name)
            let fd = Glibc.open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW)
            guard fd >= 0 else { continue }
            defer { close(fd) }
            var info = stat()
            guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG,
                Int64(now.tv_sec - info.st_mtim.tv_sec) >= age.components.seconds,
                flock(fd, LOCK_EX | LOCK_NB) == 0
            else { continue }
            if unlink(path) == 0 {
                files += 1
                bytes += Int64(info.st_size)
            }
        }
        return (files, bytes)
    }

    func withExclusiveLock<T>(_ body: () throws -> T) throws -> T {
        let lock = try FileLock(path: FileSystem.join(root, ".lock"), exclusive: true)
        defer { withExtendedLifetime(lock) {} }
        return try body()
    }
}

extension Store {
    /// Where interrupted downloads wait to be resumed: `tmp/partial-<hex>` (gc removes them).
    public func partialPath(for digest: Digest) -> String {
        FileSystem.join(temporaryDirectory, "partial-\(digest.hex)")
    }

    /// Moves a fully written file into the blobs as `digest`. The caller hashed every byte of
    /// it while writing and checked the digest and size against the descriptor; the file is
    /// synced before the rename, so a crash never leaves a torn blob.
    public func adoptVerifiedFile(_ path: String, as digest: Digest) throws {
        let destination = blobPath(digest)
        if FileSystem.exists(destination) {
            unlink(path)
            return
        }
        let fd = try FileSystem.open(path, O_RDONLY)
        defer { close(fd) }
        try FileSystem.check(fsync(fd), "cannot fsync", path)
        try FileSystem.check(rename(path, destination), "cannot rename into", destination)
        FileSystem.syncDirectory(blobsDirectory)
    }
}
