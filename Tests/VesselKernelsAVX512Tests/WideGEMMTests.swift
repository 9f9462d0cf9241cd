import Foundation
import Testing
import VesselKernelsAVX512
import VesselKernelsHaswell

/// Whether this CPU runs the AVX-512 copy: the flags VesselONNX asks for before picking it.
enum WideCPU {
    static var runnable: Bool {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
            let flags = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
        else { return false }
        let names = Set(flags.split(separator: " ").map(String.init))
        return ["avx2", "fma", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl", "avx512_vnni"].allSatisfy(names.contains)
    }
}

/// A small deterministic generator, so a failure names a reproducible case.
struct Lcg {
    var state: UInt64
    mutating func next() -> UInt64 {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return state >> 33
    }
}

/// The AVX-512 GEMMs: the float product bit for bit against the Haswell copy's, the byte product
/// against plain integer sums. Runs only on a CPU with AVX-512 VNNI.
@Suite("AVX-512 GEMM kernels", .enabled(if: WideCPU.runnable))
struct WideGEMMTests {
    @Test("the 8×32 float blocks give the Haswell copy's bits, at row remainders, odd panels, ragged edges and split ranges")
    func floatProductMatchesHaswell() {
        var random = Lcg(state: 7)
        for (rows, k, n) in [(1, 1, 1), (3, 5, 17), (8, 64, 32), (13, 37, 33), (17, 300, 100), (50, 384, 48), (9, 16, 31), (64, 7, 64)] {
            let a = (0..<(rows * k)).map { _ in Float(Int(random.next() % 2001) - 1000) / 997 }
            let b = (0..<(k * n)).map { _ in Float(Int(random.next() % 2001) - 1000) / 1009 }
            var packed = [Float](repeating: .nan, count: VesselKernelsHaswell.PackedGEMM.packedCount(k: k, n: n))
            VesselKernelsHaswell.PackedGEMM.pack(b, k: k, n: n, ldb: n, transposed: false, into: &packed)
            let panels = (n + 15) / 16
            var narrow = [Float](repeating: .nan, count: rows * n), wide = narrow, split = narrow
            VesselKernelsHaswell.PackedGEMM.multiply(a: a, lda: k, packed: packed, k: k, n: n, c: &narrow, ldc: n, rows: 0..<rows, panels: 0..<panels)
            VesselKernelsAVX512.PackedGEMM.multiply(a: a, lda: k, packed: packed, k: k, n: n, c: &wide, ldc: n, rows: 0..<rows, panels: 0..<panels)
            // Ranges that start on odd rows and odd panels, as thread splits may.
            let rowCut = rows / 3, panelCut = panels / 2 | 1
            for (r, p) in [(0..<rowCut, 0..<min(panelCut, panels)), (rowCut..<rows, 0..<min(panelCut, panels))] + [
                (0..<rows, min(panelCut, panels)..<panels)
            ] {
                split.withUnsafeMutableBufferPointer {
                    VesselKernelsAVX512.PackedGEMM.multiply(a: a, lda: k, packed: packed, k: k, n: n, c: $0.baseAddress!, ldc: n, rows: r, panels: p)
                }
            }
            #expect(wide.map(\.bitPattern) == narrow.map(\.bitPattern), "\(rows)×\(k)·\(k)×\(n)")
            #expect(split.map(\.bitPattern) == narrow.map(\.bitPattern), "\(rows)×\(k)·\(k)×\(n) split")
            // And both are the product: against Double sums.
            var worst: Double = 0
            for i in 0..<rows {
                for j in 0..<n {
                    var sum = 0.0
                    for p in 0..<k { sum += Double(a[i * k + p]) * Double(b[p * n + j]) }
                    worst = max(worst, abs(Double(wide[i * n + j]) - sum))
                }
            }
            #expect(worst < 1e-4 * Double(k), "\(rows)×\(k)·\(k)×\(n): off by \(worst)")
        }
    }

