#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif
import Dispatch
public import VesselManifest
public import VesselProcessing
public import VesselTensor
public import VesselONNX
import VesselStore
import VesselSystem

/// A model ready to serve: its manifest (name, version, signature, examples, serving settings),
/// the backend that runs it, and where it came from.
public final class LoadedModel: Sendable {
    public let manifest: Manifest
    public let backend: any Backend
    /// The directory holding the model's files.
    public let directory: String
    /// The artifact's manifest digest, when loaded from the store.
    public let digest: String?
    public let loadSeconds: Double
    /// Blobs the model reads in place, still being checked against their digests. Whoever
    /// serves the model waits for it (``PendingCheck/wait()``) before calling the model ready,
    /// and reports its error before any other: a corrupt blob explains a failed example better
    /// than the example does.
    public let pendingCheck: PendingCheck?

    /// The manifest's processing steps, compiled; ``backend`` runs them around the model.
    public let plan: ProcessingPlan

    public var name: String { manifest.name }
    public var version: String { manifest.version }
    /// The served signature: what clients send and get, after the processing steps.
    public var signature: Signature { plan.served }
    /// The model's own graph signature, as the manifest declares it.
    public var modelSignature: Signature { manifest.signature }

    /// Files read where they lie (in their store blobs) rather than from `directory`, by path.
    public let inPlace: [String: FileRegion]

    init(
        manifest: Manifest, backend: any Backend, plan: ProcessingPlan, directory: String, digest: String?, loadSeconds: Double,
        pendingCheck: PendingCheck? = nil, inPlace: [String: FileRegion] = [:]
    ) {
        self.manifest = manifest
        self.inPlace = inPlace
        self.plan = plan
        // Every caller of `backend` (a run, the examples, every transport and the batcher) gets
        // the steps: there is no path that forgets them.
        self.backend = plan.isEmpty ? backend : ProcessedBackend(model: backend, plan: plan)
        self.directory = directory
        self.digest = digest
        self.loadSeconds = loadSeconds
        self.pendingCheck = pendingCheck
    }

    /// Opens the model a manifest describes, its files in `directory` (already read and checked:
    /// `ManifestParser` for a vessel.yaml directory, an image's file index for an image).
    ///
    /// - Parameter inPlace: files not in `directory` but read where they lie, by their normalized
    ///   path from the model's root (the model file and its external data, left in their blobs in
    ///   the store). Whoever passes them checks their digests.
    public static func open(
        manifest: Manifest, directory: String, digest: String? = nil, started: Date = Date(),
        inPlace: [String: FileRegion] = [:], pendingCheck: PendingCheck? = nil
    ) throws -> LoadedModel {
        let plan = try processingPlan(manifest, directory: directory)
        let backend = try makeBackend(manifest, directory: directory, inPlace: inPlace)
        return LoadedModel(
            manifest: manifest, backend: backend, plan: plan, directory: directory, digest: digest,
            loadSeconds: Date().timeIntervalSince(started), pendingCheck: pendingCheck, inPlace: inPlace)
    }

    /// A manifest's processing steps compiled, with the files they name read from `directory`.
    public static func processingPlan(_ manifest: Manifest, directory: String) throws -> ProcessingPlan {
        try ProcessingPlan(manifest: manifest)
            .loadingFiles { path in try FileSystem.readFile(FileSystem.join(directory, path), limit: ProcessingPlan.fileLimit) }
    }

    /// The files the ONNX backend reads, and so may read where they lie: the model file and
    /// weights (external data), but no file the examples or processing steps name, which are
    /// read from the directory. A backend that runs code would need every file there.
    public static func readsInPlace(_ manifest: Manifest) -> (_ path: String, _ role: FileRole) -> Bool {
        guard manifest.runtime.backend == .onnx, manifest.model.format == .onnx,
            case .success(let modelFile) = SafePath.normalize(manifest.model.file)
        else { return { _, _ in false } }
        var named: [String] = []
        for example in manifest.examples {
            for case .file(let path) in Array(example.inputs.values) + Array(example.outputs.values) { named.append(path) }
        }
        for step in manifest.preprocess + manifest.postprocess {
            if case .string(let path)? = step.parameters["file"] { named.append(path) }
        }
        let readFromDirectory = Set(named.compactMap { try? SafePath.normalize($0).get() })
        return { path, role in (role == .weights || path == modelFile) && !readFromDirectory.contains(path) }
    }

    static func makeBackend(_ manifest: Manifest, directory: String, inPlace: [String: FileRegion] = [:]) throws -> any Backend {
        switch (manifest.runtime.backend, manifest.model.format) {
        case (.onnx, .onnx):
            if case .success(let modelFile) = SafePath.normalize(manifest.model.file), let region = inPlace[modelFile] {
                // External data locations are relative to the model file's directory.
                let modelDirectory = modelFile.lastIndex(of: "/").map { String(modelFile[..<$0]) } ?? ""
                var externalData: [String: FileRegion] = [:]
                for (path, region) in inPlace {
                    if modelDirectory.isEmpty {
                        externalData[path] = region
                    } else if path.hasPrefix(modelDirectory + "/") {
                        externalData[String(path.dropFirst(modelDirectory.count + 1))] = region
                    }
                }
                return try ONNXBackend(region: region, directory: FileSystem.join(directory, modelDirectory), externalData: externalData)
            }
            return try ONNXBackend(path: FileSystem.join(directory, manifest.model.file))
        case (.python, _):
            return try PythonBackend(manifest: manifest, directory: directory)
        default:
            throw BackendError.unsupportedFormat("\(manifest.model.format.rawValue) (\(manifest.runtime.backend.rawValue) backend)")
        }
    }

