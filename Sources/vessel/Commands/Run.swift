import ArgumentParser
import Foundation
import VesselManifest
import VesselManifestYAML
import VesselONNX
import VesselStore
import VesselTensor

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run one inference of an ONNX model on inputs from .npy or JSON.")

    @Argument(help: "The .onnx model.")
    var model: String

    @Option(
        name: .customLong("input"),
        help: ArgumentHelp("NAME=FILE.npy, NAME=FILE.pb (ONNX TensorProto), NAME=FILE.json or NAME=<inline JSON>.", valueName: "name=value"))
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
