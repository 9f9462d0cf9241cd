import Foundation
import Testing

#if HASWELL
import VesselKernelsHaswell
#else
import VesselKernels
#endif

/// Whether this CPU runs the copy under test.
enum KernelCPU {
    static var runnable: Bool {
        #if HASWELL
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
            let flags = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
        else { return false }
        let names = Set(flags.split(separator: " ").map(String.init))
        return names.contains("avx2") && names.contains("fma")
        #else
        return true
        #endif
    }
}

/// The row kernels against Double's libm. This file is compiled into two test targets, once
/// against each copy of the kernels (VesselKernelsHaswellTests defines HASWELL, and runs only
/// on a CPU with AVX2 and FMA).
@Suite("row kernels", .enabled(if: KernelCPU.runnable))
struct RowKernelTests {
    typealias Lanes = RowKernels.Lanes

    static func map(_ function: RowKernels.Unary, _ input: [Float]) -> [Float] {
        var output = [Float](repeating: 0, count: input.count)
        input.withUnsafeBufferPointer { x in
            output.withUnsafeMutableBufferPointer {
                RowKernels.map(function, x.baseAddress!, $0.baseAddress!, range: 0..<x.count)
            }
        }
        return output
    }

    @Test("the vectorized exp is within 2 ulp of Double's exp over the whole float range, with exact edges")
    func exp() {
        var worst = 0.0
        var x = -87.3
        while x < 88.7 {
            let lanes = Lanes((0..<Lanes.scalarCount).map { Float(x + Double($0) * 1e-3) })
            let got = RowKernels.exp(lanes)
            for k in 0..<Lanes.scalarCount {
                let input = Double(lanes[k]), expected = Foundation.exp(input)
                let ulp = Double(Float(expected).ulp)
                worst = max(worst, abs(Double(got[k]) - expected) / ulp)
            }
            x += 0.0173
        }
        #expect(worst <= 2, "worst error \(worst) ulp")
        var edgeInputs = Lanes(repeating: 0)
        for (k, value) in [Float(-200), -88, 0, 1, 89, 1000, .nan, -.infinity].enumerated() { edgeInputs[k] = value }
        let edges = RowKernels.exp(edgeInputs)
        #expect(edges[0] == 0 && edges[1] == 0 && edges[2] == 1 && abs(edges[3] - 2.7182817) < 1e-6)
        #expect(edges[4] == .infinity && edges[5] == .infinity && edges[6].isNaN && edges[7] == 0)
    }

    @Test("softmax and layer normalization rows equal the double-precision reference")
    func rows() {
        let rows = 37, size = 203  // not multiples of eight: the scalar tails run too
        var state: UInt64 = 5
        func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        let input = (0..<(rows * size)).map { _ in Float(Double(next() % 20_000) / 1000 - 10) }
        let scale = (0..<size).map { Float($0 % 7) * 0.25 + 0.5 }, bias = (0..<size).map { Float($0 % 5) - 2 }
        var softmax = [Float](repeating: 0, count: input.count), normalized = softmax
        input.withUnsafeBufferPointer { x in
            softmax.withUnsafeMutableBufferPointer { RowKernels.softmaxRows(x.baseAddress!, $0.baseAddress!, rows: 0..<rows, size: size, log: false) }
            normalized.withUnsafeMutableBufferPointer {
                RowKernels.layerNormRows(
                    x.baseAddress!, $0.baseAddress!, rows: 0..<rows, size: size, epsilon: 1e-5, scale: scale, bias: bias, means: nil, inverseStd: nil)
            }
        }
        for row in 0..<rows {
            let values = input[(row * size)..<((row + 1) * size)].map(Double.init)
            let peak = values.max()!, exps = values.map { Foundation.exp($0 - peak) }, total = exps.reduce(0, +)
            let mean = values.reduce(0, +) / Double(size)
            let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(size)
            for k in 0..<size {
                #expect(abs(Double(softmax[row * size + k]) - exps[k] / total) <= 1e-6 * max(1, exps[k] / total * 10))
                let expected = (values[k] - mean) / (variance + 1e-5).squareRoot() * Double(scale[k]) + Double(bias[k])
                #expect(abs(Double(normalized[row * size + k]) - expected) <= 1e-5 * max(1, abs(expected)))
            }
        }
    }

    @Test("the vectorized sigmoid and elementwise map agree with Double's, tails included")
    func sigmoidMap() {
        let input = (0..<1_003).map { Float($0 - 501) * 0.05 } + [.nan, .infinity, -.infinity]
        let output = Self.map(.sigmoid, input)
        for (x, y) in zip(input, output) where x.isFinite {
            let expected = 1 / (1 + Foundation.exp(-Double(x)))
            #expect(abs(Double(y) - expected) <= 2.5e-7 * max(expected, 1e-30) + 1e-37, "sigmoid(\(x)) = \(y), expected \(expected)")
        }
        #expect(output[1_003].isNaN && output[1_004] == 1 && output[1_005] == 0)
    }

