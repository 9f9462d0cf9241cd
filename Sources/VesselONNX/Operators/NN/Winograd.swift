import Synchronization
import VesselTensor

/// 3×3 convolution with unit strides and dilations by Winograd's minimal filtering F(2×2, 3×3)
/// (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2015).
///
/// Each 2×2 block of outputs ("tile") is computed from the 4×4 input patch under it:
/// Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A. Summed over channels, the element-wise products become 16
/// matrix products, one per position ξ of the 4×4 transformed patch: M[ξ] (filters × tiles) =
/// V[ξ] (filters × channels) · U[ξ] (channels × tiles). That is 16 multiply-adds per tile per
/// (filter, channel) pair against 36 for the direct 3×3 form: 2.25× fewer, and the transformed
/// input is 4× the image where im2col's matrix is 9×.
///
/// The transforms use only additions and halvings, so the error stays within a few ulps of the
/// patch's magnitudes (the tests hold it to 1e-5 of the direct sum). The tiles are cut into
/// chunks by the shapes alone, so the results do not depend on the thread count.
enum Winograd {
    /// Whether a convolution takes this path: a 2-D 3×3 kernel, unit strides and dilations, and
    /// enough channels and filters per group that the 16 products are real matrix products.
    static func applies(_ g: WindowGeometry, channelsPerGroup: Int, filtersPerGroup: Int) -> Bool {
        g.input.count == 2 && g.kernel == [3, 3] && g.strides == [1, 1] && g.dilations == [1, 1]
            && channelsPerGroup >= 8 && filtersPerGroup >= 8
    }

    /// The transformed weights of every group: group × 16 matrices of filtersPerGroup ×
    /// channelsPerGroup, G g Gᵀ computed in Double from float32 weights (3×3 each, row-major).
    static func transformWeights(_ weights: UnsafePointer<Float>, groups: Int, filtersPerGroup: Int, channelsPerGroup: Int) -> Tensor {
        let pairs = filtersPerGroup * channelsPerGroup
        let result = Tensor(uninitialized: .float32, shape: [groups, 16, filtersPerGroup, channelsPerGroup])
        result.withUnsafeMutableBufferPointer(as: Float.self) { buffer in
            let v = buffer.baseAddress!
            for group in 0..<groups {
                let target = v + group * 16 * pairs
                for pair in 0..<pairs {
                    let g = weights + (group * pairs + pair) * 9
                    // G g: rows g0, (g0+g1+g2)/2, (g0-g1+g2)/2, g2 of three values each.
                    var gg = [Double](repeating: 0, count: 12)
                    for column in 0..<3 {
                        let (a, b, c) = (Double(g[column]), Double(g[3 + column]), Double(g[6 + column]))
                        gg[column] = a
                        gg[3 + column] = (a + b + c) / 2
                        gg[6 + column] = (a - b + c) / 2
                        gg[9 + column] = c
                    }
                    // (G g) Gᵀ: each row a, b, c becomes a, (a+b+c)/2, (a-b+c)/2, c.
                    for row in 0..<4 {
                        let (a, b, c) = (gg[row * 3], gg[row * 3 + 1], gg[row * 3 + 2])
                        let values = [a, (a + b + c) / 2, (a - b + c) / 2, c]
                        for column in 0..<4 { target[(row * 4 + column) * pairs + pair] = Float(values[column]) }
                    }
                }
            }
        }
        return result
    }

