#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import VesselTensor

// A graph rewrite run at load (see `GraphBuilder.build` for the order).
extension GraphBuilder {
    /// Conv followed by inference-mode BatchNormalization, with every parameter constant and
    /// the Conv's output read only by the BatchNormalization, becomes one Conv whose weights and
    /// bias carry the normalization: W′ = W·s, B′ = (B − mean)·s + β with s = γ/√(var + ε),
    /// per output channel. The BatchNormalization pass disappears, and a Relu after it can then
    /// fuse into the Conv.
    static func foldBatchNormIntoConv(
        _ nodes: inout [Node], _ initializers: inout [String: Tensor], protected: Set<String>,
        overridable: Set<String>
    ) {
        let readers = readerCounts(nodes)
        var producer: [String: Int] = [:]
        for (index, node) in nodes.enumerated() where node.opType == "Conv" && node.domain.isEmpty && node.outputs.count == 1 {
            producer[node.outputs[0]] = index
        }
        func constant(_ name: String) -> Tensor? {
            guard !name.isEmpty, !overridable.contains(name), let tensor = initializers[name], tensor.dtype.isFloatingPoint else { return nil }
            return tensor
        }
        var removed: Set<Int> = []
        var replaced: Set<String> = []
        for (index, bn) in nodes.enumerated() where bn.opType == "BatchNormalization" && bn.domain.isEmpty {
            guard bn.inputs.count == 5, bn.outputs.first.map({ !$0.isEmpty }) == true, bn.outputs.dropFirst().allSatisfy(\.isEmpty),
                bn.attributes.int("training_mode", default: 0) == 0, bn.attributes.int("spatial", default: 1) == 1,
                let source = producer[bn.inputs[0]], readers[bn.inputs[0]] == 1, !protected.contains(bn.inputs[0]),
                !removed.contains(source)
            else { continue }
            let conv = nodes[source]
            guard conv.inputs.count >= 2, let weights = constant(conv.inputs[1]), weights.dtype == .float32, weights.rank >= 3,
                let gamma = constant(bn.inputs[1]), let beta = constant(bn.inputs[2]),
                let mean = constant(bn.inputs[3]), let variance = constant(bn.inputs[4])
            else { continue }
            let filters = weights.shape[0]
            let convBias = conv.inputs.count > 2 && !conv.inputs[2].isEmpty ? constant(conv.inputs[2]) : nil
            if conv.inputs.count > 2, !conv.inputs[2].isEmpty, convBias == nil { continue }
            guard [gamma, beta, mean, variance].allSatisfy({ $0.count == filters }), convBias.map({ $0.count == filters }) ?? true else { continue }
            let epsilon = Double(bn.attributes.float("epsilon", default: 1e-5))
            let (g, b, m, v) = (gamma.doubles(), beta.doubles(), mean.doubles(), variance.doubles())
            let scales = (0..<filters).map { g[$0] / (v[$0] + epsilon).squareRoot() }
            let biasIn = convBias?.doubles() ?? [Double](repeating: 0, count: filters)
            let bias = (0..<filters).map { Float((biasIn[$0] - m[$0]) * scales[$0] + b[$0]) }
            replaced.formUnion(conv.inputs.dropFirst().filter { !$0.isEmpty } + bn.inputs.dropFirst())
            nodes[source] = foldedConv(
                conv, weights: weights, scales: scales, bias: bias, folding: "BatchNormalization", outputs: Array(bn.outputs.prefix(1)),
                initializers: &initializers)
            removed.insert(index)
        }
        guard !removed.isEmpty else { return }
        nodes = nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
        dropUnread(replaced, nodes, &initializers, protected: protected, overridable: overridable)
    }

    /// `conv` taking the place of the node it absorbs (`folding`, its op type; `outputs`, its
    /// outputs): its weights scaled per filter by `scales` (as they were without), its bias
    /// `bias`, both new initializers named after the Conv and `folding`.
    private static func foldedConv(
        _ conv: Node, weights: Tensor, scales: [Double]?, bias: [Float], folding: String, outputs: [String], initializers: inout [String: Tensor]
    ) -> Node {
        var stem = "\(conv.name)+\(folding)"
        while initializers[stem + ".W"] != nil || initializers[stem + ".B"] != nil { stem += "_" }
        if let scales {
            let perFilter = weights.count / scales.count
            var scaled = weights.scalars(as: Float.self)
            for f in scales.indices {
                for k in (f * perFilter)..<((f + 1) * perFilter) { scaled[k] = Float(Double(scaled[k]) * scales[f]) }
            }
            initializers[stem + ".W"] = Tensor(scaled, shape: weights.shape)
        } else {
            initializers[stem + ".W"] = weights
        }
        initializers[stem + ".B"] = Tensor(bias, shape: [bias.count])
        var fused = conv
        fused.inputs = [conv.inputs[0], stem + ".W", stem + ".B"]
        fused.outputs = outputs
        fused.name += "+\(folding)"
        return fused
    }

