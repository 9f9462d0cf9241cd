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
    public convenience init(region: FileRegion, directory: String, externalData: [String: FileRegion] = [:],
                            registry: KernelRegistry = .standard) throws {
        let file = try MappedFile(path: region.path)
        try self.init(file: file, range: try region.range(in: file), directory: directory, externalData: externalData, registry: registry)
    }

    private convenience init(file: MappedFile, range: Range<Int>, directory: String, externalData: [String: FileRegion],
                             registry: KernelRegistry) throws {
        let bytes = UnsafeRawBufferPointer(start: file.base + range.lowerBound, count: range.count)
        let mappedFiles = MappedFiles(regions: externalData)
        if let scan = RawDataScan(bytes) {
            let ranges = scan.payloads.mapValues { ($0.lowerBound + range.lowerBound)..<($0.upperBound + range.lowerBound) }
            try self.init(data: Data(scan.stripped), directory: directory, registry: registry,
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
                throw ONNXError.invalidModel("opset \(version) of domain `\(domain.isEmpty ? "ai.onnx" : domain)` is newer than this runtime implements (up to \(newest))")
            }
        }
        self.opsets = opsets
        producer = proto.producerName
        var builder = GraphBuilder(opsets: opsets, directory: directory, registry: registry, payloads: payloads, mappedFiles: mappedFiles)
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
        do { proto = try Onnx_ModelProto(serializedBytes: { let file = try MappedFile(path: path); return file.data(0..<file.length) }()) } catch let error as ONNXError {
            throw error
        } catch {
            throw ONNXError.invalidModel("not an ONNX model protobuf (\(error))")
        }
        let initialized = Set(proto.graph.initializer.map(\.name))
        return (proto.graph.input.filter { !initialized.contains($0.name) }.map(GraphBuilder.valueInfo),
                proto.graph.output.map(GraphBuilder.valueInfo))
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
                    throw ONNXError.inputMismatch(name: input.name, reason: "expected shape [\(shape.map(\.description).joined(separator: ", "))], got \(tensor.shape)")
                }
            }
        }
        // Overriding a folded default needs the plan that computes from it.
        let plan = feeds.keys.contains(where: graph.overridable.contains) ? (graph.unfolded ?? graph) : graph
        let results = try Executor.run(plan, feeds: feeds, outer: nil, control: control)
        return Dictionary(uniqueKeysWithValues: zip(graph.outputs.map(\.name), results))
    }
}

struct GraphBuilder {
    let opsets: [String: Int]
    let directory: String?
    let registry: KernelRegistry
    /// The main graph's initializer bytes, when the loader left them out of the decoded message.
    var payloads: RawPayloads?
    let mappedFiles: MappedFiles
    var unsupported: [(domain: String, opType: String, opset: Int, node: String)] = []

