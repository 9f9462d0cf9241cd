import VesselTensor

// A graph rewrite run at load (see `GraphBuilder.build` for the order).
extension GraphBuilder {
    /// A residual connection: a Conv whose only reader is an `Add` (or a two-input `Sum`) of
    /// another tensor — and a `Relu` that alone reads the sum — becomes one node, the Conv with
    /// that tensor as a fourth input, in the Add's place. The convolution adds it to each output
    /// after the bias and before the Relu, as the separate nodes round them: on an AVX-512 CPU
    /// while the direct and packed paths store (no pass over the sum, no buffer for it), after
    /// the others in one pass instead of two. When the Add would broadcast, or the values are
    /// not float32, the Conv, Add and Relu kernels run as before. Of two Conv inputs the later
    /// one fuses (the other was computed first and waits either way).
    ///
    /// A residual the fused node reads last (`overwritable`) is overwritten by the sums where the
    /// path adds it as it stores (`convolution`'s `residualInPlace`): one stream of memory read
    /// and written instead of a second buffer, as onnxruntime's fused Sum accumulates into its
    /// output.
    static func fuseResidual(_ nodes: inout [Node], _ initializers: [String: Tensor], protected: Set<String>, overridable: Set<String>) {
        let chains = Chains(nodes, initializers, protected: protected, overridable: overridable)
        var replaced: [Int: Node] = [:]
        var removed: Set<Int> = []
        for (addIndex, add) in nodes.enumerated() where ["Add", "Sum"].contains(add.opType) {
            guard let add = chains.binary(addIndex, add.opType), case .tensors(let addKernel) = add.kernel else { continue }
            let convolutions = add.inputs.compactMap { name -> (index: Int, node: Node, residual: String)? in
                guard chains.absorbable(name), let conv = chains.plain(chains.producer[name], "Conv"), conv.node.inputs.count >= 2,
                    conv.node.inputs.count <= 3, !removed.contains(conv.index), let residual = Chains.other(add, than: name)
                else { return nil }
                return (conv.index, conv.node, residual)
            }
            guard let conv = convolutions.max(by: { $0.index < $1.index }) else { continue }
            let relu = chains.soleReader(of: add.outputs[0], "Relu")
            let convFirst = add.inputs[0] == conv.node.outputs[0]
            var fused = conv.node
            let bias = conv.node.inputs.count > 2 ? conv.node.inputs[2] : ""
            fused.inputs = [conv.node.inputs[0], conv.node.inputs[1], bias, conv.residual]
            fused.outputs = relu?.node.outputs ?? add.outputs
            fused.name += "+\(add.opType)" + (relu == nil ? "" : "+Relu")
            fused.isFused = true
            let cache = ConvolutionCache()
            // Not a residual that is also the Conv's input: the sums would go over the image read.
            let overwritable = !conv.node.inputs.contains(conv.residual) && Self.overwritable(conv.residual, by: addIndex, chains)
            let applyRelu = relu != nil, reluNode = relu?.node, reluKernel = relu?.kernel
            fused.kernel = .tensors { c, i in
                let x = try c.input(i, 0), w = try c.input(i, 1), r = try c.input(i, 3)
                let b = i[2]
                if x.dtype == .float32, r.dtype == .float32, (try? convolutionShape(x, w, c)) == r.shape {
                    return [try convolution(x, w, b, c, relu: applyRelu, residual: r, residualInPlace: overwritable, cache: cache)]
                }
                // The Add broadcasts, or other types: the three kernels as they were.
                let y = try convolution(x, w, b, c, cache: cache)
                var sum = try addKernel(KernelContext(node: add) { _, _ in [] }, convFirst ? [y, r] : [r, y])
                if let reluNode, let reluKernel { sum = try reluKernel(KernelContext(node: reluNode) { _, _ in [] }, sum) }
                return sum
            }
            replaced[addIndex] = fused
            removed.insert(conv.index)
            if let relu { removed.insert(relu.index) }
        }
        nodes = chains.applying(replaced, removing: removed)
    }

    /// Whether the residual `name` may be overwritten by the node that takes the place of the Add
    /// at `index`: no graph output or constant; made by a node that always returns a tensor of its
    /// own (a Conv, Relu or MaxPool — not a graph input, nor a view of another value); read by no
    /// subgraph and by no node after the Add, and before it only by Convs, whose outputs are
    /// their own (a Reshape's output, say, would share its storage and still be read). ResNet's
    /// block input, read by the block's first Conv and then added at its end, qualifies.
    static func overwritable(_ name: String, by index: Int, _ chains: Chains) -> Bool {
        guard !chains.protected.contains(name), chains.initializers[name] == nil, let producer = chains.producer[name],
            ["Conv", "Relu", "MaxPool"].contains(chains.nodes[producer].opType), chains.nodes[producer].domain.isEmpty
        else { return false }
        var reads = 0
        for (reader, node) in chains.nodes.enumerated() {
            let count = node.inputs.filter { $0 == name }.count
            guard count > 0 else { continue }
            reads += count
            if reader > index || (reader < index && !(node.opType == "Conv" && node.domain.isEmpty)) { return false }
        }
        // `readers` counts a subgraph's capture as well.
        return chains.readers[name] == reads
    }
}
