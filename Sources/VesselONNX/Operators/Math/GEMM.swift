#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Synchronization
import VesselKernelsAVX512
import VesselKernelsHaswell
import VesselTensor

/// Single-precision matrix multiply, C = alpha·op(A)·op(B) + beta·C, row-major.
///
/// On a CPU with AVX2 and FMA, products of at least 16 rows and 65,536 multiply-adds (alpha 1,
/// beta 0, A as stored) run on Vessel's own `PackedGEMM` kernels; the rest (and everything on a
/// CPU without AVX2) go to `BLASLibrary.sgemm` (OpenBLAS, loaded at run time) when it loaded,
/// otherwise to a blocked Swift kernel that computes the same result.
enum GEMM {
    /// Which implementation runs: "openblas" or "builtin".
    static var backend: String { BLASLibrary.sgemm == nil ? "builtin" : "openblas" }

    /// - Parameters: `a` is m×k (or k×m when `transA`), `b` is k×n (or n×k when `transB`), `c` is m×n.
    ///   `ldb` is the distance between B's rows (default: its row length); `b` without `transB`
    ///   only. `ldc` likewise for C.
    static func multiply(
        m: Int, n: Int, k: Int, alpha: Float = 1, a: UnsafePointer<Float>, transA: Bool = false,
        b: UnsafePointer<Float>, transB: Bool = false, ldb: Int? = nil, beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int? = nil,
        threads: Int = Parallel.threads
    ) {
        if m == 0 || n == 0 { return }
        let ldc = ldc ?? n
        if k == 0 {
            for i in 0..<m {
                for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] }
            }
            return
        }
        precondition(ldb == nil || !transB, "ldb is for B without transB")
        let ldb = ldb ?? (transB ? k : n)
        let lda = transA ? m : k
        // On a CPU with AVX2 and FMA (or AVX-512, where OpenBLAS 0.3.21 still takes its AVX2
        // kernels): B packed for this call, by the threads, then `PackedGEMM`'s kernels. Each
        // element is one in-order sum, so results do not depend on the thread count. On an AVX2
        // Zen 3 this beat OpenBLAS's Zen sgemm inside the CNNs too (ResNet-50, one thread, 110 →
        // 97 ms with the packed convolutions): OpenBLAS zeroes C in a pass of its own (`beta`)
        // and copies both operands per call.
        if RowKernels.variant.hasAVX2, alpha == 1, beta == 0, !transA, m >= 16, m * n * k >= splitWork / 4 {
            let packed = Tensor(uninitialized: .float32, shape: [VesselKernelsHaswell.PackedGEMM.packedCount(k: k, n: n)])
            packed.withUnsafeMutableBufferPointer(as: Float.self) { pp in
                PackedWeights.packAndMultiply(
                    a, rows: m, k: k, n: n, b: b, ldb: ldb, transposed: transB, scratch: pp.baseAddress!, c: c, ldc: ldc, threads: threads)
            }
            return
        }
        // A product of at least `splitWork` multiply-adds is cut into up to `gridBlocks` blocks of
        // C — column blocks when C is at least as wide as tall (each block reads all of A and its
        // columns of B), row blocks otherwise — and the intra-op threads share the blocks. The
        // cut depends on the shape alone, never on the thread count: OpenBLAS rounds a block
        // differently from the whole product (on AMD Zen even the first rows of a row-cut
        // product differ from the same rows computed whole), so only computing the same blocks
        // for every thread count keeps results bit-identical across thread counts. A product in
        // column blocks is cut on its block grid (see architecture.md, Threads).
        // Column blocks of a product with a large A are at least `minimumWidth` wide: each block
        // packs all of A again and runs on a narrower panel (a BERT layer's 128×384 by 384×384
        // product in eight 48-column blocks took 30 % longer than whole, in two 3 %). When that
        // leaves one block, the rows are cut instead, if there are enough of them, else the
        // columns in narrow blocks after all.
        let small = columnBlock(m: m, k: k)
        var byColumns = n >= m
        var blocks = 1
        if m * n * k >= splitWork {
            blocks = byColumns ? min(Self.gridBlocks, n / (small ?? Self.minimumWidth)) : min(Self.gridBlocks, m / Self.rowUnit)
            if byColumns, blocks < 2 {
                if m / Self.rowUnit >= 2 {
                    byColumns = false
                    blocks = min(Self.gridBlocks, m / Self.rowUnit)
                } else {
                    // Neither cut is wide enough (SqueezeNet's 64×512 by 13×13 products): narrow
                    // columns still let a second thread help.
                    blocks = min(Self.gridBlocks, n / 16)
                }
            }
        }
        let unit = byColumns ? small ?? 16 : Self.rowUnit
        let extent = byColumns ? n : m
        guard blocks > 1 else {
            product(m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, transA: transA, b: b, ldb: ldb, transB: transB, beta: beta, c: c, ldc: ldc)
            return
        }
        Parallel.each(blocks, threads: threads) { part in
            let first = extent * part / blocks / unit * unit, end = part == blocks - 1 ? extent : extent * (part + 1) / blocks / unit * unit
            if byColumns {
                product(
                    m: m, n: end - first, k: k, alpha: alpha, a: a, lda: lda, transA: transA,
                    b: transB ? b + first * ldb : b + first, ldb: ldb, transB: transB, beta: beta, c: c + first, ldc: ldc)
            } else {
                product(
                    m: end - first, n: n, k: k, alpha: alpha, a: transA ? a + first : a + first * lda, lda: lda, transA: transA,
                    b: b, ldb: ldb, transB: transB, beta: beta, c: c + first * ldc, ldc: ldc)
            }
        }
    }

    /// How many blocks a large product is cut into, whatever the thread count (see `multiply`).
    static let gridBlocks = 8

    /// Multiply-adds below which a product runs on one thread: a few microseconds of work at
    /// OpenBLAS's one-core speed, above what handing a block to a spinning worker costs (about a
    /// microsecond). The MLP's 784×512 layer at batch 1 (401K) is split; its 512×256 one is not.
    static let splitWork = 1 << 18

    /// Row cuts fall on multiples of this many rows (see `multiply`).
    static let rowUnit = 64

    /// The narrowest column block of a product whose A is not small (see `multiply`).
    static let minimumWidth = 192

    /// The width of the column blocks a product with a small A (m·k at most 16K values: most
    /// convolutions' weights, one image's worth of filters) runs in, or nil to run it whole.
    /// OpenBLAS takes its small-matrix kernels for such blocks: no packing and no separate pass
    /// that zeroes C. Measured one thread, best of 100, ms, whole / in 128-column blocks:
    /// 16×64 by 3025 columns 0.075 / 0.055, 64×16 by 3025 0.084 / 0.070, 48×256 by 169
    /// 0.047 / 0.043, 64×27 by 12321 0.474 / 0.393; with 64×512 by 169 no gain, and
    /// 1000×512 by 169 went from 1.74 to 1.80.
    static func columnBlock(m: Int, k: Int) -> Int? {
        BLASLibrary.sgemm != nil && m * k <= 16_384 ? 128 : nil
    }

    /// One product on the calling thread.
    private static func product(
        m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int, transA: Bool,
        b: UnsafePointer<Float>, ldb: Int, transB: Bool, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if let sgemm = BLASLibrary.sgemm {
            let block = columnBlock(m: m, k: k) ?? n
            var first = 0
            while first < n {
                let width = Swift.min(block, n - first)
                sgemm(
                    101, transA ? 112 : 111, transB ? 112 : 111, Int32(m), Int32(width), Int32(k), alpha,
                    a, Int32(lda), transB ? b + first * ldb : b + first, Int32(ldb), beta, c + first, Int32(ldc))
                first += width
            }
            return
        }
        builtin(m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, transA: transA, b: b, transB: transB, ldb: ldb, beta: beta, c: c, ldc: ldc)
    }

    /// Packs op(B) row-major (k×n) once, then for each block of rows accumulates a·b with the
    /// inner loop over contiguous n, which the compiler vectorizes.
    static func builtin(
        m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int? = nil, transA: Bool,
        b: UnsafePointer<Float>, transB: Bool, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        let lda = lda ?? (transA ? m : k)
        let packed = UnsafeMutablePointer<Float>.allocate(capacity: k * n)
        defer { packed.deallocate() }
        if transB {
            for p in 0..<k { for j in 0..<n { packed[p * n + j] = b[j * ldb + p] } }
        } else {
            for p in 0..<k { (packed + p * n).initialize(from: b + p * ldb, count: n) }
        }
        let row = UnsafeMutablePointer<Float>.allocate(capacity: n)
        defer { row.deallocate() }
        for i in 0..<m {
            row.initialize(repeating: 0, count: n)
            for p in 0..<k {
                let scale = transA ? a[p * lda + i] : a[i * lda + p]
                if scale == 0 { continue }
                let source = packed + p * n
                for j in 0..<n { row[j] += scale * source[j] }
            }
            let out = c + i * ldc
            if beta == 0 {
                for j in 0..<n { out[j] = alpha * row[j] }
            } else {
                for j in 0..<n { out[j] = alpha * row[j] + beta * out[j] }
            }
        }
    }
}