    mutating func build(_ proto: Onnx_GraphProto, outerNames: Set<String>, isMain: Bool) throws -> Graph {
        var initializers: [String: Tensor] = [:]
        for (ordinal, tensor) in proto.initializer.enumerated() {
            let payload = isMain ? payloads.flatMap { payloads in payloads.ranges[ordinal].map { (payloads.file, $0) } } : nil
            initializers[tensor.name] = try Tensor(proto: tensor, directory: directory, mappedFiles: mappedFiles, rawData: payload)
        }
        var defined = outerNames.union(initializers.keys).union(proto.input.map(\.name))
        var nodes: [Node] = []
        for (index, nodeProto) in proto.node.enumerated() {
            let name = nodeProto.name.isEmpty ? "\(nodeProto.opType)_\(index)" : nodeProto.name
            let domain = nodeProto.domain == "ai.onnx" ? "" : nodeProto.domain
            let opset = opsets[domain] ?? 0
            var values: [String: Attributes.Value] = [:]
            for attribute in nodeProto.attribute {
                values[attribute.name] = try decode(attribute, node: name, outerNames: defined)
            }
            let attributes = Attributes(values: values, node: name, opType: nodeProto.opType)
            var node = Node(name: name, opType: nodeProto.opType, domain: domain, inputs: nodeProto.input,
                            outputs: nodeProto.output, attributes: attributes, opset: opset, kernel: .tensors { _, _ in [] })
            if let make = registry.maker(nodeProto.opType, domain: domain, opset: opset) {
                try AttributeRules.check(node)
                node.kernel = try make(node)
            } else {
                unsupported.append((domain, nodeProto.opType, opset, name))
            }
            nodes.append(node)
            defined.formUnion(nodeProto.output)
        }
        let inputs = proto.input.map(Self.valueInfo)
        let outputs = proto.output.map(Self.valueInfo)
        var unfolded: Graph?
        var overridable: Set<String> = []
        if unsupported.isEmpty {
            // Initializers that are also graph inputs (IR < 4) are defaults a caller may
            // override. They are folded like any constant, and the unfolded plan is kept for a
            // run that does override one.
            overridable = Set(inputs.map(\.name)).intersection(initializers.keys)
            if !overridable.isEmpty {
                unfolded = try Graph(name: proto.name, nodes: nodes, initializers: initializers, inputs: inputs, outputs: outputs, outerNames: outerNames)
            }
            try foldConstants(&nodes, &initializers, fed: [], protected: Set(outputs.map(\.name)))
            Self.foldBatchNormIntoConv(&nodes, &initializers, protected: Set(outputs.map(\.name)), overridable: overridable)
            Self.fuseChannelAffine(&nodes, initializers, protected: Set(outputs.map(\.name)), overridable: overridable)
            Self.fuseActivations(&nodes, protected: Set(outputs.map(\.name)))
        }
        if !unsupported.isEmpty {
            // Ordering would only fail on the missing kernels' outputs; report those instead.
            return try Graph(name: proto.name, nodes: [], initializers: initializers, inputs: inputs, outputs: [], outerNames: outerNames)
        }
        return try Graph(name: proto.name, nodes: nodes, initializers: initializers, inputs: inputs, outputs: outputs,
                         outerNames: outerNames, unfolded: unfolded, overridable: overridable)
    }

    /// Conv (or Gemm, MatMul) followed by a Relu that is its only reader becomes one node: the
    /// Relu runs in place on the product's fresh output, saving a pass over memory and a buffer.
    static func fuseActivations(_ nodes: inout [Node], protected: Set<String>) {
        let readers = readerCounts(nodes)
        var producer: [String: Int] = [:]
        for (index, node) in nodes.enumerated() where ["Conv", "Gemm", "MatMul"].contains(node.opType) && node.domain.isEmpty {
            if let output = node.outputs.first { producer[output] = index }
        }
        var removed: Set<Int> = []
        for (index, node) in nodes.enumerated() where node.opType == "Relu" && node.domain.isEmpty {
            guard let input = node.inputs.first, let source = producer[input], readers[input] == 1, !protected.contains(input),
                  nodes[source].outputs.count == 1, case .tensors(let kernel) = nodes[source].kernel else { continue }
            var fused = nodes[source]
            if fused.opType == "Conv" {
                // Conv applies its bias and the Relu in one pass.
                let cache = ConvolutionCache()
                fused.kernel = .tensors { c, i in
                    [try convolution(try c.input(i, 0), try c.input(i, 1), i.count > 2 ? i[2] : nil, c, relu: true, cache: cache)]
                }
                fused.outputs = node.outputs
                fused.name += "+Relu"
                nodes[source] = fused
                removed.insert(index)
                continue
            }
            fused.kernel = .tensors { context, inputs in
                let results = try kernel(context, inputs)
                guard let output = results.first, output.dtype == .float32, !output.storage.isReadOnly else {
                    // Not a fresh float buffer: apply Relu the ordinary way.
                    return [mapUnary(results[0], Float.self, Float.self) { $0 < 0 ? 0 : $0 }]
                }
                output.withUnsafeMutableBufferPointer(as: Float.self) { reluFloat($0.baseAddress!, $0.baseAddress!, count: $0.count) }
                return [output]
            }
            fused.outputs = node.outputs
            fused.name += "+Relu"
            nodes[source] = fused
            removed.insert(index)
        }
        nodes = nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    }