    /// Parameters a fold replaced that nothing reads any more are dropped, not kept twice.
    private static func dropUnread(
        _ replaced: Set<String>, _ nodes: [Node], _ initializers: inout [String: Tensor], protected: Set<String>, overridable: Set<String>
    ) {
        let stillRead = readerCounts(nodes)
        for name in replaced where stillRead[name] == nil && !protected.contains(name) && !overridable.contains(name) {
            initializers[name] = nil
        }
    }

    /// Conv followed by a Mul or an Add of a constant holding one value per output channel (or
    /// one for all), the Conv's output read by nothing else, becomes the Conv alone: the Mul
    /// scales its weights and bias (W′ = W·s, B′ = B·s), the Add joins its bias (B′ = B + a).
    /// onnxruntime folds the same (`ConvMulFusion`, `ConvAddFusion`). Caffe2's DenseNet-121 spells
    /// its first normalization as BatchNormalization, Mul and Add after the Conv; folded, its Relu
    /// and max pool join the Conv too. Run after `foldBatchNormIntoConv`, until nothing folds.
    static func foldChannelConstantsIntoConv(
        _ nodes: inout [Node], _ initializers: inout [String: Tensor], protected: Set<String>, overridable: Set<String>
    ) {
        func constant(_ name: String) -> Tensor? {
            guard !name.isEmpty, !overridable.contains(name), let tensor = initializers[name], tensor.dtype == .float32 else { return nil }
            return tensor
        }
        /// `tensor`'s values per output channel of a Conv whose output has `rank` axes and
        /// `filters` channels, or nil when it is not one value per channel (or one for all).
        func perChannel(_ tensor: Tensor, rank: Int, filters: Int) -> [Double]? {
            guard tensor.rank <= rank else { return nil }
            let aligned = [Int](repeating: 1, count: rank - tensor.rank) + tensor.shape
            guard aligned.enumerated().allSatisfy({ $0.offset == 1 ? $0.element == filters || $0.element == 1 : $0.element == 1 }) else { return nil }
            let values = tensor.doubles()
            return values.count == 1 ? [Double](repeating: values[0], count: filters) : values
        }
        var replaced: Set<String> = []
        var folding = true
        while folding {
            folding = false
            let readers = readerCounts(nodes)
            var producer: [String: Int] = [:]
            for (index, node) in nodes.enumerated() where node.opType == "Conv" && node.domain.isEmpty && node.outputs.count == 1 {
                producer[node.outputs[0]] = index
            }
            search: for (index, op) in nodes.enumerated()
            where ["Mul", "Add"].contains(op.opType) && op.domain.isEmpty && op.inputs.count == 2 && op.outputs.count == 1 {
                for side in 0..<2 {
                    let output = op.inputs[side]
                    guard let source = producer[output], readers[output] == 1, !protected.contains(output) else { continue }
                    let conv = nodes[source]
                    guard conv.inputs.count >= 2, let weights = constant(conv.inputs[1]), weights.rank >= 3, let other = constant(op.inputs[1 - side]),
                        let values = perChannel(other, rank: weights.rank, filters: weights.shape[0])
                    else { continue }
                    let filters = weights.shape[0]
                    let hasBias = conv.inputs.count > 2 && !conv.inputs[2].isEmpty
                    let convBias = hasBias ? constant(conv.inputs[2]) : nil
                    guard !hasBias || convBias?.count == filters else { continue }
                    let biasIn = convBias?.doubles() ?? [Double](repeating: 0, count: filters)
                    let isMul = op.opType == "Mul"
                    let bias = (0..<filters).map { Float(isMul ? biasIn[$0] * values[$0] : biasIn[$0] + values[$0]) }
                    replaced.formUnion(conv.inputs.dropFirst().filter { !$0.isEmpty } + [op.inputs[1 - side]])
                    nodes[source] = foldedConv(
                        conv, weights: weights, scales: isMul ? values : nil, bias: bias, folding: op.opType, outputs: op.outputs,
                        initializers: &initializers)
                    nodes.remove(at: index)
                    folding = true
                    break search
                }
            }
        }
        dropUnread(replaced, nodes, &initializers, protected: protected, overridable: overridable)
    }

    static let nondeterministic: Set<String> = [
        "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial", "Bernoulli", "Dropout"
    ]
}
