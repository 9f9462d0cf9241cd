import VesselTensor

// A graph rewrite run at load (see `GraphBuilder.build` for the order).
extension GraphBuilder {
    /// A MatMul whose operands come out of Transposes read by it alone, or whose product a
    /// Transpose alone reads, becomes one node that reads the Transposes' inputs in place and
    /// writes the transposed product (`transposedProduct`): the heads of an attention layer, where
    /// exporters transpose Q, K and V into heads ([batch, sequence, heads, size] to [batch,
    /// heads, sequence, size], K to [batch, heads, size, sequence]) and the context back. Four
    /// copies a layer fewer, with the same sums (float16 and bfloat16 widened and rounded back as
    /// the MatMul does). Where the strides do not fit the fused node runs the original kernels in
    /// turn.
    static func fuseTransposes(_ nodes: inout [Node], _ initializers: [String: Tensor], protected: Set<String>, overridable: Set<String>) {
        let chains = Chains(nodes, initializers, protected: protected, overridable: overridable)
        var replaced: [Int: Node] = [:]
        var removed: Set<Int> = []
        /// The Transpose `found`, with its `perm`, when it has one and no other product has taken it.
        func transpose(_ found: (index: Int, node: Node, kernel: KernelFunction)?) -> (index: Int, node: Node, kernel: KernelFunction, perm: [Int])? {
            guard let found, found.node.inputs.count == 1, let perm = found.node.attributes.ints("perm"), !removed.contains(found.index) else {
                return nil
            }
            return (found.index, found.node, found.kernel, perm)
        }
        for (index, product) in nodes.enumerated() where chains.plain(index, "MatMul") != nil && product.inputs.count == 2 {
            guard case .tensors(let multiply) = product.kernel, product.inputs[0] != product.inputs[1] else { continue }
            let operands = product.inputs.map { name in chains.absorbable(name) ? transpose(chains.plain(chains.producer[name], "Transpose")) : nil }
            let result = transpose(chains.soleReader(of: product.outputs[0], "Transpose"))
            guard operands.contains(where: { $0 != nil }) || result != nil else { continue }
            var fused = product
            fused.inputs = zip(product.inputs, operands).map { name, operand in operand?.node.inputs[0] ?? name }
            fused.outputs = result?.node.outputs ?? product.outputs
            fused.name = operands.compactMap { $0.map { $0.node.name + "+" } }.joined() + product.name + (result.map { "+" + $0.node.name } ?? "")
            fused.isFused = true
            let perms = operands.map { $0?.perm }, outPerm = result?.perm
            fused.kernel = .tensors { c, inputs in
                let a = try c.input(inputs, 0), b = try c.input(inputs, 1)
                if let y = transposedProduct(a, perms[0], b, perms[1], outPerm: outPerm) { return [y] }
                // Half precision as the MatMul computes it (`HalfPrecision.wrap`): widened, the
                // float32 product, rounded back once; transposing commutes with both.
                if a.dtype == b.dtype, a.dtype == .float16 || a.dtype == .bfloat16,
                    let y = transposedProduct(
                        Cast.convert(a, to: .float32), perms[0], Cast.convert(b, to: .float32), perms[1], outPerm: outPerm)
                {
                    return [Cast.convert(y, to: a.dtype)]
                }
                // The nodes as they were, one after another.
                func run(_ node: Node, _ kernel: KernelFunction, _ inputs: [Tensor]) throws -> Tensor {
                    try kernel(KernelContext(node: node, runSubgraph: c.runSubgraph, control: c.control), inputs)[0]
                }
                let x = try operands[0].map { try run($0.node, $0.kernel, [a]) } ?? a
                let w = try operands[1].map { try run($0.node, $0.kernel, [b]) } ?? b
                let y = try run(product, multiply, [x, w])
                return [try result.map { try run($0.node, $0.kernel, [y]) } ?? y]
            }
            replaced[index] = fused
            removed.formUnion(operands.compactMap { $0?.index } + (result.map { [$0.index] } ?? []))
        }
        nodes = chains.applying(replaced, removing: removed)
    }
}
