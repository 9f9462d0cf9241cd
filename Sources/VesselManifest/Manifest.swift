public import VesselTensor

/// A parsed and validated `vessel.yaml`: everything needed to package, check and serve a model.
///
/// The file format is documented in `docs/manifest.md`; every field here has a key there.
public struct Manifest: Sendable, Hashable, Codable {
    /// The newest manifest format this build understands.
    public static let currentSchemaVersion = 1
    /// The largest `vessel.yaml` read or packed (1 MiB). One limit for the writer and every
    /// reader, so whatever `pack` stores reads back; a manifest is metadata, and a larger one is
    /// refused with a message rather than parsed for minutes.
    public static let maximumBytes = 1 << 20
    /// The most YAML nodes a manifest may expand to, aliases followed: bounds "billion laughs"
    /// manifests whose aliases nest exponentially.
    public static let maximumNodes = 200_000

    public var schemaVersion: Int
    public var name: String
    public var version: String
    public var description: String?
    public var authors: [String]
    public var license: String?
    public var tags: [String]
    public var annotations: [String: String]
    public var model: ModelSpec
    public var files: [FileEntry]
    public var config: [String: Value]
    public var signature: Signature
    public var preprocess: [ProcessingStep]
    public var postprocess: [ProcessingStep]
    public var serving: ServingSettings
    public var examples: [Example]
    public var runtime: RuntimeSpec

    package init(
        schemaVersion: Int, name: String, version: String, description: String?, authors: [String], license: String?, tags: [String],
        annotations: [String: String], model: ModelSpec, files: [FileEntry], config: [String: Value], signature: Signature, preprocess: [ProcessingStep],
        postprocess: [ProcessingStep], serving: ServingSettings, examples: [Example], runtime: RuntimeSpec
    ) {
        self.schemaVersion = schemaVersion
        self.name = name
        self.version = version
        self.description = description
        self.authors = authors
        self.license = license
        self.tags = tags
        self.annotations = annotations
        self.model = model
        self.files = files
        self.config = config
        self.signature = signature
        self.preprocess = preprocess
        self.postprocess = postprocess
        self.serving = serving
        self.examples = examples
        self.runtime = runtime
    }

    /// Every file the artifact carries, the main model file first, in manifest order.
    public var allFiles: [FileEntry] {
        [FileEntry(path: model.file, role: .weights, description: nil)] + files
    }
}

/// The model itself: its format and main file, plus optional ModelPack descriptors.
public struct ModelSpec: Sendable, Hashable, Codable {
    public var format: ModelFormat
    public var file: String
    public var architecture: String?
    public var family: String?
    public var precision: String?
    public var quantization: String?
    public var paramSize: String?

    package init(format: ModelFormat, file: String, architecture: String?, family: String?, precision: String?, quantization: String?, paramSize: String?) {
        self.format = format
        self.file = file
        self.architecture = architecture
        self.family = family
        self.precision = precision
        self.quantization = quantization
        self.paramSize = paramSize
    }
}

public enum ModelFormat: String, Sendable, Hashable, CaseIterable, Codable {
    case onnx, torchscript, pytorch, savedmodel, keras, tflite, safetensors, gguf, pickle, joblib, mlflow
    /// NumPy arrays (`.npy`, `.npz`) that a predictor's own code loads.
    case numpy
    /// A scikit-learn estimator saved with skops (MLflow's default for scikit-learn).
    case skops
    /// The model is its predictor's own Python code (and the files that code loads): a Cog
    /// project, say. `model.file` names the predictor's module.
    case python

    /// Whether the python backend loads this format without the model's own code (its worker
    /// has a loader of the same name).
    public var hasReadyMadePythonLoader: Bool {
        [.joblib, .pickle, .skops, .mlflow, .savedmodel, .keras, .torchscript].contains(self)
    }

    /// The backend that runs this format when the manifest names none.
    public var defaultBackend: RuntimeSpec.Backend {
        self == .onnx ? .onnx : .python
    }
}

/// A further file or directory carried by the artifact, with the role that picks its layer type.
public struct FileEntry: Sendable, Hashable, Codable {
    public var path: String
    public var role: FileRole
    public var description: String?

