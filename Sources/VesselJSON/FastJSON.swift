#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// A JSON value as inference requests need it. Arrays of plain numbers — the bulk of a tensor
/// request, 150K of them for one 224×224 image — are kept as one `[Double]`, parsed with
/// `strtod` straight from the bytes, instead of one boxed object per element.
public indirect enum JSONValue: Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case numbers([Double])
    case array([JSONValue])
    case object([String: JSONValue])
    /// An object's members in file order, keys compared by their bytes: only from
    /// ``FastJSON/parse(_:exactKeys:)`` with `exactKeys` (a tokenizer's vocabulary holds `é` and
    /// `e` + U+0301 apart, which a `[String: _]` would merge).
    case members([(key: String, value: JSONValue)])

    public subscript(key: String) -> JSONValue? {
        switch self {
        case .object(let fields): return fields[key]
        case .members(let members): return members.first { $0.key.utf8.elementsEqual(key.utf8) }?.value
        default: return nil
        }
    }

    public var string: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    public var bool: Bool? {
        if case .bool(let flag) = self { return flag }
        return nil
    }

    public var number: Double? {
        if case .number(let value) = self { return value }
        return nil
    }

    /// The elements of an array (a number array's as `.number`s).
    public var elements: [JSONValue]? {
        switch self {
        case .array(let items): items
        case .numbers(let values): values.map { .number($0) }
        default: nil
        }
    }
}

extension JSONValue {
    /// From the shapes ``foundation`` gives (and documents built by hand: Int too).
    public init(foundation item: Any) {
        switch item {
        case let flag as Bool: self = .bool(flag)
        case let number as Double: self = .number(number)
        case let number as Int: self = .number(Double(number))
        case let text as String: self = .string(text)
        case let list as [Any]:
            let values = list.map(JSONValue.init(foundation:))
            if values.allSatisfy({ if case .number = $0 { true } else { false } }) {
                self = .numbers(values.map { if case .number(let v) = $0 { v } else { 0 } })
            } else {
                self = .array(values)
            }
        case let fields as [String: Any]: self = .object(fields.mapValues(JSONValue.init(foundation:)))
        default: self = .null
        }
    }
}

extension JSONValue {
    /// As plain values (Double, Bool, String, arrays, dictionaries; ``JSONNull``), for code
    /// written against JSONSerialization's shapes — with the numbers parsed exactly.
    public var foundation: Any {
        switch self {
        case .null: JSONNull()
        case .bool(let flag): flag
        case .number(let value): value
        case .string(let text): text
        case .numbers(let values): values as [Any]
        case .array(let items): items.map(\.foundation)
        case .object(let fields): fields.mapValues(\.foundation)
        case .members(let members): Dictionary(members.map { ($0.key, $0.value.foundation) }, uniquingKeysWith: { $1 })
        }
    }
}

/// JSON's `null` among ``JSONValue/foundation``'s values (NSNull is not in FoundationEssentials).
public struct JSONNull: Sendable {
    public init() {}
}

extension JSONValue: Encodable {
    /// Integral numbers are written without a fraction (`200`, not `200.0`).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let flag): try container.encode(flag)
        case .number(let value):
            if value == value.rounded(), Swift.abs(value) < 1e15 { try container.encode(Int64(value)) } else { try container.encode(value) }
        case .string(let text): try container.encode(text)
        case .numbers(let values): try container.encode(values.map(JSONValue.number))
        case .array(let items): try container.encode(items)
        case .object(let fields): try container.encode(fields)
        case .members(let members): try container.encode(Dictionary(members.map { ($0.key, $0.value) }, uniquingKeysWith: { $1 }))
        }
    }
}

