#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
public import VesselManifest
public import VesselONNX
public import VesselPython
public import VesselTensor

/// The Python backend: the model's own code (`runtime.predictor`) or a ready-made loader
/// (joblib, pickle) run by a pool of worker processes, one per `serving.max_concurrency` slot.
/// The Swift side keeps everything else: HTTP, validation, processing, batching, metrics.
public struct PythonBackend: Backend {
    public let pool: PythonWorkerPool
    private let declared: [String: DType]
    public var platform: String { "python" }
    /// The model's code can take any time for any input: never run on an event loop.
    public var costIsBoundedByInputs: Bool { false }

    public init(manifest: Manifest, directory: String, environment: [String: String]? = nil) throws {
        let environment = environment ?? ProcessInfo.processInfo.environment
        // The model's own code, else the worker's loader named as the format.
        let kind: PythonModelConfiguration.Kind
        if manifest.runtime.predictor != nil {
            kind = .predictor
        } else if manifest.model.format.hasReadyMadePythonLoader, let loader = PythonModelConfiguration.Kind(rawValue: manifest.model.format.rawValue) {
            kind = loader
        } else {
            throw BackendError.unsupportedFormat("\(manifest.model.format.rawValue) (python backend, without a runtime.predictor)")
        }
        // The worker changes into the model's directory and opens files by absolute path.
        let directory = directory.hasPrefix("/") ? directory : FileManager.default.currentDirectoryPath + "/" + directory
        let outputs = manifest.signature.outputs.map { PythonModelConfiguration.Output(name: $0.name, dtype: $0.dtype) }
        var configuration = PythonModelConfiguration(
            kind: kind, directory: directory, file: manifest.model.file, predictor: manifest.runtime.predictor,
            requirements: manifest.runtime.requirements, python: manifest.runtime.python, outputs: outputs,
            trusted: manifest.runtime.trustedTypes
        )
        configuration.assumeFinite = !manifest.serving.allowNaN
        configuration.inputs = manifest.signature.inputs.map(\.name)
        let interpreter = try PythonEnvironment.interpreter(
            directory: directory, requirements: manifest.runtime.requirements,
            python: manifest.runtime.python, environment: environment)
        pool = try PythonWorkerPool(
            model: configuration, size: manifest.serving.maxConcurrency, interpreter: interpreter, environment: environment,
            maxWorkerMemory: manifest.runtime.maxWorkerMemory)
        declared = Dictionary(manifest.signature.outputs.map { ($0.name, $0.dtype) }, uniquingKeysWith: { first, _ in first })
    }

    public var unavailableReason: String? { pool.unavailableReason }

    public var workers: WorkerStatus? {
        WorkerStatus(configured: pool.size, running: pool.running, restarts: pool.restarts, residentBytes: pool.residentBytes)
    }

    public func predict(_ inputs: [String: Tensor], control: RunControl?) throws -> [String: Tensor] {
        do {
            return try pool.predict(inputs, declared: declared) {
                do { try control?.check() } catch { return "\(error)" }
                return nil
            }
        } catch .stopped(let reason) {
            // The pipeline answers a stopped run as it does the native runtime's: 504.
            throw ONNXError.stopped(reason)
        } catch .invalidInput(let message) {
            throw BackendError.invalidInput(message)
        }
    }
}
