#if canImport(Glibc)
public import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import VesselSystem

/// Thin, throwing wrappers over the POSIX calls the store needs. The store writes through file
/// descriptors so that it controls fsync, and so that nothing large passes through Foundation.
public enum FileSystem {
    public static func check(_ result: Int32, _ operation: String, _ path: String) throws {
        if result < 0 { throw StoreError.io(operation: operation, path: path, errno: errno) }
    }

    public static func open(_ path: String, _ flags: Int32, mode: mode_t = 0o644) throws -> Int32 {
        let fd = Glibc.open(path, flags | O_CLOEXEC, mode)
        if fd < 0 { throw StoreError.io(operation: "cannot open", path: path, errno: errno) }
        return fd
    }

    public static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    public static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    public static func size(of path: String) throws -> Int64 {
        var info = stat()
        try check(stat(path, &info), "cannot stat", path)
        return Int64(info.st_size)
    }

    public static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws {
        if isDirectory(path) { return }
        let parent = dirname(path)
        if parent != path, !parent.isEmpty { try makeDirectories(parent, mode: mode) }
        if mkdir(path, mode) != 0, errno != EEXIST { throw StoreError.io(operation: "cannot create directory", path: path, errno: errno) }
    }

    /// Writes all of `buffer`, retrying short writes and EINTR.
    public static func writeAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, path: String) throws {
        var offset = 0
        while offset < buffer.count {
            let written = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw StoreError.io(operation: "cannot write", path: path, errno: errno)
            }
            offset += written
        }
    }

    /// Fills as much of `buffer` as the file has left; returns the count (0 at end of file).
    public static func readFull(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer, path: String) throws -> Int {
        var offset = 0
        while offset < buffer.count {
            let count = read(fd, buffer.baseAddress! + offset, buffer.count - offset)
            if count < 0 {
                if errno == EINTR { continue }
                throw StoreError.io(operation: "cannot read", path: path, errno: errno)
            }
            if count == 0 { break }
            offset += count
        }
        return offset
    }

    /// Opens a file for reading only if it is a regular file (``RegularFile``): a FIFO named
    /// where a file is expected fails at once instead of blocking.
    public static func openRegularFile(_ path: String) throws -> Int32 {
        do {
            return try RegularFile.open(path).fd
        } catch {
            if let kind = error.kind { throw StoreError.notRegularFile(path: path, kind: kind) }
            throw StoreError.io(operation: error.operation, path: path, errno: error.errno ?? 0)
        }
    }

    /// Whether `path` is a regular file (following symlinks), and if not what it is.
    public static func regularFileProblem(_ path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else { return "does not exist or cannot be read" }
        return (info.st_mode & S_IFMT) == S_IFREG ? nil : "is \(RegularFile.kind(UInt32(info.st_mode))), not a regular file"
    }

    public static func readFile(_ path: String, limit: Int64 = 64 << 20) throws -> [UInt8] {
        let fd = try openRegularFile(path)
        defer { close(fd) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = try chunk.withUnsafeMutableBytes { buffer throws in try readFull(fd, buffer, path: path) }
            if count == 0 { break }
            result.append(contentsOf: chunk[..<count])
            if Int64(result.count) > limit { throw StoreError.corrupt(path: path, reason: "larger than \(limit) bytes") }
        }
        return result
    }

    /// Replaces `path` with `bytes` atomically and durably: temp file, fsync, rename, fsync dir.
    /// `mode` is the file's from its first byte (0600 for credentials).
    public static func writeAtomically(_ bytes: [UInt8], to path: String, temporaryDirectory: String? = nil, mode: mode_t = 0o644) throws {
        let directory = temporaryDirectory ?? dirname(path)
        let temporary = "\(directory)/.tmp-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        let fd = try open(temporary, O_WRONLY | O_CREAT | O_EXCL, mode: mode)
        flock(fd, LOCK_EX)  // marks it live (see Store.reclaimAbandonedTemporaries)
        do {
            try bytes.withUnsafeBytes { buffer throws in try writeAll(fd, buffer, path: temporary) }
            try check(fsync(fd), "cannot fsync", temporary)
            close(fd)
            try check(rename(temporary, path), "cannot rename into", path)
            syncDirectory(dirname(path))
        } catch {
            close(fd)
            unlink(temporary)
            throw error
        }
    }

    public static func syncDirectory(_ path: String) {
        let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
    }

    public static func listDirectory(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != ".", name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    public static func dirname(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// The last path component (`/a/b` → `b`).
    public static func basename(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    public static func join(_ base: String, _ component: String) -> String {
        base.hasSuffix("/") ? base + component : base + "/" + component
    }
}

/// An advisory lock on a file, held until released or the process dies, so concurrent vessel
/// processes never interleave index updates or collect blobs another process is writing.
final class FileLock {
    private let fd: Int32

    init(path: String, exclusive: Bool) throws {
        fd = try FileSystem.open(path, O_RDWR | O_CREAT, mode: 0o644)
        while flock(fd, exclusive ? LOCK_EX : LOCK_SH) != 0 {
            if errno != EINTR {
                let code = errno
                close(fd)
                throw StoreError.io(operation: "cannot lock", path: path, errno: code)
            }
        }
    }

    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }
}

extension FileSystem {
    /// Opens a file to stream it.
    public static func openForReading(_ path: String) throws -> Int32 {
        try openRegularFile(path)
    }

    /// Hands a file's content to `body` in 1 MiB chunks.
    public static func forEachChunk(_ fd: Int32, path: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        defer { buffer.deallocate() }
        while true {
            let count = try readFull(fd, buffer, path: path)
            if count == 0 { return }
            try body(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
        }
    }
}
