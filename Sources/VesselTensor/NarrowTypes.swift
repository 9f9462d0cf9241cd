/// ONNX's 8-, 4- and 2-bit element types: the float8 formats (E4M3FN, E4M3FNUZ, E5M2,
/// E5M2FNUZ, and the E8M0 scale of the OCP microscaling formats), FLOAT4E2M1, and 4- and 2-bit
/// integers. In memory each element takes one byte — its bit pattern, or for the integers its
/// value — and ONNX's packing of the 4- and 2-bit ones (two or four to a byte, first element in
/// the low bits) is done where tensors are read (`Tensor.unpacking`).
///
/// Conversions follow the ONNX Cast specification: float8 rounds to nearest, ties to even;
/// with `saturate` (the default) a value beyond the largest finite one becomes that value,
/// without it infinity (E5M2) or NaN (the types without infinity). FLOAT4E2M1 always
/// saturates. The integers keep the low bits of the truncated value, as the reference does.
public struct MiniFloat: Sendable {
    public let exponentBits: Int
    public let mantissaBits: Int
    public let bias: Int
    public enum Specials: Sendable {
        /// IEEE: the all-ones exponent holds infinity (mantissa 0) and NaN (E5M2).
        case ieee
        /// No infinity; all ones (sign aside) is NaN (E4M3FN).
        case finite
        /// No infinity and no negative zero: 0x80 is NaN (the FNUZ types).
        case unsignedZero
        /// Neither infinity nor NaN (FLOAT4E2M1).
        case none
    }
    public let specials: Specials

    public static let e4m3fn = MiniFloat(exponentBits: 4, mantissaBits: 3, bias: 7, specials: .finite)
    public static let e4m3fnuz = MiniFloat(exponentBits: 4, mantissaBits: 3, bias: 8, specials: .unsignedZero)
    public static let e5m2 = MiniFloat(exponentBits: 5, mantissaBits: 2, bias: 15, specials: .ieee)
    public static let e5m2fnuz = MiniFloat(exponentBits: 5, mantissaBits: 2, bias: 16, specials: .unsignedZero)
    public static let e2m1 = MiniFloat(exponentBits: 2, mantissaBits: 1, bias: 1, specials: .none)

    var signBit: UInt8 { UInt8(1) << (exponentBits + mantissaBits) }
    var topExponent: Int { (1 << exponentBits) - 1 }

    /// The largest finite value's bits and value.
    var largest: (bits: UInt8, value: Double) {
        let mantissa = specials == .finite ? (1 << mantissaBits) - 2 : (1 << mantissaBits) - 1
        let exponent = specials == .ieee ? topExponent - 1 : topExponent
        let value = (1 + Double(mantissa) / Double(1 << mantissaBits)) * Double.pow2(exponent - bias)
        return (UInt8(exponent << mantissaBits | mantissa), value)
    }

    var nanBits: UInt8 {
        switch specials {
        case .ieee, .finite: UInt8((topExponent << mantissaBits) | ((1 << mantissaBits) - 1))
        case .unsignedZero: 0x80
        case .none: signBit  // FLOAT4E2M1 has no NaN: the reference gives negative zero
        }
    }

    public func decode(_ bits: UInt8) -> Float {
        let negative = bits & signBit != 0
        let exponent = Int(bits >> mantissaBits) & topExponent
        let mantissa = Int(bits) & ((1 << mantissaBits) - 1)
        switch specials {
        case .ieee where exponent == topExponent:
            return mantissa == 0 ? (negative ? -.infinity : .infinity) : .nan
        case .finite where exponent == topExponent && mantissa == (1 << mantissaBits) - 1:
            return .nan
        case .unsignedZero where bits == 0x80:
            return .nan
        default:
            break
        }
        let magnitude =
            exponent == 0
            ? Double(mantissa) * Double.pow2(1 - bias - mantissaBits)
            : (1 + Double(mantissa) / Double(1 << mantissaBits)) * Double.pow2(exponent - bias)
        return Float(negative ? -magnitude : magnitude)
    }

