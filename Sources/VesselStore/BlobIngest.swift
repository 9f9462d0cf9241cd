import Crypto
import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Writes one blob into the store: bytes go to a temporary file while being hashed, then the
/// file is fsynced and renamed to its digest. Until ``commit(expecting:)`` nothing is visible in
/// `blobs/`; a crash at any moment leaves at most a file under `tmp/`, which `gc` removes.
///
/// Hashing and writing run on two cores at once: SHA-256 with SHA-NI is about twice as fast as
/// the disk takes writes, so overlapping them makes storing a blob cost what copying it costs.
public final class BlobIngest: @unchecked Sendable {
    let store: Store
    let temporaryPath: String
    private var fd: Int32
    private var hasher = SHA256()
    public private(set) var size: Int64 = 0
    private var flushedUpTo: Int64 = 0
    private var finished = false

    /// Chunks larger than this are hashed and written on two threads.
    static let parallelThreshold = 256 << 10
    /// Dirty pages are handed to writeback every this many bytes, so the final fsync is short
    /// and a multi-GiB blob never piles up in the page cache.
    static let writebackInterval: Int64 = 32 << 20

    init(store: Store) throws {
        self.store = store
        temporaryPath = FileSystem.join(store.temporaryDirectory, "blob-\(getpid())-\(UInt64.random(in: 0...UInt64.max))")
        fd = try FileSystem.open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL, mode: 0o644)
        // Held until the file is closed: a temporary nobody holds belongs to a writer that died
        // (`Store.reclaimAbandonedTemporaries`).
        flock(fd, LOCK_EX)
    }

    deinit {
        if !finished { abort() }
    }

    public func append(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try append($0) }
    }

    public func append(_ buffer: UnsafeRawBufferPointer) throws {
        guard !buffer.isEmpty else { return }
        if buffer.count < Self.parallelThreshold {
            hasher.update(bufferPointer: buffer)
            try write(buffer)
            return
        }
        try bothAtOnce({ hasher.update(bufferPointer: buffer) }, { try write(buffer) })
    }

    /// Like ``append(_:)``, and also feeds `content` the same bytes: the digest of a file's bytes
    /// apart from the tar framing around them (provenance and SBOMs name files by it). The second
    /// hash goes on whichever of the two threads had less to do on the previous chunk — the
    /// writing thread when the disk is fast, the hashing thread when writes are slow — so it
    /// costs what the slack of the busier side cannot hide, not a pass of its own.
    public func append(_ buffer: UnsafeRawBufferPointer, alsoHashing content: inout ContentDigest) throws {
        guard !buffer.isEmpty else { return }
        if buffer.count < Self.parallelThreshold {
            hasher.update(bufferPointer: buffer)
            content.hasher.update(bufferPointer: buffer)
            try write(buffer)
            return
        }
        let clock = ContinuousClock()
        let onWriter = content.writeWasFaster
        var hashTime = Duration.zero, writeTime = Duration.zero
        try withUnsafeMutablePointer(to: &content.hasher) { contentHasher in
            try bothAtOnce(
                {
                    let start = clock.now
                    hasher.update(bufferPointer: buffer)
                    hashTime = clock.now - start
                    if !onWriter { contentHasher.pointee.update(bufferPointer: buffer) }
                },
                {
                    let start = clock.now
                    try write(buffer)
                    writeTime = clock.now - start
                    if onWriter { contentHasher.pointee.update(bufferPointer: buffer) }
                })
        }
        content.writeWasFaster = writeTime < hashTime
    }

    /// Copies the rest of an open file into the blob, reading the next chunk while the current
    /// one is hashed and written, with two fixed buffers: memory stays flat for any file size.
    func appendFile(_ source: Int32, path: String, progress: ProgressBar) throws {
        let chunk = 4 << 20
        let buffers = [
            UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 4096),
            UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 4096)
        ]
        defer { buffers.forEach { $0.deallocate() } }
        var current = 0
        var count = try FileSystem.readFull(source, buffers[0], path: path)
        while count > 0 {
            let filled = UnsafeRawBufferPointer(rebasing: buffers[current][..<count])
            let next = buffers[1 - current]
            var nextCount = 0
            try bothAtOnce(
                { hasher.update(bufferPointer: filled) },
                {
                    try write(filled)
                    nextCount = try FileSystem.readFull(source, next, path: path)
                })
            progress.advance(by: count)
            count = nextCount
            current = 1 - current
        }
    }

    private func write(_ buffer: UnsafeRawBufferPointer) throws {
        try FileSystem.writeAll(fd, buffer, path: temporaryPath)
        size += Int64(buffer.count)
        if size - flushedUpTo >= Self.writebackInterval {
            // Start writeback of what was written so far without waiting for it.
            Writeback.start(fd, offset: flushedUpTo, length: size - flushedUpTo)
            flushedUpTo = size
        }
    }

    /// Makes the blob durable and visible under its digest. If the store already has it, the new
    /// copy is dropped: a blob is stored once however often it is added.
    ///
    /// - Parameter expected: the digest the content must have (from an archive or registry); a
    ///   mismatch throws and nothing is stored.
    @discardableResult
    public func commit(expecting expected: Digest? = nil) throws -> (digest: Digest, size: Int64) {
        precondition(!finished, "blob committed twice")
        finished = true
        let digest = Digest(bytes: hasher.finalize())
        defer {
            if fd >= 0 { close(fd) }
            fd = -1
        }
        if let expected, expected != digest {
            unlink(temporaryPath)
            throw StoreError.digestMismatch(expected: expected, actual: digest, context: "received content")
        }
        let destination = store.blobPath(digest)
        if FileSystem.exists(destination) {
            unlink(temporaryPath)
            return (digest, size)
        }
        do {
            try FileSystem.check(fsync(fd), "cannot fsync", temporaryPath)
            try FileSystem.check(rename(temporaryPath, destination), "cannot rename into", destination)
        } catch {
            unlink(temporaryPath)
            throw error
        }
        FileSystem.syncDirectory(store.blobsDirectory)
        return (digest, size)
    }

    /// Drops the temporary file; nothing reaches the store.
    public func abort() {
        finished = true
        if fd >= 0 { close(fd) }
        fd = -1
        unlink(temporaryPath)
    }
}

