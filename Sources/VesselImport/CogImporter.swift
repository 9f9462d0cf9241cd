import Foundation
import VesselManifest
import VesselPython
import VesselTensor
import Yams

/// `vessel import cog DIR`: a Cog project (`cog.yaml` and its predictor) as a Vessel model
/// directory on the python backend. The predictor runs unchanged: Vessel's worker calls it as
/// Cog does (typed parameters, `Input` defaults and constraints, `Path` files in and out). Its
/// typed inputs become the signature, read by importing the predictor with the `cog` package
/// in the interpreter `VESSEL_PYTHON` (or `python3`) names.
public enum CogImporter {
    public static func run(source: String, output: String, name: String?, environment: [String: String]) throws -> ImportResult {
        let cog = try ModelDirectoryWriter.loadMapping(
            (source as NSString).appendingPathComponent("cog.yaml"),
            what: "\(source) has no readable cog.yaml: is it a Cog project?")
        guard let predict = cog["predict"] as? String, let colon = predict.lastIndex(of: ":") else {
            throw ImportError(
                "cog.yaml has no `predict: file.py:Predictor`; vessel imports predictor projects (train-only and server-only projects are not models)")
        }
        let build = cog["build"] as? [String: Any] ?? [:]
        let python = (build["python_version"] as? String) ?? (build["python_version"] as? Double).map { String($0) }
        let interpreter = try PythonInterpreter.find(version: nil, environment: environment)
        let absolute = (source as NSString).isAbsolutePath ? source : FileManager.default.currentDirectoryPath + "/" + source
        let (status, report) = try PythonEnvironment.runScript(
            introspection, arguments: [absolute, predict], interpreter: interpreter, environment: environment)
        guard status == 0, let line = report.split(separator: "\n").last(where: { $0.hasPrefix("{") }),
            let described = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        else {
            throw ImportError(
                "reading the predictor's inputs with \(interpreter) failed (it needs the `cog` package and the predictor's imports):\n"
                    + report.split(separator: "\n").suffix(8).joined(separator: "\n"))
        }

        var writer = ModelDirectoryWriter(
            source: source, output: output,
            name: name ?? ModelDirectoryWriter.artifactName(from: (absolute as NSString).lastPathComponent))
        try writer.prepare()
        do {
            let module = String(predict[..<colon])
            try writer.copyTree(excluding: [".git", ".cog", "__pycache__", ".venv", "venv"]) { path in
                path == "cog.yaml" || path.hasSuffix(".md") ? "doc" : path.hasSuffix(".py") ? "code" : "weights"
            } skipping: {
                $0 == module
            }
            writer.model(format: "python", file: module)
            var inputs: [TensorSpec] = []
            for entry in described["inputs"] as? [[String: Any]] ?? [] {
                let name = entry["name"] as? String ?? ""
                let dtype = try Self.dtype(entry["type"] as? [String: Any], what: "input `\(name)`")
                let optional = entry["has_default"] as? Bool == true || (entry["type"] as? [String: Any])?["optional"] as? Bool == true
                inputs.append(
                    TensorSpec(
                        name: name, dtype: dtype, shape: [.dynamic(name: nil)], description: entry["description"] as? String,
                        optional: optional ? true : nil))
            }
            writer.inputs = inputs
            writer.outputs = [
                TensorSpec(name: "output", dtype: try Self.dtype(described["output"] as? [String: Any], what: "the output"), shape: [.dynamic(name: nil)])
            ]
            var requirements = build["python_packages"] as? [String] ?? []
            if let file = build["python_requirements"] as? String,
                let lines = try? String(contentsOfFile: (source as NSString).appendingPathComponent(file), encoding: .utf8)
            {
                requirements += lines.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter {
                    !$0.isEmpty && !$0.hasPrefix("#") && !$0.hasPrefix("-")
                }
            }
            // Cog's images carry the `cog` package the predictor imports; here it is a requirement.
            if let version = described["cog"] as? String, !requirements.contains(where: { $0.lowercased().hasPrefix("cog=") || $0.lowercased() == "cog" }) {
                requirements.append("cog==\(version)")
            }
            var runtime = ["backend: python", "predictor: \(ModelDirectoryWriter.quoted(predict))"]
            if let python {
                let parts = python.split(separator: ".")
                runtime.append("python: \"\(parts.prefix(2).joined(separator: "."))\"")
            }
            if !requirements.isEmpty { runtime.append("requirements: [\(requirements.map(ModelDirectoryWriter.quoted).joined(separator: ", "))]") }
            writer.runtime = runtime
            writer.serving = "serving: {max_concurrency: 1}"
            if let system = build["system_packages"] as? [String], !system.isEmpty {
                writer.notes.append(
                    "cog.yaml's system_packages (\(system.joined(separator: ", "))) are not installed by vessel; the predictor must not need them")
            }
            if build["gpu"] as? Bool == true { writer.notes.append("cog.yaml asks for a GPU; vessel runs the predictor on the CPU") }
            if inputs.isEmpty { writer.notes.append("the predictor takes no inputs") }
            return try writer.finish()
        } catch {
            writer.discard()
            throw error
        }
    }

    static func dtype(_ type: [String: Any]?, what: String) throws -> DType {
        let kind = type?["kind"] as? String ?? "?"
        switch kind {
        case "float": return .float64
        case "int": return .int64
        case "bool": return .bool
        case "str", "Secret", "Path", "File", "URLPath", "URLFile", "PosixPath": return .string
        case "list": return try dtype(type?["item"] as? [String: Any], what: what)
        default: throw ImportError("\(what) is a `\(kind)`, which vessel cannot carry as a tensor yet (str, int, float, bool, Path, File and lists of them)")
        }
    }

    /// Imports the predictor (with `cog` installed) and prints its parameters and return type as JSON.
    static let introspection = #"""
        import sys, os, json, inspect, typing, importlib.util
        directory, reference = sys.argv[1], sys.argv[2]
        os.chdir(directory)
        sys.path.insert(0, directory)
        import cog
        path, _, class_name = reference.rpartition(":")
        spec = importlib.util.spec_from_file_location("vessel_cog_predictor", os.path.join(directory, path))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        predictor = getattr(module, class_name)
        method = getattr(predictor, "predict", None) or getattr(predictor, "run", None)
        def describe(annotation):
            origin, args = typing.get_origin(annotation), typing.get_args(annotation)
            if origin is typing.Union and type(None) in args:
                inner = describe([a for a in args if a is not type(None)][0])
                inner["optional"] = True
                return inner
            name = getattr(origin, "__name__", "") if origin is not None else ""
            if origin in (list, tuple) or annotation in (list, tuple) or name.endswith("Iterator"):
                return {"kind": "list", "item": describe(args[0]) if args else {"kind": "any"}}
            return {"kind": getattr(annotation, "__name__", str(annotation))}
        hints = typing.get_type_hints(method)
        inputs = []
        for name, param in inspect.signature(method).parameters.items():
            if name == "self" or param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
                continue
            entry = {"name": name, "type": describe(hints.get(name, param.annotation))}
            default = param.default
            if hasattr(default, "ge") and hasattr(default, "default"):
                entry["description"] = default.description
                entry["has_default"] = default.default is not None
            elif default is not param.empty:
                entry["has_default"] = True
            inputs.append(entry)
        print(json.dumps({"inputs": inputs, "output": describe(hints.get("return", inspect.signature(method).return_annotation)),
                          "cog": getattr(cog, "__version__", None)}, default=str))
        """#
}