    /// The bundled examples as tensors of the signature's dtypes.
    public func examples() throws -> [LoadedExample] {
        try Self.examples(of: manifest, directory: directory)
    }

    /// A manifest's examples as tensors, their files read from `directory`; no backend needed.
    public static func examples(of manifest: Manifest, directory: String) throws -> [LoadedExample] {
        // Examples are what clients send and get: the served signature.
        let signature = try ProcessingPlan(manifest: manifest).served
        return try manifest.examples.map { example in
            func tensors(_ data: [String: ExampleData], _ specs: [TensorSpec]) throws -> [String: Tensor] {
                var result: [String: Tensor] = [:]
                for (name, item) in data {
                    let dtype = specs.first { $0.name == name }?.dtype ?? .float32
                    result[name] = try ExampleTensor.make(item, dtype: dtype, directory: directory, what: "example `\(example.name)` `\(name)`")
                }
                return result
            }
            return LoadedExample(
                name: example.name, inputs: try tensors(example.inputs, signature.inputs),
                outputs: try tensors(example.outputs, signature.outputs), rtol: example.rtol, atol: example.atol)
        }
    }
}

/// Work on a thread of its own that must succeed before a model is served: checking the blobs
/// it reads in place while it loads and runs its examples.
public final class PendingCheck: @unchecked Sendable {
    // `failure` is written before `done` is signalled, and read only after waiting for it.
    private var failure: (any Error)?
    private let done = DispatchSemaphore(value: 0)

    public init(_ work: @escaping @Sendable () throws -> Void) {
        DetachedThread.start { [self] in
            do { try work() } catch { failure = error }
            done.signal()
        }
    }

    /// Blocks until the work finished; throws what it threw, every time it is called.
    public func wait() throws {
        done.wait()
        done.signal()
        if let failure { throw failure }
    }
}

public struct LoadedExample: Sendable {
    public var name: String
    public var inputs: [String: Tensor]
    public var outputs: [String: Tensor]
    public var rtol: Double
    public var atol: Double
}

/// Example data (inline YAML values, .npy or .json files) as tensors.
public enum ExampleTensor {
    public static func make(_ data: ExampleData, dtype: DType, directory: String, what: String) throws -> Tensor {
        switch data {
        case .inline(let value): return try tensor(value, dtype: dtype, what: what)
        case .file(let path):
            let full = FileSystem.join(directory, path)
            guard let bytes = FileManager.default.contents(atPath: full) else { throw ExampleError("\(what): cannot read \(path)") }
            if dtype == .string, !path.hasSuffix(".npy"), !path.hasSuffix(".json") {
                // A file for a BYTES input (an image) is one element: its bytes.
                return Tensor(strings: [BytesElement.string(Array(bytes))], shape: [1])
            }
            if path.hasSuffix(".npy") {
                do { return try Tensor(npy: [UInt8](bytes)) } catch { throw ExampleError("\(what): \(path): \(error)") }
            }
            let value: Value
            do { value = try JSONDecoder().decode(Value.self, from: bytes) } catch { throw ExampleError("\(what): \(path) is not JSON") }
            return try tensor(value, dtype: dtype, what: what)
        }
    }

    /// A nested array of numbers, booleans or strings as a tensor of `dtype`.
    public static func tensor(_ value: Value, dtype: DType, what: String) throws -> Tensor {
        var shape: [Int] = []
        var level = value
        while case .array(let items) = level {
            shape.append(items.count)
            guard let first = items.first else { break }
            level = first
        }
        var leaves: [Value] = []
        func collect(_ item: Value, _ depth: Int) throws {
            if depth == shape.count {
                leaves.append(item)
                return
            }
            guard case .array(let items) = item, items.count == shape[depth] else { throw ExampleError("\(what): the array is ragged") }
            for element in items { try collect(element, depth + 1) }
        }
        try collect(value, 0)
        if dtype == .string {
            return Tensor(
                strings: try leaves.map {
                    guard case .string(let text) = $0 else { throw ExampleError("\(what): \($0) is not a string") }
                    return text
                }, shape: shape)
        }
        let numbers = try leaves.map { leaf -> Double in
            switch leaf {
            case .int(let number): return Double(number)
            case .double(let number): return number
            case .bool(let flag): return flag ? 1 : 0
            case .string(let text):
                switch text.lowercased() {
                case "nan": return .nan
                case "inf", "infinity": return .infinity
                case "-inf", "-infinity": return -.infinity
                default: throw ExampleError("\(what): `\(text)` is not a number")
                }
            default: throw ExampleError("\(what): \(leaf) is not a number")
            }
        }
        return Tensor(converting: numbers, to: dtype, shape: shape)
    }
}

public struct ExampleError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