    public init(path: String, role: FileRole, description: String?) {
        self.path = path
        self.role = role
        self.description = description
    }
}

/// The ModelPack layer family a file belongs to.
public enum FileRole: String, Sendable, Hashable, CaseIterable, Codable {
    case weights
    /// Labels, tokenizer, model configuration: read by the model's code, not executed.
    case weightConfig = "weight-config"
    case code
    case doc
    case dataset

    /// The ModelPack media-type stem: `application/vnd.cncf.model.<stem>.v1.tar`.
    public var mediaTypeStem: String {
        switch self {
        case .weights: "weight"
        case .weightConfig: "weight.config"
        case .code: "code"
        case .doc: "doc"
        case .dataset: "dataset"
        }
    }
}

/// The typed inputs and outputs of the model as clients see them.
public struct Signature: Sendable, Hashable, Codable {
    public var inputs: [TensorSpec]
    public var outputs: [TensorSpec]

    package init(inputs: [TensorSpec], outputs: [TensorSpec]) {
        self.inputs = inputs
        self.outputs = outputs
    }

    public func input(named name: String) -> TensorSpec? { inputs.first { $0.name == name } }
    public func output(named name: String) -> TensorSpec? { outputs.first { $0.name == name } }
}

public struct TensorSpec: Sendable, Hashable, Codable {
    public var name: String
    public var dtype: DType
    public var shape: [Dim]
    public var description: String?
    /// An input a request may leave out (the python backend's predictor then uses its own
    /// default, as a Cog predictor's `Input(default=…)`); nil or false: required.
    public var optional: Bool?

    public var isOptional: Bool { optional == true }

    public init(name: String, dtype: DType, shape: [Dim], description: String? = nil, optional: Bool? = nil) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.description = description
        self.optional = optional
    }

    /// Whether a concrete shape is allowed: same rank, and every fixed dimension equal.
    public func accepts(shape concrete: [Int]) -> Bool {
        concrete.count == shape.count && zip(shape, concrete).allSatisfy { $0.accepts($1) }
    }
}

/// One declared pre- or post-processing step. Parsed and validated now; run by the model layer.
public struct ProcessingStep: Sendable, Hashable, Codable {
    public var type: String
    /// The step's parameters, every key but `type`, validated against the step's schema.
    public var parameters: [String: Value]

    package init(type: String, parameters: [String: Value]) {
        self.type = type
        self.parameters = parameters
    }
}

/// How the server treats this model. Every field has a default, so the section is optional.
public struct ServingSettings: Sendable, Hashable, Codable {
    /// Largest merged batch for dynamic batching; 1 turns batching off.
    public var maxBatchSize: Int = 1
    /// How long a request may wait for others to join its batch.
    public var maxDelayMilliseconds: Double = 0
    /// Inferences running at once.
    public var maxConcurrency: Int = 2
    /// Requests waiting beyond those running; past this the server answers 503.
    public var maxQueue: Int = 64
    /// A request that has not finished by then gets 503/504.
    public var timeoutMilliseconds: Double = 30_000
    /// Largest accepted request body.
    public var maxBodyBytes: Int = 64 << 20
    /// Whether NaN and infinities are accepted in inputs.
    public var allowNaN: Bool = false
    /// The most pixels an `image` step decodes per image (nil: 40,000,000); larger images are
    /// refused from their header, before decoding (decompression bombs).
    public var maxImagePixels: Int?
    /// Replicas `vessel deploy` asks for.
    public var replicas: Int = 1
    /// CPU and memory for `vessel deploy` (Kubernetes quantities); unset ones get defaults there.
    public var resources = ResourceRequirements()

    public init() {}
}

/// Kubernetes-style resource requests and limits, as quantities (`500m`, `2`, `512Mi`).
public struct ResourceRequirements: Sendable, Hashable, Codable {
    public var cpu: String?
    public var memory: String?
    public var cpuLimit: String?
    public var memoryLimit: String?

    public init(cpu: String? = nil, memory: String? = nil, cpuLimit: String? = nil, memoryLimit: String? = nil) {
        self.cpu = cpu
        self.memory = memory
        self.cpuLimit = cpuLimit
        self.memoryLimit = memoryLimit
    }
}