    @Test("the epilogue's bias and Relu give the bits of a pass after the product, in both copies")
    func epilogue() {
        var random = Lcg(state: 5)
        for (rows, k, n) in [(1, 3, 5), (8, 27, 32), (13, 37, 49), (17, 64, 100), (6, 16, 16)] {
            let a = (0..<(rows * k)).map { _ in Float(Int(random.next() % 2001) - 1000) / 997 }
            let b = (0..<(k * n)).map { _ in Float(Int(random.next() % 2001) - 1000) / 1009 }
            // A bias of -0 keeps a product of -0 at -0, a NaN bias gives NaN through the Relu.
            let bias = (0..<rows).map { r -> Float in r == 1 ? .nan : r == 2 ? -0.0 : Float(Int(random.next() % 201) - 100) / 50 }
            var packed = [Float](repeating: .nan, count: VesselKernelsHaswell.PackedGEMM.packedCount(k: k, n: n))
            VesselKernelsHaswell.PackedGEMM.pack(b, k: k, n: n, ldb: n, transposed: false, into: &packed)
            let panels = (n + 15) / 16
            for relu in [false, true] {
                var plain = [Float](repeating: .nan, count: rows * n), narrow = plain, wide = plain
                VesselKernelsHaswell.PackedGEMM.multiply(a: a, lda: k, packed: packed, k: k, n: n, c: &plain, ldc: n, rows: 0..<rows, panels: 0..<panels)
                let expected = plain.indices.map { i -> Float in
                    let v = plain[i] + bias[i / n]
                    return relu && v < 0 ? 0 : v
                }
                bias.withUnsafeBufferPointer { pb in
                    VesselKernelsHaswell.PackedGEMM.multiply(
                        a: a, lda: k, packed: packed, k: k, n: n, c: &narrow, ldc: n, rows: 0..<rows, panels: 0..<panels,
                        epilogue: .init(bias: pb.baseAddress, relu: relu))
                    VesselKernelsAVX512.PackedGEMM.multiply(
                        a: a, lda: k, packed: packed, k: k, n: n, c: &wide, ldc: n, rows: 0..<rows, panels: 0..<panels,
                        epilogue: .init(bias: pb.baseAddress, relu: relu))
                }
                #expect(narrow.map(\.bitPattern) == expected.map(\.bitPattern), "Haswell \(rows)×\(k)·\(k)×\(n), relu \(relu)")
                #expect(wide.map(\.bitPattern) == expected.map(\.bitPattern), "AVX-512 \(rows)×\(k)·\(k)×\(n), relu \(relu)")
            }
        }
    }

