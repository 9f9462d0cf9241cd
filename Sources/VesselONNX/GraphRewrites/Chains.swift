import VesselTensor

/// What the fusing rewrites ask of a graph: which node reads and which makes each value, whether
/// a value may be absorbed into a fused node, the constants a fused node may bake in, and how the
/// fused nodes take their places.
struct Chains {
    let nodes: [Node]
    let initializers: [String: Tensor]
    let protected: Set<String>, overridable: Set<String>
    /// How many nodes read each value (`GraphBuilder.readerCounts`), and the last that does.
    let readers: [String: Int]
    let reader: [String: Int]
    let producer: [String: Int]

    init(_ nodes: [Node], _ initializers: [String: Tensor], protected: Set<String>, overridable: Set<String>) {
        self.nodes = nodes
        self.initializers = initializers
        self.protected = protected
        self.overridable = overridable
        readers = GraphBuilder.readerCounts(nodes)
        var reader: [String: Int] = [:], producer: [String: Int] = [:]
        for (index, node) in nodes.enumerated() {
            for input in node.inputs where !input.isEmpty { reader[input] = index }
            for output in node.outputs where !output.isEmpty { producer[output] = index }
        }
        self.reader = reader
        self.producer = producer
    }

    /// Whether `name` is read by one node and is no graph output: a fused node may absorb it.
    func absorbable(_ name: String) -> Bool { readers[name] == 1 && !protected.contains(name) }

    /// The node at `index` if it is a plain `opType` — the default domain, one output, a tensor
    /// kernel, not one a rewrite made (`Node.isFused`) — with its kernel.
    func plain(_ index: Int?, _ opType: String) -> (index: Int, node: Node, kernel: KernelFunction)? {
        guard let index, nodes[index].opType == opType, nodes[index].domain.isEmpty, nodes[index].outputs.count == 1, !nodes[index].isFused,
            case .tensors(let kernel) = nodes[index].kernel
        else { return nil }
        return (index, nodes[index], kernel)
    }

    /// The node at `index` if it is a plain `opType` with two inputs.
    func binary(_ index: Int?, _ opType: String) -> Node? {
        guard let node = plain(index, opType)?.node, node.inputs.count == 2 else { return nil }
        return node
    }

    /// The plain `opType` node that alone reads `name`, an absorbable value.
    func soleReader(of name: String, _ opType: String) -> (index: Int, node: Node, kernel: KernelFunction)? {
        absorbable(name) ? plain(reader[name], opType) : nil
    }

    /// The plain Conv (two or three inputs) that makes the absorbable `name`, directly or through
    /// a Relu that alone reads it, with that Relu.
    func convolution(making name: String) -> (conv: (index: Int, node: Node, kernel: KernelFunction), relu: (index: Int, node: Node)?)? {
        guard absorbable(name) else { return nil }
        let relu = plain(producer[name], "Relu")
        let convOutput = relu.map { $0.node.inputs.first ?? "" } ?? name
        guard relu == nil || (relu!.node.inputs.count == 1 && absorbable(convOutput)), let conv = plain(producer[convOutput], "Conv"),
            (2...3).contains(conv.node.inputs.count)
        else { return nil }
        return (conv, relu.map { ($0.index, $0.node) })
    }

    /// A constant (not a default a caller may override).
    func constant(_ name: String) -> Tensor? { overridable.contains(name) ? nil : initializers[name] }

    /// A float32 or float16 constant of one value (a scale the float32 and float16 fusions widen).
    func scalar(_ name: String) -> Tensor? {
        guard let tensor = constant(name), tensor.dtype == .float32 || tensor.dtype == .float16, tensor.count == 1 else { return nil }
        return tensor
    }

    /// The other input of a two-input `node` that reads `name` (nil if it reads it twice or not).
    static func other(_ node: Node, than name: String) -> String? {
        guard node.inputs.count == 2, node.inputs[0] != node.inputs[1] else { return nil }
        return node.inputs[0] == name ? node.inputs[1] : node.inputs[1] == name ? node.inputs[0] : nil
    }

    /// The nodes with each index in `fused` replaced by its fused node and each in `removed`
    /// dropped.
    func applying(_ fused: [Int: Node], removing removed: Set<Int>) -> [Node] {
        nodes.enumerated().compactMap { fused[$0.offset] ?? (removed.contains($0.offset) ? nil : $0.element) }
    }
}