    /// `Mul` by a per-channel constant, then `Add` of a per-channel constant (a BatchNormalization
    /// as exporters often spell it, before a Conv it cannot fold into), and a `Relu` after them
    /// when it is the only reader, become one pass over memory instead of three. The arithmetic is
    /// the same (a rounded product, then a rounded sum), so results are bit-identical. Any other
    /// input (another dtype, rank, or channel count) runs the original kernels in turn.
    static func fuseChannelAffine(_ nodes: inout [Node], _ initializers: [String: Tensor], protected: Set<String>, overridable: Set<String>) {
        let readers = readerCounts(nodes)
        var reader: [String: Int] = [:]
        for (index, node) in nodes.enumerated() { for input in node.inputs where !input.isEmpty { reader[input] = index } }
        /// A float32 constant shaped [C, 1, 1] or [1, C, 1, 1]: its channel count.
        func channelConstant(_ name: String) -> (Tensor, Int)? {
            guard !overridable.contains(name), let tensor = initializers[name], tensor.dtype == .float32,
                  (3...4).contains(tensor.rank), tensor.shape.enumerated().allSatisfy({ $0.offset == tensor.rank - 3 || $0.element == 1 }) else { return nil }
            return (tensor, tensor.shape[tensor.rank - 3])
        }
        func single(_ name: String) -> Node? {
            guard readers[name] == 1, !protected.contains(name), let index = reader[name] else { return nil }
            return nodes[index]
        }
        var producer: [String: Int] = [:]
        for (index, node) in nodes.enumerated() { for output in node.outputs where !output.isEmpty { producer[output] = index } }
        /// An inference-mode BatchNormalization with constant parameters for `channels`, whose
        /// output only `name`'s reader reads: its index, parameters, and per-channel factor and
        /// offset exactly as its kernel computes them.
        func normalization(producing name: String, channels: Int) -> (Int, [Tensor], [Float], [Float])? {
            guard readers[name] == 1, !protected.contains(name), let index = producer[name] else { return nil }
            let bn = nodes[index]
            guard bn.opType == "BatchNormalization", bn.domain.isEmpty, bn.inputs.count == 5, bn.outputs.first == name,
                  bn.outputs.dropFirst().allSatisfy(\.isEmpty), bn.attributes.int("training_mode", default: 0) == 0,
                  bn.attributes.int("spatial", default: 1) == 1, case .tensors = bn.kernel else { return nil }
            let parameters = bn.inputs.dropFirst().compactMap { name -> Tensor? in
                guard !overridable.contains(name), let tensor = initializers[name], tensor.dtype.isFloatingPoint, tensor.count == channels else { return nil }
                return tensor
            }
            guard parameters.count == 4 else { return nil }
            let (scale, bias, mean, variance) = (parameters[0].doubles(), parameters[1].doubles(), parameters[2].doubles(), parameters[3].doubles())
            let epsilon = Double(bn.attributes.float("epsilon", default: 1e-5))
            let factors = (0..<channels).map { scale[$0] / (variance[$0] + epsilon).squareRoot() }
            return (index, parameters, factors.map { Float($0) }, (0..<channels).map { Float(bias[$0] - mean[$0] * factors[$0]) })
        }
        var removed: Set<Int> = []
        for (index, mul) in nodes.enumerated() where mul.opType == "Mul" && mul.domain.isEmpty && mul.inputs.count == 2 && mul.outputs.count == 1 {
            guard !removed.contains(index), case .tensors(let mulKernel) = mul.kernel else { continue }
            let scaleFirst = channelConstant(mul.inputs[0]) != nil && channelConstant(mul.inputs[1]) == nil
            let (dataName, scaleName) = scaleFirst ? (mul.inputs[1], mul.inputs[0]) : (mul.inputs[0], mul.inputs[1])
            guard let (scale, channels) = channelConstant(scaleName), initializers[dataName] == nil,
                  let add = single(mul.outputs[0]), add.opType == "Add", add.domain.isEmpty, add.inputs.count == 2, add.outputs.count == 1,
                  let addIndex = reader[mul.outputs[0]], case .tensors(let addKernel) = add.kernel else { continue }
            let shiftName = add.inputs[0] == mul.outputs[0] ? add.inputs[1] : add.inputs[0]
            guard shiftName != mul.outputs[0], let (shift, shiftChannels) = channelConstant(shiftName), shiftChannels == channels else { continue }
            var outputs = add.outputs
            var reluKernel: KernelFunction?
            var reluNode: Node?
            if let relu = single(add.outputs[0]), relu.opType == "Relu", relu.domain.isEmpty, let reluIndex = reader[add.outputs[0]],
               case .tensors(let kernel) = relu.kernel {
                reluKernel = kernel
                reluNode = relu
                outputs = relu.outputs
                removed.insert(reluIndex)
            }
            removed.insert(addIndex)
            let scales = scale.scalars(as: Float.self), shifts = shift.scalars(as: Float.self)
            let withRelu = reluKernel != nil
            let original = (mul, add, reluNode)
            let reluStep = reluKernel
            var fused = mul
            fused.inputs = [dataName]
            // A BatchNormalization before the Mul (DenseNet's, after each Concat) joins the pass:
            // its multiply-add per element comes first, rounded as its kernel rounds it.
            var normalizer: (node: Node, kernel: KernelFunction, parameters: [Tensor], factors: [Float], offsets: [Float])?
            if let (bnIndex, parameters, factors, offsets) = normalization(producing: dataName, channels: channels),
               case .tensors(let bnKernel) = nodes[bnIndex].kernel {
                normalizer = (nodes[bnIndex], bnKernel, parameters, factors, offsets)
                fused.inputs = [nodes[bnIndex].inputs[0]]
                fused.name = nodes[bnIndex].name + "+" + fused.name
                removed.insert(bnIndex)
            }
            fused.outputs = outputs
            fused.name += "+Add" + (withRelu ? "+Relu" : "")
            let normalizerStep = normalizer
            // Plain arrays for the per-plane loop: binding the optional tuple there would copy
            // and retain a Node per plane, which costs more than a 7×7 plane's arithmetic.
            let normalizes = normalizer != nil
            let (bnFactors, bnOffsets) = (normalizer?.factors ?? [], normalizer?.offsets ?? [])
            fused.kernel = .tensors { _, inputs in
                guard var x = inputs.first ?? nil else { throw ONNXError.invalidModel("node \(original.0.name): missing input") }
                guard x.dtype == .float32, x.rank == 4, x.shape[1] == channels, scales.count == channels else {
                    // Shapes this pass does not cover: the original nodes, one after another.
                    func context(_ node: Node) -> KernelContext { KernelContext(node: node) { _, _ in [] } }
                    if let normalizerStep {
                        x = try normalizerStep.kernel(context(normalizerStep.node), [x] + normalizerStep.parameters)[0]
                    }
                    let product = try mulKernel(context(original.0), scaleFirst ? [scale, x] : [x, scale])[0]
                    let sum = try addKernel(context(original.1), original.1.inputs[0] == original.0.outputs[0] ? [product, shift] : [shift, product])[0]
                    guard let reluStep, let relu = original.2 else { return [sum] }
                    return try reluStep(context(relu), [sum])
                }
                let batch = x.shape[0], plane = x.shape.dropFirst(2).reduce(1, *)
                let y = Tensor(uninitialized: .float32, shape: x.shape)
                x.withUnsafeBufferPointer(as: Float.self) { source in
                    y.withUnsafeMutableBufferPointer(as: Float.self) { destination in
                        Parallel.chunks(batch * channels, minimum: Swift.max(1, 65_536 / Swift.max(plane, 1))) { range in
                            for item in range {
                                let c = item % channels
                                let (s, b) = (scales[c], shifts[c])
                                let input = source.baseAddress! + item * plane, output = destination.baseAddress! + item * plane
                                if normalizes {
                                    let (f, o) = (bnFactors[c], bnOffsets[c])
                                    if withRelu {
                                        for i in 0..<plane {
                                            let v = (input[i] * f + o) * s + b
                                            output[i] = v < 0 ? 0 : v
                                        }
                                    } else {
                                        for i in 0..<plane { output[i] = (input[i] * f + o) * s + b }
                                    }
                                } else if withRelu {
                                    for i in 0..<plane {
                                        let v = input[i] * s + b
                                        output[i] = v < 0 ? 0 : v
                                    }
                                } else {
                                    for i in 0..<plane { output[i] = input[i] * s + b }
                                }
                            }
                        }
                    }
                }
                return [y]
            }
            nodes[index] = fused
        }
        nodes = nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    }

