import VesselKernels
import VesselKernelsAVX512
import VesselKernelsHaswell
import VesselTensor

/// The integer products quantized models are made of: `MatMulInteger` and `ConvInteger` (what
/// `onnxruntime.quantization.quantize_dynamic` emits beside `DynamicQuantizeLinear`), and
/// `QLinearMatMul` and `QLinearConv` (the operator form of `quantize_static`).
///
/// Operands are widened to Int32 with their zero points subtracted, products accumulate in
/// Int32 (wrapping, as onnxruntime's do), and the QLinear forms requantize each sum once:
/// `round_half_even(sum · a_scale·b_scale / y_scale) + y_zero_point`, saturated to the output
/// type. Integer sums do not depend on their order, so results are the same at any thread count.
extension KernelRegistry {
    static func registerIntegerProducts(_ r: inout KernelRegistry) {
        r.registerPrepared("MatMulInteger", since: 10) { _ in
            let weights = PackedWeights()
            return { c, i in
                let a = try c.input(i, 0), b = try c.input(i, 1)
                let product = try IntegerProducts.matmul(a, b, aZero: i.count > 2 ? i[2] : nil, bZero: i.count > 3 ? i[3] : nil, c, weights: weights)
                return [Tensor(product.sums, shape: product.shape)]
            }
        }
        r.register("QLinearMatMul", since: 10, qLinearMatMulKernel)
        r.register("ConvInteger", since: 10, convIntegerKernel)
        r.register("QLinearConv", since: 10, qLinearConvKernel)
    }

    static func qLinearMatMulKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let a = try c.input(i, 0), aScale = try c.input(i, 1), aZero = try c.input(i, 2)
        let b = try c.input(i, 3), bScale = try c.input(i, 4), bZero = try c.input(i, 5)
        let yScale = try c.input(i, 6), yZero = try c.input(i, 7)
        let product = try IntegerProducts.matmul(a, b, aZero: aZero, bZero: bZero, c)
        let n = product.shape.last ?? 1
        let multipliers = try IntegerProducts.multipliers(
            aScale, bScale, yScale, columns: n, bName: "b_scale", what: "columns of B", c)
        let zero = try IntegerProducts.scalar(yZero, "y_zero_point", c)
        let values = IntegerProducts.requantize(product.sums, multiplier: { multipliers[multipliers.count == 1 ? 0 : $0 % n] }, zero: zero)
        return [try IntegerProducts.output(values, dtype: yZero.dtype, shape: product.shape, c)]
    }

    static func convIntegerKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let x = try c.input(i, 0), w = try c.input(i, 1)
        let result = try IntegerProducts.convolution(x, w, xZero: i.count > 2 ? i[2] : nil, wZero: i.count > 3 ? i[3] : nil, bias: nil, c)
        return [Tensor(result.sums, shape: result.shape)]
    }

    static func qLinearConvKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let x = try c.input(i, 0), xScale = try c.input(i, 1), xZero = try c.input(i, 2)
        let w = try c.input(i, 3), wScale = try c.input(i, 4), wZero = try c.input(i, 5)
        let yScale = try c.input(i, 6), yZero = try c.input(i, 7)
        let bias = i.count > 8 ? i[8] : nil
        let result = try IntegerProducts.convolution(x, w, xZero: xZero, wZero: wZero, bias: bias, c)
        let filters = w.shape[0], spatial = result.shape.count > 2 ? result.shape[2...].reduce(1, *) : 1
        let multipliers = try IntegerProducts.multipliers(
            xScale, wScale, yScale, columns: filters, bName: "w_scale", what: "output channels", c)
        let zero = try IntegerProducts.scalar(yZero, "y_zero_point", c)
        let values = IntegerProducts.requantize(
            result.sums, multiplier: { multipliers[multipliers.count == 1 ? 0 : ($0 / spatial) % filters] }, zero: zero)
        return [try IntegerProducts.output(values, dtype: yZero.dtype, shape: result.shape, c)]
    }
}

