import Foundation
import Testing
import VesselManifest
import VesselManifestYAML
import VesselTensor
import VesselTestSupport

/// A valid manifest; each case below changes one thing and expects one diagnostic at a line.
let baseManifest = """
    schemaVersion: 1
    name: demo
    version: "1.0"
    model:
      format: onnx
      file: model.onnx
    signature:
      inputs:
        - name: x
          dtype: float32
          shape: [-1, 4]
      outputs:
        - name: y
          dtype: float32
          shape: [-1]

    """

/// One manifest mistake: what to change, and what the diagnostic must say and where.
struct Mistake: CustomTestStringConvertible, Sendable {
    var label: String
    var yaml: String
    var message: String
    var line: Int
    var column: Int?
    var hint: String?

    var testDescription: String { label }

    init(
        _ label: String, replacing old: String? = nil, with new: String = "", append: String = "",
        message: String, line: Int, column: Int? = nil, hint: String? = nil
    ) {
        var text = baseManifest
        if let old {
            precondition(text.contains(old), "base manifest lacks \(old)")
            text = text.replacingOccurrences(of: old, with: new)
        }
        self.label = label
        self.yaml = text + append
        self.message = message
        self.line = line
        self.column = column
        self.hint = hint
    }

    /// The same mistake in a manifest changed once more (lines after the change move).
    func replacingInYAML(_ old: String, with new: String) -> Mistake {
        precondition(yaml.contains(old), "manifest lacks \(old)")
        var copy = self
        copy.yaml = yaml.replacingOccurrences(of: old, with: new)
        return copy
    }
}