    /// Operators whose result is not a function of their inputs.
    /// How many times each value is read, counting subgraphs' captures as readers too.
    static func readerCounts(_ nodes: [Node]) -> [String: Int] {
        var readers: [String: Int] = [:]
        for node in nodes {
            for input in node.inputs where !input.isEmpty { readers[input, default: 0] += 1 }
            for value in node.attributes.values.values {
                if case .graph(let graph) = value { for name in graph.capturedNames { readers[name, default: 0] += 2 } }
            }
        }
        return readers
    }

    /// Conv followed by inference-mode BatchNormalization, with every parameter constant and
    /// the Conv's output read only by the BatchNormalization, becomes one Conv whose weights and
    /// bias carry the normalization: W′ = W·s, B′ = (B − mean)·s + β with s = γ/√(var + ε),
    /// per output channel. The BatchNormalization pass disappears, and a Relu after it can then
    /// fuse into the Conv.
    static func foldBatchNormIntoConv(_ nodes: inout [Node], _ initializers: inout [String: Tensor], protected: Set<String>,
                                      overridable: Set<String>) {
        let readers = readerCounts(nodes)
        var producer: [String: Int] = [:]
        for (index, node) in nodes.enumerated() where node.opType == "Conv" && node.domain.isEmpty && node.outputs.count == 1 {
            producer[node.outputs[0]] = index
        }
        func constant(_ name: String) -> Tensor? {
            guard !name.isEmpty, !overridable.contains(name), let tensor = initializers[name], tensor.dtype.isFloatingPoint else { return nil }
            return tensor
        }
        var removed: Set<Int> = []
        var replaced: Set<String> = []
        for (index, bn) in nodes.enumerated() where bn.opType == "BatchNormalization" && bn.domain.isEmpty {
            guard bn.inputs.count == 5, bn.outputs.first.map({ !$0.isEmpty }) == true, bn.outputs.dropFirst().allSatisfy(\.isEmpty),
                  bn.attributes.int("training_mode", default: 0) == 0, bn.attributes.int("spatial", default: 1) == 1,
                  let source = producer[bn.inputs[0]], readers[bn.inputs[0]] == 1, !protected.contains(bn.inputs[0]),
                  !removed.contains(source) else { continue }
            let conv = nodes[source]
            guard conv.inputs.count >= 2, let weights = constant(conv.inputs[1]), weights.dtype == .float32, weights.rank >= 3,
                  let gamma = constant(bn.inputs[1]), let beta = constant(bn.inputs[2]),
                  let mean = constant(bn.inputs[3]), let variance = constant(bn.inputs[4]) else { continue }
            let filters = weights.shape[0]
            let convBias = conv.inputs.count > 2 && !conv.inputs[2].isEmpty ? constant(conv.inputs[2]) : nil
            if conv.inputs.count > 2, !conv.inputs[2].isEmpty, convBias == nil { continue }
            guard [gamma, beta, mean, variance].allSatisfy({ $0.count == filters }), convBias.map({ $0.count == filters }) ?? true else { continue }
            let epsilon = Double(bn.attributes.float("epsilon", default: 1e-5))
            let (g, b, m, v) = (gamma.doubles(), beta.doubles(), mean.doubles(), variance.doubles())
            let scales = (0..<filters).map { g[$0] / (v[$0] + epsilon).squareRoot() }
            let biasIn = convBias?.doubles() ?? [Double](repeating: 0, count: filters)
            let perFilter = weights.count / filters
            var folded = weights.scalars(as: Float.self)
            for f in 0..<filters {
                for k in (f * perFilter)..<((f + 1) * perFilter) { folded[k] = Float(Double(folded[k]) * scales[f]) }
            }
            let bias = (0..<filters).map { Float((biasIn[$0] - m[$0]) * scales[$0] + b[$0]) }
            var stem = "\(conv.name)+BatchNormalization"
            while initializers[stem + ".W"] != nil || initializers[stem + ".B"] != nil { stem += "_" }
            initializers[stem + ".W"] = Tensor(folded, shape: weights.shape)
            initializers[stem + ".B"] = Tensor(bias, shape: [filters])
            replaced.formUnion(conv.inputs.dropFirst().filter { !$0.isEmpty } + bn.inputs.dropFirst())
            var fused = conv
            fused.inputs = [conv.inputs[0], stem + ".W", stem + ".B"]
            fused.outputs = bn.outputs.prefix(1).map { $0 }
            fused.name += "+BatchNormalization"
            nodes[source] = fused
            removed.insert(index)
        }
        guard !removed.isEmpty else { return }
        nodes = nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
        // Parameters nothing reads any more are dropped, not kept twice.
        let stillRead = readerCounts(nodes)
        for name in replaced where stillRead[name] == nil && !protected.contains(name) && !overridable.contains(name) {
            initializers[name] = nil
        }
    }

