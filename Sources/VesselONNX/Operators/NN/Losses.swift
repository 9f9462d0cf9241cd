#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import VesselTensor

/// Negative log-likelihood over log-probabilities `[N, C, d1…]` with targets `[N, d1…]`.
/// Returns the reduced (or per-element) loss tensor.
func negativeLogLikelihood(
    _ logProbabilities: [Double], shape: [Int], dtype: DType, target: Tensor, weight: Tensor?,
    reduction: String, ignoreIndex: Int?, _ c: KernelContext
) throws -> Tensor {
    guard shape.count >= 2 else { throw c.invalid("input must be [N, C, …], got \(shape)") }
    let (batch, classes) = (shape[0], shape[1])
    let inner = shape[2...].reduce(1, *)
    guard target.shape == [batch] + Array(shape[2...]) else { throw c.invalid("target shape \(target.shape) does not match input \(shape)") }
    let targets = target.integers()
    let weights = weight?.doubles()
    if let weights, weights.count != classes { throw c.invalid("weight has \(weights.count) values for \(classes) classes") }
    var losses = [Double](repeating: 0, count: batch * inner)
    var weightSum = 0.0
    for n in 0..<batch {
        for k in 0..<inner {
            let position = n * inner + k
            let label = targets[position]
            if let ignoreIndex, label == ignoreIndex { continue }
            guard label >= 0, label < classes else { throw c.invalid("target \(label) is not a class in 0..<\(classes)") }
            let w = weights?[label] ?? 1
            losses[position] = -logProbabilities[(n * classes + label) * inner + k] * w
            weightSum += w
        }
    }
    switch reduction {
    case "none": return Cast.fromDoubles(losses, dtype: dtype, shape: target.shape)
    case "sum": return Cast.fromDoubles([losses.reduce(0, +)], dtype: dtype, shape: [])
    case "mean": return Cast.fromDoubles([weightSum == 0 ? 0 : losses.reduce(0, +) / weightSum], dtype: dtype, shape: [])
    default: throw c.invalid("unknown reduction `\(reduction)`")
    }
}

extension KernelRegistry {
    static func registerLosses(_ r: inout KernelRegistry) {
        r.register("NegativeLogLikelihoodLoss", since: 12, negativeLogLikelihoodLossKernel)
        r.register("SoftmaxCrossEntropyLoss", since: 12, softmaxCrossEntropyLossKernel)
    }

    static func negativeLogLikelihoodLossKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let input = try c.input(i, 0), target = try c.input(i, 1)
        return [
            try negativeLogLikelihood(
                input.doubles(), shape: input.shape, dtype: input.dtype, target: target,
                weight: i.count > 2 ? i[2] : nil, reduction: c.attributes.string("reduction", default: "mean"),
                ignoreIndex: c.attributes.int("ignore_index"), c)
        ]
    }

    static func softmaxCrossEntropyLossKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let scores = try c.input(i, 0), target = try c.input(i, 1)
        guard scores.rank >= 2 else { throw c.invalid("scores must be [N, C, …]") }
        let (batch, classes) = (scores.shape[0], scores.shape[1])
        let inner = scores.shape[2...].reduce(1, *)
        // log_softmax over the class axis.
        var logProbabilities = scores.doubles()
        for n in 0..<batch {
            for k in 0..<inner {
                let offsets = (0..<classes).map { (n * classes + $0) * inner + k }
                let peak = offsets.map { logProbabilities[$0] }.max() ?? 0
                let log = Libm.log(offsets.reduce(0) { $0 + Libm.exp(logProbabilities[$1] - peak) })
                for offset in offsets { logProbabilities[offset] = logProbabilities[offset] - peak - log }
            }
        }
        let loss = try negativeLogLikelihood(
            logProbabilities, shape: scores.shape, dtype: scores.dtype, target: target,
            weight: i.count > 2 ? i[2] : nil, reduction: c.attributes.string("reduction", default: "mean"),
            ignoreIndex: c.attributes.int("ignore_index"), c)
        return c.node.outputs.count > 1 ? [loss, Cast.fromDoubles(logProbabilities, dtype: scores.dtype, shape: scores.shape)] : [loss]
    }
}
