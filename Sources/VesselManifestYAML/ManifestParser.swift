public import Foundation
import VesselStore
import VesselSystem
import VesselTensor
public import VesselManifest
import VesselProcessing
import Yams

/// Parses and validates `vessel.yaml`.
///
/// Every problem found is collected as a ``Diagnostic`` with its file:line:column; parsing throws
/// ``ManifestValidationError`` only at the end, with all of them, when at least one is an error.
public enum ManifestParser {
    public static let fileName = "vessel.yaml"

    /// The result of a successful parse: the manifest and any warnings.
    public struct Result: Sendable {
        public var manifest: Manifest
        public var warnings: [Diagnostic]
    }

    /// Reads `vessel.yaml` from a model directory and checks every file it names exists there.
    public static func load(directory: String, fileName: String = fileName) throws -> Result {
        let path = (directory as NSString).appendingPathComponent(fileName)
        let start = SourceLocation(file: path, line: 1, column: 1)
        guard FileSystem.exists(path) else {
            throw ManifestValidationError(diagnostics: [
                Diagnostic(
                    .error, "cannot read \(fileName) in \(directory)", at: start,
                    hint: "run `vessel init MODEL` to write one, or pass the directory that holds it")
            ])
        }
        // The manifest is packed as a file of the model directory: a symlink out of it would
        // pack something from elsewhere.
        if !ResolvedPath.isInside(path, directory: directory) {
            throw ManifestValidationError(diagnostics: [
                Diagnostic(
                    .error, "\(fileName) is a symbolic link to \(ResolvedPath.of(path) ?? path), outside the model directory", at: start,
                    hint: "copy the file into the directory instead of linking it")
            ])
        }
        let bytes: [UInt8]
        do {
            bytes = try FileSystem.readFile(path, limit: Int64(Manifest.maximumBytes))
        } catch StoreError.corrupt {
            throw ManifestValidationError(diagnostics: [
                Diagnostic(
                    .error, "\(fileName) is larger than \(Manifest.maximumBytes >> 10) KiB, the most vessel reads", at: start,
                    hint: "keep large data (labels, vocabularies, example tensors) in files of their own and name them in `files`")
            ])
        } catch {
            throw ManifestValidationError(diagnostics: [Diagnostic(.error, "cannot read \(fileName): \(error)", at: start)])
        }
        return try parse(data: Data(bytes), file: path, baseDirectory: directory)
    }

    /// Parses manifest bytes. With a `baseDirectory`, every referenced file must exist inside it;
    /// without one (a manifest read back from an artifact) paths are checked for shape only.
    public static func parse(data: Data, file: String, baseDirectory: String?) throws -> Result {
        try checkSize(data.count, file: file)
        guard let text = String(data: data, encoding: .utf8) else {
            throw ManifestValidationError(diagnostics: [
                Diagnostic(.error, "the manifest is not valid UTF-8", at: SourceLocation(file: file, line: 1, column: 1))
            ])
        }
        return try parse(text: text, file: file, baseDirectory: baseDirectory)
    }

    static func checkSize(_ count: Int, file: String) throws {
        guard count <= Manifest.maximumBytes else {
            throw ManifestValidationError(diagnostics: [
                Diagnostic(
                    .error, "the manifest has \(count) bytes, more than the \(Manifest.maximumBytes >> 10) KiB vessel reads",
                    at: SourceLocation(file: file, line: 1, column: 1))
            ])
        }
    }

