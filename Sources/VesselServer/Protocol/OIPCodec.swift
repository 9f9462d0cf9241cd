import VesselJSON
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
public import VesselTensor

/// The one failure type of serving: the HTTP status, the message for `{"error": "…"}`, and for
/// a 503 the seconds a client should wait (`Retry-After`).
public struct RequestError: Error, Sendable, CustomStringConvertible {
    public var status: Int
    public var description: String
    public var retryAfterSeconds: Int?

    public init(_ status: Int, _ description: String, retryAfterSeconds: Int? = nil) {
        self.status = status
        self.description = description
        self.retryAfterSeconds = retryAfterSeconds
    }
}

/// An Open Inference Protocol v2 inference request, decoded: named tensors, the outputs asked
/// for (and which of them as binary), the request id.
public struct InferenceRequest: Sendable {
    public var id: String?
    public var inputs: [String: Tensor]
    /// Input names in request order, for logs.
    public var inputOrder: [String]
    /// The outputs asked for, in order; nil means every output.
    public var requestedOutputs: [String]?
    public var binaryOutputs: Set<String>
    public var allOutputsBinary: Bool
    /// `"parameters": {"raw": true}`: the model's own tensors, around its processing steps.
    public var raw = false
}

/// Reads and writes OIP v2 JSON bodies, with the binary tensor data extension: the first
/// `Inference-Header-Content-Length` bytes are JSON, then each tensor whose parameters give a
/// `binary_data_size` has that many raw little-endian bytes, in order (BYTES elements as a
/// 4-byte length and the bytes).
public enum OIPCodec {
    public static func decodeRequest(_ body: [UInt8], headerLength: Int?) throws(RequestError) -> InferenceRequest {
        let jsonLength = headerLength ?? body.count
        guard jsonLength >= 0, jsonLength <= body.count else {
            throw RequestError(400, "Inference-Header-Content-Length is \(jsonLength) but the body has \(body.count) bytes")
        }
        let object: JSONValue
        do { object = try FastJSON.parse(body[0..<jsonLength]) } catch {
            throw RequestError(400, "the request body is not valid JSON (byte \(error.offset): \(error.reason))")
        }
        guard case .object = object else { throw RequestError(400, "the request body must be a JSON object") }
        guard let inputList = object["inputs"]?.elements else { throw RequestError(400, "the request has no `inputs` array") }
        var binaryOffset = jsonLength
        var inputs: [String: Tensor] = [:]
        var order: [String] = []
        for (index, input) in inputList.enumerated() {
            guard case .object = input else { throw RequestError(400, "inputs[\(index)] is not an object") }
            guard let name = input["name"]?.string else { throw RequestError(400, "inputs[\(index)] has no `name`") }
            guard inputs[name] == nil else { throw RequestError(400, "input `\(name)` is given twice") }
            guard let datatype = input["datatype"]?.string else { throw RequestError(400, "input `\(name)` has no `datatype`") }
            guard let dtype = DType.oip(datatype) else {
                throw RequestError(400, "input `\(name)`: unknown datatype `\(datatype)` (BOOL, UINT8…UINT64, INT8…INT64, FP16, BF16, FP32, FP64, BYTES)")
            }
            guard case .numbers(let dims)? = input["shape"] else { throw RequestError(400, "input `\(name)` has no `shape` of integers") }
            // Every number is checked as a Double before it becomes an Int: converting 1e300,
            // -1e19 or 2^63 traps, and so would formatting them for the message.
            guard dims.allSatisfy({ $0 >= 0 && $0.rounded() == $0 && $0 < 1e15 }) else {
                throw RequestError(
                    400, "input `\(name)`: shape [\(dims.map(Self.describeNumber).joined(separator: ", "))] must hold non-negative integers below 10^15")
            }
            let shape = dims.map { Int($0) }
            guard let count = Tensor.checkedCount(of: shape), Tensor.allocationProblem(dtype, shape) == nil else {
                throw RequestError(400, "input `\(name)`: shape \(shape) is too large")
            }
            if let size = input["parameters"]?["binary_data_size"]?.number {
                guard size >= 0, size.rounded() == size, size <= Double(body.count - binaryOffset) else {
                    throw RequestError(
                        400,
                        "input `\(name)`: binary_data_size \(Self.describeNumber(size)) runs past the end of the body (\(body.count - binaryOffset) bytes left)"
                    )
                }
                let bytes = body[binaryOffset..<binaryOffset + Int(size)]
                binaryOffset += Int(size)
                inputs[name] = try binaryTensor(bytes, dtype: dtype, shape: shape, count: count, name: name)
            } else {
                guard let data = input["data"] else { throw RequestError(400, "input `\(name)` has neither `data` nor binary_data_size") }
                var decoded = try tensor(data, dtype: dtype, shape: shape, count: count, name: name)
                if let type = input["parameters"]?["content_type"]?.string {
                    decoded = try contentType(type, decoded, name: name)
                }
                inputs[name] = decoded
            }
            order.append(name)
        }
        guard binaryOffset == body.count else {
            throw RequestError(400, "the body has \(body.count - binaryOffset) bytes after the last binary input")
        }
        let allBinary = object["parameters"]?["binary_data_output"]?.bool ?? false
        var requested: [String]?
        var binary: Set<String> = []
        if let outputs = object["outputs"]?.elements {
            requested = []
            for (index, output) in outputs.enumerated() {
                guard let name = output["name"]?.string else { throw RequestError(400, "outputs[\(index)] must be an object with a `name`") }
                requested?.append(name)
                if output["parameters"]?["binary_data"]?.bool == true { binary.insert(name) }
            }
        }
        var request = InferenceRequest(
            id: object["id"]?.string, inputs: inputs, inputOrder: order, requestedOutputs: requested,
            binaryOutputs: binary, allOutputsBinary: allBinary)
        if let raw = object["parameters"]?["raw"] {
            guard let flag = raw.bool else { throw RequestError(400, "parameters.raw must be true or false") }
            request.raw = flag
        }
        return request
    }

