#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import VesselTensor

/// Linear models and support vector machines of `ai.onnx.ml`. Scores, label choice and the
/// binary special cases follow onnxruntime's kernels, so a converted scikit-learn model gives
/// the same labels and probabilities here as there.
extension KernelRegistry {
    static func registerMLLinear(_ r: inout KernelRegistry) {
        r.registerPrepared("LinearClassifier", domain: mlDomain, linearClassifierKernel)

        r.registerPrepared("LinearRegressor", domain: mlDomain, linearRegressorKernel)

        r.registerPrepared("SVMClassifier", domain: mlDomain, svmClassifierKernel)
        r.registerPrepared("SVMRegressor", domain: mlDomain, svmRegressorKernel)
    }

    static func linearClassifierKernel(_ node: Node) throws -> KernelFunction {
        let coefficients = try node.attributes.required("coefficients", node.attributes.floats)
        let intercepts = node.attributes.floats("intercepts") ?? []
        let labels = try ClassLabels(node: node)
        let transform = try PostTransform(name: node.attributes.string("post_transform", default: "NONE"), node: node)
        return { c, i in
            let x = try c.input(i, 0)
            let (rows, features) = try x.mlRows(c)
            let targets = intercepts.isEmpty ? (features == 0 ? 0 : coefficients.count / features) : intercepts.count
            guard targets > 0, targets * features == coefficients.count else {
                throw c.invalid("\(coefficients.count) coefficients do not fit \(targets) classes × \(features) features")
            }
            var scores = try x.withMLFloats(c) { linearScores($0, rows: rows, features: features, weights: coefficients, targets: targets, bias: intercepts) }
            var chosen = [Int](repeating: 0, count: rows)
            let binaryLabels = targets == 1
            for row in 0..<rows {
                if binaryLabels {
                    chosen[row] = scores[row] > 0 ? 1 : 0
                } else {
                    var best = 0
                    for k in 1..<targets where scores[row * targets + k] > scores[row * targets + best] { best = k }
                    chosen[row] = best
                }
            }
            // One score column with two labels: the second class's column is added.
            let expand = targets == 1 && labels.count == 2
            let columns = expand ? 2 : targets
            var output = [Float](repeating: 0, count: rows * columns)
            scores.withUnsafeMutableBufferPointer { scores in
                output.withUnsafeMutableBufferPointer { output in
                    for row in 0..<rows {
                        let slice = UnsafeMutableBufferPointer(rebasing: scores[row * targets..<(row + 1) * targets])
                        transform.write(slice, second: expand ? .complement : nil, to: output.baseAddress! + row * columns)
                    }
                }
            }
            return [labels.tensor(chosen, shape: [rows]), Tensor(output, shape: [rows, columns])]
        }
    }

    static func linearRegressorKernel(_ node: Node) throws -> KernelFunction {
        let coefficients = node.attributes.floats("coefficients") ?? []
        let intercepts = node.attributes.floats("intercepts") ?? []
        let targets = node.attributes.int("targets", default: 1)
        guard targets >= 1 else { throw node.invalid("targets must be at least 1") }
        guard intercepts.isEmpty || intercepts.count == targets else {
            throw node.invalid("has \(intercepts.count) intercepts for \(targets) targets")
        }
        let transform = try PostTransform(name: node.attributes.string("post_transform", default: "NONE"), node: node)
        return { c, i in
            let x = try c.input(i, 0)
            let (rows, features) = try x.mlRows(c)
            guard targets * features == coefficients.count else {
                throw c.invalid("\(coefficients.count) coefficients do not fit \(targets) targets × \(features) features")
            }
            var scores = try x.withMLFloats(c) { linearScores($0, rows: rows, features: features, weights: coefficients, targets: targets, bias: intercepts) }
            var output = [Float](repeating: 0, count: rows * targets)
            scores.withUnsafeMutableBufferPointer { scores in
                output.withUnsafeMutableBufferPointer { output in
                    for row in 0..<rows {
                        let slice = UnsafeMutableBufferPointer(rebasing: scores[row * targets..<(row + 1) * targets])
                        transform.write(slice, second: nil, to: output.baseAddress! + row * targets)
                    }
                }
            }
            return [Tensor(output, shape: [rows, targets])]
        }
    }

