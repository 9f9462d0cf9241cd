#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import RealModule
import VesselTensor

/// For a reduction over `axes`, the output shape (with kept dims) and, for each input element,
/// the output element it folds into.
func reductionMap(_ shape: [Int], axes: Set<Int>) -> (kept: [Int], targets: [Int]) {
    let kept = shape.enumerated().map { axes.contains($0.offset) ? 1 : $0.element }
    let keptStrides = Tensor.strides(of: kept)
    let steps = shape.indices.map { axes.contains($0) ? 0 : keptStrides[$0] }
    return (kept, stridedOffsets(shape: shape, base: 0, steps: steps))
}

/// The axes a Reduce* node reduces: attribute before the opset where they became an input.
func reductionAxes(_ c: KernelContext, _ i: [Tensor?], rank: Int, inputSince: Int) throws -> Set<Int>? {
    let list: [Int]?
    if c.opset >= inputSince {
        list = i.count > 1 ? i[1]?.integers() : nil
    } else {
        list = c.attributes.ints("axes")
    }
    guard let list, !list.isEmpty else {
        if c.attributes.int("noop_with_empty_axes", default: 0) == 1 { return nil }
        return Set(0..<rank)
    }
    return Set(try list.map { try normalizeAxis($0, rank: rank, c) })
}

extension KernelRegistry {
    static func registerReductions(_ r: inout KernelRegistry) {
        r.register("ReduceSum", reductionKernel(inputSince: 13, initial: 0, +))
        r.register("ReduceMean", reductionKernel(inputSince: 18, initial: 0, finish: { $1 == 0 ? .nan : $0 / Double($1) }, +))
        r.register("ReduceMax", reductionKernel(inputSince: 18, initial: -.infinity) { $0.isNaN || $1.isNaN ? .nan : Swift.max($0, $1) })
        r.register("ReduceMin", reductionKernel(inputSince: 18, initial: .infinity) { $0.isNaN || $1.isNaN ? .nan : Swift.min($0, $1) })
        r.register("ReduceProd", reductionKernel(inputSince: 18, initial: 1, *))
        r.register("ReduceL1", reductionKernel(inputSince: 18, initial: 0) { $0 + Swift.abs($1) })
        r.register("ReduceL2", reductionKernel(inputSince: 18, initial: 0, finish: { v, _ in v.squareRoot() }) { $0 + $1 * $1 })
        r.register("ReduceSumSquare", reductionKernel(inputSince: 18, initial: 0) { $0 + $1 * $1 })
        r.register("ReduceLogSum", reductionKernel(inputSince: 18, initial: 0, finish: { v, _ in Double.log(v) }, +))
        r.register("ReduceLogSumExp", reductionKernel(inputSince: 18, initial: 0, finish: { v, _ in Double.log(v) }) { $0 + Double.exp($1) })
        r.register("Softmax", softmaxFamilyKernel("Softmax", softmaxRow))
        r.register("LogSoftmax", softmaxFamilyKernel("LogSoftmax", logSoftmaxRow))
        r.register("Hardmax", softmaxFamilyKernel("Hardmax", hardmaxRow))
        r.register("ArgMax", argExtremeKernel("ArgMax") { $0 > $1 })
        r.register("ArgMin", argExtremeKernel("ArgMin") { $0 < $1 })
        r.register("TopK", topKKernel)
        r.register("CumSum", since: 11, cumSumKernel)
        r.register("CumProd", since: 26, cumProdKernel)
    }