let mistakes: [Mistake] = [
    Mistake(
        "misspelled key", replacing: "      shape: [-1, 4]", with: "      shapes: [-1, 4]",
        message: "unknown key `shapes`", line: 11, column: 7, hint: "did you mean `shape`?"),
    Mistake(
        "unknown dtype", replacing: "      dtype: float32\n      shape: [-1, 4]", with: "      dtype: flaot32\n      shape: [-1, 4]",
        message: "unknown dtype `flaot32`", line: 10, column: 14, hint: "did you mean `float32`?"),
    Mistake(
        "negative dimension", replacing: "shape: [-1, 4]", with: "shape: [-3, 4]",
        message: "negative dimension -3", line: 11, column: 15, hint: "use -1"),
    Mistake(
        "not a dimension", replacing: "shape: [-1, 4]", with: "shape: [-1, 4.5]",
        message: "`4.5` is not a dimension", line: 11),
    Mistake(
        "missing model file", replacing: "file: model.onnx", with: "file: modle.onnx",
        message: "`modle.onnx` does not exist", line: 6, column: 9, hint: "did you mean `model.onnx`?"),
    Mistake(
        "duplicate input", replacing: "  outputs:", with: "    - name: x\n      dtype: int64\n      shape: [2]\n  outputs:",
        message: "duplicate input name `x`", line: 12),
    Mistake(
        "newer schema", replacing: "schemaVersion: 1", with: "schemaVersion: 2",
        message: "newer than this vessel understands", line: 1, hint: "upgrade vessel"),
    Mistake(
        "uppercase name", replacing: "name: demo", with: "name: Demo",
        message: "names are lowercase; use `demo`", line: 2),
    Mistake(
        "version not a tag", replacing: "version: \"1.0\"", with: "version: \"1.0 beta\"",
        message: "cannot be used as a tag", line: 3),
    Mistake(
        "unknown format", replacing: "format: onnx", with: "format: onxx",
        message: "unknown model format `onxx`", line: 5, hint: "did you mean `onnx`?"),
    Mistake(
        "unknown top-level key", append: "signatures: {}\n",
        message: "unknown key `signatures` in the manifest", line: 16, hint: "did you mean `signature`?"),
    Mistake(
        "missing version", replacing: "version: \"1.0\"\n", with: "",
        message: "missing required key `version`", line: 1),
    Mistake(
        "unknown role", append: "files:\n  - path: model.onnx2\n    role: wieghts\n",
        message: "unknown file role `wieghts`", line: 18, hint: "did you mean `weights`?"),
    Mistake(
        "file listed twice", append: "files:\n  - {path: notes.md, role: doc}\n  - {path: notes.md, role: doc}\n",
        message: "`notes.md` is listed twice", line: 18),
    Mistake(
        "model file listed again", append: "files:\n  - {path: model.onnx, role: weights}\n",
        message: "`model.onnx` is listed twice", line: 17, hint: "the model file is always packed"),
    Mistake(
        "path leaves directory", append: "files:\n  - {path: ../secret.txt, role: doc}\n",
        message: "leaves the model directory", line: 17),
    Mistake(
        "absolute path", append: "files:\n  - {path: /etc/passwd, role: doc}\n",
        message: "is absolute", line: 17),
    Mistake(
        "unknown step", append: "postprocess:\n  - {type: softmaxx, output: y}\n",
        message: "unknown postprocess step `softmaxx`", line: 17, hint: "did you mean `softmax`?"),
    Mistake(
        "step in wrong stage", append: "preprocess:\n  - {type: softmax, input: x}\n",
        message: "step `softmax` cannot be used in `preprocess`", line: 17),
    Mistake(
        "step names unknown output", append: "postprocess:\n  - {type: softmax, output: z}\n",
        message: "names output `z`, which the signature does not have", line: 17),
    Mistake(
        "step missing parameter", append: "postprocess:\n  - {type: topk, output: y}\n",
        message: "missing required key `k`", line: 17),
    Mistake(
        "step file missing", append: "postprocess:\n  - {type: labels, output: y, file: labels.txt}\n",
        message: "`labels.txt` does not exist", line: 17),
    Mistake(
        "example missing input", append: "examples:\n  - name: one\n    inputs: {}\n",
        message: "example `one` is missing input `x`", line: 18),
    Mistake(
        "example unknown input", append: "examples:\n  - name: one\n    inputs: {x: [[1, 2, 3, 4]], w: [1]}\n",
        message: "has input `w`, which the signature does not have", line: 18),
    Mistake(
        "example ragged", append: "examples:\n  - name: one\n    inputs: {x: [[1, 2, 3, 4], [1, 2]]}\n",
        message: "is ragged", line: 18),
    Mistake(
        "example shape", append: "examples:\n  - name: one\n    inputs: {x: [[1, 2, 3]]}\n",
        message: "has shape [1, 3], which does not fit [-1, 4]", line: 18),
    Mistake(
        "example dtype", append: "examples:\n  - name: one\n    inputs: {x: [[1, 2, 3, \"a\"]]}\n",
        message: "which is not a float32", line: 18),
    Mistake(
        "backend cannot run format", replacing: "format: onnx", with: "format: torchscript",
        append: "runtime: {backend: onnx}\n", message: "the onnx backend cannot run a `torchscript` model", line: 16),
    Mistake(
        "python backend without a loader", replacing: "format: onnx", with: "format: tflite",
        append: "runtime: {backend: python}\n", message: "no ready-made loader for `tflite` models", line: 5, hint: "runtime.predictor"),
    Mistake(
        "predictor not file:class", append: "runtime: {backend: python, predictor: predict.py}\n",
        message: "`runtime.predictor` `predict.py` is not `file.py:ClassName`", line: 16),
    Mistake(
        "predictor file missing", append: "runtime: {backend: python, predictor: \"predict.py:Predictor\"}\n",
        message: "`runtime.predictor` `predict.py` does not exist", line: 16),
    Mistake(
        "predictor on the onnx backend", append: "runtime: {predictor: \"predict.py:Predictor\"}\n",
        message: "`runtime.predictor` needs `backend: python`", line: 16),
    Mistake(
        "python version", replacing: "format: onnx", with: "format: joblib", append: "runtime: {backend: python, python: three}\n",
        message: "`runtime.python` `three` is not a Python version", line: 16),
    Mistake(
        "ready-made loader signature", replacing: "format: onnx", with: "format: joblib",
        append: "runtime: {backend: python}\n", message: "takes one input (the feature matrix) and gives one or two outputs", line: 5
    )
    .replacingInYAML("  outputs:\n", with: "    - {name: w, dtype: float32, shape: [-1]}\n  outputs:\n"),
    Mistake(
        "worker memory", replacing: "format: onnx", with: "format: joblib", append: "runtime: {backend: python, max_worker_memory: lots}\n",
        message: "`runtime.max_worker_memory` `lots` is not a memory quantity", line: 16, hint: "512Mi"),
    Mistake(
        "optional input without a predictor", replacing: "      shape: [-1, 4]\n", with: "      shape: [-1, 4]\n      optional: true\n",
        message: "optional inputs need a python predictor", line: 12),
    Mistake(
        "optional output", replacing: "      shape: [-1]\n", with: "      shape: [-1]\n      optional: true\n",
        message: "an output cannot be `optional`", line: 16),
    Mistake(
        "system packages", append: "runtime: {system: [libgomp1]}\n",
        message: "`runtime.system` is not supported yet", line: 16),
    Mistake(
        "serving value", append: "serving: {max_batch_size: 0}\n",
        message: "`serving.max_batch_size` must be at least 1", line: 16),
    Mistake(
        "wrong type", append: "serving: {allow_nan: maybe}\n",
        message: "`serving.allow_nan` must be true or false", line: 16),
    Mistake(
        "yaml syntax", replacing: "  outputs:", with: "  outputs: [",
        message: "YAML syntax error", line: 13, column: 5)
]

