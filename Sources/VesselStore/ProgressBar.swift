#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Byte progress for long work (hashing, copying), drawn on one line of standard error when it
/// is a terminal and silent otherwise, so piped and CI output stays clean.
public final class ProgressBar: @unchecked Sendable {
    private let label: String
    private let total: Int64
    private let enabled: Bool
    private let start: Double
    private var done: Int64 = 0
    private var lastDraw: Double = 0
    private let lock = Mutex(())

    /// - Parameter enabled: defaults to whether standard error is a terminal.
    public init(label: String, total: Int64, enabled: Bool = ProgressBar.standardErrorIsTerminal) {
        self.label = label
        self.total = total
        self.enabled = enabled
        self.start = Self.now()
    }

    public static var standardErrorIsTerminal: Bool { isatty(STDERR_FILENO) == 1 }

    /// A progress that never draws, for library callers that want none.
    public static func silent() -> ProgressBar { ProgressBar(label: "", total: 0, enabled: false) }

    public func advance(by count: Int) {
        guard enabled else { return }
        lock.withLock { _ in
            done += Int64(count)
            let now = Self.now()
            if now - lastDraw >= 0.1 {
                lastDraw = now
                draw(now: now, final: false)
            }
        }
    }

    public func finish() {
        guard enabled else { return }
        lock.withLock { _ in draw(now: Self.now(), final: true) }
    }

    private func draw(now: Double, final: Bool) {
        let elapsed = max(now - start, 1e-6)
        let rate = Double(done) / elapsed
        var line = "\r\u{1B}[2K\(label)  \(Self.bytes(done))"
        if total > 0 { line += " / \(Self.bytes(total))" }
        line += "  \(Self.bytes(Int64(rate)))/s"
        if !final, total > 0, rate > 0 {
            line += "  ETA \(Int((Double(total - done) / rate).rounded(.up)))s"
        }
        if final { line += "  done in \(String(format1: elapsed))s\n" }
        let bytes = Array(line.utf8)
        bytes.withUnsafeBytes { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }

    static func now() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }

    /// `1.5 GiB`, `12.0 MiB`, `512 B`.
    public static func bytes(_ count: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(count)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(count) B" : "\(String(format1: value)) \(units[unit])"
    }
}

extension String {
    /// One decimal place without Foundation's formatter.
    init(format1 value: Double) {
        let scaled = (value * 10).rounded()
        self = "\(Int64(scaled) / 10).\(abs(Int64(scaled) % 10))"
    }
}