    static func svmClassifierKernel(_ node: Node) throws -> KernelFunction { try SVMClassifier(node: node).kernel }

    static func svmRegressorKernel(_ node: Node) throws -> KernelFunction { try SVMRegressor(node: node).kernel }
}

/// rows × targets scores: x · weightsᵀ + bias (weights are targets × features), in float as
/// onnxruntime computes them.
func linearScores(_ x: UnsafeBufferPointer<Float>, rows: Int, features: Int, weights: [Float], targets: Int, bias: [Float]) -> [Float] {
    var scores = [Float](repeating: 0, count: rows * targets)
    if !bias.isEmpty {
        for row in 0..<rows { for t in 0..<targets { scores[row * targets + t] = bias[t] } }
    }
    if rows * targets * features <= 16_384 {
        // Small products (one row of a pipeline): a BLAS call costs more than the arithmetic.
        // Fused multiply-adds in feature order, as optimized GEMM kernels accumulate, so the
        // sums round as onnxruntime's do even where terms cancel.
        for row in 0..<rows {
            for t in 0..<targets {
                var sum: Float = 0
                for f in 0..<features { sum = sum.addingProduct(x[row * features + f], weights[t * features + f]) }
                scores[row * targets + t] += sum
            }
        }
        return scores
    }
    weights.withUnsafeBufferPointer { w in
        scores.withUnsafeMutableBufferPointer { s in
            GEMM.multiply(
                m: rows, n: targets, k: features, a: x.baseAddress!, b: w.baseAddress!, transB: true,
                beta: bias.isEmpty ? 0 : 1, c: s.baseAddress!)
        }
    }
    return scores
}

/// The kernel functions of ONNX-ML's SVMs (`kernel_type`, `kernel_params` = gamma, coef0, degree).
struct SVMKernel: Sendable {
    enum Kind: String, Sendable { case linear = "LINEAR", poly = "POLY", rbf = "RBF", sigmoid = "SIGMOID" }
    var kind: Kind
    var gamma: Float = 0, coef0: Float = 0, degree: Float = 0

    init(node: Node) throws {
        let name = node.attributes.string("kernel_type", default: "LINEAR")
        guard let kind = Kind(rawValue: name) else { throw node.invalid("unknown kernel_type `\(name)` (LINEAR, POLY, RBF or SIGMOID)") }
        self.kind = kind
        let parameters = node.attributes.floats("kernel_params") ?? []
        if !parameters.isEmpty {
            guard parameters.count >= 3 else { throw node.invalid("kernel_params needs gamma, coef0 and degree") }
            (gamma, coef0, degree) = (parameters[0], parameters[1], parameters[2])
        }
    }

    /// rows × vectors kernel values K(x_row, v) for `vectors` (vectors × features, row-major).
    func evaluate(_ x: [Float], rows: Int, features: Int, vectors: [Float], count: Int, constant: Float = 0) -> [Float] {
        var out = [Float](repeating: 0, count: rows * count)
        if kind == .rbf {
            for row in 0..<rows {
                for v in 0..<count {
                    var sum: Float = 0
                    for f in 0..<features {
                        let d = x[row * features + f] - vectors[v * features + f]
                        sum += d * d
                    }
                    out[row * count + v] = Libm.exp(-gamma * sum)
                }
            }
            return out
        }
        let (alpha, c) = kind == .linear ? (Float(1), constant) : (gamma, coef0)
        if c != 0 { for k in out.indices { out[k] = c } }
        x.withUnsafeBufferPointer { x in
            vectors.withUnsafeBufferPointer { v in
                out.withUnsafeMutableBufferPointer { o in
                    GEMM.multiply(
                        m: rows, n: count, k: features, alpha: alpha, a: x.baseAddress!, b: v.baseAddress!, transB: true,
                        beta: c != 0 ? 1 : 0, c: o.baseAddress!)
                }
            }
        }
        switch kind {
        case .poly:
            for k in out.indices {
                out[k] = degree == 2 ? out[k] * out[k] : degree == 3 ? out[k] * out[k] * out[k] : Libm.pow(out[k], degree)
            }
        case .sigmoid: for k in out.indices { out[k] = Libm.tanh(out[k]) }
        default: break
        }
        return out
    }
}

