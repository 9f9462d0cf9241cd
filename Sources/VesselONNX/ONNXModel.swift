#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import SwiftProtobuf
public import VesselTensor

/// A loaded ONNX model, ready to run many times from many threads.
///
/// Loading parses the protobuf, decodes initializers (external data memory-mapped), resolves a
/// kernel for every node at the model's opset, and orders the graph. A model that uses an
/// operator this runtime lacks fails here, listing every such operator with its nodes.
public final class ONNXModel: Sendable {
    public let graph: Graph
    /// Opset version per domain ("" is the default `ai.onnx` domain).
    public let opsets: [String: Int]
    public let producer: String

    /// The newest IR version and opsets this runtime knows (those of onnx 1.23, whose node suite
    /// the conformance tests run); a model claiming more is refused at load.
    public static let maximumIRVersion: Int64 = 14
    public static let maximumOpsets: [String: Int] = ["": 28, "ai.onnx.ml": 5, "ai.onnx.preview.training": 1]

    public var inputs: [ValueInfo] { graph.inputs }
    public var outputs: [ValueInfo] { graph.outputs }

    /// Loads a model file. Initializers with large `raw_data` become read-only views over the
    /// mapped file (``RawDataScan``), so loading copies none of their bytes.
    public convenience init(path: String, registry: KernelRegistry = .standard) throws {
        let file = try MappedFile(path: path)
        let directory = path.lastIndex(of: "/").map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        try self.init(file: file, range: 0..<file.length, directory: directory, externalData: [:], registry: registry)
    }

    /// Loads a model whose bytes are a region of a file: a file inside a layer in the store,
    /// read where it lies. External data is looked up in `externalData` first (by `location`,
    /// relative to the model's directory), then in `directory`.
    public convenience init(
        region: FileRegion, directory: String, externalData: [String: FileRegion] = [:],
        registry: KernelRegistry = .standard
    ) throws {
        let file = try MappedFile(path: region.path)
        try self.init(file: file, range: try region.range(in: file), directory: directory, externalData: externalData, registry: registry)
    }

    private convenience init(
        file: MappedFile, range: Range<Int>, directory: String, externalData: [String: FileRegion],
        registry: KernelRegistry
    ) throws {
        let bytes = UnsafeRawBufferPointer(start: file.base + range.lowerBound, count: range.count)
        let mappedFiles = MappedFiles(regions: externalData)
        if let scan = RawDataScan(bytes) {
            let ranges = scan.payloads.mapValues { ($0.lowerBound + range.lowerBound)..<($0.upperBound + range.lowerBound) }
            try self.init(
                data: Data(scan.stripped), directory: directory, registry: registry,
                payloads: RawPayloads(file: file, ranges: ranges), mappedFiles: mappedFiles)
        } else {
            // swift-protobuf decodes (and copies what it keeps) straight from the mapping, which
            // the Data keeps alive.
            try self.init(data: file.data(range), directory: directory, registry: registry, payloads: nil, mappedFiles: mappedFiles)
        }
    }

    /// - Parameter directory: where external data files are; nil refuses external data.
    public convenience init(data: Data, directory: String?, registry: KernelRegistry = .standard) throws {
        try self.init(data: data, directory: directory, registry: registry, payloads: nil, mappedFiles: MappedFiles())
    }

    /// - Parameter payloads: the main graph's initializer bytes that `data` leaves out.
    init(data: Data, directory: String?, registry: KernelRegistry, payloads: RawPayloads?, mappedFiles: MappedFiles) throws {
        let proto: Onnx_ModelProto
        do {
            var options = BinaryDecodingOptions()
            options.messageDepthLimit = 256
            proto = try Onnx_ModelProto(serializedBytes: data, options: options)
        } catch {
            throw ONNXError.invalidModel("not an ONNX model protobuf (\(error))")
        }
        guard proto.hasGraph else { throw ONNXError.invalidModel("the model has no graph") }
        var opsets: [String: Int] = [:]
        for entry in proto.opsetImport {
            let domain = entry.domain == "ai.onnx" ? "" : entry.domain
            // Some exporters list a domain twice; the highest version is the one meant.
            opsets[domain] = max(opsets[domain] ?? 0, Int(entry.version))
        }
        if opsets[""] == nil, proto.irVersion < 3 { opsets[""] = 1 }
        // A model from a newer ONNX than this runtime knows may use operators whose meaning
        // changed: refuse it rather than run it with an older opset's semantics.
        guard proto.irVersion <= Self.maximumIRVersion else {
            throw ONNXError.invalidModel("IR version \(proto.irVersion) is newer than this runtime reads (up to \(Self.maximumIRVersion))")
        }
        for (domain, version) in opsets {
            guard version >= 1 else { throw ONNXError.invalidModel("opset \(version) of domain `\(domain.isEmpty ? "ai.onnx" : domain)` is not a version") }
            if let newest = Self.maximumOpsets[domain], version > newest {
                throw ONNXError.invalidModel(
                    "opset \(version) of domain `\(domain.isEmpty ? "ai.onnx" : domain)` is newer than this runtime implements (up to \(newest))")
            }
        }
        self.opsets = opsets
        producer = proto.producerName
        var builder = GraphBuilder(
            opsets: opsets, irVersion: Int(proto.irVersion), directory: directory, registry: registry, payloads: payloads, mappedFiles: mappedFiles)
        let graph = try builder.build(proto.graph, outerNames: [], isMain: true)
        if !builder.unsupported.isEmpty {
            let grouped = Dictionary(grouping: builder.unsupported) { "\($0.domain)|\($0.opType)|\($0.opset)" }
            let operators = grouped.values.map { group in
                ONNXError.UnsupportedOperator(domain: group[0].domain, opType: group[0].opType, opset: group[0].opset, nodes: group.map(\.node))
            }.sorted { ($0.domain, $0.opType) < ($1.domain, $1.opType) }
            throw ONNXError.unsupportedOperators(operators)
        }
        self.graph = graph
    }

