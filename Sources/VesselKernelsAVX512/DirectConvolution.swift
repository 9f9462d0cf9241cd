#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

/// A 2-D convolution computed straight from the image, with no im2col matrix: the way MLAS's
/// NCHWc kernels multiply, on a planar (NCHW) image. The registers hold 6 output positions ×
/// 64 filters (`Block.wide`), or 12 × 32 (`Block.narrow`, for 32-filter convolutions such as
/// DenseNet's): 24 sixteen-lane accumulators; each step loads one tap's filter weights (four
/// registers, or two) and broadcasts the input values under that tap, one per position — a
/// scalar load wherever the value sits, so strides and dilations cost nothing. An im2col matrix
/// for a stride-2 convolution has to gather every other value in rows as short as the output
/// (28, 14, 7 columns in ResNet-50), and did so slower than the product that read it.
///
/// The weights are packed once per node, `[filter group][channel][kh][kw][group's filters]`,
/// filters past the last zero. The image is read as planes `planeStride` floats apart with rows
/// `rowStride` apart, every window inside: a padded convolution's caller copies the image into
/// zero-padded planes first. Taps in the padding are multiplied like any other (by zero), so
/// each output is one fused multiply-add per tap over (channel, kh, kw) in order from zero (the
/// order `PackedGEMM` sums an im2col matrix in), then the bias and Relu: the same bits whichever
/// chunk of positions, channel block or thread computes it.
public enum DirectConvolution {
    public typealias Lanes = SIMD16<Float>

    /// A register block's shape: filters per packed group (four registers, or two) and output
    /// positions per tile.
    public enum Block: Int, Sendable {
        case wide = 64, narrow = 32

        public var filters: Int { rawValue }
        public var positions: Int { self == .wide ? 6 : 12 }
    }

    /// Output positions a `run` works through at a time (its scratch: `chunk` × 64 floats).
    public static let chunk = 240

    /// The convolution's shape as `run` reads it.
    public struct Geometry: Sendable {
        public var channels: Int
        public var planeStride: Int, rowStride: Int
        public var kernel: (height: Int, width: Int)
        public var strides: (height: Int, width: Int)
        public var dilations: (height: Int, width: Int)
        public var outWidth: Int
        /// Output positions per filter: outHeight × outWidth.
        public var spatial: Int

        public init(
            channels: Int, planeStride: Int, rowStride: Int, kernel: (Int, Int), strides: (Int, Int), dilations: (Int, Int), outWidth: Int,
            spatial: Int
        ) {
            self.channels = channels
            self.planeStride = planeStride
            self.rowStride = rowStride
            self.kernel = kernel
            self.strides = strides
            self.dilations = dilations
            self.outWidth = outWidth
            self.spatial = spatial
        }

        var taps: Int { kernel.height * kernel.width }
    }

    /// Floats the packed weights of `filters` filters of `taps` (channels × kernel size) take.
    public static func packedCount(filters: Int, taps: Int, block: Block) -> Int {
        (filters + block.filters - 1) / block.filters * block.filters * taps
    }

    /// Packs weights `[filters][taps]` (ONNX's `[filters][channels][kh][kw]`) into
    /// `[group][tap][block's filters]`, the missing filters of the last group zero.
    public static func pack(_ weights: UnsafePointer<Float>, filters: Int, taps: Int, block: Block, into packed: UnsafeMutablePointer<Float>) {
        let width = block.filters, groups = (filters + width - 1) / width
        for group in 0..<groups {
            let target = packed + group * taps * width
            for tap in 0..<taps {
                for lane in 0..<width {
                    let filter = group * width + lane
                    target[tap * width + lane] = filter < filters ? weights[filter * taps + tap] : 0
                }
            }
        }
    }

