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
        let classBytes = (count + 4095) & ~4095
        let block = cache.take(count)
        #expect(block.capacity == classBytes)
        cache.give(block.pointer, capacity: block.capacity)
        // Reused as it is while cached, also for a size in the same 4 KiB class.
        let again = cache.take(count + 1)
        #expect(again.pointer == block.pointer && again.capacity == classBytes)
        cache.give(again.pointer, capacity: again.capacity)
        #expect(cache.releaseIdle() == classBytes)
        #expect(cache.releaseIdle() == 0)
        // Emptied: the next take is a fresh allocation, which give() can keep again.
        let fresh = cache.take(count)
        cache.give(fresh.pointer, capacity: fresh.capacity)
        #expect(cache.releaseIdle() == classBytes)
    }

    @Test("a request takes the most recent idle block that holds it and is at most twice its size")
    func mostRecentFittingBlock() {
        let cache = BlockCache()
        let mib = 1 << 20
        let large = cache.take(4 * mib), medium = cache.take(2 * mib), small = cache.take(mib)
        for block in [large, medium, small] { cache.give(block.pointer, capacity: block.capacity) }
        // 1.5 MiB: the 1 MiB block is too small and the 4 MiB one too large; the 2 MiB one, with
        // its whole capacity, which it is given back with.
        let between = cache.take(3 * mib / 2)
        #expect(between.pointer == medium.pointer && between.capacity == 2 * mib)
        cache.give(between.pointer, capacity: between.capacity)
        // Given back last, the 2 MiB block is now the most recent: a 1 MiB request takes it
        // before the 1 MiB block given back earlier.
        let recent = cache.take(mib)
        #expect(recent.pointer == medium.pointer)
        cache.give(recent.pointer, capacity: recent.capacity)
        // Nothing idle holds 5 MiB: a fresh block.
        let fresh = cache.take(5 * mib)
        #expect(![large.pointer, medium.pointer, small.pointer].contains(fresh.pointer) && fresh.capacity == 5 * mib)
        cache.give(fresh.pointer, capacity: fresh.capacity)
        #expect(cache.releaseIdle() == 12 * mib)
        // A block over twice the request stays idle for a request its size.
        let only = cache.take(4 * mib)
        cache.give(only.pointer, capacity: only.capacity)
        let quarter = cache.take(mib)
        #expect(quarter.pointer != only.pointer && quarter.capacity == mib)
        cache.give(quarter.pointer, capacity: quarter.capacity)
        #expect(cache.releaseIdle() == 5 * mib)
    }

    @Test("small blocks bypass the cache, and it never keeps more than its capacity or its count of blocks")
    func boundsAndSmallBlocks() {
        let cache = BlockCache()
        let small = cache.take(1000)
        cache.give(small.pointer, capacity: small.capacity)
        #expect(cache.releaseIdle() == 0)
        let size = 64 << 20
        let blocks = (0..<(BlockCache.capacity / size + 2)).map { _ in cache.take(size) }
        for block in blocks { cache.give(block.pointer, capacity: block.capacity) }
        #expect(cache.releaseIdle() == BlockCache.capacity)
        // Past its count, the block given back longest ago is freed: the newest stay.
        let many = (0..<(BlockCache.mostBlocks + 6)).map { _ in cache.take(BlockCache.minimumSize) }
        for block in many { cache.give(block.pointer, capacity: block.capacity) }
        let reused = (0..<BlockCache.mostBlocks).map { _ in cache.take(BlockCache.minimumSize).pointer }
        #expect(Set(reused) == Set(many.suffix(BlockCache.mostBlocks).map(\.pointer)))
        for pointer in reused { cache.give(pointer, capacity: BlockCache.minimumSize) }
        #expect(cache.releaseIdle() == BlockCache.mostBlocks * BlockCache.minimumSize)
    }

}
