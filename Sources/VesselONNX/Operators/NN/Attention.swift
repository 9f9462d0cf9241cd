import RealModule
import VesselTensor

extension KernelRegistry {
    static func registerAttention(_ r: inout KernelRegistry) {
        r.registerPrepared("Attention", since: 23, attentionKernel)
    }

    /// Attention (opsets 23–25): reads and checks the attributes once per node.
    static func attentionKernel(_ node: Node) throws -> KernelFunction {
        let attention = try Attention(node)
        return { c, i in try attention.run(c, i) }
    }
}

/// Scaled dot-product attention as the ONNX `Attention` operator defines it: 3-D (heads packed
/// in the hidden axis) or 4-D inputs, multi-head, grouped-query and multi-query attention, a
/// KV cache kept inside (`past_key`/`past_value` → `present_key`/`present_value`) or outside
/// (`nonpad_kv_seqlen`), boolean or additive masks broadcast from any rank and padded to the
/// total sequence length, bottom-right causal masking, sliding windows (opset 25), soft capping,
/// and the four `qk_matmul_output` modes.
///
/// Computed in float32 whatever the input type (float16 and bfloat16 are widened, and rounded
/// once at the end; `softmax_precision` of float16 or bfloat16 rounds the scores and the
/// probabilities to that type as the spec asks). For each batch and query head one thread
/// takes the scores Q·Kᵀ (one GEMM, the scale folded into it), adds the bias row by row, takes
/// the softmax in place and multiplies by V (one more GEMM): the [q, kv] score matrix is the
/// only intermediate, and no graph of MatMul/Add/Softmax/MatMul nodes runs. Which thread takes
/// which head never changes a result.
struct Attention: Sendable {
    let scale: Float?
    let causal: Bool
    let queryHeads: Int?
    let kvHeads: Int?
    let softmaxPrecision: DType?
    let softcap: Float
    let qkMode: Int
    let leftWindow: Int
    let rightWindow: Int
    /// Whether the node asks for present_key / present_value / qk_matmul_output.
    let wantsPresent: Bool
    let wantsScores: Bool

    init(_ node: Node) throws {
        let a = node.attributes
        scale = a.float("scale")
        causal = a.int("is_causal", default: 0) != 0
        queryHeads = a.int("q_num_heads")
        kvHeads = a.int("kv_num_heads")
        for (name, value) in [("q_num_heads", queryHeads), ("kv_num_heads", kvHeads)] {
            if let value, !(1...(1 << 24)).contains(value) { throw node.invalid("\(name) \(value) must be positive") }
        }
        if let precision = a.int("softmax_precision") {
            switch precision {
            case 1: softmaxPrecision = .float32
            case 10: softmaxPrecision = .float16
            case 11: softmaxPrecision = .float64
            case 16: softmaxPrecision = .bfloat16
            default:
                throw node.invalid("softmax_precision \(precision) is not one of 1 (FLOAT), 10 (FLOAT16), 11 (DOUBLE), 16 (BFLOAT16)")
            }
        } else {
            softmaxPrecision = nil
        }
        softcap = a.float("softcap", default: 0)
        guard softcap >= 0, softcap.isFinite else { throw node.invalid("softcap \(softcap) must be a finite value ≥ 0") }
        qkMode = a.int("qk_matmul_output_mode", default: 0)
        guard (0...3).contains(qkMode) else { throw node.invalid("qk_matmul_output_mode \(qkMode) is not 0, 1, 2 or 3") }
        leftWindow = a.int("left_window_size", default: -1)
        rightWindow = a.int("right_window_size", default: -1)
        guard leftWindow >= -1, rightWindow >= -1 else {
            throw node.invalid("left_window_size \(leftWindow) and right_window_size \(rightWindow) must be -1 or non-negative")
        }
        wantsPresent = node.outputs.count > 1 && node.outputs[1...].prefix(2).contains { !$0.isEmpty }
        wantsScores = node.outputs.count > 3 && !node.outputs[3].isEmpty
    }