enum IntegerProducts {
    /// The 8-bit types the integer products take.
    static func checkEightBit(_ t: Tensor, _ name: String, _ c: KernelContext) throws {
        guard t.dtype == .int8 || t.dtype == .uint8 else { throw c.invalid("\(name) must be int8 or uint8, got \(t.dtype)") }
    }

    /// A tensor's values as Int32.
    static func widened(_ t: Tensor) -> [Int32] {
        switch t.dtype {
        case .int8: t.scalars(as: Int8.self).map(Int32.init)
        case .uint8: t.scalars(as: UInt8.self).map(Int32.init)
        default: t.integers().map { Int32(truncatingIfNeeded: $0) }
        }
    }

    /// A zero point or scale that must hold one value.
    static func scalar(_ t: Tensor, _ name: String, _ c: KernelContext) throws -> Double {
        guard t.count == 1 else { throw c.invalid("\(name) must hold one value (per-tensor), got shape \(t.shape)") }
        return t.doubles()[0]
    }

    /// Zero points for `count` rows or columns: one value for all, or one each.
    static func zeroPoints(_ t: Tensor?, _ name: String, like operand: Tensor, count: Int, what: String, _ c: KernelContext) throws -> [Int32] {
        guard let t else { return [0] }
        guard t.dtype == operand.dtype else { throw c.invalid("\(name) must have its operand's type \(operand.dtype), got \(t.dtype)") }
        guard t.count == 1 || (t.rank == 1 && t.count == count) else {
            throw c.invalid("\(name) must hold one value or one per \(what) (\(count)), got shape \(t.shape)")
        }
        return widened(t)
    }

    /// C = A·B for int32 rows: `a` m×k, `b` k×n, `c` m×n, rows of C split across the threads.
    static func multiply(m: Int, n: Int, k: Int, a: UnsafePointer<Int32>, b: UnsafePointer<Int32>, c: UnsafeMutablePointer<Int32>) {
        Parallel.chunks(m, minimum: max(1, 65_536 / max(n * k, 1))) { rows in
            for i in rows {
                let out = c + i * n
                out.initialize(repeating: 0, count: n)
                for p in 0..<k {
                    let scale = a[i * k + p]
                    if scale == 0 { continue }
                    let row = b + p * n
                    for j in 0..<n { out[j] &+= scale &* row[j] }
                }
            }
        }
    }

    /// numpy-style batched matmul of two 8-bit tensors less their zero points (a's per row, b's
    /// per column), as Int32 sums — and, with an `epilogue`, as the floats it writes: with a 2-D B
    /// each thread converts the sums it computed, else they are converted after.
    static func matmul(
        _ a: Tensor, _ b: Tensor, aZero: Tensor?, bZero: Tensor?, _ c: KernelContext, weights: PackedWeights? = nil,
        epilogue: FloatEpilogue? = nil
    ) throws -> (sums: [Int32], shape: [Int]) {
        try checkEightBit(a, "A", c)
        try checkEightBit(b, "B", c)
        let shape = try MatMulShape(a.shape, b.shape, c)
        let (m, k, n) = (shape.m, shape.k, shape.n)
        try c.checkAllocation(.int32, shape.fullShape)
        let aZeros = try zeroPoints(aZero, "a_zero_point", like: a, count: m, what: "row of A", c)
        let bZeros = try zeroPoints(bZero, "b_zero_point", like: b, count: n, what: "column of B", c)
        // A 2-D B (a weight, as quantize_dynamic writes them): the packed byte product on a CPU
        // with AVX2 (`vpdpbusd` where there is AVX-512 VNNI), else the packed Int16 product —
        // the same sums either way.
        if b.rank == 2, a.rank >= 2, k > 0, n > 0 {
            let rows = shape.batchCount * m
            if RowKernels.variant.hasAVX2 {
                let sums = quadProduct(a, b, aZeros: aZeros, bZeros: bZeros, rows: rows, m: m, k: k, n: n, weights: weights, epilogue: epilogue)
                return (sums, shape.outShape)
            }
            let sums = packedProduct(a, b, aZeros: aZeros, bZeros: bZeros, rows: rows, m: m, k: k, n: n, weights: weights, epilogue: epilogue)
            return (sums, shape.outShape)
        }
        var left = widened(a), right = widened(b)
        for index in left.indices { left[index] -= aZeros[aZeros.count == 1 ? 0 : (index / k) % m] }
        for index in right.indices { right[index] -= bZeros[bZeros.count == 1 ? 0 : index % n] }
        let (aOffsets, bOffsets, batchCount) = (shape.aOffsets, shape.bOffsets, shape.batchCount)
        var sums = [Int32](repeating: 0, count: batchCount * m * n)
        left.withUnsafeBufferPointer { pa in
            right.withUnsafeBufferPointer { pb in
                sums.withUnsafeMutableBufferPointer { pc in
                    for index in 0..<batchCount where m * n > 0 {
                        multiply(
                            m: m, n: n, k: k, a: pa.baseAddress! + aOffsets[index] * m * k, b: pb.baseAddress! + bOffsets[index] * k * n,
                            c: pc.baseAddress! + index * m * n)
                    }
                }
            }
        }
        return (finished(sums, n: n, epilogue), shape.outShape)
    }

