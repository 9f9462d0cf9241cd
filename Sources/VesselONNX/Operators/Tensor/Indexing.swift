#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import VesselTensor

/// Operators that choose, join, split or scatter elements by position.
extension KernelRegistry {
    static func registerIndexing(_ r: inout KernelRegistry) {
        r.register("Concat", concatKernel)
        r.register("Split", splitKernel)
        r.register("Slice", sliceKernel)
        r.register("Gather", gatherKernel)
        r.register("GatherElements", since: 11, gatherElementsKernel)
        r.register("GatherND", since: 11, gatherNDKernel)
        r.register("ScatterElements", since: 11, scatterElementsKernel)
        r.register("ScatterND", since: 11, scatterNDKernel)
        r.register("NonZero", since: 9, nonZeroKernel)
        r.register("Compress", since: 9, compressKernel)
        r.register("Trilu", since: 14, triluKernel)
        r.register("ReverseSequence", since: 10, reverseSequenceKernel)
        r.register("Pad", since: 2, padKernel)
    }

    static func concatKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let inputs = i.compactMap { $0 }
        guard let first = inputs.first else { throw c.invalid("no inputs") }
        let axis = try normalizeAxis(try c.attributes.required("axis", c.attributes.int), rank: first.rank, c)
        let parts = inputs.filter { $0.count > 0 || inputs.allSatisfy { $0.count == 0 } }
        for part in parts
        where part.rank != first.rank || part.dtype != first.dtype
            || part.shape.enumerated().contains(where: { $0.offset != axis && $0.element != first.shape[$0.offset] })
        {
            throw c.invalid("cannot concatenate \(first.shape) and \(part.shape) on axis \(axis)")
        }
        return [concatenate(parts.isEmpty ? [first] : parts, axis: axis)]
    }

    static func splitKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let x = try c.input(i, 0)
        let axis = try normalizeAxis(c.attributes.int("axis", default: 0), rank: x.rank, c)
        let outputs = c.node.outputs.count
        var sizes: [Int]
        if c.opset >= 13, i.count > 1, let split = i[1] {
            sizes = split.integers()
        } else if c.opset < 13, let split = c.attributes.ints("split") {
            sizes = split
        } else {
            let parts = c.attributes.int("num_outputs") ?? outputs
            guard parts >= 1, parts == outputs else { throw c.invalid("num_outputs \(parts) must be positive and equal the node's \(outputs) outputs") }
            let chunk = (x.shape[axis] + parts - 1) / parts
            sizes = (0..<parts).map { Swift.min(chunk, Swift.max(0, x.shape[axis] - $0 * chunk)) }
        }
        guard sizes.allSatisfy({ $0 >= 0 && $0 <= x.shape[axis] }), sizes.reduce(0, +) == x.shape[axis], sizes.count == outputs else {
            throw c.invalid("split sizes \(sizes) must be \(outputs) non-negative sizes adding up to \(x.shape[axis])")
        }
        var start = 0
        return sizes.map { size in
            defer { start += size }
            return slice(x, axis: axis, start: start, count: size)
        }
    }

    static func sliceKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let x = try c.input(i, 0)
        let starts: [Int], ends: [Int], axesList: [Int]?, stepsList: [Int]?
        if c.opset >= 10 {
            starts = try c.input(i, 1).integers()
            ends = try c.input(i, 2).integers()
            axesList = i.count > 3 ? i[3]?.integers() : nil
            stepsList = i.count > 4 ? i[4]?.integers() : nil
        } else {
            starts = try c.attributes.required("starts", c.attributes.ints)
            ends = try c.attributes.required("ends", c.attributes.ints)
            axesList = c.attributes.ints("axes")
            stepsList = nil
        }
        let axes = try (axesList ?? Array(0..<starts.count)).map { try normalizeAxis($0, rank: x.rank, c) }
        let steps = stepsList ?? [Int](repeating: 1, count: starts.count)
        guard ends.count == starts.count, axes.count == starts.count, steps.count == starts.count, Set(axes).count == axes.count else {
            throw c.invalid("starts, ends, axes and steps must have one entry per sliced axis, each axis once")
        }
        // Steps past the size of any axis act as the largest step that axis allows; bounding
        // them keeps the count arithmetic below from overflowing.
        let limit = 1 << 40
        let clampedSteps = steps.map { Swift.min(Swift.max($0, -limit), limit) }
        var begin = [Int](repeating: 0, count: x.rank)
        var shape = x.shape
        var step = [Int](repeating: 1, count: x.rank)
        for (k, axis) in axes.enumerated() {
            let size = x.shape[axis], s = clampedSteps[k]
            guard s != 0 else { throw c.invalid("slice step 0") }
            func clampIndex(_ value: Int, _ low: Int, _ high: Int) -> Int {
                let v = value < 0 ? value + size : value
                return Swift.min(Swift.max(v, low), high)
            }
            let first = s > 0 ? clampIndex(starts[k], 0, size) : clampIndex(starts[k], -1, size - 1)
            let last = s > 0 ? clampIndex(ends[k], 0, size) : clampIndex(ends[k], -1, size - 1)
            let count = s > 0 ? Swift.max(0, (last - first + s - 1) / s) : Swift.max(0, (first - last - s - 1) / -s)
            begin[axis] = first
            shape[axis] = count
            step[axis] = s
        }
        let strides = Tensor.strides(of: x.shape)
        let base = zip(begin, strides).reduce(0) { $0 + $1.0 * $1.1 }
        return [stridedCopy(x, base: base, shape: shape, steps: zip(step, strides).map(*))]
    }

    static func gatherKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let x = try c.input(i, 0), indices = try c.input(i, 1)
        let axis = try normalizeAxis(c.attributes.int("axis", default: 0), rank: x.rank, c)
        let size = x.shape[axis]
        let positions = try indices.integers().map { index -> Int in
            let value = index < 0 ? index + size : index
            guard value >= 0, value < size else { throw c.invalid("index \(index) is out of range for axis \(axis) of size \(size)") }
            return value
        }
        let outer = x.shape[..<axis].reduce(1, *), inner = x.shape[(axis + 1)...].reduce(1, *)
        let shape = Array(x.shape[..<axis]) + indices.shape + Array(x.shape[(axis + 1)...])
        if x.dtype != .string, let elementBytes = x.dtype.byteSize {
            // Fixed-size elements: each picked slice is `inner` contiguous values, copied whole
            // (an embedding lookup is one row copy per token, not an offset per value).
            try c.checkAllocation(x.dtype, shape)
            let out = Tensor(uninitialized: x.dtype, shape: shape)
            let rowBytes = inner * elementBytes
            let source = UnsafeRawPointer(x.storage.pointer), target = out.storage.pointer
            var written = 0
            for o in 0..<outer {
                for p in positions {
                    (target + written).copyMemory(from: source + (o * size + p) * rowBytes, byteCount: rowBytes)
                    written += rowBytes
                }
            }
            return [out]
        }
        var offsets: [Int] = []
        offsets.reserveCapacity(outer * positions.count * inner)
        for o in 0..<outer {
            for p in positions {
                let base = (o * size + p) * inner
                for k in 0..<inner { offsets.append(base + k) }
            }
        }
        return [x.take(offsets, shape: shape)]
    }

    static func gatherElementsKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let x = try c.input(i, 0), indices = try c.input(i, 1)
        let axis = try normalizeAxis(c.attributes.int("axis", default: 0), rank: x.rank, c)
        try checkElementIndices(indices.shape, data: x.shape, axis: axis, c)
        let strides = Tensor.strides(of: x.shape), indexStrides = Tensor.strides(of: indices.shape)
        let values = indices.integers()
        let offsets = try values.enumerated().map { position, raw in
            try elementOffset(position: position, index: raw, axis: axis, size: x.shape[axis], indexStrides: indexStrides, strides: strides, c)
        }
        return [x.take(offsets, shape: indices.shape)]
    }

    static func gatherNDKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let x = try c.input(i, 0), indices = try c.input(i, 1)
        let batchDims = c.attributes.int("batch_dims", default: 0)
        let depth = indices.shape.last ?? 0
        guard indices.rank >= 1, batchDims >= 0, batchDims < Swift.min(x.rank, indices.rank), batchDims + depth <= x.rank,
            Array(x.shape[..<batchDims]) == Array(indices.shape[..<batchDims])
        else {
            throw c.invalid("batch_dims \(batchDims) and index depth \(depth) do not fit data \(x.shape) and indices \(indices.shape)")
        }
        let strides = Tensor.strides(of: x.shape)
        let batch = x.shape[..<batchDims].reduce(1, *)
        let sliceShape = Array(x.shape[(batchDims + depth)...])
        let sliceSize = sliceShape.reduce(1, *)
        let batchSize = x.shape[batchDims...].reduce(1, *)
        let tuples = indices.integers()
        // One tuple per position of indices but its last axis (of length 0, a tuple picks a
        // whole slice).
        let tupleCount = indices.shape.dropLast().reduce(1, *)
        let perBatch = tupleCount / Swift.max(batch, 1)
        var offsets: [Int] = []
        for t in 0..<tupleCount {
            let b = t / Swift.max(perBatch, 1)
            var offset = b * batchSize
            for d in 0..<depth {
                let size = x.shape[batchDims + d]
                var index = tuples[t * depth + d]
                if index < 0 { index += size }
                guard index >= 0, index < size else { throw c.invalid("index out of range in GatherND") }
                offset += index * strides[batchDims + d]
            }
            for k in 0..<sliceSize { offsets.append(offset + k) }
        }
        return [x.take(offsets, shape: Array(indices.shape.dropLast()) + sliceShape)]
    }

    static func scatterElementsKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let x = try c.input(i, 0), indices = try c.input(i, 1), updates = try c.input(i, 2)
        let axis = try normalizeAxis(c.attributes.int("axis", default: 0), rank: x.rank, c)
        let reduction = c.attributes.string("reduction", default: "none")
        try checkElementIndices(indices.shape, data: x.shape, axis: axis, c)
        guard updates.shape == indices.shape else { throw c.invalid("updates \(updates.shape) must have the shape of indices \(indices.shape)") }
        let strides = Tensor.strides(of: x.shape), indexStrides = Tensor.strides(of: indices.shape)
        var values = x.doubles()
        let updateValues = updates.doubles()
        for (position, raw) in indices.integers().enumerated() {
            let offset = try elementOffset(
                position: position, index: raw, axis: axis, size: x.shape[axis],
                indexStrides: indexStrides, strides: strides, c)
            values[offset] = scatterReduce(values[offset], updateValues[position], reduction)
        }
        return [Cast.fromDoubles(values, dtype: x.dtype, shape: x.shape)]
    }

    static func scatterNDKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let x = try c.input(i, 0), indices = try c.input(i, 1), updates = try c.input(i, 2)
        let reduction = c.attributes.string("reduction", default: "none")
        let depth = indices.shape.last ?? 0
        guard indices.rank >= 1, depth <= x.rank else { throw c.invalid("indices \(indices.shape) do not fit data \(x.shape)") }
        let strides = Tensor.strides(of: x.shape)
        let sliceSize = x.shape[depth...].reduce(1, *)
        let tupleCount = indices.count / Swift.max(depth, 1)
        guard updates.count == tupleCount * sliceSize else {
            throw c.invalid("updates has \(updates.count) elements; indices \(indices.shape) and data \(x.shape) need \(tupleCount * sliceSize)")
        }
        var values = x.doubles()
        let updateValues = updates.doubles(), tuples = indices.integers()
        for t in 0..<tupleCount {
            var offset = 0
            for d in 0..<depth {
                var index = tuples[t * depth + d]
                if index < 0 { index += x.shape[d] }
                guard index >= 0, index < x.shape[d] else {
                    throw c.invalid("index \(tuples[t * depth + d]) is out of range for axis \(d) of size \(x.shape[d])")
                }
                offset += index * strides[d]
            }
            for k in 0..<sliceSize {
                values[offset + k] = scatterReduce(values[offset + k], updateValues[t * sliceSize + k], reduction)
            }
        }
        return [Cast.fromDoubles(values, dtype: x.dtype, shape: x.shape)]
    }

    static func nonZeroKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let x = try c.input(i, 0)
        let values = x.dtype == .string ? x.strings.map { $0.isEmpty ? 0 : 1 } : x.doubles()
        let strides = Tensor.strides(of: x.shape)
        let hits = values.indices.filter { values[$0] != 0 }
        var result = [Int64](repeating: 0, count: x.rank * hits.count)
        for (n, position) in hits.enumerated() {
            var rest = position
            for d in 0..<x.rank {
                result[d * hits.count + n] = Int64(rest / strides[d])
                rest %= strides[d]
            }
        }
        return [Tensor(result, shape: [x.rank, hits.count])]
    }

    static func compressKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let x = try c.input(i, 0)
        let condition = try c.input(i, 1).doubles().map { $0 != 0 }
        guard let rawAxis = c.attributes.int("axis") else {
            let picked = (0..<Swift.min(condition.count, x.count)).filter { condition[$0] }
            return [x.take(picked, shape: [picked.count])]
        }
        let axis = try normalizeAxis(rawAxis, rank: x.rank, c)
        let kept = (0..<Swift.min(condition.count, x.shape[axis])).filter { condition[$0] }
        let parts = kept.map { slice(x, axis: axis, start: $0, count: 1) }
        if parts.isEmpty {
            var shape = x.shape
            shape[axis] = 0
            return [Tensor(zeros: x.dtype, shape: shape)]
        }
        return [Tensor.concatenate(parts, axis: axis)]
    }

    static func triluKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let x = try c.input(i, 0)
        let k = i.count > 1 ? (i[1]?.integers().first ?? 0) : 0
        let upper = c.attributes.int("upper", default: 1) == 1
        let rows = x.shape[x.rank - 2], columns = x.shape[x.rank - 1]
        let zero = Tensor(zeros: x.dtype, shape: [1])
        return [
            Select.gather(x, zero, shape: x.shape) { position in
                let column = position % columns, row = (position / columns) % rows
                let keep = upper ? column - row >= k : column - row <= k
                return keep ? (true, position) : (false, 0)
            }
        ]
    }

    static func reverseSequenceKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let x = try c.input(i, 0), lengths = try c.input(i, 1).integers()
        let batchAxis = c.attributes.int("batch_axis", default: 1), timeAxis = c.attributes.int("time_axis", default: 0)
        guard x.rank >= 2, [batchAxis, timeAxis].sorted() == [0, 1] else {
            throw c.invalid("batch_axis \(batchAxis) and time_axis \(timeAxis) must be 0 and 1 (in either order) of an input of rank ≥ 2")
        }
        guard lengths.count == x.shape[batchAxis], lengths.allSatisfy({ $0 >= 0 && $0 <= x.shape[timeAxis] }) else {
            throw c.invalid("sequence_lens must hold \(x.shape[batchAxis]) lengths within 0…\(x.shape[timeAxis])")
        }
        let strides = Tensor.strides(of: x.shape)
        let offsets = (0..<x.count).map { position -> Int in
            var rest = position, coordinates = [Int](repeating: 0, count: x.rank)
            for d in 0..<x.rank { coordinates[d] = rest / strides[d]; rest %= strides[d] }
            let length = lengths[coordinates[batchAxis]]
            if coordinates[timeAxis] < length { coordinates[timeAxis] = length - 1 - coordinates[timeAxis] }
            return zip(coordinates, strides).reduce(0) { $0 + $1.0 * $1.1 }
        }
        return [x.take(offsets, shape: x.shape)]
    }

    static func padKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let x = try c.input(i, 0)
        var pads: [Int]
        var constant = Tensor(zeros: x.dtype, shape: [1])
        if c.opset >= 11 {
            pads = try c.input(i, 1).integers()
            if i.count > 2, let value = i[2], value.count > 0 { constant = value.take([0], shape: [1]) }
            if i.count > 3, let axesTensor = i[3] {
                let axes = try axesTensor.integers().map { try normalizeAxis($0, rank: x.rank, c) }
                guard pads.count == 2 * axes.count else { throw c.invalid("pads has \(pads.count) values for \(axes.count) axes") }
                var full = [Int](repeating: 0, count: 2 * x.rank)
                for (k, axis) in axes.enumerated() {
                    full[axis] = pads[k]
                    full[axis + x.rank] = pads[k + axes.count]
                }
                pads = full
            }
        } else {
            pads = try c.attributes.required("pads", c.attributes.ints)
            constant = Cast.fromDoubles([Double(c.attributes.float("value", default: 0))], dtype: x.dtype, shape: [1])
        }
        guard pads.count == 2 * x.rank else { throw c.invalid("pads has \(pads.count) values for rank \(x.rank)") }
        guard pads.allSatisfy({ abs($0) <= 1 << 31 }) else { throw c.invalid("pads \(pads) are out of range") }
        let mode = c.attributes.string("mode", default: "constant")
        let shape = (0..<x.rank).map { x.shape[$0] + pads[$0] + pads[$0 + x.rank] }
        guard shape.allSatisfy({ $0 >= 0 }) else { throw c.invalid("pads \(pads) remove more than the input \(x.shape) has") }
        if mode != "constant", let axis = (0..<x.rank).first(where: { x.shape[$0] == 0 && (pads[$0] != 0 || pads[$0 + x.rank] != 0) }) {
            throw c.invalid("\(mode) padding needs values to repeat, but axis \(axis) of \(x.shape) is empty")
        }
        try c.checkAllocation(x.dtype, shape)
        let strides = Tensor.strides(of: x.shape), outStrides = Tensor.strides(of: shape)
        return [
            Select.gather(x, constant, shape: shape) { position in
                var rest = position, offset = 0
                for d in 0..<x.rank {
                    var index = rest / outStrides[d] - pads[d]
                    rest %= outStrides[d]
                    let size = x.shape[d]
                    if index < 0 || index >= size {
                        switch mode {
                        case "edge": index = Swift.min(Swift.max(index, 0), size - 1)
                        case "reflect":
                            if size == 1 {
                                index = 0
                            } else {
                                let period = 2 * (size - 1)
                                index = ((index % period) + period) % period
                                if index >= size { index = period - index }
                            }
                        case "wrap": index = ((index % size) + size) % size
                        default: return (false, 0)
                        }
                    }
                    offset += index * strides[d]
                }
                return (true, offset)
            }
        ]
    }
}