    /// The sizes of one run, read from the inputs' shapes.
    struct Sizes {
        var batch = 0, queryHeads = 0, kvHeads = 0, querySequence = 0, kvSequence = 0, past = 0
        var headSize = 0, valueHeadSize = 0
        var total: Int { past + kvSequence }
    }

    func run(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let q = try c.input(i, 0), k = try c.input(i, 1), v = try c.input(i, 2)
        func optional(_ index: Int) -> Tensor? { index < i.count ? i[index] : nil }
        let mask = optional(3), pastKey = optional(4), pastValue = optional(5), nonpad = optional(6)
        let dtype = q.dtype
        guard dtype.isFloatingPoint else { throw c.invalid("Q must be floating point, not \(dtype)") }
        guard k.dtype == dtype, v.dtype == dtype else { throw c.invalid("Q, K and V must have one type, got \(dtype), \(k.dtype), \(v.dtype)") }
        guard q.rank == k.rank, q.rank == v.rank, q.rank == 3 || q.rank == 4 else {
            throw c.invalid("Q, K and V must all be 3-D or all 4-D, got \(q.shape), \(k.shape), \(v.shape)")
        }
        guard (pastKey == nil) == (pastValue == nil) else { throw c.invalid("past_key and past_value must be given together") }
        guard nonpad == nil || pastKey == nil else { throw c.invalid("nonpad_kv_seqlen cannot be combined with past_key and past_value") }

        var s = Sizes()
        s.batch = q.shape[0]
        guard k.shape[0] == s.batch, v.shape[0] == s.batch else { throw c.invalid("Q, K and V differ in batch size: \(q.shape), \(k.shape), \(v.shape)") }
        if q.rank == 3 {
            guard let queryHeads, let kvHeads else { throw c.invalid("3-D inputs need the q_num_heads and kv_num_heads attributes") }
            guard q.shape[2] % queryHeads == 0, k.shape[2] % kvHeads == 0, v.shape[2] % kvHeads == 0 else {
                throw c.invalid(
                    "hidden sizes \(q.shape[2]) (Q), \(k.shape[2]) (K), \(v.shape[2]) (V) are not multiples of q_num_heads \(queryHeads) and kv_num_heads \(kvHeads)"
                )
            }
            s.queryHeads = queryHeads
            s.kvHeads = kvHeads
            s.querySequence = q.shape[1]
            s.kvSequence = k.shape[1]
            s.headSize = q.shape[2] / queryHeads
            guard k.shape[2] / kvHeads == s.headSize else { throw c.invalid("K's head size \(k.shape[2] / kvHeads) differs from Q's \(s.headSize)") }
            s.valueHeadSize = v.shape[2] / kvHeads
            guard v.shape[1] == s.kvSequence else { throw c.invalid("K and V differ in sequence length: \(k.shape), \(v.shape)") }
        } else {
            s.queryHeads = q.shape[1]
            s.kvHeads = k.shape[1]
            s.querySequence = q.shape[2]
            s.kvSequence = k.shape[2]
            s.headSize = q.shape[3]
            s.valueHeadSize = v.shape[3]
            guard k.shape[3] == s.headSize else { throw c.invalid("K's head size \(k.shape[3]) differs from Q's \(s.headSize)") }
            guard v.shape[1] == s.kvHeads, v.shape[2] == s.kvSequence else {
                throw c.invalid("K \(k.shape) and V \(v.shape) differ in heads or sequence length")
            }
            if let queryHeads, queryHeads != s.queryHeads { throw c.invalid("q_num_heads \(queryHeads) differs from Q's \(s.queryHeads) heads") }
            if let kvHeads, kvHeads != s.kvHeads { throw c.invalid("kv_num_heads \(kvHeads) differs from K's \(s.kvHeads) heads") }
        }
        guard s.kvHeads > 0, s.queryHeads % s.kvHeads == 0 else {
            throw c.invalid("q_num_heads \(s.queryHeads) is not a multiple of kv_num_heads \(s.kvHeads)")
        }
        if let pastKey, let pastValue {
            s.past = pastKey.rank == 4 ? pastKey.shape[2] : -1
            guard pastKey.rank == 4, pastKey.shape == [s.batch, s.kvHeads, s.past, s.headSize],
                pastValue.shape == [s.batch, s.kvHeads, s.past, s.valueHeadSize]
            else {
                throw c.invalid(
                    "past_key \(pastKey.shape) and past_value \(pastValue.shape) must be [batch, kv_num_heads, past, head size] for batch \(s.batch), \(s.kvHeads) heads, head sizes \(s.headSize) and \(s.valueHeadSize)"
                )
            }
            guard pastKey.dtype == dtype, pastValue.dtype == dtype else { throw c.invalid("past_key and past_value must have Q's type \(dtype)") }
        }
        let scoreCount = s.batch * s.queryHeads * s.querySequence * s.total
        try c.checkAllocation(.float32, [s.batch, s.queryHeads, s.querySequence, s.total])
        let lengths: [Int]?
        if let nonpad {
            guard nonpad.shape == [s.batch], !nonpad.dtype.isFloatingPoint, nonpad.dtype != .bool, nonpad.dtype != .string else {
                throw c.invalid("nonpad_kv_seqlen must be an integer vector of the batch size \(s.batch), got \(nonpad.dtype) \(nonpad.shape)")
            }
            lengths = nonpad.integers()
        } else {
            lengths = nil
        }
        let bias = try mask.map { try MaskBias($0, sizes: s, dtype: dtype, c) }

        // Q, K and V in [batch, heads, sequence, head size] float32; K and V after the past.
        let query = Self.heads(q, heads: s.queryHeads)
        let key = Self.present(past: pastKey, Self.heads(k, heads: s.kvHeads))
        let value = Self.present(past: pastValue, Self.heads(v, heads: s.kvHeads))

        // The scale, as the spec computes it: √scale in Q's type, applied to Q and to K.
        let root = Self.rounded((scale ?? 1 / Float(s.headSize).squareRoot()).squareRoot(), to: dtype)
        let alpha = root * root
        let outputShape = q.rank == 3 ? [s.batch, s.querySequence, s.queryHeads * s.valueHeadSize] : [s.batch, s.queryHeads, s.querySequence, s.valueHeadSize]
        let y = Tensor(uninitialized: .float32, shape: outputShape)
        let scores = wantsScores ? Tensor(uninitialized: .float32, shape: [s.batch, s.queryHeads, s.querySequence, s.total]) : nil
        let group = s.queryHeads / s.kvHeads
        let (sq, t, d, dv) = (s.querySequence, s.total, s.headSize, s.valueHeadSize)
        if scoreCount > 0 || y.count > 0 {
            query.withUnsafeBufferPointer(as: Float.self) { qp in
                key.withUnsafeBufferPointer(as: Float.self) { kp in
                    value.withUnsafeBufferPointer(as: Float.self) { vp in
                        y.withUnsafeMutableBufferPointer(as: Float.self) { yp in
                            Self.withPointer(scores) { scoresBase in
                                Parallel.each(s.batch * s.queryHeads) { index in
                                    let b = index / s.queryHeads, h = index % s.queryHeads, kvh = h / group
                                    let weights = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(sq * t, 1))
                                    defer { weights.deallocate() }
                                    let kvOffset = (b * s.kvHeads + kvh) * t
                                    if d > 0 {
                                        GEMM.multiply(
                                            m: sq, n: t, k: d, alpha: alpha, a: qp.baseAddress! + index * sq * d,
                                            b: kp.baseAddress! + kvOffset * d, transB: true, c: weights, threads: 1)
                                    } else {
                                        weights.initialize(repeating: 0, count: sq * t)
                                    }
                                    let captured = scoresBase.map { $0 + index * sq * t }
                                    self.normalize(weights, batch: b, head: h, sizes: s, bias: bias, lengths: lengths, captured: captured)
                                    let target: UnsafeMutablePointer<Float>
                                    let ldc: Int
                                    if q.rank == 3 {
                                        target = yp.baseAddress! + b * sq * s.queryHeads * dv + h * dv
                                        ldc = s.queryHeads * dv
                                    } else {
                                        target = yp.baseAddress! + index * sq * dv
                                        ldc = dv
                                    }
                                    GEMM.multiply(
                                        m: sq, n: dv, k: t, a: weights, b: vp.baseAddress! + kvOffset * dv, c: target, ldc: ldc, threads: 1)
                                }
                            }
                        }
                    }
                }
            }
        }
        let empty = Tensor(zeros: dtype, shape: [0])
        let presentKey = wantsPresent ? Cast.convert(key, to: dtype) : empty
        let presentValue = wantsPresent ? Cast.convert(value, to: dtype) : empty
        return [Cast.convert(y, to: dtype), presentKey, presentValue, scores.map { Cast.convert($0, to: dtype) } ?? empty]
    }

    /// Turns one head's scores (`sq` rows of `total`) into attention weights in place: soft cap,
    /// bias (mask, causal frontier, window, padding), softmax; copies the scores the
    /// `qk_matmul_output_mode` names into `captured`.
    func normalize(
        _ weights: UnsafeMutablePointer<Float>, batch b: Int, head h: Int, sizes s: Sizes, bias: MaskBias?, lengths: [Int]?,
        captured: UnsafeMutablePointer<Float>?
    ) {
        let (sq, t) = (s.querySequence, s.total)
        if qkMode == 0, let captured { captured.update(from: weights, count: sq * t) }
        if softcap > 0 {
            for index in 0..<(sq * t) { weights[index] = softcap * Float.tanh(weights[index] / softcap) }
        }
        if qkMode == 1, let captured { captured.update(from: weights, count: sq * t) }
        // Causal and window frontiers are offset-aligned: a query's absolute position is
        // its index plus the keys before the block (the past, or the valid length less the
        // queries when the cache is kept outside).
        let offset = lengths.map { $0[b] - sq } ?? s.past
        let restricted = causal || leftWindow >= 0 || rightWindow >= 0 || lengths != nil
        for row in 0..<sq {
            let scores = weights + row * t
            var attended = bias == nil && !restricted
            let maskRow = bias.map { $0.start(batch: b, head: h, query: row) }
            let position = row + offset
            for j in 0..<t {
                var add: Float = 0
                if let bias, let maskRow { add = bias.values[maskRow + j] }
                if restricted {
                    let diff = position - j
                    if causal && diff < 0 { add = -.infinity }
                    if leftWindow >= 0 && diff > leftWindow { add = -.infinity }
                    if rightWindow >= 0 && -diff > rightWindow { add = -.infinity }
                    if let lengths, j >= lengths[b] { add = -.infinity }
                }
                if add != -.infinity { attended = true }
                scores[j] += add
            }
            if qkMode == 2, let captured { (captured + row * t).update(from: scores, count: t) }
            // A row whose every key is masked has no softmax: its weights are zero, and so is
            // its output (the spec's rule, decided on the bias, not on the scores).
            if !attended {
                scores.update(repeating: 0, count: t)
            } else {
                softmax(scores, t)
            }
            if qkMode == 3, let captured { (captured + row * t).update(from: scores, count: t) }
        }
    }

    /// Softmax of one row in place, rounded through `softmax_precision` when it is narrower
    /// than float32; a row of −inf scores gives zeros.
    func softmax(_ row: UnsafeMutablePointer<Float>, _ n: Int) {
        let narrow = softmaxPrecision == .float16 || softmaxPrecision == .bfloat16
        if narrow, let precision = softmaxPrecision {
            for j in 0..<n { row[j] = Self.rounded(row[j], to: precision) }
        }
        var peak = -Float.infinity
        for j in 0..<n where row[j] > peak { peak = row[j] }
        if peak == -.infinity, !(0..<n).contains(where: { row[$0].isNaN }) {
            row.update(repeating: 0, count: n)
            return
        }
        RowKernels.softmaxRow(row, row, n, log: false)
        if narrow, let precision = softmaxPrecision {
            for j in 0..<n { row[j] = Self.rounded(row[j], to: precision) }
        }
    }

    /// The float32 values of `tensor`, or nil when there is none.
    static func withPointer<R>(_ tensor: Tensor?, _ body: (UnsafeMutablePointer<Float>?) -> R) -> R {
        guard let tensor else { return body(nil) }
        return tensor.withUnsafeMutableBufferPointer(as: Float.self) { body($0.baseAddress) }
    }

    /// `value` rounded to float16 or bfloat16 (to nearest, ties to even); other types unchanged.
    static func rounded(_ value: Float, to dtype: DType) -> Float {
        switch dtype {
        case .float16: Float(Float16(value))
        case .bfloat16: BFloat16(value).floatValue
        default: value
        }
    }

    /// Q, K or V as float32 [batch, heads, sequence, head size]: a 4-D input as it is, a 3-D one
    /// ([batch, sequence, heads × head size]) with its heads split out and moved ahead.
    static func heads(_ x: Tensor, heads: Int) -> Tensor {
        let source = Cast.convert(x, to: .float32)
        guard x.rank == 3 else { return source }
        return transpose(source.reshaped([x.shape[0], x.shape[1], heads, x.shape[2] / heads]), [0, 2, 1, 3])
    }

    /// The past (if any) and the new keys or values joined along the sequence axis, float32.
    static func present(past: Tensor?, _ current: Tensor) -> Tensor {
        guard let past, past.shape[2] > 0 else { return current }
        return concatenate([Cast.convert(past, to: .float32), current], axis: 2)
    }
}