@Suite("vessel.yaml validation")
struct ManifestValidationTests {
    /// A model directory holding `model.onnx` (and `notes.md`) and the given manifest.
    static func directory(with yaml: String) throws -> String {
        let directory = try TestSupport.makeTemporaryDirectory("manifest")
        try TestSupport.write("not really onnx", to: directory + "/model.onnx")
        try TestSupport.write("# notes", to: directory + "/notes.md")
        try TestSupport.write(yaml, to: directory + "/vessel.yaml")
        return directory
    }

    @Test("the base manifest is valid")
    func baseIsValid() throws {
        let directory = try Self.directory(with: baseManifest)
        defer { TestSupport.remove(directory) }
        let result = try ManifestParser.load(directory: directory)
        #expect(result.manifest.name == "demo")
        #expect(result.manifest.signature.inputs[0].shape == [.dynamic(name: nil), .fixed(4)])
        #expect(result.warnings.isEmpty)
    }

    @Test("each mistake is reported with its position and a hint", arguments: mistakes)
    func mistake(_ mistake: Mistake) throws {
        let directory = try Self.directory(with: mistake.yaml)
        defer { TestSupport.remove(directory) }
        let error = try #require(throws: ManifestValidationError.self) { try ManifestParser.load(directory: directory) }
        let match = error.errors.first { $0.message.contains(mistake.message) }
        let diagnostic = try #require(match, "expected “\(mistake.message)” among:\n\(error)")
        #expect(diagnostic.location.file.hasSuffix("vessel.yaml"))
        #expect(diagnostic.location.line == mistake.line, "\(diagnostic)")
        if let column = mistake.column { #expect(diagnostic.location.column == column, "\(diagnostic)") }
        if let hint = mistake.hint { #expect(diagnostic.hint?.contains(hint) == true, "\(diagnostic)") }
        #expect(error.description.contains("vessel.yaml:\(mistake.line):"))
    }

    @Test("every problem in a file is reported at once, in file order")
    func collectsAll() throws {
        var yaml = baseManifest
        yaml = yaml.replacingOccurrences(of: "name: demo", with: "name: Demo")
        yaml = yaml.replacingOccurrences(of: "format: onnx", with: "format: onxx")
        yaml = yaml.replacingOccurrences(of: "dtype: float32\n      shape: [-1, 4]", with: "dtype: flaot32\n      shape: [-3, 4]")
        yaml += "servng: {}\n"
        let directory = try Self.directory(with: yaml)
        defer { TestSupport.remove(directory) }
        let error = try #require(throws: ManifestValidationError.self) { try ManifestParser.load(directory: directory) }
        #expect(error.errors.count >= 5, "\(error)")
        let lines = error.diagnostics.map(\.location.line)
        #expect(lines == lines.sorted())
        #expect(error.description.hasPrefix("\(error.errors.count) errors in the manifest:"))
    }

    @Test("a broken tensor is reported once, not again by the examples and steps that use it")
    func noCascade() throws {
        let yaml =
            baseManifest.replacingOccurrences(of: "dtype: float32\n      shape: [-1, 4]", with: "dtype: flaot32\n      shapes: [-1, 4]")
            + "examples:\n  - {name: one, inputs: {x: [[1, 2, 3, 4]]}}\n"
        let directory = try Self.directory(with: yaml)
        defer { TestSupport.remove(directory) }
        let error = try #require(throws: ManifestValidationError.self) { try ManifestParser.load(directory: directory) }
        #expect(
            error.errors.map(\.message) == [
                "unknown dtype `flaot32`",
                "unknown key `shapes` in a tensor in `signature.inputs`"
            ])
    }

    @Test("a symlink that leads outside the model directory is refused")
    func symlinkEscape() throws {
        let directory = try Self.directory(with: baseManifest + "files:\n  - {path: escape.txt, role: doc}\n")
        defer { TestSupport.remove(directory) }
        try FileManager.default.createSymbolicLink(atPath: directory + "/escape.txt", withDestinationPath: "/etc/hostname")
        let error = try #require(throws: ManifestValidationError.self) { try ManifestParser.load(directory: directory) }
        #expect(error.errors.contains { $0.message.contains("symlink that leads outside") }, "\(error)")
        // A relative link out, and a link to a directory whose own parent is outside.
        let outside = directory + "-outside.txt"
        try TestSupport.write("secret", to: outside)
        defer { TestSupport.remove(outside) }
        try FileManager.default.removeItem(atPath: directory + "/escape.txt")
        try FileManager.default.createSymbolicLink(atPath: directory + "/escape.txt", withDestinationPath: "../" + (outside as NSString).lastPathComponent)
        let relative = try #require(throws: ManifestValidationError.self) { try ManifestParser.load(directory: directory) }
        #expect(relative.errors.contains { $0.message.contains("symlink that leads outside") }, "\(relative)")
    }

    @Test("unpinned requirements are warnings, not errors")
    func unpinnedWarning() throws {
        let yaml =
            baseManifest.replacingOccurrences(of: "format: onnx", with: "format: joblib")
            + "runtime:\n  backend: python\n  requirements: [torch==2.3.1, numpy]\n"
        let directory = try Self.directory(with: yaml)
        defer { TestSupport.remove(directory) }
        let result = try ManifestParser.load(directory: directory)
        #expect(result.manifest.runtime.requirements == ["torch==2.3.1", "numpy"])
        let warning = try #require(result.warnings.first)
        #expect(warning.severity == .warning)
        #expect(warning.message.contains("`numpy` is not pinned"))
        #expect(warning.location.line == 18)
    }

    @Test("modules beside a predictor that nothing packs are a warning naming them; listed ones are not")
    func unpackedModules() throws {
        let yaml =
            baseManifest.replacingOccurrences(of: "format: onnx", with: "format: numpy")
            + "runtime:\n  backend: python\n  predictor: \"predict.py:Predictor\"\n"
        let directory = try Self.directory(with: yaml)
        defer { TestSupport.remove(directory) }
        try TestSupport.write("class Predictor: pass\n", to: directory + "/predict.py")
        try TestSupport.write("X = 1\n", to: directory + "/helper.py")
        try TestSupport.write("", to: directory + "/tools/__init__.py")
        try TestSupport.write("not python", to: directory + "/notes.txt")
        let result = try ManifestParser.load(directory: directory)
        let warning = try #require(result.warnings.first { $0.message.contains("beside the predictor") })
        #expect(warning.message.contains("`helper.py`, `tools` beside the predictor are not packed"), "\(warning.message)")
        try TestSupport.write(yaml + "files: [{path: helper.py, role: code}, {path: tools, role: code}]\n", to: directory + "/vessel.yaml")
        #expect(try ManifestParser.load(directory: directory).warnings.allSatisfy { !$0.message.contains("beside the predictor") })
    }

    @Test("an empty or non-UTF-8 manifest gets a clear error")
    func emptyAndBinary() throws {
        let empty = try #require(throws: ManifestValidationError.self) {
            try ManifestParser.parse(text: "", file: "vessel.yaml", baseDirectory: nil)
        }
        #expect(empty.description.contains("the manifest is empty"))
        let binary = try #require(throws: ManifestValidationError.self) {
            try ManifestParser.parse(data: Data([0xff, 0xfe, 0x00]), file: "vessel.yaml", baseDirectory: nil)
        }
        #expect(binary.description.contains("not valid UTF-8"))
        let missing = try #require(throws: ManifestValidationError.self) {
            try ManifestParser.load(directory: "/nonexistent-\(UUID().uuidString)")
        }
        #expect(missing.description.contains("cannot read vessel.yaml"))
    }

    @Test("the bundled example parses completely")
    func bundledExample() throws {
        let result = try ManifestParser.load(directory: TestSupport.exampleDirectory)
        let manifest = result.manifest
        #expect(manifest.name == "iris")
        #expect(manifest.model.format == .onnx)
        #expect(manifest.runtime.backend == .onnx)
        #expect(manifest.signature.inputs.map(\.name) == ["X"])
        #expect(manifest.signature.inputs[0].dtype == .float32)
        #expect(manifest.signature.inputs[0].shape == [.dynamic(name: "batch"), .fixed(4)])
        #expect(manifest.signature.outputs.map(\.dtype) == [.int64, .float32])
        #expect(manifest.allFiles.map(\.path) == ["model.onnx", "labels.txt", "README.md"])
        #expect(manifest.postprocess.first?.type == "labels")
        #expect(manifest.examples.count == 3)
        #expect(manifest.examples[0].rtol == 1e-4)
        #expect(manifest.serving.maxBatchSize == 32)
        #expect(manifest.config["classes"] == .int(3))
        #expect(result.warnings.isEmpty)
    }

    @Test("files named by steps and examples are packed even when not listed")
    func implicitFiles() throws {
        let yaml =
            baseManifest + """
                postprocess:
                  - {type: labels, output: y, file: notes.md, as: name}
                examples:
                  - name: from-file
                    inputs: {x: {file: data/x.npy}}
                    outputs: {name: ["a"]}

                """
        let directory = try Self.directory(with: yaml)
        defer { TestSupport.remove(directory) }
        try TestSupport.write("npy", to: directory + "/data/x.npy")
        let manifest = try ManifestParser.load(directory: directory).manifest
        #expect(manifest.allFiles.map(\.path) == ["model.onnx", "notes.md", "data/x.npy"])
        #expect(manifest.allFiles.map(\.role) == [.weights, .weightConfig, .dataset])
        #expect(manifest.examples[0].inputs["x"] == .file("data/x.npy"))
    }
}

