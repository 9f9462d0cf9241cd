#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// A detached POSIX thread running one closure (Foundation's `Thread` is not in
/// FoundationEssentials): the runtime's intra-op workers, a worker process's replacement.
public enum DetachedThread {
    private final class Box {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    public static func start(_ body: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        pthread_attr_setstacksize(&attributes, 8 << 20)
        var thread = pthread_t()
        let result = pthread_create(
            &thread, &attributes,
            { context in
                let box = Unmanaged<Box>.fromOpaque(context!).takeRetainedValue()
                box.body()
                return nil
            }, box)
        precondition(result == 0, "pthread_create failed: \(result)")
    }
}

/// Threads for work that blocks or computes for long: model runs, model loading, waiting on a
/// socket or a worker process. Never Swift's cooperative pool, whose threads (one per core,
/// on Linux the same as Dispatch's global queue's) every task needs — HTTP handlers, timers,
/// health probes: a model computing on them stalls all of those, and one waiting on them
/// stalls them for nothing.
///
/// The pool never queues: work starts at once, on an idle thread or a new one, so callers bound
/// how much runs (a model's `serving.max_concurrency` slots do). A thread that finishes spins a
/// moment for more work before it sleeps (waking a sleeping thread costs tens to hundreds of
/// microseconds on a small VM, more than a small model's run), and ends after `idleTimeout`
/// seconds without any.
public final class BlockingThreads: @unchecked Sendable {
    public static let shared = BlockingThreads()

    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let idleTimeout: Int
    /// How long a thread that finished looks for more work before it sleeps.
    private let spin: Duration
    // Guarded by `lock`. A submit claims a spinning thread, else a sleeping one, else starts
    // one; any thread may take the work, and a claimed thread that finds none idles again.
    /// Work, and what to do once its thread is free for more (resume the caller): done after
    /// the thread counts as free, so a caller that submits again at once finds it.
    private var pending: [@Sendable () -> (@Sendable () -> Void)?] = []
    private var spinning = 0
    private var spinClaims = 0
    private var sleeping = 0
    private var wakeups = 0
    private var threads = 0
    /// `pending` is not empty, read without the lock by spinning threads.
    private let hasWork = Atomic<Bool>(false)

    /// `spin`: how long a thread that finished looks for more work before it sleeps (200 µs
    /// kept a run's handoff as quick as Dispatch's on a 2-vCPU VM; zero spends no time looking).
    public init(idleTimeout seconds: Int = 30, spin: Duration = .microseconds(200)) {
        idleTimeout = seconds
        self.spin = spin
        pthread_mutex_init(lock, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(wake, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    /// Once no thread is left (each holds the pool while it lives).
    deinit {
        pthread_cond_destroy(wake)
        pthread_mutex_destroy(lock)
        wake.deallocate()
        lock.deallocate()
    }

    /// Threads alive now, idle or working.
    public var count: Int {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return threads
    }

    /// Starts `work` at once on a thread of the pool.
    public func submit(_ work: @escaping @Sendable () -> Void) {
        enqueue {
            work()
            return nil
        }
    }

    private func enqueue(_ job: @escaping @Sendable () -> (@Sendable () -> Void)?) {
        pthread_mutex_lock(lock)
        pending.append(job)
        publish()
        var spawn = false
        if spinning > 0 {
            spinning -= 1
            spinClaims += 1
        } else if sleeping > 0 {
            sleeping -= 1
            wakeups += 1
            pthread_cond_signal(wake)
        } else {
            threads += 1
            spawn = true
        }
        pthread_mutex_unlock(lock)
        if spawn { DetachedThread.start { [self] in serve() } }
    }

    /// Runs `work` on a thread of the pool and returns what it returned or threw.
    public func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            enqueue {
                let result = Result { try work() }
                return { continuation.resume(with: result) }
            }
        }
    }

    /// Runs `work`, which cannot fail, on a thread of the pool.
    public func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            enqueue {
                let result = work()
                return { continuation.resume(returning: result) }
            }
        }
    }

    /// Under the lock: tells spinning threads whether there is work.
    private func publish() {
        hasWork.store(!pending.isEmpty, ordering: .releasing)
    }

    private func serve() {
        pthread_mutex_lock(lock)
        while true {
            if !pending.isEmpty {
                let job = pending.removeFirst()
                publish()
                pthread_mutex_unlock(lock)
                guard let then = job() else {
                    pthread_mutex_lock(lock)
                    continue
                }
                // Free before the caller hears back: its next run comes here.
                pthread_mutex_lock(lock)
                spinning += 1
                pthread_mutex_unlock(lock)
                then()
                if spinFor(counted: true) { continue }
            } else if spinFor(counted: false) {
                continue
            }
            if !sleep() {
                threads -= 1
                pthread_mutex_unlock(lock)
                return
            }
        }
    }

    /// Spins, without the lock, until work is claimed for it (true) or `spin` passes (false);
    /// returns holding the lock. `counted`: already counted as spinning, and not holding the
    /// lock; otherwise holding it.
    private func spinFor(counted: Bool) -> Bool {
        if !counted {
            spinning += 1
            pthread_mutex_unlock(lock)
        }
        let clock = ContinuousClock()
        let until = clock.now + spin
        while clock.now < until {
            if hasWork.load(ordering: .acquiring) {
                pthread_mutex_lock(lock)
                if spinClaims > 0 {
                    spinClaims -= 1
                    return true
                }
                pthread_mutex_unlock(lock)
            }
            sched_yield()
        }
        pthread_mutex_lock(lock)
        if spinClaims > 0 {
            spinClaims -= 1
            return true
        }
        spinning -= 1
        return false
    }

    /// Sleeps until a submit claims this thread (true) or `idleTimeout` passes without (false).
    private func sleep() -> Bool {
        sleeping += 1
        var deadline = timespec()
        clock_gettime(CLOCK_MONOTONIC, &deadline)
        deadline.tv_sec += idleTimeout
        while true {
            let result = pthread_cond_timedwait(wake, lock, &deadline)
            if wakeups > 0 {
                wakeups -= 1
                return true
            }
            if result == ETIMEDOUT {
                sleeping -= 1
                return false
            }
        }
    }
}