    /// Convolves one image (channels × height × width) with one group's transformed weights
    /// (16 × filters × channels) into `destination` (filters × outHeight × outWidth), adding the
    /// bias and applying Relu on the way out.
    static func convolve(
        _ image: UnsafePointer<Float>, transformed v: UnsafePointer<Float>, _ g: WindowGeometry,
        channels: Int, filters: Int, bias: UnsafePointer<Float>?, relu: Bool,
        into destination: UnsafeMutablePointer<Float>
    ) {
        let (height, width) = (g.input[0], g.input[1])
        let (outHeight, outWidth) = (g.output[0], g.output[1])
        let (padTop, padLeft) = (g.padBegin[0], g.padBegin[1])
        let (tileRows, tileColumns) = ((outHeight + 1) / 2, (outWidth + 1) / 2)
        let tiles = tileRows * tileColumns
        // The zero-padded image: tile (ty, tx) reads rows 2ty…2ty+3 and columns 2tx…2tx+3. A block
        // of four tiles loads 8 values from columns 2tx and 2tx+2, so a row reaches column
        // 2·tileColumns + 7 at most.
        let paddedHeight = 2 * tileRows + 2, paddedWidth = 2 * tileColumns + 8
        let plane = paddedHeight * paddedWidth
        // Tiles per chunk: the chunk's transformed input and products (16 × (channels + filters)
        // rows) stay near 2 MiB, in cache between the transforms and the products; at least 64
        // tiles, so each product is still wide enough to run at full speed. From 128 tiles on there
        // are at least two chunks, an even number of them, as even as multiples of 16 tiles allow
        // (products 16 columns at a time run at full width). The cut depends on the shapes only,
        // never on the thread count, so the products, and the results, are the same at any.
        let budget = Swift.max(64, (1 << 19) / (16 * (channels + filters)) / 16 * 16)
        var count = (tiles + budget - 1) / budget
        if tiles >= 128 { count = (Swift.max(count, 2) + 1) / 2 * 2 }
        let chunk = Swift.min(tiles, ((tiles + count - 1) / count + 15) / 16 * 16)
        let chunkCount = (tiles + chunk - 1) / chunk
        // With at least a chunk per thread, every thread takes whole chunks with buffers of its
        // own; otherwise the chunks run one at a time with each step split across the threads.
        // (Splitting the steps when there were chunks enough made a 16-channel, 64-filter 55×55
        // convolution 1.8× slower on two threads than on one in some runs.)
        let perThread = Parallel.threads > 1 && chunkCount >= Parallel.threads
        // Rows of U and M have four values of slack: a block of four tiles is written (and read)
        // whole even where fewer of its tiles are in the chunk.
        let rowLength = chunk + 4
        let paddedStorage = Tensor(uninitialized: .float32, shape: [channels * plane])
        withExtendedLifetime(paddedStorage) {
            let padded = paddedStorage.storage.pointer.bindMemory(to: Float.self, capacity: paddedStorage.count)
            Parallel.chunks(channels, minimum: Swift.max(1, 16_384 / plane)) { range in
                for channel in range {
                    padPlane(
                        image + channel * height * width, height: height, width: width, top: padTop, left: padLeft,
                        into: padded + channel * plane, rows: paddedHeight, columns: paddedWidth)
                }
            }
            /// Chunks `chunks`, one after another, in buffers of their own; each step split across
            /// the threads when `split`.
            func run(_ chunks: Range<Int>, split: Bool) {
                let inputStorage = Tensor(uninitialized: .float32, shape: [16 * channels * rowLength])
                let productStorage = Tensor(uninitialized: .float32, shape: [16 * filters * rowLength])
                withExtendedLifetime((inputStorage, productStorage)) {
                    let u = inputStorage.storage.pointer.bindMemory(to: Float.self, capacity: inputStorage.count)
                    let m = productStorage.storage.pointer.bindMemory(to: Float.self, capacity: productStorage.count)
                    func loop(_ count: Int, minimum: Int, _ body: (Range<Int>) -> Void) {
                        if split { Parallel.chunks(count, minimum: minimum, body) } else { body(0..<count) }
                    }
                    for index in chunks {
                        let first = index * chunk, end = Swift.min(first + chunk, tiles)
                        loop(channels, minimum: Swift.max(1, 4096 / (end - first))) { range in
                            for channel in range {
                                transformInput(
                                    padded + channel * plane, paddedWidth: paddedWidth, tileColumns: tileColumns,
                                    tiles: first..<end, into: u + channel * rowLength, step: channels * rowLength)
                            }
                        }
                        func product(_ xi: Int) {
                            GEMM.multiply(
                                m: filters, n: end - first, k: channels, a: v + xi * filters * channels,
                                b: u + xi * channels * rowLength, ldb: rowLength, c: m + xi * filters * rowLength, ldc: rowLength)
                        }
                        if split { Parallel.each(16, product) } else { for xi in 0..<16 { product(xi) } }
                        loop(filters, minimum: Swift.max(1, 4096 / (end - first))) { range in
                            for filter in range {
                                transformOutput(
                                    m + filter * rowLength, step: filters * rowLength, tileColumns: tileColumns, tiles: first..<end,
                                    bias: bias?[filter] ?? 0, relu: relu, outHeight: outHeight, outWidth: outWidth,
                                    into: destination + filter * outHeight * outWidth)
                            }
                        }
                    }
                }
            }
            if perThread {
                Parallel.chunks(chunkCount, minimum: 1) { run($0, split: false) }
            } else {
                run(0..<chunkCount, split: true)
            }
        }
    }

