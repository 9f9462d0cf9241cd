#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// The bytes behind a tensor: owned memory, or a read-only view over memory someone else owns
/// (a memory-mapped weights file), kept alive by `owner`.
///
/// Reference-counted, so tensors share storage cheaply; a kernel that writes asks for a fresh
/// storage (or a uniquely referenced one), never mutates a shared view.
public final class TensorStorage: @unchecked Sendable {
    public let pointer: UnsafeMutableRawPointer
    public let byteCount: Int
    public let isReadOnly: Bool
    private let owner: AnyObject?
    private let ownsMemory: Bool
    /// The bytes the block holds (`BlockCache` may hand out a larger one), for giving it back.
    private let capacity: Int

    /// Fresh zeroed memory, 64-byte aligned for SIMD and BLAS.
    public init(zeroedByteCount byteCount: Int) {
        (pointer, capacity) = BlockCache.shared.take(byteCount)
        pointer.initializeMemory(as: UInt8.self, repeating: 0, count: max(byteCount, 1))
        self.byteCount = byteCount
        isReadOnly = false
        owner = nil
        ownsMemory = true
    }

    /// Fresh uninitialized memory, for kernels that write every element.
    public init(uninitializedByteCount byteCount: Int) {
        (pointer, capacity) = BlockCache.shared.take(byteCount)
        self.byteCount = byteCount
        isReadOnly = false
        owner = nil
        ownsMemory = true
    }

    /// A read-only view of `byteCount` bytes at `pointer`, alive as long as `owner` is.
    public init(viewOf pointer: UnsafeRawPointer, byteCount: Int, owner: AnyObject) {
        self.pointer = UnsafeMutableRawPointer(mutating: pointer)
        self.byteCount = byteCount
        isReadOnly = true
        self.owner = owner
        ownsMemory = false
        capacity = byteCount
    }

    deinit {
        if ownsMemory { BlockCache.shared.give(pointer, capacity: capacity) }
    }
}

/// Reuses large tensor buffers instead of returning them to the system: a fresh multi-megabyte
/// allocation costs a page fault per 4 KiB every time, and a block used a moment ago is still in
/// the CPU's caches. A request takes the most recently given-back block that holds it and is at
/// most twice its size (in 4 KiB classes), so a model's intermediate tensors, which shrink and
/// grow from layer to layer, keep passing the same few warm blocks around instead of each size
/// touching memory of its own. The idle blocks are bounded in total.
final class BlockCache: Sendable {
    static let shared = BlockCache()
    /// Below this, the system allocator is fast enough.
    static let minimumSize = 64 << 10
    /// The most memory kept idle.
    static let capacity = 512 << 20
    /// The most idle blocks kept (the most recently given back), all looked through by a request.
    static let mostBlocks = 64

    /// Idle blocks, most recently given back last, as addresses (plain integers cross the lock
    /// freely) and sizes.
    private struct Idle {
        var blocks: [(address: UInt, size: Int)] = []
        var bytes = 0
    }
    private let idle = Mutex(Idle())

    /// Rounds to 4 KiB so nearby sizes share blocks.
    private static func sizeClass(_ byteCount: Int) -> Int { (max(byteCount, 1) + 4095) & ~4095 }

    /// A block of at least `byteCount` bytes and the bytes it holds (to give back with it).
    func take(_ byteCount: Int) -> (pointer: UnsafeMutableRawPointer, capacity: Int) {
        let size = Self.sizeClass(byteCount)
        if size >= Self.minimumSize {
            let found = idle.withLock { idle -> (UInt, Int)? in
                var index = idle.blocks.count - 1
                while index >= 0 {
                    let block = idle.blocks[index]
                    if block.size >= size, block.size <= 2 * size {
                        idle.blocks.remove(at: index)
                        idle.bytes -= block.size
                        return (block.address, block.size)
                    }
                    index -= 1
                }
                return nil
            }
            if let (address, capacity) = found, let block = UnsafeMutableRawPointer(bitPattern: address) { return (block, capacity) }
        }
        return (UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64), size)
    }

    /// Frees every idle block; returns the bytes freed.
    @discardableResult
    func releaseIdle() -> Int {
        let (blocks, bytes) = idle.withLock { idle in
            defer { idle = Idle() }
            return (idle.blocks, idle.bytes)
        }
        for block in blocks { UnsafeMutableRawPointer(bitPattern: block.address)?.deallocate() }
        return bytes
    }

    /// Gives back a block `take` returned, with the capacity it said. Past `mostBlocks` idle
    /// blocks, the one given back longest ago (which no request would look at) is freed.
    func give(_ pointer: UnsafeMutableRawPointer, capacity: Int) {
        if capacity >= Self.minimumSize {
            let address = UInt(bitPattern: pointer)
            let (kept, oldest) = idle.withLock { idle -> (Bool, UInt?) in
                guard idle.bytes + capacity <= Self.capacity else { return (false, nil) }
                idle.blocks.append((address, capacity))
                idle.bytes += capacity
                guard idle.blocks.count > Self.mostBlocks else { return (true, nil) }
                let oldest = idle.blocks.removeFirst()
                idle.bytes -= oldest.size
                return (true, oldest.address)
            }
            if let oldest { UnsafeMutableRawPointer(bitPattern: oldest)?.deallocate() }
            if kept { return }
        }
        pointer.deallocate()
    }
}

/// Hands memory the process holds but does not use back to the system: the tensor block cache's
/// idle blocks, then whatever the C allocator keeps free in its arenas (`malloc_trim`). A server
/// calls it once it has been idle a while, so RSS after a burst of large requests falls back
/// instead of staying at the burst's peak; steady traffic keeps the cache warm.
public enum IdleMemory {
    /// Returns the bytes the block cache held.
    @discardableResult
    public static func release() -> Int {
        let cached = BlockCache.shared.releaseIdle()
        _ = mallocTrim?(0)
        return cached
    }

    /// glibc's `malloc_trim`, found at run time (it is not in the Glibc module; musl has none).
    private typealias Trim = @convention(c) (Int) -> Int32
    private static let mallocTrim: Trim? = {
        #if canImport(Glibc)
        guard let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, "malloc_trim") else { return nil }
        return unsafeBitCast(symbol, to: Trim.self)
        #else
        return nil
        #endif
    }()
}