    static func cumProdKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] { [try cumulative(c, i, identity: 1, *)] }

    /// A reduction over `axes` (an attribute before opset `inputSince`, an input from it on), in Double.
    static func reductionKernel(
        inputSince: Int, initial: Double, finish: @escaping @Sendable (Double, Int) -> Double = { v, _ in v },
        _ combine: @escaping @Sendable (Double, Double) -> Double
    ) -> KernelFunction {
        return { c, i in
            let x = try c.input(i, 0)
            guard let axes = try reductionAxes(c, i, rank: x.rank, inputSince: inputSince) else { return [x] }
            let (kept, targets) = reductionMap(x.shape, axes: axes)
            let outCount = Tensor.count(of: kept)
            var accumulators = [Double](repeating: initial, count: outCount)
            let values = x.doubles()
            for (index, target) in targets.enumerated() { accumulators[target] = combine(accumulators[target], values[index]) }
            let reduced = axes.reduce(1) { $0 * x.shape[$1] }
            let keepDims = c.attributes.int("keepdims", default: 1) == 1
            let shape = keepDims ? kept : x.shape.enumerated().filter { !axes.contains($0.offset) }.map(\.element)
            var results = accumulators.map { finish($0, reduced) }
            // Over an empty set Max/Min give ∓∞; for bool that is false/true, not "nonzero".
            if x.dtype == .bool { results = results.map { $0 == -.infinity ? 0 : ($0 == .infinity ? 1 : $0) } }
            return [Cast.fromDoubles(results, dtype: x.dtype, shape: shape)]
        }
    }

    /// Softmax, LogSoftmax and Hardmax: `apply` normalizes one row in Double where the vectorized float32 kernel does not serve.
    static func softmaxFamilyKernel(_ name: String, _ apply: @escaping @Sendable (inout ArraySlice<Double>) -> Void) -> KernelFunction {
        return { c, i in
            let x = try c.input(i, 0)
            guard x.dtype.isFloatingPoint else { throw c.invalid("\(name) needs floating point") }
            let legacy = c.opset < 13
            let axis = try normalizeAxis(c.attributes.int("axis", default: legacy ? 1 : -1), rank: x.rank, c)
            // Float32 rows that are contiguous (the last axis, or everything after `axis`
            // before opset 13): the vectorized, threaded kernel.
            if x.dtype == .float32, name != "Hardmax", legacy || axis == x.rank - 1, x.rank > 0 {
                let size = legacy ? x.shape[axis...].reduce(1, *) : x.shape[axis]
                let out = Tensor(uninitialized: .float32, shape: x.shape)
                if x.count > 0 {
                    x.withUnsafeBufferPointer(as: Float.self) { input in
                        out.withUnsafeMutableBufferPointer(as: Float.self) { output in
                            RowKernels.softmax(
                                input.baseAddress!, output.baseAddress!, rows: x.count / Swift.max(size, 1), size: size,
                                log: name == "LogSoftmax")
                        }
                    }
                }
                return [out]
            }
            var values = x.doubles()
            if legacy {
                // Before opset 13 the input is coerced to 2-D at `axis`.
                let inner = x.shape[axis...].reduce(1, *)
                for start in stride(from: 0, to: values.count, by: Swift.max(inner, 1)) {
                    apply(&values[start..<(start + inner)])
                }
            } else {
                let moved = transposeToLast(x.shape, axis: axis)
                var permuted = moved.offsets.map { values[$0] }
                let size = x.shape[axis]
                for start in stride(from: 0, to: permuted.count, by: Swift.max(size, 1)) {
                    apply(&permuted[start..<(start + size)])
                }
                for (index, offset) in moved.offsets.enumerated() { values[offset] = permuted[index] }
            }
            return [Cast.fromDoubles(values, dtype: x.dtype, shape: x.shape)]
        }
    }

    static func softmaxRow(_ row: inout ArraySlice<Double>) {
        let peak = row.max() ?? 0
        var sum = 0.0
        for index in row.indices { row[index] = Double.exp(row[index] - peak); sum += row[index] }
        for index in row.indices { row[index] /= sum }
    }

    static func logSoftmaxRow(_ row: inout ArraySlice<Double>) {
        let peak = row.max() ?? 0
        let sum = row.reduce(0) { $0 + Double.exp($1 - peak) }
        let log = Double.log(sum)
        for index in row.indices { row[index] = row[index] - peak - log }
    }

    static func hardmaxRow(_ row: inout ArraySlice<Double>) {
        guard let first = row.indices.first else { return }
        var best = first
        for index in row.indices where row[index] > row[best] { best = index }
        for index in row.indices { row[index] = index == best ? 1 : 0 }
    }

    /// ArgMax and ArgMin: `better` says whether a candidate beats the current extreme.
    static func argExtremeKernel(_ name: String, _ better: @escaping @Sendable (Double, Double) -> Bool) -> KernelFunction {
        return { c, i in
            let x = try c.input(i, 0)
            let axis = try normalizeAxis(c.attributes.int("axis", default: 0), rank: x.rank, c)
            let last = c.attributes.int("select_last_index", default: 0) == 1
            let moved = transposeToLast(x.shape, axis: axis)
            let values = x.doubles()
            let size = x.shape[axis]
            // An empty axis has no extreme to index (onnxruntime refuses it too); an empty
            // tensor along another axis gives an empty result.
            guard size > 0 || x.count == 0 && x.shape.enumerated().contains(where: { $0.offset != axis && $0.element == 0 }) else {
                throw c.invalid("axis \(axis) of shape \(x.shape) is empty: there is no \(name == "ArgMax" ? "maximum" : "minimum") to index")
            }
            var result: [Int64] = []
            for start in stride(from: 0, to: moved.offsets.count, by: Swift.max(size, 1)) {
                var best = 0
                for k in 1..<Swift.max(size, 1) {
                    let candidate = values[moved.offsets[start + k]], current = values[moved.offsets[start + best]]
                    if better(candidate, current) || (last && candidate == current) { best = k }
                }
                result.append(Int64(best))
            }
            var shape = x.shape
            if c.attributes.int("keepdims", default: 1) == 1 { shape[axis] = 1 } else { shape.remove(at: axis) }
            // `moved` iterates the other axes in their order, so the results are already row-major.
            return [Tensor(result, shape: shape)]
        }
    }

    static func topKKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let x = try c.input(i, 0)
        let k = c.opset >= 10 ? Int(try c.input(i, 1).integers()[0]) : try c.attributes.required("k", c.attributes.int)
        let axis = try normalizeAxis(c.attributes.int("axis", default: -1), rank: x.rank, c)
        let largest = c.attributes.int("largest", default: 1) == 1
        let size = x.shape[axis]
        guard k >= 0, k <= size else { throw c.invalid("k = \(k) is out of range for axis of size \(size)") }
        let moved = transposeToLast(x.shape, axis: axis)
        let values = x.doubles()
        var outShape = x.shape
        outShape[axis] = k
        var topValues: [Double] = [], topIndices: [Int64] = []
        for start in stride(from: 0, to: moved.offsets.count, by: Swift.max(size, 1)) {
            let order = (0..<size).sorted { p, q in
                let a = values[moved.offsets[start + p]], b = values[moved.offsets[start + q]]
                if a == b { return p < q }
                return largest ? a > b : a < b
            }
            for index in order.prefix(k) {
                topValues.append(values[moved.offsets[start + index]])
                topIndices.append(Int64(index))
            }
        }
        // Results were produced with `axis` last; move it back.
        let back = transposeFromLast(outShape, axis: axis)
        return [
            Cast.fromDoubles(back.map { topValues[$0] }, dtype: x.dtype, shape: outShape),
            Tensor(back.map { topIndices[$0] }, shape: outShape)
        ]
    }

    static func cumSumKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] { [try cumulative(c, i, identity: 0, +)] }
}