func scatterReduce(_ current: Double, _ update: Double, _ reduction: String) -> Double {
    switch reduction {
    case "add": current + update
    case "mul": current * update
    case "max": Swift.max(current, update)
    case "min": Swift.min(current, update)
    default: update
    }
}

/// `count` consecutive positions of `axis` starting at `start`.
func slice(_ x: Tensor, axis: Int, start: Int, count: Int) -> Tensor {
    var shape = x.shape
    shape[axis] = count
    let strides = Tensor.strides(of: x.shape)
    return x.take(stridedOffsets(shape: shape, base: start * strides[axis], steps: strides), shape: shape)
}

/// GatherElements' and ScatterElements' indices: data's rank, and no longer than data on any
/// other axis (each index addresses the element at its own coordinates but `axis`).
func checkElementIndices(_ indices: [Int], data: [Int], axis: Int, _ c: KernelContext) throws {
    guard indices.count == data.count, indices.indices.allSatisfy({ $0 == axis || indices[$0] <= data[$0] }) else {
        throw c.invalid("indices \(indices) do not fit data \(data) off axis \(axis)")
    }
}

/// GatherElements/ScatterElements addressing: the data offset for the element at `position` of
/// the indices tensor, whose coordinate on `axis` is replaced by `index` (negative counts back).
func elementOffset(position: Int, index raw: Int, axis: Int, size: Int, indexStrides: [Int], strides: [Int], _ c: KernelContext) throws -> Int {
    let index = raw < 0 ? raw + size : raw
    guard index >= 0, index < size else { throw c.invalid("index \(raw) is out of range on axis \(axis) of size \(size)") }
    var offset = 0, rest = position
    for d in 0..<indexStrides.count {
        let coordinate = rest / indexStrides[d]
        rest %= indexStrides[d]
        offset += (d == axis ? index : coordinate) * strides[d]
    }
    return offset
}

