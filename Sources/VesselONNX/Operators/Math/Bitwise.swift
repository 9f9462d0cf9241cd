#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import VesselTensor

/// Bitwise operators on unsigned and signed integers.
extension KernelRegistry {
    static func registerBitwise(_ r: inout KernelRegistry) {
        r.register("BitShift", since: 11, bitShiftKernel)
        r.register("BitwiseAnd", since: 18, integerBinaryKernel("BitwiseAnd") { $0 & $1 })
        r.register("BitwiseOr", since: 18, integerBinaryKernel("BitwiseOr") { $0 | $1 })
        r.register("BitwiseXor", since: 18, integerBinaryKernel("BitwiseXor") { $0 ^ $1 })
        r.register("BitwiseNot", since: 18, bitwiseNotKernel)
    }

    static func bitShiftKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
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

    static func bitwiseNotKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let a = try c.input(i, 0)
        guard Cast.isInteger(a.dtype), a.dtype != .bool else { throw c.invalid("BitwiseNot takes integers") }
        return [Cast.fromInt64(Cast.Int64Reader(tensor: a).visit(Int64.self).map { ~$0 }, dtype: a.dtype, shape: a.shape)]
    }

    static func integerBinaryKernel(_ name: String, _ f: @escaping @Sendable (UInt64, UInt64) -> UInt64) -> KernelFunction {
        { c, i in
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
}
