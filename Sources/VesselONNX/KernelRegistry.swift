public import VesselTensor

/// Runs one node: its inputs (nil for omitted optional inputs) to its outputs.
public typealias KernelFunction = @Sendable (KernelContext, [Tensor?]) throws -> [Tensor]

/// What a kernel sees of its node and of the executor.
public struct KernelContext: Sendable {
    public let node: Node
    public var attributes: Attributes { node.attributes }
    public var opset: Int { node.opset }
    /// Runs a subgraph (If/Loop bodies) with the values of the enclosing scope visible.
    let runSubgraph: @Sendable (Graph, [String: ONNXValue]) throws -> [ONNXValue]
    /// The run's deadline and cancellation, if any: Loop and Scan check it every iteration.
    public var control: RunControl? = nil

    /// Throws once the run was cancelled or passed its deadline.
    public func checkStop() throws {
        try control?.check()
    }

    public func invalid(_ reason: String) -> ONNXError {
        .invalidNode(node: node.name, opType: node.opType, reason: reason)
    }

    /// Input `index`, which the operator requires.
    public func input(_ inputs: [Tensor?], _ index: Int) throws -> Tensor {
        guard index < inputs.count, let tensor = inputs[index] else { throw invalid("missing required input \(index)") }
        return tensor
    }

    /// Fails (instead of trapping in the allocator) when a data-dependent shape is absurd.
    public func checkAllocation(_ dtype: DType, _ shape: [Int]) throws {
        if let problem = Tensor.allocationProblem(dtype, shape) { throw invalid(problem) }
    }

    public func subgraph(_ graph: Graph, _ feeds: [String: Tensor]) throws -> [Tensor] {
        try runSubgraph(graph, feeds.mapValues { .tensor($0) }).map { value in
            guard let tensor = value.tensor else { throw invalid("its subgraph gave a \(value.typeDescription) where a tensor was expected") }
            return tensor
        }
    }

    /// Runs a subgraph whose inputs or outputs may be sequences.
    public func subgraph(_ graph: Graph, values feeds: [String: ONNXValue]) throws -> [ONNXValue] {
        try runSubgraph(graph, feeds)
    }
}

/// Maps (domain, op type, opset) to a kernel: a kernel registered `since` version v serves every
/// opset from v until the next registration of the same operator.
public struct KernelRegistry: Sendable {
    /// Builds a node's kernel at load time (prepared kernels read and check attributes once).
    typealias Maker = @Sendable (Node) throws -> NodeKernel

    struct Entry: Sendable {
        var since: Int
        var make: Maker
    }

    private var entries: [String: [Entry]] = [:]

    static func key(_ domain: String, _ opType: String) -> String {
        "\(domain == "ai.onnx" ? "" : domain)|\(opType)"
    }

    private mutating func add(_ opType: String, domain: String, since: Int, _ make: @escaping Maker) {
        entries[Self.key(domain, opType), default: []].append(Entry(since: since, make: make))
        entries[Self.key(domain, opType)]!.sort { $0.since < $1.since }
    }

    public mutating func register(_ opType: String, domain: String = "", since: Int = 1, _ kernel: @escaping KernelFunction) {
        add(opType, domain: domain, since: since) { _ in .tensors(kernel) }
    }

    /// Registers an operator whose inputs or outputs may be sequences or maps.
    public mutating func registerValues(_ opType: String, domain: String = "", since: Int = 1, _ kernel: @escaping ValueKernelFunction) {
        add(opType, domain: domain, since: since) { _ in .values(kernel) }
    }

    /// Registers an operator that turns its attributes into a ready structure once per node at
    /// load time (a tree ensemble's node table), so a malformed model fails to load and runs
    /// pay nothing for it.
    public mutating func registerPrepared(
        _ opType: String, domain: String = "", since: Int = 1,
        _ prepare: @escaping @Sendable (Node) throws -> KernelFunction
    ) {
        add(opType, domain: domain, since: since) { node in .tensors(try prepare(node)) }
    }

    /// Like `registerPrepared`, for operators taking or giving sequences or maps.
    public mutating func registerPreparedValues(
        _ opType: String, domain: String = "", since: Int = 1,
        _ prepare: @escaping @Sendable (Node) throws -> ValueKernelFunction
    ) {
        add(opType, domain: domain, since: since) { node in .values(try prepare(node)) }
    }

    func maker(_ opType: String, domain: String, opset: Int) -> Maker? {
        guard let make = entries[Self.key(domain, opType)]?.last(where: { $0.since <= opset })?.make else { return nil }
        // Half-precision arithmetic runs in float32 (`HalfPrecision`).
        guard domain.isEmpty || domain == "ai.onnx", let narrowed = HalfPrecision.computedInFloat32[opType] else { return make }
        return { node in
            let made = try make(node)
            guard case .tensors(let kernel) = made else { return made }
            return .tensors(HalfPrecision.wrap(kernel, node: node, narrowed: narrowed))
        }
    }

    /// Every operator with at least one kernel, as `domain|op`.
    public var operators: [String] { entries.keys.sorted() }

    /// The runtime's built-in operators, one family (a folder under `Operators/`) per line.
    public static let standard: KernelRegistry = {
        var registry = KernelRegistry()
        registerActivations(&registry)  // Activation/
        registerControlFlow(&registry)  // ControlFlow/
        registerElementwise(&registry)  // Math/
        registerBitwise(&registry)
        registerLinearAlgebra(&registry)
        registerEinsum(&registry)
        registerConvolution(&registry)  // NN/
        registerPooling(&registry)
        registerNormalization(&registry)
        registerAttention(&registry)
        registerLosses(&registry)
        registerQuantization(&registry)  // Quantization/
        registerIntegerProducts(&registry)
        registerReductions(&registry)  // Reduction/
        registerRecurrent(&registry)  // RNN/
        registerSequences(&registry)  // Sequence/
        registerShape(&registry)  // Tensor/
        registerGenerators(&registry)
        registerIndexing(&registry)
        registerResize(&registry)
        registerStrings(&registry)  // Text/
        registerMLPreprocessing(&registry)  // ML/ (ai.onnx.ml)
        registerMLLinear(&registry)
        registerMLTrees(&registry)
        registerMLMaps(&registry)
        return registry
    }()
}
