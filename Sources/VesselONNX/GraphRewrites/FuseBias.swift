import VesselTensor

// A graph rewrite run at load (see `GraphBuilder.build` for the order).
extension GraphBuilder {
    /// `MatMul` followed by an `Add` of a constant float32 bias, one value per column, that is
    /// the product's only reader becomes one node (what exporters write for every linear layer):
    /// the bias is added in place on the product's fresh output, row by row, with no node or
    /// tensor between. The sums round as the Add's do, so results are bit-identical; any other
    /// product (another dtype, a read-only result) runs the Add kernel as before.
    static func fuseBias(_ nodes: inout [Node], _ initializers: [String: Tensor], protected: Set<String>, overridable: Set<String>) {
        let chains = Chains(nodes, initializers, protected: protected, overridable: overridable)
        var replaced: [Int: Node] = [:]
        var removed: Set<Int> = []
        for (index, product) in nodes.enumerated() where product.opType == "MatMul" && product.domain.isEmpty && product.outputs.count == 1 {
            let name = product.outputs[0]
            guard case .tensors(let matmul) = product.kernel, let (addIndex, add, addKernel) = chains.soleReader(of: name, "Add"),
                let biasName = Chains.other(add, than: name), let bias = chains.constant(biasName), bias.dtype == .float32, bias.rank == 1
            else { continue }
            let productFirst = add.inputs[0] == name
            let values = bias.scalars(as: Float.self)
            var fused = product
            fused.outputs = add.outputs
            fused.name += "+Add"
            fused.kernel = .tensors { c, inputs in
                let y = try matmul(c, inputs)[0]
                guard y.dtype == .float32, y.rank >= 1, y.shape[y.rank - 1] == values.count, !y.storage.isReadOnly else {
                    // Not a fresh float32 product of that width: the Add as it was.
                    return try addKernel(KernelContext(node: add) { _, _ in [] }, productFirst ? [y, bias] : [bias, y])
                }
                let n = values.count
                y.withUnsafeMutableBufferPointer(as: Float.self) { py in
                    values.withUnsafeBufferPointer { pb in
                        let rows = n == 0 ? 0 : py.count / n
                        Parallel.chunks(rows, minimum: Swift.max(1, 16_384 / Swift.max(n, 1))) { range in
                            for row in range {
                                let target = py.baseAddress! + row * n
                                for j in 0..<n { target[j] += pb[j] }
                            }
                        }
                    }
                }
                return [y]
            }
            replaced[index] = fused
            removed.insert(addIndex)
        }
        nodes = chains.applying(replaced, removing: removed)
    }
}