    @Test("B read in place, a partial last panel packed alone, gives the packed product's bits in both copies")
    func panelsInPlace() {
        var random = Lcg(state: 11)
        // (rows, k, n, row length of B): whole panels, a tail of 1 to 15 columns, an odd pair,
        // and B a column block of a wider matrix (a convolution's image from a block's first position).
        for (rows, k, n, ldb) in [
            (16, 128, 64, 64), (16, 96, 3025 % 256, 3025), (13, 37, 49, 49), (8, 5, 17, 40), (50, 64, 48, 200), (3, 7, 1, 9), (24, 33, 95, 95)
        ] {
            let a = (0..<(rows * k)).map { _ in Float(Int(random.next() % 2001) - 1000) / 997 }
            let b = (0..<(k * ldb)).map { _ in Float(Int(random.next() % 2001) - 1000) / 1009 }
            let bias = (0..<rows).map { _ in Float(Int(random.next() % 201) - 100) / 50 }
            let offset = ldb - n  // the block's columns are the last n of each row
            var packed = [Float](repeating: .nan, count: VesselKernelsHaswell.PackedGEMM.packedCount(k: k, n: n))
            VesselKernelsHaswell.PackedGEMM.pack(Array(b[offset...]), k: k, n: n, ldb: ldb, transposed: false, into: &packed)
            var tail = [Float](repeating: .nan, count: 16 * k)
            VesselKernelsAVX512.PackedGEMM.packTail(Array(b[offset...]), k: k, n: n, ldb: ldb, into: &tail)
            let panels = (n + 15) / 16
            var expected = [Float](repeating: .nan, count: rows * n), wide = expected, narrow = expected, split = expected
            b.withUnsafeBufferPointer { pb in
                bias.withUnsafeBufferPointer { pbias in
                    let epilogue = VesselKernelsAVX512.PackedGEMM.Epilogue(bias: pbias.baseAddress, relu: true)
                    VesselKernelsAVX512.PackedGEMM.multiply(
                        a: a, lda: k, packed: packed, k: k, n: n, c: &expected, ldc: n, rows: 0..<rows, panels: 0..<panels, epilogue: epilogue)
                    let source = VesselKernelsAVX512.PackedGEMM.Panels.inPlace(pb.baseAddress! + offset, ldb: ldb, n: n, tail: tail)
                    VesselKernelsAVX512.PackedGEMM.multiply(
                        a: a, lda: k, b: source, k: k, n: n, c: &wide, ldc: n, rows: 0..<rows, panels: 0..<panels, epilogue: epilogue)
                    // Ranges that start on odd rows and odd panels, as thread splits may.
                    let rowCut = rows / 3, panelCut = panels / 2 | 1
                    for (r, p) in [
                        (0..<rowCut, 0..<min(panelCut, panels)), (rowCut..<rows, 0..<min(panelCut, panels)), (0..<rows, min(panelCut, panels)..<panels)
                    ] {
                        split.withUnsafeMutableBufferPointer {
                            VesselKernelsAVX512.PackedGEMM.multiply(
                                a: a, lda: k, b: source, k: k, n: n, c: $0.baseAddress!, ldc: n, rows: r, panels: p, epilogue: epilogue)
                        }
                    }
                    VesselKernelsHaswell.PackedGEMM.multiply(
                        a: a, lda: k, b: .inPlace(pb.baseAddress! + offset, ldb: ldb, n: n, tail: tail), k: k, n: n, c: &narrow, ldc: n,
                        rows: 0..<rows, panels: 0..<panels, epilogue: .init(bias: pbias.baseAddress, relu: true))
                }
            }
            #expect(expected.allSatisfy { !$0.isNaN }, "\(rows)×\(k)·\(k)×\(n)")
            #expect(wide.map(\.bitPattern) == expected.map(\.bitPattern), "AVX-512 \(rows)×\(k)·\(k)×\(n), rows \(ldb) apart")
            #expect(split.map(\.bitPattern) == expected.map(\.bitPattern), "AVX-512 \(rows)×\(k)·\(k)×\(n), rows \(ldb) apart, split")
            #expect(narrow.map(\.bitPattern) == expected.map(\.bitPattern), "Haswell \(rows)×\(k)·\(k)×\(n), rows \(ldb) apart")
        }
    }

