import VesselTensor

extension Tensor {
    /// A new tensor of `shape` whose element `i` is this tensor's element `offsets[i]`, for any
    /// dtype: the primitive behind Transpose, Expand, Tile, Slice and the Gather family.
    ///
    /// Every offset is checked against this tensor's count: a kernel that computed a wrong offset
    /// from a hostile shape stops the process rather than read memory it does not own (and the
    /// hostile-input sweep, `hostile_mutations.py`, finds it).
    func take(_ offsets: [Int], shape: [Int]) -> Tensor {
        precondition(offsets.count == Tensor.count(of: shape), "take: \(offsets.count) offsets for shape \(shape)")
        if dtype == .string { return Tensor(strings: offsets.map { strings[$0] }, shape: shape) }
        let out = Tensor(uninitialized: dtype, shape: shape)
        let limit = count
        func copy<W>(_ type: W.Type) {
            let source = storage.pointer.assumingMemoryBound(to: W.self)
            let destination = out.storage.pointer.assumingMemoryBound(to: W.self)
            for (position, offset) in offsets.enumerated() {
                precondition(offset >= 0 && offset < limit, "take: offset \(offset) outside \(limit) elements")
                destination[position] = source[offset]
            }
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
    guard value >= 0, value < rank else {
        throw context.invalid("axis \(axis) is out of range for rank \(rank)")
    }
    return value
}
