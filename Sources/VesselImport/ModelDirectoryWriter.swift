import Foundation
import VesselManifest
import VesselManifestYAML
import VesselTensor
import Yams

/// Builds the model directory an importer writes: the files it copies and a vessel.yaml, put
/// together in a temporary directory beside the target and renamed into place only once the
/// manifest validates — an import that fails leaves nothing behind.
struct ModelDirectoryWriter {
    let source: String
    let output: String
    let name: String
    private var staging = ""
    private var files: [(path: String, role: String)] = []
    private var modelLine = ""
    var inputs: [TensorSpec] = []
    var outputs: [TensorSpec] = []
    var preprocess: [String] = []
    var runtime: [String] = []
    /// A `serving:` line, if the import sets one.
    var serving: String?
    var exampleInputs: [String: String] = [:]
    var notes: [String] = []

    init(source: String, output: String, name: String) {
        self.source = source
        self.output = output
        self.name = name
    }

    /// A YAML file that must hold a mapping (MLmodel, cog.yaml), or an error saying what `what` is.
    static func loadMapping(_ path: String, what: String) throws -> [String: Any] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ImportError(what) }
        guard let mapping = (try? Yams.load(yaml: text)) as? [String: Any] else { throw ImportError("\(path) is not a YAML mapping") }
        return mapping
    }

    /// A valid artifact name from a directory name: lowercase letters, digits and dashes.
    static func artifactName(from text: String) -> String {
        let mapped = String(text.lowercased().map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "-" })
        let name = mapped.split(separator: "-").joined(separator: "-")
        return name.isEmpty ? "model" : name
    }

    mutating func prepare() throws {
        if FileManager.default.fileExists(atPath: output) {
            throw ImportError("\(output) already exists; choose another directory with -o")
        }
        let parent = (output as NSString).deletingLastPathComponent
        let base = parent.isEmpty ? "." : parent
        staging = (base as NSString).appendingPathComponent(".\((output as NSString).lastPathComponent).import-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true)
    }

    /// Copies a file from the source directory (if it is there) and lists it with `role`.
    mutating func copy(_ path: String, role: String) {
        let from = (source as NSString).appendingPathComponent(path)
        guard FileManager.default.fileExists(atPath: from) else { return }
        let to = (staging as NSString).appendingPathComponent(path)
        try? FileManager.default.createDirectory(atPath: (to as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        guard (try? FileManager.default.copyItem(atPath: from, toPath: to)) != nil else { return }
        files.append((path, role))
    }

    /// Copies the source directory's top-level entries but `excluding`, listing each (but those
    /// `skipping` says) with the role `role` gives it.
    mutating func copyTree(excluding: Set<String>, role: (String) -> String, skipping: (String) -> Bool) throws {
        for entry in try FileManager.default.contentsOfDirectory(atPath: source).sorted() where !excluding.contains(entry) && !entry.hasPrefix(".") {
            try FileManager.default.copyItem(
                atPath: (source as NSString).appendingPathComponent(entry), toPath: (staging as NSString).appendingPathComponent(entry))
            if !skipping(entry) { files.append((entry, role(entry))) }
        }
    }

    /// Copies `from` (a file or a directory, anywhere) to `path` inside the output, listed with
    /// `role` unless `role` is nil.
    mutating func copy(from: String, to path: String, role: String?) throws {
        try place(path, role: role) { try FileManager.default.copyItem(atPath: from, toPath: $0) }
    }

    /// Writes `text` to `path` inside the output, listed with `role` unless `role` is nil.
    mutating func write(_ text: String, to path: String, role: String?) throws {
        try place(path, role: role) { try Data(text.utf8).write(to: URL(fileURLWithPath: $0)) }
    }

    /// `make`s `path` inside the output (its parent created), listing it with `role` if given.
    private mutating func place(_ path: String, role: String?, make: (String) throws -> Void) throws {
        let to = (staging as NSString).appendingPathComponent(path)
        try FileManager.default.createDirectory(atPath: (to as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try make(to)
        if let role, !files.contains(where: { $0.path == path }) { files.append((path, role)) }
    }

    /// Copies the whole source directory to `directory` inside the output.
    func copyAll(into directory: String) throws {
        try FileManager.default.copyItem(atPath: source, toPath: (staging as NSString).appendingPathComponent(directory))
    }

    mutating func model(format: String, file: String) {
        modelLine = "model: {format: \(format), file: \(Self.quoted(file))}"
        let from = (source as NSString).appendingPathComponent(file)
        let to = (staging as NSString).appendingPathComponent(file)
        guard !FileManager.default.fileExists(atPath: to) else { return }
        try? FileManager.default.createDirectory(atPath: (to as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try? FileManager.default.copyItem(atPath: from, toPath: to)
    }

    /// The input example MLflow saved (`saved_input_example_info.artifact_path`), as JSON.
    func inputExample(_ mlmodel: [String: Any]) throws -> Any? {
        guard let info = mlmodel["saved_input_example_info"] as? [String: Any], let path = info["artifact_path"] as? String,
            let data = FileManager.default.contents(atPath: (source as NSString).appendingPathComponent(path))
        else { return nil }
        return try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
    }

    /// `requirements.txt`'s requirement lines (no comments, options or includes).
    func requirements() -> [String] {
        guard let text = try? String(contentsOfFile: (source as NSString).appendingPathComponent("requirements.txt"), encoding: .utf8) else { return [] }
        return text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") && !$0.hasPrefix("-") }
    }

    /// `python_env.yaml`'s `python:` version.
    func pythonVersionFromEnv() -> String? {
        guard let text = try? String(contentsOfFile: (source as NSString).appendingPathComponent("python_env.yaml"), encoding: .utf8),
            let env = try? Yams.load(yaml: text) as? [String: Any]
        else { return nil }
        return (env["python"] as? String) ?? (env["python"] as? Double).map { String($0) }
    }

    static func quoted(_ text: String) -> String {
        // JSON strings are YAML flow scalars.
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        return String(decoding: (try? encoder.encode(text)) ?? Data("\"\"".utf8), as: UTF8.self)
    }

    static func json(_ value: Any) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed, .sortedKeys]) else { return "null" }
        return String(decoding: data, as: UTF8.self)
    }

    /// Removes what was written so far (an import that failed).
    func discard() {
        if !staging.isEmpty { try? FileManager.default.removeItem(atPath: staging) }
    }

    /// Writes vessel.yaml, validates the directory as `vessel pack` would, and moves it into place.
    mutating func finish() throws -> ImportResult {
        func tensors(_ specs: [TensorSpec]) -> String {
            specs.map { spec in
                let shape = spec.shape.map { dim -> String in if case .fixed(let size) = dim { String(size) } else { "-1" } }
                var fields = "name: \(Self.quoted(spec.name)), dtype: \(spec.dtype.rawValue), shape: [\(shape.joined(separator: ", "))]"
                if spec.isOptional { fields += ", optional: true" }
                if let description = spec.description { fields += ", description: \(Self.quoted(description))" }
                return "    - {\(fields)}"
            }.joined(separator: "\n")
        }
        var yaml = """
            # Written by `vessel import` from \(source); every key is documented in docs/manifest.md.
            schemaVersion: 1
            name: \(Self.quoted(name))
            version: "1"
            \(modelLine)

            """
        if !files.isEmpty {
            yaml += "files:\n" + files.map { "  - {path: \(Self.quoted($0.path)), role: \($0.role)}" }.joined(separator: "\n") + "\n"
        }
        yaml += "signature:\n  inputs:\n\(tensors(inputs))\n  outputs:\n\(tensors(outputs))\n"
        if !preprocess.isEmpty { yaml += "preprocess:\n" + preprocess.joined(separator: "\n") + "\n" }
        if let serving { yaml += serving + "\n" }
        if !runtime.isEmpty { yaml += "runtime:\n" + runtime.map { "  " + $0 }.joined(separator: "\n") + "\n" }
        if !exampleInputs.isEmpty {
            let inputs = exampleInputs.sorted { $0.key < $1.key }.map { "\(Self.quoted($0.key)): \($0.value)" }.joined(separator: ", ")
            yaml += "examples:\n  - name: input-example\n    inputs: {\(inputs)}\n"
        }
        let manifestPath = (staging as NSString).appendingPathComponent("vessel.yaml")
        do {
            try Data(yaml.utf8).write(to: URL(fileURLWithPath: manifestPath))
            _ = try ManifestParser.load(directory: staging)
            try FileManager.default.moveItem(atPath: staging, toPath: output)
        } catch {
            try? FileManager.default.removeItem(atPath: staging)
            throw ImportError("the imported model does not validate, so nothing was written:\n\(error)")
        }
        return ImportResult(directory: output, notes: notes)
    }
}