extension KernelRegistry {
    static func registerLinearAlgebra(_ r: inout KernelRegistry) {
        r.registerPrepared("MatMul") { _ in
            let weights = PackedWeights()
            return { c, i in [try matmul(c.input(i, 0), c.input(i, 1), c, weights: weights)] }
        }
        r.registerPrepared("Gemm") { _ in
            let weights = PackedWeights()
            return { c, i in try gemmKernel(c, i, weights: weights) }
        }
    }

    /// Gemm: alpha · op(A) · op(B) + beta · C, with the Relu after it when `relu` (a Gemm+Relu
    /// node, `fuseActivations`).
    static func gemmKernel(_ c: KernelContext, _ i: [Tensor?], weights: PackedWeights? = nil, relu: Bool = false) throws -> [Tensor] {
        var a = try c.input(i, 0), b = try c.input(i, 1)
        let transA = c.attributes.int("transA", default: 0) == 1, transB = c.attributes.int("transB", default: 0) == 1
        let alpha = c.attributes.float("alpha", default: 1), beta = c.attributes.float("beta", default: 1)
        guard a.rank == 2, b.rank == 2 else { throw c.invalid("Gemm needs 2-D A and B, got \(a.shape) and \(b.shape)") }
        let m = transA ? a.shape[1] : a.shape[0], k = transA ? a.shape[0] : a.shape[1]
        let n = transB ? b.shape[0] : b.shape[1]
        guard k == (transB ? b.shape[1] : b.shape[0]) else { throw c.invalid("inner dimensions differ: \(a.shape) and \(b.shape)") }
        let dtype = a.dtype
        if dtype != .float32 {
            a = Cast.convert(a, to: .float32)
            b = Cast.convert(b, to: .float32)
        }
        let hasBias = i.count > 2 && i[2] != nil
        let useBias = hasBias && beta != 0
        // Every path below writes all of the output: from C, or by a product that does not read
        // it (beta 0, or no C).
        let out = Tensor(uninitialized: .float32, shape: [m, n])
        if useBias, let bias = i[2] {
            let shape = try Broadcast.shape(bias.shape, [m, n])
            guard shape == [m, n], bias.rank <= 2 else { throw c.invalid("C of shape \(bias.shape) does not broadcast to [\(m), \(n)]") }
            // C's rows and columns are each 1 or the output's: fill the output row by row
            // (building a broadcast index per element cost a tenth of an MLP's time).
            let rows = bias.rank == 2 ? bias.shape[0] : 1, columns = bias.rank >= 1 ? bias.shape[bias.rank - 1] : 1
            Cast.convert(bias, to: .float32).withUnsafeBufferPointer(as: Float.self) { pb in
                out.withUnsafeMutableBufferPointer(as: Float.self) { po in
                    for row in 0..<m {
                        let target = po.baseAddress! + row * n
                        let source = pb.baseAddress! + (rows == 1 ? 0 : row * columns)
                        if columns == 1 { target.initialize(repeating: source[0], count: n) } else { target.initialize(from: source, count: n) }
                    }
                }
            }
        }
        // On a Haswell (or later) CPU with A not transposed: the packed product (B kept packed when
        // it is a weight). With alpha 1, beta · C is the product's residual and the Relu its
        // epilogue's, added as each value is stored (the same sum, pc + beta · C, as the pass after
        // it that alpha ≠ 1 takes). The MLP 784-512-256-10 at batch 64, best p50 of alternating
        // rounds: one thread 0.630 → 0.607 ms, two 0.355 → 0.329 (onnxruntime 0.614 and 0.338).
        if RowKernels.variant.hasAVX2, !transA, k > 0, let packed = weights?.packed(for: b, k: k, n: n, transposed: transB) {
            a.withUnsafeBufferPointer(as: Float.self) { pa in
                packed.withUnsafeBufferPointer(as: Float.self) { pb in
                    out.withUnsafeMutableBufferPointer(as: Float.self) { po in
                        if alpha == 1 {
                            if useBias, beta != 1 { for index in 0..<(m * n) { po[index] = beta * po[index] } }
                            PackedWeights.multiply(
                                pa.baseAddress!, rows: m, k: k, n: n, b: .packed(pb.baseAddress!), c: po.baseAddress!,
                                epilogue: .init(residual: useBias ? UnsafePointer(po.baseAddress!) : nil, relu: relu))
                            return
                        }
                        let product = UnsafeMutablePointer<Float>.allocate(capacity: m * n)
                        defer { product.deallocate() }
                        PackedWeights.multiply(pa.baseAddress!, rows: m, k: k, n: n, b: .packed(pb.baseAddress!), c: product)
                        for index in 0..<(m * n) {
                            let value = alpha * product[index] + (useBias ? beta * po[index] : 0)
                            po[index] = relu && value < 0 ? 0 : value
                        }
                    }
                }
            }
            return [Cast.convert(out, to: dtype)]
        }
        a.withUnsafeBufferPointer(as: Float.self) { pa in
            b.withUnsafeBufferPointer(as: Float.self) { pb in
                out.withUnsafeMutableBufferPointer(as: Float.self) { po in
                    GEMM.multiply(
                        m: m, n: n, k: k, alpha: alpha, a: pa.baseAddress!, transA: transA, b: pb.baseAddress!, transB: transB,
                        beta: hasBias ? beta : 0, c: po.baseAddress!)
                    if relu { reluFloat(po.baseAddress!, po.baseAddress!, count: po.count) }
                }
            }
        }
        return [Cast.convert(out, to: dtype)]
    }
}

