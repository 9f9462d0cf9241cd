/// A Swift type that is the element of a tensor of some `DType`.
public protocol TensorElement: Sendable {
    static var dtype: DType { get }
    /// Converting through Double is exact for every type but 64-bit integers beyond 2^53, which
    /// `Cast` handles separately.
    init(fromDouble value: Double)
    var doubleValue: Double { get }
}

extension Float: TensorElement {
    public static var dtype: DType { .float32 }
    public init(fromDouble value: Double) { self = Float(value) }
    public var doubleValue: Double { Double(self) }
}

extension Double: TensorElement {
    public static var dtype: DType { .float64 }
    public init(fromDouble value: Double) { self = value }
    public var doubleValue: Double { self }
}

extension Float16: TensorElement {
    public static var dtype: DType { .float16 }
    public init(fromDouble value: Double) { self = Float16(Float(value)) }
    public var doubleValue: Double { Double(Float(self)) }
}

/// bfloat16: the top 16 bits of a float32. Stored as its bits; converted with round-to-nearest-even.
public struct BFloat16: TensorElement, Hashable {
    public var bits: UInt16

    public init(bits: UInt16) { self.bits = bits }

    public init(_ value: Float) {
        if value.isNaN {
            bits = 0x7fc0
            return
        }
        let raw = value.bitPattern
        let rounding = UInt32(0x7fff) + ((raw >> 16) & 1)
        bits = UInt16(truncatingIfNeeded: (raw &+ rounding) >> 16)
    }

    public var floatValue: Float { Float(bitPattern: UInt32(bits) << 16) }

    public static var dtype: DType { .bfloat16 }
    public init(fromDouble value: Double) { self.init(Float(value)) }
    public var doubleValue: Double { Double(floatValue) }
}

/// Integer conversion from Double: truncates toward zero like C, saturating out of range
/// (NaN becomes 0) instead of trapping.
@inline(__always)
func saturating<I: FixedWidthInteger>(_ value: Double) -> I {
    if value.isNaN { return 0 }
    if value <= Double(I.min) { return I.min }
    if value >= Double(I.max) { return I.max }
    return I(value)
}

extension Int8: TensorElement {
    public static var dtype: DType { .int8 }
    public init(fromDouble value: Double) { self = saturating(value) }
    public var doubleValue: Double { Double(self) }
}

extension Int16: TensorElement {
    public static var dtype: DType { .int16 }
    public init(fromDouble value: Double) { self = saturating(value) }
    public var doubleValue: Double { Double(self) }
}

extension Int32: TensorElement {
    public static var dtype: DType { .int32 }
    public init(fromDouble value: Double) { self = saturating(value) }
    public var doubleValue: Double { Double(self) }
}

extension Int64: TensorElement {
    public static var dtype: DType { .int64 }
    public init(fromDouble value: Double) { self = saturating(value) }
    public var doubleValue: Double { Double(self) }
}

extension UInt8: TensorElement {
    public static var dtype: DType { .uint8 }
    public init(fromDouble value: Double) { self = saturating(value) }
    public var doubleValue: Double { Double(self) }
}

extension UInt16: TensorElement {
    public static var dtype: DType { .uint16 }
    public init(fromDouble value: Double) { self = saturating(value) }
    public var doubleValue: Double { Double(self) }
}

extension UInt32: TensorElement {
    public static var dtype: DType { .uint32 }
    public init(fromDouble value: Double) { self = saturating(value) }
    public var doubleValue: Double { Double(self) }
}

extension UInt64: TensorElement {
    public static var dtype: DType { .uint64 }
    public init(fromDouble value: Double) { self = saturating(value) }
    public var doubleValue: Double { Double(self) }
}

extension Bool: TensorElement {
    public static var dtype: DType { .bool }
    public init(fromDouble value: Double) { self = value != 0 }
    public var doubleValue: Double { self ? 1 : 0 }
}
