import Foundation
import Testing

#if HASWELL
import VesselKernelsHaswell
#else
import VesselKernels
#endif

/// One max-pool geometry along both axes (as VesselONNX's pool2D describes it to the kernel).
struct PoolCase: CustomStringConvertible {
    var height, width, kernel, stride, padBegin, padEnd: Int

    var description: String { "\(height)×\(width) kernel \(kernel) stride \(stride) pads \(padBegin)/\(padEnd)" }

    /// Per output position along an axis of `size`: the clipped input range.
    func bounds(_ size: Int) -> [Int] {
        let count = (size + padBegin + padEnd - kernel) / stride + 1
        return (0..<count).flatMap { o -> [Int] in
            let start = o * stride - padBegin
            let lo = max(start, 0), hi = min(start + kernel, size)
            return [lo, max(lo, hi)]
        }
    }
}

/// The pooling and convolution-output kernels against plain loops. This file is compiled into
/// the baseline and Haswell test targets, like RowKernelTests.
@Suite("window kernels", .enabled(if: KernelCPU.runnable))
struct WindowKernelTests {
    static let cases = [
        PoolCase(height: 111, width: 111, kernel: 3, stride: 2, padBegin: 0, padEnd: 0),
        PoolCase(height: 27, width: 27, kernel: 3, stride: 2, padBegin: 0, padEnd: 0),
        PoolCase(height: 13, width: 13, kernel: 3, stride: 1, padBegin: 1, padEnd: 1),
        PoolCase(height: 56, width: 56, kernel: 3, stride: 2, padBegin: 1, padEnd: 1),
        PoolCase(height: 7, width: 40, kernel: 2, stride: 2, padBegin: 0, padEnd: 1),
        PoolCase(height: 20, width: 33, kernel: 5, stride: 3, padBegin: 2, padEnd: 2),
        PoolCase(height: 9, width: 16, kernel: 1, stride: 1, padBegin: 0, padEnd: 0),
        PoolCase(height: 5, width: 17, kernel: 4, stride: 1, padBegin: 3, padEnd: 3)
    ]

    @Test("a plane's max pool equals the plain windows' max, at every width, stride and padding", arguments: cases)
    func maxPlane(_ c: PoolCase) {
        var random = SplitLcg(state: UInt64(c.height * 1000 + c.width))
        let input = (0..<(c.height * c.width)).map { _ in Float(Int(random.next() % 2001) - 1000) / 7 }
        let rows = c.bounds(c.height), columns = c.bounds(c.width)
        let outHeight = rows.count / 2, outWidth = columns.count / 2
        var insideBegin = 0
        while insideBegin < outWidth, columns[2 * insideBegin + 1] - columns[2 * insideBegin] != c.kernel { insideBegin += 1 }
        var insideEnd = insideBegin
        while insideEnd < outWidth, columns[2 * insideEnd + 1] - columns[2 * insideEnd] == c.kernel { insideEnd += 1 }
        var columnsMax = [Float](repeating: 0, count: c.width + 32)
        // A guard value after the plane's output shows nothing is written past it.
        var output = [Float](repeating: .nan, count: outHeight * outWidth + 16)
        let finished = WindowKernels.maxPlane(
            input, height: c.height, width: c.width, rowBounds: rows, outHeight: outHeight, columnBounds: columns, outWidth: outWidth,
            inside: insideBegin..<insideEnd, stride: c.stride, kernel: c.kernel, columnsMax: &columnsMax, into: &output)
        #expect(finished)
        var expected = [Float](repeating: -.infinity, count: outHeight * outWidth)
        for oh in 0..<outHeight {
            for ow in 0..<outWidth {
                for h in rows[2 * oh]..<rows[2 * oh + 1] {
                    for w in columns[2 * ow]..<columns[2 * ow + 1] { expected[oh * outWidth + ow] = max(expected[oh * outWidth + ow], input[h * c.width + w]) }
                }
            }
        }
        #expect(Array(output[..<expected.count]) == expected, "\(c)")
        #expect(output[expected.count...].allSatisfy { $0.isNaN }, "\(c): written past the plane")
    }

