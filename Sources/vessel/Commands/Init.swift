import ArgumentParser
import Foundation
import VesselManifest
import VesselManifestYAML
import VesselONNX
import VesselStore
import VesselTensor
import VesselSystem

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
                    printError(
                        "note: `\(info.name)` is a \(type), not a tensor; it is left out of the signature (skl2onnx: convert with options={'zipmap': False} for a [N, classes] tensor)"
                    )
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
            print(
                "wrote \(target): \(signature.inputs.filter { $0.nonTensorType == nil }.count) input(s), \(signature.outputs.filter { $0.nonTensorType == nil }.count) output(s)"
            )
        }
    }
}