struct SVMClassifier {
    let kernelFunction: SVMKernel
    let labels: ClassLabels
    let classes: Int
    let vectorsPerClass: [Int]
    let firstVector: [Int]
    let vectorCount: Int
    let supportVectors: [Float]
    let coefficients: [Float]
    let rho: [Float]
    let probA: [Float], probB: [Float]
    let transform: PostTransform
    let weightsArePositive: Bool
    /// Support vectors given: libsvm's one-vs-one SVC; otherwise one linear scorer per class.
    let usesSupportVectors: Bool

    init(node: Node) throws {
        let a = node.attributes
        var kernel = try SVMKernel(node: node)
        labels = try ClassLabels(node: node)
        guard labels.count > 0 else { throw node.invalid("needs classlabels_strings or classlabels_ints") }
        classes = labels.count
        vectorsPerClass = (a.ints("vectors_per_class") ?? []).map { $0 }
        var starts: [Int] = [], total = 0
        for count in vectorsPerClass {
            starts.append(total)
            total += count
        }
        firstVector = starts
        vectorCount = total
        supportVectors = a.floats("support_vectors") ?? []
        coefficients = try a.required("coefficients", a.floats)
        rho = a.floats("rho") ?? [0]
        probA = a.floats("prob_a") ?? []
        probB = a.floats("prob_b") ?? []
        guard probA.count == probB.count else { throw node.invalid("prob_a and prob_b differ in length") }
        transform = try PostTransform(name: a.string("post_transform", default: "NONE"), node: node)
        weightsArePositive = coefficients.allSatisfy { $0 >= 0 }
        usesSupportVectors = vectorCount > 0
        if usesSupportVectors {
            guard vectorsPerClass.count == classes else { throw node.invalid("vectors_per_class has \(vectorsPerClass.count) entries for \(classes) classes") }
            guard supportVectors.count % vectorCount == 0 else { throw node.invalid("support_vectors do not divide into \(vectorCount) vectors") }
            guard coefficients.count == (classes - 1) * vectorCount else {
                throw node.invalid("needs (classes − 1) × vectors = \((classes - 1) * vectorCount) coefficients, has \(coefficients.count)")
            }
            guard rho.count >= classes * (classes - 1) / 2 else { throw node.invalid("needs one rho per pair of classes") }
            if !probA.isEmpty, probA.count < classes * (classes - 1) / 2 { throw node.invalid("needs one prob_a per pair of classes") }
        } else {
            kernel.kind = .linear
        }
        kernelFunction = kernel
    }