/// `attn_mask` as an additive float32 bias readable row by row for any batch, head and query:
/// a boolean mask becomes 0 (attend) or −inf, a mask shorter than the total sequence is padded
/// with −inf, and its axes broadcast right-aligned to [batch, q_num_heads, q_sequence, total].
struct MaskBias: @unchecked Sendable {
    let values: [Float]
    let strides: (batch: Int, head: Int, query: Int)
    let width: Int

    init(_ mask: Tensor, sizes s: Attention.Sizes, dtype: DType, _ c: KernelContext) throws {
        guard mask.dtype == .bool || mask.dtype == dtype else {
            throw c.invalid("attn_mask must be boolean or of Q's type \(dtype), got \(mask.dtype)")
        }
        guard (1...4).contains(mask.rank) else { throw c.invalid("attn_mask must have rank 1 to 4, got shape \(mask.shape)") }
        let target = [s.batch, s.queryHeads, s.querySequence, s.total]
        let shape = [Int](repeating: 1, count: 4 - mask.rank) + mask.shape
        guard shape[3] <= s.total else {
            throw c.invalid("attn_mask's last axis \(shape[3]) is longer than the total sequence length \(s.total)")
        }
        for axis in 0..<3 where shape[axis] != 1 && shape[axis] != target[axis] {
            throw c.invalid("attn_mask of shape \(mask.shape) does not broadcast to \(target)")
        }
        let columns = shape[3], rows = shape[0] * shape[1] * shape[2]
        var values = [Float](repeating: -.infinity, count: rows * s.total)
        if mask.dtype == .bool {
            let flags = mask.scalars(as: Bool.self)
            for row in 0..<rows {
                for j in 0..<columns { values[row * s.total + j] = flags[row * columns + j] ? 0 : -.infinity }
            }
        } else {
            let floats = Cast.convert(mask, to: .float32).scalars(as: Float.self)
            for row in 0..<rows {
                for j in 0..<columns { values[row * s.total + j] = floats[row * columns + j] }
            }
        }
        self.values = values
        width = s.total
        strides = (
            batch: shape[0] == 1 ? 0 : shape[1] * shape[2] * s.total,
            head: shape[1] == 1 ? 0 : shape[2] * s.total,
            query: shape[2] == 1 ? 0 : s.total
        )
    }

    /// Where the row for this batch, head and query starts in `values` (`width` long).
    func start(batch: Int, head: Int, query: Int) -> Int {
        batch * strides.batch + head * strides.head + query * strides.query
    }
}
