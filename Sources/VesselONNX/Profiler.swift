#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Synchronization

/// Time spent per operator type, collected when `VESSEL_PROFILE=1`, or per node with
/// `VESSEL_PROFILE=nodes` (off otherwise: one branch per node). `vessel bench` prints it.
public enum Profiler {
    static let setting = ProcessInfo.processInfo.environment["VESSEL_PROFILE"]
    static let enabled = setting == "1" || setting == "nodes"
    /// Whether times are kept per node ("Conv fire2/expand3x3") rather than per operator type.
    public static let perNode = setting == "nodes"
    private static let totals = Mutex<[String: (seconds: Double, calls: Int)]>([:])

    /// One run of a node: `name` is its name, or its position in the graph when it has none.
    static func record(_ opType: String, name: @autoclosure () -> String, seconds: Double) {
        let key = perNode ? "\(opType) \(name())" : opType
        totals.withLock { totals in
            let current = totals[key] ?? (0, 0)
            totals[key] = (current.seconds + seconds, current.calls + 1)
        }
    }

    /// Operator types (or nodes) by total time: (op, milliseconds, calls).
    public static func report() -> [(op: String, milliseconds: Double, calls: Int)] {
        totals.withLock { totals in totals.map { ($0.key, $0.value.seconds * 1000, $0.value.calls) }.sorted { $0.1 > $1.1 } }
    }

    /// Forgets the times so far: `vessel bench` calls it after its warm-up runs, whose first calls
    /// pay for what a node prepares once (Winograd's transformed weights, packed weights).
    public static func reset() {
        totals.withLock { $0.removeAll() }
    }

    public static var isEnabled: Bool { enabled }
}