/// The Kubernetes quantity syntax: a decimal number and an optional binary (Ki…Ei), decimal
/// (k, M, G…) or milli (m) suffix. See
/// https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/quantity/
public enum ResourceQuantity {
    public static func isValid(_ text: String) -> Bool {
        let suffixes = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "m", "k", "M", "G", "T", "P", "E", ""]
        for suffix in suffixes where text.hasSuffix(suffix) {
            let number = text.dropLast(suffix.count)
            let parts = number.split(separator: ".", omittingEmptySubsequences: false)
            guard !number.isEmpty, parts.count <= 2, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }) else {
                continue
            }
            return true
        }
        return false
    }

    /// A memory quantity in bytes (`512Mi`, `2Gi`, `1.5G`, `1000000`); nil if it is not one or
    /// is not a whole, positive number of bytes.
    public static func bytes(_ text: String) -> Int? {
        guard isValid(text) else { return nil }
        let multipliers: [(String, Double)] = [
            ("Ki", 0x1p10), ("Mi", 0x1p20), ("Gi", 0x1p30), ("Ti", 0x1p40), ("Pi", 0x1p50), ("Ei", 0x1p60),
            ("k", 1e3), ("M", 1e6), ("G", 1e9), ("T", 1e12), ("P", 1e15), ("E", 1e18)
        ]
        var number = Substring(text), multiplier = 1.0
        if text.hasSuffix("m") { return nil }
        for (suffix, value) in multipliers where text.hasSuffix(suffix) {
            number = text.dropLast(suffix.count)
            multiplier = value
            break
        }
        guard let value = Double(number) else { return nil }
        let bytes = value * multiplier
        guard bytes >= 1, bytes < 9.0e18 else { return nil }
        return Int(bytes)
    }
}

/// A bundled example: inputs, the outputs they must give, and how close is close enough.
public struct Example: Sendable, Hashable, Codable {
    public var name: String
    public var inputs: [String: ExampleData]
    public var outputs: [String: ExampleData]
    public var rtol: Double
    public var atol: Double

    package init(name: String, inputs: [String: ExampleData], outputs: [String: ExampleData], rtol: Double, atol: Double) {
        self.name = name
        self.inputs = inputs
        self.outputs = outputs
        self.rtol = rtol
        self.atol = atol
    }
}

/// Example tensor data: written inline in the manifest, or in a file beside it (`.npy`, `.json`).
public enum ExampleData: Sendable, Hashable, Codable {
    case inline(Value)
    case file(String)
}

/// The runtime a model needs: which backend, and for the Python backend its pinned environment.
public struct RuntimeSpec: Sendable, Hashable, Codable {
    public enum Backend: String, Sendable, Hashable, CaseIterable, Codable {
        case onnx, python
    }

    public var backend: Backend
    /// Minimum ONNX opset or Python version, as the backend reads it.
    public var python: String?
    /// Pinned requirements for the Python backend (`name==version`).
    public var requirements: [String]
    /// Debian packages the model's own code needs.
    public var system: [String]
    /// For the Python backend, the model's own code: `path/to/file.py:ClassName`, a class with
    /// `setup()` (load once) and `predict(**inputs)` (or `run`). Without it, the backend's
    /// ready-made loader for the model's format runs it.
    public var predictor: String?
    /// For the Python backend: a worker whose resident memory passes this many bytes is
    /// stopped and replaced (`runtime.max_worker_memory`, a quantity such as `2Gi`).
    public var maxWorkerMemory: Int?
    /// For a `skops` model: the types beyond skops' defaults its loader may build
    /// (`runtime.trusted_types`); anything else in the file is refused at load.
    public var trustedTypes: [String] = []

    /// `runtime.requirements` resolved to exact wheels with their hashes, written by `vessel
    /// pack` beside vessel.yaml and packed with it (see VesselPython's `PythonLock`).
    public static let lockFileName = "vessel.lock"

    package init(backend: Backend, python: String?, requirements: [String], system: [String], predictor: String? = nil) {
        self.backend = backend
        self.python = python
        self.requirements = requirements
        self.system = system
        self.predictor = predictor
    }
}
