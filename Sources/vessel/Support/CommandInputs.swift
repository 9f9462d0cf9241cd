import ArgumentParser
import Foundation
import VesselManifest
import VesselManifestYAML
import VesselONNX
import VesselStore
import VesselTensor

/// The model's own inputs: graph inputs that no initializer already supplies.
func feedableInputs(_ model: ONNXModel) -> [ValueInfo] {
    model.inputs.filter { model.graph.initializers[$0.name] == nil }
}

func tensorSpec(_ info: ValueInfo) -> TensorSpec {
    TensorSpec(name: info.name, dtype: info.dtype ?? .float32, shape: info.shape ?? [.dynamic(name: nil)])
}

/// A map input (DictVectorizer's) from a JSON object, `{"key": value, …}`, inline or in a .json
/// file; `type` is the model's declared type, e.g. `map(string,tensor(float))`.
func readMapInput(_ value: String, type: String, name: String) throws -> ONNXValue {
    guard type.hasPrefix("map(") else { throw ValidationError("input `\(name)` is a \(type); vessel run feeds tensors and maps only") }
    var text = value
    if value.hasSuffix(".json") {
        let data = try inputFile(value, name: name)
        text = String(decoding: data, as: UTF8.self)
    }
    guard let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] else {
        throw ValidationError("input `\(name)` is a \(type): give a JSON object such as {\"a\": 1.5}")
    }
    let keys = object.keys.sorted()
    let keyTensor: Tensor
    if type.hasPrefix("map(int64,") {
        keyTensor = Tensor(
            try keys.map { key -> Int64 in
                guard let number = Int64(key) else { throw ValidationError("input `\(name)`: key `\(key)` is not an integer") }
                return number
            }, shape: [keys.count])
    } else {
        keyTensor = Tensor(strings: keys, shape: [keys.count])
    }
    let valueType =
        type.contains("tensor(string)")
        ? DType.string
        : type.contains("tensor(double)")
            ? .float64
            : type.contains("tensor(int64)") ? .int64 : .float32
    if valueType == .string {
        return .map(
            keys: keyTensor,
            values: Tensor(
                strings: try keys.map { key in
                    guard let text = object[key] as? String else { throw ValidationError("input `\(name)`: the value of `\(key)` is not a string") }
                    return text
                }, shape: [keys.count]))
    }
    let numbers = try keys.map { key -> Double in
        guard let number = object[key] as? NSNumber else { throw ValidationError("input `\(name)`: the value of `\(key)` is not a number") }
        return number.doubleValue
    }
    return .map(keys: keyTensor, values: Tensor(converting: numbers, to: valueType, shape: [keys.count]))
}

/// A sequence as a JSON array, a map as a JSON object (keys as strings), a tensor as nested arrays.
func jsonText(_ value: ONNXValue) -> String {
    switch value {
    case .tensor(let tensor): return jsonText(tensor)
    case .sequence(let elements): return "[" + elements.map(jsonText).joined(separator: ", ") + "]"
    case .map(let keys, let values):
        let keyStrings = (keys.dtype == .string ? keys.strings : keys.integers().map(String.init)).map {
            jsonText(Tensor(strings: [$0], shape: []))
        }
        let valueStrings =
            values.dtype == .string
            ? values.strings.map { jsonText(Tensor(strings: [$0], shape: [])) }
            : values.doubles().map { jsonText(Tensor(converting: [$0], to: values.dtype, shape: [])) }
        return "{" + zip(keyStrings, valueStrings).map { "\($0): \($1)" }.joined(separator: ", ") + "}"
    }
}

/// Output names become file names: anything but letters, digits, `.`, `_` and `-` becomes `_`.
func safeFileName(_ name: String) -> String {
    let safe = String(name.map { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) ? $0 : "_" })
    return safe.isEmpty || safe == "." || safe == ".." ? "_" + safe : safe
}

/// An input file's bytes: a regular file only (a FIFO would block the command forever).
func inputFile(_ path: String, name: String) throws -> Data {
    do {
        return Data(try FileSystem.readFile(path, limit: 1 << 36))
    } catch {
        throw ValidationError("cannot read \(path) for input `\(name)`: \(error)")
    }
}

func readInput(_ value: String, dtype: DType, name: String) throws -> Tensor {
    if value.hasSuffix(".npy") {
        let data = try inputFile(value, name: name)
        do { return try Tensor(npy: Array(data)) } catch { throw ValidationError("input `\(name)` from \(value): \(error)") }
    }
    if value.hasSuffix(".pb") {
        let data = try inputFile(value, name: name)
        do { return try ONNXModel.tensor(protobuf: data) } catch { throw ValidationError("input `\(name)` from \(value): \(error)") }
    }
    var text = value
    if value.hasSuffix(".json") {
        let data = try inputFile(value, name: name)
        text = String(decoding: data, as: UTF8.self)
    }
    let json: Any
    do { json = try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]) } catch {
        throw ValidationError("input `\(name)`: `\(value.prefix(40))` is neither a .npy file, a .json file nor JSON")
    }
    var shape: [Int] = []
    var level: Any = json
    while let array = level as? [Any] {
        shape.append(array.count)
        guard let first = array.first else { break }
        level = first
    }
    var flat: [Any] = []
    func collect(_ item: Any, depth: Int) throws {
        if depth == shape.count { flat.append(item); return }
        guard let array = item as? [Any], array.count == shape[depth] else { throw ValidationError("input `\(name)`: ragged JSON array") }
        for element in array { try collect(element, depth: depth + 1) }
    }
    try collect(json, depth: 0)
    if dtype == .string {
        return Tensor(
            strings: try flat.map { item in
                guard let text = item as? String else { throw ValidationError("input `\(name)` holds \(item), not a string") }
                return text
            }, shape: shape)
    }
    let numbers = try flat.map { item -> Double in
        if let number = item as? NSNumber { return number.doubleValue }
        throw ValidationError("input `\(name)` holds \(item), not a number")
    }
    return Tensor(converting: numbers, to: dtype, shape: shape)
}

/// A tensor as nested JSON arrays.
func jsonText(_ tensor: Tensor) -> String {
    let elements: [String] =
        tensor.dtype == .string
        ? tensor.strings.map { "\"\($0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\""))\"" }
        : tensor.dtype == .bool
            ? tensor.scalars(as: Bool.self).map { $0 ? "true" : "false" }
            : tensor.doubles().map { value in
                if value.isNaN { return "NaN" }
                if value.isInfinite { return value > 0 ? "Infinity" : "-Infinity" }
                return value == value.rounded() && abs(value) < 1e15 && !tensor.dtype.isFloatingPoint ? String(Int64(value)) : "\(Float(value))"
            }
    func nest(_ start: Int, _ depth: Int) -> String {
        if depth == tensor.shape.count { return elements[start] }
        let stride = tensor.shape[(depth + 1)...].reduce(1, *)
        return "[" + (0..<tensor.shape[depth]).map { nest(start + $0 * stride, depth + 1) }.joined(separator: ", ") + "]"
    }
    return nest(0, 0)
}

/// A run's deadline from `--timeout SECONDS` (nil: no limit).
func runControl(_ timeout: Double?) throws -> RunControl? {
    guard let timeout else { return nil }
    guard timeout > 0, timeout <= 1e6 else { throw ValidationError("--timeout must be a number of seconds above 0") }
    return RunControl(timeout: .microseconds(Int64(timeout * 1e6)))
}
