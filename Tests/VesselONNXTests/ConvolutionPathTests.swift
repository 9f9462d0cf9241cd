import Foundation
import Testing
@testable import VesselONNX
import VesselKernelsAVX512
import VesselTensor
import VesselTestSupport

@Suite("Conv paths")
struct ConvolutionPathTests {
    /// One Conv model: weights and bias are graph inputs, so the reference sees the same values.
    struct Case {
        let channels: Int, filters: Int, group: Int, kernel: [Int], dilations: [Int]
        /// ONNX pads (top, left, bottom, right), or an auto_pad string with the begin pads it gives.
        let pads: [Int]
        let autoPad: String?
        let bias: Bool, relu: Bool
        var strides = [1, 1]
        var padBegin: [Int] { [pads[0], pads[1]] }
    }

    static let cases: [Case] = [
        // Filters at most half the channels: the shifted-GEMM path.
        Case(channels: 8, filters: 4, group: 1, kernel: [3, 3], dilations: [1, 1], pads: [1, 1, 1, 1], autoPad: nil, bias: true, relu: true),
        Case(channels: 8, filters: 2, group: 1, kernel: [5, 5], dilations: [1, 1], pads: [2, 1, 0, 2], autoPad: nil, bias: false, relu: false),
        Case(channels: 6, filters: 3, group: 1, kernel: [3, 2], dilations: [2, 2], pads: [0, 0, 0, 0], autoPad: nil, bias: true, relu: false),
        Case(channels: 8, filters: 4, group: 2, kernel: [3, 3], dilations: [1, 1], pads: [1, 1, 1, 1], autoPad: nil, bias: true, relu: true),
        Case(channels: 8, filters: 4, group: 1, kernel: [4, 4], dilations: [1, 1], pads: [1, 1, 2, 2], autoPad: "SAME_UPPER", bias: false, relu: true),
        Case(channels: 16, filters: 8, group: 1, kernel: [1, 3], dilations: [1, 3], pads: [0, 3, 0, 3], autoPad: nil, bias: true, relu: false),
        // 3×3, unit strides, at least 8 channels and 8 filters per group: Winograd F(2×2, 3×3).
        Case(channels: 8, filters: 8, group: 1, kernel: [3, 3], dilations: [1, 1], pads: [1, 1, 1, 1], autoPad: nil, bias: true, relu: true),
        Case(channels: 16, filters: 24, group: 2, kernel: [3, 3], dilations: [1, 1], pads: [0, 2, 1, 0], autoPad: nil, bias: false, relu: false),
        Case(channels: 12, filters: 9, group: 1, kernel: [3, 3], dilations: [1, 1], pads: [1, 1, 1, 1], autoPad: "SAME_LOWER", bias: true, relu: false),
        Case(channels: 9, filters: 16, group: 1, kernel: [3, 3], dilations: [1, 1], pads: [0, 0, 0, 0], autoPad: nil, bias: false, relu: true),
        // As many filters as channels or more, small weights: im2col in column blocks.
        Case(channels: 4, filters: 8, group: 1, kernel: [3, 3], dilations: [1, 1], pads: [1, 1, 1, 1], autoPad: nil, bias: true, relu: true),
        Case(
            channels: 3, filters: 16, group: 1, kernel: [3, 3], dilations: [1, 1], pads: [0, 0, 0, 0], autoPad: nil, bias: true, relu: true,
            strides: [2, 2]),
        Case(
            channels: 3, filters: 8, group: 1, kernel: [7, 7], dilations: [1, 1], pads: [3, 3, 3, 3], autoPad: nil, bias: false, relu: false,
            strides: [2, 2]),
        Case(
            channels: 2, filters: 6, group: 1, kernel: [3, 2], dilations: [2, 1], pads: [1, 0, 2, 1], autoPad: nil, bias: true, relu: false,
            strides: [1, 3]),
        // Pointwise, in column blocks.
        Case(channels: 6, filters: 10, group: 1, kernel: [1, 1], dilations: [1, 1], pads: [0, 0, 0, 0], autoPad: nil, bias: true, relu: true),
        // Large weights (over 16K values): one im2col matrix and one product.
        Case(
            channels: 64, filters: 48, group: 1, kernel: [3, 3], dilations: [1, 1], pads: [1, 1, 1, 1], autoPad: nil, bias: true, relu: false,
            strides: [2, 2]),
        // Strided with whole groups of 64 filters: straight from the image on an AVX-512 CPU
        // (zero-padded copy or the planes in place; positions in several chunks at 29×45).
        Case(
            channels: 20, filters: 128, group: 1, kernel: [3, 3], dilations: [1, 1], pads: [1, 1, 1, 1], autoPad: nil, bias: true, relu: true,
            strides: [2, 2]),
        Case(
            channels: 3, filters: 64, group: 1, kernel: [7, 7], dilations: [1, 1], pads: [3, 3, 3, 3], autoPad: nil, bias: true, relu: false,
            strides: [2, 2]),
        Case(
            channels: 16, filters: 64, group: 1, kernel: [1, 1], dilations: [1, 1], pads: [0, 0, 0, 0], autoPad: nil, bias: false, relu: true,
            strides: [2, 2]),
        Case(
            channels: 5, filters: 64, group: 1, kernel: [3, 2], dilations: [2, 1], pads: [1, 0, 2, 1], autoPad: nil, bias: true, relu: false,
            strides: [1, 3]),
        Case(
            channels: 8, filters: 64, group: 1, kernel: [3, 3], dilations: [1, 1], pads: [0, 0, 1, 1], autoPad: nil, bias: false, relu: true,
            strides: [2, 2]),
        // 32-filter groups: strided, and at unit stride over at most 14×14 outputs (9×13, 12×7).
        Case(
            channels: 12, filters: 96, group: 1, kernel: [3, 3], dilations: [1, 1], pads: [1, 1, 1, 1], autoPad: nil, bias: true, relu: true,
            strides: [2, 2]),
        Case(channels: 40, filters: 32, group: 1, kernel: [3, 3], dilations: [1, 1], pads: [1, 1, 1, 1], autoPad: nil, bias: true, relu: true),
        // Small 3×3 weights over at most 27×27 outputs (all but 29×45): direct, 64-filter groups.
        Case(channels: 16, filters: 64, group: 1, kernel: [3, 3], dilations: [1, 1], pads: [1, 1, 1, 1], autoPad: nil, bias: true, relu: false)
    ]

