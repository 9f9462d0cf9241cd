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

struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write a starter vessel.yaml with the signature read from an ONNX model.")

    @Argument(help: "The .onnx model.")
    var model: String

    @Option(name: .shortAndLong, help: "Where to write (default: vessel.yaml beside the model).")
    var output: String?

    @Flag(help: "Overwrite an existing file.")
    var force = false

    func run() throws {
        try vessel.run {
            // Only the signature is needed: no kernels, so any valid ONNX model works here.
            let signature = try ONNXModel.signature(path: model)
            let directory = (model as NSString).deletingLastPathComponent
            let target = output ?? ((directory.isEmpty ? "." : directory) as NSString).appendingPathComponent("vessel.yaml")
            if FileManager.default.fileExists(atPath: target), !force {
                throw ValidationError("\(target) already exists (pass --force to overwrite)")
            }
            let stem = ((model as NSString).lastPathComponent as NSString).deletingPathExtension
            var name = String(stem.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "-" })
            name = name.split(separator: "-").joined(separator: "-")
            if name.isEmpty { name = "model" }
            // The signature describes tensors; a sequence or map (ZipMap's per-row probabilities)
            // has no place in it yet, so it is left out, and said so.
            for info in signature.inputs + signature.outputs {
                if let type = info.nonTensorType {
                    FileHandle.standardError.write(Data("note: `\(info.name)` is a \(type), not a tensor; it is left out of the signature (skl2onnx: convert with options={'zipmap': False} for a [N, classes] tensor)\n".utf8))
                }
            }
            let text = StarterManifest.yaml(
                name: name, modelFile: (model as NSString).lastPathComponent, format: .onnx,
                inputs: signature.inputs.filter { $0.nonTensorType == nil }.map(tensorSpec),
                outputs: signature.outputs.filter { $0.nonTensorType == nil }.map(tensorSpec)
            )
            // What init writes must itself be a valid manifest.
            _ = try ManifestParser.parse(text: text, file: target, baseDirectory: directory.isEmpty ? "." : directory)
            try Data(text.utf8).write(to: URL(fileURLWithPath: target), options: .atomic)
            print("wrote \(target): \(signature.inputs.filter { $0.nonTensorType == nil }.count) input(s), \(signature.outputs.filter { $0.nonTensorType == nil }.count) output(s)")
        }
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run one inference of an ONNX model on inputs from .npy or JSON.")

    @Argument(help: "The .onnx model.")
    var model: String

    @Option(name: .customLong("input"), help: ArgumentHelp("NAME=FILE.npy, NAME=FILE.pb (ONNX TensorProto), NAME=FILE.json or NAME=<inline JSON>.", valueName: "name=value"))
    var inputs: [String] = []

    @Option(name: .customLong("output-dir"), help: "Write each output as DIR/<name>.npy instead of printing it.")
    var outputDirectory: String?

    @Option(help: "Stop the inference after this many seconds (checked between operators and loop iterations).")
    var timeout: Double?

    func run() throws {
        try vessel.run {
            let control = try runControl(timeout)
            let loaded = try ONNXModel(path: model)
            var feeds: [String: ONNXValue] = [:]
            for argument in inputs {
                guard let equals = argument.firstIndex(of: "=") else { throw ValidationError("--input `\(argument)` is not NAME=VALUE") }
                let name = String(argument[..<equals]), value = String(argument[argument.index(after: equals)...])
                guard let info = loaded.inputs.first(where: { $0.name == name }) else {
                    throw ValidationError("the model has no input `\(name)`; its inputs are \(feedableInputs(loaded).map(\.name).joined(separator: ", "))")
                }
                if let type = info.nonTensorType {
                    feeds[name] = try readMapInput(value, type: type, name: name)
                } else {
                    feeds[name] = .tensor(try readInput(value, dtype: info.dtype ?? .float32, name: name))
                }
            }
            let results = try loaded.run(values: feeds, control: control)
            if let outputDirectory {
                try FileManager.default.createDirectory(atPath: outputDirectory, withIntermediateDirectories: true)
            }
            for output in loaded.outputs {
                guard let value = results[output.name] else { continue }
                guard let tensor = value.tensor else {
                    // Sequences and maps (ZipMap's per-row class probabilities) are written as JSON.
                    if let outputDirectory {
                        let path = (outputDirectory as NSString).appendingPathComponent(safeFileName(output.name) + ".json")
                        try Data((jsonText(value) + "\n").utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
                        print("\(output.name)  \(value.typeDescription)  → \(path)")
                    } else {
                        print("\(output.name)  \(value.typeDescription)")
                        print(jsonText(value))
                    }
                    continue
                }
                if let outputDirectory {
                    let path = (outputDirectory as NSString).appendingPathComponent(safeFileName(output.name) + ".npy")
                    try Data(tensor.npy()).write(to: URL(fileURLWithPath: path), options: .atomic)
                    print("\(output.name)  \(tensor.dtype.rawValue)\(tensor.shape)  → \(path)")
                } else {
                    print("\(output.name)  \(tensor.dtype.rawValue)\(tensor.shape)")
                    print(jsonText(tensor))
                }
            }
        }
    }
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
        keyTensor = Tensor(try keys.map { key -> Int64 in
            guard let number = Int64(key) else { throw ValidationError("input `\(name)`: key `\(key)` is not an integer") }
            return number
        }, shape: [keys.count])
    } else {
        keyTensor = Tensor(strings: keys, shape: [keys.count])
    }
    let valueType = type.contains("tensor(string)") ? DType.string : type.contains("tensor(double)") ? .float64
        : type.contains("tensor(int64)") ? .int64 : .float32
    if valueType == .string {
        return .map(keys: keyTensor, values: Tensor(strings: try keys.map { key in
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
        let valueStrings = values.dtype == .string
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
        return Tensor(strings: try flat.map { item in
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
    let elements: [String] = tensor.dtype == .string
        ? tensor.strings.map { "\"\($0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\""))\"" }
        : tensor.dtype == .bool ? tensor.scalars(as: Bool.self).map { $0 ? "true" : "false" }
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

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Measure inference latency of an ONNX model on generated inputs.")

    @Argument(help: "The .onnx model.")
    var model: String

    @Option(help: "Threads one operator may use.")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(name: .customLong("shape"), help: ArgumentHelp("Shape for an input with dynamic dimensions, as NAME=1x3x224x224.", valueName: "name=dims"))
    var shapes: [String] = []

    @Option(name: .customLong("input"), help: ArgumentHelp("Feed this instead of generated data: NAME=FILE.npy (or .pb, .json).", valueName: "name=file"))
    var inputs: [String] = []

    @Option(help: "Timed runs (after warm-up).")
    var iterations: Int = 100

    @Option(help: "Untimed runs first.")
    var warmup: Int = 5

    @Flag(help: "Print JSON.")
    var json = false

    @Option(help: "Stop any one inference after this many seconds (checked between operators and loop iterations).")
    var timeout: Double?

    func run() throws {
        try vessel.run {
            guard iterations > 0 else { throw ValidationError("--iterations must be at least 1") }
            guard warmup >= 0 else { throw ValidationError("--warmup must be 0 or more") }
            guard (1...1024).contains(threads) else { throw ValidationError("--threads must be 1…1024") }
            _ = try runControl(timeout)
            Runtime.setIntraOpThreads(threads)
            let loadStart = DispatchTime.now()
            let loaded = try ONNXModel(path: model)
            let loadSeconds = Double(DispatchTime.now().uptimeNanoseconds - loadStart.uptimeNanoseconds) / 1e9
            var requested: [String: [Int]] = [:]
            for argument in shapes {
                let parts = argument.split(separator: "=", maxSplits: 1)
                guard parts.count == 2, let dims = Optional(parts[1].split(separator: "x").compactMap { Int($0) }),
                      dims.count == parts[1].split(separator: "x").count
                else { throw ValidationError("--shape `\(argument)` is not NAME=D1xD2x…") }
                if let problem = Tensor.allocationProblem(.float64, dims) {
                    throw ValidationError("--shape `\(argument)`: \(dims.contains { $0 < 0 } ? "sizes must not be negative" : problem)")
                }
                requested[String(parts[0])] = dims
            }
            var generator = SplitMix64(seed: 42)
            var feeds: [String: Tensor] = [:]
            for argument in inputs {
                guard let equals = argument.firstIndex(of: "=") else { throw ValidationError("--input `\(argument)` is not NAME=FILE") }
                let name = String(argument[..<equals])
                guard let info = loaded.inputs.first(where: { $0.name == name }) else { throw ValidationError("the model has no input `\(name)`") }
                feeds[name] = try readInput(String(argument[argument.index(after: equals)...]), dtype: info.dtype ?? .float32, name: name)
            }
            for input in feedableInputs(loaded) where feeds[input.name] == nil {
                let declared = input.shape ?? []
                let shape = try requested[input.name] ?? declared.map { dimension -> Int in
                    if case .fixed(let size) = dimension { return size }
                    throw ValidationError("input `\(input.name)` has dynamic dimensions; pass --shape \(input.name)=…")
                }
                let count = shape.reduce(1, *)
                let values = (0..<count).map { _ in generator.nextUnit() }
                feeds[input.name] = Tensor(converting: values, to: input.dtype ?? .float32, shape: shape)
            }
            for _ in 0..<warmup { _ = try loaded.run(feeds, control: try runControl(timeout)) }
            var latencies: [Double] = []
            let start = DispatchTime.now()
            for _ in 0..<iterations {
                let control = try runControl(timeout)
                let before = DispatchTime.now()
                _ = try loaded.run(feeds, control: control)
                latencies.append(Double(DispatchTime.now().uptimeNanoseconds - before.uptimeNanoseconds) / 1e6)
            }
            let total = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
            let sorted = latencies.sorted()
            /// Nearest-rank percentile.
            func percentile(_ p: Double) -> Double {
                let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
                return sorted[min(max(rank - 1, 0), sorted.count - 1)]
            }
            let report: [String: Any] = [
                "model": model, "threads": threads, "iterations": iterations, "blas": Runtime.blasBackend,
                "load_ms": loadSeconds * 1000, "p50_ms": percentile(50), "p90_ms": percentile(90), "p99_ms": percentile(99),
                "mean_ms": latencies.reduce(0, +) / Double(latencies.count), "min_ms": sorted[0],
                "throughput_per_s": Double(iterations) / total,
            ]
            if json {
                let data = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys, .prettyPrinted])
                print(String(decoding: data, as: UTF8.self))
            } else {
                print("\(model): \(iterations) runs, \(threads) thread(s), BLAS \(Runtime.blasBackend), loaded in \(String(format: "%.1f", loadSeconds * 1000)) ms")
                print(String(format: "latency ms  p50 %.3f  p90 %.3f  p99 %.3f  mean %.3f  min %.3f", percentile(50), percentile(90), percentile(99),
                             report["mean_ms"] as! Double, sorted[0]))
                print(String(format: "throughput  %.1f inferences/s", report["throughput_per_s"] as! Double))
                if Profiler.isEnabled {
                    let runs = Double(iterations + warmup)
                    print(Profiler.perNode ? "per node (VESSEL_PROFILE=nodes), ms per inference:" : "per operator (VESSEL_PROFILE=1), ms per inference:")
                    for row in Profiler.report() { print(String(format: "  %-24@ %9.3f  (%d calls)", row.op as NSString, row.milliseconds / runs, row.calls)) }
                }
            }
        }
    }
}