    /// A tensor from JSON `data`, flat or nested (row-major), checked element by element.
    static func tensor(_ data: JSONValue, dtype: DType, shape: [Int], count: Int, name: String) throws(RequestError) -> Tensor {
        // The fast path: numbers only (flat, or nested arrays of number arrays).
        var numbers: [Double] = []
        var leaves: [JSONValue] = []
        var allNumbers = true
        numbers.reserveCapacity(count)
        func flatten(_ value: JSONValue) {
            switch value {
            case .numbers(let values):
                if allNumbers { numbers += values } else { leaves += values.map { .number($0) } }
            case .array(let items):
                for item in items { flatten(item) }
            default:
                if allNumbers {
                    allNumbers = false
                    leaves = numbers.map { .number($0) }
                }
                leaves.append(value)
            }
        }
        flatten(data)
        let total = allNumbers ? numbers.count : leaves.count
        guard total == count else {
            throw RequestError(400, "input `\(name)`: shape \(shape) holds \(count) elements but `data` has \(total)")
        }
        if allNumbers, dtype != .string, dtype != .bool {
            if !dtype.isFloatingPoint, let k = numbers.firstIndex(where: { $0.rounded() != $0 }) {
                throw RequestError(400, "input `\(name)`: element \(k) is \(numbers[k]), not an integer (\(dtype.oipName))")
            }
            if let range = dtype.integerRange, let k = numbers.firstIndex(where: { !range.contains($0) }) {
                throw RequestError(400, "input `\(name)`: element \(k) is \(describeNumber(numbers[k])), outside the range of \(dtype.oipName)")
            }
            return Tensor(converting: numbers, to: dtype, shape: shape)
        }
        if allNumbers { leaves = numbers.map { .number($0) } }
        switch dtype {
        case .string:
            var strings: [String] = []
            strings.reserveCapacity(count)
            for (k, item) in leaves.enumerated() {
                guard case .string(let text) = item else { throw RequestError(400, "input `\(name)`: element \(k) is \(describe(item)), not a string") }
                strings.append(text)
            }
            return Tensor(strings: strings, shape: shape)
        case .bool:
            var flags: [Bool] = []
            for (k, item) in leaves.enumerated() {
                guard case .bool(let flag) = item else { throw RequestError(400, "input `\(name)`: element \(k) is \(describe(item)), not true or false") }
                flags.append(flag)
            }
            return Tensor(flags, shape: shape)
        default:
            var values: [Double] = []
            values.reserveCapacity(count)
            for (k, item) in leaves.enumerated() {
                switch item {
                case .number(let value):
                    if !dtype.isFloatingPoint, value.rounded() != value {
                        throw RequestError(400, "input `\(name)`: element \(k) is \(value), not an integer (\(dtype.oipName))")
                    }
                    if let range = dtype.integerRange, !range.contains(value) {
                        throw RequestError(400, "input `\(name)`: element \(k) is \(describeNumber(value)), outside the range of \(dtype.oipName)")
                    }
                    values.append(value)
                case .string(let text) where dtype.isFloatingPoint && ["NaN", "Infinity", "-Infinity"].contains(text):
                    values.append(text == "NaN" ? .nan : text == "Infinity" ? .infinity : -.infinity)
                default:
                    throw RequestError(400, "input `\(name)`: element \(k) is \(describe(item)), not a number")
                }
            }
            return Tensor(converting: values, to: dtype, shape: shape)
        }
    }

