import Testing
@testable import VesselTensor

@Suite("idle memory")
struct IdleMemoryTests {
    @Test("a released tensor's block waits in the cache for reuse, and IdleMemory.release() gives it back")
    func releaseEmptiesTheCache() {
        // An odd size class, so no other test running at the same time takes this block.
        let count = (4 << 20) / 4 + 3 * 1024 + 7
        var tensor: Tensor? = Tensor(uninitialized: .float32, shape: [count])
        let pointer = tensor!.storage.pointer
        tensor = nil
        // Reused as it is while cached.
        let again = Tensor(uninitialized: .float32, shape: [count])
        #expect(again.storage.pointer == pointer)
        _ = consume again
        #expect(IdleMemory.release() >= count * 4)
    }
}
