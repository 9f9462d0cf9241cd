import Foundation
import VesselManifest
import VesselManifestYAML
import VesselONNX
import VesselTensor
import Yams

/// What an importer wrote: the model directory (with its vessel.yaml) and what the user should
/// know about the translation.
public struct ImportResult: Sendable {
    public var directory: String
    public var notes: [String]
    /// Every model directory written (one, but for a Bento with several APIs).
    public var directories: [String]

    init(directory: String, notes: [String], directories: [String]? = nil) {
        self.directory = directory
        self.notes = notes
        self.directories = directories ?? [directory]
    }
}

public struct ImportError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// `vessel import mlflow DIR`: an MLflow model directory (an `MLmodel` file and what it names)
/// as a Vessel model directory. The `onnx` flavor becomes a native ONNX model; the `sklearn`
/// flavor (pickle, cloudpickle or skops) a python-backend model with MLflow's recorded Python
/// version and requirements. The signature and input example are carried over; a column-based
/// signature becomes a `columns` step, so clients still send named columns.
public enum MLflowImporter {
    public static func run(source: String, output: String, name: String?) throws -> ImportResult {
        let mlmodel = try ModelDirectoryWriter.loadMapping(
            (source as NSString).appendingPathComponent("MLmodel"),
            what: "\(source) has no readable MLmodel file: is it an MLflow model directory (the one `mlflow.<flavor>.save_model` writes)?")
        let flavors = mlmodel["flavors"] as? [String: Any] ?? [:]
        var writer = ModelDirectoryWriter(
            source: source, output: output,
            name: name ?? ModelDirectoryWriter.artifactName(from: (source as NSString).lastPathComponent))
        try writer.prepare()
        do {
            try translate(mlmodel, flavors: flavors, into: &writer)
            return try writer.finish()
        } catch {
            writer.discard()
            throw error
        }
    }

    static func translate(_ mlmodel: [String: Any], flavors: [String: Any], into writer: inout ModelDirectoryWriter) throws {
        writer.copy("MLmodel", role: "doc")
        let signature = mlmodel["signature"] as? [String: Any]
        if let onnx = flavors["onnx"] as? [String: Any] {
            try importONNX(onnx, signature: signature, mlmodel: mlmodel, into: &writer)
        } else if let sklearn = flavors["sklearn"] as? [String: Any] {
            try importScikitLearn(sklearn, pyfunc: flavors["python_function"] as? [String: Any], signature: signature, mlmodel: mlmodel, into: &writer)
        } else if let pyfunc = flavors["python_function"] as? [String: Any] {
            try importPyfunc(pyfunc, signature: signature, mlmodel: mlmodel, into: &writer)
        } else {
            throw ImportError(
                "the MLflow model's flavors are \(flavors.keys.sorted().joined(separator: ", ")); vessel imports `onnx`, `sklearn` "
                    + "and any model with a `python_function` flavor")
        }
    }

    static func importONNX(_ flavor: [String: Any], signature: [String: Any]?, mlmodel: [String: Any], into writer: inout ModelDirectoryWriter) throws {
        guard let data = flavor["data"] as? String else { throw ImportError("the onnx flavor names no `data` file") }
        let modelPath = (writer.source as NSString).appendingPathComponent(data)
        // The graph's own signature is the truth for an ONNX model.
        let graph = try ONNXModel.signature(path: modelPath)
        writer.model(format: "onnx", file: data)
        writer.inputs = graph.inputs.filter { $0.nonTensorType == nil }.map {
            TensorSpec(name: $0.name, dtype: $0.dtype ?? .float32, shape: $0.shape ?? [.dynamic(name: nil)])
        }
        writer.outputs = graph.outputs.filter { $0.nonTensorType == nil }.map {
            TensorSpec(name: $0.name, dtype: $0.dtype ?? .float32, shape: $0.shape ?? [.dynamic(name: nil)])
        }
        writer.runtime = ["backend: onnx"]
        if let example = try writer.inputExample(mlmodel) {
            if let object = example as? [String: Any] {
                writer.exampleInputs = object.mapValues(ModelDirectoryWriter.json)
            } else if writer.inputs.count == 1 {
                writer.exampleInputs = [writer.inputs[0].name: ModelDirectoryWriter.json(example)]
            }
        }
        if signature?["inputs"] is String, let columns = try? columnSignature(signature), !columns.isEmpty {
            writer.notes.append("the MLflow signature names columns, but an ONNX model takes its graph's tensors: clients send those")
        }
    }