    public func encode(_ value: Float, saturate: Bool = true) -> UInt8 {
        if value.isNaN { return nanBits }
        let sign = value.sign == .minus ? signBit : 0
        // The FNUZ types have no negative zero (its pattern is NaN).
        let zero = specials == .unsignedZero ? 0 : sign
        let top = largest
        let overflow: UInt8 =
            saturate || specials == .none
            ? sign | top.bits
            : specials == .ieee ? sign | UInt8(topExponent << mantissaBits) : nanBits
        if value.isInfinite { return overflow }
        let magnitude = Double(value.magnitude)
        if magnitude == 0 { return zero }
        // Round to the grid of the value's binade (or the subnormal grid below the normals).
        let exponent = max(Int(magnitude.exponent), 1 - bias)
        let quantum = Double.pow2(exponent - mantissaBits)
        let rounded = (magnitude / quantum).rounded(.toNearestOrEven) * quantum
        if rounded > top.value { return overflow }
        if rounded == 0 { return zero }
        let roundedExponent = Int(rounded.exponent)
        if roundedExponent < 1 - bias {
            return sign | UInt8(rounded / Double.pow2(1 - bias - mantissaBits))
        }
        let mantissa = Int((rounded / Double.pow2(roundedExponent) - 1) * Double(1 << mantissaBits))
        return sign | UInt8(((roundedExponent + bias) << mantissaBits) | mantissa)
    }
}

extension Double {
    static func pow2(_ n: Int) -> Double { Double(sign: .plus, exponent: n, significand: 1) }
}

/// Declares a float8/float4 element: its bit pattern, converted through `format`.
public protocol MiniFloatElement: TensorElement {
    static var format: MiniFloat { get }
    var bits: UInt8 { get }
    init(bits: UInt8)
}

extension MiniFloatElement {
    public init(_ value: Float, saturate: Bool = true) { self.init(bits: Self.format.encode(value, saturate: saturate)) }
    public init(fromDouble value: Double) { self.init(Float(value)) }
    public var floatValue: Float { Self.format.decode(bits) }
    public var doubleValue: Double { Double(floatValue) }
}

public struct Float8E4M3FN: MiniFloatElement, Hashable {
    public var bits: UInt8
    public init(bits: UInt8) { self.bits = bits }
    public static var dtype: DType { .float8e4m3fn }
    public static var format: MiniFloat { .e4m3fn }
}

public struct Float8E4M3FNUZ: MiniFloatElement, Hashable {
    public var bits: UInt8
    public init(bits: UInt8) { self.bits = bits }
    public static var dtype: DType { .float8e4m3fnuz }
    public static var format: MiniFloat { .e4m3fnuz }
}

public struct Float8E5M2: MiniFloatElement, Hashable {
    public var bits: UInt8
    public init(bits: UInt8) { self.bits = bits }
    public static var dtype: DType { .float8e5m2 }
    public static var format: MiniFloat { .e5m2 }
}

public struct Float8E5M2FNUZ: MiniFloatElement, Hashable {
    public var bits: UInt8
    public init(bits: UInt8) { self.bits = bits }
    public static var dtype: DType { .float8e5m2fnuz }
    public static var format: MiniFloat { .e5m2fnuz }
}

public struct Float4E2M1: MiniFloatElement, Hashable {
    public var bits: UInt8
    public init(bits: UInt8) { self.bits = bits & 0x0F }
    public static var dtype: DType { .float4e2m1 }
    public static var format: MiniFloat { .e2m1 }
}

/// The E8M0 scale: 2^(bits − 127), 0xFF is NaN; no sign and no mantissa. From float32 the
/// exponent is taken and, by `round`, raised when there is a fraction ("up", the default),
/// rounded to nearest ("nearest") or left ("down"); saturation keeps 2^127 from becoming NaN.
public struct Float8E8M0: TensorElement, Hashable {
    public var bits: UInt8
    public init(bits: UInt8) { self.bits = bits }
    public static var dtype: DType { .float8e8m0 }

    public enum Rounding: String, Sendable { case up, down, nearest }

    public init(_ value: Float, saturate: Bool = true, rounding: Rounding = .up) {
        let raw = value.bitPattern
        var exponent = (raw >> 23) & 0xFF
        if exponent == 0xFF {
            bits = 0xFF
            return
        }
        let roundUp: Bool
        switch rounding {
        case .down: roundUp = false
        case .up: roundUp = raw & 0x7F_FFFF != 0
        case .nearest:
            let guardBit = raw & 0x40_0000 != 0, roundBit = raw & 0x20_0000 != 0, sticky = raw & 0x1F_FFFF != 0
            roundUp = guardBit && (roundBit || sticky || exponent > 0)
        }
        if roundUp && !(saturate && exponent == 0xFE) { exponent += 1 }
        bits = UInt8(truncatingIfNeeded: exponent)
    }