    var kernel: KernelFunction {
        { c, i in
            let x = try c.input(i, 0)
            let (rows, features) = try x.mlRows(c)
            let data = try x.mlFloats(c)
            let pairs = classes * (classes - 1) / 2
            let hasProbabilities = !probA.isEmpty
            var columns = classes
            var second: SecondClass?
            var scoreCount = classes
            if usesSupportVectors, !hasProbabilities {
                columns = classes > 2 ? pairs : 2
                scoreCount = pairs
                if classes <= 2 { second = transform == .none ? .negated : .complement }
            }
            var output = [Float](repeating: 0, count: rows * columns)
            var chosen = [Int](repeating: 0, count: rows)
            var pairScores = [Float](repeating: 0, count: rows * pairs)
            var votes = [Int](repeating: 0, count: rows * classes)
            if usesSupportVectors {
                guard supportVectors.count == vectorCount * features else {
                    throw c.invalid("the support vectors have \(supportVectors.count / max(vectorCount, 1)) features; the input has \(features)")
                }
                let kernels = kernelFunction.evaluate(data, rows: rows, features: features, vectors: supportVectors, count: vectorCount)
                for row in 0..<rows {
                    var pair = 0
                    for ci in 0..<(classes - 1) {
                        for cj in (ci + 1)..<classes {
                            var sum: Double = 0
                            for m in 0..<vectorsPerClass[ci] {
                                let v = firstVector[ci] + m
                                sum += Double(coefficients[vectorCount * (cj - 1) + v] * kernels[row * vectorCount + v])
                            }
                            for m in 0..<vectorsPerClass[cj] {
                                let v = firstVector[cj] + m
                                sum += Double(coefficients[vectorCount * ci + v] * kernels[row * vectorCount + v])
                            }
                            sum += Double(rho[pair])
                            pairScores[row * pairs + pair] = Float(sum)
                            votes[row * classes + (sum > 0 ? ci : cj)] += 1
                            pair += 1
                        }
                    }
                }
            } else {
                guard coefficients.count == classes * features else {
                    throw c.invalid("\(coefficients.count) coefficients do not fit \(classes) classes × \(features) features")
                }
                let scores = kernelFunction.evaluate(data, rows: rows, features: features, vectors: coefficients, count: classes, constant: rho[0])
                output = scores
            }
            for row in 0..<rows {
                var scores = [Float](repeating: 0, count: scoreCount)
                if usesSupportVectors, hasProbabilities {
                    scores = pairwiseProbabilities(Array(pairScores[row * pairs..<(row + 1) * pairs]))
                } else if usesSupportVectors {
                    scores = Array(pairScores[row * pairs..<(row + 1) * pairs])
                } else {
                    scores = Array(output[row * columns..<(row + 1) * columns])
                }
                var maxClass = 0
                var maxWeight: Float = 0
                if usesSupportVectors {
                    let rowVotes = votes[row * classes..<(row + 1) * classes]
                    maxClass = rowVotes.firstIndex(of: rowVotes.max()!)! - row * classes
                } else {
                    maxClass = scores.indices.max { scores[$0] < scores[$1] || (scores[$0] == scores[$1] && $0 > $1) } ?? 0
                    maxWeight = scores[maxClass]
                }
                if pairs == 1, classes == 2, !hasProbabilities {
                    if weightsArePositive && maxWeight >= 0.5 || maxWeight > 0 && !weightsArePositive {
                        maxClass = 1
                    }
                }
                chosen[row] = maxClass
                scores.withUnsafeMutableBufferPointer { scores in
                    output.withUnsafeMutableBufferPointer { out in
                        transform.write(scores, second: second, to: out.baseAddress! + row * columns)
                    }
                }
            }
            return [labels.tensor(chosen, shape: [rows]), Tensor(output, shape: [rows, columns])]
        }
    }