    static func importScikitLearn(
        _ flavor: [String: Any], pyfunc: [String: Any]?, signature: [String: Any]?, mlmodel: [String: Any],
        into writer: inout ModelDirectoryWriter
    ) throws {
        guard let file = flavor["pickled_model"] as? String else { throw ImportError("the sklearn flavor names no `pickled_model` file") }
        let serialization = flavor["serialization_format"] as? String ?? "cloudpickle"
        let format: String
        switch serialization {
        case "pickle", "cloudpickle": format = "pickle"
        case "skops": format = "skops"
        default: throw ImportError("the sklearn flavor's serialization_format `\(serialization)` is not one vessel loads (pickle, cloudpickle, skops)")
        }
        writer.model(format: format, file: file)
        guard let signature else {
            throw ImportError("the MLflow model has no signature; log it again with one (`signature=infer_signature(X, model.predict(X))`)")
        }
        let inputsText = signature["inputs"] as? String ?? "[]"
        let outputsText = signature["outputs"] as? String ?? "[]"
        let inputs = try parseSpecs(inputsText, what: "inputs")
        let outputs = try parseSpecs(outputsText, what: "outputs")
        if inputs.allSatisfy({ $0.isColumn }) {
            // A DataFrame of numbers: the model gets one [rows, columns] matrix; clients still
            // send named columns (OIP tensors, dataframe_split/records, Cog inputs).
            if let text = inputs.first(where: { !$0.isNumeric }) {
                throw ImportError(
                    "column `\(text.name ?? "?")` is \(text.type): columns of text or bytes need the DataFrame itself, which the ready-made loader does not build yet"
                )
            }
            writer.inputs = [TensorSpec(name: "features", dtype: .float64, shape: [.dynamic(name: nil), .fixed(inputs.count)])]
            writer.preprocess = [
                "  - type: columns\n    input: features\n    columns: [\(inputs.map { ModelDirectoryWriter.quoted($0.name ?? "") }.joined(separator: ", "))]"
            ]
        } else if inputs.count == 1, let spec = inputs.first, !spec.isColumn {
            writer.inputs = [TensorSpec(name: spec.name ?? "features", dtype: spec.dtype, shape: spec.shape)]
        } else {
            throw ImportError("the MLflow signature has \(inputs.count) tensor inputs; a scikit-learn model takes one matrix")
        }
        guard outputs.count == 1, let output = outputs.first else {
            throw ImportError("the MLflow signature has \(outputs.count) outputs; vessel serves the sklearn flavor's predict() as one")
        }
        writer.outputs = [
            TensorSpec(
                name: output.isColumn ? (output.name ?? "predictions") : (output.name ?? "predictions"), dtype: output.dtype,
                shape: output.isColumn ? [.dynamic(name: nil)] : output.shape)
        ]
        if output.dtype == .string { writer.notes.append("the model predicts strings: served as BYTES") }

        // MLflow itself is not needed to load a scikit-learn file.
        var runtime = pythonRuntime(pyfunc, writer: writer, mlflow: nil)
        if format == "skops" {
            let trusted = flavor["skops_trusted_types"] as? [String] ?? []
            if !trusted.isEmpty { runtime.append("trusted_types: [\(trusted.map(ModelDirectoryWriter.quoted).joined(separator: ", "))]") }
        }
        writer.runtime = runtime
        carryExample(mlmodel, into: &writer)
    }

    /// Any other model with a `python_function` flavor (a custom PythonModel, xgboost, lightgbm,
    /// …): the whole MLflow directory, loaded by `mlflow.pyfunc.load_model`. Column signatures
    /// stay columns (one input each, text too); the worker builds the DataFrame.
    static func importPyfunc(_ pyfunc: [String: Any], signature: [String: Any]?, mlmodel: [String: Any], into writer: inout ModelDirectoryWriter) throws {
        guard let signature else {
            throw ImportError("the MLflow model has no signature; log it again with one (`signature=infer_signature(input, model.predict(input))`)")
        }
        try writer.copyAll(into: "mlflow_model")
        writer.model(format: "mlflow", file: "mlflow_model")
        let inputs = try parseSpecs(signature["inputs"] as? String ?? "[]", what: "inputs")
        let outputs = try parseSpecs(signature["outputs"] as? String ?? "[]", what: "outputs")
        guard !inputs.isEmpty, !outputs.isEmpty else { throw ImportError("the MLflow signature has no inputs or no outputs") }
        writer.inputs = inputs.enumerated().map { k, spec in
            TensorSpec(
                name: spec.name ?? (inputs.count == 1 ? "features" : "input_\(k)"), dtype: spec.dtype, shape: spec.isColumn ? [.dynamic(name: nil)] : spec.shape
            )
        }
        let named = outputs.count > 1 && outputs.allSatisfy { $0.name != nil }
        guard outputs.count == 1 || named else { throw ImportError("the MLflow signature has \(outputs.count) unnamed outputs") }
        writer.outputs = outputs.map { spec in
            TensorSpec(name: named ? spec.name! : (spec.name ?? "predictions"), dtype: spec.dtype, shape: spec.isColumn ? [.dynamic(name: nil)] : spec.shape)
        }
        // The pyfunc loader is MLflow's own: its light distribution, at the version that saved the model.
        writer.runtime = pythonRuntime(pyfunc, writer: writer, mlflow: (mlmodel["mlflow_version"] as? String) ?? "")
        carryExample(mlmodel, into: &writer)
    }

