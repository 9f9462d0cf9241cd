#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import VesselKernels
import VesselKernelsAVX512
import VesselKernelsHaswell
import VesselTensor

/// Conversions between element types, used by `Cast` and by every kernel that computes in a
/// wider type.
enum Cast {
    /// Integer ↔ integer goes through Int64 (exact, wrapping like a C cast); everything else
    /// through Double. Strings are parsed and printed.
    static func convert(_ x: Tensor, to dtype: DType) -> Tensor {
        if x.dtype == dtype { return x }
        if dtype == .string {
            let values: [String]
            switch x.dtype {
            case .float32: values = x.scalars(as: Float.self).map(format)
            case .bool: values = x.scalars(as: Bool.self).map { $0 ? "1" : "0" }
            case _ where x.dtype.isFloatingPoint: values = x.doubles().map(format)
            default: values = x.doubles().map { String(Int64($0)) }
            }
            return Tensor(strings: values, shape: x.shape)
        }
        if x.dtype == .string {
            let values = x.strings.map { text -> Double in
                switch text.lowercased() {
                case "inf", "+inf", "infinity", "+infinity": return .infinity
                case "-inf", "-infinity": return -.infinity
                case "nan", "+nan", "-nan": return .nan
                default: return Double(text) ?? .nan
                }
            }
            return fromDoubles(values, dtype: dtype, shape: x.shape)
        }
        if isInteger(x.dtype), isInteger(dtype) {
            return fromInt64(x.visit(Int64Reader(tensor: x)), dtype: dtype, shape: x.shape)
        }
        if x.dtype == .float32, dtype == .float16 {
            return halves(x, to: .float16)
        }
        if x.dtype == .float32, dtype == .bfloat16 {
            return mapUnary(x, Float.self, BFloat16.self) { BFloat16($0) }
        }
        if x.dtype == .bfloat16, dtype == .float32 {
            return mapUnary(x, BFloat16.self, Float.self) { $0.floatValue }
        }
        if x.dtype == .float16, dtype == .float32 {
            return halves(x, to: .float32)
        }
        // What quantized models cast on every run (the integer products' sums), converted once
        // rounding to nearest, without the trip through Double.
        if dtype == .float32 {
            switch x.dtype {
            case .int32: return integersToFloat(x, Int32.self)
            case .int64: return integersToFloat(x, Int64.self)
            case .uint8: return integersToFloat(x, UInt8.self)
            case .int8: return integersToFloat(x, Int8.self)
            case .float64: return converted(x) { (s: UnsafePointer<Double>, d: UnsafeMutablePointer<Float>, n) in for i in 0..<n { d[i] = Float(s[i]) } }
            default: break
            }
        }
        return fromDoubles(x.doubles(), dtype: dtype, shape: x.shape)
    }

    /// float16 ↔ float32 through the kernels of this CPU (F16C on Haswell and later), split
    /// across the intra-op threads.
    static func halves(_ x: Tensor, to dtype: DType) -> Tensor {
        let conversions = halfConversions
        return dtype == .float32 ? converted(x, conversions.widen) : converted(x, conversions.narrow)
    }

    /// `HalfConversion.widen` and `narrow` in the CPU's kernel copy.
    static var halfConversions:
        (widen: (UnsafePointer<Float16>, UnsafeMutablePointer<Float>, Int) -> Void, narrow: (UnsafePointer<Float>, UnsafeMutablePointer<Float16>, Int) -> Void)
    {
        switch RowKernels.variant {
        case .avx512: (VesselKernelsAVX512.HalfConversion.widen, VesselKernelsAVX512.HalfConversion.narrow)
        case .haswell: (VesselKernelsHaswell.HalfConversion.widen, VesselKernelsHaswell.HalfConversion.narrow)
        case .baseline: (VesselKernels.HalfConversion.widen, VesselKernels.HalfConversion.narrow)
        }
    }

    /// An integer tensor as float32, `(value − zero) · scale` when given (DequantizeLinear's
    /// arithmetic, each step rounded once): a loop per chunk, not a closure per element, so the
    /// compiler vectorizes it.
    static func integersToFloat<S: BinaryInteger & TensorElement>(_ x: Tensor, _ type: S.Type, zero: Float = 0, scale: Float? = nil) -> Tensor {
        guard let scale else {
            return converted(x) { (s: UnsafePointer<S>, d: UnsafeMutablePointer<Float>, n) in for i in 0..<n { d[i] = Float(s[i]) } }
        }
        return converted(x) { (s: UnsafePointer<S>, d: UnsafeMutablePointer<Float>, n) in for i in 0..<n { d[i] = (Float(s[i]) - zero) * scale } }
    }

    /// `x` converted element by element by `kernel`, the elements split across the threads.
    static func converted<S: TensorElement, T: TensorElement>(_ x: Tensor, _ kernel: (UnsafePointer<S>, UnsafeMutablePointer<T>, Int) -> Void) -> Tensor {
        let out = Tensor(uninitialized: T.dtype, shape: x.shape)
        x.withUnsafeBufferPointer(as: S.self) { px in
            out.withUnsafeMutableBufferPointer(as: T.self) { po in
                Parallel.chunks(px.count, minimum: 65_536) { range in
                    kernel(px.baseAddress! + range.lowerBound, po.baseAddress! + range.lowerBound, range.count)
                }
            }
        }
        return out
    }

