import Foundation
import VesselManifest
import VesselTensor
import Yams

/// `vessel import bento DIR_OR_TAG`: a built Bento (BentoML 1.2+ services: `bento.yaml` with a
/// `schema`) as Vessel model directories on the python backend, one per `@bentoml.api` method.
///
/// The source is a Bento directory — in the Bento store, or an exported Bento unpacked — or a
/// `NAME[:VERSION]` tag looked up in `$BENTOML_HOME/bentos` (default `~/bentoml`). Each written
/// directory holds the Bento's `src/`, the models its services name (`bentoml/models/…`, from the
/// Bento's own `models/` or the model store) and `vessel_bento.py`, a predictor that points
/// `BENTOML_HOME` at those models, imports the service, instantiates it as BentoML's server does
/// (`Service.inner()`) and calls the method. The API's input schema becomes the signature;
/// the Bento's Python version and locked requirements (`requirements.lock.txt`, else
/// `requirements.txt`) the runtime. Reading the Bento needs no Python.
public enum BentoImporter {
    public static func run(source: String, output: String, name: String?, api: String?, environment: [String: String]) throws -> ImportResult {
        let bento = try locate(source, environment: environment)
        let document = try ModelDirectoryWriter.loadMapping(
            (bento as NSString).appendingPathComponent("bento.yaml"),
            what: "\(source) is neither a Bento directory (holding bento.yaml) nor a Bento tag in the Bento store")
        guard let service = document["service"] as? String, service.contains(":") else {
            throw ImportError("bento.yaml names no `service: module:Class`")
        }
        guard let schema = document["schema"] as? [String: Any], let routes = schema["routes"] as? [[String: Any]] else {
            throw ImportError(
                "bento.yaml has no `schema` with routes: vessel imports Bentos of BentoML 1.2+ services (@bentoml.service, @bentoml.api); rebuild it with a current BentoML"
            )
        }
        if let services = document["services"] as? [[String: Any]], services.contains(where: { !(($0["dependencies"] as? [Any]) ?? []).isEmpty }) {
            throw ImportError("the Bento's service depends on other services (bentoml.depends); vessel imports single-service Bentos")
        }
        let bentoName = document["name"] as? String ?? (bento as NSString).lastPathComponent
        let chosen = routes.filter { route in api.map { route["name"] as? String == $0 } ?? true }
        guard !chosen.isEmpty else {
            let names = routes.compactMap { $0["name"] as? String }
            throw ImportError("the Bento has no API `\(api ?? "")`; its APIs: \(names.joined(separator: ", "))")
        }
        let requirements = Self.requirements(bento)
        let image = document["image"] as? [String: Any] ?? [:]
        let docker = document["docker"] as? [String: Any] ?? [:]
        let python = (image["python_version"] as? String) ?? (docker["python_version"] as? String)
        let models = try Self.models(of: document, bento: bento, environment: environment)

        // One API: OUT is its model; several: OUT/API for each, written together or not at all.
        let single = chosen.count == 1
        let base = name ?? ModelDirectoryWriter.artifactName(from: bentoName)
        if !single {
            if FileManager.default.fileExists(atPath: output) { throw ImportError("\(output) already exists; choose another directory with -o") }
            try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        }
        var notes: [String] = []
        var written: [String] = []
        do {
            for route in chosen {
                let apiName = route["name"] as? String ?? "api"
                let directory = single ? output : (output as NSString).appendingPathComponent(apiName)
                let modelName = single ? base : ModelDirectoryWriter.artifactName(from: base + "-" + apiName)
                var writer = ModelDirectoryWriter(source: bento, output: directory, name: modelName)
                try writer.prepare()
                do {
                    try writer.copy(from: (bento as NSString).appendingPathComponent("src"), to: "src", role: "code")
                    for model in models { try writer.copy(from: model.path, to: "bentoml/models/\(model.name)/\(model.version)", role: "weights") }
                    for (modelName, version) in Self.latest(models) {
                        try writer.write(version, to: "bentoml/models/\(modelName)/latest", role: "weights")
                    }
                    let (inputs, scalars, inputNotes) = try Self.inputs(route)
                    let (output, outputNotes) = try Self.output(route)
                    try writer.write(Self.predictor(service: service, api: apiName, scalars: scalars), to: "vessel_bento.py", role: nil)
                    writer.model(format: "python", file: "vessel_bento.py")
                    writer.inputs = inputs
                    writer.outputs = [output]
                    var runtime = ["backend: python", "predictor: \"vessel_bento.py:Predictor\""]
                    if let python { runtime.append("python: \"\(python.split(separator: ".").prefix(2).joined(separator: "."))\"") }
                    if !requirements.isEmpty { runtime.append("requirements: [\(requirements.map(ModelDirectoryWriter.quoted).joined(separator: ", "))]") }
                    writer.runtime = runtime
                    writer.notes = (inputNotes + outputNotes).map { "\(apiName): \($0)" }
                    let result = try writer.finish()
                    notes += result.notes
                    written.append(directory)
                } catch {
                    writer.discard()
                    throw error
                }
            }
        } catch {
            if !single { try? FileManager.default.removeItem(atPath: output) }
            throw error
        }
        for route in chosen where route["batchable"] as? Bool == true {
            notes.append(
                "\(route["name"] as? String ?? "?"): batchable in BentoML; vessel calls it once per request unless serving.max_batch_size merges requests")
        }
        return ImportResult(directory: output, notes: notes, directories: written)
    }