/// numpy `matmul`'s shapes: 1-D operands are promoted (and the added axis dropped from the
/// result), batch axes broadcast; for each of the `batchCount` products, the index of its A
/// and B matrix.
struct MatMulShape {
    let m: Int, k: Int, n: Int
    let batchCount: Int
    let aOffsets: [Int], bOffsets: [Int]
    /// The result's shape, with the axes of promoted 1-D operands dropped.
    let outShape: [Int]
    /// The result's shape before they are dropped: batch + [m, n].
    let fullShape: [Int]

    init(_ a: [Int], _ b: [Int], _ context: KernelContext) throws {
        guard a.count >= 1, b.count >= 1 else { throw context.invalid("MatMul needs tensors of rank ≥ 1") }
        let aShape = a.count == 1 ? [1, a[0]] : a
        let bShape = b.count == 1 ? [b[0], 1] : b
        m = aShape[aShape.count - 2]
        k = aShape[aShape.count - 1]
        n = bShape[bShape.count - 1]
        guard bShape[bShape.count - 2] == k else { throw context.invalid("inner dimensions differ: \(a) and \(b)") }
        let batch = try Broadcast.shape(Array(aShape.dropLast(2)), Array(bShape.dropLast(2)))
        fullShape = batch + [m, n]
        batchCount = Tensor.count(of: batch)
        aOffsets = Broadcast.offsets(from: Array(aShape.dropLast(2)), to: batch)
        bOffsets = Broadcast.offsets(from: Array(bShape.dropLast(2)), to: batch)
        var out = fullShape
        if a.count == 1 { out.remove(at: out.count - 2) }
        if b.count == 1 { out.removeLast() }
        outShape = out
    }
}

