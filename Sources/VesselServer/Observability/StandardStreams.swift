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

/// Fixed-point text with `digits` decimals (`String(format: "%.3f")` without Foundation).
func fixed(_ value: Double, digits: Int = 3) -> String {
    guard value.isFinite else { return value.isNaN ? "nan" : value > 0 ? "inf" : "-inf" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let scaled = (Swift.abs(value) * scale).rounded()
    guard scaled < 9e18 else { return String(value) }
    let units = UInt64(scaled)
    let whole = units / UInt64(scale), fraction = String(units % UInt64(scale))
    let sign = value < 0 && units > 0 ? "-" : ""
    return digits == 0 ? "\(sign)\(whole)" : "\(sign)\(whole)." + String(repeating: "0", count: digits - fraction.count) + fraction
}

extension StringProtocol {
    /// Without leading and trailing white space (`trimmingCharacters(in: .whitespacesAndNewlines)`
    /// without Foundation).
    package var trimmingWhitespace: String {
        let scalars = String(self).unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
              let last = scalars.lastIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        return String(String.UnicodeScalarView(scalars[first...last]))
    }
}
