import Foundation
import Testing
import VesselKernels
@testable import VesselONNX

/// The choice between the two copies of the row kernels, and their split across threads (the
/// arithmetic of each copy is tested in VesselKernelsTests and VesselKernelsHaswellTests).
@Suite("row kernels")
struct RowKernelTests {
    @Test("the process picks Haswell's copy exactly when the CPU has AVX2 and FMA and VESSEL_KERNELS does not say baseline")
    func variant() {
        let forced = ProcessInfo.processInfo.environment["VESSEL_KERNELS"] == "baseline"
        #expect(RowKernels.variant == (RowKernels.cpuHasAVX2FMA && !forced ? .haswell : .baseline))
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