    /// Bᵀ d B for the tiles `tiles` of one padded channel, four tiles at a time, into
    /// `target[ξ · step + (t - tiles.lowerBound)]`. A block is written whole: past the end of a
    /// row of tiles its extra values land on the next row's tiles (written again right after) or in
    /// the slack after the chunk.
    static func transformInput(
        _ plane: UnsafePointer<Float>, paddedWidth: Int, tileColumns: Int, tiles: Range<Int>,
        into target: UnsafeMutablePointer<Float>, step: Int
    ) {
        let raw = UnsafeRawPointer(plane)
        blocks(tiles, tileColumns: tileColumns) { t, ty, tx, _ in
            // Row 2ty + i of four tiles' patches, as its four columns 2tx + j.
            @inline(__always) func row(_ i: Int) -> Quad {
                let offset = ((2 * ty + i) * paddedWidth + 2 * tx) * 4
                let left = raw.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self)
                let right = raw.loadUnaligned(fromByteOffset: offset + 8, as: SIMD8<Float>.self)
                return Quad(even(left), odd(left), even(right), odd(right))
            }
            let (d0, d1, d2, d3) = (row(0), row(1), row(2), row(3))
            // Bᵀ d: rows d0 - d2, d1 + d2, d2 - d1, d1 - d3; then the same along each row.
            let out = UnsafeMutableRawPointer(target + (t - tiles.lowerBound))
            @inline(__always) func emit(_ i: Int, _ e: Quad) {
                out.storeBytes(of: e.a - e.c, toByteOffset: (i * 4) * step * 4, as: SIMD4<Float>.self)
                out.storeBytes(of: e.b + e.c, toByteOffset: (i * 4 + 1) * step * 4, as: SIMD4<Float>.self)
                out.storeBytes(of: e.c - e.b, toByteOffset: (i * 4 + 2) * step * 4, as: SIMD4<Float>.self)
                out.storeBytes(of: e.b - e.d, toByteOffset: (i * 4 + 3) * step * 4, as: SIMD4<Float>.self)
            }
            emit(0, d0 - d2)
            emit(1, d1 + d2)
            emit(2, d2 - d1)
            emit(3, d1 - d3)
        }
    }

    /// Aᵀ m A (+ bias, Relu) for the tiles `tiles` of one filter: four tiles' 2×2 outputs at a
    /// time from `products[ξ · step + (t - tiles.lowerBound)]`, written where they fall inside the
    /// output.
    static func transformOutput(
        _ products: UnsafePointer<Float>, step: Int, tileColumns: Int, tiles: Range<Int>,
        bias: Float, relu: Bool, outHeight: Int, outWidth: Int,
        into output: UnsafeMutablePointer<Float>
    ) {
        let raw = UnsafeRawPointer(products)
        blocks(tiles, tileColumns: tileColumns) { t, ty, tx, blockTiles in
            let base = (t - tiles.lowerBound) * 4
            // Row i of four tiles' products, as its four columns.
            @inline(__always) func row(_ i: Int) -> Quad {
                @inline(__always) func load(_ xi: Int) -> SIMD4<Float> { raw.loadUnaligned(fromByteOffset: base + xi * step * 4, as: SIMD4<Float>.self) }
                return Quad(load(4 * i), load(4 * i + 1), load(4 * i + 2), load(4 * i + 3))
            }
            // Aᵀ m: rows m0 + m1 + m2 and m1 - m2 - m3; then the same along each row.
            let (m0, m1, m2, m3) = (row(0), row(1), row(2), row(3))
            let s0 = m0 + m1 + m2, s1 = m1 - m2 - m3
            let biasLanes = SIMD4<Float>(repeating: bias)
            var y00 = s0.a + s0.b + s0.c + biasLanes, y01 = s0.b - s0.c - s0.d + biasLanes
            var y10 = s1.a + s1.b + s1.c + biasLanes, y11 = s1.b - s1.c - s1.d + biasLanes
            if relu {
                let zero = SIMD4<Float>()
                y00.replace(with: zero, where: y00 .< zero)
                y01.replace(with: zero, where: y01 .< zero)
                y10.replace(with: zero, where: y10 .< zero)
                y11.replace(with: zero, where: y11 .< zero)
            }
            let columns = Swift.min(2 * blockTiles, outWidth - 2 * tx)
            store(interleave(y00, y01), columns: columns, into: output + (2 * ty) * outWidth + 2 * tx)
            if 2 * ty + 1 < outHeight {
                store(interleave(y10, y11), columns: columns, into: output + (2 * ty + 1) * outWidth + 2 * tx)
            }
        }
    }

    /// Calls `body(t, ty, tx, count)` for the blocks of up to four consecutive tiles of `tiles`
    /// that share a row of tiles: t = ty · tileColumns + tx is the block's first tile.
    @inline(__always)
    static func blocks(_ tiles: Range<Int>, tileColumns: Int, _ body: (_ t: Int, _ ty: Int, _ tx: Int, _ count: Int) -> Void) {
        var t = tiles.lowerBound
        while t < tiles.upperBound {
            let (ty, firstColumn) = t.quotientAndRemainder(dividingBy: tileColumns)
            let rowEnd = Swift.min(tiles.upperBound, (ty + 1) * tileColumns)
            var tx = firstColumn
            while t < rowEnd {
                let count = Swift.min(4, rowEnd - t)
                body(t, ty, tx, count)
                t += count
                tx += count
            }
        }
    }

    /// The first `columns` (at most 8) values of `values` into `target`.
    @inline(__always)
    static func store(_ values: SIMD8<Float>, columns: Int, into target: UnsafeMutablePointer<Float>) {
        if columns == 8 {
            UnsafeMutableRawPointer(target).storeBytes(of: values, as: SIMD8<Float>.self)
            return
        }
        withUnsafeBytes(of: values) { UnsafeMutableRawPointer(target).copyMemory(from: $0.baseAddress!, byteCount: columns * 4) }
    }

    /// Lanes 0, 2, 4, 6, spelled out so they compile to one shuffle (`evenHalf` went through the
    /// stack lane by lane).
    @inline(__always)
    static func even(_ p: SIMD8<Float>) -> SIMD4<Float> { SIMD4(p[0], p[2], p[4], p[6]) }

    /// Lanes 1, 3, 5, 7.
    @inline(__always)
    static func odd(_ p: SIMD8<Float>) -> SIMD4<Float> { SIMD4(p[1], p[3], p[5], p[7]) }

    /// a0, b0, a1, b1, …
    @inline(__always)
    static func interleave(_ a: SIMD4<Float>, _ b: SIMD4<Float>) -> SIMD8<Float> {
        SIMD8(a[0], b[0], a[1], b[1], a[2], b[2], a[3], b[3])
    }
}

