public import VesselProcessing
public import VesselTensor
public import VesselONNX

/// Runs a model: named tensors in, named tensors out — the native ONNX runtime or the Python
/// backend's workers; the server and `vessel test` see only this.
public protocol Backend: Sendable {
    /// Which runtime this is, for metadata (`onnx`).
    var platform: String { get }
    /// Runs one request, or one batch of merged requests; stops with an error once `control`
    /// is cancelled or past its deadline.
    func predict(_ inputs: [String: Tensor], control: RunControl?) throws -> [String: Tensor]
    /// Whether a run's work is bounded by its inputs' size (no data-dependent loops or output
    /// sizes): only then may a server run small requests on an event loop.
    var costIsBoundedByInputs: Bool { get }
    /// Why the backend cannot answer now (its worker processes are all restarting), or nil.
    var unavailableReason: String? { get }
    /// The worker processes a backend runs the model in, for metrics; nil for in-process ones.
    var workers: WorkerStatus? { get }
}

/// A backend's worker processes at a glance.
public struct WorkerStatus: Sendable {
    public var configured: Int
    public var running: Int
    public var restarts: Int
    public var residentBytes: Int

    public init(configured: Int, running: Int, restarts: Int, residentBytes: Int) {
        self.configured = configured
        self.running = running
        self.restarts = restarts
        self.residentBytes = residentBytes
    }
}

extension Backend {
    public var unavailableReason: String? { nil }
    public var workers: WorkerStatus? { nil }

    public func predict(_ inputs: [String: Tensor]) throws -> [String: Tensor] {
        try predict(inputs, control: nil)
    }
}

/// The native ONNX runtime. A ZipMap output (one map of class → probability per row, all with
/// the same keys) is returned as a [rows, classes] float tensor in key order, since the
/// inference protocols carry tensors only.
public struct ONNXBackend: Backend {
    public let model: ONNXModel
    public var platform: String { "onnx" }

    public init(path: String) throws {
        model = try ONNXModel(path: path)
    }

    /// A model read where it lies: a region of a file in the store (see
    /// ``ONNXModel/init(region:directory:externalData:registry:)``).
    public init(region: FileRegion, directory: String, externalData: [String: FileRegion]) throws {
        model = try ONNXModel(region: region, directory: directory, externalData: externalData)
    }

    public var costIsBoundedByInputs: Bool { model.graph.costIsBoundedByInputs }

    public func predict(_ inputs: [String: Tensor], control: RunControl?) throws -> [String: Tensor] {
        var outputs: [String: Tensor] = [:]
        for (name, value) in try model.run(values: inputs.mapValues { .tensor($0) }, control: control) {
            switch value {
            case .tensor(let tensor): outputs[name] = tensor
            case .sequence(let rows):
                var values: [Float] = []
                var width: Int?
                for row in rows {
                    guard case .map(_, let mapValues) = row, width == nil || width == mapValues.count else {
                        throw BackendError.unsupportedOutput(name: name, type: value.typeDescription)
                    }
                    width = mapValues.count
                    values += mapValues.doubles().map { Float($0) }
                }
                outputs[name] = Tensor(values, shape: [rows.count, width ?? 0])
            case .map:
                throw BackendError.unsupportedOutput(name: name, type: value.typeDescription)
            }
        }
        return outputs
    }
}

public enum BackendError: Error, Sendable, CustomStringConvertible {
    case unsupportedOutput(name: String, type: String)
    case unsupportedFormat(String)
    /// The model refused a request's input (a predictor's declared constraint): a 4xx.
    case invalidInput(String)

    public var description: String {
        switch self {
        case .unsupportedOutput(let name, let type): "output `\(name)` is a \(type), which cannot be served as a tensor"
        case .unsupportedFormat(let format): "no backend in this build runs \(format) models"
        case .invalidInput(let message): message
        }
    }
}

/// A backend with a manifest's processing steps around it: the client's inputs preprocessed,
/// the model run, its outputs postprocessed. A preprocess error is the client's (its inputs
/// do not fit a step), a postprocess error the model's.
public struct ProcessedBackend: Backend {
    public let model: any Backend
    public let plan: ProcessingPlan
    public var platform: String { model.platform }
    /// An image's decode costs what its bytes and pixels cost, which a request's element count
    /// (one per image) does not show: such models never run inline.
    public var costIsBoundedByInputs: Bool { model.costIsBoundedByInputs && !plan.decodesImages }
    public var unavailableReason: String? { model.unavailableReason }
    public var workers: WorkerStatus? { model.workers }

    public func predict(_ inputs: [String: Tensor], control: RunControl?) throws -> [String: Tensor] {
        let modelInputs = try plan.preprocess(inputs)
        return try plan.postprocess(try model.predict(modelInputs, control: control), inputs: modelInputs)
    }
}
