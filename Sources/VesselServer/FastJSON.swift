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
indirect enum JSONValue: Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case numbers([Double])
    case array([JSONValue])
    case object([String: JSONValue])

    subscript(key: String) -> JSONValue? {
        if case .object(let fields) = self { return fields[key] }
        return nil
    }

    var string: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    var bool: Bool? {
        if case .bool(let flag) = self { return flag }
        return nil
    }

    var number: Double? {
        if case .number(let value) = self { return value }
        return nil
    }

    /// The elements of an array (a number array's as `.number`s).
    var elements: [JSONValue]? {
        switch self {
        case .array(let items): items
        case .numbers(let values): values.map { .number($0) }
        default: nil
        }
    }
}

extension JSONValue {
    /// From the shapes ``foundation`` gives (and documents built by hand: Int too).
    init(foundation item: Any) {
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
    var foundation: Any {
        switch self {
        case .null: JSONNull()
        case .bool(let flag): flag
        case .number(let value): value
        case .string(let text): text
        case .numbers(let values): values as [Any]
        case .array(let items): items.map(\.foundation)
        case .object(let fields): fields.mapValues(\.foundation)
        }
    }
}

/// JSON's `null` among ``JSONValue/foundation``'s values (NSNull is not in FoundationEssentials).
struct JSONNull: Sendable {}

extension JSONValue: Encodable {
    /// Integral numbers are written without a fraction (`200`, not `200.0`).
    func encode(to encoder: any Encoder) throws {
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
        }
    }
}

/// A strict JSON parser (RFC 8259) over UTF-8 bytes.
struct FastJSON {
    struct Failure: Error {
        var offset: Int
        var reason: String
    }

    private let bytes: UnsafeBufferPointer<UInt8>
    private var offset = 0
    private var depth = 0

    static func parse(_ data: ArraySlice<UInt8>) throws(Failure) -> JSONValue {
        // A NUL after the text lets strtod stop without reading past the end.
        var copy = Array(data)
        copy.append(0)
        return try copy.withUnsafeBufferPointer { buffer throws(Failure) -> JSONValue in
            var parser = FastJSON(bytes: UnsafeBufferPointer(rebasing: buffer[0..<buffer.count - 1]), base: buffer.baseAddress!)
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
        if offset < bytes.count, bytes[offset] == UInt8(ascii: "-") { offset += 1 }
        guard offset < bytes.count, isDigit(bytes[offset]) else { throw fail("not a JSON value") }
        if bytes[offset] == UInt8(ascii: "0") { offset += 1 } else { while offset < bytes.count, isDigit(bytes[offset]) { offset += 1 } }
        if offset < bytes.count, bytes[offset] == UInt8(ascii: ".") {
            offset += 1
            guard offset < bytes.count, isDigit(bytes[offset]) else { throw fail("digits must follow the decimal point") }
            while offset < bytes.count, isDigit(bytes[offset]) { offset += 1 }
        }
        if offset < bytes.count, bytes[offset] == UInt8(ascii: "e") || bytes[offset] == UInt8(ascii: "E") {
            offset += 1
            if offset < bytes.count, bytes[offset] == UInt8(ascii: "+") || bytes[offset] == UInt8(ascii: "-") { offset += 1 }
            guard offset < bytes.count, isDigit(bytes[offset]) else { throw fail("digits must follow the exponent") }
            while offset < bytes.count, isDigit(bytes[offset]) { offset += 1 }
        }
        return (base + start).withMemoryRebound(to: CChar.self, capacity: offset - start + 1) { strtod($0, nil) }
    }

    @inline(__always) private func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }

    private mutating func string() throws(Failure) -> String {
        offset += 1  // the opening quote
        let start = offset
        var plain = true
        while offset < bytes.count, bytes[offset] != UInt8(ascii: "\"") {
            if bytes[offset] == UInt8(ascii: "\\") { plain = false; offset += 1 }
            else if bytes[offset] < 0x20 { throw fail("control character in a string") }
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
        skipSpace()
        if offset < bytes.count, bytes[offset] == UInt8(ascii: "}") {
            offset += 1
            return .object(fields)
        }
        while true {
            skipSpace()
            guard offset < bytes.count, bytes[offset] == UInt8(ascii: "\"") else { throw fail("expected a key") }
            let key = try string()
            skipSpace()
            guard offset < bytes.count, bytes[offset] == UInt8(ascii: ":") else { throw fail("expected : after a key") }
            offset += 1
            skipSpace()
            fields[key] = try value()
            skipSpace()
            guard offset < bytes.count else { throw fail("unterminated object") }
            if bytes[offset] == UInt8(ascii: ",") { offset += 1; continue }
            guard bytes[offset] == UInt8(ascii: "}") else { throw fail("expected , or } in an object") }
            offset += 1
            return .object(fields)
        }
    }
}