    @Test("shifted GEMMs, Winograd, blocked and whole im2col, direct match a plain loop: strides, pads, auto_pad, dilations, groups, bias, fused Relu")
    func geometries() throws {
        let lines = Self.cases.enumerated().map { index, c in
            "save(\(index), \(c.channels), \(c.filters), \(c.group), \(c.kernel), \(c.dilations), \(c.pads), \(c.autoPad.map { "'\($0)'" } ?? "None"), \(c.bias ? "True" : "False"), \(c.relu ? "True" : "False"), \(c.strides))"
        }.joined(separator: "\n")
        let directory = try LoaderTests.make(
            """
            def save(i, channels, filters, group, kernel, dilations, pads, auto_pad, bias, relu, strides):
                inputs = ['x', 'w'] + (['b'] if bias else [])
                attributes = dict(kernel_shape=kernel, dilations=dilations, group=group, strides=strides)
                if auto_pad: attributes['auto_pad'] = auto_pad
                else: attributes['pads'] = pads
                nodes = [helper.make_node('Conv', inputs, ['c' if relu else 'y'], **attributes)]
                if relu: nodes.append(helper.make_node('Relu', ['c'], ['y']))
                declared = [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, channels, 'h', 'w']),
                            helper.make_tensor_value_info('w', TensorProto.FLOAT, [filters, channels // group] + kernel)]
                if bias: declared.append(helper.make_tensor_value_info('b', TensorProto.FLOAT, [filters]))
                g = helper.make_graph(nodes, 'g', declared, [helper.make_tensor_value_info('y', TensorProto.FLOAT, None)])
                onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)]), d + f'/conv{i}.onnx')
            \(lines)
            """)
        defer { TestSupport.remove(directory) }
        var generator = SplitMix64(seed: 17)
        func random(_ count: Int) -> [Float] { (0..<count).map { _ in Float(generator.nextUnit() * 2 - 1) } }
        for (index, c) in Self.cases.enumerated() {
            let model = try ONNXModel(path: directory + "/conv\(index).onnx")
            let perGroup = c.channels / c.group, filtersPerGroup = c.filters / c.group
            let (kh, kw) = (c.kernel[0], c.kernel[1])
            for (height, width) in [(9, 13), (5, 31), (12, 7), (29, 45)] {
                let x = random(c.channels * height * width), w = random(c.filters * perGroup * kh * kw), b = random(c.filters)
                var feeds = ["x": Tensor(x, shape: [1, c.channels, height, width]), "w": Tensor(w, shape: [c.filters, perGroup, kh, kw])]
                if c.bias { feeds["b"] = Tensor(b, shape: [c.filters]) }
                let y = try #require(try model.run(feeds)["y"])
                let (outHeight, outWidth) = (y.shape[2], y.shape[3])
                #expect(outHeight == (height + c.pads[0] + c.pads[2] - (kh - 1) * c.dilations[0] - 1) / c.strides[0] + 1, "case \(index)")
                #expect(outWidth == (width + c.pads[1] + c.pads[3] - (kw - 1) * c.dilations[1] - 1) / c.strides[1] + 1, "case \(index)")
                let out = y.scalars(as: Float.self)
                var worst = 0.0
                for f in 0..<c.filters {
                    let group = f / filtersPerGroup
                    for oh in 0..<outHeight {
                        for ow in 0..<outWidth {
                            var sum = c.bias ? Double(b[f]) : 0
                            for channel in 0..<perGroup {
                                for i in 0..<kh {
                                    for j in 0..<kw {
                                        let (ih, iw) = (
                                            oh * c.strides[0] - c.padBegin[0] + i * c.dilations[0],
                                            ow * c.strides[1] - c.padBegin[1] + j * c.dilations[1]
                                        )
                                        guard ih >= 0, ih < height, iw >= 0, iw < width else { continue }
                                        sum +=
                                            Double(x[((group * perGroup + channel) * height + ih) * width + iw])
                                            * Double(w[((f * perGroup + channel) * kh + i) * kw + j])
                                    }
                                }
                            }
                            if c.relu { sum = max(sum, 0) }
                            worst = max(worst, abs(Double(out[(f * outHeight + oh) * outWidth + ow]) - sum) / (1 + abs(sum)))
                        }
                    }
                }
                #expect(worst < 1e-5, "case \(index), input \(height)×\(width): worst relative error \(worst)")
            }
        }
    }