    /// `sums`, after `epilogue` (if any) has written them as floats.
    static func finished(_ sums: [Int32], n: Int, _ epilogue: FloatEpilogue?) -> [Int32] {
        guard let epilogue, n > 0 else { return sums }
        sums.withUnsafeBufferPointer { epilogue.apply($0.baseAddress!, n: n, rows: 0..<(sums.count / n), columns: 0..<n) }
        return sums
    }

    /// A (rows×k, rows in batches of m) · B (k×n, packed once per weight) through
    /// `IntegerGEMM`, on CPUs without AVX2: both less their zero points as Int16, sums in
    /// Int32. Each thread widens the rows of A it multiplies and writes the floats of a fused
    /// product from the sums it computed, while they are in its cache.
    static func packedProduct(
        _ a: Tensor, _ b: Tensor, aZeros: [Int32], bZeros: [Int32], rows: Int, m: Int, k: Int, n: Int, weights: PackedWeights?,
        epilogue: FloatEpilogue? = nil
    ) -> [Int32] {
        guard rows > 0 else { return [] }
        // B less its zero points, packed as Int8 where every value fits (symmetric int8
        // weights: half the bytes to stream), else as Int16.
        let pack = {
            let right = widened(b)
            var shifted = [Int16](repeating: 0, count: k * n)
            var fitsBytes = true
            for p in 0..<k {
                for j in 0..<n {
                    let value = right[p * n + j] - bZeros[bZeros.count == 1 ? 0 : j]
                    shifted[p * n + j] = Int16(truncatingIfNeeded: value)
                    fitsBytes = fitsBytes && Int32(Int8.min)...Int32(Int8.max) ~= value
                }
            }
            let count = IntegerGEMM.packedCount(k: k, n: n)
            if fitsBytes {
                let packed = Tensor(uninitialized: .int8, shape: [count])
                let narrow = shifted.map { Int8(truncatingIfNeeded: $0) }
                narrow.withUnsafeBufferPointer { pb in
                    packed.withUnsafeMutableBufferPointer(as: Int8.self) { pp in
                        IntegerGEMM.pack(pb.baseAddress!, k: k, n: n, into: pp.baseAddress!)
                    }
                }
                return packed
            }
            let packed = Tensor(uninitialized: .int16, shape: [count])
            shifted.withUnsafeBufferPointer { pb in
                packed.withUnsafeMutableBufferPointer(as: Int16.self) { pp in
                    IntegerGEMM.pack(pb.baseAddress!, k: k, n: n, into: pp.baseAddress!)
                }
            }
            return packed
        }
        // The key holds the zero points too: a packed B is B less them.
        let packed = weights?.packed(for: b, key: [k, n, b.dtype == .int8 ? 1 : 0] + bZeros.map(Int.init), pack: pack) ?? pack()
        let depth = IntegerGEMM.pairedDepth(k), signed = a.dtype == .int8, narrowB = packed.dtype == .int8
        let za = (0..<rows).map { aZeros[aZeros.count == 1 ? 0 : $0 % m] }
        // Every value of the widened A and every sum are written before they are read.
        var left = [Int16](unsafeUninitializedCapacity: rows * depth) { _, count in count = rows * depth }
        var sums = [Int32](unsafeUninitializedCapacity: rows * n) { _, count in count = rows * n }
        let panels = (n + IntegerGEMM.panelWidth - 1) / IntegerGEMM.panelWidth
        bytes(of: a) { source in
            za.withUnsafeBufferPointer { pz in
                left.withUnsafeMutableBufferPointer { pa in
                    rawValues(of: packed) { b in
                        sums.withUnsafeMutableBufferPointer { pc in
                            let (a, c, zeros) = (pa.baseAddress!, pc.baseAddress!, pz.baseAddress!)
                            func widen(_ rowRange: Range<Int>) {
                                IntegerGEMM.widen(source, signed: signed, k: k, zeros: zeros, rows: rowRange, into: a)
                            }
                            func block(_ rowRange: Range<Int>, _ panelRange: Range<Int>) {
                                IntegerGEMM.multiply(a: a, packed: b, bytes: narrowB, k: k, n: n, c: c, rows: rowRange, panels: panelRange)
                                epilogue?.apply(
                                    c, n: n, rows: rowRange,
                                    columns: (panelRange.lowerBound * IntegerGEMM.panelWidth)..<min(
                                        n, panelRange.upperBound * IntegerGEMM.panelWidth))
                            }
                            // Few rows (a sentence or two): A widened once, the threads take
                            // pairs of panels, each reading half of B; else blocks of four rows
                            // (the kernel's), each thread widening its own.
                            let work = max(1, 65_536 / max(depth * IntegerGEMM.panelWidth, 1))
                            if rows <= 32 {
                                widen(0..<rows)
                                Parallel.chunks((panels + 1) / 2, minimum: max(1, work / max(rows, 1))) { pairs in
                                    block(0..<rows, (pairs.lowerBound * 2)..<min(panels, pairs.upperBound * 2))
                                }
                            } else {
                                Parallel.chunks((rows + 3) / 4, minimum: max(1, work / max(panels * 4, 1))) { blocks in
                                    let rowRange = (blocks.lowerBound * 4)..<min(rows, blocks.upperBound * 4)
                                    widen(rowRange)
                                    block(rowRange, 0..<panels)
                                }
                            }
                        }
                    }
                }
            }
        }
        return sums
    }

