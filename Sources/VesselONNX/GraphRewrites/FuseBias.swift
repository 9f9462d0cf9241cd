import VesselKernels
import VesselTensor

// A graph rewrite run at load (see `GraphBuilder.build` for the order).
extension GraphBuilder {
    /// `MatMul` followed by an `Add` of a constant float32 or float16 bias, one value per column,
    /// that is the product's only reader becomes one node (what exporters write for every linear
    /// layer): the bias is added in place on the product's fresh output, row by row, with no node
    /// or tensor between. The sums round as the Add's do (float16 ones through the Add's own
    /// one-pass kernel, `HalfPrecision.arithmetic`), so results are bit-identical; any other
    /// product (another dtype, a read-only result) runs the Add kernel as before.
    static func fuseBias(_ nodes: inout [Node], _ initializers: [String: Tensor], protected: Set<String>, overridable: Set<String>) {
        let chains = Chains(nodes, initializers, protected: protected, overridable: overridable)
        var replaced: [Int: Node] = [:]
        var removed: Set<Int> = []
        for (index, product) in nodes.enumerated() where product.opType == "MatMul" && product.domain.isEmpty && product.outputs.count == 1 {
            let name = product.outputs[0]
            guard case .tensors(let matmul) = product.kernel, let (addIndex, add, addKernel) = chains.soleReader(of: name, "Add"),
                let biasName = Chains.other(add, than: name), let bias = chains.constant(biasName), bias.dtype == .float32 || bias.dtype == .float16,
                bias.rank == 1
            else { continue }
            let productFirst = add.inputs[0] == name
            let values = bias.dtype == .float32 ? bias.scalars(as: Float.self) : []
            let halfAdd = HalfPrecision.arithmetic(.add)
            var fused = product
            fused.outputs = add.outputs
            fused.name += "+Add"
            fused.kernel = .tensors { c, inputs in
                let y = try matmul(c, inputs)[0]
                guard y.dtype == bias.dtype, y.rank >= 1, y.shape[y.rank - 1] == bias.count, bias.count > 0, !y.storage.isReadOnly else {
                    // Not a fresh product of the bias's type and width: the Add as it was.
                    return try addKernel(KernelContext(node: add) { _, _ in [] }, productFirst ? [y, bias] : [bias, y])
                }
                if y.dtype == .float16 {
                    // Row by row in place, as the Add computes a bias repeated over the rows.
                    let n = bias.count
                    y.withUnsafeMutableBufferPointer(as: Float16.self) { py in
                        bias.withUnsafeBufferPointer(as: Float16.self) { pb in
                            Parallel.chunks(py.count / n, minimum: Swift.max(1, 65_536 / n)) { rows in
                                for row in rows {
                                    let target = py.baseAddress! + row * n
                                    halfAdd(target, false, pb.baseAddress!, false, target, n)
                                }
                            }
                        }
                    }
                    return [y]
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