    public static func parse(text: String, file: String, baseDirectory: String?) throws -> Result {
        try checkSize(text.utf8.count, file: file)
        var walker = YAMLWalker(file: file)
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw ManifestValidationError(diagnostics: [
                    Diagnostic(
                        .error, "the manifest is empty", at: SourceLocation(file: file, line: 1, column: 1),
                        hint: "run `vessel init MODEL` for a starting point")
                ])
            }
            root = node
            guard Self.countNodes(node, budget: Manifest.maximumNodes) else {
                throw ManifestValidationError(diagnostics: [
                    Diagnostic(
                        .error, "the manifest expands to more than \(Manifest.maximumNodes) YAML nodes", at: SourceLocation(file: file, line: 1, column: 1),
                        hint: "aliases (*name) that repeat anchors many times over are the usual cause; write the values out")
                ])
            }
        } catch let error as YamlError {
            throw ManifestValidationError(diagnostics: [syntaxDiagnostic(error, file: file)])
        }
        var reader = ManifestReader(walker: walker, baseDirectory: baseDirectory)
        let manifest = reader.read(root)
        walker = reader.walker
        let diagnostics = walker.diagnostics.sorted { ($0.location.line, $0.location.column) < ($1.location.line, $1.location.column) }
        if let manifest, !diagnostics.contains(where: { $0.severity == .error }) {
            return Result(manifest: manifest, warnings: diagnostics)
        }
        throw ManifestValidationError(diagnostics: diagnostics)
    }

    /// Walks the composed tree (aliases are already replaced by what they name, so a tree that
    /// is small in text can be exponentially large) and stops as soon as it has seen `budget`
    /// nodes: false if there are more.
    static func countNodes(_ root: Node, budget: Int) -> Bool {
        var remaining = budget
        var stack = [root]
        while let node = stack.popLast() {
            remaining -= 1
            if remaining < 0 { return false }
            switch node {
            case .mapping(let mapping):
                for (key, value) in mapping {
                    stack.append(key)
                    stack.append(value)
                }
            case .sequence(let sequence): stack.append(contentsOf: sequence)
            case .scalar, .alias: break
            }
        }
        return true
    }

    static func syntaxDiagnostic(_ error: YamlError, file: String) -> Diagnostic {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            let where_ = context.map { " (\($0.text))" } ?? ""
            return Diagnostic(
                .error, "YAML syntax error: \(problem)\(where_)",
                at: SourceLocation(file: file, line: mark.line, column: mark.column))
        case .duplicatedKeysInMapping(let duplicates, let context):
            return Diagnostic(
                .error, "duplicate key\(duplicates.count == 1 ? "" : "s") \(duplicates.map { "`\($0)`" }.joined(separator: ", "))",
                at: SourceLocation(file: file, line: context.mark.line, column: context.mark.column),
                hint: "remove one of them")
        default:
            return Diagnostic(.error, "YAML syntax error: \(error)", at: SourceLocation(file: file, line: 1, column: 1))
        }
    }
}

/// The schema walk itself: one method per section of the manifest.
struct ManifestReader {
    var walker: YAMLWalker
    let baseDirectory: String?
    /// Tensors whose entry had an error: later checks must not also blame their name as unknown.
    var brokenTensorNames: Set<String> = []
    /// Each stage's steps' nodes, in the order of the steps read, so a step the processing
    /// plan refuses is reported at its line and column.
    var stepNodes: [StepSchema.Stage: [Node]] = [:]
    /// Where inputs were declared `optional: true`, for the checks that need the whole manifest.
    var optionalInputNodes: [Node] = []

    static let topLevelKeys = [
        "schemaVersion", "name", "version", "description", "authors", "license", "tags", "annotations",
        "model", "files", "config", "signature", "preprocess", "postprocess", "serving", "examples", "runtime"
    ]

