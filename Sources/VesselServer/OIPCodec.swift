import Foundation
public import VesselTensor

/// A client error: the HTTP status and the message for `{"error": "…"}`.
public struct RequestError: Error, Sendable, CustomStringConvertible {
    public var status: Int
    public var description: String

    public init(_ status: Int, _ description: String) {
        self.status = status
        self.description = description
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
        let object: [String: Any]
        do {
            guard let parsed = try JSONSerialization.jsonObject(with: Data(body[0..<jsonLength])) as? [String: Any] else {
                throw RequestError(400, "the request body must be a JSON object")
            }
            object = parsed
        } catch let error as RequestError {
            throw error
        } catch {
            throw RequestError(400, "the request body is not valid JSON")
        }
        guard let inputList = object["inputs"] as? [Any] else { throw RequestError(400, "the request has no `inputs` array") }
        var binaryOffset = jsonLength
        var inputs: [String: Tensor] = [:]
        var order: [String] = []
        for (index, item) in inputList.enumerated() {
            guard let input = item as? [String: Any] else { throw RequestError(400, "inputs[\(index)] is not an object") }
            guard let name = input["name"] as? String else { throw RequestError(400, "inputs[\(index)] has no `name`") }
            guard inputs[name] == nil else { throw RequestError(400, "input `\(name)` is given twice") }
            guard let datatype = input["datatype"] as? String else { throw RequestError(400, "input `\(name)` has no `datatype`") }
            guard let dtype = DType.oip(datatype) else {
                throw RequestError(400, "input `\(name)`: unknown datatype `\(datatype)` (BOOL, UINT8…UINT64, INT8…INT64, FP16, BF16, FP32, FP64, BYTES)")
            }
            guard let shapeList = input["shape"] as? [Any] else { throw RequestError(400, "input `\(name)` has no `shape`") }
            let shape = try shapeList.map { element throws(RequestError) -> Int in
                guard let number = element as? NSNumber, !isBool(element), number.doubleValue.rounded() == number.doubleValue,
                      number.doubleValue >= 0, number.doubleValue < 1e15 else {
                    throw RequestError(400, "input `\(name)`: shape \(shapeList) must hold non-negative integers")
                }
                return number.intValue
            }
            guard let count = Tensor.checkedCount(of: shape), Tensor.allocationProblem(dtype, shape) == nil else {
                throw RequestError(400, "input `\(name)`: shape \(shape) is too large")
            }
            let parameters = input["parameters"] as? [String: Any]
            if let size = (parameters?["binary_data_size"] as? NSNumber)?.intValue {
                guard size >= 0, binaryOffset + size <= body.count else {
                    throw RequestError(400, "input `\(name)`: binary_data_size \(size) runs past the end of the body")
                }
                let bytes = body[binaryOffset..<binaryOffset + size]
                binaryOffset += size
                inputs[name] = try binaryTensor(bytes, dtype: dtype, shape: shape, count: count, name: name)
            } else {
                guard let data = input["data"] else { throw RequestError(400, "input `\(name)` has neither `data` nor binary_data_size") }
                inputs[name] = try jsonTensor(data, dtype: dtype, shape: shape, count: count, name: name)
            }
            order.append(name)
        }
        guard binaryOffset == body.count else {
            throw RequestError(400, "the body has \(body.count - binaryOffset) bytes after the last binary input")
        }
        let parameters = object["parameters"] as? [String: Any]
        let allBinary = (parameters?["binary_data_output"] as? Bool) ?? false
        var requested: [String]?
        var binary: Set<String> = []
        if let outputs = object["outputs"] as? [Any] {
            requested = []
            for (index, item) in outputs.enumerated() {
                guard let output = item as? [String: Any], let name = output["name"] as? String else {
                    throw RequestError(400, "outputs[\(index)] must be an object with a `name`")
                }
                requested?.append(name)
                if let flag = (output["parameters"] as? [String: Any])?["binary_data"] as? Bool, flag { binary.insert(name) }
            }
        }
        let id = object["id"].flatMap { $0 as? String }
        return InferenceRequest(id: id, inputs: inputs, inputOrder: order, requestedOutputs: requested, binaryOutputs: binary, allOutputsBinary: allBinary)
    }

    static func jsonTensor(_ data: Any, dtype: DType, shape: [Int], count: Int, name: String) throws(RequestError) -> Tensor {
        // `data` may be flat or nested (row-major); flatten it.
        var flat: [Any] = []
        flat.reserveCapacity(count)
        func flatten(_ item: Any) {
            if let list = item as? [Any] { for element in list { flatten(element) } } else { flat.append(item) }
        }
        flatten(data)
        guard flat.count == count else {
            throw RequestError(400, "input `\(name)`: shape \(shape) holds \(count) elements but `data` has \(flat.count)")
        }
        switch dtype {
        case .string:
            var strings: [String] = []
            strings.reserveCapacity(count)
            for (k, item) in flat.enumerated() {
                guard let text = item as? String else { throw RequestError(400, "input `\(name)`: element \(k) is \(describe(item)), not a string") }
                strings.append(text)
            }
            return Tensor(strings: strings, shape: shape)
        case .bool:
            var flags: [Bool] = []
            for (k, item) in flat.enumerated() {
                guard isBool(item), let flag = item as? Bool else { throw RequestError(400, "input `\(name)`: element \(k) is \(describe(item)), not true or false") }
                flags.append(flag)
            }
            return Tensor(flags, shape: shape)
        default:
            var numbers: [Double] = []
            numbers.reserveCapacity(count)
            for (k, item) in flat.enumerated() {
                if let number = item as? NSNumber, !isBool(item) {
                    let value = number.doubleValue
                    if !dtype.isFloatingPoint, value.rounded() != value {
                        throw RequestError(400, "input `\(name)`: element \(k) is \(value), not an integer (\(dtype.oipName))")
                    }
                    numbers.append(value)
                } else if let text = item as? String, dtype.isFloatingPoint, let special = ["NaN": Double.nan, "Infinity": .infinity, "-Infinity": -.infinity][text] {
                    numbers.append(special)
                } else {
                    throw RequestError(400, "input `\(name)`: element \(k) is \(describe(item)), not a number")
                }
            }
            return Tensor(converting: numbers, to: dtype, shape: shape)
        }
    }

    /// JSON true/false. (Foundation bridges every NSNumber holding 0 or 1 to Bool, so `is Bool`
    /// cannot tell `1` from `true`; the boolean's storage type can.)
    static func isBool(_ item: Any) -> Bool {
        guard let number = item as? NSNumber else { return false }
        return String(cString: number.objCType) == "c"
    }

    static func describe(_ item: Any) -> String {
        if isBool(item) { return (item as? Bool) == true ? "true" : "false" }
        if item is NSNull { return "null" }
        if let text = item as? String { return "\"\(text.prefix(40))\"" }
        if item is [Any] { return "an array" }
        if item is [String: Any] { return "an object" }
        return "\(item)"
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
                strings.append(String(decoding: bytes[offset..<offset + length], as: UTF8.self))
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
        return tensor
    }

    /// The JSON response (and the binary section, when any output is binary).
    public static func encodeResponse(model: String, version: String, id: String?, outputs: [(String, Tensor)],
                                      binary: (String) -> Bool) -> (json: [UInt8], binary: [UInt8]) {
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
            case let c where c.value < 0x20: out += String(format: "\\u%04x", c.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}


extension DType {
    /// A datatype as OIP v2 names it (`FP32`, `INT64`, `BYTES`).
    public static func oip(_ name: String) -> DType? {
        DType.allCases.first { $0.oipName == name.uppercased() }
    }
}