    /// A Bento directory, or a tag's directory in the Bento store.
    static func locate(_ source: String, environment: [String: String]) throws -> String {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: source, isDirectory: &isDirectory), isDirectory.boolValue { return source }
        let store = bentomlHome(environment) + "/bentos"
        let parts = source.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count >= 1, !parts[0].isEmpty, !parts[0].contains("/") else { throw ImportError("\(source) is neither a directory nor a Bento tag") }
        var version = parts.count == 2 ? parts[1] : "latest"
        if version == "latest" {
            guard let text = try? String(contentsOfFile: "\(store)/\(parts[0])/latest", encoding: .utf8) else {
                throw ImportError("no Bento `\(parts[0])` in \(store) (BENTOML_HOME); give its directory instead")
            }
            version = text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let directory = "\(store)/\(parts[0])/\(version)"
        guard FileManager.default.fileExists(atPath: directory + "/bento.yaml") else { throw ImportError("no Bento \(parts[0]):\(version) in \(store)") }
        return directory
    }

    static func bentomlHome(_ environment: [String: String]) -> String {
        if let home = environment["BENTOML_HOME"], !home.isEmpty { return home }
        return (environment["HOME"] ?? NSHomeDirectory()) + "/bentoml"
    }

    struct Model {
        var name: String
        var version: String
        var path: String
    }

    /// Every model the Bento's services name, from the Bento's `models/` (an exported Bento) or
    /// the model store.
    static func models(of document: [String: Any], bento: String, environment: [String: String]) throws -> [Model] {
        var tags: [String] = (document["models"] as? [[String: Any]] ?? []).compactMap { $0["tag"] as? String }
        for service in document["services"] as? [[String: Any]] ?? [] {
            tags += (service["models"] as? [[String: Any]] ?? []).compactMap { $0["tag"] as? String }
        }
        var seen = Set<String>()
        var models: [Model] = []
        for tag in tags where seen.insert(tag).inserted {
            let parts = tag.split(separator: ":", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw ImportError("bento.yaml names model `\(tag)`, which is not NAME:VERSION") }
            let candidates = ["\(bento)/models/\(parts[0])/\(parts[1])", "\(bentomlHome(environment))/models/\(parts[0])/\(parts[1])"]
            guard let path = candidates.first(where: { FileManager.default.fileExists(atPath: $0 + "/model.yaml") }) else {
                throw ImportError(
                    "the Bento's model \(tag) is neither in the Bento (models/) nor in the model store (\(candidates[1])); export the Bento with its models (bentoml export)"
                )
            }
            models.append(Model(name: parts[0], version: parts[1], path: path))
        }
        return models
    }