    mutating func read(_ root: Node) -> Manifest? {
        guard
            let fields = walker.fields(
                root, in: "the manifest", allowed: Self.topLevelKeys,
                required: ["name", "version", "model", "signature"])
        else { return nil }

        var schemaVersion = Manifest.currentSchemaVersion
        if let node = fields["schemaVersion"]?.value, let value = walker.int(node, "`schemaVersion`", minimum: 1) {
            if value > Manifest.currentSchemaVersion {
                walker.error(
                    "`schemaVersion` \(value) is newer than this vessel understands (up to \(Manifest.currentSchemaVersion))",
                    at: node, hint: "upgrade vessel to read this manifest")
            }
            schemaVersion = value
        }

        let name = fields["name"].flatMap { field -> String? in
            guard let name = walker.nonEmptyString(field.value, "`name`") else { return nil }
            if let problem = Reference.nameProblem(name) {
                walker.error(
                    "`name` \"\(name)\" is not a valid artifact name: \(problem)", at: field.value,
                    hint: "names look like `iris` or `team/iris-classifier`")
                return nil
            }
            return name
        }
        let version = fields["version"].flatMap { field -> String? in
            guard let version = walker.nonEmptyString(field.value, "`version`") else { return nil }
            if !Reference.isValid(tag: version) {
                walker.error(
                    "`version` \"\(version)\" cannot be used as a tag", at: field.value,
                    hint: "up to 128 letters, digits, `_`, `.` and `-`, such as `1.0.2`")
                return nil
            }
            return version
        }
        let description = fields["description"].flatMap { walker.string($0.value, "`description`") }
        let authors = fields["authors"].map { walker.strings($0.value, "`authors`") } ?? []
        let license = fields["license"].flatMap { walker.nonEmptyString($0.value, "`license`") }
        let tags = fields["tags"].map { walker.strings($0.value, "`tags`") } ?? []
        let annotations = fields["annotations"].map { readAnnotations($0.value) } ?? [:]
        let model = fields["model"].flatMap { readModel($0.value) }
        let files = fields["files"].map { readFiles($0.value, model: model) } ?? []
        let config = fields["config"].map { readConfig($0.value) } ?? [:]
        let signature = fields["signature"].flatMap { readSignature($0.value) }
        let serving = fields["serving"].map { readServing($0.value) } ?? ServingSettings()
        let runtime = readRuntime(fields["runtime"]?.value, format: model?.format)

        var declared = Set(([model?.file].compactMap { $0 }) + files.map(\.path))
        var extraFiles: [FileEntry] = []
        if let model { checkPythonLoader(runtime, model: model, signature: signature, at: fields["model"]?.value) }
        if let first = optionalInputNodes.first {
            // Only a predictor can supply a missing input's value; a merged batch needs every input.
            if runtime.backend != .python || runtime.predictor == nil {
                walker.error("optional inputs need a python predictor (`runtime.predictor`), which supplies their defaults", at: first)
            } else if serving.maxBatchSize > 1 {
                walker.error("optional inputs cannot be batched (`serving.max_batch_size` is \(serving.maxBatchSize))", at: first)
            }
        }
        if let predictor = runtime.predictor, let colon = predictor.lastIndex(of: ":"), !declared.contains(String(predictor[..<colon])) {
            // The predictor's file is packed as code even when `files` does not list it.
            declared.insert(String(predictor[..<colon]))
            extraFiles.append(FileEntry(path: String(predictor[..<colon]), role: .code, description: "the Python predictor"))
        }
        if let predictor = runtime.predictor, let colon = predictor.lastIndex(of: ":"), let baseDirectory {
            warnUnpackedModules(besides: String(predictor[..<colon]), declared: declared, in: baseDirectory, at: fields["runtime"]?.value)
        }
        if runtime.backend == .python, !runtime.requirements.isEmpty, let baseDirectory, !declared.contains(RuntimeSpec.lockFileName),
            FileSystem.exists(FileSystem.join(baseDirectory, RuntimeSpec.lockFileName))
        {
            // The requirements as `vessel pack` resolved them: serving installs exactly these.
            declared.insert(RuntimeSpec.lockFileName)
            extraFiles.append(FileEntry(path: RuntimeSpec.lockFileName, role: .code, description: "runtime.requirements resolved to wheels"))
        }
        var preprocess: [ProcessingStep] = []
        var postprocess: [ProcessingStep] = []
        var produced: Set<String> = []
        if let signature {
            if let node = fields["preprocess"]?.value {
                preprocess = readSteps(node, stage: .pre, signature: signature, files: &declared, extra: &extraFiles, produced: &produced)
            }
            if let node = fields["postprocess"]?.value {
                postprocess = readSteps(node, stage: .post, signature: signature, files: &declared, extra: &extraFiles, produced: &produced)
            }
        }
        // Examples are what clients send and get: the served signature, once the steps compile.
        var served = signature
        if let signature, !(preprocess.isEmpty && postprocess.isEmpty) {
            // Each step's tensor, dtype and shape against the next: what the server will run.
            do {
                let plan = try ProcessingPlan(signature: signature, preprocess: preprocess, postprocess: postprocess)
                served = plan.served
                // The files the steps read (a tokenizer, a label list), read as serving reads them.
                if let baseDirectory {
                    _ = try plan.loadingFiles { path in try FileSystem.readFile(FileSystem.join(baseDirectory, path), limit: ProcessingPlan.fileLimit) }
                }
            } catch let error as ProcessingError {
                let stage: StepSchema.Stage = error.stage == .pre ? .pre : .post
                walker.error("\(error)", at: stepNodes[stage]?[error.index])
            } catch {
                walker.error("\(error)", at: fields["preprocess"]?.value ?? fields["postprocess"]?.value)
            }
        }
        var examples: [Example] = []
        if let node = fields["examples"]?.value, let served {
            examples = readExamples(node, signature: served, extraOutputs: produced, files: &declared, extra: &extraFiles)
        }

        guard let name, let version, let model, let signature else { return nil }
        return Manifest(
            schemaVersion: schemaVersion, name: name, version: version, description: description,
            authors: authors, license: license, tags: tags, annotations: annotations, model: model,
            files: files + extraFiles, config: config, signature: signature, preprocess: preprocess,
            postprocess: postprocess, serving: serving, examples: examples, runtime: runtime
        )
    }