@Suite("dtypes")
struct DTypeTests {
    @Test(
        "canonical, OIP and alias spellings parse",
        arguments: [
            ("float32", DType.float32), ("FP32", .float32), ("fp16", .float16), ("BYTES", .string),
            ("int64", .int64), ("INT8", .int8), ("bool", .bool), ("BOOL", .bool), ("double", .float64), ("BF16", .bfloat16)
        ])
    func parse(_ text: String, _ expected: DType) {
        #expect(DType(parsing: text) == expected)
    }

    @Test("OIP names round trip; ONNX's narrow types, which OIP cannot carry, are not parsed")
    func oipRoundTrip() {
        for dtype in DType.allCases where dtype.travels { #expect(DType(parsing: dtype.oipName) == dtype) }
        #expect(DType(parsing: "float33") == nil)
        for dtype in DType.allCases where !dtype.travels {
            #expect(DType(parsing: dtype.oipName) == nil && DType(parsing: dtype.rawValue) == nil, "\(dtype)")
        }
        #expect(DType.allCases.filter { !$0.travels }.count == 10)
    }
}

/// Manifests that once hung `validate` and `pack`, or named files that block a reader.
@Suite("hostile manifests")
struct HostileManifestTests {
    static func directory(with yaml: String) throws -> String {
        let directory = try TestSupport.makeTemporaryDirectory("hostile-manifest")
        try yaml.write(toFile: directory + "/vessel.yaml", atomically: true, encoding: .utf8)
        _ = FileManager.default.createFile(atPath: directory + "/model.onnx", contents: Data([0]))
        return directory
    }