/// `Tensor.concatenate`, with the copying of large results split across the intra-op threads:
/// the output's bytes are cut into one range per thread, each filled from the input blocks it
/// covers. (SqueezeNet's Concats were a serial 5 % of its two-thread time.)
func concatenate(_ tensors: [Tensor], axis: Int, threads: Int = Parallel.threads) -> Tensor {
    guard let size = tensors[0].dtype.byteSize, threads > 1 else { return Tensor.concatenate(tensors, axis: axis) }
    var shape = tensors[0].shape
    shape[axis] = tensors.reduce(0) { $0 + $1.shape[axis] }
    let total = Tensor.count(of: shape) * size
    guard total >= 1 << 18 else { return Tensor.concatenate(tensors, axis: axis) }
    let inner = shape[(axis + 1)...].reduce(1, *)
    // The output is outer × (each input's block, in order): block (o, t) starts at
    // o · rowBytes + offsets[t] and is t's o-th block.
    let blocks = tensors.map { $0.shape[axis] * inner * size }
    let rowBytes = blocks.reduce(0, +)
    var offsets = [0]
    for block in blocks.dropLast() { offsets.append(offsets.last! + block) }
    let out = Tensor(uninitialized: tensors[0].dtype, shape: shape)
    let destination = out.storage.pointer
    Parallel.chunks(total, minimum: 1 << 17, threads: threads) { range in
        var position = range.lowerBound
        while position < range.upperBound {
            let (o, within) = position.quotientAndRemainder(dividingBy: rowBytes)
            // The input block holding `within`: the last one starting at or before it.
            var t = 0
            while t + 1 < blocks.count, offsets[t + 1] <= within { t += 1 }
            let skip = within - offsets[t]
            let count = Swift.min(blocks[t] - skip, range.upperBound - position)
            (destination + position).copyMemory(from: tensors[t].storage.pointer + o * blocks[t] + skip, byteCount: count)
            position += count
        }
    }
    return out
}