/// numpy `matmul`: 1-D operands are promoted and the added axis dropped; batch axes broadcast.
func matmul(_ a: Tensor, _ b: Tensor, _ context: KernelContext, weights: PackedWeights? = nil) throws -> Tensor {
    let shape = try MatMulShape(a.shape, b.shape, context)
    // A 2-D float32 B on a Haswell (or later) CPU: packed (kept packed when it is a weight),
    // multiplied by the Haswell or AVX-512 kernels.
    if a.dtype == .float32, b.dtype == .float32, b.rank == 2, a.rank >= 2, RowKernels.variant.hasAVX2, shape.k > 0,
        let packed = weights?.packed(for: b, k: shape.k, n: shape.n)
    {
        let out = Tensor(uninitialized: .float32, shape: shape.fullShape)
        a.withUnsafeBufferPointer(as: Float.self) { pa in
            packed.withUnsafeBufferPointer(as: Float.self) { pb in
                out.withUnsafeMutableBufferPointer(as: Float.self) { po in
                    PackedWeights.multiply(
                        pa.baseAddress!, rows: shape.batchCount * shape.m, k: shape.k, n: shape.n, b: .packed(pb.baseAddress!), c: po.baseAddress!)
                }
            }
        }
        return out.reshaped(shape.outShape)
    }
    let (m, k, n, batchCount) = (shape.m, shape.k, shape.n, shape.batchCount)
    let (aOffsets, bOffsets) = (shape.aOffsets, shape.bOffsets)
    // Products of two activations (attention's Q·Kᵀ and P·V, one per head) on a Haswell (or
    // later) CPU: each B packed for its one call and multiplied by the same kernels; the threads
    // take whole products when there are enough of them, else split each one.
    if a.dtype == .float32, b.dtype == .float32, RowKernels.variant.hasAVX2, m > 0, k > 0, n > 0 {
        let out = Tensor(uninitialized: .float32, shape: shape.fullShape)
        PackedWeights.products(
            a, .init(bases: aOffsets.map { $0 * m * k }, rowStride: k), b, .init(bases: bOffsets.map { $0 * k * n }, rowStride: n),
            transposed: false, into: out, .init(bases: (0..<batchCount).map { $0 * m * n }, rowStride: n), m: m, k: k, n: n)
        return out.reshaped(shape.outShape)
    }
    let dtype = a.dtype
    let fa = dtype == .float32 ? a : Cast.convert(a, to: dtype == .float64 || Cast.isInteger(dtype) ? .float64 : .float32)
    let fb = dtype == .float32 ? b : Cast.convert(b, to: fa.dtype)
    let out: Tensor
    if fa.dtype == .float32 {
        out = Tensor(uninitialized: .float32, shape: shape.fullShape)
        fa.withUnsafeBufferPointer(as: Float.self) { pa in
            fb.withUnsafeBufferPointer(as: Float.self) { pb in
                out.withUnsafeMutableBufferPointer(as: Float.self) { po in
                    for index in 0..<batchCount {
                        GEMM.multiply(
                            m: m, n: n, k: k, a: pa.baseAddress! + aOffsets[index] * m * k,
                            b: pb.baseAddress! + bOffsets[index] * k * n, c: po.baseAddress! + index * m * n)
                    }
                }
            }
        }
    } else {
        // Double and integer products: exact-enough accumulation in Double.
        let x = fa.doubles(), y = fb.doubles()
        var values = [Double](repeating: 0, count: batchCount * m * n)
        for index in 0..<batchCount {
            let ao = aOffsets[index] * m * k, bo = bOffsets[index] * k * n, oo = index * m * n
            for row in 0..<m {
                for p in 0..<k {
                    let scale = x[ao + row * k + p]
                    for column in 0..<n { values[oo + row * n + column] += scale * y[bo + p * n + column] }
                }
            }
        }
        out = Cast.fromDoubles(values, dtype: dtype, shape: shape.fullShape)
    }
    return Cast.convert(out, to: dtype).reshaped(shape.outShape)
}

