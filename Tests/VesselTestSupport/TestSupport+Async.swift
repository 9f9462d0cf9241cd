import Foundation
import Synchronization

/// Awaitable forms of the helpers that wait on a child process or poll. A synchronous test that
/// waits holds one of the cooperative pool's threads (two on a 2-core machine are all of them),
/// and every in-process server of the test run stalls until it lets go: an image request waited
/// 30 s and got a 504 while two such tests ran. An async test awaiting these holds none.
///
/// Children run two at a time: the pool's width used to bound how many tests ran children at
/// once, and without a bound every CLI test starts its children together and the timing tests
/// of the in-process servers starve for CPU.
extension TestSupport {
    /// `run`, with the child waited for on a thread of its own, once one of two slots is free.
    public static func run(
        _ executable: String, _ arguments: [String], environment: [String: String] = [:], currentDirectory: String? = nil
    ) async throws -> ProcessResult {
        await children.acquire()
        defer { children.release() }
        return try await withCheckedThrowingContinuation { continuation in
            Thread {
                continuation.resume(with: Result { try run(executable, arguments, environment: environment, currentDirectory: currentDirectory) })
            }.start()
        }
    }

    static let children = AsyncSlots(2)

    /// `vessel`, awaited.
    @discardableResult
    public static func vessel(_ arguments: [String], home: String, currentDirectory: String? = nil) async throws -> ProcessResult {
        try await run(vesselBinary, arguments, environment: ["VESSEL_HOME": home], currentDirectory: currentDirectory)
    }

    /// `waitUntil`, sleeping without holding a thread.
    public static func poll(timeout: Double, interval: Double = 0.05, _ condition: () async throws -> Bool) async rethrows -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if try await condition() { return true }
            if Date() >= deadline { return false }
            try? await Task.sleep(for: .seconds(interval))
        }
    }
}

extension Podman {
    /// `podman ARGUMENTS`, awaited.
    @discardableResult
    public func callAsFunction(_ arguments: [String]) async throws -> TestSupport.ProcessResult {
        try await TestSupport.run(path, base + arguments, environment: environment)
    }

    /// `start`, awaited.
    public func start(_ arguments: [String]) async throws -> TestSupport.ProcessResult {
        try await TestSupport.run("python3", launcher(arguments), environment: environment)
    }
}

/// A counting semaphore that suspends instead of blocking.
final class AsyncSlots: Sendable {
    private struct State {
        var free: Int
        var waiting: [CheckedContinuation<Void, Never>] = []
    }
    private let state: Mutex<State>

    init(_ count: Int) { state = Mutex(State(free: count)) }

    func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let granted = state.withLock { state -> Bool in
                if state.free > 0 {
                    state.free -= 1
                    return true
                }
                state.waiting.append(continuation)
                return false
            }
            if granted { continuation.resume() }
        }
    }

    func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.waiting.isEmpty {
                state.free += 1
                return nil
            }
            return state.waiting.removeFirst()
        }
        next?.resume()
    }
}
