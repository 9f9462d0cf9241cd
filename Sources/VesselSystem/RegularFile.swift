#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The one place a file is opened only if it is a regular file: a FIFO, socket or device named
/// where a file is expected would block a reader forever (or never end), and a directory is not
/// content. The store's reads and the runtime's memory-mapped model files both open through it.
public enum RegularFile {
    /// Why a path could not be opened as a regular file.
    public struct Problem: Error, Sendable, CustomStringConvertible {
        public var path: String
        /// "a FIFO", "a directory"… when the path is something other than a regular file.
        public var kind: String?
        /// The failing call's errno, when a call failed.
        public var errno: Int32?
        public var operation: String

        public var description: String {
            if let kind { return "\(path) is \(kind), not a regular file" }
            return "\(operation) \(path): \(String(cString: strerror(errno ?? 0)))"
        }
    }

    /// A read-only descriptor for a regular file, and its size: opened non-blocking, checked
    /// with fstat, then switched back to blocking.
    public static func open(_ path: String) throws(Problem) -> (fd: Int32, size: Int) {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else {
            let error = Glibc.errno
            // A socket cannot be opened at all (ENXIO): name what it is, not the errno.
            var info = stat()
            if stat(path, &info) == 0, (info.st_mode & S_IFMT) != S_IFREG {
                throw Problem(path: path, kind: kind(UInt32(info.st_mode)), errno: nil, operation: "cannot open")
            }
            throw Problem(path: path, kind: nil, errno: error, operation: "cannot open")
        }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let error = Glibc.errno
            close(fd)
            throw Problem(path: path, kind: nil, errno: error, operation: "cannot stat")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw Problem(path: path, kind: kind(UInt32(info.st_mode)), errno: nil, operation: "cannot open")
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        return (fd, Int(info.st_size))
    }

    /// What a non-regular file is, for messages.
    public static func kind(_ mode: UInt32) -> String {
        switch mode_t(mode) & S_IFMT {
        case S_IFDIR: "a directory"
        case S_IFIFO: "a FIFO"
        case S_IFSOCK: "a socket"
        case S_IFCHR: "a character device"
        case S_IFBLK: "a block device"
        case S_IFLNK: "a symbolic link"
        default: "not a regular file"
        }
    }
}