    static let nondeterministic: Set<String> = [
        "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial", "Bernoulli", "Dropout",
    ]

    /// Runs, once at load time, every node whose inputs are all constants, and replaces it by
    /// its outputs as initializers (constant folding). Graph outputs stay computed by nodes.
    func foldConstants(_ nodes: inout [Node], _ initializers: inout [String: Tensor], fed: Set<String>, protected: Set<String>) throws {
        var constants = initializers.filter { !fed.contains($0.key) }
        var kept: [Node] = []
        for node in nodes {
            let hasSubgraph = node.attributes.values.values.contains { if case .graph = $0 { true } else if case .graphs = $0 { true } else { false } }
            guard case .tensors(let kernel) = node.kernel else {
                kept.append(node)
                continue
            }
            let foldable = !hasSubgraph && !Self.nondeterministic.contains(node.opType) && node.domain.isEmpty
                && node.inputs.allSatisfy { $0.isEmpty || constants[$0] != nil }
                && !node.outputs.contains(where: protected.contains)
            guard foldable else {
                kept.append(node)
                continue
            }
            let context = KernelContext(node: node) { _, _ in [] }
            // A node that fails here is left to fail (or not) at run time, with its real inputs.
            guard let results = try? kernel(context, node.inputs.map { $0.isEmpty ? nil : constants[$0] }),
                  results.count >= node.outputs.filter({ !$0.isEmpty }).count
            else {
                kept.append(node)
                continue
            }
            for (name, tensor) in zip(node.outputs, results) where !name.isEmpty { constants[name] = tensor }
        }
        // Keep the constants something still reads.
        var needed = Set(kept.flatMap(\.inputs)).union(protected)
        for node in kept {
            for value in node.attributes.values.values {
                if case .graph(let graph) = value { needed.formUnion(graph.capturedNames) }
            }
        }
        for (name, tensor) in constants where needed.contains(name) { initializers[name] = tensor }
        nodes = kept
    }

