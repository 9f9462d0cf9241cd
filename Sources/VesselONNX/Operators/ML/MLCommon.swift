#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import VesselTensor

/// The `ai.onnx.ml` domain, as nodes name it.
let mlDomain = "ai.onnx.ml"

/// The score transforms classifiers and regressors apply after summing (`post_transform`).
/// Formulas follow the ONNX spec and its reference implementation; onnxruntime computes the same.
enum PostTransform: Sendable {
    case none, softmax, logistic, softmaxZero, probit

    init(name: String, node: Node) throws {
        switch name {
        case "NONE": self = .none
        case "SOFTMAX": self = .softmax
        case "LOGISTIC": self = .logistic
        case "SOFTMAX_ZERO": self = .softmaxZero
        case "PROBIT": self = .probit
        default: throw node.invalid("unknown post_transform `\(name)` (NONE, SOFTMAX, LOGISTIC, SOFTMAX_ZERO or PROBIT)")
        }
    }

    /// TreeEnsemble (opset 5) numbers them.
    init(code: Int, node: Node) throws {
        let names = ["NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO", "PROBIT"]
        guard names.indices.contains(code) else { throw node.invalid("post_transform \(code) is not 0…4") }
        try self.init(name: names[code], node: node)
    }

    static func logistic(_ x: Float) -> Float {
        // Symmetric form: exact for large |x| on both sides.
        let v = 1 / (1 + Libm.exp(-abs(x)))
        return x < 0 ? 1 - v : v
    }

    /// √2 · erfinv(2p − 1), with the closed-form erfinv approximation (Winitzki, a = 0.147) that
    /// the ONNX reference implementation and onnxruntime both use, so PROBIT scores agree.
    static func probit(_ p: Float) -> Float {
        var x = 2 * p - 1
        let sign: Float = x < 0 ? -1 : 1
        x = (1 - x) * (1 + x)
        let log = Libm.log(x)
        let v = 2 / (Float.pi * 0.147) + 0.5 * log
        let v2 = 1 / 0.147 * log
        return Float(2).squareRoot() * sign * (-v + (v * v - v2).squareRoot()).squareRoot()
    }

    static func softmax(_ scores: UnsafeMutableBufferPointer<Float>) {
        guard let maximum = scores.max() else { return }
        var sum: Float = 0
        for k in scores.indices {
            scores[k] = Libm.exp(scores[k] - maximum)
            sum += scores[k]
        }
        for k in scores.indices { scores[k] /= sum }
    }

    /// Softmax that leaves zero scores (classes no tree voted for) near zero.
    static func softmaxZero(_ scores: UnsafeMutableBufferPointer<Float>) {
        guard let maximum = scores.max() else { return }
        let scaleOfZero = Libm.exp(-maximum)
        var sum: Float = 0
        for k in scores.indices {
            if abs(scores[k]) > 1e-7 {
                scores[k] = Libm.exp(scores[k] - maximum)
                sum += scores[k]
            } else {
                scores[k] *= scaleOfZero
            }
        }
        for k in scores.indices { scores[k] /= sum }
    }

    /// Applies the transform to one row of two or more scores.
    func apply(_ scores: UnsafeMutableBufferPointer<Float>) {
        switch self {
        case .none: break
        case .softmax: Self.softmax(scores)
        case .softmaxZero: Self.softmaxZero(scores)
        case .logistic: for k in scores.indices { scores[k] = Self.logistic(scores[k]) }
        case .probit: for k in scores.indices { scores[k] = Self.probit(scores[k]) }
        }
    }
}

/// How a classifier with one score column fills the second (the binary cases of onnxruntime's
/// `write_scores`): the score of the negative class from that of the positive one.
enum SecondClass {
    /// Scores are probabilities: [1 − s, s].
    case complement
    /// Scores are margins: [−s, s], or with LOGISTIC [σ(−s), σ(s)].
    case negated
}

extension PostTransform {
    /// Transforms one row of raw scores and writes it to `output`: two or more scores get the
    /// transform; a single score is PROBIT-transformed, or expanded to two by `second`.
    func write(_ scores: UnsafeMutableBufferPointer<Float>, second: SecondClass?, to output: UnsafeMutablePointer<Float>) {
        if scores.count >= 2 {
            apply(scores)
            output.update(from: scores.baseAddress!, count: scores.count)
            return
        }
        guard scores.count == 1 else { return }
        let s = scores[0]
        if self == .probit {
            output[0] = Self.probit(s)
            return
        }
        switch second {
        case nil: output[0] = s
        case .complement?:
            output[0] = 1 - s
            output[1] = s
        case .negated?:
            if self == .logistic {
                output[0] = Self.logistic(-s)
                output[1] = Self.logistic(s)
            } else {
                output[0] = -s
                output[1] = s
            }
        }
    }
}

/// Class labels of a classifier: int64 or strings, whichever attribute the model gives.
enum ClassLabels: Sendable {
    case integers([Int64])
    case strings([String])

    init(node: Node, strings stringsName: String = "classlabels_strings", integers integersName: String = "classlabels_ints") throws {
        let strings = node.attributes.strings(stringsName) ?? [], integers = node.attributes.ints(integersName) ?? []
        guard strings.isEmpty || integers.isEmpty else { throw node.invalid("give \(stringsName) or \(integersName), not both") }
        self = strings.isEmpty ? .integers(integers.map { Int64($0) }) : .strings(strings)
    }

    var count: Int {
        switch self {
        case .integers(let labels): labels.count
        case .strings(let labels): labels.count
        }
    }

    /// A label tensor: `indices[k]` is the label index of row k (with `fallback` for the
    /// binary-without-labels case, where ONNX-ML uses "0"/"1" and 0/1).
    func tensor(_ indices: [Int], shape: [Int]) -> Tensor {
        switch self {
        case .integers(let labels):
            return Tensor(indices.map { labels.indices.contains($0) ? labels[$0] : Int64($0) }, shape: shape)
        case .strings(let labels):
            return Tensor(strings: indices.map { labels.indices.contains($0) ? labels[$0] : String($0) }, shape: shape)
        }
    }
}

extension Tensor {
    /// The elements as Float, from any numeric dtype (classic-ML operators compute in float).
    func mlFloats(_ context: KernelContext) throws -> [Float] {
        switch dtype {
        case .float32: return scalars(as: Float.self)
        case .string, .bool: throw context.invalid("takes numeric input, got \(dtype.rawValue)")
        default: return doubles().map { Float($0) }
        }
    }

    /// Calls `body` with the elements as Float: in place for a float tensor, else converted.
    func withMLFloats<R>(_ context: KernelContext, _ body: (UnsafeBufferPointer<Float>) throws -> R) throws -> R {
        if dtype == .float32 { return try withUnsafeBufferPointer(as: Float.self, body) }
        return try mlFloats(context).withUnsafeBufferPointer(body)
    }

    /// (rows, columns) of a classic-ML input: [C] is one row, [N, C] is N rows.
    func mlRows(_ context: KernelContext) throws -> (rows: Int, columns: Int) {
        switch rank {
        case 1: return (1, shape[0])
        case 2: return (shape[0], shape[1])
        default: throw context.invalid("takes a [N, C] or [C] input, got shape \(shape)")
        }
    }
}

extension Attributes {
    /// A float list given either as `name` or as the double tensor `name_as_tensor` (opset 3).
    func floatsOrTensor(_ name: String) -> [Double]? {
        if let tensor = tensor(name + "_as_tensor") { return tensor.doubles() }
        return floats(name).map { $0.map(Double.init) }
    }
}
