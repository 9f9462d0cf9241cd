import Foundation
import Testing
import VesselKernels
@testable import VesselONNX

/// The choice between the copies of the kernels, and their split across threads (the arithmetic
/// of each copy is tested in VesselKernelsTests, VesselKernelsHaswellTests and
/// VesselKernelsAVX512Tests).
@Suite("row kernels")
struct RowKernelTests {
    typealias Variant = VesselONNX.RowKernels.Variant

    @Test("the process picks the best copy the CPU's flags allow, or the lesser one VESSEL_KERNELS names")
    func variant() {
        let best = Variant.supported(VesselONNX.RowKernels.cpuFlags)
        let expected: Variant =
            switch ProcessInfo.processInfo.environment["VESSEL_KERNELS"] {
            case "baseline": .baseline
            case "haswell": best == .baseline ? .baseline : .haswell
            default: best
            }
        #expect(VesselONNX.RowKernels.variant == expected)
        let haswell = Variant.haswellFlags
        #expect(Variant.supported([]) == .baseline)
        #expect(Variant.supported(["avx2", "fma"]) == .baseline, "BMI2, F16C and the rest are Haswell's too")
        #expect(Variant.supported(haswell) == .haswell)
        #expect(Variant.supported(haswell.union(["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"])) == .haswell, "no VNNI")
        #expect(Variant.supported(Variant.avx512Flags) == .avx512)
    }

    @Test("softmax, layer normalization and elementwise maps are bit-identical at any thread count")
    func threads() {
        let rows = 300, size = 203
        let input = (0..<(rows * size)).map { Float(($0 * 7_919) % 20_011) / 1000 - 10 }
        let scale = (0..<size).map { Float($0 % 7) * 0.25 + 0.5 }, bias = (0..<size).map { Float($0 % 5) - 2 }
        func compute(threads: Int) -> [[Float]] {
            var softmax = [Float](repeating: 0, count: input.count), normalized = softmax, erf = softmax
            input.withUnsafeBufferPointer { x in
                softmax.withUnsafeMutableBufferPointer {
                    RowKernels.softmax(x.baseAddress!, $0.baseAddress!, rows: rows, size: size, log: false, threads: threads)
                }
                normalized.withUnsafeMutableBufferPointer {
                    RowKernels.layerNorm(
                        x.baseAddress!, $0.baseAddress!, rows: rows, size: size, epsilon: 1e-5, scale: scale, bias: bias,
                        means: nil, inverseStd: nil, threads: threads)
                }
                erf.withUnsafeMutableBufferPointer { RowKernels.map(.erf, x.baseAddress!, $0.baseAddress!, count: x.count, threads: threads) }
            }
            return [softmax, normalized, erf]
        }
        let one = compute(threads: 1)
        #expect(!one[0].contains { $0.isNaN } && one[2].contains { $0 != 0 })
        for threads in [2, 4] { #expect(compute(threads: threads) == one, "\(threads) threads differ") }
    }
}
