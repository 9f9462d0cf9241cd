#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import VesselSystem
import VesselTensor

/// Splits an operator's loop across the intra-op threads (`vessel bench --threads`,
/// `Runtime.setIntraOpThreads`), when there is enough work for the split to pay.
enum Parallel {
    /// Set once before running (the CLI does it at start); read by every kernel. Tests that try
    /// other counts pass them to the functions that take `threads` instead of changing this,
    /// since suites running at the same time compare results that depend on it.
    nonisolated(unsafe) static var threads = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Calls `body` on disjoint ranges covering `0..<count`, concurrently when `count` is at least
    /// `2 * minimum`. Returns when every range is done. The ranges depend only on `count`,
    /// `minimum` and the thread count, never on which threads were free, so results are the
    /// same run after run.
    static func chunks(_ count: Int, minimum: Int, threads: Int = Parallel.threads, _ body: (Range<Int>) -> Void) {
        let parts = min(threads, count / max(minimum, 1))
        guard parts > 1 else {
            body(0..<count)
            return
        }
        each(parts, threads: threads) { part in
            let start = count * part / parts, end = count * (part + 1) / parts
            body(start..<end)
        }
    }

    /// Calls `body(0)` … `body(count - 1)`, concurrently on the worker threads and the caller.
    static func each(_ count: Int, threads: Int = Parallel.threads, _ body: (Int) -> Void) {
        guard count > 1 else {
            if count == 1 { body(0) }
            return
        }
        withoutActuallyEscaping(body) { body in
            WorkerPool.shared(threads: threads).run(count, body)
        }
    }
}

/// Threads that wait for parts of one operator's loop at a time, spinning a while before they
/// sleep: operators run back to back, microseconds apart, and a sleeping thread takes tens of
/// microseconds to wake (Dispatch's `concurrentPerform` paid that on every operator, which
/// made small operators slower with two threads than with one). The caller runs parts too.
/// One loop at a time: a second caller (another inference running at once) runs its parts
/// itself, in the same split.
final class WorkerPool: @unchecked Sendable {
    /// The pool for `threads` intra-op threads (`threads - 1` workers), made on first use and
    /// remade when the count changes.
    static func shared(threads: Int) -> WorkerPool {
        current.withLock { pool in
            if let pool, pool.workers == threads - 1 { return pool }
            pool?.retire()
            let made = WorkerPool(workers: threads - 1)
            pool = made
            return made
        }
    }
    private static let current = Mutex<WorkerPool?>(nil)

    let workers: Int
    /// The loop being run, valid while `busy`; read by workers only after they claimed a part
    /// of its generation.
    private nonisolated(unsafe) var body: ((Int) -> Void)?
    /// Generation (high 32 bits) and next part to claim (low 32 bits), changed together so a
    /// worker late for one loop cannot claim a part of the next.
    private let state = Atomic<Int>(0)
    private let count = Atomic<Int>(0)
    private let unfinished = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    private let retired = Atomic<Bool>(false)
    private let sleepers = Atomic<Int>(0)
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    /// How long a worker waits for the next loop before it sleeps. Long, because a sleeping
    /// worker on this kind of machine (a 2-vCPU VM) took about 240 µs to wake, and was often
    /// woken onto the caller's core, where its spinning then took the caller's time: with 200 µs,
    /// a split 784×512 product ran at one-thread speed in half the runs; with 2–5 ms, never.
    private static let spin: Duration = .milliseconds(2)
    /// After this much spinning the worker yields the core between checks.
    private static let politeAfter: Duration = .microseconds(50)

    private init(workers: Int) {
        self.workers = workers
        pthread_mutex_init(lock, nil)
        pthread_cond_init(wake, nil)
        for _ in 0..<workers {
            let pool = self
            DetachedThread.start { pool.work() }
        }
    }

    /// Once the last worker of a retired pool has returned (they hold it) and no caller has it.
    deinit {
        pthread_cond_destroy(wake)
        pthread_mutex_destroy(lock)
        wake.deallocate()
        lock.deallocate()
    }

    /// Stops the workers once they next wake or stop spinning.
    private func retire() {
        retired.store(true, ordering: .releasing)
        pthread_mutex_lock(lock)
        pthread_cond_broadcast(wake)
        pthread_mutex_unlock(lock)
    }

    func run(_ parts: Int, _ body: @escaping (Int) -> Void) {
        guard workers > 0, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            for part in 0..<parts { body(part) }
            return
        }
        self.body = body
        count.store(parts, ordering: .relaxed)
        unfinished.store(parts, ordering: .relaxed)
        let generation = (state.load(ordering: .relaxed) >> 32) + 1
        // Sequentially consistent, this store and the load after it, with the sleeper's count
        // and check: either the submitter sees a sleeper or the sleeper sees the new loop.
        state.store(generation << 32, ordering: .sequentiallyConsistent)
        if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
            pthread_mutex_lock(lock)
            pthread_cond_broadcast(wake)
            pthread_mutex_unlock(lock)
        }
        runParts(of: generation)
        // The workers' last parts are short; past a thousand checks a worker was likely
        // descheduled (a busy machine), so let it have the core.
        var checks = 0
        while unfinished.load(ordering: .acquiring) > 0 {
            checks += 1
            if checks > 1000 { sched_yield() }
        }
        self.body = nil
        busy.store(false, ordering: .releasing)
    }

    /// Claims and runs parts of loop `generation` until none is left.
    private func runParts(of generation: Int) {
        while true {
            let current = state.load(ordering: .acquiring)
            guard current >> 32 == generation, current & 0xFFFF_FFFF < count.load(ordering: .relaxed) else { return }
            guard state.compareExchange(expected: current, desired: current + 1, ordering: .acquiringAndReleasing).exchanged else { continue }
            body!(current & 0xFFFF_FFFF)
            unfinished.subtract(1, ordering: .releasing)
        }
    }

    private func work() {
        var seen = state.load(ordering: .acquiring) >> 32
        let clock = ContinuousClock()
        while !retired.load(ordering: .acquiring) {
            var generation = state.load(ordering: .acquiring) >> 32
            if generation == seen {
                let started = clock.now
                var spins = 0
                while generation == seen {
                    spins += 1
                    if spins & 255 == 0 {
                        let waited = clock.now - started
                        if waited > Self.spin {
                            pthread_mutex_lock(lock)
                            sleepers.add(1, ordering: .sequentiallyConsistent)
                            while state.load(ordering: .sequentiallyConsistent) >> 32 == seen, !retired.load(ordering: .acquiring) {
                                pthread_cond_wait(wake, lock)
                            }
                            sleepers.subtract(1, ordering: .releasing)
                            pthread_mutex_unlock(lock)
                            if retired.load(ordering: .acquiring) { return }
                        } else if waited > Self.politeAfter {
                            // Let any other thread on this core run between checks (a server's
                            // event loop, or the caller itself when both landed on one core).
                            sched_yield()
                        }
                    }
                    generation = state.load(ordering: .acquiring) >> 32
                }
            }
            seen = generation
            runParts(of: generation)
        }
    }
}