    /// Each model name's newest version (by its model.yaml `creation_time`), for `NAME:latest`.
    static func latest(_ models: [Model]) -> [(String, String)] {
        var newest: [String: (version: String, created: String)] = [:]
        for model in models {
            let yaml = (try? String(contentsOfFile: model.path + "/model.yaml", encoding: .utf8)).flatMap { try? Yams.load(yaml: $0) as? [String: Any] }
            let created = (yaml?["creation_time"]).map { "\($0)" } ?? ""
            if let current = newest[model.name], current.created >= created { continue }
            newest[model.name] = (model.version, created)
        }
        return newest.sorted { $0.key < $1.key }.map { ($0.key, $0.value.version) }
    }

    /// The locked requirements (`requirements.lock.txt`), else the declared ones, one pin each:
    /// continuation lines joined, hashes, options and comments dropped.
    static func requirements(_ bento: String) -> [String] {
        let directory = (bento as NSString).appendingPathComponent("env/python")
        let text =
            (try? String(contentsOfFile: directory + "/requirements.lock.txt", encoding: .utf8))
            ?? (try? String(contentsOfFile: directory + "/requirements.txt", encoding: .utf8)) ?? ""
        return text.replacingOccurrences(of: "\\\n", with: " ").split(separator: "\n").compactMap { line in
            let requirement = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            let words = requirement.split(separator: " ").filter { !$0.hasPrefix("--hash") }
            guard let first = words.first, !first.hasPrefix("-") else { return nil }
            return words.joined(separator: " ")
        }
    }

    /// The API's inputs as tensors: numpy arrays and tensors with their annotated dtype and
    /// shape; numbers, integers, booleans and strings as one value each (`scalars`, handed to the
    /// method as Python values); arrays of them as vectors. Those with defaults are optional.
    static func inputs(_ route: [String: Any]) throws -> (specs: [TensorSpec], scalars: [String: String], notes: [String]) {
        let input = route["input"] as? [String: Any] ?? [:]
        let properties = input["properties"] as? [String: Any] ?? [:]
        let required = Set(input["required"] as? [String] ?? [])
        var specs: [TensorSpec] = []
        var scalars: [String: String] = [:]
        var notes: [String] = []
        // The required ones in the schema's order, then the optional ones by name.
        let listed = input["required"] as? [String] ?? []
        for name in listed + properties.keys.filter({ !required.contains($0) }).sorted() {
            guard let property = properties[name] as? [String: Any] else { continue }
            let (spec, scalar, note) = try tensor(name: name, property, what: "input `\(name)`")
            var described = spec
            if !required.contains(name) { described.optional = true }
            specs.append(described)
            if let scalar { scalars[name] = scalar }
            if let note { notes.append(note) }
        }
        return (specs, scalars, notes)
    }

    static func output(_ route: [String: Any]) throws -> (TensorSpec, [String]) {
        let output = route["output"] as? [String: Any] ?? [:]
        let (spec, _, note) = try tensor(name: "output", output, what: "the output", output: true)
        return (spec, note.map { [$0] } ?? [])
    }