    /// `convert`, with Cast's options for the float8 targets: without `saturate` a value beyond
    /// the type's range becomes infinity or NaN instead of its largest value; E8M0 takes the
    /// exponent rounded by `rounding`.
    static func convert(_ x: Tensor, to dtype: DType, saturate: Bool, rounding: Float8E8M0.Rounding) -> Tensor {
        guard x.dtype != dtype, isNarrowFloat(dtype), x.dtype != .string else { return convert(x, to: dtype) }
        let floats = convert(x, to: .float32).scalars(as: Float.self)
        func encode<T: MiniFloatElement>(_ type: T.Type) -> Tensor { Tensor(floats.map { T($0, saturate: saturate) }, shape: x.shape) }
        switch dtype {
        case .float8e4m3fn: return encode(Float8E4M3FN.self)
        case .float8e4m3fnuz: return encode(Float8E4M3FNUZ.self)
        case .float8e5m2: return encode(Float8E5M2.self)
        case .float8e5m2fnuz: return encode(Float8E5M2FNUZ.self)
        case .float4e2m1: return encode(Float4E2M1.self)
        case .float8e8m0: return Tensor(floats.map { Float8E8M0($0, saturate: saturate, rounding: rounding) }, shape: x.shape)
        default: return convert(x, to: dtype)
        }
    }

    static func isInteger(_ dtype: DType) -> Bool {
        switch dtype {
        case .int8, .int16, .int32, .int64, .uint8, .uint16, .uint32, .uint64, .bool: true
        default: false
        }
    }

    /// Shortest text that reads back as the same float, as numpy prints it.
    static func format(_ value: Float) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "INF" : "-INF" }
        return "\(value)"
    }

    static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "INF" : "-INF" }
        return "\(value)"
    }

    static func fromDoubles(_ values: [Double], dtype: DType, shape: [Int]) -> Tensor {
        if dtype == .string { return Tensor(strings: values.map(format), shape: shape) }
        return Tensor.dispatch(dtype, DoublesWriter(values: values, shape: shape))
    }

    static func fromInt64(_ values: [Int64], dtype: DType, shape: [Int]) -> Tensor {
        switch dtype {
        case .int64: Tensor(values, shape: shape)
        case .int32: Tensor(values.map { Int32(truncatingIfNeeded: $0) }, shape: shape)
        case .int16: Tensor(values.map { Int16(truncatingIfNeeded: $0) }, shape: shape)
        case .int8: Tensor(values.map { Int8(truncatingIfNeeded: $0) }, shape: shape)
        case .uint64: Tensor(values.map { UInt64(bitPattern: $0) }, shape: shape)
        case .uint32: Tensor(values.map { UInt32(truncatingIfNeeded: $0) }, shape: shape)
        case .uint16: Tensor(values.map { UInt16(truncatingIfNeeded: $0) }, shape: shape)
        case .uint8: Tensor(values.map { UInt8(truncatingIfNeeded: $0) }, shape: shape)
        case .bool: Tensor(values.map { $0 != 0 }, shape: shape)
        default: fromDoubles(values.map(Double.init), dtype: dtype, shape: shape)
        }
    }

    struct DoublesWriter: DTypeVisitor {
        let values: [Double]
        let shape: [Int]
        func visit<T: TensorElement>(_ type: T.Type) -> Tensor { Tensor(values.map { T(fromDouble: $0) }, shape: shape) }
        func visitString() -> Tensor { Tensor(strings: values.map(Cast.format), shape: shape) }
    }

    struct Int64Reader: DTypeVisitor {
        let tensor: Tensor
        func visit<T: TensorElement>(_ type: T.Type) -> [Int64] {
            switch tensor.dtype {
            case .int64: tensor.scalars(as: Int64.self)
            case .uint64: tensor.scalars(as: UInt64.self).map { Int64(bitPattern: $0) }
            case .int32: tensor.scalars(as: Int32.self).map { Int64($0) }
            case .uint32: tensor.scalars(as: UInt32.self).map { Int64($0) }
            default: tensor.doubles().map { Int64($0) }
            }
        }
        func visitString() -> [Int64] { [] }
    }
}

/// Element selection with broadcasting, for `Where` and friends; works for every dtype.
enum Select {
    static func `where`(_ condition: Tensor, _ x: Tensor, _ y: Tensor) throws -> Tensor {
        let shape = try Broadcast.shape(condition.shape, x.shape, y.shape)
        let oc = Broadcast.offsets(from: condition.shape, to: shape)
        let ox = Broadcast.offsets(from: x.shape, to: shape), oy = Broadcast.offsets(from: y.shape, to: shape)
        let flags = condition.scalars(as: Bool.self)
        return gather(x, y, shape: shape) { position in flags[oc[position]] ? (true, ox[position]) : (false, oy[position]) }
    }

    /// Builds a tensor of `shape` whose element `i` is taken from `a` or `b` at the offset `pick`
    /// returns (true for `a`).
    static func gather(_ a: Tensor, _ b: Tensor, shape: [Int], _ pick: (Int) -> (Bool, Int)) -> Tensor {
        let count = Tensor.count(of: shape)
        if a.dtype == .string {
            return Tensor(
                strings: (0..<count).map {
                    let (first, offset) = pick($0); return first ? a.strings[offset] : b.strings[offset]
                }, shape: shape)
        }
        let size = a.dtype.byteSize!
        let out = Tensor(uninitialized: a.dtype, shape: shape)
        for position in 0..<count {
            let (first, offset) = pick(position)
            let source = (first ? a : b).storage.pointer + offset * size
            (out.storage.pointer + position * size).copyMemory(from: source, byteCount: size)
        }
        return out
    }
}