    /// The environment MLflow recorded: its Python (major.minor) and requirements.txt; MLflow
    /// itself dropped (`mlflow` nil) or pinned as `mlflow-skinny==VERSION`.
    static func pythonRuntime(_ pyfunc: [String: Any]?, writer: ModelDirectoryWriter, mlflow: String?) -> [String] {
        var runtime = ["backend: python"]
        if let version = (pyfunc?["python_version"] as? String) ?? writer.pythonVersionFromEnv() {
            let parts = version.split(separator: ".")
            if parts.count >= 2 { runtime.append("python: \"\(parts[0]).\(parts[1])\"") }
        }
        var requirements = writer.requirements().filter { line in
            let name = line.split(whereSeparator: { "=<>!~;[ ".contains($0) }).first.map { $0.lowercased() } ?? ""
            return name != "mlflow" && name != "mlflow-skinny"
        }
        if let mlflow { requirements.insert(mlflow.isEmpty ? "mlflow-skinny" : "mlflow-skinny==\(mlflow)", at: 0) }
        if !requirements.isEmpty { runtime.append("requirements: [\(requirements.map(ModelDirectoryWriter.quoted).joined(separator: ", "))]") }
        return runtime
    }

    /// MLflow's saved input example as the bundled example's inputs: a split DataFrame by
    /// column, an array for the one input, an object by input name.
    static func carryExample(_ mlmodel: [String: Any], into writer: inout ModelDirectoryWriter) {
        guard let example = try? writer.inputExample(mlmodel) else { return }
        if let frame = example as? [String: Any], let columns = frame["columns"] as? [String], let rows = frame["data"] as? [[Any]] {
            var perColumn: [String: String] = [:]
            for (k, column) in columns.enumerated() {
                perColumn[column] = ModelDirectoryWriter.json(rows.map { k < $0.count ? $0[k] : NSNull() })
            }
            writer.exampleInputs = perColumn
        } else if let matrix = example as? [Any], let input = writer.inputs.first {
            writer.exampleInputs = [input.name: ModelDirectoryWriter.json(matrix)]
        } else if let object = example as? [String: Any] {
            writer.exampleInputs = object.mapValues(ModelDirectoryWriter.json)
        }
    }

    /// One entry of an MLflow signature: a column (`{"type": "double", "name": …}`) or a tensor
    /// (`{"type": "tensor", "tensor-spec": {"dtype": …, "shape": […]}}`).
    struct SpecEntry {
        var name: String?
        var type: String
        var dtype: DType
        var shape: [Dim]
        var isColumn: Bool { type != "tensor" }
        var isNumeric: Bool { !["string", "binary", "datetime"].contains(type) }
    }

    static func columnSignature(_ signature: [String: Any]?) throws -> [SpecEntry] {
        try parseSpecs(signature?["inputs"] as? String ?? "[]", what: "inputs").filter(\.isColumn)
    }

    static func parseSpecs(_ text: String, what: String) throws -> [SpecEntry] {
        guard let entries = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [[String: Any]] else {
            throw ImportError("the MLflow signature's \(what) are not the JSON list MLflow writes: \(text.prefix(120))")
        }
        return try entries.map { entry in
            let type = entry["type"] as? String ?? ""
            let name = entry["name"] as? String
            if type == "tensor" {
                let spec = entry["tensor-spec"] as? [String: Any] ?? [:]
                let numpy = spec["dtype"] as? String ?? ""
                guard let dtype = DType(rawValue: numpy) ?? (["object", "str", "bytes"].contains(numpy) ? .string : nil) else {
                    throw ImportError("the MLflow signature's tensor dtype `\(numpy)` has no Vessel dtype")
                }
                let shape = (spec["shape"] as? [Int] ?? [-1]).map { $0 < 0 ? Dim.dynamic(name: nil) : Dim.fixed($0) }
                return SpecEntry(name: name, type: type, dtype: dtype, shape: shape)
            }
            let columnTypes: [String: DType] = [
                "double": .float64, "float": .float32, "long": .int64, "integer": .int32, "boolean": .bool,
                "string": .string, "binary": .string, "datetime": .string
            ]
            guard let dtype = columnTypes[type] else { throw ImportError("the MLflow signature's column type `\(type)` has no Vessel dtype") }
            return SpecEntry(name: name, type: type, dtype: dtype, shape: [.dynamic(name: nil)])
        }
    }
}
