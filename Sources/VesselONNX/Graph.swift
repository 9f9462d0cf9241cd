#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
public import VesselTensor

/// A declared graph input or output: its name, and its element type and shape when the model
/// states them.
public struct ValueInfo: Sendable, Hashable {
    public var name: String
    public var dtype: DType?
    /// nil when the rank is unknown.
    public var shape: [Dim]?
    /// For a sequence, map or optional, its ONNX type (`seq(map(int64,tensor(float)))`); nil
    /// for a tensor (or an undeclared type).
    public var nonTensorType: String? = nil
}

/// One node of a graph, resolved to its kernel at load time.
///
/// A value type whose fields live in one copy-on-write box: the executor copies a node into each
/// step's `KernelContext`, and copying eight strings, arrays and closures there was a tenth of a
/// one-sentence int8 encoder's run in retains and releases; now it is one.
public struct Node: Sendable {
    final class Storage: @unchecked Sendable {
        var name: String
        var opType: String
        var domain: String
        var inputs: [String]
        var outputs: [String]
        var attributes: Attributes
        var opset: Int
        var kernel: NodeKernel
        var minimumRanks: [Int]
        var inputTypes: InputTypes
        var isFused = false

        init(
            name: String, opType: String, domain: String, inputs: [String], outputs: [String], attributes: Attributes, opset: Int,
            kernel: NodeKernel, minimumRanks: [Int], inputTypes: InputTypes
        ) {
            (self.name, self.opType, self.domain, self.inputs, self.outputs) = (name, opType, domain, inputs, outputs)
            (self.attributes, self.opset, self.kernel, self.minimumRanks, self.inputTypes) = (attributes, opset, kernel, minimumRanks, inputTypes)
        }

        func copy() -> Storage {
            let copy = Storage(
                name: name, opType: opType, domain: domain, inputs: inputs, outputs: outputs, attributes: attributes, opset: opset, kernel: kernel,
                minimumRanks: minimumRanks, inputTypes: inputTypes)
            copy.isFused = isFused
            return copy
        }
    }

    /// Shared between copies until one of them changes a field (mutation copies it first), so a
    /// node read from several threads is never written.
    private var storage: Storage

    init(
        name: String, opType: String, domain: String, inputs: [String], outputs: [String], attributes: Attributes, opset: Int,
        kernel: NodeKernel, minimumRanks: [Int] = [], inputTypes: InputTypes = InputTypes()
    ) {
        storage = Storage(
            name: name, opType: opType, domain: domain, inputs: inputs, outputs: outputs, attributes: attributes, opset: opset, kernel: kernel,
            minimumRanks: minimumRanks, inputTypes: inputTypes)
    }

    private mutating func unique() -> Storage {
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
        return storage
    }

    public var name: String {
        get { storage.name }
        set { unique().name = newValue }
    }
    public var opType: String {
        get { storage.opType }
        set { unique().opType = newValue }
    }
    public var domain: String {
        get { storage.domain }
        set { unique().domain = newValue }
    }
    /// Input names; "" marks an omitted optional input.
    public var inputs: [String] {
        get { storage.inputs }
        set { unique().inputs = newValue }
    }
    public var outputs: [String] {
        get { storage.outputs }
        set { unique().outputs = newValue }
    }
    public var attributes: Attributes {
        get { storage.attributes }
        set { unique().attributes = newValue }
    }
    /// The opset version of the node's domain the model imports.
    public var opset: Int {
        get { storage.opset }
        set { unique().opset = newValue }
    }
    var kernel: NodeKernel {
        get { storage.kernel }
        set { unique().kernel = newValue }
    }
    /// ``InputRanks``' entry for this operator, checked before each run of the kernel.
    var minimumRanks: [Int] {
        get { storage.minimumRanks }
        set { unique().minimumRanks = newValue }
    }
    /// The spec's dtype ties between inputs, checked before each run of the kernel.
    var inputTypes: InputTypes {
        get { storage.inputTypes }
        set { unique().inputTypes = newValue }
    }

    /// Whether a load-time rewrite gave this node a kernel that computes more than its operator
    /// (a Conv that also pools, a Concat that also convolves): later rewrites do not take it for
    /// a plain node of its type (`Chains.plain`).
    var isFused: Bool {
        get { storage.isFused }
        set { unique().isFused = newValue }
    }

    /// The node's own error, for prepared kernels checking attributes at load.
    public func invalid(_ reason: String) -> ONNXError {
        .invalidNode(node: name, opType: opType, reason: reason)
    }
}

/// A graph ready to run: nodes in execution order, constants, and for each value the step after
/// which it is no longer needed.
public final class Graph: Sendable {
    public let name: String
    public let nodes: [Node]
    public let initializers: [String: Tensor]
    /// Inputs a caller must (or, for those with initializers, may) feed.
    public let inputs: [ValueInfo]
    public let outputs: [ValueInfo]
    /// Every value this graph defines (inputs, initializers, node outputs), numbered: a run keeps
    /// its values in an array by these slots, so a step finds its inputs without hashing names.
    let slots: [String: Int]
    /// The initializers, by slot.
    let constantsBySlot: [Tensor?]
    /// Per node, in order, its inputs', outputs' and freed values' slots.
    let stepSlots: [StepSlots]

