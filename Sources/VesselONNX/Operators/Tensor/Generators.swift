#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import VesselTensor

/// Operators that make a tensor from attributes or sizes.
extension KernelRegistry {
    static func registerGenerators(_ r: inout KernelRegistry) {
        r.register("Constant", constantKernel)
        r.register("ConstantOfShape", since: 9, constantOfShapeKernel)
        r.register("Range", since: 11, rangeKernel)
        r.register("OneHot", since: 9, oneHotKernel)
        r.register("EyeLike", since: 9, eyeLikeKernel)
    }

    static func constantKernel(_ c: KernelContext, _: [Tensor?]) throws -> [Tensor] {
        let a = c.attributes
        if let tensor = a.tensor("value") { return [tensor] }
        if let value = a.float("value_float"), case .float? = a.values["value_float"] { return [Tensor(scalar: value)] }
        if let values = a.floats("value_floats") { return [Tensor(values, shape: [values.count])] }
        if let value = a.int("value_int") { return [Tensor(scalar: Int64(value))] }
        if let values = a.ints("value_ints") { return [Tensor(values.map { Int64($0) }, shape: [values.count])] }
        if let value = a.string("value_string") { return [Tensor(strings: [value], shape: [])] }
        if let values = a.strings("value_strings") { return [Tensor(strings: values, shape: [values.count])] }
        throw c.invalid("no value attribute (sparse constants are not supported)")
    }

    static func constantOfShapeKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let shape = try c.input(i, 0).integers()
        let value = c.attributes.tensor("value") ?? Tensor(scalar: Float(0))
        try c.checkAllocation(value.dtype, shape)
        let count = Tensor.count(of: shape)
        return [value.take([Int](repeating: 0, count: count), shape: shape)]
    }

    static func rangeKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let start = try c.input(i, 0), limit = try c.input(i, 1), delta = try c.input(i, 2)
        guard start.count == 1, limit.count == 1, delta.count == 1 else { throw c.invalid("start, limit and delta must be scalars") }
        let s = start.doubles()[0], l = limit.doubles()[0], d = delta.doubles()[0]
        let steps = ((l - s) / d).rounded(.up)
        guard steps.isFinite, steps < Double(Tensor.maximumBytes) else { throw c.invalid("range of \(steps) elements") }
        let count = Int(Swift.max(0, steps))
        try c.checkAllocation(start.dtype, [count])
        if Cast.isInteger(start.dtype) {
            guard abs(s) < 9.2e18, abs(d) < 9.2e18 else { throw c.invalid("start \(s) or delta \(d) does not fit a 64-bit integer") }
            let si = Int64(s), di = Int64(d)
            return [Cast.fromInt64((0..<count).map { si + Int64($0) * di }, dtype: start.dtype, shape: [count])]
        }
        return [Cast.fromDoubles((0..<count).map { s + Double($0) * d }, dtype: start.dtype, shape: [count])]
    }

    static func oneHotKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let indices = try c.input(i, 0), depthTensor = try c.input(i, 1), values = try c.input(i, 2)
        guard depthTensor.count == 1, let depthValue = depthTensor.doubles().first, depthValue.isFinite,
            depthValue >= 1, depthValue < Double(Tensor.maximumBytes)
        else {
            throw c.invalid("depth must be one positive number, not \(depthTensor.doubles().prefix(4))")
        }
        let depth = Int(depthValue)
        guard values.count >= 2 else { throw c.invalid("values must hold the off and on values") }
        let axis = try normalizeAxis(c.attributes.int("axis", default: -1), rank: indices.rank + 1, c)
        let shape = Array(indices.shape[..<axis]) + [depth] + Array(indices.shape[axis...])
        try c.checkAllocation(values.dtype, shape)
        let inner = indices.shape[axis...].reduce(1, *)
        let flat = indices.doubles()
        let offValue = values.take([0], shape: [1]), onValue = values.take([1], shape: [1])
        return [
            Select.gather(onValue, offValue, shape: shape) { position in
                let outer = position / (depth * inner), d = (position / inner) % depth, rest = position % inner
                let raw = flat[outer * inner + rest]
                guard raw.isFinite, abs(raw) < 9.2e18 else { return (false, 0) }
                var index = Int(raw)
                if index < 0 { index += depth }
                return (index == d, 0)
            }
        ]
    }

    static func eyeLikeKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let x = try c.input(i, 0)
        guard x.rank == 2 else { throw c.invalid("EyeLike takes a 2-D input") }
        let k = c.attributes.int("k", default: 0)
        let dtype = c.attributes.int("dtype").flatMap { ONNXDataType.dtype(Int32(clamping: $0)) } ?? x.dtype
        let (rows, columns) = (x.shape[0], x.shape[1])
        let values = (0..<(rows * columns)).map { index -> Double in index % columns - index / columns == k ? 1 : 0 }
        return [Cast.fromDoubles(values, dtype: dtype, shape: x.shape)]
    }
}