    static func firstError(_ directory: String) throws -> String {
        let error = try #require(throws: ManifestValidationError.self) { try ManifestParser.load(directory: directory) }
        return error.diagnostics.first?.message ?? ""
    }

    @Test("aliases that expand exponentially (billion laughs) are refused at once")
    func billionLaughs() throws {
        var yaml = baseManifest + "config:\n  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        for level in 1...12 {
            yaml += "  l\(level): &l\(level) [" + Array(repeating: "*l\(level - 1)", count: 10).joined(separator: ", ") + "]\n"
        }
        let directory = try Self.directory(with: yaml)
        defer { TestSupport.remove(directory) }
        #expect(try Self.firstError(directory).contains("expands to more than"))
    }

    @Test("a manifest over 1 MiB is refused with its size, by the same limit pack and every reader use")
    func tooLarge() throws {
        var yaml = baseManifest + "annotations:\n"
        for k in 0..<40_000 { yaml += "  key\(k): \"value number \(k)\"\n" }
        #expect(yaml.utf8.count > Manifest.maximumBytes)
        let directory = try Self.directory(with: yaml)
        defer { TestSupport.remove(directory) }
        #expect(try Self.firstError(directory).contains("larger than 1024 KiB"))
        #expect(throws: ManifestValidationError.self) { try ManifestParser.parse(text: yaml, file: "x", baseDirectory: nil) }
    }

