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

    /// Fresh zeroed memory, 64-byte aligned for SIMD and BLAS.
    public init(zeroedByteCount byteCount: Int) {
        pointer = BlockCache.shared.take(byteCount)
        pointer.initializeMemory(as: UInt8.self, repeating: 0, count: max(byteCount, 1))
        self.byteCount = byteCount
        isReadOnly = false
        owner = nil
        ownsMemory = true
    }

    /// Fresh uninitialized memory, for kernels that write every element.
    public init(uninitializedByteCount byteCount: Int) {
        pointer = BlockCache.shared.take(byteCount)
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
    }

    deinit {
        if ownsMemory { BlockCache.shared.give(pointer, byteCount) }
    }
}

/// Reuses large tensor buffers instead of returning them to the system: a model's intermediate
/// tensors have the same sizes run after run, and a fresh multi-megabyte allocation costs a page
/// fault per 4 KiB every time. Blocks are kept per exact size class, bounded in total.
final class BlockCache: Sendable {
    static let shared = BlockCache()
    /// Below this, the system allocator is fast enough.
    static let minimumSize = 64 << 10
    /// The most memory kept idle.
    static let capacity = 512 << 20

    /// Idle blocks by size class, kept as addresses (plain integers cross the lock freely).
    private struct Idle {
        var free: [Int: [UInt]] = [:]
        var bytes = 0
    }
    private let idle = Mutex(Idle())

    /// Rounds to 4 KiB so nearby sizes share blocks.
    private static func sizeClass(_ byteCount: Int) -> Int { (max(byteCount, 1) + 4095) & ~4095 }

    func take(_ byteCount: Int) -> UnsafeMutableRawPointer {
        let size = Self.sizeClass(byteCount)
        if size >= Self.minimumSize {
            let address = idle.withLock { idle -> UInt? in
                guard let address = idle.free[size]?.popLast() else { return nil }
                idle.bytes -= size
                return address
            }
            if let address, let block = UnsafeMutableRawPointer(bitPattern: address) { return block }
        }
        return UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
    }

    /// Frees every idle block; returns the bytes freed.
    @discardableResult
    func releaseIdle() -> Int {
        let (blocks, bytes) = idle.withLock { idle in
            defer { idle = Idle() }
            return (idle.free, idle.bytes)
        }
        for (_, addresses) in blocks { for address in addresses { UnsafeMutableRawPointer(bitPattern: address)?.deallocate() } }
        return bytes
    }

    func give(_ pointer: UnsafeMutableRawPointer, _ byteCount: Int) {
        let size = Self.sizeClass(byteCount)
        if size >= Self.minimumSize {
            let address = UInt(bitPattern: pointer)
            let kept = idle.withLock { idle -> Bool in
                guard idle.bytes + size <= Self.capacity else { return false }
                idle.free[size, default: []].append(address)
                idle.bytes += size
                return true
            }
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