    /// Output positions `positions` (at most `chunk` of them) of filter group `group`, written to
    /// `output[filter · spatial + position]` for the group's filters below `filters`, after
    /// adding `bias[filter]`, then `residual` at the same place as the output (a residual
    /// connection's Add), and clamping at zero with `relu`. `scratch` holds `chunk` × 64 floats.
    @inline(never)
    public static func run(
        _ image: UnsafePointer<Float>, packed: UnsafePointer<Float>, _ g: Geometry, filters: Int, block: Block, group: Int, positions: Range<Int>,
        bias: UnsafePointer<Float>?, residual: UnsafePointer<Float>? = nil, relu: Bool, scratch: UnsafeMutablePointer<Float>,
        into output: UnsafeMutablePointer<Float>
    ) {
        precondition(positions.count <= chunk)
        accumulate(
            image, packed: packed, g, filters: filters, block: block, group: group, positions: positions, bias: bias, relu: relu && residual == nil,
            into: scratch)
        // Out to the planes: position-major in `scratch`, filter-major in `output`; a residual is
        // added there (and the Relu applied after it).
        let start = group * block.filters * g.spatial + positions.lowerBound
        store(
            scratch, block: block, positions: positions.count, filters: min(block.filters, filters - group * block.filters), into: output + start,
            spatial: g.spatial, adding: residual.map { $0 + start }, relu: relu)
    }

    /// Output positions `positions` of filter group `group`, position-major into `sums`
    /// (`block.filters` floats a position, the group's filters past `filters` zero), with
    /// `bias[filter]` added and, with `relu`, clamped at zero. `sums` has room for `positions`
    /// rounded up to whole tiles (`block.positions`).
    public static func accumulate(
        _ image: UnsafePointer<Float>, packed: UnsafePointer<Float>, _ g: Geometry, filters: Int, block: Block, group: Int, positions: Range<Int>,
        bias: UnsafePointer<Float>?, relu: Bool, into sums: UnsafeMutablePointer<Float>
    ) {
        let taps = g.taps, width = block.filters, tileWidth = block.positions
        let weights = packed + group * g.channels * taps * width
        // Channels per block: a block's weights (channels × taps × width floats) near 32 KiB, in
        // L1 while every position of the chunk passes over them.
        let channelBlock = max(1, 8192 / (taps * width))
        // Each tile's input offsets: position (oh, ow) reads from oh·strideH·rowStride + ow·strideW.
        let tiles = (positions.count + tileWidth - 1) / tileWidth
        // The group's biases, zero past the last filter.
        let groupBias: UnsafePointer<Float>? = bias.map { bias in
            let values = UnsafeMutablePointer<Float>.allocate(capacity: width)
            for lane in 0..<width {
                let filter = group * width + lane
                values[lane] = filter < filters ? bias[filter] : 0
            }
            return UnsafePointer(values)
        }
        defer { groupBias?.deallocate() }
        withUnsafeTemporaryAllocation(of: Int.self, capacity: tiles * tileWidth) { offsets in
            for t in 0..<(tiles * tileWidth) {
                let p = positions.lowerBound + min(t, positions.count - 1)
                let (oh, ow) = p.quotientAndRemainder(dividingBy: g.outWidth)
                offsets[t] = oh * g.strides.height * g.rowStride + ow * g.strides.width
            }
            var first = 0
            while first < g.channels {
                let end = min(g.channels, first + channelBlock)
                let (image, weights) = (image + first * g.planeStride, weights + first * taps * width)
                let (bias, relu) = (end == g.channels ? groupBias : nil, end == g.channels && relu)
                for t in 0..<tiles {
                    let (offsets, accumulators) = (offsets.baseAddress! + t * tileWidth, sums + t * tileWidth * width)
                    switch block {
                    case .wide:
                        tileWide(
                            image, weights, g, channels: end - first, offsets: offsets, accumulators: accumulators, load: first > 0, bias: bias, relu: relu)
                    case .narrow:
                        tileNarrow(
                            image, weights, g, channels: end - first, offsets: offsets, accumulators: accumulators, load: first > 0, bias: bias, relu: relu)
                    }
                }
                first = end
            }
        }
    }