    /// The body of every error answer: `{"error": "<message>"}`.
    static func errorBody(_ message: String) -> String { "{\"error\":\(quote(message))}" }

    /// A JSON number for a message, never converted to an integer type (which traps when it
    /// does not fit): integral values below 2^53 print as integers, the rest as Doubles do.
    static func describeNumber(_ value: Double) -> String {
        if value.rounded() == value, abs(value) < 9_007_199_254_740_992 { return String(Int64(value)) }
        return "\(value)"
    }

    static func describe(_ item: JSONValue) -> String {
        switch item {
        case .null: "null"
        case .bool(let flag): flag ? "true" : "false"
        case .number(let value): "\(value)"
        case .string(let text): "\"\(text.prefix(40))\""
        case .numbers, .array: "an array"
        case .object, .members: "an object"
        }
    }

    /// The same from a Foundation JSON object (MLflow bodies, responses read back).
    static func jsonTensor(_ data: Any, dtype: DType, shape: [Int], count: Int, name: String) throws(RequestError) -> Tensor {
        try tensor(JSONValue(foundation: data), dtype: dtype, shape: shape, count: count, name: name)
    }

    /// An input's `parameters.content_type` (MLServer's convention): `base64` BYTES elements
    /// are decoded (text if UTF-8, else a data URI of the bytes); `str` (text) and `np`/`pd`
    /// (numpy or pandas data, which a tensor already is) describe what was sent as it is.
    static func contentType(_ type: String, _ tensor: Tensor, name: String) throws(RequestError) -> Tensor {
        switch type.lowercased() {
        case "base64":
            guard tensor.dtype == .string else { throw RequestError(400, "input `\(name)`: content_type base64 is for BYTES inputs") }
            var strings: [String] = []
            strings.reserveCapacity(tensor.count)
            for (k, element) in tensor.strings.enumerated() {
                guard let bytes = Base64.decode(Array(element.utf8)[...]) else {
                    throw RequestError(400, "input `\(name)`: element \(k) is not base64 (content_type base64)")
                }
                // Bytes that are not text become a data URI around the base64 already sent
                // (valid: it just decoded), not a second encoding of the decoded bytes.
                if let text = String(validating: bytes, as: UTF8.self) {
                    strings.append(text)
                } else {
                    strings.append(BytesElement.dataURI(base64: element))
                }
            }
            return Tensor(strings: strings, shape: tensor.shape)
        case "str", "string", "text", "utf-8", "utf8", "np", "pd": return tensor
        default:
            throw RequestError(400, "input `\(name)`: content_type `\(type)` is not one this server decodes (base64, str, np, pd)")
        }
    }