    @Test("a NaN among the rows read stops the plane, for the caller's NaN-propagating way")
    func maxPlaneStopsAtNaN() {
        for width in [8, 40] {
            let c = PoolCase(height: 9, width: width, kernel: 3, stride: 2, padBegin: 0, padEnd: 0)
            var input = [Float](repeating: 1, count: c.height * c.width)
            input[5 * width + width / 2] = .nan
            let rows = c.bounds(c.height), columns = c.bounds(c.width)
            var columnsMax = [Float](repeating: 0, count: width + 32)
            var output = [Float](repeating: 0, count: rows.count / 2 * columns.count / 2)
            let finished = WindowKernels.maxPlane(
                input, height: c.height, width: width, rowBounds: rows, outHeight: rows.count / 2, columnBounds: columns,
                outWidth: columns.count / 2, inside: 0..<(columns.count / 2), stride: 2, kernel: 3, columnsMax: &columnsMax, into: &output)
            #expect(!finished, "width \(width)")
        }
    }

    @Test("2×2 stride-2 pools from the row pairs: the separable kernels' bits, at widths with whole and partial groups of sixteen, odd edges dropped")
    func pool2x2() {
        for (height, width) in [(56, 56), (28, 28), (14, 14), (7, 7), (9, 55), (4, 34), (2, 2), (3, 17)] {
            var random = SplitLcg(state: UInt64(height * 1000 + width))
            // Signed zeros among the values, so an addition or choice made in another order shows.
            let input = (0..<(height * width)).map { i -> Float in i % 11 == 3 ? -0.0 : i % 13 == 5 ? 0 : Float(Int(random.next() % 2001) - 1000) / 7 }
            let c = PoolCase(height: height, width: width, kernel: 2, stride: 2, padBegin: 0, padEnd: 0)
            let rows = c.bounds(height), columns = c.bounds(width)
            let outHeight = rows.count / 2, outWidth = columns.count / 2
            for isMax in [true, false] {
                var output = [Float](repeating: .nan, count: outHeight * outWidth + 16)
                #expect(WindowKernels.pool2x2(input, width: width, outHeight: outHeight, outWidth: outWidth, isMax: isMax, into: &output))
                var expected = [Float](repeating: .nan, count: outHeight * outWidth)
                var scratch = [Float](repeating: 0, count: width + 32)
                if isMax {
                    #expect(
                        WindowKernels.maxPlane(
                            input, height: height, width: width, rowBounds: rows, outHeight: outHeight, columnBounds: columns, outWidth: outWidth,
                            inside: 0..<outWidth, stride: 2, kernel: 2, columnsMax: &scratch, into: &expected))
                } else {
                    var sums = [Float](repeating: 0, count: height * (outWidth + 16))
                    WindowKernels.averagePlane(
                        input, height: height, width: width, rowBounds: rows, rowCounts: [Int](repeating: 2, count: outHeight), outHeight: outHeight,
                        columnBounds: columns, columnCounts: [Float](repeating: 2, count: outWidth + 16), outWidth: outWidth, inside: 0..<outWidth,
                        stride: 2, kernel: 2, row: &scratch, rowSums: &sums, into: &expected)
                }
                let differing = expected.indices.first { output[$0].bitPattern != expected[$0].bitPattern }
                #expect(differing == nil, "\(height)×\(width) max \(isMax): \(differing.map { "\(output[$0]) against \(expected[$0]) at \($0)" } ?? "")")
                #expect(output[expected.count...].allSatisfy { $0.isNaN }, "\(height)×\(width): written past the plane")
                // And against the plain windows, for the values themselves.
                for oh in 0..<outHeight {
                    for ow in 0..<outWidth {
                        let window = [0, 1, width, width + 1].map { input[2 * oh * width + 2 * ow + $0] }
                        let plain = isMax ? window.max()! : ((window[0] + window[1]) + (window[2] + window[3])) / 4
                        #expect(output[oh * outWidth + ow] == plain, "\(height)×\(width) max \(isMax) at (\(oh), \(ow))")
                    }
                }
            }
        }
        // A NaN in any lane group stops a max pool; an average carries it.
        for (width, column) in [(40, 3), (40, 35), (18, 17), (6, 4)] {
            var input = [Float](repeating: 1, count: 4 * width)
            input[2 * width + column] = .nan
            var output = [Float](repeating: 0, count: 2 * (width / 2))
            #expect(!WindowKernels.pool2x2(input, width: width, outHeight: 2, outWidth: width / 2, isMax: true, into: &output), "width \(width)")
            #expect(WindowKernels.pool2x2(input, width: width, outHeight: 2, outWidth: width / 2, isMax: false, into: &output))
            #expect(output[width / 2 + column / 2].isNaN, "width \(width)")
        }
    }

    @Test("bias and Relu as one pass: v + b, then v < 0 ? 0 : v, keeping NaN and -0")
    func biasRelu() {
        let source: [Float] = [-2, -0.0, 0, 1.5, .nan, -.infinity, .infinity, 3] + (0..<37).map { Float($0) - 18 }
        for bias: Float? in [nil, 0.5, -1] {
            for relu in [false, true] {
                var target = [Float](repeating: 7, count: source.count)
                WindowKernels.biasRelu(source, into: &target, count: source.count, bias: bias, relu: relu)
                let expected = source.map { v -> Float in
                    let s = bias.map { v + $0 } ?? v
                    return relu && s < 0 ? 0 : s
                }
                #expect(target.map(\.bitPattern) == expected.map(\.bitPattern), "bias \(String(describing: bias)), relu \(relu)")
            }
        }
    }

    @Test("im2col rows equal the plain window lookups, over position ranges that start and end mid-row")
    func im2col() {
        // (height, width, kernel, stride, dilation, pad)
        for (height, width, kernel, stride, dilation, pad) in [
            (9, 11, 3, 1, 1, 1), (13, 13, 3, 2, 1, 1), (20, 37, 7, 2, 1, 3), (8, 8, 2, 3, 2, 0), (5, 6, 3, 1, 2, 2), (4, 40, 1, 2, 1, 0)
        ] {
            let channels = 3
            let image = (0..<(channels * height * width)).map { Float($0 % 97) - 48 }
            let outHeight = (height + 2 * pad - dilation * (kernel - 1) - 1) / stride + 1
            let outWidth = (width + 2 * pad - dilation * (kernel - 1) - 1) / stride + 1
            let spatial = outHeight * outWidth
            for positions in [0..<spatial, (spatial / 3)..<(spatial - spatial / 4), 1..<2] where !positions.isEmpty {
                let rows = channels * kernel * kernel, length = positions.count
                var columns = [Float](repeating: .nan, count: rows * length)
                WindowKernels.im2col(
                    image, height: height, width: width, outWidth: outWidth, kernel: (kernel, kernel), strides: (stride, stride),
                    dilations: (dilation, dilation), padding: (pad, pad), channels: 0..<channels, positions: positions, into: &columns, rowLength: length)
                var expected = [Float](repeating: 0, count: rows * length)
                for c in 0..<channels {
                    for kh in 0..<kernel {
                        for kw in 0..<kernel {
                            for p in positions {
                                let ih = p / outWidth * stride - pad + kh * dilation, iw = p % outWidth * stride - pad + kw * dilation
                                guard ih >= 0, ih < height, iw >= 0, iw < width else { continue }
                                expected[((c * kernel + kh) * kernel + kw) * length + p - positions.lowerBound] = image[(c * height + ih) * width + iw]
                            }
                        }
                    }
                }
                #expect(columns == expected, "\(height)×\(width) kernel \(kernel) stride \(stride) dilation \(dilation) pad \(pad) positions \(positions)")
            }
        }
    }

    @Test("every stride-th value, whole loads kept inside the limit")
    func gather() {
        let source = (0..<200).map { Float($0) }
        for stride in [1, 2, 3] {
            for count in [0, 1, 15, 16, 17, 40, 66] where (count - 1) * stride < source.count {
                var target = [Float](repeating: -1, count: count + 1)
                WindowKernels.gather(source, stride: stride, count: count, limit: (count - 1) * stride + 1, into: &target)
                #expect(Array(target[..<count]) == (0..<count).map { Float($0 * stride) }, "stride \(stride), count \(count)")
                #expect(target[count] == -1)
            }
        }
    }
}

/// A small deterministic generator, so a failure names a reproducible case.
struct SplitLcg {
    var state: UInt64
    mutating func next() -> UInt64 {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return state >> 33
    }
}
