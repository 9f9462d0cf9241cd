/// numpy-style broadcasting: shapes are aligned at the right; a dimension of 1 stretches.
public enum Broadcast {
    public struct Incompatible: Error, Sendable, CustomStringConvertible {
        public var shapes: [[Int]]
        public var description: String { "shapes \(shapes.map { "\($0)" }.joined(separator: ", ")) cannot be broadcast together" }
    }

    /// The broadcast shape of several shapes.
    public static func shape(_ shapes: [Int]...) throws -> [Int] { try shape(of: shapes) }

    public static func shape(of shapes: [[Int]]) throws -> [Int] {
        let rank = shapes.map(\.count).max() ?? 0
        var result = [Int](repeating: 1, count: rank)
        for shape in shapes {
            let offset = rank - shape.count
            for (axis, size) in shape.enumerated() {
                let current = result[offset + axis]
                if current == size || size == 1 { continue }
                if current == 1 { result[offset + axis] = size } else { throw Incompatible(shapes: shapes) }
            }
        }
        return result
    }

    /// For each element of `output` (row-major), the offset of the element of an input of
    /// `shape` that broadcasts onto it.
    public static func offsets(from shape: [Int], to output: [Int]) -> [Int] {
        precondition(shape.count <= output.count, "broadcast from \(shape) to \(output)")
        let count = Tensor.count(of: output)
        if shape == output { return Array(0..<count) }
        if Tensor.count(of: shape) == 1 { return [Int](repeating: 0, count: count) }
        let rank = output.count
        let padded = [Int](repeating: 1, count: rank - shape.count) + shape
        let inputStrides = Tensor.strides(of: padded)
        return stridedOffsets(shape: output, base: 0, steps: (0..<rank).map { padded[$0] == 1 ? 0 : inputStrides[$0] })
    }
}

/// Offsets of a strided, multi-dimensional walk: for each index of `shape` (row-major),
/// `base + Σ index[d] · steps[d]`, computed incrementally like an odometer. The primitive behind
/// broadcasting, transposes, slices and reductions.
public func stridedOffsets(shape: [Int], base: Int, steps: [Int]) -> [Int] {
    let count = Tensor.count(of: shape)
    var result = [Int](repeating: 0, count: count)
    guard count > 0 else { return result }
    let rank = shape.count
    var index = [Int](repeating: 0, count: rank)
    var offset = base
    for position in 0..<count {
        result[position] = offset
        var axis = rank - 1
        while axis >= 0 {
            index[axis] += 1
            offset += steps[axis]
            if index[axis] < shape[axis] { break }
            offset -= steps[axis] * index[axis]
            index[axis] = 0
            axis -= 1
        }
    }
    return result
}