    @Test("max pooling planes give the Haswell copy's bits, padded or not, and stop at a NaN in any row as it does")
    func maxPlane() {
        var random = Lcg(state: 3)
        for (height, width, kernel, stride, pad) in [
            (111, 111, 3, 2, 0), (27, 27, 3, 2, 0), (13, 13, 3, 1, 0), (40, 70, 2, 2, 0), (12, 35, 5, 3, 0), (56, 56, 3, 2, 1), (17, 33, 3, 2, 1),
            (9, 16, 3, 2, 0), (10, 47, 3, 2, 1), (8, 17, 3, 2, 0)
        ] {
            // The clipped input range of each output, as pool2D describes it.
            func bounds(_ size: Int) -> [Int] {
                (0..<((size + 2 * pad - kernel) / stride + 1)).flatMap { o -> [Int] in
                    let start = o * stride - pad
                    return [max(start, 0), max(max(start, 0), min(start + kernel, size))]
                }
            }
            let rows = bounds(height), columns = bounds(width)
            let (outHeight, outWidth) = (rows.count / 2, columns.count / 2)
            let inside = (0..<outWidth).filter { columns[2 * $0 + 1] - columns[2 * $0] == kernel }
            // Signed zeros among values at most zero, so many windows' max is a zero and a choice
            // between equal values made in another order shows; then values with no ties, so a
            // window that read a wrong column shows.
            for zeros in [true, false] {
                let values = (0..<(height * width)).map { i -> Float in
                    zeros && i % 11 == 3 ? -0.0 : zeros && i % 13 == 5 ? 0 : -Float(random.next() % 100_000) / 7
                }
                // A NaN in a middle row, and in the last row read (a window's last row only).
                for place in [nil, (height / 2) * width + width - 2, (rows[2 * outHeight - 1] - 1) * width + 1] {
                    let nan = place != nil
                    var input = values
                    if let place { input[place] = .nan }
                    var scratch = [Float](repeating: 0, count: width + 32)
                    var narrow = [Float](repeating: .nan, count: outHeight * outWidth), wide = narrow
                    let done = [
                        VesselKernelsHaswell.WindowKernels.maxPlane(
                            input, height: height, width: width, rowBounds: rows, outHeight: outHeight, columnBounds: columns, outWidth: outWidth,
                            inside: inside.first!..<(inside.last! + 1), stride: stride, kernel: kernel, columnsMax: &scratch, into: &narrow),
                        VesselKernelsAVX512.WindowKernels.maxPlane(
                            input, height: height, width: width, rowBounds: rows, outHeight: outHeight, columnBounds: columns, outWidth: outWidth,
                            inside: inside.first!..<(inside.last! + 1), stride: stride, kernel: kernel, columnsMax: &scratch, into: &wide)
                    ]
                    let label = "\(height)×\(width) kernel \(kernel) stride \(stride) pad \(pad)\(nan ? " with a NaN" : "")\(zeros ? " with zeros" : "")"
                    #expect(done == [!nan, !nan], "\(label)")
                    if !nan { #expect(wide.map(\.bitPattern) == narrow.map(\.bitPattern), "\(label)") }
                }
            }
        }
    }

    @Test("narrow max pooling planes through the padded copy give the Haswell copy's values")
    func maxPlanePadded() {
        var random = Lcg(state: 5)
        for (height, width, kernel, stride, pad) in [(14, 14, 3, 1, 1), (7, 7, 3, 1, 1), (14, 14, 3, 2, 0), (9, 5, 2, 3, 1)] {
            let input = (0..<(height * width)).map { _ in Float(Int(random.next() % 2001) - 1000) / 7 }
            let outHeight = (height + 2 * pad - kernel) / stride + 1, outWidth = (width + 2 * pad - kernel) / stride + 1
            let rows = (outHeight - 1) * stride + kernel, columns = (outWidth - 1) * stride + kernel
            var results: [[Float]] = []
            for avx512 in [false, true] {
                var padded = [Float](repeating: -.infinity, count: rows * columns + 16)
                var columnsMax = [Float](repeating: -.infinity, count: outHeight * columns + 48 + kernel)
                var out = [Float](repeating: .nan, count: outHeight * outWidth)
                let done =
                    avx512
                    ? VesselKernelsAVX512.WindowKernels.maxPlanePadded(
                        input, height: height, width: width, top: pad, left: pad, outHeight: outHeight, outWidth: outWidth, kernel: (kernel, kernel),
                        strides: (stride, stride), padded: &padded, columnsMax: &columnsMax, into: &out)
                    : VesselKernelsHaswell.WindowKernels.maxPlanePadded(
                        input, height: height, width: width, top: pad, left: pad, outHeight: outHeight, outWidth: outWidth, kernel: (kernel, kernel),
                        strides: (stride, stride), padded: &padded, columnsMax: &columnsMax, into: &out)
                #expect(done)
                results.append(out)
            }
            #expect(results[0] == results[1], "\(height)×\(width) kernel \(kernel) stride \(stride) pad \(pad)")
        }
    }

    @Test("plane means give the Haswell copy's bits, planes shorter and longer than sixteen, with and without a tail")
    func planeMeans() {
        var random = Lcg(state: 17)
        for inner in [1, 7, 16, 49, 169, 200] {
            let count = 5
            // Magnitudes 1e-3 to 1e5 with both signs, and in each plane of more than one value ±2⁶⁰
            // at two places (lanes) that vary: a double sum that meets one of those before the
            // other loses the small values added to it, so another order of the sixteen sums
            // shows in the mean.
            var values = (0..<(inner * count)).map { _ in
                Float(Int(random.next() % 2001) - 1000) * [1e-6, 1e-2, 1, 100][Int(random.next() % 4)]
            }
            for plane in 0..<count where inner > 1 {
                let first = Int(random.next() % UInt64(inner)), second = (first + 1 + Int(random.next() % UInt64(inner - 1))) % inner
                values[plane * inner + first] = 0x1p60
                values[plane * inner + second] = -0x1p60
            }
            var narrow = [Float](repeating: .nan, count: count), wide = narrow
            VesselKernelsHaswell.WindowKernels.planeMeans(values, inner: inner, count: count, into: &narrow)
            VesselKernelsAVX512.WindowKernels.planeMeans(values, inner: inner, count: count, into: &wide)
            #expect(wide.map(\.bitPattern) == narrow.map(\.bitPattern), "\(inner) values a plane")
        }
    }

    @Test("strided gathers and im2col rows give the Haswell copy's values, through masked loads at the ends")
    func gatherAndIm2col() {
        let source = (0..<300).map { Float($0) * 0.5 - 7 }
        for count in [1, 5, 16, 17, 31, 40, 100] {
            for limit in [2 * count - 1, 2 * count, 2 * count + 40] where limit <= source.count {
                var narrow = [Float](repeating: -1, count: count + 8), wide = narrow
                VesselKernelsHaswell.WindowKernels.gather(source, stride: 2, count: count, limit: limit, into: &narrow)
                VesselKernelsAVX512.WindowKernels.gather(source, stride: 2, count: count, limit: limit, into: &wide)
                #expect(wide == narrow, "count \(count), limit \(limit)")
            }
        }
        let (height, width) = (30, 29)
        let image = (0..<(4 * height * width)).map { Float($0 % 113) }
        for stride in [1, 2, 3] {
            let outWidth = (width + 2 - 3) / stride + 1, outHeight = (height + 2 - 3) / stride + 1
            let positions = 3..<(outHeight * outWidth - 2)
            var narrow = [Float](repeating: .nan, count: 36 * positions.count), wide = narrow
            VesselKernelsHaswell.WindowKernels.im2col(
                image, height: height, width: width, outWidth: outWidth, kernel: (3, 3), strides: (stride, stride), dilations: (1, 1),
                padding: (1, 1), channels: 0..<4, positions: positions, into: &narrow, rowLength: positions.count)
            VesselKernelsAVX512.WindowKernels.im2col(
                image, height: height, width: width, outWidth: outWidth, kernel: (3, 3), strides: (stride, stride), dilations: (1, 1),
                padding: (1, 1), channels: 0..<4, positions: positions, into: &wide, rowLength: positions.count)
            #expect(wide == narrow, "stride \(stride)")
        }
    }

    @Test("byte sums of rows of any depth, through whole and masked loads")
    func rowSums() {
        var random = Lcg(state: 11)
        for depth in [4, 8, 60, 64, 68, 128, 200, 1536] {
            let rows = 3
            let a = (0..<(rows * depth)).map { _ in UInt8(random.next() % 256) }
            var sums = [Int32](repeating: -1, count: rows)
            VesselKernelsAVX512.QuadGEMM.rowSums(a, lda: depth, depth: depth, rows: 0..<rows, into: &sums)
            let expected = (0..<rows).map { r in a[(r * depth)..<((r + 1) * depth)].reduce(Int32(0)) { $0 + Int32($1) } }
            #expect(sums == expected, "depth \(depth)")
        }
    }

    @Test("the u8·s8 product less per-row and per-column zero points equals plain integer sums")
    func byteProduct() {
        var random = Lcg(state: 3)
        for (rows, k, n) in [(1, 1, 1), (1, 4, 16), (3, 5, 17), (8, 64, 32), (13, 37, 33), (17, 300, 100), (9, 384, 48), (20, 1536, 40)] {
            let depth = VesselKernelsAVX512.QuadGEMM.quadDepth(k), columns = VesselKernelsAVX512.QuadGEMM.paddedColumns(n)
            let a = (0..<(rows * k)).map { _ in UInt8(random.next() % 256) }
            let b = (0..<(k * n)).map { _ in Int8(truncatingIfNeeded: random.next()) }
            let za = (0..<rows).map { _ in Int32(random.next() % 256) }
            var zb = [Int32](repeating: 0, count: columns)
            for j in 0..<n { zb[j] = Int32(random.next() % 256) - 128 }
            var padded = [UInt8](repeating: 0, count: rows * depth)
            for r in 0..<rows { for p in 0..<k { padded[r * depth + p] = a[r * k + p] } }
            var packed = [Int8](repeating: 99, count: VesselKernelsAVX512.QuadGEMM.packedCount(k: k, n: n))
            let fixes = VesselKernelsAVX512.QuadGEMM.pack(b, k: k, n: n, into: &packed, boundPairs: false)
            var u = [Int32](repeating: 0, count: columns)
            for j in 0..<n { u[j] = (0..<k).reduce(Int32(0)) { $0 + Int32(b[$1 * n + j]) } - Int32(k) * zb[j] }
            var rowSum = [Int32](repeating: 0, count: rows)
            VesselKernelsAVX512.QuadGEMM.rowSums(padded, lda: depth, depth: depth, rows: 0..<rows, into: &rowSum)
            var c = [Int32](repeating: -7, count: rows * n)
            let panels = columns / 16
            // In pieces, as the threads split it: rows at an odd cut, panels at an odd one.
            for (r, p) in [(0..<(rows / 2), 0..<panels), ((rows / 2)..<rows, 0..<(panels / 2 | 1)), ((rows / 2)..<rows, (panels / 2 | 1)..<panels)] {
                c.withUnsafeMutableBufferPointer {
                    VesselKernelsAVX512.QuadGEMM.multiply(
                        a: padded, lda: depth, packed: packed, k: k, n: n, c: $0.baseAddress!, za: za, rowSum: rowSum, u: u, zb: zb,
                        fixStarts: fixes.starts, fixes: fixes.values, rows: r, panels: p.clamped(to: 0..<panels))
                }
            }
            var expected = [Int32](repeating: 0, count: rows * n)
            for i in 0..<rows {
                for j in 0..<n {
                    var sum: Int32 = 0
                    for p in 0..<k { sum += (Int32(a[i * k + p]) - za[i]) * (Int32(b[p * n + j]) - zb[j]) }
                    expected[i * n + j] = sum
                }
            }
            #expect(c == expected, "\(rows)×\(k)·\(k)×\(n)")
        }
    }
}

/// The sixteen-lane row kernels against the Haswell copy's eight.
@Suite("AVX-512 row kernels", .enabled(if: WideCPU.runnable))
struct WideRowKernelTests {
    static let input: [Float] =
        [0, -0, 1, -1, 0.5, 3.99, 4.01, -87.4, 88.8, 1000, -1000, .nan, .infinity, -.infinity, 1e-30, -1e-30]
        + (0..<4_099).map { Float(($0 * 7_919) % 20_011) / 500 - 20 }

