import VesselTensor

// A graph rewrite run at load (see `GraphBuilder.build` for the order).
extension GraphBuilder {
    /// What `quantize_dynamic` writes for every weight product — `MatMulInteger` by a constant
    /// 2-D B, `Cast` of the Int32 sums to float, `Mul` by the two scales' product, and often `Add`
    /// of a constant bias — becomes one node when each output is read only by the next: the sums
    /// go to float, are scaled and biased in one pass, with no Int32 or intermediate float tensor
    /// and three fewer nodes. The arithmetic is the same (the sum rounded to float, a rounded
    /// product, a rounded sum), so results are bit-identical. A scale that is neither one value
    /// nor one per column runs the original kernels in turn.
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
            var fused = product
            fused.inputs = product.inputs + Array(repeating: "", count: 4 - product.inputs.count) + [scaleName]
            fused.outputs = last.1.outputs
            fused.name += "+Cast+Mul" + (biasStep == nil ? "" : "+Add")
            let weights = PackedWeights()
            let original = (cast, castKernel, mul, mulKernel, castFirst)
            let biasValues = biasStep?.bias.scalars(as: Float.self)
            let biasFallback = biasStep
            fused.kernel = .tensors { c, inputs in
                let a = try c.input(inputs, 0), b = try c.input(inputs, 1), scale = try c.input(inputs, 4)
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
            removed.formUnion([index, castIndex, mulIndex])
        }
        // The fused node takes the place of the chain's last node: every input is ready there.
        nodes = chains.applying(replaced, removing: removed)
    }
}
