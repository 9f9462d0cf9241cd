#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Synchronization

/// Time spent per operator type, collected when `VESSEL_PROFILE=1` (off otherwise: one branch
/// per node). `vessel bench` prints it.
public enum Profiler {
    static let enabled = ProcessInfo.processInfo.environment["VESSEL_PROFILE"] == "1"
    private static let totals = Mutex<[String: (seconds: Double, calls: Int)]>([:])

    static func record(_ opType: String, seconds: Double) {
        totals.withLock { totals in
            let current = totals[opType] ?? (0, 0)
            totals[opType] = (current.seconds + seconds, current.calls + 1)
        }
    }

    /// Operator types by total time: (op, milliseconds, calls).
    public static func report() -> [(op: String, milliseconds: Double, calls: Int)] {
        totals.withLock { totals in totals.map { ($0.key, $0.value.seconds * 1000, $0.value.calls) }.sorted { $0.1 > $1.1 } }
    }

    public static var isEnabled: Bool { enabled }
}