    @Test("the vectorized erf agrees with Double's erf within 3e-7, relatively near zero; NaN and the infinities as libm")
    func erf() {
        let input = (0..<4_001).map { Float($0 - 2_000) * 0.0025 } + [1e-6, -3e-5, 0.999_9, 1.000_1, 3.999, 4.001, 9, .nan, .infinity, -.infinity]
        let output = Self.map(.erf, input)
        for (x, y) in zip(input, output) where x.isFinite {
            let expected = Foundation.erf(Double(x))
            #expect(abs(Double(y) - expected) <= 3e-7 * max(abs(expected), 1e-3), "erf(\(x)) = \(y), expected \(expected)")
        }
        let n = input.count
        #expect(output[n - 3].isNaN && output[n - 2] == 1 && output[n - 1] == -1)
    }
}

/// The packed-weights product against a Double product, for every remainder of rows (6, 4, 2,
/// 1), a partial last panel, and a last panel of at most 8 columns in 8-row blocks; the same
/// result however rows and panels are split.
@Suite("packed GEMM", .enabled(if: KernelCPU.runnable))
struct PackedGEMMTests {
    @Test("C = A·B for packed B, plain or transposed, any split of rows and panels giving the same bits")
    func products() {
        for (m, n, k, transposed) in [
            (13, 37, 29, false), (6, 16, 8, true), (1, 5, 384, false), (17, 48, 1, true), (29, 33, 70, false), (7, 100, 50, false), (1, 80, 33, true)
        ] {
            let a = (0..<(m * k)).map { Float(($0 * 37 % 101) - 50) / 25 }
            let b = (0..<(k * n)).map { Float(($0 * 53 % 97) - 48) / 24 }
            var packed = [Float](repeating: .nan, count: PackedGEMM.packedCount(k: k, n: n))
            b.withUnsafeBufferPointer { pb in
                packed.withUnsafeMutableBufferPointer {
                    PackedGEMM.pack(pb.baseAddress!, k: k, n: n, ldb: transposed ? k : n, transposed: transposed, into: $0.baseAddress!)
                }
            }
            let panels = (n + 15) / 16
            func product(_ cuts: [(Range<Int>, Range<Int>)]) -> [Float] {
                var c = [Float](repeating: .nan, count: m * n)
                a.withUnsafeBufferPointer { pa in
                    packed.withUnsafeBufferPointer { pp in
                        c.withUnsafeMutableBufferPointer { pc in
                            for (rows, panelRange) in cuts {
                                PackedGEMM.multiply(
                                    a: pa.baseAddress!, lda: k, packed: pp.baseAddress!, k: k, n: n, c: pc.baseAddress!, ldc: n, rows: rows,
                                    panels: panelRange)
                            }
                        }
                    }
                }
                return c
            }
            let whole = product([(0..<m, 0..<panels)])
            let label = "\(m)×\(n)×\(k) transposed \(transposed)"
            for i in 0..<m {
                for j in 0..<n {
                    var expected = 0.0
                    for p in 0..<k { expected += Double(a[i * k + p]) * Double(transposed ? b[j * k + p] : b[p * n + j]) }
                    #expect(abs(Double(whole[i * n + j]) - expected) <= 1e-5 * max(1, abs(expected)), "\(label) [\(i), \(j)]")
                }
            }
            let byRows = product([(0..<(m / 2), 0..<panels), ((m / 2)..<m, 0..<panels)])
            let byPanels = product([(0..<m, 0..<(panels / 2)), (0..<m, (panels / 2)..<panels)])
            let singles = product((0..<m).map { ($0..<($0 + 1), 0..<panels) })
            #expect(byRows == whole && byPanels == whole && singles == whole, "\(label): a split changed the bits")
        }
    }

    @Test("the epilogue adds the row's bias, then the residual, then clamps, in every block including one row against four panels")
    func epilogue() {
        // 13 rows: blocks of 6, 6 and a single row (in the last panel, of 4 columns: 8, 4 and a
        // single row); 100 columns: four whole panels at a time, then two whole and a ragged one.
        let (m, n, k) = (13, 100, 37)
        let a = (0..<(m * k)).map { Float(($0 * 37 % 101) - 50) / 25 }
        let b = (0..<(k * n)).map { Float(($0 * 53 % 97) - 48) / 24 }
        let bias = (0..<m).map { Float($0 % 5) - 2 }
        let residual = (0..<(m * n)).map { Float(($0 * 29 % 89) - 44) / 8 }
        var packed = [Float](repeating: .nan, count: PackedGEMM.packedCount(k: k, n: n))
        PackedGEMM.pack(b, k: k, n: n, ldb: n, transposed: false, into: &packed)
        var plain = [Float](repeating: .nan, count: m * n), fused = plain
        PackedGEMM.multiply(a: a, lda: k, packed: packed, k: k, n: n, c: &plain, ldc: n, rows: 0..<m, panels: 0..<7)
        bias.withUnsafeBufferPointer { pb in
            residual.withUnsafeBufferPointer { pr in
                fused.withUnsafeMutableBufferPointer { pc in
                    PackedGEMM.multiply(
                        a: a, lda: k, packed: packed, k: k, n: n, c: pc.baseAddress!, ldc: n, rows: 0..<m, panels: 0..<7,
                        epilogue: .init(bias: pb.baseAddress, residual: pr.baseAddress, relu: true))
                }
            }
        }
        let expected = (0..<(m * n)).map { i -> Float in
            let v = plain[i] + bias[i / n] + residual[i]
            return v < 0 ? 0 : v
        }
        #expect(fused == expected)
    }
}
