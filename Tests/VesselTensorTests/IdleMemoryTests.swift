import Testing
@testable import VesselTensor

@Suite("idle memory")
struct IdleMemoryTests {
    // A cache of its own: servers started by other tests in this process release the shared cache
    // whenever they have been idle two seconds, so a test of the shared one would race them.
    @Test("a given-back block waits in the cache for reuse, by size class, and releaseIdle() frees it")
    func releaseEmptiesTheCache() {
        let cache = BlockCache()
        let count = (4 << 20) + 3 * 1024 + 7
        let block = cache.take(count)
        cache.give(block, count)
        // Reused as it is while cached, also for a size in the same 4 KiB class.
        let again = cache.take(count + 1)
        #expect(again == block)
        cache.give(again, count + 1)
        let classBytes = (count + 4095) & ~4095
        #expect(cache.releaseIdle() == classBytes)
        #expect(cache.releaseIdle() == 0)
        // Emptied: the next take is a fresh allocation, which give() can keep again.
        let fresh = cache.take(count)
        cache.give(fresh, count)
        #expect(cache.releaseIdle() == classBytes)
    }

    @Test("small blocks bypass the cache, and it never keeps more than its capacity")
    func boundsAndSmallBlocks() {
        let cache = BlockCache()
        let small = cache.take(1000)
        cache.give(small, 1000)
        #expect(cache.releaseIdle() == 0)
        let size = 64 << 20
        let blocks = (0..<(BlockCache.capacity / size + 2)).map { _ in cache.take(size) }
        for block in blocks { cache.give(block, size) }
        #expect(cache.releaseIdle() == BlockCache.capacity)
    }

}