    /// A (rows×k, rows in batches of m) · B (k×n, packed once per weight) through `QuadGEMM`
    /// (AVX-512 VNNI's or the Haswell copy's): A as unsigned and B as signed bytes, the zero
    /// points applied to the sums.
    static func quadProduct(
        _ a: Tensor, _ b: Tensor, aZeros: [Int32], bZeros: [Int32], rows: Int, m: Int, k: Int, n: Int, weights: PackedWeights?,
        epilogue: FloatEpilogue? = nil
    ) -> [Int32] {
        guard rows > 0 else { return [] }
        typealias Layout = VesselKernels.QuadGEMM
        let variant = RowKernels.variant
        let columns = Layout.paddedColumns(n), packedBytes = Layout.packedCount(k: k, n: n), panels = columns / Layout.panelWidth
        // B′ = B as signed bytes (a uint8 B less 128, its zero points with it), packed; after the
        // bytes, per column u = Σ B′ − k·zb′, then zb′ (Int32s, padded to whole panels), then the
        // fixes' panel starts and their triples (none for AVX-512's exact `vpdpbusd`).
        let bShift: Int32 = b.dtype == .uint8 ? 128 : 0
        let pack = {
            var signed = [Int8](repeating: 0, count: k * n)
            var u = [Int32](repeating: 0, count: columns), zb = u
            if b.dtype == .uint8 {
                b.withUnsafeBufferPointer(as: UInt8.self) { pb in
                    for index in 0..<(k * n) { signed[index] = Int8(bitPattern: pb[index] ^ 0x80) }
                }
            } else {
                b.withUnsafeBufferPointer(as: Int8.self) { pb in signed = Array(pb) }
            }
            for j in 0..<n {
                var sum: Int32 = 0
                for p in 0..<k { sum &+= Int32(signed[p * n + j]) }
                zb[j] = bZeros[bZeros.count == 1 ? 0 : j] &- bShift
                u[j] = sum &- Int32(truncatingIfNeeded: k) &* zb[j]
            }
            var bytes = [Int8](repeating: 0, count: packedBytes)
            let fixes = Layout.pack(signed, k: k, n: n, into: &bytes, boundPairs: variant != .avx512)
            let terms = u + zb + fixes.starts + fixes.values
            let packed = Tensor(uninitialized: .int8, shape: [packedBytes + 4 * terms.count])
            packed.withUnsafeMutableBufferPointer(as: Int8.self) { pp in
                bytes.withUnsafeBytes { UnsafeMutableRawPointer(pp.baseAddress!).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                terms.withUnsafeBytes { UnsafeMutableRawPointer(pp.baseAddress! + packedBytes).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            }
            return packed
        }
        let packed = weights?.packed(for: b, key: [k, n, b.dtype == .int8 ? 1 : 0, 4] + bZeros.map(Int.init), pack: pack) ?? pack()
        // A′ = A as unsigned bytes (an int8 A plus 128, its zero points with it), rows zero-padded
        // to whole quads; a uint8 A whose rows are whole quads is read where it lies.
        let depth = Layout.quadDepth(k), aShift: Int32 = a.dtype == .int8 ? 128 : 0
        var copy: [UInt8] = []
        if a.dtype == .int8 || depth != k {
            copy = [UInt8](repeating: 0, count: rows * depth)
            bytes(of: a) { pa in
                let flip: UInt8 = a.dtype == .int8 ? 0x80 : 0
                for row in 0..<rows {
                    for p in 0..<k { copy[row * depth + p] = pa[row * k + p] ^ flip }
                }
            }
        }
        let za = (0..<rows).map { aZeros[aZeros.count == 1 ? 0 : $0 % m] &+ aShift }
        // Every sum is written by the kernel: no need to zero them first.
        var rowSums = [Int32](repeating: 0, count: rows)
        var sums = [Int32](unsafeUninitializedCapacity: rows * n) { _, count in count = rows * n }
        func run(_ a: UnsafePointer<UInt8>) {
            packed.withUnsafeBufferPointer(as: Int8.self) { pb in
                let terms = UnsafeRawPointer(pb.baseAddress! + packedBytes).assumingMemoryBound(to: Int32.self)
                let (u, zb, fixStarts) = (terms, terms + columns, terms + 2 * columns)
                let fixes = fixStarts + panels + 1
                za.withUnsafeBufferPointer { pz in
                    rowSums.withUnsafeMutableBufferPointer { pr in
                        sums.withUnsafeMutableBufferPointer { pc in
                            let (b, c, zas, sumsOfA) = (pb.baseAddress!, pc.baseAddress!, pz.baseAddress!, pr.baseAddress!)
                            if variant == .avx512 {
                                VesselKernelsAVX512.QuadGEMM.rowSums(a, lda: depth, depth: depth, rows: 0..<rows, into: sumsOfA)
                            } else {
                                VesselKernelsHaswell.QuadGEMM.rowSums(a, lda: depth, depth: depth, rows: 0..<rows, into: sumsOfA)
                            }
                            func block(_ rowRange: Range<Int>, _ panelRange: Range<Int>) {
                                if variant == .avx512 {
                                    VesselKernelsAVX512.QuadGEMM.multiply(
                                        a: a, lda: depth, packed: b, k: k, n: n, c: c, za: zas, rowSum: sumsOfA, u: u, zb: zb,
                                        fixStarts: fixStarts, fixes: fixes, rows: rowRange, panels: panelRange)
                                } else {
                                    VesselKernelsHaswell.QuadGEMM.multiply(
                                        a: a, lda: depth, packed: b, k: k, n: n, c: c, za: zas, rowSum: sumsOfA, u: u, zb: zb,
                                        fixStarts: fixStarts, fixes: fixes, rows: rowRange, panels: panelRange)
                                }
                                // The floats of a fused product, by the thread that has the sums in cache.
                                epilogue?.apply(
                                    c, n: n, rows: rowRange,
                                    columns: (panelRange.lowerBound * Layout.panelWidth)..<min(n, panelRange.upperBound * Layout.panelWidth))
                            }
                            // Few rows (a sentence or two): the threads take pairs of panels, each reading half
                            // of B; else blocks of eight rows, each thread's in tiles whose A stays in the L2
                            // cache (128 KiB) while the panels of B pass by.
                            let work = max(1, 65_536 / max(depth * Layout.panelWidth, 1))
                            if rows <= 32 {
                                Parallel.chunks((panels + 1) / 2, minimum: max(1, work / max(rows, 1))) { pairs in
                                    block(0..<rows, (pairs.lowerBound * 2)..<min(panels, pairs.upperBound * 2))
                                }
                            } else {
                                let tile = max(8, 131_072 / depth & ~7)
                                Parallel.chunks((rows + 7) / 8, minimum: max(1, work / max(panels * 8, 1))) { blocks in
                                    let rowRange = (blocks.lowerBound * 8)..<min(rows, blocks.upperBound * 8)
                                    for start in stride(from: rowRange.lowerBound, to: rowRange.upperBound, by: tile) {
                                        block(start..<min(rowRange.upperBound, start + tile), 0..<panels)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        if copy.isEmpty {
            bytes(of: a) { run($0) }
        } else {
            copy.withUnsafeBufferPointer { run($0.baseAddress!) }
        }
        return sums
    }

    /// Int32 sums to float32 as a fused `MatMulInteger` + `Cast` + `Mul` (+ `Add`) writes them:
    /// each sum rounded to float, times its factor (one, or one per column), plus its column's
    /// bias — the separate kernels' roundings in their order.
    struct FloatEpilogue {
        let factors: [Float]
        let bias: [Float]?
        let output: UnsafeMutablePointer<Float>

        func apply(_ sums: UnsafePointer<Int32>, n: Int, rows: Range<Int>, columns: Range<Int>) {
            let variant = RowKernels.variant
            factors.withUnsafeBufferPointer { f in
                withBias { bias in
                    for row in rows {
                        let (source, target, perColumn) = (sums + row * n, output + row * n, f.count > 1)
                        switch variant {
                        case .avx512:
                            VesselKernelsAVX512.QuantizeKernels.scaleSums(
                                source, target, columns: columns, factors: f.baseAddress!, perColumn: perColumn, bias: bias)
                        case .haswell:
                            VesselKernelsHaswell.QuantizeKernels.scaleSums(
                                source, target, columns: columns, factors: f.baseAddress!, perColumn: perColumn, bias: bias)
                        default:
                            VesselKernels.QuantizeKernels.scaleSums(
                                source, target, columns: columns, factors: f.baseAddress!, perColumn: perColumn, bias: bias)
                        }
                    }
                }
            }
        }

        private func withBias(_ body: (UnsafePointer<Float>?) -> Void) {
            guard let bias else { return body(nil) }
            bias.withUnsafeBufferPointer { body($0.baseAddress!) }
        }
    }

    /// `matmul` written as floats by `FloatEpilogue` into a new float32 tensor.
    static func matmulToFloat(
        _ a: Tensor, _ b: Tensor, aZero: Tensor?, bZero: Tensor?, factors: [Float], bias: [Float]?, _ c: KernelContext, weights: PackedWeights?
    ) throws -> Tensor {
        let shape = try MatMulShape(a.shape, b.shape, c)
        try c.checkAllocation(.float32, shape.fullShape)
        let y = Tensor(uninitialized: .float32, shape: shape.outShape)
        try y.withUnsafeMutableBufferPointer(as: Float.self) { py in
            let epilogue = FloatEpilogue(factors: factors, bias: bias, output: py.baseAddress!)
            _ = try matmul(a, b, aZero: aZero, bZero: bZero, c, weights: weights, epilogue: epilogue)
        }
        return y
    }

    /// A packed B's values (Int8 or Int16) where they lie.
    static func rawValues<R>(of t: Tensor, _ body: (UnsafeRawPointer) -> R) -> R {
        if t.dtype == .int8 { return t.withUnsafeBufferPointer(as: Int8.self) { body(UnsafeRawPointer($0.baseAddress!)) } }
        return t.withUnsafeBufferPointer(as: Int16.self) { body(UnsafeRawPointer($0.baseAddress!)) }
    }

    /// An 8-bit tensor's bytes as they lie.
    static func bytes<R>(of t: Tensor, _ body: (UnsafePointer<UInt8>) -> R) -> R {
        if t.dtype == .uint8 { return t.withUnsafeBufferPointer(as: UInt8.self) { body($0.baseAddress!) } }
        return t.withUnsafeBufferPointer(as: Int8.self) { body(UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: UInt8.self)) }
    }

    /// Convolution of 8-bit x and w less their zero points (x's per tensor, w's per tensor or
    /// per output channel), plus an int32 bias, as Int32 sums: im2col in Int32 (padding reads
    /// zero, which is the zero point once subtracted), then one integer product per image and
    /// group. Attributes as Conv's.
    static func convolution(
        _ x: Tensor, _ w: Tensor, xZero: Tensor?, wZero: Tensor?, bias: Tensor?, _ c: KernelContext
    ) throws -> (
        sums: [Int32], shape: [Int]
    ) {
        try checkEightBit(x, "x", c)
        try checkEightBit(w, "w", c)
        guard x.rank >= 3, w.rank == x.rank else { throw c.invalid("x and w must have the same rank ≥ 3, got \(x.shape) and \(w.shape)") }
        let group = c.attributes.int("group", default: 1)
        let (batch, channels, filters, channelsPerGroup) = (x.shape[0], x.shape[1], w.shape[0], w.shape[1])
        guard group >= 1, channels == channelsPerGroup * group, filters % group == 0 else {
            throw c.invalid("x has \(channels) channels, w expects \(channelsPerGroup) × group \(group) and \(filters) filters")
        }
        let kernel = c.attributes.ints("kernel_shape") ?? Array(w.shape[2...])
        guard kernel == Array(w.shape[2...]) else { throw c.invalid("kernel_shape \(kernel) differs from the weights' shape \(w.shape)") }
        let g = try WindowGeometry(input: Array(x.shape[2...]), kernel: kernel, attributes: c.attributes, context: c)
        let outShape = [batch, filters] + g.output
        try c.checkAllocation(.int32, outShape)
        let spatial = g.output.reduce(1, *), inputSpatial = g.input.reduce(1, *), kernelSize = kernel.reduce(1, *)
        let rows = channelsPerGroup * kernelSize, filtersPerGroup = filters / group
        try c.checkAllocation(.int32, [rows, spatial])
        let xZeros = try zeroPoints(xZero, "x_zero_point", like: x, count: 1, what: "tensor", c)
        let wZeros = try zeroPoints(wZero, "w_zero_point", like: w, count: filters, what: "output channel", c)
        let biases: [Int32]?
        if let bias {
            guard bias.dtype == .int32, bias.shape == [filters] else {
                throw c.invalid("B must be int32 of shape [\(filters)], got \(bias.dtype) \(bias.shape)")
            }
            biases = bias.scalars(as: Int32.self)
        } else {
            biases = nil
        }
        var image = widened(x), weights = widened(w)
        for index in image.indices { image[index] -= xZeros[0] }
        for index in weights.indices { weights[index] -= wZeros[wZeros.count == 1 ? 0 : index / rows] }
        let taps = im2colOffsets(g)
        var sums = [Int32](repeating: 0, count: batch * filters * spatial)
        var columns = [Int32](repeating: 0, count: rows * spatial)
        image.withUnsafeBufferPointer { px in
            weights.withUnsafeBufferPointer { pw in
                sums.withUnsafeMutableBufferPointer { po in
                    columns.withUnsafeMutableBufferPointer { pc in
                        for n in 0..<batch {
                            for gi in 0..<group {
                                let source = px.baseAddress! + (n * channels + gi * channelsPerGroup) * inputSpatial
                                for channel in 0..<channelsPerGroup {
                                    for tap in 0..<kernelSize {
                                        let row = pc.baseAddress! + (channel * kernelSize + tap) * spatial
                                        let plane = source + channel * inputSpatial
                                        for s in 0..<spatial {
                                            let offset = taps[tap * spatial + s]
                                            row[s] = offset < 0 ? 0 : plane[offset]
                                        }
                                    }
                                }
                                let target = po.baseAddress! + (n * filters + gi * filtersPerGroup) * spatial
                                if spatial > 0 {
                                    multiply(
                                        m: filtersPerGroup, n: spatial, k: rows, a: pw.baseAddress! + gi * filtersPerGroup * rows,
                                        b: pc.baseAddress!, c: target)
                                }
                                if let biases {
                                    for f in 0..<filtersPerGroup {
                                        let add = biases[gi * filtersPerGroup + f]
                                        for s in 0..<spatial { target[f * spatial + s] &+= add }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return (sums, outShape)
    }

    /// The requantization multipliers a_scale · b_scale / y_scale, computed in the scales' type
    /// (float32, or float16 rounded at each step) as the reference does: one, or one per column
    /// (per output channel) when b's scale is per column.
    static func multipliers(
        _ aScale: Tensor, _ bScale: Tensor, _ yScale: Tensor, columns: Int, bName: String, what: String, _ c: KernelContext
    ) throws -> [Double] {
        let a = try scalar(aScale, "the first operand's scale", c), y = try scalar(yScale, "y_scale", c)
        guard bScale.count == 1 || (bScale.rank == 1 && bScale.count == columns) else {
            throw c.invalid("\(bName) must hold one value or one per \(what) (\(columns)), got shape \(bScale.shape)")
        }
        let half = aScale.dtype == .float16
        return bScale.doubles().map { b in
            if half {
                let product = Float(Float16(Float(a) * Float(b)))
                return Double(Float(Float16(product / Float(y))))
            }
            return Double(Float(a) * Float(b) / Float(y))
        }
    }

    /// Each sum times its multiplier, rounded half to even, plus the zero point.
    static func requantize(_ sums: [Int32], multiplier: (Int) -> Double, zero: Double) -> [Double] {
        sums.indices.map { index in (Double(sums[index]) * multiplier(index)).rounded(.toNearestOrEven) + zero }
    }

    /// Values saturated to the 8-bit output type.
    static func output(_ values: [Double], dtype: DType, shape: [Int], _ c: KernelContext) throws -> Tensor {
        guard let (low, high) = quantizationRange(dtype), dtype == .int8 || dtype == .uint8 else {
            throw c.invalid("y_zero_point must be int8 or uint8, got \(dtype)")
        }
        return Cast.fromDoubles(values.map { Swift.min(Swift.max($0, low), high) }, dtype: dtype, shape: shape)
    }
}