/// A strict JSON parser (RFC 8259) over UTF-8 bytes.
public struct FastJSON {
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var offset: Int
        public var reason: String
        public var description: String { "\(reason) at byte \(offset)" }
    }

    private let bytes: UnsafeBufferPointer<UInt8>
    private var offset = 0
    private var depth = 0
    private var exactKeys = false

    public static func parse(_ data: ArraySlice<UInt8>, exactKeys: Bool = false) throws(Failure) -> JSONValue {
        // A NUL after the text lets strtod stop without reading past the end.
        var copy = Array(data)
        copy.append(0)
        return try copy.withUnsafeBufferPointer { buffer throws(Failure) -> JSONValue in
            var parser = FastJSON(bytes: UnsafeBufferPointer(rebasing: buffer[0..<buffer.count - 1]), base: buffer.baseAddress!)
            parser.exactKeys = exactKeys
            parser.skipSpace()
            let value = try parser.value()
            parser.skipSpace()
            guard parser.offset == parser.bytes.count else { throw Failure(offset: parser.offset, reason: "text after the JSON value") }
            return value
        }
    }

    private let base: UnsafePointer<UInt8>

    private init(bytes: UnsafeBufferPointer<UInt8>, base: UnsafePointer<UInt8>) {
        self.bytes = bytes
        self.base = base
    }

    private mutating func skipSpace() {
        while offset < bytes.count, bytes[offset] == 0x20 || bytes[offset] == 0x0A || bytes[offset] == 0x0D || bytes[offset] == 0x09 { offset += 1 }
    }

    private func fail(_ reason: String) -> Failure { Failure(offset: offset, reason: reason) }

    private mutating func value() throws(Failure) -> JSONValue {
        guard offset < bytes.count else { throw fail("unexpected end") }
        switch bytes[offset] {
        case UInt8(ascii: "{"): return try object()
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        default: return .number(try number())
        }
    }

    private mutating func literal(_ word: StaticString) throws(Failure) {
        let count = word.utf8CodeUnitCount
        guard offset + count <= bytes.count else { throw fail("unexpected end") }
        for k in 0..<count where bytes[offset + k] != word.utf8Start[k] { throw fail("unknown literal") }
        offset += count
    }

    private mutating func number() throws(Failure) -> Double {
        let start = offset
        // Validate JSON number syntax: -?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?
        // and gather the digits as an integer and a power of ten on the way.
        var negative = false
        if offset < bytes.count, bytes[offset] == UInt8(ascii: "-") { negative = true; offset += 1 }
        guard offset < bytes.count, isDigit(bytes[offset]) else { throw fail("not a JSON value") }
        var mantissa: UInt64 = 0
        var digits = 0  // significant digits in mantissa (leading zeros do not count)
        var exponent = 0
        @inline(__always) func take(_ byte: UInt8) {
            if digits < 19 {
                mantissa = mantissa &* 10 &+ UInt64(byte &- 0x30)
                if mantissa != 0 { digits += 1 }
            } else {
                digits += 1  // more than fit: strtod decides
            }
        }
        if bytes[offset] == UInt8(ascii: "0") {
            offset += 1
        } else {
            while offset < bytes.count, isDigit(bytes[offset]) {
                take(bytes[offset])
                offset += 1
            }
        }
        if offset < bytes.count, bytes[offset] == UInt8(ascii: ".") {
            offset += 1
            guard offset < bytes.count, isDigit(bytes[offset]) else { throw fail("digits must follow the decimal point") }
            while offset < bytes.count, isDigit(bytes[offset]) {
                take(bytes[offset])
                exponent -= 1
                offset += 1
            }
        }
        var exponentTooLong = false
        if offset < bytes.count, bytes[offset] == UInt8(ascii: "e") || bytes[offset] == UInt8(ascii: "E") {
            offset += 1
            var sign = 1
            if offset < bytes.count, bytes[offset] == UInt8(ascii: "+") || bytes[offset] == UInt8(ascii: "-") {
                if bytes[offset] == UInt8(ascii: "-") { sign = -1 }
                offset += 1
            }
            guard offset < bytes.count, isDigit(bytes[offset]) else { throw fail("digits must follow the exponent") }
            var written = 0
            while offset < bytes.count, isDigit(bytes[offset]) {
                if written < 6 { written = written * 10 + Int(bytes[offset] &- 0x30) } else { exponentTooLong = true }
                offset += 1
            }
            exponent += sign * written
        }
        // Clinger's fast path: an integer of at most 2^53 and a power of ten up to 10^22 are both
        // exact doubles, so one multiply or divide rounds once, as strtod does. Anything else
        // (more digits, far exponents) goes to strtod.
        if digits <= 19, !exponentTooLong {
            var value: Double?
            if mantissa == 0 {
                value = 0
            } else if mantissa <= 1 << 53, (-22...22).contains(exponent) {
                value = exponent < 0 ? Double(mantissa) / Self.powersOfTen[-exponent] : Double(mantissa) * Self.powersOfTen[exponent]
            } else if (-19...19).contains(exponent) {
                // 16 to 19 digits (a float32 printed to 17, Python's way): exact integer arithmetic.
                value = Self.scaled(mantissa, exponent)
            }
            if let value { return negative ? -value : value }
        }
        return (base + start).withMemoryRebound(to: CChar.self, capacity: offset - start + 1) { strtod($0, nil) }
    }

    /// 10^0 … 10^22, each exact in a Double.
    private static let powersOfTen: [Double] = (0...22).map { power in (0..<power).reduce(1.0) { value, _ in value * 10 } }
    /// 10^0 … 10^19, as integers.
    private static let integerPowersOfTen: [UInt64] = (0...19).map { power in (0..<power).reduce(1) { value, _ in value * 10 } }

    /// mantissa · 10^exponent rounded to the nearest double (ties to even), for mantissa > 0 and
    /// exponent in -19…19: the product, or a 64-bit quotient and whether a remainder is left, in
    /// 128-bit integer arithmetic, then rounded once.
    static func scaled(_ mantissa: UInt64, _ exponent: Int) -> Double {
        let power = integerPowersOfTen[Swift.abs(exponent)]
        if exponent >= 0 {
            let (high, low) = mantissa.multipliedFullWidth(by: power)
            if high == 0 { return Double(low) }  // one rounding, by the conversion
            let shift = high.leadingZeroBitCount
            let top = shift == 0 ? high : high << shift | low >> (64 - shift)
            let dropped = shift == 0 ? low : low << shift
            return rounded(top, sticky: dropped != 0, scale: 64 - shift)
        }
        // q = ⌊mantissa · 2^s / power⌋ with s chosen so that q has 63 or 64 bits.
        let s = 63 - power.leadingZeroBitCount + mantissa.leadingZeroBitCount
        let high: UInt64, low: UInt64
        switch s {
        case 0: (high, low) = (0, mantissa)
        case 1..<64: (high, low) = (mantissa >> (64 - s), mantissa << s)
        default: (high, low) = (mantissa << (s - 64), 0)
        }
        let (quotient, remainder) = power.dividingFullWidth((high, low))
        return rounded(quotient, sticky: remainder != 0, scale: -s)
    }

    /// (value + a fraction below it, nonzero when `sticky`) · 2^scale, rounded to 53 bits.
    private static func rounded(_ value: UInt64, sticky: Bool, scale: Int) -> Double {
        let zeros = value.leadingZeroBitCount
        let normalized = value << zeros
        var significand = normalized >> 11
        let rest = normalized & 0x7FF
        var exponent = scale - zeros + 11
        if rest > 0x400 || (rest == 0x400 && (sticky || significand & 1 == 1)) {
            significand += 1
            if significand == 1 << 53 {
                significand >>= 1
                exponent += 1
            }
        }
        return Double(sign: .plus, exponent: exponent, significand: Double(significand))
    }

    @inline(__always) private func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }

    private mutating func string() throws(Failure) -> String {
        offset += 1  // the opening quote
        let start = offset
        var plain = true
        while offset < bytes.count, bytes[offset] != UInt8(ascii: "\"") {
            if bytes[offset] == UInt8(ascii: "\\") { plain = false; offset += 1 } else if bytes[offset] < 0x20 { throw fail("control character in a string") }
            offset += 1
        }
        guard offset < bytes.count else { throw fail("unterminated string") }
        let raw = UnsafeBufferPointer(rebasing: bytes[start..<offset])
        offset += 1
        if plain { return String(decoding: raw, as: UTF8.self) }
        // Escapes are rare in requests: decode the string with Foundation.
        let quoted = [UInt8(ascii: "\"")] + Array(raw) + [UInt8(ascii: "\"")]
        guard let text = try? JSONDecoder().decode(String.self, from: Data(quoted)) else {
            throw fail("bad escape in a string")
        }
        return text
    }

    private mutating func array() throws(Failure) -> JSONValue {
        depth += 1
        defer { depth -= 1 }
        guard depth < 128 else { throw fail("nested too deeply") }
        offset += 1
        skipSpace()
        if offset < bytes.count, bytes[offset] == UInt8(ascii: "]") {
            offset += 1
            return .numbers([])
        }
        // All-number arrays (the tensor data) take the fast path.
        var numbers: [Double] = []
        var items: [JSONValue]?
        while true {
            skipSpace()
            guard offset < bytes.count else { throw fail("unterminated array") }
            let byte = bytes[offset]
            if items == nil, byte == UInt8(ascii: "-") || isDigit(byte) {
                numbers.append(try number())
            } else {
                if items == nil { items = numbers.map { .number($0) } }
                items!.append(try value())
            }
            skipSpace()
            guard offset < bytes.count else { throw fail("unterminated array") }
            if bytes[offset] == UInt8(ascii: ",") { offset += 1; continue }
            guard bytes[offset] == UInt8(ascii: "]") else { throw fail("expected , or ] in an array") }
            offset += 1
            return items.map { .array($0) } ?? .numbers(numbers)
        }
    }

    private mutating func object() throws(Failure) -> JSONValue {
        depth += 1
        defer { depth -= 1 }
        guard depth < 128 else { throw fail("nested too deeply") }
        offset += 1
        var fields: [String: JSONValue] = [:]
        var members: [(key: String, value: JSONValue)] = []
        skipSpace()
        if offset < bytes.count, bytes[offset] == UInt8(ascii: "}") {
            offset += 1
            return exactKeys ? .members([]) : .object(fields)
        }
        while true {
            skipSpace()
            guard offset < bytes.count, bytes[offset] == UInt8(ascii: "\"") else { throw fail("expected a key") }
            let key = try string()
            skipSpace()
            guard offset < bytes.count, bytes[offset] == UInt8(ascii: ":") else { throw fail("expected : after a key") }
            offset += 1
            skipSpace()
            if exactKeys { members.append((key, try value())) } else { fields[key] = try value() }
            skipSpace()
            guard offset < bytes.count else { throw fail("unterminated object") }
            if bytes[offset] == UInt8(ascii: ",") { offset += 1; continue }
            guard bytes[offset] == UInt8(ascii: "}") else { throw fail("expected , or } in an object") }
            offset += 1
            return exactKeys ? .members(members) : .object(fields)
        }
    }
}
