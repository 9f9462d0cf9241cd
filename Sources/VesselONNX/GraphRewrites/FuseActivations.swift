#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import VesselTensor

// A graph rewrite run at load (see `GraphBuilder.build` for the order).
extension GraphBuilder {
    /// Conv (or Gemm, MatMul) followed by a Relu that is its only reader becomes one node: Conv and
    /// Gemm apply the Relu as they store each value, MatMul runs it in place on its fresh output;
    /// either saves a pass over memory and a buffer.
    static func fuseActivations(_ nodes: inout [Node], protected: Set<String>) {
        let readers = readerCounts(nodes)
        var producer: [String: Int] = [:]
        for (index, node) in nodes.enumerated() where ["Conv", "Gemm", "MatMul"].contains(node.opType) && node.domain.isEmpty {
            if let output = node.outputs.first { producer[output] = index }
        }
        var removed: Set<Int> = []
        for (index, node) in nodes.enumerated() where node.opType == "Relu" && node.domain.isEmpty {
            guard let input = node.inputs.first, let source = producer[input], readers[input] == 1, !protected.contains(input),
                nodes[source].outputs.count == 1, case .tensors(let kernel) = nodes[source].kernel
            else { continue }
            var fused = nodes[source]
            if fused.opType == "Conv", fused.inputs.count <= 3, !fused.isFused {
                // Conv applies its bias and the Relu in one pass (a Conv with a residual fused
                // has its own kernel: the Relu then runs on its output below).
                let cache = ConvolutionCache()
                fused.kernel = .tensors { c, i in
                    [try convolution(try c.input(i, 0), try c.input(i, 1), i.count > 2 ? i[2] : nil, c, relu: true, cache: cache)]
                }
                fused.outputs = node.outputs
                fused.name += "+Relu"
                nodes[source] = fused
                removed.insert(index)
                continue
            }
            if fused.opType == "Gemm", !fused.isFused {
                // Gemm adds C and applies the Relu as it stores each value (`gemmKernel`).
                let weights = PackedWeights()
                fused.kernel = .tensors { c, i in try KernelRegistry.gemmKernel(c, i, weights: weights, relu: true) }
                fused.outputs = node.outputs
                fused.name += "+Relu"
                nodes[source] = fused
                removed.insert(index)
                continue
            }
            fused.kernel = .tensors { context, inputs in
                let results = try kernel(context, inputs)
                guard let output = results.first, output.dtype == .float32, !output.storage.isReadOnly else {
                    // Not a fresh float buffer: apply Relu the ordinary way.
                    return [mapUnary(results[0], Float.self, Float.self) { $0 < 0 ? 0 : $0 }]
                }
                output.withUnsafeMutableBufferPointer(as: Float.self) { reluFloat($0.baseAddress!, $0.baseAddress!, count: $0.count) }
                return [output]
            }
            fused.outputs = node.outputs
            fused.name += "+Relu"
            nodes[source] = fused
            removed.insert(index)
        }
        nodes = nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    }
}