    // MARK: Sections

    mutating func readAnnotations(_ node: Node) -> [String: String] {
        guard case .mapping(let mapping) = node else {
            walker.error("`annotations` must be a mapping of strings", at: node)
            return [:]
        }
        var result: [String: String] = [:]
        for (key, value) in mapping {
            guard let key = walker.string(key, "an annotation key"), let text = walker.string(value, "annotation `\(key)`") else { continue }
            result[key] = text
        }
        return result
    }

    mutating func readConfig(_ node: Node) -> [String: Value] {
        guard case .mapping = node else {
            walker.error("`config` must be a mapping of free-form values", at: node)
            return [:]
        }
        guard case .object(let members) = walker.value(node) else { return [:] }
        return members
    }

    mutating func readModel(_ node: Node) -> ModelSpec? {
        let keys = ["format", "file", "architecture", "family", "precision", "quantization", "paramSize"]
        guard let fields = walker.fields(node, in: "`model`", allowed: keys, required: ["format", "file"]) else { return nil }
        var format: ModelFormat?
        if let field = fields["format"], let text = walker.string(field.value, "`model.format`") {
            format = ModelFormat(rawValue: text.lowercased())
            if format == nil {
                let names = ModelFormat.allCases.map(\.rawValue)
                walker.error(
                    "unknown model format `\(text)`", at: field.value,
                    hint: Suggestion.didYouMean(text, in: names) ?? "known formats: \(names.joined(separator: ", "))")
            }
        }
        // An MLflow model and a SavedModel are directories; every other format a file.
        let file = fields["file"].flatMap { checkPath($0.value, what: "`model.file`", allowDirectory: format == .mlflow || format == .savedmodel) }
        func optional(_ key: String) -> String? {
            fields[key].flatMap { walker.string($0.value, "`model.\(key)`") }
        }
        let architecture = optional("architecture"), family = optional("family"), precision = optional("precision")
        let quantization = optional("quantization"), paramSize = optional("paramSize")
        guard let format, let file else { return nil }
        return ModelSpec(
            format: format, file: file, architecture: architecture, family: family,
            precision: precision, quantization: quantization, paramSize: paramSize)
    }

    mutating func readFiles(_ node: Node, model: ModelSpec?) -> [FileEntry] {
        guard case .sequence(let sequence) = node else {
            walker.error("`files` must be a list of `{path, role}` entries", at: node)
            return []
        }
        var entries: [(FileEntry, Node)] = []
        if let model { entries.append((FileEntry(path: model.file, role: .weights, description: nil), node)) }
        var result: [FileEntry] = []
        for item in sequence {
            guard let fields = walker.fields(item, in: "a `files` entry", allowed: ["path", "role", "description"], required: ["path", "role"]),
                let pathNode = fields["path"]?.value, let roleNode = fields["role"]?.value
            else { continue }
            let path = checkPath(pathNode, what: "`path`")
            var role: FileRole?
            if let text = walker.string(roleNode, "`role`") {
                role = FileRole(rawValue: text) ?? (text == "config" ? .weightConfig : nil)
                if role == nil {
                    let names = FileRole.allCases.map(\.rawValue)
                    walker.error(
                        "unknown file role `\(text)`", at: roleNode,
                        hint: Suggestion.didYouMean(text, in: names) ?? "roles: \(names.joined(separator: ", "))")
                }
            }
            let description = fields["description"].flatMap { walker.string($0.value, "`description`") }
            guard let path, let role else { continue }
            if let (other, _) = entries.first(where: { $0.0.path == path }) {
                walker.error(
                    "`\(path)` is listed twice", at: pathNode,
                    hint: other.path == model?.file ? "the model file is always packed; remove it from `files`" : "remove the duplicate entry")
                continue
            }
            if let (parent, _) = entries.first(where: { path.hasPrefix($0.0.path + "/") || $0.0.path.hasPrefix(path + "/") }) {
                walker.error(
                    "`\(path)` overlaps `\(parent.path)`: a file can be packed only once", at: pathNode,
                    hint: "list either the directory or the files inside it")
                continue
            }
            let entry = FileEntry(path: path, role: role, description: description)
            entries.append((entry, pathNode))
            result.append(entry)
        }
        return result
    }

