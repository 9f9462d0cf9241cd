import Foundation
import Testing
import VesselKernelsAVX512

/// The direct convolution's register blocks against a plain loop of the same fused
/// multiply-adds: bit for bit, whatever the cut into chunks of positions. Runs only on a CPU with
/// AVX-512.
@Suite("AVX-512 direct convolution", .enabled(if: WideCPU.runnable))
struct DirectConvolutionTests {
    struct Case {
        let channels: Int, filters: Int, height: Int, width: Int
        let kernel: (Int, Int), strides: (Int, Int), dilations: (Int, Int)
        let bias: Bool, relu: Bool
    }

    @Test("tiles of both blocks, channel blocks, whole and partial filter groups, strides and dilations give a plain loop's fused sums")
    func matchesPlainLoop() {
        let cases = [
            // Stride 2, channels in two blocks (14 per block for 3×3), several chunks of positions.
            Case(channels: 20, filters: 128, height: 41, width: 37, kernel: (3, 3), strides: (2, 2), dilations: (1, 1), bias: true, relu: true),
            // 7×7 stride 2 over three channels (blocks of two), 64 filters.
            Case(channels: 3, filters: 64, height: 29, width: 30, kernel: (7, 7), strides: (2, 2), dilations: (1, 1), bias: true, relu: false),
            // Pointwise with stride 2; 70 filters: a whole group and one of 6 (a partial register).
            Case(channels: 33, filters: 70, height: 15, width: 16, kernel: (1, 1), strides: (2, 2), dilations: (1, 1), bias: false, relu: true),
            // Dilation, unequal strides, fewer positions than one tile.
            Case(channels: 5, filters: 80, height: 9, width: 11, kernel: (3, 2), strides: (1, 3), dilations: (2, 1), bias: true, relu: true),
            Case(channels: 2, filters: 64, height: 3, width: 3, kernel: (3, 3), strides: (1, 1), dilations: (1, 1), bias: false, relu: false)
        ]
        var random = Lcg(state: 11)
        func values(_ count: Int) -> [Float] { (0..<count).map { _ in Float(Int(random.next() % 2001) - 1000) / 997 } }
        for (index, c) in cases.enumerated() {
            let outHeight = (c.height - ((c.kernel.0 - 1) * c.dilations.0 + 1)) / c.strides.0 + 1
            let outWidth = (c.width - ((c.kernel.1 - 1) * c.dilations.1 + 1)) / c.strides.1 + 1
            let spatial = outHeight * outWidth, taps = c.channels * c.kernel.0 * c.kernel.1
            let image = values(c.channels * c.height * c.width), weights = values(c.filters * taps), bias = values(c.filters)
            let geometry = DirectConvolution.Geometry(
                channels: c.channels, planeStride: c.height * c.width, rowStride: c.width, kernel: c.kernel, strides: c.strides,
                dilations: c.dilations, outWidth: outWidth, spatial: spatial)
            func convolve(_ block: DirectConvolution.Block, chunk: Int) -> [Float] {
                var packed = [Float](repeating: .nan, count: DirectConvolution.packedCount(filters: c.filters, taps: taps, block: block))
                DirectConvolution.pack(weights, filters: c.filters, taps: taps, block: block, into: &packed)
                var output = [Float](repeating: .nan, count: c.filters * spatial)
                var scratch = [Float](repeating: .nan, count: DirectConvolution.chunk * 64)
                for group in 0..<((c.filters + block.filters - 1) / block.filters) {
                    for first in stride(from: 0, to: spatial, by: chunk) {
                        DirectConvolution.run(
                            image, packed: packed, geometry, filters: c.filters, block: block, group: group,
                            positions: first..<min(spatial, first + chunk), bias: c.bias ? bias : nil, relu: c.relu, scratch: &scratch,
                            into: &output)
                    }
                }
                return output
            }
            var expected = [Float](repeating: 0, count: c.filters * spatial)
            for f in 0..<c.filters {
                for oh in 0..<outHeight {
                    for ow in 0..<outWidth {
                        var sum: Float = 0
                        for channel in 0..<c.channels {
                            for i in 0..<c.kernel.0 {
                                for j in 0..<c.kernel.1 {
                                    let x = image[(channel * c.height + oh * c.strides.0 + i * c.dilations.0) * c.width + ow * c.strides.1 + j * c.dilations.1]
                                    sum = sum.addingProduct(x, weights[((f * c.channels + channel) * c.kernel.0 + i) * c.kernel.1 + j])
                                }
                            }
                        }
                        if c.bias { sum += bias[f] }
                        if c.relu, sum < 0 { sum = 0 }
                        expected[f * spatial + oh * outWidth + ow] = sum
                    }
                }
            }
            for block in [DirectConvolution.Block.wide, .narrow] {
                let whole = convolve(block, chunk: DirectConvolution.chunk)
                #expect(whole == expected, "case \(index), \(block)")
                #expect(convolve(block, chunk: 37) == whole, "case \(index), \(block): chunks of 37 positions gave other bits")
            }
        }
    }
}