    /// Position-major sums (`block.filters` floats a position, `positions` of them; readable up to
    /// whole sixteens of positions) out to the first `filters` filters' planes, `spatial` apart
    /// from `planes`. With `added` (laid out as the planes) each value has its residual added, then
    /// `relu` applied.
    public static func store(
        _ sums: UnsafePointer<Float>, block: Block, positions: Int, filters count: Int, into planes: UnsafeMutablePointer<Float>, spatial: Int,
        adding added: UnsafePointer<Float>?, relu: Bool
    ) {
        let width = block.filters
        for lane in stride(from: 0, to: count, by: 16) {
            let planes = planes + lane * spatial, added = added.map { $0 + lane * spatial }
            for p in stride(from: 0, to: positions, by: 16) {
                let rows = sums + p * width + lane, n = min(16, positions - p)
                if count - lane >= 16 {
                    transpose(rows, rowStride: width, count: n, into: planes + p, spatial: spatial, adding: added.map { $0 + p }, relu: relu)
                } else {
                    for f in 0..<(count - lane) {
                        for q in 0..<n {
                            var v = rows[q * width + f]
                            if let added {
                                v += added[f * spatial + p + q]
                                if relu, v < 0 { v = 0 }
                            }
                            planes[f * spatial + p + q] = v
                        }
                    }
                }
            }
        }
    }