    mutating func decode(_ attribute: Onnx_AttributeProto, node: String, outerNames: Set<String>) throws -> Attributes.Value {
        func string(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }
        switch attribute.type {
        case .float: return .float(attribute.f)
        case .int: return .int(Int(attribute.i))
        case .string: return .string(string(attribute.s))
        case .tensor: return .tensor(try Tensor(proto: attribute.t, directory: directory, mappedFiles: mappedFiles))
        case .graph: return .graph(try build(attribute.g, outerNames: outerNames, isMain: false))
        case .floats: return .floats(attribute.floats)
        case .ints: return .ints(attribute.ints.map { Int($0) })
        case .strings: return .strings(attribute.strings.map(string))
        case .tensors: return .tensors(try attribute.tensors.map { try Tensor(proto: $0, directory: directory, mappedFiles: mappedFiles) })
        case .graphs: return .graphs(try attribute.graphs.map { try build($0, outerNames: outerNames, isMain: false) })
        default:
            // Old models leave `type` unset; infer it from the field that is filled.
            if attribute.hasF { return .float(attribute.f) }
            if attribute.hasI { return .int(Int(attribute.i)) }
            if attribute.hasS { return .string(string(attribute.s)) }
            if attribute.hasT { return .tensor(try Tensor(proto: attribute.t, directory: directory, mappedFiles: mappedFiles)) }
            if attribute.hasG { return .graph(try build(attribute.g, outerNames: outerNames, isMain: false)) }
            if !attribute.floats.isEmpty { return .floats(attribute.floats) }
            if !attribute.ints.isEmpty { return .ints(attribute.ints.map { Int($0) }) }
            if !attribute.strings.isEmpty { return .strings(attribute.strings.map(string)) }
            throw ONNXError.invalidModel("attribute `\(attribute.name)` of node `\(node)` has an unsupported type")
        }
    }

    static func valueInfo(_ proto: Onnx_ValueInfoProto) -> ValueInfo {
        switch proto.type.value {
        case .tensorType(let tensorType)?:
            let dtype = ONNXDataType.dtype(tensorType.elemType)
            guard tensorType.hasShape else { return ValueInfo(name: proto.name, dtype: dtype, shape: nil) }
            let shape: [Dim] = tensorType.shape.dim.map { dimension in
                switch dimension.value {
                case .dimValue(let size)?: size >= 0 ? .fixed(Int(size)) : .dynamic(name: nil)
                case .dimParam(let name)?: .dynamic(name: name)
                case nil: .dynamic(name: nil)
                }
            }
            return ValueInfo(name: proto.name, dtype: dtype, shape: shape)
        case nil:
            return ValueInfo(name: proto.name, dtype: nil, shape: nil)
        default:
            return ValueInfo(name: proto.name, dtype: nil, shape: nil, nonTensorType: typeDescription(proto.type))
        }
    }

