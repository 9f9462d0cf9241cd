import VesselTensor

// A graph rewrite run at load (see `GraphBuilder.build` for the order).
extension GraphBuilder {
    /// A Concat along the channels whose inputs include Convs it alone reads (each perhaps with
    /// the Relu that alone reads it) becomes one node in the Concat's place: it allocates the
    /// concatenation and each convolution writes its channels straight into their slice, so no
    /// convolution output is written and then copied. SqueezeNet's fire modules (two expand
    /// convolutions concatenated) and Inception's modules (four branches) are this; DenseNet's
    /// concatenations take one new convolution each. Other inputs are copied in as Concat copies
    /// them. Where the slices are not contiguous (a batch of more than one image, another axis,
    /// other types or shapes Concat refuses), the convolutions run whole and Concat after them,
    /// as the separate nodes did.
    static func fuseConcatenation(_ nodes: inout [Node], _ initializers: [String: Tensor], protected: Set<String>, overridable: Set<String>) {
        let chains = Chains(nodes, initializers, protected: protected, overridable: overridable)
        var replaced: [Int: Node] = [:]
        var removed: Set<Int> = []
        for (concatIndex, node) in nodes.enumerated() where node.opType == "Concat" {
            guard let concat = chains.plain(concatIndex, "Concat"), let axis = concat.node.attributes.int("axis") else { continue }
            var parts: [ConcatenationPart] = []
            var inputs: [String] = []
            var absorbed: [Int] = []
            for name in concat.node.inputs {
                if let (conv, relu) = chains.convolution(making: name), !absorbed.contains(conv.index) {
                    parts.append(.convolution(conv.node, relu: relu != nil, first: inputs.count, cache: ConvolutionCache()))
                    inputs += conv.node.inputs.count == 3 ? conv.node.inputs : conv.node.inputs + [""]
                    absorbed.append(conv.index)
                    if let relu { absorbed.append(relu.index) }
                } else {
                    parts.append(.value(inputs.count))
                    inputs.append(name)
                }
            }
            guard parts.contains(where: { if case .convolution = $0 { true } else { false } }) else { continue }
            var fused = concat.node
            fused.inputs = inputs
            fused.isFused = true
            fused.name += parts.map { if case .convolution(let conv, let relu, _, _) = $0 { "+Conv " + conv.name + (relu ? "+Relu" : "") } else { "" } }
                .joined()
            // Checked per part instead (a Conv's inputs are not the Concat's).
            fused.inputTypes = InputTypes()
            fused.minimumRanks = []
            let concatKernel = concat.kernel, concatNode = concat.node, fusedParts = parts
            fused.kernel = .tensors { c, i in
                try concatenateConvolutions(fusedParts, axis: axis, c, i) { tensors in
                    try concatKernel(KernelContext(node: concatNode) { _, _ in [] }, tensors.map { $0 })
                }
            }
            replaced[concatIndex] = fused
            removed.formUnion(absorbed)
        }
        nodes = chains.applying(replaced, removing: removed)
    }
}

/// One input of a fused Concat: a Conv (its X, W and B from input `first` on; B may be absent),
/// or a value (input `index`).
enum ConcatenationPart: Sendable {
    case convolution(Node, relu: Bool, first: Int, cache: ConvolutionCache)
    case value(Int)
}

/// A fused Concat's kernel (`GraphBuilder.fuseConcatenation`): each Conv's input checks as its own
/// node makes them; then, when every part is float32 and the slices are contiguous (axis 1, one
/// image, the same spatial shape), the convolutions write into their slices and the values are
/// copied in; otherwise the convolutions' outputs go to `concatenate` (Concat's own kernel).
func concatenateConvolutions(
    _ parts: [ConcatenationPart], axis: Int, _ c: KernelContext, _ inputs: [Tensor?], concatenate: ([Tensor]) throws -> [Tensor]
) throws -> [Tensor] {
    /// A part with its inputs taken: a convolution ready to run, or a value.
    enum Input {
        case convolution(KernelContext, x: Tensor, w: Tensor, b: Tensor?, relu: Bool, cache: ConvolutionCache)
        case value(Tensor)
    }
    var taken: [Input] = []
    var shapes: [[Int]] = []
    for part in parts {
        switch part {
        case .convolution(let node, let relu, let first, let cache):
            let x = try c.input(inputs, first), w = try c.input(inputs, first + 1), b = inputs[first + 2]
            let context = KernelContext(node: node, runSubgraph: c.runSubgraph, control: c.control)
            let own: [Tensor?] = node.inputs.count == 3 ? [x, w, b] : [x, w]
            if !node.minimumRanks.isEmpty { try InputRanks.check(node, own) }
            if !node.inputTypes.isEmpty { try node.inputTypes.check(node, own) }
            taken.append(.convolution(context, x: x, w: w, b: b, relu: relu, cache: cache))
            shapes.append(try convolutionShape(x, w, context))
        case .value(let index):
            let value = try c.input(inputs, index)
            taken.append(.value(value))
            shapes.append(value.shape)
        }
    }
    let contiguous =
        shapes.allSatisfy { $0.count == 4 && $0[0] == 1 && $0[2...] == shapes[0][2...] } && (axis == 1 || axis == -3)
        && taken.allSatisfy { input in
            switch input {
            case .convolution(_, let x, let w, let b, _, _): x.dtype == .float32 && w.dtype == .float32 && (b?.dtype ?? .float32) == .float32
            case .value(let value): value.dtype == .float32
            }
        }
    guard contiguous else {
        let tensors = try taken.map { input -> Tensor in
            switch input {
            case .convolution(let context, let x, let w, let b, let relu, let cache): try convolution(x, w, b, context, relu: relu, cache: cache)
            case .value(let value): value
            }
        }
        return try concatenate(tensors)
    }
    let spatial = shapes[0][2] * shapes[0][3]
    let channels = shapes.reduce(0) { $0 + $1[1] }
    try c.checkAllocation(.float32, [1, channels] + shapes[0][2...])
    let out = Tensor(uninitialized: .float32, shape: [1, channels] + shapes[0][2...])
    try out.withUnsafeMutableBufferPointer(as: Float.self) { po in
        var offset = 0
        for (input, shape) in zip(taken, shapes) {
            let slice = po.baseAddress! + offset * spatial
            switch input {
            case .convolution(let context, let x, let w, let b, let relu, let cache):
                _ = try convolution(x, w, b, context, relu: relu, into: slice, destinationStride: channels * spatial, cache: cache)
            case .value(let value):
                // Split across the threads as `concatenate` splits a plain Concat: DenseNet's layers
                // copy every earlier layer's features (up to 2.8 MB at 56×56) beside their Conv.
                value.withUnsafeBufferPointer(as: Float.self) { source in
                    Parallel.chunks(source.count, minimum: 1 << 15) { range in
                        (slice + range.lowerBound).update(from: source.baseAddress! + range.lowerBound, count: range.count)
                    }
                }
            }
            offset += shape[1]
        }
    }
    return [out]
}