    mutating func readSignature(_ node: Node) -> Signature? {
        guard let fields = walker.fields(node, in: "`signature`", allowed: ["inputs", "outputs"], required: ["inputs", "outputs"]) else { return nil }
        let inputs = fields["inputs"].map { readTensors($0.value, what: "inputs") }
        let outputs = fields["outputs"].map { readTensors($0.value, what: "outputs") }
        guard let inputs, let outputs else { return nil }
        return Signature(inputs: inputs, outputs: outputs)
    }

    mutating func readTensors(_ node: Node, what: String) -> [TensorSpec] {
        guard case .sequence(let sequence) = node, !sequence.isEmpty else {
            walker.error(
                "`signature.\(what)` must be a non-empty list of tensors", at: node,
                hint: "each entry: `{name: x, dtype: float32, shape: [-1, 4]}`")
            return []
        }
        var result: [TensorSpec] = []
        var seen: Set<String> = []
        for item in sequence {
            let errorsBefore = walker.diagnostics.count
            guard
                let fields = walker.fields(
                    item, in: "a tensor in `signature.\(what)`", allowed: ["name", "dtype", "shape", "description", "optional"],
                    required: ["name", "dtype", "shape"])
            else { continue }
            defer {
                if walker.diagnostics.count > errorsBefore, case .scalar(let scalar)? = fields["name"]?.value {
                    brokenTensorNames.insert(scalar.string)
                }
            }
            let name = fields["name"].flatMap { walker.nonEmptyString($0.value, "the tensor `name`") }
            if let name, let node = fields["name"]?.value {
                if !seen.insert(name).inserted {
                    walker.error("duplicate \(what.dropLast()) name `\(name)`", at: node, hint: "tensor names must be unique")
                }
            }
            let dtype = fields["dtype"].flatMap { readDType($0.value) }
            let shape = fields["shape"].flatMap { readShape($0.value) }
            let description = fields["description"].flatMap { walker.string($0.value, "`description`") }
            var optional: Bool?
            if let field = fields["optional"] {
                optional = walker.bool(field.value, "`optional`")
                if what == "outputs" { walker.error("an output cannot be `optional`", at: field.key) }
                if optional == true { optionalInputNodes.append(field.key) }
            }
            guard let name, let dtype, let shape else { continue }
            result.append(TensorSpec(name: name, dtype: dtype, shape: shape, description: description, optional: optional))
        }
        return result
    }

    mutating func readDType(_ node: Node) -> DType? {
        guard let text = walker.string(node, "`dtype`") else { return nil }
        if let dtype = DType(parsing: text) { return dtype }
        let names = DType.allCases.filter(\.travels).map(\.rawValue)
        walker.error(
            "unknown dtype `\(text)`", at: node,
            hint: Suggestion.didYouMean(text, in: names) ?? "dtypes: \(names.joined(separator: ", "))")
        return nil
    }

    mutating func readShape(_ node: Node) -> [Dim]? {
        guard case .sequence(let sequence) = node else {
            walker.error(
                "`shape` must be a list of dimensions, found \(YAMLWalker.kind(of: node))", at: node,
                hint: "for example `[-1, 3, 224, 224]`; `[]` is a scalar")
            return nil
        }
        var dimensions: [Dim] = []
        var valid = true
        for item in sequence {
            guard case .scalar(let scalar) = item else {
                walker.error("a dimension must be an integer, -1, null or a name", at: item)
                valid = false
                continue
            }
            if scalar.style == .plain, YAMLWalker.isNull(scalar.string) {
                dimensions.append(.dynamic(name: nil))
            } else if scalar.style == .plain, let size = Int(scalar.string) {
                if size == -1 {
                    dimensions.append(.dynamic(name: nil))
                } else if size < 0 {
                    walker.error(
                        "negative dimension \(size) in `shape`", at: item,
                        hint: "use -1 or a name such as `batch` for a dimension of any size")
                    valid = false
                } else {
                    dimensions.append(.fixed(size))
                }
            } else if scalar.string.first.map({ $0.isLetter || $0 == "_" }) == true,
                scalar.string.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" })
            {
                dimensions.append(.dynamic(name: scalar.string))
            } else {
                walker.error(
                    "`\(scalar.string)` is not a dimension", at: item,
                    hint: "a dimension is a size (4), -1 or null for any size, or a name such as `batch`")
                valid = false
            }
        }
        return valid ? dimensions : nil
    }