/// numpy `matmul` of `a` and `b` read through Transposes' `aPerm` and `bPerm` (nil: as they
/// are), the product written through a Transpose's `outPerm` — the heads of an attention layer,
/// whose Q, K and V are transposed into heads and whose context is transposed back
/// (`fuseTransposes`) — by `PackedWeights.products` with strides instead of transposed copies.
/// The same sums as transposing first, so the same bits. Nil where that does not apply: not
/// float32, no AVX2, batch axes that differ or broadcast, an operand or result whose rows are
/// not contiguous, a perm that is not one.
func transposedProduct(_ a: Tensor, _ aPerm: [Int]?, _ b: Tensor, _ bPerm: [Int]?, outPerm: [Int]?) -> Tensor? {
    guard a.dtype == .float32, b.dtype == .float32, RowKernels.variant.hasAVX2 else { return nil }
    /// A tensor's shape and steps seen through `perm`.
    func view(_ shape: [Int], _ perm: [Int]?) -> (shape: [Int], steps: [Int])? {
        let strides = Tensor.strides(of: shape)
        guard let perm else { return (shape, strides) }
        guard perm.sorted() == Array(0..<shape.count) else { return nil }
        return (perm.map { shape[$0] }, perm.map { strides[$0] })
    }
    guard let (aShape, aSteps) = view(a.shape, aPerm), let (bShape, bSteps) = view(b.shape, bPerm), aShape.count >= 2,
        aShape.count == bShape.count, aShape.dropLast(2) == bShape.dropLast(2)
    else { return nil }
    let rank = aShape.count
    let (m, k, n) = (aShape[rank - 2], aShape[rank - 1], bShape[rank - 1])
    guard bShape[rank - 2] == k, m > 0, k > 0, n > 0, aSteps[rank - 1] == 1, bSteps[rank - 1] == 1 || bSteps[rank - 2] == 1 else { return nil }
    // B's rows adjacent, or (K's heads, read as Kᵀ) its columns: packed from the transpose.
    let transposed = bSteps[rank - 1] != 1
    let productShape = Array(aShape.dropLast(2)) + [m, n]
    let outShape: [Int], cSteps: [Int]
    if let outPerm {
        guard let (shape, _) = view(productShape, outPerm) else { return nil }
        // Product axis outPerm[t] is the result's axis t.
        var steps = [Int](repeating: 0, count: rank)
        for (t, stride) in Tensor.strides(of: shape).enumerated() { steps[outPerm[t]] = stride }
        (outShape, cSteps) = (shape, steps)
    } else {
        (outShape, cSteps) = (productShape, Tensor.strides(of: productShape))
    }
    guard cSteps[rank - 1] == 1 else { return nil }
    let batch = Array(aShape.dropLast(2))
    /// Where each matrix of the batch starts, for steps `steps`.
    func bases(_ steps: [Int]) -> [Int] { stridedOffsets(shape: batch, base: 0, steps: Array(steps.prefix(batch.count))) }
    let out = Tensor(uninitialized: .float32, shape: outShape)
    PackedWeights.products(
        a, .init(bases: bases(aSteps), rowStride: aSteps[rank - 2]), b,
        .init(bases: bases(bSteps), rowStride: transposed ? bSteps[rank - 1] : bSteps[rank - 2]), transposed: transposed, into: out,
        .init(bases: bases(cSteps), rowStride: cSteps[rank - 2]), m: m, k: k, n: n)
    return out
}

