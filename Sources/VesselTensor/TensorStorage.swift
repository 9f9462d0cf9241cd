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
        let size = max(byteCount, 1)
        pointer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
        pointer.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        self.byteCount = byteCount
        isReadOnly = false
        owner = nil
        ownsMemory = true
    }

    /// Fresh uninitialized memory, for kernels that write every element.
    public init(uninitializedByteCount byteCount: Int) {
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 1), alignment: 64)
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
        if ownsMemory { pointer.deallocate() }
    }
}