    @Test("Winograd with initializer weights: chunks of tiles, the transform kept across runs and sizes, same bits every run")
    func winogradInitializer() throws {
        let (channels, filters) = (32, 48)
        let directory = try LoaderTests.make(
            """
            rng = np.random.default_rng(5)
            w = rng.uniform(-1, 1, (\(filters), \(channels), 3, 3)).astype(np.float32)
            b = rng.uniform(-1, 1, \(filters)).astype(np.float32)
            np.save(d + '/w.npy', w)
            np.save(d + '/b.npy', b)
            nodes = [helper.make_node('Conv', ['x', 'w', 'b'], ['c'], pads=[1, 1, 1, 1]), helper.make_node('Relu', ['c'], ['y'])]
            g = helper.make_graph(nodes, 'g', [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, \(channels), 'h', 'w'])],
                                  [helper.make_tensor_value_info('y', TensorProto.FLOAT, None)],
                                  [numpy_helper.from_array(w, 'w'), numpy_helper.from_array(b, 'b')])
            onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)]), d + '/conv.onnx')
            """)
        defer { TestSupport.remove(directory) }
        func npy(_ name: String) throws -> [Float] {
            try Tensor(npy: [UInt8](Data(contentsOf: URL(fileURLWithPath: directory + "/" + name)))).scalars(as: Float.self)
        }
        let (w, b) = (try npy("w.npy"), try npy("b.npy"))
        let model = try ONNXModel(path: directory + "/conv.onnx")
        var generator = SplitMix64(seed: 23)
        // 44×41 is 22 × 21 tiles, 462: four chunks for 32 + 48 rows (128, 112, 112 and a ragged
        // 110), cut mid-row.
        for (height, width) in [(44, 41), (9, 13), (44, 41)] {
            let x = (0..<(channels * height * width)).map { _ in Float(generator.nextUnit() * 2 - 1) }
            let y = try #require(try model.run(["x": Tensor(x, shape: [1, channels, height, width])])["y"]).scalars(as: Float.self)
            let again = try #require(try model.run(["x": Tensor(x, shape: [1, channels, height, width])])["y"]).scalars(as: Float.self)
            #expect(y == again, "\(height)×\(width): a second run gave other bits")
            var worst = 0.0
            for f in 0..<filters {
                for oh in 0..<height {
                    for ow in 0..<width {
                        let sum = Self.padded3x3(x, w, bias: b[f], channels: channels, height: height, width: width, filter: f, oh, ow)
                        worst = max(worst, abs(Double(y[(f * height + oh) * width + ow]) - max(sum, 0)) / (1 + abs(sum)))
                    }
                }
            }
            #expect(worst < 1e-5, "\(height)×\(width): worst relative error \(worst)")
        }
    }

