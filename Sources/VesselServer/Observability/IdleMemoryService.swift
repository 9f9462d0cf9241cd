import ServiceLifecycle
import Synchronization
import VesselTensor

/// Gives memory back to the system once the server has been idle a while: after a burst of large
/// requests, the tensor block cache and the C allocator's arenas hold the burst's peak, and RSS
/// would stay there. Every `interval` it looks: no request in flight, none finished since the
/// last look, and nothing released since the last request — then `IdleMemory.release()`.
/// Steady traffic never triggers it, so the cache stays warm while it is used.
final class IdleMemoryService: Service, Sendable {
    let interval: Duration
    private let inFlight = Atomic<Int>(0)
    private let finished = Atomic<UInt64>(0)

    init(interval: Duration = .seconds(2)) {
        self.interval = interval
    }

    func began() { inFlight.add(1, ordering: .relaxed) }

    func ended() {
        inFlight.subtract(1, ordering: .relaxed)
        finished.add(1, ordering: .relaxed)
    }

    func run() async throws {
        // Shutdown cancels the sleep at once rather than waiting out an interval.
        await cancelWhenGracefulShutdown { await self.watch() }
    }

    private func watch() async {
        var seen = finished.load(ordering: .relaxed)
        var released = true
        while true {
            do { try await Task.sleep(for: interval) } catch { return }
            let now = finished.load(ordering: .relaxed)
            if now != seen {
                seen = now
                released = false
            } else if !released, inFlight.load(ordering: .relaxed) == 0 {
                IdleMemory.release()
                released = true
            }
        }
    }
}