    /// A node's values by slot: an input is `omitted` (""), `outer` (a value of an enclosing
    /// graph, looked up by name), or a slot of this graph's.
    struct StepSlots: Sendable {
        static let omitted = -1
        static let outer = -2
        var inputs: [Int]
        /// `omitted` for an output the node does not produce.
        var outputs: [Int]
        /// The values whose last reader the node is, freed after it runs.
        var release: [Int]
    }
    /// The plan before constant folding, for runs that feed an input folding treated as constant.
    let unfolded: Graph?
    /// Inputs that have an initializer (defaults a caller may override).
    let overridable: Set<String>

    init(
        name: String, nodes: [Node], initializers: [String: Tensor], inputs: [ValueInfo], outputs: [ValueInfo],
        outerNames: Set<String>, unfolded: Graph? = nil, overridable: Set<String> = []
    ) throws {
        self.name = name
        self.unfolded = unfolded
        self.overridable = overridable
        self.initializers = initializers
        self.inputs = inputs
        self.outputs = outputs
        // Two inputs of one name would bind one value two ways. (Two outputs of one name are
        // one value listed twice, which a caller gets once.)
        var declared: Set<String> = []
        for input in inputs where !declared.insert(input.name).inserted {
            throw ONNXError.invalidModel("graph `\(name)` declares input `\(input.name)` twice")
        }
        let ordered = try Self.topologicalOrder(nodes, available: Set(inputs.map(\.name)).union(initializers.keys).union(outerNames))
        self.nodes = ordered
        // Last use of each value produced or fed here (outer values belong to the outer graph).
        var lastUse: [String: Int] = [:]
        for (index, node) in ordered.enumerated() {
            for input in node.inputs where !input.isEmpty { lastUse[input] = index }
            for subgraph in node.attributes.values.values {
                if case .graph(let graph) = subgraph {
                    for name in graph.capturedNames { lastUse[name] = index }
                }
            }
        }
        let keep = Set(outputs.map(\.name))
        var release = [[String]](repeating: [], count: ordered.count)
        for (name, index) in lastUse where !keep.contains(name) && initializers[name] == nil {
            release[index].append(name)
        }
        var slots: [String: Int] = [:]
        func define(_ name: String) {
            if !name.isEmpty, slots[name] == nil { slots[name] = slots.count }
        }
        inputs.forEach { define($0.name) }
        initializers.keys.sorted().forEach(define)
        ordered.forEach { $0.outputs.forEach(define) }
        var constants = [Tensor?](repeating: nil, count: slots.count)
        for (name, tensor) in initializers { constants[slots[name]!] = tensor }
        self.slots = slots
        constantsBySlot = constants
        stepSlots = ordered.indices.map { index in
            let node = ordered[index]
            return StepSlots(
                inputs: node.inputs.map { $0.isEmpty ? StepSlots.omitted : slots[$0] ?? StepSlots.outer },
                outputs: node.outputs.map { $0.isEmpty ? StepSlots.omitted : slots[$0]! },
                release: release[index].compactMap { slots[$0] })
        }
    }

    /// Names this graph reads from enclosing graphs (for If/Loop bodies).
    var capturedNames: Set<String> {
        var defined = Set(inputs.map(\.name)).union(initializers.keys)
        var captured: Set<String> = []
        for node in nodes {
            for input in node.inputs where !input.isEmpty && !defined.contains(input) { captured.insert(input) }
            for value in node.attributes.values.values {
                if case .graph(let graph) = value { captured.formUnion(graph.capturedNames.subtracting(defined)) }
            }
            defined.formUnion(node.outputs)
        }
        for output in outputs where !defined.contains(output.name) { captured.insert(output.name) }
        return captured
    }

    /// Kahn's algorithm, stable: nodes keep file order where dependencies allow, so runs are
    /// deterministic.
    static func topologicalOrder(_ nodes: [Node], available: Set<String>) throws -> [Node] {
        var producers: [String: Int] = [:]
        for (index, node) in nodes.enumerated() {
            for output in node.outputs where !output.isEmpty {
                if producers[output] != nil {
                    throw ONNXError.invalidModel("value `\(output)` is produced by two nodes")
                }
                producers[output] = index
            }
        }
        var dependents = [[Int]](repeating: [], count: nodes.count)
        var pending = [Int](repeating: 0, count: nodes.count)
        for (index, node) in nodes.enumerated() {
            var needs = Set(node.inputs.filter { !$0.isEmpty })
            for value in node.attributes.values.values {
                if case .graph(let graph) = value { needs.formUnion(graph.capturedNames) }
            }
            for input in needs {
                if let producer = producers[input] {
                    if producer != index {
                        dependents[producer].append(index)
                        pending[index] += 1
                    }
                } else if !available.contains(input) {
                    throw ONNXError.invalidNode(
                        node: node.name, opType: node.opType, reason: "input `\(input)` is not produced by any node nor fed to the graph")
                }
            }
        }
        var ready = (0..<nodes.count).filter { pending[$0] == 0 }
        var order: [Node] = []
        var cursor = 0
        while cursor < ready.count {
            let index = ready[cursor]
            cursor += 1
            order.append(nodes[index])
            for dependent in dependents[index] {
                pending[dependent] -= 1
                if pending[dependent] == 0 { ready.append(dependent) }
            }
            // Keep file order among nodes that became ready together.
            if cursor < ready.count { ready[cursor...].sort() }
        }
        guard order.count == nodes.count else { throw ONNXError.invalidModel("the graph has a cycle") }
        return order
    }
}