    public init(fromDouble value: Double) { self.init(Float(value)) }
    public var floatValue: Float { bits == 0xFF ? .nan : Float(Double.pow2(Int(bits) - 127)) }
    public var doubleValue: Double { Double(floatValue) }
}

/// A 4- or 2-bit integer held as its value in a byte.
public protocol NarrowInteger: TensorElement {
    static var bitWidth: Int { get }
    static var signed: Bool { get }
    var value: Int8 { get }
    init(value: Int8)
}

extension NarrowInteger {
    public static var range: ClosedRange<Int> { signed ? -(1 << (bitWidth - 1))...((1 << (bitWidth - 1)) - 1) : 0...((1 << bitWidth) - 1) }

    /// The element whose low `bitWidth` bits are those of `pattern`.
    public init(pattern: Int) {
        let mask = (1 << Self.bitWidth) - 1
        var low = pattern & mask
        if Self.signed && low > Self.range.upperBound { low -= 1 << Self.bitWidth }
        self.init(value: Int8(low))
    }

    /// Truncated toward zero, then wrapped to the width (values outside the range are
    /// undefined by the spec; this is what its reference implementation does).
    public init(fromDouble value: Double) {
        let whole: Int = value.isNaN ? 0 : value >= 9.2e18 ? Int.max : value <= -9.2e18 ? Int.min : Int(value)
        self.init(pattern: whole)
    }

    public var doubleValue: Double { Double(value) }
    /// The low `bitWidth` bits, as packed.
    public var pattern: UInt8 { UInt8(truncatingIfNeeded: Int(value)) & UInt8((1 << Self.bitWidth) - 1) }
}

public struct Int4: NarrowInteger, Hashable {
    public var value: Int8
    public init(value: Int8) { self.value = value }
    public static var dtype: DType { .int4 }
    public static var bitWidth: Int { 4 }
    public static var signed: Bool { true }
}

public struct UInt4: NarrowInteger, Hashable {
    public var value: Int8
    public init(value: Int8) { self.value = value }
    public static var dtype: DType { .uint4 }
    public static var bitWidth: Int { 4 }
    public static var signed: Bool { false }
}

public struct Int2: NarrowInteger, Hashable {
    public var value: Int8
    public init(value: Int8) { self.value = value }
    public static var dtype: DType { .int2 }
    public static var bitWidth: Int { 2 }
    public static var signed: Bool { true }
}

public struct UInt2: NarrowInteger, Hashable {
    public var value: Int8
    public init(value: Int8) { self.value = value }
    public static var dtype: DType { .uint2 }
    public static var bitWidth: Int { 2 }
    public static var signed: Bool { false }
}

extension Tensor {
    /// A tensor of a 4- or 2-bit type from ONNX's packed bytes (first element in the low bits).
    public static func unpacking(_ dtype: DType, shape: [Int], bytes: UnsafeRawBufferPointer) -> Tensor {
        let perByte = dtype.elementsPerByte
        precondition(perByte > 1, "\(dtype) is not packed")
        let tensor = Tensor(uninitialized: dtype, shape: shape)
        let count = tensor.count
        let destination = tensor.storage.pointer.assumingMemoryBound(to: UInt8.self)
        let width = 8 / perByte
        for index in 0..<count {
            let pattern = Int(bytes[index / perByte] >> UInt8((index % perByte) * width)) & ((1 << width) - 1)
            switch dtype {
            case .int4: destination[index] = UInt8(bitPattern: Int4(pattern: pattern).value)
            case .uint4: destination[index] = UInt8(bitPattern: UInt4(pattern: pattern).value)
            case .int2: destination[index] = UInt8(bitPattern: Int2(pattern: pattern).value)
            case .uint2: destination[index] = UInt8(bitPattern: UInt2(pattern: pattern).value)
            default: destination[index] = UInt8(pattern)  // FLOAT4E2M1: the pattern is the element
            }
        }
        return tensor
    }

    /// The elements of a 4- or 2-bit type packed as ONNX stores them.
    public func packedBytes() -> [UInt8] {
        let perByte = dtype.elementsPerByte
        precondition(perByte > 1, "\(dtype) is not packed")
        let source = storage.pointer.assumingMemoryBound(to: UInt8.self)
        let width = 8 / perByte
        var bytes = [UInt8](repeating: 0, count: (count + perByte - 1) / perByte)
        for index in 0..<count {
            bytes[index / perByte] |= (source[index] & UInt8((1 << width) - 1)) << UInt8((index % perByte) * width)
        }
        return bytes
    }
}
