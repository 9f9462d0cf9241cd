import VesselTensor

extension Tensor {
    /// A new tensor of `shape` whose element `i` is this tensor's element `offsets[i]`, for any
    /// dtype: the primitive behind Transpose, Expand, Tile, Slice and the Gather family.
    func take(_ offsets: [Int], shape: [Int]) -> Tensor {
        if dtype == .string { return Tensor(strings: offsets.map { strings[$0] }, shape: shape) }
        let out = Tensor(uninitialized: dtype, shape: shape)
        func copy<W>(_ type: W.Type) {
            let source = storage.pointer.assumingMemoryBound(to: W.self)
            let destination = out.storage.pointer.assumingMemoryBound(to: W.self)
            for (position, offset) in offsets.enumerated() { destination[position] = source[offset] }
        }
        switch dtype.byteSize! {
        case 1: copy(UInt8.self)
        case 2: copy(UInt16.self)
        case 4: copy(UInt32.self)
        default: copy(UInt64.self)
        }
        return out
    }
}

/// Normalizes a possibly negative axis against a rank, or fails naming it.
func normalizeAxis(_ axis: Int, rank: Int, _ context: KernelContext) throws -> Int {
    let value = axis < 0 ? axis + rank : axis
    guard value >= 0, value < max(rank, 1) || (rank == 0 && value == 0) else {
        throw context.invalid("axis \(axis) is out of range for rank \(rank)")
    }
    return value
}
