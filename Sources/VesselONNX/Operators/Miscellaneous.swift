#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import VesselTensor

extension KernelRegistry {
    static func registerMiscellaneous(_ r: inout KernelRegistry) {
        // Bitwise operators on unsigned and signed integers.
        func integerBinary(_ name: String, _ f: @escaping @Sendable (UInt64, UInt64) -> UInt64) {
            r.register(name, since: name == "BitShift" ? 11 : 18) { c, i in
                let a = try c.input(i, 0), b = try c.input(i, 1)
                guard a.dtype == b.dtype, Cast.isInteger(a.dtype), a.dtype != .bool else { throw c.invalid("\(name) takes two integer inputs of one type") }
                let width = UInt64(a.dtype.byteSize! * 8)
                let mask: UInt64 = width == 64 ? .max : (1 << width) - 1
                let shape = try Broadcast.shape(a.shape, b.shape)
                let x = Cast.Int64Reader(tensor: a).visit(Int64.self), y = Cast.Int64Reader(tensor: b).visit(Int64.self)
                let ox = Broadcast.offsets(from: a.shape, to: shape), oy = Broadcast.offsets(from: b.shape, to: shape)
                let values = (0..<Tensor.count(of: shape)).map { k -> Int64 in
                    Int64(bitPattern: f(UInt64(bitPattern: x[ox[k]]) & mask, UInt64(bitPattern: y[oy[k]]) & mask) & mask)
                }
                return [Cast.fromInt64(values, dtype: a.dtype, shape: shape)]
            }
        }
        r.register("BitShift", since: 11) { c, i in
            let a = try c.input(i, 0), b = try c.input(i, 1)
            guard a.dtype == b.dtype, Cast.isInteger(a.dtype), a.dtype != .bool else { throw c.invalid("BitShift takes two integer inputs of one type") }
            let left = try c.attributes.required("direction", c.attributes.string) == "LEFT"
            let signed = [.int8, .int16, .int32, .int64].contains(a.dtype)
            let width = Int64(a.dtype.byteSize! * 8)
            let mask: UInt64 = width == 64 ? .max : (1 << UInt64(width)) - 1
            let shape = try Broadcast.shape(a.shape, b.shape)
            let x = Cast.Int64Reader(tensor: a).visit(Int64.self), y = Cast.Int64Reader(tensor: b).visit(Int64.self)
            let ox = Broadcast.offsets(from: a.shape, to: shape), oy = Broadcast.offsets(from: b.shape, to: shape)
            let values = (0..<Tensor.count(of: shape)).map { k -> Int64 in
                let value = x[ox[k]], amount = y[oy[k]]
                if signed {
                    // Opset 28: arithmetic right shift; an amount < 0 or ≥ the width shifts
                    // everything out (−1 for a negative input on the right, 0 otherwise).
                    guard amount >= 0, amount < width else { return !left && value < 0 ? -1 : 0 }
                    return left ? value << amount : value >> amount  // truncated to the width below
                }
                let unsignedValue = UInt64(bitPattern: value) & mask, unsignedAmount = UInt64(bitPattern: amount) & mask
                guard unsignedAmount < UInt64(width) else { return 0 }
                return Int64(bitPattern: (left ? unsignedValue << unsignedAmount : unsignedValue >> unsignedAmount) & mask)
            }
            return [Cast.fromInt64(values, dtype: a.dtype, shape: shape)]
        }
        integerBinary("BitwiseAnd") { $0 & $1 }
        integerBinary("BitwiseOr") { $0 | $1 }
        integerBinary("BitwiseXor") { $0 ^ $1 }
        r.register("BitwiseNot", since: 18) { c, i in
            let a = try c.input(i, 0)
            guard Cast.isInteger(a.dtype), a.dtype != .bool else { throw c.invalid("BitwiseNot takes integers") }
            return [Cast.fromInt64(Cast.Int64Reader(tensor: a).visit(Int64.self).map { ~$0 }, dtype: a.dtype, shape: a.shape)]
        }
        r.register("CumProd", since: 26) { c, i in [try cumulative(c, i, identity: 1, *)] }
        r.register("LpNormalization") { c, i in
            let x = try c.input(i, 0)
            let axis = try normalizeAxis(c.attributes.int("axis", default: -1), rank: x.rank, c)
            let p = c.attributes.int("p", default: 2)
            guard p == 1 || p == 2 else { throw c.invalid("p must be 1 or 2") }
            let moved = transposeToLast(x.shape, axis: axis)
            var values = x.doubles()
            let size = x.shape[axis]
            for start in stride(from: 0, to: moved.offsets.count, by: Swift.max(size, 1)) {
                let offsets = moved.offsets[start..<(start + size)]
                let norm = p == 1 ? offsets.reduce(0) { $0 + Swift.abs(values[$1]) } : offsets.reduce(0) { $0 + values[$1] * values[$1] }.squareRoot()
                for offset in offsets { values[offset] = norm == 0 ? 0 : values[offset] / norm }
            }
            return [Cast.fromDoubles(values, dtype: x.dtype, shape: x.shape)]
        }
        r.register("RMSNormalization", since: 23) { c, i in
            let x = try c.input(i, 0), scale = try c.input(i, 1)
            let axis = try normalizeAxis(c.attributes.int("axis", default: -1), rank: x.rank, c)
            let epsilon = Double(c.attributes.float("epsilon", default: 1e-5))
            let normalizedShape = Array(x.shape[axis...])
            let inner = normalizedShape.reduce(1, *)
            guard (try? Broadcast.shape(scale.shape, normalizedShape)) == normalizedShape else {
                throw c.invalid("scale has shape \(scale.shape), which does not broadcast to the normalized shape \(normalizedShape)")
            }
            let gains = scale.take(Broadcast.offsets(from: scale.shape, to: normalizedShape), shape: normalizedShape).doubles()
            var values = x.doubles()
            for row in 0..<(x.count / Swift.max(inner, 1)) {
                let range = (row * inner)..<((row + 1) * inner)
                let meanSquare = values[range].reduce(0) { $0 + $1 * $1 } / Double(inner)
                let inverse = 1 / (meanSquare + epsilon).squareRoot()
                for (k, index) in range.enumerated() { values[index] = values[index] * inverse * gains[k] }
            }
            return [Cast.fromDoubles(values, dtype: x.dtype, shape: x.shape)]
        }
        r.register("Swish", since: 24) { c, i in
            let alpha = Double(c.attributes.float("alpha", default: 1))
            return [try activation(c.input(i, 0), c) { $0 / (1 + Libm.exp(-alpha * $0)) }]
        }
        r.register("EyeLike", since: 9) { c, i in
            let x = try c.input(i, 0)
            guard x.rank == 2 else { throw c.invalid("EyeLike takes a 2-D input") }
            let k = c.attributes.int("k", default: 0)
            let dtype = c.attributes.int("dtype").flatMap { ONNXDataType.dtype(Int32(clamping: $0)) } ?? x.dtype
            let (rows, columns) = (x.shape[0], x.shape[1])
            let values = (0..<(rows * columns)).map { index -> Double in index % columns - index / columns == k ? 1 : 0 }
            return [Cast.fromDoubles(values, dtype: dtype, shape: x.shape)]
        }
        r.register("Compress", since: 9) { c, i in
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
        r.register("ReverseSequence", since: 10) { c, i in
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
    }
}
