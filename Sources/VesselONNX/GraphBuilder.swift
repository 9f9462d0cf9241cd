#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import VesselTensor
import SwiftProtobuf

/// Builds a `Graph` from its protobuf: initializers, nodes with their kernels, then the
/// graph rewrites in `GraphRewrites/`, in the order `build` runs them.
struct GraphBuilder {
    let opsets: [String: Int]
    /// The model's IR version: below 4 an initializer listed among the inputs is a constant.
    let irVersion: Int
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
            var node = Node(
                name: name, opType: nodeProto.opType, domain: domain, inputs: nodeProto.input,
                outputs: nodeProto.output, attributes: attributes, opset: opset, kernel: .tensors { _, _ in [] },
                minimumRanks: domain.isEmpty ? InputRanks.minimum[nodeProto.opType] ?? [] : [],
                inputTypes: InputTypes(opType: nodeProto.opType, domain: domain, opset: opset, count: nodeProto.input.count))
            if let make = registry.maker(nodeProto.opType, domain: domain, opset: opset) {
                try AttributeRules.check(node)
                node.kernel = try make(node)
            } else {
                unsupported.append((domain, nodeProto.opType, opset, name))
            }
            nodes.append(node)
            defined.formUnion(nodeProto.output)
        }
        var inputs = proto.input.map(Self.valueInfo)
        // IR 3 required every initializer to be listed among the graph's inputs as well, so there
        // the listing makes no input: the initializer is a constant (the IR spec gave inputs
        // defaults only from version 4; onnxruntime reads old models the same way). It is folded
        // and fused like any constant, and feeding it is an unknown input.
        if irVersion < 4 { inputs.removeAll { initializers[$0.name] != nil } }
        let outputs = proto.output.map(Self.valueInfo)
        var unfolded: Graph?
        var overridable: Set<String> = []
        if unsupported.isEmpty {
            // Initializers that are also graph inputs (IR 4 on) are defaults a caller may
            // override. Constant folding folds them like any constant, and the unfolded plan is
            // kept for a run that does override one; the fusions below leave them alone.
            overridable = Set(inputs.map(\.name)).intersection(initializers.keys)
            if !overridable.isEmpty {
                unfolded = try Graph(name: proto.name, nodes: nodes, initializers: initializers, inputs: inputs, outputs: outputs, outerNames: outerNames)
            }
            try foldConstants(&nodes, &initializers, fed: [], protected: Set(outputs.map(\.name)))
            Self.omitUnreadOutputs(&nodes, protected: Set(outputs.map(\.name)))
            Self.foldBatchNormIntoConv(&nodes, &initializers, protected: Set(outputs.map(\.name)), overridable: overridable)
            Self.foldChannelConstantsIntoConv(&nodes, &initializers, protected: Set(outputs.map(\.name)), overridable: overridable)
            Self.fuseChannelAffine(&nodes, initializers, protected: Set(outputs.map(\.name)), overridable: overridable)
            Self.fuseIntegerProducts(&nodes, initializers, protected: Set(outputs.map(\.name)), overridable: overridable)
            Self.fuseGelu(&nodes, initializers, protected: Set(outputs.map(\.name)), overridable: overridable)
            Self.fuseTransposes(&nodes, initializers, protected: Set(outputs.map(\.name)), overridable: overridable)
            Self.fuseBias(&nodes, initializers, protected: Set(outputs.map(\.name)), overridable: overridable)
            Self.fuseScaledSoftmax(&nodes, initializers, protected: Set(outputs.map(\.name)), overridable: overridable)
            Self.fuseResidual(&nodes, initializers, protected: Set(outputs.map(\.name)), overridable: overridable)
            Self.fuseConvolutionPool(&nodes, initializers, protected: Set(outputs.map(\.name)), overridable: overridable)
            Self.fuseConcatenation(&nodes, initializers, protected: Set(outputs.map(\.name)), overridable: overridable)
            Self.fuseActivations(&nodes, protected: Set(outputs.map(\.name)))
        }
        if !unsupported.isEmpty {
            // Ordering would only fail on the missing kernels' outputs; report those instead.
            return try Graph(name: proto.name, nodes: [], initializers: initializers, inputs: inputs, outputs: [], outerNames: outerNames)
        }
        return try Graph(
            name: proto.name, nodes: nodes, initializers: initializers, inputs: inputs, outputs: outputs,
            outerNames: outerNames, unfolded: unfolded, overridable: overridable)
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