    /// A model's inputs (those no initializer supplies) and outputs, read without resolving any
    /// kernel: for describing models this runtime may not be able to run.
    public static func signature(path: String) throws -> (inputs: [ValueInfo], outputs: [ValueInfo]) {
        let proto: Onnx_ModelProto
        do {
            proto = try Onnx_ModelProto(
                serializedBytes: {
                    let file = try MappedFile(path: path); return file.data(0..<file.length)
                }())
        } catch let error as ONNXError {
            throw error
        } catch {
            throw ONNXError.invalidModel("not an ONNX model protobuf (\(error))")
        }
        let initialized = Set(proto.graph.initializer.map(\.name))
        return (
            proto.graph.input.filter { !initialized.contains($0.name) }.map(GraphBuilder.valueInfo),
            proto.graph.output.map(GraphBuilder.valueInfo)
        )
    }

    /// Decodes a serialized ONNX `TensorProto` (the `.pb` files of ONNX test data).
    public static func tensor(protobuf data: Data) throws -> Tensor {
        let proto: Onnx_TensorProto
        do { proto = try Onnx_TensorProto(serializedBytes: data) } catch {
            throw ONNXError.invalidModel("not a TensorProto (\(error))")
        }
        return try Tensor(proto: proto, directory: nil)
    }

    /// Runs the model. Feeds must name graph inputs; inputs with an initializer may be omitted.
    public func run(_ feeds: [String: Tensor], control: RunControl? = nil) throws -> [String: Tensor] {
        var tensors: [String: Tensor] = [:]
        for (name, value) in try run(values: feeds.mapValues { .tensor($0) }, control: control) {
            guard let tensor = value.tensor else {
                throw ONNXError.invalidModel("output `\(name)` is a \(value.typeDescription), not a tensor; read it with run(values:)")
            }
            tensors[name] = tensor
        }
        return tensors
    }

    /// Runs the model on values that may be sequences or maps (DictVectorizer inputs), giving
    /// every output, including non-tensor ones (ZipMap's sequence of maps).
    /// - Parameter control: stops the run (between nodes, and between Loop and Scan iterations)
    ///   once cancelled or past its deadline, with ``ONNXError/stopped(_:)``.
    public func run(values feeds: [String: ONNXValue], control: RunControl? = nil) throws -> [String: ONNXValue] {
        let known = graph.inputs.map(\.name)
        for name in feeds.keys where !known.contains(name) {
            throw ONNXError.unexpectedInput(name: name, known: known)
        }
        for input in graph.inputs {
            guard let value = feeds[input.name] else {
                if graph.initializers[input.name] == nil { throw ONNXError.missingInput(name: input.name) }
                continue
            }
            if let expected = input.nonTensorType {
                guard value.tensor == nil else {
                    throw ONNXError.inputMismatch(name: input.name, reason: "expected \(expected), got \(value.typeDescription)")
                }
                continue
            }
            guard let tensor = value.tensor else {
                if input.dtype == nil { continue }
                throw ONNXError.inputMismatch(name: input.name, reason: "expected a tensor, got \(value.typeDescription)")
            }
            if let dtype = input.dtype, tensor.dtype != dtype {
                throw ONNXError.inputMismatch(name: input.name, reason: "expected \(dtype.rawValue), got \(tensor.dtype.rawValue)")
            }
            if let shape = input.shape {
                guard shape.count == tensor.rank, zip(shape, tensor.shape).allSatisfy({ $0.accepts($1) }) else {
                    throw ONNXError.inputMismatch(
                        name: input.name, reason: "expected shape [\(shape.map(\.description).joined(separator: ", "))], got \(tensor.shape)")
                }
            }
        }
        // Overriding a folded default needs the plan that computes from it.
        let plan = feeds.keys.contains(where: graph.overridable.contains) ? (graph.unfolded ?? graph) : graph
        let results = try Executor.run(plan, feeds: feeds, outer: nil, control: control)
        // A graph may list one output twice: one value, returned once.
        return Dictionary(zip(graph.outputs.map(\.name), results)) { first, _ in first }
    }
}