/// Four columns of four tiles, added and subtracted column by column: sixteen values that fit
/// in SSE registers, where sixteen tiles at a time spilled to the stack.
struct Quad {
    var a, b, c, d: SIMD4<Float>

    @inline(__always)
    init(_ a: SIMD4<Float>, _ b: SIMD4<Float>, _ c: SIMD4<Float>, _ d: SIMD4<Float>) {
        (self.a, self.b, self.c, self.d) = (a, b, c, d)
    }

    @inline(__always)
    static func + (l: Quad, r: Quad) -> Quad { Quad(l.a + r.a, l.b + r.b, l.c + r.c, l.d + r.d) }

    @inline(__always)
    static func - (l: Quad, r: Quad) -> Quad { Quad(l.a - r.a, l.b - r.b, l.c - r.c, l.d - r.d) }
}

/// Per Conv node: its transformed weights, made on the first run and kept while the weights
/// tensor is the same (an initializer, as it nearly always is). A run with other weights (fed as
/// an input) transforms them itself and replaces the entry.
final class ConvolutionCache: Sendable {
    private struct Entry: @unchecked Sendable {
        /// Held, so its identity cannot be reused by another tensor while the entry exists.
        let weights: TensorStorage
        let transformed: Tensor
    }

    private let entry = Mutex<Entry?>(nil)

    func transformed(for weights: Tensor, make: () -> Tensor) -> Tensor {
        if let hit = entry.withLock({ $0.flatMap { $0.weights === weights.storage ? $0.transformed : nil } }) { return hit }
        let made = make()
        entry.withLock { $0 = Entry(weights: weights.storage, transformed: made) }
        return made
    }
}