    @Test("vessel.yaml itself may not be a symlink out of the model directory")
    func manifestSymlink() throws {
        let directory = try TestSupport.makeTemporaryDirectory("hostile-manifest")
        defer { TestSupport.remove(directory) }
        let outside = directory + "-outside.yaml"
        try baseManifest.write(toFile: outside, atomically: true, encoding: .utf8)
        defer { TestSupport.remove(outside) }
        try FileManager.default.createSymbolicLink(atPath: directory + "/vessel.yaml", withDestinationPath: outside)
        _ = FileManager.default.createFile(atPath: directory + "/model.onnx", contents: Data([0]))
        #expect(try Self.firstError(directory).contains("outside the model directory"))
    }

    @Test("a model file that is a FIFO or a directory is refused by validate, without blocking")
    func notRegular() throws {
        let directory = try Self.directory(with: baseManifest)
        defer { TestSupport.remove(directory) }
        try FileManager.default.removeItem(atPath: directory + "/model.onnx")
        #expect(mkfifo(directory + "/model.onnx", 0o600) == 0)
        #expect(try Self.firstError(directory).contains("is a FIFO, not a regular file"))
        try FileManager.default.removeItem(atPath: directory + "/model.onnx")
        try FileManager.default.createDirectory(atPath: directory + "/model.onnx", withIntermediateDirectories: false)
        #expect(try Self.firstError(directory).contains("is a directory, not a regular file"))
    }
}