    // MARK: Paths

    /// Checks a relative path's shape and, with a base directory, that it exists inside it.
    /// - Parameter allowDirectory: whether a directory may be named (a `files` entry packs a
    ///   whole tree; a model file or an example must be a file).
    /// Python modules beside the predictor (files, and packages with an `__init__.py`) that
    /// nothing packs: `vessel serve DIR` imports them, the packed artifact would not have them.
    mutating func warnUnpackedModules(besides predictor: String, declared: Set<String>, in baseDirectory: String, at node: Node?) {
        let folder = predictor.contains("/") ? String(predictor[..<predictor.lastIndex(of: "/")!]) : ""
        let directory = folder.isEmpty ? baseDirectory : FileSystem.join(baseDirectory, folder)
        let covered = { (path: String) in declared.contains { path == $0 || path.hasPrefix($0 + "/") || $0 == "." } }
        var missing: [String] = []
        for name in FileSystem.listDirectory(directory).sorted() where !name.hasPrefix(".") {
            let path = folder.isEmpty ? name : folder + "/" + name
            let isModule = name.hasSuffix(".py") || FileSystem.exists(FileSystem.join(FileSystem.join(directory, name), "__init__.py"))
            if isModule, path != predictor, !covered(path) { missing.append(path) }
        }
        guard !missing.isEmpty else { return }
        walker.warning(
            "\(missing.map { "`\($0)`" }.joined(separator: ", ")) beside the predictor \(missing.count == 1 ? "is" : "are") not packed", at: node,
            hint:
                "list \(missing.count == 1 ? "it" : "them") under `files:` (role: code) if the predictor imports \(missing.count == 1 ? "it" : "them"): the packed model has only what is listed"
        )
    }

    mutating func checkPath(_ node: Node, what: String, allowDirectory: Bool = true, text: String? = nil) -> String? {
        guard let raw = text ?? walker.nonEmptyString(node, what) else { return nil }
        if raw.hasPrefix("/") {
            walker.error("\(what) `\(raw)` is absolute", at: node, hint: "paths are relative to the directory holding vessel.yaml")
            return nil
        }
        let components = raw.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }
        if components.contains("..") {
            walker.error("\(what) `\(raw)` leaves the model directory", at: node, hint: "only files inside the model directory can be packed")
            return nil
        }
        guard !components.isEmpty else {
            walker.error("\(what) `\(raw)` names the model directory itself", at: node)
            return nil
        }
        let path = components.joined(separator: "/")
        if path == ManifestParser.fileName {
            walker.error("\(what) cannot be vessel.yaml itself", at: node, hint: "the manifest is always packed")
            return nil
        }
        guard let baseDirectory else { return path }
        let full = (baseDirectory as NSString).appendingPathComponent(path)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: full, isDirectory: &isDirectory) else {
            let siblings = (try? FileManager.default.contentsOfDirectory(atPath: ((full as NSString).deletingLastPathComponent))) ?? []
            walker.error(
                "\(what) `\(path)` does not exist in \(baseDirectory)", at: node,
                hint: Suggestion.didYouMean((path as NSString).lastPathComponent, in: siblings))
            return nil
        }
        if !ResolvedPath.isInside(full, directory: baseDirectory, allowingItself: true) {
            walker.error(
                "\(what) `\(path)` is a symlink that leads outside the model directory", at: node,
                hint: "copy the file into the model directory")
            return nil
        }
        // Only regular files (and, where allowed, directories of them) are read: a FIFO would
        // block the packer and a device never ends.
        if let problem = FileSystem.regularFileProblem(full), !(allowDirectory && isDirectory.boolValue) {
            walker.error("\(what) `\(path)` \(problem)", at: node, hint: allowDirectory ? "name regular files or directories of them" : "name the file itself")
            return nil
        }
        return path
    }
}