    @Test(
        "on an AVX2 or AVX-512 CPU a blocked convolution gives the same bits whatever its column blocks (their width follows the thread count)",
        .enabled(if: RowKernels.variant.hasAVX2))
    func blocksDoNotChangeBits() {
        var generator = SplitMix64(seed: 41)
        // A pointwise product read in place, and a 3×3 stride-2 one through im2col columns.
        let geometries = [
            (WindowGeometry(input: [28, 28], kernel: [1, 1], strides: [1, 1], dilations: [1, 1], padBegin: [0, 0], padEnd: [0, 0], output: [28, 28]), true),
            (WindowGeometry(input: [27, 29], kernel: [3, 3], strides: [2, 2], dilations: [1, 1], padBegin: [1, 1], padEnd: [1, 1], output: [14, 15]), false)
        ]
        for (g, pointwise) in geometries {
            let (channels, filters) = (24, 40)
            let rows = channels * g.kernel.reduce(1, *), spatial = g.output.reduce(1, *)
            let image = (0..<(channels * g.input.reduce(1, *))).map { _ in Float(generator.nextUnit() * 2 - 1) }
            let weights = (0..<(filters * rows)).map { _ in Float(generator.nextUnit() * 2 - 1) }
            let bias = (0..<filters).map { _ in Float(generator.nextUnit()) }
            func convolve(block: Int) -> [UInt32] {
                var out = [Float](repeating: .nan, count: filters * spatial)
                blockedConvolution(
                    image, weights: weights, g, channels: channels, filters: filters, pointwise: pointwise, block: block, bias: bias, relu: true,
                    into: &out)
                return out.map(\.bitPattern)
            }
            let reference = convolve(block: 256)
            for block in [16, 48, 208, spatial] { #expect(convolve(block: block) == reference, "block \(block), pointwise \(pointwise)") }
        }
    }

    @Test(
        "a direct convolution cut into more items for more threads gives the same bits at one, two and three, every output written",
        .enabled(if: RowKernels.variant == .avx512))
    func directConvolutionThreads() {
        var generator = SplitMix64(seed: 43)
        // DenseNet's growth convolutions over 14×14 and 7×7 (one 32-filter group, cut into two
        // or three parts of whole tiles), three narrow groups over 9×13 (six items at two
        // threads), and a strided wide one over enough positions for several chunks anyway.
        for (size, channels, filters, stride, block) in [
            ((14, 14), 128, 32, 1, DirectConvolution.Block.narrow), ((7, 7), 64, 32, 1, .narrow), ((9, 13), 24, 96, 1, .narrow),
            ((40, 36), 8, 64, 2, .wide)
        ] {
            let out = ((size.0 - 1) / stride + 1, (size.1 - 1) / stride + 1)
            let g = WindowGeometry(
                input: [size.0, size.1], kernel: [3, 3], strides: [stride, stride], dilations: [1, 1], padBegin: [1, 1], padEnd: [1, 1],
                output: [out.0, out.1])
            let image = (0..<(channels * size.0 * size.1)).map { _ in Float(generator.nextUnit() * 2 - 1) }
            let weights = (0..<(filters * channels * 9)).map { _ in Float(generator.nextUnit() * 2 - 1) }
            let bias = (0..<filters).map { _ in Float(generator.nextUnit()) }
            var packed = [Float](repeating: 0, count: DirectConvolution.packedCount(filters: filters, taps: channels * 9, block: block))
            DirectConvolution.pack(weights, filters: filters, taps: channels * 9, block: block, into: &packed)
            func convolve(threads: Int) -> [Float] {
                var result = [Float](repeating: .nan, count: filters * out.0 * out.1)
                directConvolution(
                    image, packed: packed, block: block, g, channels: channels, filters: filters, bias: bias, residual: nil, relu: false,
                    into: &result, threads: threads)
                return result
            }
            let reference = Self.sameBitsAtAnyThreads("\(size)", convolve)
            for (f, oh, ow) in [(0, 0, 0), (filters - 1, out.0 - 1, out.1 - 1), (filters / 2, out.0 / 2, 1)] {
                let sum = Self.padded3x3(
                    image, weights, bias: bias[f], channels: channels, height: size.0, width: size.1, filter: f, oh, ow, stride: stride)
                let value = Double(reference[(f * out.0 + oh) * out.1 + ow])
                #expect(abs(value - sum) <= 1e-5 * (1 + abs(sum)), "\(size): filter \(f) at (\(oh), \(ow)): \(value) against \(sum)")
            }
        }
    }

    @Test(
        "a convolution pooled in bands gives the bits of the convolution and the max pool run whole, at one, two and three threads, NaN kept",
        .enabled(if: RowKernels.variant.hasAVX2))
    func convolutionPoolBands() {
        var generator = SplitMix64(seed: 47)
        struct Shape {
            let channels: Int, filters: Int, input: (Int, Int), kernel: Int, stride: Int, pad: Int
            let poolKernel: Int, poolStride: Int, poolPads: (Int, Int), ceil: Bool
        }
        let shapes = [
            // SqueezeNet's stem: many bands of two pool rows, one row carried from band to band.
            Shape(channels: 3, filters: 64, input: (227, 227), kernel: 3, stride: 2, pad: 0, poolKernel: 3, poolStride: 2, poolPads: (0, 0), ceil: false),
            // ResNet's: a padded pool, two bands.
            Shape(channels: 3, filters: 32, input: (100, 90), kernel: 7, stride: 2, pad: 3, poolKernel: 3, poolStride: 2, poolPads: (1, 1), ceil: false),
            // 2×2 windows (nothing carried), stride-1 windows (two rows carried), ceil mode.
            Shape(channels: 4, filters: 64, input: (60, 70), kernel: 3, stride: 1, pad: 1, poolKernel: 2, poolStride: 2, poolPads: (0, 0), ceil: false),
            Shape(channels: 3, filters: 64, input: (80, 75), kernel: 3, stride: 2, pad: 1, poolKernel: 3, poolStride: 1, poolPads: (1, 1), ceil: false),
            Shape(channels: 3, filters: 48, input: (66, 67), kernel: 5, stride: 2, pad: 2, poolKernel: 3, poolStride: 2, poolPads: (0, 1), ceil: true)
        ]
        for (index, s) in shapes.enumerated() {
            let convOut = ((s.input.0 + 2 * s.pad - s.kernel) / s.stride + 1, (s.input.1 + 2 * s.pad - s.kernel) / s.stride + 1)
            let g = WindowGeometry(
                input: [s.input.0, s.input.1], kernel: [s.kernel, s.kernel], strides: [s.stride, s.stride], dilations: [1, 1],
                padBegin: [s.pad, s.pad], padEnd: [s.pad, s.pad], output: [convOut.0, convOut.1])
            func pooled(_ size: Int, _ pad: Int) -> Int {
                let span = size + pad + s.poolPads.1 - s.poolKernel
                var out = (s.ceil ? (span + s.poolStride - 1) / s.poolStride : span / s.poolStride) + 1
                if s.ceil, (out - 1) * s.poolStride >= size + pad { out -= 1 }
                return out
            }
            let poolOut = (pooled(convOut.0, s.poolPads.0), pooled(convOut.1, s.poolPads.0))
            let pg = WindowGeometry(
                input: [convOut.0, convOut.1], kernel: [s.poolKernel, s.poolKernel], strides: [s.poolStride, s.poolStride], dilations: [1, 1],
                padBegin: [s.poolPads.0, s.poolPads.0], padEnd: [s.poolPads.1, s.poolPads.1], output: [poolOut.0, poolOut.1])
            var image = (0..<(s.channels * s.input.0 * s.input.1)).map { _ in Float(generator.nextUnit() * 2 - 1) }
            // The first shape's convolution meets a NaN: the bands holding it go the NaN-keeping way.
            if index == 0 { image[(s.input.0 / 2) * s.input.1 + 40] = .nan }
            let depth = s.channels * s.kernel * s.kernel
            let weights = (0..<(s.filters * depth)).map { _ in Float(generator.nextUnit() * 2 - 1) }
            let bias = (0..<s.filters).map { _ in Float(generator.nextUnit() - 0.5) }
            // The two nodes' way: the whole convolution with its Relu, then the pool.
            var whole = [Float](repeating: .nan, count: s.filters * convOut.0 * convOut.1)
            blockedConvolution(
                image, weights: weights, g, channels: s.channels, filters: s.filters, pointwise: false,
                block: packedColumnBlock(rows: depth, spatial: convOut.0 * convOut.1), bias: bias, relu: true, into: &whole)
            let reference = pool2D(Tensor(whole, shape: [1, s.filters, convOut.0, convOut.1]), pg, planes: s.filters, isMax: true, includePad: false)
                .scalars(as: Float.self)
            #expect(index != 0 || reference.contains { $0.isNaN }, "the NaN reaches the pooled output")
            let banded = ConvolutionPool(pg, over: g.output)
            #expect(banded != nil, "shape \(index) pools in bands")
            for threads in [1, 2, 3] {
                var out = [Float](repeating: 7, count: reference.count)
                banded?.run(image, weights: weights, g, channels: s.channels, filters: s.filters, bias: bias, relu: true, into: &out, threads: threads)
                let differing = out.indices.first { out[$0].bitPattern != reference[$0].bitPattern && !(out[$0].isNaN && reference[$0].isNaN) }
                #expect(differing == nil, "shape \(index), \(threads) threads: \(differing.map { "\(out[$0]) against \(reference[$0]) at \($0)" } ?? "")")
            }
        }
    }

    @Test("direct AVX-512 blocks: strided, small 3×3 over at most 27×27 (not where 512-bit FMAs come in halves), 32-filter growth over 14×14")
    func directBlocks() {
        func geometry(_ size: Int, _ kernel: Int, stride: Int) -> WindowGeometry {
            let pad = kernel / 2, out = (size + 2 * pad - kernel) / stride + 1
            return WindowGeometry(
                input: [size, size], kernel: [kernel, kernel], strides: [stride, stride], dilations: [1, 1], padBegin: [pad, pad], padEnd: [pad, pad],
                output: [out, out])
        }
        // The block's name ("wide", "narrow"), nil for the other paths.
        func block(_ g: WindowGeometry, channels: Int, filters: Int) -> String? { directBlock(g, channels: channels, filters: filters).map { "\($0)" } }
        // SqueezeNet's expand convolutions over 27×27 and 13×13, ResNet's stride-2 one, DenseNet's growth ones.
        #expect(block(geometry(27, 3, stride: 1), channels: 32, filters: 128) == (RowKernels.halvesWideFMA ? nil : "wide"))
        #expect(block(geometry(13, 3, stride: 1), channels: 64, filters: 256) == (RowKernels.halvesWideFMA ? nil : "wide"))
        #expect(block(geometry(13, 3, stride: 1), channels: 48, filters: 192) == (RowKernels.halvesWideFMA ? nil : "wide"))
        #expect(block(geometry(14, 3, stride: 2), channels: 256, filters: 256) == "wide")
        #expect(block(geometry(14, 3, stride: 1), channels: 128, filters: 32) == "narrow")
        #expect(block(geometry(7, 3, stride: 1), channels: 512, filters: 512) == nil, "large weights")
        #expect(block(geometry(55, 3, stride: 1), channels: 16, filters: 64) == nil, "over 27×27")
        // Zen 4 (family 25 with AVX-512) halves its 512-bit multiply-adds; Zen 5 and Intel do not.
        #expect(RowKernels.isHalvingWideFMA(vendor: "AuthenticAMD", family: "25", flags: ["avx2", "avx512f"]))
        #expect(!RowKernels.isHalvingWideFMA(vendor: "AuthenticAMD", family: "25", flags: ["avx2"]))
        #expect(!RowKernels.isHalvingWideFMA(vendor: "AuthenticAMD", family: "26", flags: ["avx2", "avx512f"]))
        #expect(!RowKernels.isHalvingWideFMA(vendor: "GenuineIntel", family: "6", flags: ["avx2", "avx512f"]))
        #expect(RowKernels.cpuField("flags") != nil && RowKernels.cpuField("cpu family") != nil, "read from /proc/cpuinfo")
        #expect(RowKernels.cpuField("cpu") == nil, "a whole field name, not a prefix")
    }

    @Test("Conv, Relu and MaxPool fused at load give the unfused nodes' bits, where bands apply and where the pool runs after")
    func convolutionPoolModels() throws {
        let directory = try LoaderTests.make(
            """
            rng = np.random.default_rng(9)
            def save(name, channels, filters, kernel, strides, pads, group, pool):
                w = numpy_helper.from_array(rng.uniform(-1, 1, (filters, channels // group, kernel, kernel)).astype(np.float32), 'w')
                b = numpy_helper.from_array(rng.uniform(-1, 1, filters).astype(np.float32), 'b')
                for fused in (True, False):
                    nodes = [helper.make_node('Conv', ['x', 'w', 'b'], ['c'], strides=strides, pads=pads, group=group),
                             helper.make_node('Relu', ['c'], ['r']), helper.make_node('MaxPool', ['r'], ['y'], **pool)]
                    outputs = [helper.make_tensor_value_info('y', TensorProto.FLOAT, None)]
                    # The Relu's output read outside as well: nothing fuses.
                    if not fused: outputs.append(helper.make_tensor_value_info('r', TensorProto.FLOAT, None))
                    g = helper.make_graph(nodes, 'g', [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, channels, 'h', 'w'])], outputs, [w, b])
                    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)]), d + f'/{name}_{"fused" if fused else "plain"}.onnx')
            save('stem', 3, 64, 7, [2, 2], [3, 3, 3, 3], 1, dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]))
            save('grouped', 8, 16, 3, [1, 1], [1, 1, 1, 1], 2, dict(kernel_shape=[2, 2], strides=[2, 2]))
            save('ceil', 3, 32, 3, [2, 2], [0, 0, 0, 0], 1, dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1))
            # SqueezeNet's stem with two filter groups of the direct blocks (AVX-512) and four bands.
            save('groups', 3, 128, 3, [2, 2], [0, 0, 0, 0], 1, dict(kernel_shape=[3, 3], strides=[2, 2]))
            # The pool's output read by a Relu and by a Concat beside another Conv: neither may take
            # the fused node for a plain Conv.
            w = numpy_helper.from_array(rng.uniform(-1, 1, (32, 3, 3, 3)).astype(np.float32), 'w')
            v = numpy_helper.from_array(rng.uniform(-1, 1, (8, 3, 7, 7)).astype(np.float32), 'v')
            for fused in (True, False):
                nodes = [helper.make_node('Conv', ['x', 'w'], ['c'], strides=[2, 2]),
                         helper.make_node('MaxPool', ['c'], ['p'], kernel_shape=[3, 3], strides=[2, 2]),
                         helper.make_node('Relu', ['p'], ['y']),
                         helper.make_node('Conv', ['x', 'w'], ['c2'], strides=[2, 2]),
                         helper.make_node('MaxPool', ['c2'], ['p2'], kernel_shape=[3, 3], strides=[2, 2]),
                         helper.make_node('Conv', ['x', 'v'], ['d'], strides=[4, 4]),
                         helper.make_node('Concat', ['p2', 'd'], ['z'], axis=1)]
                outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ['y', 'z']]
                if not fused: outputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ['c', 'c2', 'd']]
                g = helper.make_graph(nodes, 'g', [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 3, 'h', 'w'])], outputs, [w, v])
                onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)]), d + f'/after_{"fused" if fused else "plain"}.onnx')
            """)
        defer { TestSupport.remove(directory) }
        var generator = SplitMix64(seed: 53)
        for (name, channels, sizes) in [
            ("stem", 3, [(64, 70), (9, 11)]), ("grouped", 8, [(30, 34)]), ("ceil", 3, [(90, 71), (20, 20)]), ("after", 3, [(71, 80)]),
            ("groups", 3, [(120, 90)])
        ] {
            let fused = try ONNXModel(path: directory + "/\(name)_fused.onnx"), plain = try ONNXModel(path: directory + "/\(name)_plain.onnx")
            for (height, width) in sizes {
                // Once as drawn, once with NaNs in the top rows (a band that holds one is pooled
                // the NaN-keeping way; the others are not).
                for withNaN in [false, true] {
                    var values = (0..<(channels * height * width)).map { _ in Float(generator.nextUnit() * 2 - 1) }
                    if withNaN { for index in [5, width + 7, 3 * width + 2] { values[index] = .nan } }
                    let x = Tensor(values, shape: [1, channels, height, width])
                    let got = try fused.run(["x": x]), expected = try plain.run(["x": x])
                    for output in name == "after" ? ["y", "z"] : ["y"] {
                        let y = try #require(got[output]), e = try #require(expected[output])
                        let label = "\(name) \(output) \(height)×\(width)\(withNaN ? " with NaNs" : "")"
                        #expect(y.shape == e.shape, "\(label)")
                        #expect(y.scalars(as: Float.self).map(\.bitPattern) == e.scalars(as: Float.self).map(\.bitPattern), "\(label)")
                        if withNaN { #expect(y.scalars(as: Float.self).contains { $0.isNaN } && y.scalars(as: Float.self).contains { !$0.isNaN }, "\(label)") }
                    }
                }
            }
        }
    }

    @Test("a residual added as the sums are stored is overwritten with them where asked: the direct and packed paths, not Winograd's")
    func residualOverwritten() throws {
        var generator = SplitMix64(seed: 61)
        func values(_ count: Int) -> [Float] { (0..<count).map { _ in Float(generator.nextUnit() * 2 - 1) } }
        // A strided 3×3 with 64 filters (direct on an AVX-512 CPU), a pointwise one (packed on an
        // AVX2 one), a unit-stride 3×3 over 20×20 with 40 filters (Winograd: a pass after).
        for (channels, filters, kernel, stride, size, overwrites) in [
            (8, 64, 3, 2, 17, RowKernels.variant == .avx512), (24, 40, 1, 1, 30, RowKernels.variant.hasAVX2), (16, 40, 3, 1, 20, false)
        ] {
            let pad = kernel / 2, out = (size + 2 * pad - kernel) / stride + 1
            let attributes = Attributes(
                values: ["strides": .ints([stride, stride]), "pads": .ints([pad, pad, pad, pad])], node: "conv", opType: "Conv")
            let node = Node(
                name: "conv", opType: "Conv", domain: "", inputs: ["x", "w"], outputs: ["y"], attributes: attributes, opset: 13, kernel: .tensors { _, _ in [] }
            )
            let context = KernelContext(node: node) { _, _ in [] }
            let x = Tensor(values(channels * size * size), shape: [1, channels, size, size])
            let w = Tensor(values(filters * channels * kernel * kernel), shape: [filters, channels, kernel, kernel])
            let b = Tensor(values(filters), shape: [filters])
            let residual = values(filters * out * out)
            let kept = Tensor(residual, shape: [1, filters, out, out]), over = Tensor(residual, shape: [1, filters, out, out])
            let expected = try convolution(x, w, b, context, relu: true, residual: kept)
            let got = try convolution(x, w, b, context, relu: true, residual: over, residualInPlace: true)
            let label = "\(channels)→\(filters), \(kernel)×\(kernel) stride \(stride) over \(size)×\(size)"
            #expect(got.scalars(as: Float.self).map(\.bitPattern) == expected.scalars(as: Float.self).map(\.bitPattern), "\(label)")
            #expect(kept.scalars(as: Float.self) == residual, "\(label): a residual not offered is left as it was")
            let overwritten = got.storage === over.storage
            #expect(overwritten == overwrites, "\(label): overwritten \(overwritten)")
            if !overwritten { #expect(over.scalars(as: Float.self) == residual, "\(label)") }
        }
    }

    @Test("a fused residual Add overwrites a residual it reads last: one returned, read or captured later, or its Conv's image keeps its values")
    func residualReadElsewhere() throws {
        let directory = try LoaderTests.make(
            """
            rng = np.random.default_rng(13)
            inits = [numpy_helper.from_array(rng.uniform(-1, 1, (64, 8, 3, 3)).astype(np.float32), n) for n in ['w1', 'w2']]
            inits.append(numpy_helper.from_array(rng.uniform(-1, 1, (64, 64, 1, 1)).astype(np.float32), 'w3'))
            # r read first by a Conv, then added (ResNet's block input: overwritten); returned too,
            # read after the Add, or read after it by an If's branches from the outer scope (kept:
            # only the capture count sees that read); the Conv's own input (kept: the image it
            # reads). Each also plain: c2 returned as well, so nothing fuses.
            for name, extra in [('sole', []), ('returned', ['r']), ('later', ['z']), ('captured', ['q']), ('self', []), ('sole_plain', ['c2']),
                                ('returned_plain', ['r', 'c2']), ('later_plain', ['z', 'c2']), ('captured_plain', ['q', 'c2']),
                                ('self_plain', ['c2'])]:
                nodes = [helper.make_node('Conv', ['x', 'w1'], ['c1'], strides=[2, 2], pads=[1, 1, 1, 1]), helper.make_node('Relu', ['c1'], ['r']),
                         helper.make_node('Conv', ['r', 'w3'], ['c3']),
                         helper.make_node('Conv', ['x', 'w2'], ['c2'], strides=[2, 2], pads=[1, 1, 1, 1]) if not name.startswith('self')
                         else helper.make_node('Conv', ['r', 'w3'], ['c2']),
                         helper.make_node('Add', ['c2', 'r'], ['s']), helper.make_node('Relu', ['s'], ['y'])]
                if name.startswith('later'): nodes.append(helper.make_node('Mul', ['r', 'y'], ['z']))
                inputs = [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 8, 'h', 'w'])]
                if name.startswith('captured'):
                    branch = lambda op, out: helper.make_graph([helper.make_node(op, ['r'], [out])], out, [],
                                                               [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)])
                    nodes.append(helper.make_node('If', ['flag'], ['q'], then_branch=branch('Identity', 'qt'), else_branch=branch('Neg', 'qe')))
                    inputs.append(helper.make_tensor_value_info('flag', TensorProto.BOOL, []))
                if not name.startswith('self'): extra = extra + ['c3']
                outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ['y'] + extra]
                g = helper.make_graph(nodes, 'g', inputs, outputs, inits)
                onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)]), d + f'/{name}.onnx')
            """)
        defer { TestSupport.remove(directory) }
        var generator = SplitMix64(seed: 67)
        let x = Tensor((0..<(8 * 23 * 21)).map { _ in Float(generator.nextUnit() * 2 - 1) }, shape: [1, 8, 23, 21])
        for name in ["sole", "returned", "later", "captured", "self"] {
            let model = try ONNXModel(path: directory + "/\(name).onnx")
            #expect(model.graph.nodes.contains { $0.name.hasSuffix("+Add+Relu") }, "\(name): \(model.graph.nodes.map(\.name))")
            let inputs = name == "captured" ? ["x": x, "flag": Tensor(scalar: true)] : ["x": x]
            let expected = try ONNXModel(path: directory + "/\(name)_plain.onnx").run(inputs)
            for run in 1...2 {
                let got = try model.run(inputs)
                #expect(name != "captured" || got["q"] != nil, "\(name): the If's output")
                for output in ["y", "r", "z", "q", "c3"] where got[output] != nil {
                    #expect(
                        try #require(got[output]).scalars(as: Float.self).map(\.bitPattern)
                            == (try #require(expected[output])).scalars(as: Float.self).map(\.bitPattern), "\(name) run \(run): \(output)")
                }
            }
        }
    }

    @Test("Concat of Convs fused at load gives the unfused nodes' bits: every Conv path writing into its slice, and the whole way for batches")
    func concatenationModels() throws {
        let directory = try LoaderTests.make(
            """
            rng = np.random.default_rng(11)
            def weights(name, filters, channels, kernel):
                return [numpy_helper.from_array(rng.uniform(-1, 1, (filters, channels, kernel, kernel)).astype(np.float32), name + '_w'),
                        numpy_helper.from_array(rng.uniform(-1, 1, filters).astype(np.float32), name + '_b')]
            # Branches over one 16-channel input: pointwise with Relu, Winograd 3×3 with Relu,
            # shifted 5×5 (4 filters over 16 channels) without a bias, a grouped 3×3, and the
            # input itself copied in; then a second Concat of two Convs on another axis.
            inits = weights('p', 12, 16, 1) + weights('q', 24, 16, 3) + weights('r', 4, 16, 5) + weights('s', 8, 8, 3) + weights('t', 8, 16, 3)
            for fused in (True, False):
                nodes = [helper.make_node('Conv', ['x', 'p_w', 'p_b'], ['p']), helper.make_node('Relu', ['p'], ['pr']),
                         helper.make_node('Conv', ['x', 'q_w', 'q_b'], ['q'], pads=[1, 1, 1, 1]), helper.make_node('Relu', ['q'], ['qr']),
                         helper.make_node('Conv', ['x', 'r_w'], ['r'], pads=[2, 2, 2, 2]),
                         helper.make_node('Conv', ['x', 's_w', 's_b'], ['s'], pads=[1, 1, 1, 1], group=2),
                         helper.make_node('Concat', ['pr', 'qr', 'x', 'r', 's'], ['y'], axis=1),
                         helper.make_node('Conv', ['x', 't_w', 't_b'], ['t1'], pads=[1, 1, 1, 1]),
                         helper.make_node('Conv', ['x', 't_w'], ['t2'], pads=[1, 1, 1, 1]),
                         helper.make_node('Concat', ['t1', 't2'], ['z'], axis=2)]
                outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ['y', 'z']]
                # The Convs' outputs read outside as well: nothing fuses.
                if not fused: outputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ['p', 'q', 'r', 's', 't1', 't2']]
                g = helper.make_graph(nodes, 'g', [helper.make_tensor_value_info('x', TensorProto.FLOAT, ['n', 16, 'h', 'w'])], outputs, inits)
                onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)]), d + f'/{"fused" if fused else "plain"}.onnx')
            """)
        defer { TestSupport.remove(directory) }
        let fused = try ONNXModel(path: directory + "/fused.onnx"), plain = try ONNXModel(path: directory + "/plain.onnx")
        var generator = SplitMix64(seed: 59)
        // 64×70: the input copied in is 71,680 values, split across the threads.
        for (batch, height, width) in [(1, 20, 23), (1, 7, 5), (2, 9, 12), (1, 64, 70)] {
            let x = Tensor((0..<(batch * 16 * height * width)).map { _ in Float(generator.nextUnit() * 2 - 1) }, shape: [batch, 16, height, width])
            let got = try fused.run(["x": x]), expected = try plain.run(["x": x])
            for name in ["y", "z"] {
                let y = try #require(got[name]), e = try #require(expected[name])
                #expect(y.shape == e.shape, "\(name) \(batch)×\(height)×\(width)")
                #expect(y.scalars(as: Float.self).map(\.bitPattern) == e.scalars(as: Float.self).map(\.bitPattern), "\(name) \(batch)×\(height)×\(width)")
            }
            #expect(got["y"]?.shape == [batch, 12 + 24 + 16 + 4 + 8, height, width])
        }
    }

    @Test("Winograd gives the same bits at one, two and three threads: whole chunks per thread, or each step split")
    func winogradThreads() {
        var generator = SplitMix64(seed: 43)
        // 112×112 with 16 channels (eight chunks of tiles: four per thread at two), 55×55 (two:
        // one per thread at two, split steps at three), 27×27 (196 tiles, two uneven chunks),
        // 13×13 with 200 filters (one chunk, its steps split), 9×7 with 10 filters (products
        // below the packed kernel's size).
        for (size, channels, filters) in [((112, 112), 16, 64), ((55, 55), 16, 64), ((27, 27), 32, 128), ((13, 13), 48, 200), ((9, 7), 8, 10)] {
            let g = WindowGeometry(
                input: [size.0, size.1], kernel: [3, 3], strides: [1, 1], dilations: [1, 1], padBegin: [1, 1], padEnd: [1, 1], output: [size.0, size.1])
            let image = (0..<(channels * size.0 * size.1)).map { _ in Float(generator.nextUnit() * 2 - 1) }
            let weights = (0..<(filters * channels * 9)).map { _ in Float(generator.nextUnit() * 2 - 1) }
            let bias = (0..<filters).map { _ in Float(generator.nextUnit()) }
            let transformed = Winograd.transformWeights(weights, groups: 1, filtersPerGroup: filters, channelsPerGroup: channels)
            func convolve(threads: Int) -> [Float] {
                var out = [Float](repeating: .nan, count: filters * size.0 * size.1)
                transformed.withUnsafeBufferPointer(as: Float.self) { v in
                    Winograd.convolve(
                        image, transformed: v.baseAddress!, g, channels: channels, filters: filters, bias: bias, relu: false, into: &out,
                        threads: threads)
                }
                return out
            }
            let reference = Self.sameBitsAtAnyThreads("\(size)", convolve)
            // And the sums themselves, at a few places, against the plain window.
            for (f, oh, ow) in [(0, 0, 0), (filters - 1, size.0 - 1, size.1 - 1), (filters / 2, size.0 / 2, 1)] {
                let sum = Self.padded3x3(image, weights, bias: bias[f], channels: channels, height: size.0, width: size.1, filter: f, oh, ow)
                let value = Double(reference[(f * size.0 + oh) * size.1 + ow])
                #expect(abs(value - sum) <= 1e-5 * (1 + abs(sum)), "\(size): filter \(f) at (\(oh), \(ow)): \(value) against \(sum)")
            }
        }
    }

    /// The convolution's values at one thread, after checking that two and three give the same bits.
    static func sameBitsAtAnyThreads(_ label: String, _ convolve: (_ threads: Int) -> [Float]) -> [Float] {
        let reference = convolve(1)
        for threads in [2, 3] {
            let values = convolve(threads)
            let differing = values.indices.first { values[$0].bitPattern != reference[$0].bitPattern }
            #expect(differing == nil, "\(label), \(threads) threads: \(differing.map { "\(values[$0]) against \(reference[$0]) at \($0)" } ?? "")")
        }
        return reference
    }

    /// One output of a 3×3 convolution with one pixel of zero padding, summed plainly in Double:
    /// the Winograd and direct tests' reference.
    static func padded3x3(
        _ image: [Float], _ weights: [Float], bias: Float, channels: Int, height: Int, width: Int, filter f: Int, _ oh: Int, _ ow: Int,
        stride: Int = 1
    ) -> Double {
        var sum = Double(bias)
        for c in 0..<channels {
            for i in 0..<3 {
                for j in 0..<3 {
                    let (ih, iw) = (oh * stride - 1 + i, ow * stride - 1 + j)
                    guard ih >= 0, ih < height, iw >= 0, iw < width else { continue }
                    sum += Double(image[(c * height + ih) * width + iw]) * Double(weights[((f * channels + c) * 3 + i) * 3 + j])
                }
            }
        }
        return sum
    }

    @Test("GlobalAveragePool of float32, split across threads, is each plane's mean as one call computes it, within an ulp of the sum in order")
    func globalAverage() throws {
        var generator = SplitMix64(seed: 31)
        // 1001 planes of 13×13 (split across threads; sixteen-value blocks and a tail of 9) and 26
        // planes of 7×9 (not split).
        for shape in [[1, 1001, 13, 13], [2, 13, 7, 9]] {
            let x = Tensor((0..<Tensor.count(of: shape)).map { _ in Float(generator.nextUnit() * 200 - 100) }, shape: shape)
            let fast = globalAverageFloat(x).scalars(as: Float.self)
            let values = x.scalars(as: Float.self), inner = shape[2] * shape[3]
            var whole = [Float](repeating: .nan, count: fast.count)
            VesselONNX.WindowKernels.planeMeans(values, inner: inner, count: whole.count, into: &whole)
            #expect(fast.map(\.bitPattern) == whole.map(\.bitPattern), "\(shape)")
            let reference = try globalPool(x) { $0.reduce(0, +) / Double($0.count) }.scalars(as: Float.self)
            let far = zip(fast, reference).filter { abs($0 - $1) > $1.ulp }
            #expect(far.isEmpty, "\(shape): \(far.prefix(3))")
        }
    }
}
