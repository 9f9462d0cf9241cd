import VesselTensor

// A graph rewrite run at load (see `GraphBuilder.build` for the order).
extension GraphBuilder {
    /// What `quantize_dynamic` writes for every weight product — `MatMulInteger` by a constant
    /// 2-D B, `Cast` of the Int32 sums to float, `Mul` by the two scales' product, and often `Add`
    /// of a constant bias — becomes one node when each output is read only by the next: the sums
    /// go to float, are scaled and biased in one pass, with no Int32 or intermediate float tensor
    /// and three fewer nodes (four with the Mul of the activation's and the weight's scales, when
    /// only this chain reads their product). The arithmetic is the same (the sum rounded to
    /// float, a rounded product, a rounded sum), so results are bit-identical. A scale that is
    /// neither one value nor one per column runs the original kernels in turn.
    static func fuseIntegerProducts(_ nodes: inout [Node], _ initializers: [String: Tensor], protected: Set<String>, overridable: Set<String>) {
        let chains = Chains(nodes, initializers, protected: protected, overridable: overridable)
        var replaced: [Int: Node] = [:]
        var removed: Set<Int> = []
        for (index, product) in nodes.enumerated() where product.opType == "MatMulInteger" && product.domain.isEmpty && product.outputs.count == 1 {
            guard product.inputs.count >= 2, product.inputs.count <= 4, let weight = chains.constant(product.inputs[1]), weight.rank == 2,
                let (castIndex, cast, castKernel) = chains.soleReader(of: product.outputs[0], "Cast"),
                ONNXDataType.dtype(Int32(clamping: cast.attributes.int("to", default: 0))) == .float32,
                let (mulIndex, mul, mulKernel) = chains.soleReader(of: cast.outputs[0], "Mul"), let scaleName = Chains.other(mul, than: cast.outputs[0])
            else { continue }
            let castFirst = mul.inputs[0] == cast.outputs[0]
            let n = weight.shape[1]
            var last = (mulIndex, mul)
            // A constant float32 bias, one per column, after the Mul.
            var biasStep: (node: Node, kernel: KernelFunction, bias: Tensor, first: Bool)?
            if let (addIndex, add, addKernel) = chains.soleReader(of: mul.outputs[0], "Add"), let name = Chains.other(add, than: mul.outputs[0]),
                let bias = chains.constant(name), bias.dtype == .float32, bias.shape == [n]
            {
                biasStep = (add, addKernel, bias, add.inputs[1] == mul.outputs[0])
                last = (addIndex, add)
            }
            // The scales' product — the activation's scale from DynamicQuantizeLinear times the
            // weight's — when a Mul makes it for this chain alone: multiplied here instead.
            let scales = chains.absorbable(scaleName) ? chains.plain(chains.producer[scaleName], "Mul") : nil
            let scalesMul = scales.flatMap { $0.node.inputs.count == 2 ? $0 : nil }
            var fused = product
            fused.inputs = product.inputs + Array(repeating: "", count: 4 - product.inputs.count) + (scalesMul?.node.inputs ?? [scaleName])
            fused.outputs = last.1.outputs
            fused.name = (scalesMul.map { $0.node.name + "+" } ?? "") + product.name + "+Cast+Mul" + (biasStep == nil ? "" : "+Add")
            let weights = PackedWeights()
            let original = (cast, castKernel, mul, mulKernel, castFirst)
            let biasValues = biasStep?.bias.scalars(as: Float.self)
            let biasFallback = biasStep
            fused.kernel = .tensors { c, inputs in
                let a = try c.input(inputs, 0), b = try c.input(inputs, 1)
                let scale = try scalesMul.map { mul in try Self.product(try c.input(inputs, 4), try c.input(inputs, 5), mul, c) } ?? c.input(inputs, 4)
                let columns = b.shape.last ?? 1, outputRank = try MatMulShape(a.shape, b.shape, c).outShape.count
                guard scale.dtype == .float32, scale.rank <= outputRank, scale.count == 1 || (scale.rank == 1 && scale.count == columns),
                    biasValues == nil || columns == n
                else {
                    // Scales this pass does not cover: the original nodes, one after another.
                    func context(_ node: Node) -> KernelContext { KernelContext(node: node) { _, _ in [] } }
                    let sums = try IntegerProducts.matmul(a, b, aZero: inputs[2], bZero: inputs[3], c, weights: weights)
                    let floats = try original.1(context(original.0), [Tensor(sums.sums, shape: sums.shape)])[0]
                    let scaled = try original.3(context(original.2), original.4 ? [floats, scale] : [scale, floats])[0]
                    guard let step = biasFallback else { return [scaled] }
                    return try step.kernel(context(step.node), step.first ? [step.bias, scaled] : [scaled, step.bias])
                }
                return [
                    try IntegerProducts.matmulToFloat(
                        a, b, aZero: inputs[2], bZero: inputs[3], factors: scale.scalars(as: Float.self), bias: biasValues, c, weights: weights)
                ]
            }
            replaced[last.0] = fused
            removed.formUnion([index, castIndex, mulIndex] + (scalesMul.map { [$0.index] } ?? []))
        }
        // The fused node takes the place of the chain's last node: every input is ready there.
        nodes = chains.applying(replaced, removing: removed)
    }

    /// `x · y` as the scales' Mul (`mul`) computes it: one float32 value times each of the other's
    /// (the same rounded products, in either order), else through the Mul's own kernel.
    static func product(_ x: Tensor, _ y: Tensor, _ mul: (index: Int, node: Node, kernel: KernelFunction), _ c: KernelContext) throws -> Tensor {
        if x.dtype == .float32, y.dtype == .float32, x.count == 1 || y.count == 1 {
            let (one, other) = x.count == 1 && x.rank <= y.rank ? (x, y) : (y, x)
            if one.count == 1, one.rank <= other.rank {
                let factor = one.scalars(as: Float.self)[0]
                return Tensor(other.scalars(as: Float.self).map { $0 * factor }, shape: other.shape)
            }
        }
        return try mul.kernel(KernelContext(node: mul.node, runSubgraph: c.runSubgraph, control: c.control), [x, y])[0]
    }
}