    /// An ONNX type as its type string: `tensor(float)`, `seq(map(int64,tensor(float)))`.
    static func typeDescription(_ type: Onnx_TypeProto) -> String {
        func element(_ code: Int32) -> String { ONNXDataType.dtype(code)?.onnxName ?? "type \(code)" }
        switch type.value {
        case .tensorType(let tensor)?: return "tensor(\(element(tensor.elemType)))"
        case .sparseTensorType(let tensor)?: return "sparse_tensor(\(element(tensor.elemType)))"
        case .sequenceType(let sequence)?: return "seq(\(typeDescription(sequence.elemType)))"
        case .mapType(let map)?: return "map(\(element(map.keyType)),\(typeDescription(map.valueType)))"
        case .optionalType(let optional)?: return "optional(\(typeDescription(optional.elemType)))"
        case .opaqueType(let opaque)?: return "opaque(\(opaque.domain).\(opaque.name))"
        case nil: return "?"
        }
    }
}

/// Runs graphs. Holds no state between runs, so one loaded model serves many threads at once.
enum Executor {
    /// A scope: this graph's values, with the enclosing scopes' values visible beneath.
    final class Scope: @unchecked Sendable {
        var values: [String: ONNXValue]
        let parent: Scope?

        init(values: [String: ONNXValue], parent: Scope?) {
            self.values = values
            self.parent = parent
        }

        func lookup(_ name: String) -> ONNXValue? {
            values[name] ?? parent?.lookup(name)
        }
    }

    static func run(_ graph: Graph, feeds: [String: ONNXValue], outer: Scope?, control: RunControl? = nil) throws -> [ONNXValue] {
        var initial: [String: ONNXValue] = [:]
        initial.reserveCapacity(graph.initializers.count + feeds.count)
        for (name, tensor) in graph.initializers { initial[name] = .tensor(tensor) }
        for (name, value) in feeds { initial[name] = value }
        let scope = Scope(values: initial, parent: outer)
        for (index, node) in graph.nodes.enumerated() {
            try control?.check()
            let context = KernelContext(node: node, runSubgraph: { subgraph, subfeeds in
                try run(subgraph, feeds: subfeeds, outer: scope, control: control)
            }, control: control)
            let started = Profiler.enabled ? DispatchTime.now().uptimeNanoseconds : 0
            let results: [ONNXValue]
            switch node.kernel {
            case .tensors(let kernel):
                let inputs: [Tensor?] = try node.inputs.map { name in
                    if name.isEmpty { return nil }
                    guard let value = scope.lookup(name) else {
                        throw ONNXError.invalidNode(node: node.name, opType: node.opType, reason: "input `\(name)` has no value")
                    }
                    guard let tensor = value.tensor else {
                        throw ONNXError.invalidNode(node: node.name, opType: node.opType,
                                                    reason: "input `\(name)` is a \(value.typeDescription); this operator takes tensors")
                    }
                    return tensor
                }
                results = try kernel(context, inputs).map { .tensor($0) }
            case .values(let kernel):
                let inputs: [ONNXValue?] = try node.inputs.map { name in
                    if name.isEmpty { return nil }
                    guard let value = scope.lookup(name) else {
                        throw ONNXError.invalidNode(node: node.name, opType: node.opType, reason: "input `\(name)` has no value")
                    }
                    return value
                }
                results = try kernel(context, inputs)
            }
            if Profiler.enabled {
                Profiler.record(node.opType, name: node.name.isEmpty ? "#\(index)" : node.name,
                                seconds: Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9)
            }
            for (output, value) in zip(node.outputs, results) where !output.isEmpty {
                scope.values[output] = value
            }
            for name in graph.releaseAfter[index] { scope.values[name] = nil }
        }
        return try graph.outputs.map { output in
            guard let value = scope.lookup(output.name) else { throw ONNXError.invalidModel("output `\(output.name)` was not computed") }
            return value
        }
    }
}