    /// One schema property as a tensor; `scalar` names the JSON type of a one-value input.
    static func tensor(name: String, _ property: [String: Any], what: String, output: Bool = false) throws -> (TensorSpec, scalar: String?, note: String?) {
        let type = property["type"] as? String ?? "?"
        let format = property["format"] as? String
        switch type {
        case "tensor":
            var note: String?
            let dtype: DType
            if let text = property["dtype"] as? String {
                guard let parsed = DType(parsing: text) else { throw ImportError("\(what) has dtype `\(text)`, which vessel does not carry") }
                dtype = parsed
            } else {
                // Exact for every float32 and int32 value a model returns; float32 is what models take.
                dtype = output ? .float64 : .float32
                note = "\(what) is a tensor of no declared dtype: declared \(dtype.rawValue) (annotate it with DType, or edit vessel.yaml)"
            }
            var shape: [Dim]
            if let dims = property["shape"] as? [Int] {
                shape = dims.map { $0 < 0 ? .dynamic(name: nil) : .fixed($0) }
            } else {
                shape = output ? [.dynamic(name: nil)] : [.dynamic(name: nil), .dynamic(name: nil)]
                note =
                    (note.map { $0 + "; " } ?? "")
                    + "\(what) has no declared shape: declared [\(shape.map { _ in "-1" }.joined(separator: ", "))] (annotate it with Shape, or edit vessel.yaml)"
            }
            if format == "pandas-dataframe" { throw ImportError("\(what) is a pandas DataFrame, which vessel cannot carry from a Bento yet") }
            return (TensorSpec(name: name, dtype: dtype, shape: shape), nil, note)
        case "number", "integer", "boolean", "string":
            if format == "binary" || format == "image" || format == "audio" || format == "video" {
                throw ImportError("\(what) is a file (\(format ?? "")), which vessel cannot carry from a Bento yet")
            }
            let dtype: DType = ["number": .float64, "integer": .int64, "boolean": .bool, "string": .string][type]!
            return (TensorSpec(name: name, dtype: dtype, shape: [.fixed(1)], description: property["description"] as? String), type, nil)
        case "array":
            let items = property["items"] as? [String: Any] ?? [:]
            guard let item = items["type"] as? String, let dtype = (["number": DType.float64, "integer": .int64, "boolean": .bool, "string": .string])[item]
            else {
                throw ImportError("\(what) is an array of `\(items["type"] as? String ?? "objects")`, which vessel cannot carry yet")
            }
            return (TensorSpec(name: name, dtype: dtype, shape: [.dynamic(name: nil)]), "list", nil)
        default:
            throw ImportError(
                "\(what) is a `\(type)`\(format.map { " (\($0))" } ?? ""), which vessel cannot carry from a Bento yet (tensors, numbers, strings, booleans and arrays of them)"
            )
        }
    }

    /// The predictor that runs one API of the service.
    static func predictor(service: String, api: String, scalars: [String: String]) -> String {
        let table = scalars.sorted { $0.key < $1.key }.map { "\(ModelDirectoryWriter.quoted($0.key)): \(ModelDirectoryWriter.quoted($0.value))" }
        return """
            # Written by `vessel import bento`: runs the Bento service's API `\(api)` as a Vessel predictor.
            import asyncio
            import importlib
            import inspect
            import os
            import sys

            HERE = os.path.dirname(os.path.abspath(__file__))
            # The models the service names, carried beside it (bentoml.models.BentoModel reads them).
            os.environ["BENTOML_HOME"] = os.path.join(HERE, "bentoml")
            os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
            sys.path.insert(0, os.path.join(HERE, "src"))

            SERVICE = \(ModelDirectoryWriter.quoted(service))
            API = \(ModelDirectoryWriter.quoted(api))
            # Inputs the API takes as one Python value (or a list), by their JSON type.
            SCALARS = {\(table.joined(separator: ", "))}


            class Predictor:
                def setup(self):
                    module, _, attribute = SERVICE.partition(":")
                    service = importlib.import_module(module)
                    for part in attribute.split("."):
                        service = getattr(service, part)
                    # What BentoML's server does: the user's class, instantiated once.
                    instance = service.inner()
                    self.method = getattr(instance, service.apis[API].func.__name__)

                def predict(self, **inputs):
                    arguments = {}
                    for name, value in inputs.items():
                        kind = SCALARS.get(name)
                        if kind == "list":
                            arguments[name] = value.reshape(-1).tolist()
                        elif kind is not None:
                            arguments[name] = value.reshape(-1)[0].item() if hasattr(value.reshape(-1)[0], "item") else value.reshape(-1)[0]
                        else:
                            arguments[name] = value
                    result = self.method(**arguments)
                    if inspect.iscoroutine(result):
                        result = asyncio.run(result)
                    return result

            """
    }
}
