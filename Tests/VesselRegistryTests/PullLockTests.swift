import Foundation
import Synchronization
import Testing
import VesselRegistry
import VesselStore
import VesselTestSupport

/// `vessel pull` holds the store's writer lock from its first blob to its tag, as `pack` and
/// `import` do: a `gc` in between would find the blobs unreferenced and delete them under the
/// manifest about to be tagged.
@Suite("pull and gc")
struct PullLockTests {
    @Test("while a pull stores its blobs, gc cannot take the store; once it has tagged, gc can")
    func pullHoldsTheWriterLock() async throws {
        let registry = try LocalRegistry()
        let home = try TestSupport.makeTemporaryDirectory("pull-lock")
        defer { TestSupport.remove(home) }
        let packed = try await TestSupport.vessel(["pack", TestSupport.exampleDirectory, "--no-test"], home: home + "/source")
        #expect(packed.status == 0, "\(packed.standardError)")
        let pushed = try await TestSupport.vessel(["push", "iris:1.0.0", "\(registry.host)/models/iris", "--insecure"], home: home + "/source")
        #expect(pushed.status == 0, "\(pushed.standardError)")

        let store = try Store(root: home + "/pulled")
        let lockPath = home + "/pulled/.lock"
        // What gc would do at each blob: take the lock exclusively, without waiting.
        let gcCouldTake = Mutex<[Bool]>([])
        let probe: @Sendable (String, Int64) -> ProgressBar = { _, _ in
            gcCouldTake.withLock { $0.append(Self.exclusiveLockIsFree(lockPath)) }
            return .silent()
        }
        let client = RegistryClient(registry: registry.host, apiHost: registry.host, insecure: true, credentials: nil)
        let report = try await Puller(store: store, client: client, progress: probe)
            .pull(try RegistryReference(parsing: "\(registry.host)/models/iris:1.0.0"), as: try Reference(parsing: "iris:1.0.0"))
        await client.shutdown()
        let seen = gcCouldTake.withLock { $0 }
        #expect(seen.count == report.downloaded.count && !seen.isEmpty, "\(seen) for \(report.downloaded.count) blobs")
        #expect(seen.allSatisfy { !$0 }, "gc could have taken the store between blobs: \(seen)")
        #expect(Self.exclusiveLockIsFree(lockPath), "the pull kept the lock after tagging")
        _ = try store.verify(try store.resolve(try Reference(parsing: "iris:1.0.0")))
    }

    static func exclusiveLockIsFree(_ path: String) -> Bool {
        let fd = open(path, O_RDWR | O_CREAT, 0o644)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else { return false }
        flock(fd, LOCK_UN)
        return true
    }
}