    /// Class probabilities from the pairwise decision values: Platt scaling per pair, then
    /// Wu, Lin and Weng's coupling (libsvm's `multiclass_probability`), in float as onnxruntime.
    func pairwiseProbabilities(_ decisions: [Float]) -> [Float] {
        let k = classes
        var r = [Float](repeating: 0, count: k * k)
        var index = 0
        for i in 0..<(k - 1) {
            for j in (i + 1)..<k {
                let value = 1 - PostTransform.logistic(decisions[index] * probA[index] + probB[index])
                let clipped = min(max(value, 1e-7), 1 - 1e-7)
                r[i * k + j] = clipped
                r[j * k + i] = 1 - clipped
                index += 1
            }
        }
        var q = [Float](repeating: 0, count: k * k)
        var p = [Float](repeating: 1 / Float(k), count: k)
        for i in 0..<k {
            for j in 0..<i {
                q[i * k + i] += r[j * k + i] * r[j * k + i]
                q[i * k + j] = q[j * k + i]
            }
            for j in (i + 1)..<k where j < k {
                q[i * k + i] += r[j * k + i] * r[j * k + i]
                q[i * k + j] = -r[j * k + i] * r[i * k + j]
            }
        }
        var qp = [Float](repeating: 0, count: k)
        let epsilon = 0.005 / Float(k)
        for _ in 0..<100 {
            var pqp: Float = 0
            for i in 0..<k {
                qp[i] = 0
                for j in 0..<k { qp[i] += q[i * k + j] * p[j] }
                pqp += p[i] * qp[i]
            }
            var maxError: Float = 0
            for i in 0..<k { maxError = max(maxError, abs(qp[i] - pqp)) }
            if maxError < epsilon { break }
            for i in 0..<k {
                let diff = (-qp[i] + pqp) / q[i * k + i]
                p[i] += diff
                pqp = (pqp + diff * (diff * q[i * k + i] + 2 * qp[i])) / (1 + diff) / (1 + diff)
                for j in 0..<k {
                    qp[j] = (qp[j] + diff * q[i * k + j]) / (1 + diff)
                    p[j] /= (1 + diff)
                }
            }
        }
        return p
    }
}

struct SVMRegressor {
    let kernelFunction: SVMKernel
    let supportVectors: [Float]
    let vectorCount: Int
    let coefficients: [Float]
    let rho: Float
    let oneClass: Bool
    let transform: PostTransform

    init(node: Node) throws {
        let a = node.attributes
        var kernel = try SVMKernel(node: node)
        supportVectors = a.floats("support_vectors") ?? []
        vectorCount = a.int("n_supports", default: 0)
        coefficients = try a.required("coefficients", a.floats)
        rho = (a.floats("rho") ?? [0]).first ?? 0
        oneClass = a.int("one_class", default: 0) != 0
        transform = try PostTransform(name: a.string("post_transform", default: "NONE"), node: node)
        if vectorCount > 0 {
            guard coefficients.count >= vectorCount else { throw node.invalid("needs a coefficient per support vector") }
            guard supportVectors.count % vectorCount == 0 else { throw node.invalid("support_vectors do not divide into \(vectorCount) vectors") }
        } else {
            kernel.kind = .linear
        }
        kernelFunction = kernel
    }

    var kernel: KernelFunction {
        { c, i in
            let x = try c.input(i, 0)
            let (rows, features) = try x.mlRows(c)
            let data = try x.mlFloats(c)
            var output = [Float](repeating: 0, count: rows)
            if vectorCount > 0 {
                guard supportVectors.count == vectorCount * features else {
                    throw c.invalid("the support vectors have \(supportVectors.count / vectorCount) features; the input has \(features)")
                }
                let kernels = kernelFunction.evaluate(data, rows: rows, features: features, vectors: supportVectors, count: vectorCount)
                for row in 0..<rows {
                    var sum: Float = 0
                    for v in 0..<vectorCount { sum += coefficients[v] * kernels[row * vectorCount + v] }
                    output[row] = sum + rho
                }
            } else {
                guard coefficients.count == features else { throw c.invalid("\(coefficients.count) coefficients for \(features) features") }
                output = kernelFunction.evaluate(data, rows: rows, features: features, vectors: coefficients, count: 1, constant: rho)
            }
            for row in 0..<rows {
                if oneClass {
                    output[row] = output[row] > 0 ? 1 : -1
                } else if transform == .probit {
                    output[row] = PostTransform.probit(output[row])
                }
            }
            return [Tensor(output, shape: [rows, 1])]
        }
    }
}