    static func binaryTensor(_ bytes: ArraySlice<UInt8>, dtype: DType, shape: [Int], count: Int, name: String) throws(RequestError) -> Tensor {
        if dtype == .string {
            var strings: [String] = []
            var offset = bytes.startIndex
            while offset < bytes.endIndex {
                guard offset + 4 <= bytes.endIndex else { throw RequestError(400, "input `\(name)`: truncated BYTES element length") }
                let length = Int(bytes[offset]) | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2]) << 16 | Int(bytes[offset + 3]) << 24
                offset += 4
                guard offset + length <= bytes.endIndex else { throw RequestError(400, "input `\(name)`: truncated BYTES element") }
                // Text stays text; anything else (an encoded image) becomes a data URI, losslessly.
                strings.append(BytesElement.string(bytes[offset..<offset + length]))
                offset += length
            }
            guard strings.count == count else {
                throw RequestError(400, "input `\(name)`: shape \(shape) holds \(count) elements but the binary data has \(strings.count)")
            }
            return Tensor(strings: strings, shape: shape)
        }
        let size = dtype.byteSize!
        guard bytes.count == count * size else {
            throw RequestError(400, "input `\(name)`: shape \(shape) of \(dtype.oipName) needs \(count * size) bytes, binary_data_size is \(bytes.count)")
        }
        let tensor = Tensor(uninitialized: dtype, shape: shape)
        bytes.withUnsafeBytes { source in
            if count > 0 { tensor.storage.pointer.copyMemory(from: source.baseAddress!, byteCount: source.count) }
        }
        if dtype == .bool {
            // Any non-zero byte is true; a Bool must hold exactly 0 or 1.
            let raw = tensor.storage.pointer
            for k in 0..<count where raw.load(fromByteOffset: k, as: UInt8.self) > 1 { raw.storeBytes(of: 1, toByteOffset: k, as: UInt8.self) }
        }
        return tensor
    }

    /// The JSON response (and the binary section, when any output is binary).
    public static func encodeResponse(
        model: String, version: String, id: String?, outputs: [(String, Tensor)],
        binary: (String) -> Bool
    ) -> (json: [UInt8], binary: [UInt8]) {
        var json = "{\"model_name\":\(quote(model)),\"model_version\":\(quote(version))"
        if let id { json += ",\"id\":\(quote(id))" }
        json += ",\"outputs\":["
        var tail: [UInt8] = []
        for (k, (name, tensor)) in outputs.enumerated() {
            if k > 0 { json += "," }
            json += "{\"name\":\(quote(name)),\"datatype\":\"\(tensor.dtype.oipName)\",\"shape\":[\(tensor.shape.map(String.init).joined(separator: ","))]"
            if binary(name) {
                let bytes = rawBytes(tensor)
                json += ",\"parameters\":{\"binary_data_size\":\(bytes.count)}}"
                tail += bytes
            } else {
                json += ",\"data\":[\(jsonElements(tensor))]}"
            }
        }
        json += "]}"
        return (Array(json.utf8), tail)
    }

    static func rawBytes(_ tensor: Tensor) -> [UInt8] {
        if tensor.dtype == .string {
            var bytes: [UInt8] = []
            for text in tensor.strings {
                let utf8 = Array(text.utf8)
                let n = UInt32(utf8.count)
                bytes += [UInt8(n & 0xff), UInt8(n >> 8 & 0xff), UInt8(n >> 16 & 0xff), UInt8(n >> 24)]
                bytes += utf8
            }
            return bytes
        }
        let count = tensor.count * tensor.dtype.byteSize!
        return [UInt8](UnsafeRawBufferPointer(start: tensor.storage.pointer, count: count))
    }

    static func jsonElements(_ tensor: Tensor) -> String {
        jsonElementList(tensor).joined(separator: ",")
    }

    /// Each element as JSON, in row-major order.
    /// A tensor as nested JSON arrays (a scalar as its value).
    static func nestedJSON(_ tensor: Tensor) -> String {
        let elements = jsonElementList(tensor)
        func nest(_ start: Int, _ depth: Int) -> String {
            if depth == tensor.shape.count { return elements[start] }
            let stride = tensor.shape[(depth + 1)...].reduce(1, *)
            return "[" + (0..<tensor.shape[depth]).map { nest(start + $0 * stride, depth + 1) }.joined(separator: ",") + "]"
        }
        return tensor.count == 0 && tensor.rank > 0 ? "[]" : nest(0, 0)
    }

    static func jsonElementList(_ tensor: Tensor) -> [String] {
        switch tensor.dtype {
        case .string: return tensor.strings.map(quote)
        case .bool: return tensor.scalars(as: Bool.self).map { $0 ? "true" : "false" }
        case .float32: return tensor.scalars(as: Float.self).map(number)
        case .float64, .float16, .bfloat16: return tensor.doubles().map(number)
        case .int64: return tensor.scalars(as: Int64.self).map(String.init)
        case .uint64: return tensor.scalars(as: UInt64.self).map(String.init)
        default: return tensor.integers().map(String.init)
        }
    }

    /// A JSON number; NaN and infinities as the strings numpy and Triton clients read back.
    static func number<F: BinaryFloatingPoint & LosslessStringConvertible>(_ value: F) -> String {
        if value.isNaN { return "\"NaN\"" }
        if value.isInfinite { return value > 0 ? "\"Infinity\"" : "\"-Infinity\"" }
        return value.description
    }

    static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case let c where c.value < 0x20: out += "\\u00" + (c.value < 0x10 ? "0" : "") + String(c.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

extension DType {
    /// The values an integer dtype holds, as Doubles (the bounds JSON numbers are checked
    /// against); nil for floating point, bool and strings.
    var integerRange: ClosedRange<Double>? {
        switch self {
        case .int8: -128...127
        case .int16: -32768...32767
        case .int32: -2_147_483_648...2_147_483_647
        // 2^63 is the first Double past Int64.max; the largest Double below it is in range.
        case .int64: -9_223_372_036_854_775_808...9_223_372_036_854_774_784
        case .uint8: 0...255
        case .uint16: 0...65535
        case .uint32: 0...4_294_967_295
        case .uint64: 0...18_446_744_073_709_549_568
        default: nil
        }
    }

    /// A datatype as OIP v2 names it (`FP32`, `INT64`, `BYTES`).
    public static func oip(_ name: String) -> DType? {
        DType.allCases.first { $0.travels && $0.oipName == name.uppercased() }
    }
}