/// A MatMul or Gemm node's B packed for `PackedGEMM` (VesselKernels). Every B is packed, so a
/// node's results are the same on its first run as on later ones; a B that comes back on the
/// next run (a weight) is kept packed. The first time a B is seen it is only remembered, weakly:
/// an intermediate is freed after its run and never matches, so only weights are kept.
final class PackedWeights: Sendable {
    private struct State: @unchecked Sendable {
        weak var seen: TensorStorage?
        var source: TensorStorage?
        var key: [Int] = []
        var packed: Tensor?
    }

    private let state = Mutex(State())

    /// op(B) — k×n, or n×k when `transposed` — packed.
    func packed(for b: Tensor, k: Int, n: Int, transposed: Bool = false) -> Tensor {
        packed(for: b, key: [k, n, transposed ? 1 : 0]) {
            let packed = Tensor(uninitialized: .float32, shape: [VesselKernelsHaswell.PackedGEMM.packedCount(k: k, n: n)])
            b.withUnsafeBufferPointer(as: Float.self) { pb in
                packed.withUnsafeMutableBufferPointer(as: Float.self) { pp in
                    VesselKernelsHaswell.PackedGEMM.pack(pb.baseAddress!, k: k, n: n, ldb: transposed ? k : n, transposed: transposed, into: pp.baseAddress!)
                }
            }
            return packed
        }
    }

    /// What `pack` makes of `b` (and whatever else `key` says), kept while `b` comes back.
    func packed(for b: Tensor, key: [Int], pack: () -> Tensor) -> Tensor {
        let storage = b.storage
        let (cached, keep): (Tensor?, Bool) = state.withLock { state in
            if let packed = state.packed, state.source === storage, state.key == key { return (packed, false) }
            if state.seen === storage { return (nil, true) }
            state.seen = storage
            return (nil, false)
        }
        if let cached { return cached }
        let packed = pack()
        if keep {
            state.withLock { state in
                state.source = storage
                state.key = key
                state.packed = packed
            }
        }
        return packed
    }

    /// Floats a packed k×n B takes.
    static func packedCount(k: Int, n: Int) -> Int { VesselKernelsHaswell.PackedGEMM.packedCount(k: k, n: n) }

    /// A per-row bias, a residual and a Relu applied to C's values as they are stored
    /// (`PackedGEMM.Epilogue`).
    typealias Epilogue = VesselKernelsHaswell.PackedGEMM.Epilogue

    /// Where `kernel` finds B's panels: packed (`pack`), or a row-major B (rows `ldb` apart) read in
    /// place, its partial last panel packed alone in `tail` (`PackedGEMM.Panels`).
    enum Panels {
        case packed(UnsafePointer<Float>)
        case inPlace(UnsafePointer<Float>, ldb: Int, tail: UnsafePointer<Float>)
    }