/// CumSum and CumProd: a running combination along the axis given as input 1, inclusive or
/// exclusive, forward or reversed.
func cumulative(_ c: KernelContext, _ i: [Tensor?], identity: Double, _ combine: (Double, Double) -> Double) throws -> Tensor {
    let x = try c.input(i, 0)
    let axis = try normalizeAxis(try c.input(i, 1).integers()[0], rank: x.rank, c)
    let exclusive = c.attributes.int("exclusive", default: 0) == 1, reverse = c.attributes.int("reverse", default: 0) == 1
    let moved = transposeToLast(x.shape, axis: axis)
    let original = x.doubles()
    var values = original
    let size = x.shape[axis]
    for start in stride(from: 0, to: moved.offsets.count, by: Swift.max(size, 1)) {
        var running = identity
        for step in 0..<size {
            let offset = moved.offsets[start + (reverse ? size - 1 - step : step)]
            if exclusive {
                values[offset] = running
                running = combine(running, original[offset])
            } else {
                running = combine(running, original[offset])
                values[offset] = running
            }
        }
    }
    return Cast.fromDoubles(values, dtype: x.dtype, shape: x.shape)
}

/// The offsets of a tensor's elements visited with `axis` moved last (other axes in order).
func transposeToLast(_ shape: [Int], axis: Int) -> (shape: [Int], offsets: [Int]) {
    let perm = shape.indices.filter { $0 != axis } + [axis]
    let strides = Tensor.strides(of: shape)
    let movedShape = perm.map { shape[$0] }
    return (movedShape, stridedOffsets(shape: movedShape, base: 0, steps: perm.map { strides[$0] }))
}

/// For a tensor of `shape`, the index into a buffer laid out with `axis` last, of each element
/// in row-major order.
func transposeFromLast(_ shape: [Int], axis: Int) -> [Int] {
    let perm = shape.indices.filter { $0 != axis } + [axis]
    let movedShape = perm.map { shape[$0] }
    let movedStrides = Tensor.strides(of: movedShape)
    var steps = [Int](repeating: 0, count: shape.count)
    for (position, original) in perm.enumerated() { steps[original] = movedStrides[position] }
    return stridedOffsets(shape: shape, base: 0, steps: steps)
}