    @Test("exp, erf and sigmoid give the Haswell copy's bits, ragged ends and ranges that start mid-tensor included")
    func elementwise() {
        let x = Self.input
        for (wide, narrow) in [
            (VesselKernelsAVX512.RowKernels.Unary.exp, VesselKernelsHaswell.RowKernels.Unary.exp), (.erf, .erf), (.sigmoid, .sigmoid)
        ] {
            var a = [Float](repeating: 7, count: x.count), b = a
            VesselKernelsAVX512.RowKernels.map(wide, x, &a, range: 0..<32)
            a.withUnsafeMutableBufferPointer { VesselKernelsAVX512.RowKernels.map(wide, x, $0.baseAddress!, range: 32..<x.count) }
            VesselKernelsHaswell.RowKernels.map(narrow, x, &b, range: 0..<x.count)
            #expect(a.map(\.bitPattern) == b.map(\.bitPattern), "\(wide)")
        }
    }

    @Test("softmax and layer normalization rows agree with the Haswell copy's within rounding, at sizes off the lane width")
    func rows() {
        for size in [1, 7, 16, 33, 384] {
            let rows = 5, x = Array(Self.input.dropFirst(16).prefix(rows * size))
            let scale = (0..<size).map { Float($0 % 7) * 0.25 + 0.5 }, bias = (0..<size).map { Float($0 % 5) - 2 }
            for log in [false, true] {
                var a = [Float](repeating: 0, count: x.count), b = a
                VesselKernelsAVX512.RowKernels.softmaxRows(x, &a, rows: 0..<rows, size: size, log: log)
                VesselKernelsHaswell.RowKernels.softmaxRows(x, &b, rows: 0..<rows, size: size, log: log)
                let worst = zip(a, b).map { abs($0 - $1) / max(abs($1), 1e-3) }.max() ?? 0
                #expect(worst < 1e-5, "softmax size \(size) log \(log): \(worst)")
            }
            var a = [Float](repeating: 0, count: x.count), b = a
            VesselKernelsAVX512.RowKernels.layerNormRows(
                x, &a, rows: 0..<rows, size: size, epsilon: 1e-5, scale: scale, bias: bias, means: nil, inverseStd: nil)
            VesselKernelsHaswell.RowKernels.layerNormRows(
                x, &b, rows: 0..<rows, size: size, epsilon: 1e-5, scale: scale, bias: bias, means: nil, inverseStd: nil)
            let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
            #expect(worst < 1e-4, "layer norm size \(size): \(worst)")
        }
    }
}

/// The AVX-512 copy's half conversions against the Haswell copy's (itself held to Swift's own).
@Suite("AVX-512 half conversions", .enabled(if: WideCPU.runnable))
struct WideHalfTests {
    @Test("every half widens, and floats across the half range narrow, to the Haswell copy's bits")
    func halves() {
        let all = (0...UInt16.max).map { Float16(bitPattern: $0) }
        var a = [Float](repeating: 0, count: all.count), b = a
        VesselKernelsAVX512.HalfConversion.widen(all, &a, count: all.count)
        VesselKernelsHaswell.HalfConversion.widen(all, &b, count: all.count)
        #expect(a.map(\.bitPattern) == b.map(\.bitPattern))
        // Every float16 value, the midpoints between neighbours, and floats beyond the range.
        var floats = b.filter { !$0.isNaN }
        floats += zip(floats.dropFirst(), floats).map { ($0 + $1) / 2 }
        floats += [70_000, -1e30, .infinity, .nan, 65_519.99, 65_520, 1e-9, -6e-8] + (0..<1_000).map { Float($0) * 1e-3 - 0.5 }
        var narrowA = [Float16](repeating: 0, count: floats.count), narrowB = narrowA
        VesselKernelsAVX512.HalfConversion.narrow(floats, &narrowA, count: floats.count)
        VesselKernelsHaswell.HalfConversion.narrow(floats, &narrowB, count: floats.count)
        #expect(narrowA.map(\.bitPattern) == narrowB.map(\.bitPattern))
    }
}
