#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Dispatch
import Synchronization
import VesselSystem
public import VesselTensor

/// What a Python worker loads and how it answers: the model's directory, which loader, the
/// outputs it must return (names and dtypes, in the served signature's order).
public struct PythonModelConfiguration: Sendable, Encodable {
    public enum Kind: String, Sendable, Encodable {
        /// `runtime.predictor`: a class with `setup()` and `predict(**inputs)` (or `run`).
        case predictor
        /// A scikit-learn–style estimator saved with joblib, pickle or skops: `predict`, then `predict_proba`.
        case joblib, pickle, skops
        /// An MLflow model directory, loaded with `mlflow.pyfunc.load_model`: inputs as a
        /// DataFrame (`columns`), one array, or a dict of arrays.
        case mlflow
        /// A TensorFlow SavedModel directory: its `serving_default` signature, by tensor name.
        case savedmodel
        /// A Keras model file (`.keras`, `.h5`): called on its inputs, in the model's order.
        case keras
        /// A TorchScript module (`torch.jit.save`): `forward` on the declared inputs, by
        /// parameter name when they match, else in the declared order.
        case torchscript
    }

    public struct Output: Sendable, Encodable {
        public var name: String
        public var dtype: String
        public init(name: String, dtype: DType) {
            self.name = name
            self.dtype = dtype.rawValue
        }
    }

    public var kind: Kind
    public var directory: String
    /// The model file, relative to `directory`.
    public var file: String
    /// `path/to/file.py:ClassName`, for `.predictor`.
    public var predictor: String?
    /// `name==version` pins the environment must satisfy; checked when a worker loads.
    public var requirements: [String]
    /// `major.minor` the interpreter must be.
    public var python: String?
    public var outputs: [Output]
    /// For `.skops`: the types the loader may build beyond skops' defaults.
    public var trusted: [String]
    /// The server refuses NaN and infinity in inputs (`serving.allow_nan` off), so a ready-made
    /// scikit-learn loader may skip its own check.
    public var assumeFinite: Bool = false
    /// The signature's input names (a SavedModel's are checked against them at load).
    public var inputs: [String] = []

    public init(
        kind: Kind, directory: String, file: String, predictor: String?, requirements: [String], python: String?, outputs: [Output],
        trusted: [String] = []
    ) {
        self.trusted = trusted
        self.kind = kind
        self.directory = directory
        self.file = file
        self.predictor = predictor
        self.requirements = requirements
        self.python = python
        self.outputs = outputs
    }
}

/// A fixed number of Python worker processes running one model, each used by one request at a
/// time. A worker whose code raises answers the error and lives on; one that dies, breaks the
/// protocol or runs past its caller's deadline is killed and replaced in the background while
/// the other workers keep answering.
public final class PythonWorkerPool: Sendable {
    public let interpreter: String
    public let size: Int
    private let configuration: String
    private let environment: [String: String]
    private let loadTimeout: Duration
    /// A worker whose resident memory passes this is stopped and replaced.
    public let maxWorkerMemory: Int?

    private struct State {
        var idle: [WorkerProcess] = []
        /// Every loaded worker, idle or busy: how many answer, and their memory.
        var live: [pid_t: WorkerProcess] = [:]
        var restarts = 0
        var lastFailure: String?
        var closed = false
    }
    private let state: Mutex<State>
    private let available = DispatchSemaphore(value: 0)

    /// Starts `size` workers and waits until every one has loaded the model; throws the first
    /// loading error (with the Python traceback's last line in the message).
    public init(
        model: PythonModelConfiguration, size: Int, interpreter: String, environment: [String: String],
        maxWorkerMemory: Int? = nil, loadTimeout: Duration = .seconds(600)
    ) throws(WorkerError) {
        self.maxWorkerMemory = maxWorkerMemory
        // A worker that dies mid-write must not take the server down with it.
        signal(SIGPIPE, SIG_IGN)
        self.interpreter = interpreter
        self.size = max(size, 1)
        // Bytecode goes to the cache's own tree, so writing it is safe even where the caller's
        // environment turned it off for its own directories.
        var workerEnvironment = environment.merging([
            "PYTHONUNBUFFERED": "1", "PYTHONPYCACHEPREFIX": PythonEnvironment.bytecodeCache(environment: environment)
        ]) { $1 }
        workerEnvironment["PYTHONDONTWRITEBYTECODE"] = nil
        self.environment = workerEnvironment
        self.loadTimeout = loadTimeout
        let encoded: [UInt8]
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase  // the worker script's spelling
        do { encoded = Array(try encoder.encode(model)) } catch { throw .unavailable("cannot encode the worker configuration") }
        configuration = String(decoding: encoded, as: UTF8.self)
        var started: [WorkerProcess] = []
        do {
            // All start at once, so N models' imports overlap; then each is awaited.
            for _ in 0..<self.size {
                started.append(try WorkerProcess(interpreter: interpreter, configuration: configuration, environment: self.environment))
            }
            for worker in started { try worker.awaitLoaded(within: loadTimeout) }
        } catch {
            for worker in started { worker.kill() }
            throw error
        }
        state = Mutex(State(idle: started, live: Dictionary(started.map { ($0.pid, $0) }, uniquingKeysWith: { $1 })))
        for _ in started { available.signal() }
    }

    deinit { close() }

    /// Workers replaced since the pool started.
    public var restarts: Int { state.withLock { $0.restarts } }
    /// Workers loaded and able to answer.
    public var running: Int { state.withLock { $0.live.count } }
    /// Why no worker can answer, while none is running.
    public var unavailableReason: String? {
        state.withLock { state in
            !state.live.isEmpty ? nil : "no Python worker is running" + (state.lastFailure.map { ": \($0)" } ?? " (one is starting)")
        }
    }

