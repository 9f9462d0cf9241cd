import Dispatch
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Splits an operator's loop across the intra-op threads (`vessel bench --threads`,
/// `Runtime.setIntraOpThreads`), when there is enough work for the split to pay.
enum Parallel {
    /// Set once before running (the CLI does it at start); read by every kernel.
    nonisolated(unsafe) static var threads = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Calls `body` on disjoint ranges covering `0..<count`, concurrently when `count` is at least
    /// `2 * minimum`. Returns when every range is done.
    static func chunks(_ count: Int, minimum: Int, _ body: (Range<Int>) -> Void) {
        let parts = min(threads, count / max(minimum, 1))
        guard parts > 1 else {
            body(0..<count)
            return
        }
        withoutActuallyEscaping(body) { body in
            let box = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: parts) { part in
                let start = count * part / parts, end = count * (part + 1) / parts
                box.value(start..<end)
            }
        }
    }
}

/// Lets `concurrentPerform` call a closure over disjoint data; the call joins before returning.
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