    /// C's rows `rows` and panels `panels` (C's rows `ldc`, else n, apart) on the calling thread, by the
    /// AVX-512 copy of `PackedGEMM` where the CPU has it, else the Haswell one.
    private static func kernel(
        _ a: UnsafePointer<Float>, lda: Int, b: Panels, k: Int, n: Int, c: UnsafeMutablePointer<Float>, ldc: Int? = nil,
        rows: Range<Int>, panels: Range<Int>, epilogue: Epilogue = .none
    ) {
        if RowKernels.variant == .avx512 {
            let source: VesselKernelsAVX512.PackedGEMM.Panels =
                switch b {
                case .packed(let packed): .packed(packed, k: k)
                case .inPlace(let b, let ldb, let tail): .inPlace(b, ldb: ldb, n: n, tail: tail)
                }
            VesselKernelsAVX512.PackedGEMM.multiply(
                a: a, lda: lda, b: source, k: k, n: n, c: c, ldc: ldc ?? n, rows: rows, panels: panels,
                epilogue: .init(bias: epilogue.bias, residual: epilogue.residual, relu: epilogue.relu))
        } else {
            let source: VesselKernelsHaswell.PackedGEMM.Panels =
                switch b {
                case .packed(let packed): .packed(packed, k: k)
                case .inPlace(let b, let ldb, let tail): .inPlace(b, ldb: ldb, n: n, tail: tail)
                }
            VesselKernelsHaswell.PackedGEMM.multiply(
                a: a, lda: lda, b: source, k: k, n: n, c: c, ldc: ldc ?? n, rows: rows, panels: panels,
                epilogue: .init(bias: epilogue.bias, residual: epilogue.residual, relu: epilogue.relu))
        }
    }

    /// C = A · op(B) for a B used once: op(B) packed into `scratch` (`packedCount` floats; the
    /// threads share the panels), then `multiply`. With `inPlace` (a row-major B the caller wrote
    /// or reads once: a convolution's image or im2col columns) the AVX-512 copy reads B where it
    /// lies and packs only a partial last panel (`PackedGEMM.Panels`). That saves copying B;
    /// SqueezeNet, one thread, best p50 of six alternating rounds: 7.65 → 7.51 ms, its 128→16
    /// pointwise product over 55×55 0.184 → 0.167 ms; ResNet-50 76.0 → 75.6; DenseNet-121 57.5
    /// → 57.1. The Haswell copy's 6×16 blocks lost that way (ResNet-50 82.5 → 89.6 ms), so it packs.
    static func packAndMultiply(
        _ a: UnsafePointer<Float>, lda: Int? = nil, rows: Int, k: Int, n: Int, b: UnsafePointer<Float>, ldb: Int, transposed: Bool,
        scratch: UnsafeMutablePointer<Float>, c: UnsafeMutablePointer<Float>, ldc: Int, threads: Int, epilogue: Epilogue = .none,
        inPlace: Bool = false
    ) {
        if inPlace, !transposed, RowKernels.variant == .avx512 {
            VesselKernelsAVX512.PackedGEMM.packTail(b, k: k, n: n, ldb: ldb, into: scratch)
            multiply(
                a, lda: lda, rows: rows, k: k, n: n, b: .inPlace(b, ldb: ldb, tail: scratch), c: c, ldc: ldc, threads: threads,
                epilogue: epilogue)
            return
        }
        let panels = (n + VesselKernelsHaswell.PackedGEMM.panelWidth - 1) / VesselKernelsHaswell.PackedGEMM.panelWidth
        Parallel.chunks(panels, minimum: max(1, 16_384 / (16 * k)), threads: threads) { range in
            if RowKernels.variant == .avx512 {
                VesselKernelsAVX512.PackedGEMM.pack(b, k: k, n: n, ldb: ldb, transposed: transposed, into: scratch, panels: range)
            } else {
                VesselKernelsHaswell.PackedGEMM.pack(b, k: k, n: n, ldb: ldb, transposed: transposed, into: scratch, panels: range)
            }
        }
        multiply(a, lda: lda, rows: rows, k: k, n: n, b: .packed(scratch), c: c, ldc: ldc, threads: threads, epilogue: epilogue)
    }

    /// Where each of a batch of matrices starts in its tensor (in floats) and how far apart its
    /// rows are; its columns are adjacent.
    struct Layout {
        let bases: [Int]
        let rowStride: Int
    }