    /// The resident memory of every loaded worker, in bytes.
    public var residentBytes: Int {
        state.withLock { Array($0.live.values) }.reduce(0) { $0 + ($1.residentBytes() ?? 0) }
    }

    /// Stops every idle worker (a busy one is stopped by its caller's deadline) and starts no more.
    public func close() {
        let idle = state.withLock { state -> [WorkerProcess] in
            state.closed = true
            defer { state.idle = [] }
            return state.idle
        }
        for worker in idle { worker.kill() }
    }

    /// Runs one request on a free worker. `stop` is asked while waiting for a worker and for its
    /// answer; when it gives a reason, the request fails with `.stopped` (and a worker busy with
    /// it is killed and replaced).
    public func predict(_ inputs: [String: Tensor], declared: [String: DType], stop: () -> String?) throws(WorkerError) -> [String: Tensor] {
        let request = try WorkerFrame.request(inputs)
        let worker = try take(stop: stop)
        // The worker's memory is looked at every 100 ms while it works and once it answers.
        var polls = 0
        var overLimit: String?
        let watched = { () -> String? in
            if let reason = stop() { return reason }
            polls += 1
            if polls % 5 == 0, let problem = self.memoryProblem(worker) {
                overLimit = problem
                return problem
            }
            return nil
        }
        let frame: WorkerFrame
        let answer: WorkerFrame.Answer
        do {
            frame = try worker.exchange(request, stop: watched)
            answer = try frame.answer()
        } catch {
            retire(worker)
            if let overLimit { throw .died(overLimit) }
            throw error
        }
        let outputs: [String: Tensor]
        do {
            outputs = try frame.tensors(answer.tensors ?? [], declared: declared)
        } catch {
            retire(worker)
            throw error
        }
        // A worker that grew past the limit answered this request, and answers no more.
        if memoryProblem(worker) != nil { retire(worker) } else { give(worker) }
        if !answer.ok, answer.inputError == true { throw .invalidInput(answer.error ?? "an input was refused") }
        if !answer.ok { throw .raised(message: answer.error ?? "an unknown error", traceback: answer.traceback ?? "") }
        return outputs
    }

    private func memoryProblem(_ worker: WorkerProcess) -> String? {
        guard let limit = maxWorkerMemory, let resident = worker.residentBytes(), resident > limit else { return nil }
        return "used \(resident >> 20) MiB, over runtime.max_worker_memory (\(limit >> 20) MiB)"
    }

    /// Kills a worker and starts one in its place.
    private func retire(_ worker: WorkerProcess) {
        worker.kill()
        replace(worker)
    }

    private func take(stop: () -> String?) throws(WorkerError) -> WorkerProcess {
        while true {
            if available.wait(timeout: .now() + .milliseconds(20)) == .success {
                // The longest idle first: requests rotate over the workers.
                if let worker = state.withLock({ $0.idle.isEmpty ? nil : $0.idle.removeFirst() }) { return worker }
                continue
            }
            if let reason = stop() { throw .stopped(reason) }
            let (running, failure, closed) = state.withLock { ($0.live.count, $0.lastFailure, $0.closed) }
            if closed { throw .unavailable("the model is shutting down") }
            if running == 0, let failure { throw .unavailable("no Python worker is running: \(failure)") }
        }
    }

    private func give(_ worker: WorkerProcess) {
        let kept = state.withLock { state -> Bool in
            guard !state.closed else { return false }
            state.idle.append(worker)
            return true
        }
        if kept { available.signal() } else { worker.kill() }
    }

    /// Starts a worker in place of one that failed, retrying with a growing pause while loading
    /// fails (a full disk, memory pressure); the failure is what requests see meanwhile.
    private func replace(_ worker: WorkerProcess) {
        state.withLock {
            $0.live[worker.pid] = nil
            $0.restarts += 1
        }
        DetachedThread.start { [self] in
            var pause = 1.0
            while !state.withLock({ $0.closed }) {
                do {
                    let worker = try WorkerProcess(interpreter: interpreter, configuration: configuration, environment: environment)
                    try worker.awaitLoaded(within: loadTimeout)
                    state.withLock {
                        $0.live[worker.pid] = worker
                        $0.lastFailure = nil
                    }
                    give(worker)
                    return
                } catch {
                    state.withLock { $0.lastFailure = "\(error)" }
                    usleep(UInt32(pause * 1_000_000))
                    pause = min(pause * 2, 30)
                }
            }
        }
    }
}

/// Finds the interpreter that runs a model's workers.
public enum PythonInterpreter {
    /// `VESSEL_PYTHON` if set; else `python3.X` for a required version `3.X`, else `python3`, on
    /// `PATH`. The worker itself checks the version it runs on against `runtime.python`.
    public static func find(version: String?, environment: [String: String]) throws(WorkerError) -> String {
        if let chosen = environment["VESSEL_PYTHON"], !chosen.isEmpty {
            guard access(chosen, X_OK) == 0 else { throw .unavailable("VESSEL_PYTHON names \(chosen), which is not an executable") }
            return chosen
        }
        let names = (version.map { ["python\($0)"] } ?? []) + ["python3"]
        let path = (environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":")
        for name in names {
            for directory in path where access("\(directory)/\(name)", X_OK) == 0 {
                return "\(directory)/\(name)"
            }
        }
        throw .unavailable("no Python interpreter (\(names.joined(separator: " or "))) is on PATH; install one, or set VESSEL_PYTHON")
    }
}
