import Foundation
import Synchronization
import Testing
import VesselSystem
import VesselTestSupport

private final class Counter: Sendable {
    let value = Atomic<Int>(0)
}

@Suite("BlockingThreads")
struct ThreadsTests {
    @Test("work starts at once, never queued behind busy threads: 16 runs that each wait for all 16 to have started all finish")
    func neverQueues() async throws {
        let pool = BlockingThreads(idleTimeout: 5)
        let started = Counter()
        let count = 16
        let sawAll = try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<count {
                group.addTask {
                    await pool.run { () -> Bool in
                        started.value.add(1, ordering: .relaxed)
                        // A pool that queued would leave some waiting here until the others gave up.
                        return TestSupport.waitUntil(timeout: 20) { started.value.load(ordering: .relaxed) == count }
                    }
                }
            }
            return try await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(sawAll == Array(repeating: true, count: count))
        #expect(pool.count <= count)
    }

    @Test("a finished thread takes the next run: 200 runs one after another use one thread; errors come back to the caller")
    func reuse() async throws {
        let pool = BlockingThreads(idleTimeout: 5)
        struct Failed: Error {}
        var sum = 0
        for index in 0..<200 {
            sum += await pool.run { index }
        }
        #expect(sum == 199 * 200 / 2)
        // The thread counts as free before its caller hears back, so the next run finds it
        // however loaded the machine (52 threads for these 200 in a loaded run before). At most
        // one: a caller slower than the idle timeout finds it gone and starts the next.
        #expect(pool.count <= 1)
        await #expect(throws: Failed.self) { try await pool.run { () throws -> Int in throw Failed() } }
    }

    @Test("threads idle for idleTimeout end")
    func idleThreadsEnd() async throws {
        let pool = BlockingThreads(idleTimeout: 1)
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<4 { group.addTask { () async -> Void in await pool.run { () -> Void in usleep(20_000) } } }
        }
        #expect(TestSupport.waitUntil(timeout: 30, interval: 0.1) { pool.count == 0 })
        // And the pool starts threads again after. (Not counted: on a loaded machine the new
        // thread can idle out before the caller looks.)
        #expect(await pool.run { 7 } == 7)
    }
}
