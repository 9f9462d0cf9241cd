#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Whole lines to standard output or error with write(2): never interleaved between threads,
/// never held in a stdio buffer (a log collector reading a pipe sees each line at once).
public enum StandardStreams {
    private static let lock = Mutex(())

    public static func output(_ text: String) { write(text, to: 1) }

    public static func error(_ text: String) { write(text, to: 2) }

    private static func write(_ text: String, to fd: Int32) {
        var bytes = Array(text.utf8)
        if bytes.last != UInt8(ascii: "\n") { bytes.append(UInt8(ascii: "\n")) }
        lock.withLock { _ in
            bytes.withUnsafeBytes { buffer in
                var offset = 0
                while offset < buffer.count {
                    let written = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                    if written < 0 {
                        if errno == EINTR { continue }
                        return  // a closed stream: the line is lost, the server goes on
                    }
                    offset += written
                }
            }
        }
    }
}