    /// A max pool (unit dilation) over position-major sums (`lanes` floats a position, a multiple
    /// of sixteen; rows of `width` positions): output row `oh` over input rows `rowBounds[2·oh]
    /// ..< rowBounds[2·oh + 1]`, output column `ow` over input columns `columnBounds[2·ow] ..<
    /// columnBounds[2·ow + 1]`, position-major into `output` (`outWidth` positions a row). Down
    /// each column's rows in order, then across the window's columns in order, the later value
    /// taken where it is greater: `WindowKernels.maxPlane`'s order, so the same bits as that
    /// pool of the planes. `columnsMax` holds `width` × `lanes` floats. False when a NaN is among
    /// the values read (`output` then unfinished): the caller pools those planes the NaN-keeping way.
    public static func maxPool(
        _ sums: UnsafePointer<Float>, lanes: Int, width: Int, rowBounds: UnsafePointer<Int>, outHeight: Int, columnBounds: UnsafePointer<Int>,
        outWidth: Int, columnsMax: UnsafeMutablePointer<Float>, into output: UnsafeMutablePointer<Float>
    ) -> Bool {
        @_transparent func load(_ p: UnsafePointer<Float>) -> Lanes { UnsafeRawPointer(p).loadUnaligned(as: Lanes.self) }
        @_transparent func put(_ v: Lanes, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: Lanes.self) }
        // The later value where it is greater: `maxps` with it first.
        @_transparent func greater(_ v: Lanes, _ best: Lanes) -> Lanes {
            #if arch(x86_64)
            _mm512_max_ps(v, best)
            #else
            best.replacing(with: v, where: v .> best)
            #endif
        }
        var nan = SIMDMask<SIMD16<Int32>>(repeating: false)
        // A row's positions are contiguous, so down the rows is one run of vectors over all of them.
        let rowVectors = width * lanes / 16
        for oh in 0..<outHeight {
            let lo = rowBounds[2 * oh], hi = rowBounds[2 * oh + 1]
            let target = output + oh * outWidth * lanes
            guard hi > lo else {
                target.update(repeating: -.infinity, count: outWidth * lanes)
                continue
            }
            let top = sums + lo * width * lanes, pitch = width * lanes
            if hi - lo == 3 {
                // Every stem's 3-high windows, in one pass without a row loop.
                for j in stride(from: 0, to: 16 * rowVectors, by: 16) {
                    let a = load(top + j), b = load(top + pitch + j), c = load(top + 2 * pitch + j)
                    nan .|= (a .!= a) .| (b .!= b) .| (c .!= c)
                    put(greater(c, greater(b, a)), columnsMax + j)
                }
            } else {
                for j in stride(from: 0, to: 16 * rowVectors, by: 16) {
                    var best = load(top + j)
                    nan .|= best .!= best
                    for h in 1..<(hi - lo) {
                        let v = load(top + h * pitch + j)
                        nan .|= v .!= v
                        best = greater(v, best)
                    }
                    put(best, columnsMax + j)
                }
            }
            for ow in 0..<outWidth {
                let from = columnBounds[2 * ow], to = columnBounds[2 * ow + 1]
                let source = columnsMax + from * lanes, out = target + ow * lanes
                if to - from == 3 {
                    for i in stride(from: 0, to: lanes, by: 16) {
                        put(greater(load(source + 2 * lanes + i), greater(load(source + lanes + i), load(source + i))), out + i)
                    }
                    continue
                }
                for i in stride(from: 0, to: lanes, by: 16) {
                    var best = Lanes(repeating: -.infinity)
                    if to > from {
                        best = load(source + i)
                        for w in 1..<(to - from) { best = greater(load(source + w * lanes + i), best) }
                    }
                    put(best, out + i)
                }
            }
        }
        return !any(nan)
    }

    /// One tile of six positions and 64 filters over `channels` channels from `image`: the sums
    /// start from zero, or from `accumulators` with `load`, and go back to `accumulators` (6 × 64
    /// floats), after the last channels with the group's `bias` (64 values) added and `relu`
    /// applied.
    @inline(__always)
    static func tileWide(
        _ image: UnsafePointer<Float>, _ weights: UnsafePointer<Float>, _ g: Geometry, channels: Int, offsets: UnsafePointer<Int>,
        accumulators: UnsafeMutablePointer<Float>, load: Bool, bias: UnsafePointer<Float>?, relu: Bool
    ) {
        let a = UnsafeMutableRawPointer(accumulators)
        @_transparent func initial(_ j: Int, _ b: Int) -> Lanes {
            load ? a.loadUnaligned(fromByteOffset: (j * 64 + b * 16) * 4, as: Lanes.self) : Lanes()
        }
        var c00 = initial(0, 0), c01 = initial(0, 1), c02 = initial(0, 2), c03 = initial(0, 3)
        var c10 = initial(1, 0), c11 = initial(1, 1), c12 = initial(1, 2), c13 = initial(1, 3)
        var c20 = initial(2, 0), c21 = initial(2, 1), c22 = initial(2, 2), c23 = initial(2, 3)
        var c30 = initial(3, 0), c31 = initial(3, 1), c32 = initial(3, 2), c33 = initial(3, 3)
        var c40 = initial(4, 0), c41 = initial(4, 1), c42 = initial(4, 2), c43 = initial(4, 3)
        var c50 = initial(5, 0), c51 = initial(5, 1), c52 = initial(5, 2), c53 = initial(5, 3)
        let (o0, o1, o2, o3, o4, o5) = (offsets[0], offsets[1], offsets[2], offsets[3], offsets[4], offsets[5])
        let rowStep = g.dilations.height * g.rowStride, columnStep = g.dilations.width
        var w = weights
        for channel in 0..<channels {
            var row = image + channel * g.planeStride
            for _ in 0..<g.kernel.height {
                var x = row
                for _ in 0..<g.kernel.width {
                    let w0 = UnsafeRawPointer(w).loadUnaligned(as: Lanes.self)
                    let w1 = UnsafeRawPointer(w + 16).loadUnaligned(as: Lanes.self)
                    let w2 = UnsafeRawPointer(w + 32).loadUnaligned(as: Lanes.self)
                    let w3 = UnsafeRawPointer(w + 48).loadUnaligned(as: Lanes.self)
                    var y = Lanes(repeating: x[o0])
                    c00 = c00.addingProduct(y, w0)
                    c01 = c01.addingProduct(y, w1)
                    c02 = c02.addingProduct(y, w2)
                    c03 = c03.addingProduct(y, w3)
                    y = Lanes(repeating: x[o1])
                    c10 = c10.addingProduct(y, w0)
                    c11 = c11.addingProduct(y, w1)
                    c12 = c12.addingProduct(y, w2)
                    c13 = c13.addingProduct(y, w3)
                    y = Lanes(repeating: x[o2])
                    c20 = c20.addingProduct(y, w0)
                    c21 = c21.addingProduct(y, w1)
                    c22 = c22.addingProduct(y, w2)
                    c23 = c23.addingProduct(y, w3)
                    y = Lanes(repeating: x[o3])
                    c30 = c30.addingProduct(y, w0)
                    c31 = c31.addingProduct(y, w1)
                    c32 = c32.addingProduct(y, w2)
                    c33 = c33.addingProduct(y, w3)
                    y = Lanes(repeating: x[o4])
                    c40 = c40.addingProduct(y, w0)
                    c41 = c41.addingProduct(y, w1)
                    c42 = c42.addingProduct(y, w2)
                    c43 = c43.addingProduct(y, w3)
                    y = Lanes(repeating: x[o5])
                    c50 = c50.addingProduct(y, w0)
                    c51 = c51.addingProduct(y, w1)
                    c52 = c52.addingProduct(y, w2)
                    c53 = c53.addingProduct(y, w3)
                    w += 64
                    x += columnStep
                }
                row += rowStep
            }
        }
        let b0 = bias.map { UnsafeRawPointer($0).loadUnaligned(as: Lanes.self) }
        let b1 = bias.map { UnsafeRawPointer($0 + 16).loadUnaligned(as: Lanes.self) }
        let b2 = bias.map { UnsafeRawPointer($0 + 32).loadUnaligned(as: Lanes.self) }
        let b3 = bias.map { UnsafeRawPointer($0 + 48).loadUnaligned(as: Lanes.self) }
        // The epilogue of `PackedGEMM`: the bias added, then `v < 0 ? 0 : v` (NaN stays NaN).
        @_transparent func put(_ v: Lanes, _ j: Int, _ b: Int) {
            var v = v
            if let bias = b == 0 ? b0 : b == 1 ? b1 : b == 2 ? b2 : b3 { v += bias }
            if relu { v.replace(with: 0, where: v .< 0) }
            a.storeBytes(of: v, toByteOffset: (j * 64 + b * 16) * 4, as: Lanes.self)
        }
        put(c00, 0, 0); put(c01, 0, 1); put(c02, 0, 2); put(c03, 0, 3)
        put(c10, 1, 0); put(c11, 1, 1); put(c12, 1, 2); put(c13, 1, 3)
        put(c20, 2, 0); put(c21, 2, 1); put(c22, 2, 2); put(c23, 2, 3)
        put(c30, 3, 0); put(c31, 3, 1); put(c32, 3, 2); put(c33, 3, 3)
        put(c40, 4, 0); put(c41, 4, 1); put(c42, 4, 2); put(c43, 4, 3)
        put(c50, 5, 0); put(c51, 5, 1); put(c52, 5, 2); put(c53, 5, 3)
    }
    /// One tile of twelve positions and 32 filters, as `tileWide` (12 × 32 floats of
    /// `accumulators`, the group's `bias` 32 values).
    @inline(__always)
    static func tileNarrow(
        _ image: UnsafePointer<Float>, _ weights: UnsafePointer<Float>, _ g: Geometry, channels: Int, offsets: UnsafePointer<Int>,
        accumulators: UnsafeMutablePointer<Float>, load: Bool, bias: UnsafePointer<Float>?, relu: Bool
    ) {
        let a = UnsafeMutableRawPointer(accumulators)
        @_transparent func initial(_ j: Int, _ b: Int) -> Lanes {
            load ? a.loadUnaligned(fromByteOffset: (j * 32 + b * 16) * 4, as: Lanes.self) : Lanes()
        }
        var c0_0 = initial(0, 0), c0_1 = initial(0, 1), c1_0 = initial(1, 0), c1_1 = initial(1, 1)
        var c2_0 = initial(2, 0), c2_1 = initial(2, 1), c3_0 = initial(3, 0), c3_1 = initial(3, 1)
        var c4_0 = initial(4, 0), c4_1 = initial(4, 1), c5_0 = initial(5, 0), c5_1 = initial(5, 1)
        var c6_0 = initial(6, 0), c6_1 = initial(6, 1), c7_0 = initial(7, 0), c7_1 = initial(7, 1)
        var c8_0 = initial(8, 0), c8_1 = initial(8, 1), c9_0 = initial(9, 0), c9_1 = initial(9, 1)
        var c10_0 = initial(10, 0), c10_1 = initial(10, 1), c11_0 = initial(11, 0), c11_1 = initial(11, 1)
        let (o0, o1, o2, o3, o4, o5) = (offsets[0], offsets[1], offsets[2], offsets[3], offsets[4], offsets[5])
        let (o6, o7, o8, o9, o10, o11) = (offsets[6], offsets[7], offsets[8], offsets[9], offsets[10], offsets[11])
        let rowStep = g.dilations.height * g.rowStride, columnStep = g.dilations.width
        var w = weights
        for channel in 0..<channels {
            var row = image + channel * g.planeStride
            for _ in 0..<g.kernel.height {
                var x = row
                for _ in 0..<g.kernel.width {
                    let w0 = UnsafeRawPointer(w).loadUnaligned(as: Lanes.self)
                    let w1 = UnsafeRawPointer(w + 16).loadUnaligned(as: Lanes.self)
                    var y = Lanes(repeating: x[o0])
                    c0_0 = c0_0.addingProduct(y, w0)
                    c0_1 = c0_1.addingProduct(y, w1)
                    y = Lanes(repeating: x[o1])
                    c1_0 = c1_0.addingProduct(y, w0)
                    c1_1 = c1_1.addingProduct(y, w1)
                    y = Lanes(repeating: x[o2])
                    c2_0 = c2_0.addingProduct(y, w0)
                    c2_1 = c2_1.addingProduct(y, w1)
                    y = Lanes(repeating: x[o3])
                    c3_0 = c3_0.addingProduct(y, w0)
                    c3_1 = c3_1.addingProduct(y, w1)
                    y = Lanes(repeating: x[o4])
                    c4_0 = c4_0.addingProduct(y, w0)
                    c4_1 = c4_1.addingProduct(y, w1)
                    y = Lanes(repeating: x[o5])
                    c5_0 = c5_0.addingProduct(y, w0)
                    c5_1 = c5_1.addingProduct(y, w1)
                    y = Lanes(repeating: x[o6])
                    c6_0 = c6_0.addingProduct(y, w0)
                    c6_1 = c6_1.addingProduct(y, w1)
                    y = Lanes(repeating: x[o7])
                    c7_0 = c7_0.addingProduct(y, w0)
                    c7_1 = c7_1.addingProduct(y, w1)
                    y = Lanes(repeating: x[o8])
                    c8_0 = c8_0.addingProduct(y, w0)
                    c8_1 = c8_1.addingProduct(y, w1)
                    y = Lanes(repeating: x[o9])
                    c9_0 = c9_0.addingProduct(y, w0)
                    c9_1 = c9_1.addingProduct(y, w1)
                    y = Lanes(repeating: x[o10])
                    c10_0 = c10_0.addingProduct(y, w0)
                    c10_1 = c10_1.addingProduct(y, w1)
                    y = Lanes(repeating: x[o11])
                    c11_0 = c11_0.addingProduct(y, w0)
                    c11_1 = c11_1.addingProduct(y, w1)
                    w += 32
                    x += columnStep
                }
                row += rowStep
            }
        }
        let b0 = bias.map { UnsafeRawPointer($0).loadUnaligned(as: Lanes.self) }
        let b1 = bias.map { UnsafeRawPointer($0 + 16).loadUnaligned(as: Lanes.self) }
        @_transparent func put(_ v: Lanes, _ j: Int, _ b: Int) {
            var v = v
            if let bias = b == 0 ? b0 : b1 { v += bias }
            if relu { v.replace(with: 0, where: v .< 0) }
            a.storeBytes(of: v, toByteOffset: (j * 32 + b * 16) * 4, as: Lanes.self)
        }
        put(c0_0, 0, 0); put(c0_1, 0, 1); put(c1_0, 1, 0); put(c1_1, 1, 1)
        put(c2_0, 2, 0); put(c2_1, 2, 1); put(c3_0, 3, 0); put(c3_1, 3, 1)
        put(c4_0, 4, 0); put(c4_1, 4, 1); put(c5_0, 5, 0); put(c5_1, 5, 1)
        put(c6_0, 6, 0); put(c6_1, 6, 1); put(c7_0, 7, 0); put(c7_1, 7, 1)
        put(c8_0, 8, 0); put(c8_1, 8, 1); put(c9_0, 9, 0); put(c9_1, 9, 1)
        put(c10_0, 10, 0); put(c10_1, 10, 1); put(c11_0, 11, 0); put(c11_1, 11, 1)
    }

    /// Sixteen positions' sums for sixteen filters — `rows`, `rowStride` floats apart — out to the sixteen
    /// filters' planes (`spatial` apart) as the positions' first `count`: a 16×16 transpose in
    /// registers (pairs of lanes, pairs of pairs, then 128-bit quarters twice). With `added`
    /// (laid out as the planes), each value has its residual added and then `relu` applied.
    @inline(__always)
    static func transpose(
        _ rows: UnsafePointer<Float>, rowStride: Int, count: Int, into planes: UnsafeMutablePointer<Float>, spatial: Int,
        adding added: UnsafePointer<Float>?, relu: Bool
    ) {
        #if arch(x86_64)
        @_transparent func row(_ i: Int) -> __m512 { _mm512_loadu_ps(UnsafeRawPointer(rows + i * rowStride)) }
        @_transparent func low(_ a: __m512, _ b: __m512) -> __m512 { _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(a), _mm512_castps_pd(b))) }
        @_transparent func high(_ a: __m512, _ b: __m512) -> __m512 { _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(a), _mm512_castps_pd(b))) }
        // The even (odd) 128-bit quarters of a, then of b: `_mm512_shuffle_f32x4` with 0x88 (0xDD),
        // which takes an immediate Swift cannot pass.
        let even = unsafeBitCast(SIMD16<Int32>(0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27), to: __m512i.self)
        let odd = unsafeBitCast(SIMD16<Int32>(4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31), to: __m512i.self)
        @_transparent func quarters(_ a: __m512, _ index: __m512i, _ b: __m512) -> __m512 { _mm512_permutex2var_ps(a, index, b) }
        let r0 = row(0)
        let r1 = row(1)
        let r2 = row(2)
        let r3 = row(3)
        let r4 = row(4)
        let r5 = row(5)
        let r6 = row(6)
        let r7 = row(7)
        let r8 = row(8)
        let r9 = row(9)
        let r10 = row(10)
        let r11 = row(11)
        let r12 = row(12)
        let r13 = row(13)
        let r14 = row(14)
        let r15 = row(15)
        let t0 = _mm512_unpacklo_ps(r0, r1), t1 = _mm512_unpackhi_ps(r0, r1)
        let t2 = _mm512_unpacklo_ps(r2, r3), t3 = _mm512_unpackhi_ps(r2, r3)
        let t4 = _mm512_unpacklo_ps(r4, r5), t5 = _mm512_unpackhi_ps(r4, r5)
        let t6 = _mm512_unpacklo_ps(r6, r7), t7 = _mm512_unpackhi_ps(r6, r7)
        let t8 = _mm512_unpacklo_ps(r8, r9), t9 = _mm512_unpackhi_ps(r8, r9)
        let t10 = _mm512_unpacklo_ps(r10, r11), t11 = _mm512_unpackhi_ps(r10, r11)
        let t12 = _mm512_unpacklo_ps(r12, r13), t13 = _mm512_unpackhi_ps(r12, r13)
        let t14 = _mm512_unpacklo_ps(r14, r15), t15 = _mm512_unpackhi_ps(r14, r15)
        let u0 = low(t0, t2), u1 = high(t0, t2), u2 = low(t1, t3), u3 = high(t1, t3)
        let u4 = low(t4, t6), u5 = high(t4, t6), u6 = low(t5, t7), u7 = high(t5, t7)
        let u8 = low(t8, t10), u9 = high(t8, t10), u10 = low(t9, t11), u11 = high(t9, t11)
        let u12 = low(t12, t14), u13 = high(t12, t14), u14 = low(t13, t15), u15 = high(t13, t15)
        let v0 = quarters(u0, even, u4), v4 = quarters(u0, odd, u4)
        let v1 = quarters(u1, even, u5), v5 = quarters(u1, odd, u5)
        let v2 = quarters(u2, even, u6), v6 = quarters(u2, odd, u6)
        let v3 = quarters(u3, even, u7), v7 = quarters(u3, odd, u7)
        let v8 = quarters(u8, even, u12), v12 = quarters(u8, odd, u12)
        let v9 = quarters(u9, even, u13), v13 = quarters(u9, odd, u13)
        let v10 = quarters(u10, even, u14), v14 = quarters(u10, odd, u14)
        let v11 = quarters(u11, even, u15), v15 = quarters(u11, odd, u15)
        let w0 = quarters(v0, even, v8), w8 = quarters(v0, odd, v8)
        let w1 = quarters(v1, even, v9), w9 = quarters(v1, odd, v9)
        let w2 = quarters(v2, even, v10), w10 = quarters(v2, odd, v10)
        let w3 = quarters(v3, even, v11), w11 = quarters(v3, odd, v11)
        let w4 = quarters(v4, even, v12), w12 = quarters(v4, odd, v12)
        let w5 = quarters(v5, even, v13), w13 = quarters(v5, odd, v13)
        let w6 = quarters(v6, even, v14), w14 = quarters(v6, odd, v14)
        let w7 = quarters(v7, even, v15), w15 = quarters(v7, odd, v15)
        let mask: __mmask16 = count >= 16 ? 0xFFFF : (1 << UInt16(count)) &- 1
        @_transparent func put(_ v: __m512, _ f: Int) {
            var v = v
            if let added {
                v += _mm512_maskz_loadu_ps(mask, UnsafeRawPointer(added + f * spatial))
                if relu { v.replace(with: 0, where: v .< 0) }
            }
            _mm512_mask_storeu_ps(UnsafeMutableRawPointer(planes + f * spatial), mask, v)
        }
        put(w0, 0); put(w1, 1); put(w2, 2); put(w3, 3); put(w4, 4); put(w5, 5); put(w6, 6); put(w7, 7)
        put(w8, 8); put(w9, 9); put(w10, 10); put(w11, 11); put(w12, 12); put(w13, 13); put(w14, 14); put(w15, 15)
        #else
        for f in 0..<16 {
            for p in 0..<count {
                var v = rows[p * rowStride + f]
                if let added {
                    v += added[f * spatial + p]
                    if relu, v < 0 { v = 0 }
                }
                planes[f * spatial + p] = v
            }
        }
        #endif
    }
}
