#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import VesselTensor

// A graph rewrite run at load (see `GraphBuilder.build` for the order).
extension GraphBuilder {
    /// `Mul` by a per-channel constant, then `Add` of a per-channel constant (a BatchNormalization
    /// as exporters often spell it, before a Conv it cannot fold into), and a `Relu` after them
    /// when it is the only reader, become one pass over memory instead of three. The arithmetic is
    /// the same (a rounded product, then a rounded sum), so results are bit-identical. Any other
    /// input (another dtype, rank, or channel count) runs the original kernels in turn.
    static func fuseChannelAffine(_ nodes: inout [Node], _ initializers: [String: Tensor], protected: Set<String>, overridable: Set<String>) {
        let chains = Chains(nodes, initializers, protected: protected, overridable: overridable)
        /// A float32 constant shaped [C, 1, 1] or [1, C, 1, 1]: its channel count.
        func channelConstant(_ name: String) -> (Tensor, Int)? {
            guard let tensor = chains.constant(name), tensor.dtype == .float32,
                (3...4).contains(tensor.rank), tensor.shape.enumerated().allSatisfy({ $0.offset == tensor.rank - 3 || $0.element == 1 })
            else { return nil }
            return (tensor, tensor.shape[tensor.rank - 3])
        }
        /// An inference-mode BatchNormalization with constant parameters for `channels`, whose
        /// output only `name`'s reader reads: its index, parameters, and per-channel factor and
        /// offset exactly as its kernel computes them.
        func normalization(producing name: String, channels: Int) -> (Int, [Tensor], [Float], [Float])? {
            guard chains.absorbable(name), let index = chains.producer[name] else { return nil }
            let bn = nodes[index]
            guard bn.opType == "BatchNormalization", bn.domain.isEmpty, bn.inputs.count == 5, bn.outputs.first == name,
                bn.outputs.dropFirst().allSatisfy(\.isEmpty), bn.attributes.int("training_mode", default: 0) == 0,
                bn.attributes.int("spatial", default: 1) == 1, case .tensors = bn.kernel
            else { return nil }
            let parameters = bn.inputs.dropFirst().compactMap { name -> Tensor? in
                guard !overridable.contains(name), let tensor = initializers[name], tensor.dtype.isFloatingPoint, tensor.count == channels else { return nil }
                return tensor
            }
            guard parameters.count == 4 else { return nil }
            let (scale, bias, mean, variance) = (parameters[0].doubles(), parameters[1].doubles(), parameters[2].doubles(), parameters[3].doubles())
            let epsilon = Double(bn.attributes.float("epsilon", default: 1e-5))
            let factors = (0..<channels).map { scale[$0] / (variance[$0] + epsilon).squareRoot() }
            return (index, parameters, factors.map { Float($0) }, (0..<channels).map { Float(bias[$0] - mean[$0] * factors[$0]) })
        }
        var removed: Set<Int> = []
        for (index, mul) in nodes.enumerated() where mul.opType == "Mul" && mul.domain.isEmpty && mul.inputs.count == 2 && mul.outputs.count == 1 {
            guard !removed.contains(index), case .tensors(let mulKernel) = mul.kernel else { continue }
            let scaleFirst = channelConstant(mul.inputs[0]) != nil && channelConstant(mul.inputs[1]) == nil
            let (dataName, scaleName) = scaleFirst ? (mul.inputs[1], mul.inputs[0]) : (mul.inputs[0], mul.inputs[1])
            guard let (scale, channels) = channelConstant(scaleName), initializers[dataName] == nil,
                let (addIndex, add, addKernel) = chains.soleReader(of: mul.outputs[0], "Add"), let shiftName = Chains.other(add, than: mul.outputs[0]),
                let (shift, shiftChannels) = channelConstant(shiftName), shiftChannels == channels
            else { continue }
            var outputs = add.outputs
            var reluKernel: KernelFunction?
            var reluNode: Node?
            if let (reluIndex, relu, kernel) = chains.soleReader(of: add.outputs[0], "Relu") {
                reluKernel = kernel
                reluNode = relu
                outputs = relu.outputs
                removed.insert(reluIndex)
            }
            removed.insert(addIndex)
            let scales = scale.scalars(as: Float.self), shifts = shift.scalars(as: Float.self)
            let withRelu = reluKernel != nil
            let original = (mul, add, reluNode)
            let reluStep = reluKernel
            var fused = mul
            fused.inputs = [dataName]
            // A BatchNormalization before the Mul (DenseNet's, after each Concat) joins the pass:
            // its multiply-add per element comes first, rounded as its kernel rounds it.
            var normalizer: (node: Node, kernel: KernelFunction, parameters: [Tensor], factors: [Float], offsets: [Float])?
            if let (bnIndex, parameters, factors, offsets) = normalization(producing: dataName, channels: channels),
                case .tensors(let bnKernel) = nodes[bnIndex].kernel
            {
                normalizer = (nodes[bnIndex], bnKernel, parameters, factors, offsets)
                fused.inputs = [nodes[bnIndex].inputs[0]]
                fused.name = nodes[bnIndex].name + "+" + fused.name
                removed.insert(bnIndex)
            }
            fused.outputs = outputs
            fused.name += "+Add" + (withRelu ? "+Relu" : "")
            let normalizerStep = normalizer
            // Plain arrays for the per-plane loop: binding the optional tuple there would copy
            // and retain a Node per plane, which costs more than a 7×7 plane's arithmetic.
            let normalizes = normalizer != nil
            let (bnFactors, bnOffsets) = (normalizer?.factors ?? [], normalizer?.offsets ?? [])
            fused.kernel = .tensors { _, inputs in
                guard var x = inputs.first ?? nil else { throw ONNXError.invalidModel("node \(original.0.name): missing input") }
                guard x.dtype == .float32, x.rank == 4, x.shape[1] == channels, scales.count == channels else {
                    // Shapes this pass does not cover: the original nodes, one after another.
                    func context(_ node: Node) -> KernelContext { KernelContext(node: node) { _, _ in [] } }
                    if let normalizerStep {
                        x = try normalizerStep.kernel(context(normalizerStep.node), [x] + normalizerStep.parameters)[0]
                    }
                    let product = try mulKernel(context(original.0), scaleFirst ? [scale, x] : [x, scale])[0]
                    let sum = try addKernel(context(original.1), original.1.inputs[0] == original.0.outputs[0] ? [product, shift] : [shift, product])[0]
                    guard let reluStep, let relu = original.2 else { return [sum] }
                    return try reluStep(context(relu), [sum])
                }
                let batch = x.shape[0], plane = x.shape.dropFirst(2).reduce(1, *)
                let y = Tensor(uninitialized: .float32, shape: x.shape)
                x.withUnsafeBufferPointer(as: Float.self) { source in
                    y.withUnsafeMutableBufferPointer(as: Float.self) { destination in
                        // Split from 16K values a part (DenseNet's BatchNormalization and Relu
                        // over 256–1,024 channels of 14×14 and 7×7 ran on one thread from 64K:
                        // the model at two threads 32.2 → 31.8 ms best p50, five rounds).
                        Parallel.chunks(batch * channels, minimum: Swift.max(1, 16_384 / Swift.max(plane, 1))) { range in
                            for item in range {
                                let c = item % channels
                                WindowKernels.channelAffine(
                                    source.baseAddress! + item * plane, destination.baseAddress! + item * plane, count: plane,
                                    normalize: normalizes ? (bnFactors[c], bnOffsets[c]) : nil, scale: scales[c], shift: shifts[c], relu: withRelu)
                            }
                        }
                    }
                }
                return [y]
            }
            nodes[index] = fused
        }
        nodes = nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    }
}