/// Runs two closures at once on two threads and returns when both have finished.
///
/// The closures must touch disjoint state; the join before returning makes their effects
/// visible to the caller. The first error thrown by `second` is rethrown.
func bothAtOnce(_ first: () -> Void, _ second: () throws -> Void) throws {
    try withoutActuallyEscaping(first) { first in
        try withoutActuallyEscaping(second) { second in
            let lanes = UncheckedBox((first, second))
            let failure = UncheckedBox(ErrorSlot())
            DispatchQueue.concurrentPerform(iterations: 2) { lane in
                if lane == 0 {
                    lanes.value.0()
                } else {
                    do { try lanes.value.1() } catch { failure.value.error = error }
                }
            }
            if let error = failure.value.error { throw error }
        }
    }
}

final class ErrorSlot {
    var error: (any Error)?
}

struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// Linux `sync_file_range(…, SYNC_FILE_RANGE_WRITE)`: starts writeback of a range without waiting.
///
/// Swift's Glibc module does not export it (it needs `_GNU_SOURCE`), so it is looked up once at
/// run time; where it does not exist this is a no-op and the final fsync does all the work.
enum Writeback {
    private typealias Function = @convention(c) (Int32, Int64, Int64, UInt32) -> Int32
    private static let function: Function? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "sync_file_range") else { return nil }
        return unsafeBitCast(symbol, to: Function.self)
    }()

    static func start(_ fd: Int32, offset: Int64, length: Int64) {
        _ = function?(fd, offset, length, 2 /* SYNC_FILE_RANGE_WRITE */)
    }
}

/// The SHA-256 of a file's bytes inside a layer, fed by ``BlobIngest/append(_:alsoHashing:)``,
/// without the caller naming the hash library.
public struct ContentDigest {
    var hasher = SHA256()
    /// Whether the last chunk's write took less time than its hash (where the next chunk's
    /// content hash goes).
    var writeWasFaster = true

    public init() {}

    public func finalize() -> Digest { Digest(bytes: hasher.finalize()) }
}