    /// The batch of products C[i] = A[i] · B[i] (m×k by k×n; B[i] given n×k when `transposed`,
    /// its rows then `b.rowStride` apart), each B packed for its one call: whole products per
    /// thread when there are enough of them, each split across the threads when not. The layouts
    /// let the matrices be strided views (a Transpose's input read in place, `fuseTransposes`);
    /// every element is the same in-order sum whatever the layout.
    static func products(
        _ a: Tensor, _ aLayout: Layout, _ b: Tensor, _ bLayout: Layout, transposed: Bool, into out: Tensor, _ cLayout: Layout, m: Int, k: Int,
        n: Int
    ) {
        let batchCount = cLayout.bases.count
        let packedCount = VesselKernelsHaswell.PackedGEMM.packedCount(k: k, n: n)
        a.withUnsafeBufferPointer(as: Float.self) { pa in
            b.withUnsafeBufferPointer(as: Float.self) { pb in
                out.withUnsafeMutableBufferPointer(as: Float.self) { po in
                    let perItem = batchCount >= 2 * Parallel.threads
                    Parallel.chunks(batchCount, minimum: perItem ? max(1, GEMM.splitWork / (m * n * k)) : batchCount) { items in
                        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: packedCount)
                        defer { scratch.deallocate() }
                        for index in items {
                            packAndMultiply(
                                pa.baseAddress! + aLayout.bases[index], lda: aLayout.rowStride, rows: m, k: k, n: n,
                                b: pb.baseAddress! + bLayout.bases[index], ldb: bLayout.rowStride, transposed: transposed, scratch: scratch,
                                c: po.baseAddress! + cLayout.bases[index], ldc: cLayout.rowStride, threads: perItem ? 1 : Parallel.threads)
                        }
                    }
                }
            }
        }
    }

    /// C (rows×n) = A (rows×k) · B's panels, split across the intra-op threads by blocks of rows
    /// (six, or eight for the AVX-512 copy), or by 16-column panels (pairs for AVX-512) when
    /// there are few rows. Every element is summed in the same order whatever the split and
    /// whichever copy, so the result does not depend on the thread count or the CPU's AVX-512.
    static func multiply(
        _ a: UnsafePointer<Float>, lda: Int? = nil, rows: Int, k: Int, n: Int, b: Panels, c: UnsafeMutablePointer<Float>, ldc: Int? = nil,
        threads: Int = Parallel.threads, epilogue: Epilogue = .none
    ) {
        let ldc = ldc ?? n, lda = lda ?? k
        let wide = RowKernels.variant == .avx512
        let width = VesselKernelsHaswell.PackedGEMM.panelWidth, panels = (n + width - 1) / width
        let rowUnit = wide ? 8 : 6, panelUnit = wide ? 2 : 1
        func run(_ rowRange: Range<Int>, _ panelRange: Range<Int>) {
            kernel(a, lda: lda, b: b, k: k, n: n, c: c, ldc: ldc, rows: rowRange, panels: panelRange, epilogue: epilogue)
        }
        let rowBlocks = (rows + rowUnit - 1) / rowUnit
        // Row blocks when there are plenty and B is no wider than A is tall: each thread then
        // streams all of B. With fewer rows than B's columns (a sentence of 128 tokens against a
        // 384×1536 weight) the threads take panels instead, each streaming its share of B past
        // all of the (smaller) A: MiniLM 1×128 at two threads, alternating, 8.04–8.29 → 7.77–7.98
        // ms. Every element is the same sum either way.
        if rowBlocks >= 2 * threads, rows >= n || threads == 1 {
            Parallel.chunks(rowBlocks, minimum: max(1, GEMM.splitWork / max(rowUnit * k * n, 1)), threads: threads) { blocks in
                run(blocks.lowerBound * rowUnit..<min(rows, blocks.upperBound * rowUnit), 0..<panels)
            }
        } else {
            // A few rows stream B once from memory: splitting its panels pays at a quarter of the
            // usual work (an MLP layer at batch 1, 784×512: 1.6 MB of weights).
            let units = (panels + panelUnit - 1) / panelUnit, work = rows < 8 ? GEMM.splitWork / 4 : GEMM.splitWork
            Parallel.chunks(units, minimum: max(1, work / max(rows * k * width * panelUnit, 1)), threads: threads) { range in
                run(0..<rows, range.lowerBound * panelUnit..<min(panels, range.upperBound * panelUnit))
            }
        }
    }
}
