import VesselTensor

// A graph rewrite run at load (see `GraphBuilder.build` for the order).
extension GraphBuilder {
    /// A Conv — or a Conv and the Relu that alone reads it — whose only reader is a MaxPool with
    /// one output becomes one node in the MaxPool's place: the convolution computes its output
    /// in bands of rows and pools each band while it is in cache (`ConvolutionPool`), where its
    /// path allows; otherwise it runs whole and the pool after it, as the separate nodes did.
    /// Every network's stem is this (a strided 3×3 or 7×7 convolution, its Relu, a 3×3 stride-2
    /// max pool); runs after BatchNormalization has been folded into the Conv.
    static func fuseConvolutionPool(_ nodes: inout [Node], _ initializers: [String: Tensor], protected: Set<String>, overridable: Set<String>) {
        let chains = Chains(nodes, initializers, protected: protected, overridable: overridable)
        var replaced: [Int: Node] = [:]
        var removed: Set<Int> = []
        for (poolIndex, pool) in nodes.enumerated() where pool.opType == "MaxPool" {
            guard let pool = chains.plain(poolIndex, "MaxPool"), pool.node.inputs.count == 1,
                let (conv, relu) = chains.convolution(making: pool.node.inputs[0])
            else { continue }
            var fused = conv.node
            fused.outputs = pool.node.outputs
            fused.name += (relu == nil ? "" : "+Relu") + "+MaxPool"
            fused.isFused = true
            let cache = ConvolutionCache()
            let applyRelu = relu != nil, poolNode = pool.node
            fused.kernel = .tensors { c, i in
                let poolContext = KernelContext(node: poolNode) { _, _ in [] }
                return [
                    try convolution(
                        try c.input(i, 0), try c.input(i, 1), i.count > 2 ? i[2] : nil, c, relu: applyRelu, maxPool: poolContext, cache: cache)
                ]
            }
            replaced[poolIndex] = fused
            removed.insert(conv.index)
            if let relu { removed.insert(relu.index) }
        }
        nodes = chains.applying(replaced, removing: removed)
    }
}
