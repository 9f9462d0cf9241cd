import Synchronization
import VesselKernelsAVX512
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
        into destination: UnsafeMutablePointer<Float>, threads: Int = Parallel.threads
    ) {
        let (height, width) = (g.input[0], g.input[1])
        let (outHeight, outWidth) = (g.output[0], g.output[1])
        let (padTop, padLeft) = (g.padBegin[0], g.padBegin[1])
        let (tileRows, tileColumns) = ((outHeight + 1) / 2, (outWidth + 1) / 2)
        let tiles = tileRows * tileColumns
        // The zero-padded image: tile (ty, tx) reads rows 2ty…2ty+3 and columns 2tx…2tx+3. A block
        // of L tiles (`WinogradTransforms.tilesPerBlock`) loads 2L values from columns 2tx and
        // 2tx+2, so a row reaches column 2·tileColumns + 2L - 1 at most.
        let lanes = WinogradKernels.tilesPerBlock
        let paddedHeight = 2 * tileRows + 2, paddedWidth = 2 * tileColumns + 2 * lanes
        let plane = paddedHeight * paddedWidth
        // Tiles per chunk: the chunk's transformed input and products (16 × (channels + filters)
        // rows) stay near 1 MiB, in a core's L2 between the transforms and the products (at 2 MiB
        // they went out to L3: SqueezeNet's first fire module 0.81 → 0.70 ms); at least 64
        // tiles, so each product is still wide enough to run at full speed. From 128 tiles on there
        // are at least two chunks, an even number of them, cut in whole groups of 16 tiles
        // (products 16 columns at a time run at full width) that differ by one group at most:
        // the first `extra` chunks take one more. (Chunks of one width with the rest in the last
        // cut SqueezeNet's 784 tiles 144, 144, 144, 144, 144, 64, so of two threads one took 432
        // tiles and the other 352; now 144 and five of 128, 400 and 384.) The cut depends on the
        // shapes only, never on the thread count, so the products, and the results, are the same
        // at any.
        let budget = Swift.max(64, (1 << 18) / (16 * (channels + filters)) / 16 * 16)
        let groups = (tiles + 15) / 16
        var count = (tiles + budget - 1) / budget
        if tiles >= 128 { count = (Swift.max(count, 2) + 1) / 2 * 2 }
        count = Swift.max(1, Swift.min(count, groups))
        let (base, extra) = groups.quotientAndRemainder(dividingBy: count)
        /// Chunk `index`'s tiles.
        func tileRange(_ index: Int) -> Range<Int> {
            let first = 16 * (index * base + Swift.min(index, extra))
            return first..<Swift.min(tiles, first + 16 * (base + (index < extra ? 1 : 0)))
        }
        let widest = Swift.min(tiles, 16 * (base + (extra > 0 ? 1 : 0)))
        // With at least a chunk per thread, every thread takes whole chunks with buffers of its
        // own; otherwise the chunks run one at a time with each step split across the threads.
        // (Splitting the steps when there were chunks enough made a 16-channel, 64-filter 55×55
        // convolution 1.8× slower on two threads than on one in some runs.)
        let perThread = threads > 1 && count >= threads
        // Rows of U and M have a block's values of slack: a block is written (and read) whole even
        // where fewer of its tiles are in the chunk.
        let rowLength = widest + lanes
        // The 16 matrices of U (and of M) lie one cache line more than their size apart. Back to
        // back, they were a multiple of 4 KiB apart for SqueezeNet's 55×55 expand convolutions
        // (64 · 160 floats), so the output transform's 16 loads of a block fell in one set of
        // the 8-way L1 and evicted one another (the convolution: 0.504 → 0.404 ms, one thread).
        let inputStep = channels * rowLength + 16, productStep = filters * rowLength + 16
        let paddedStorage = Tensor(uninitialized: .float32, shape: [channels * plane])
        withExtendedLifetime(paddedStorage) {
            let padded = paddedStorage.storage.pointer.bindMemory(to: Float.self, capacity: paddedStorage.count)
            Parallel.chunks(channels, minimum: Swift.max(1, 16_384 / plane), threads: threads) { range in
                for channel in range {
                    padPlane(
                        image + channel * height * width, height: height, width: width, top: padTop, left: padLeft,
                        into: padded + channel * plane, rows: paddedHeight, columns: paddedWidth)
                }
            }
            /// Chunks `chunks`, one after another, in buffers of their own; each step split across
            /// the threads when `split`.
            func run(_ chunks: Range<Int>, split: Bool) {
                let inputStorage = Tensor(uninitialized: .float32, shape: [16 * inputStep])
                let productStorage = Tensor(uninitialized: .float32, shape: [16 * productStep])
                withExtendedLifetime((inputStorage, productStorage)) {
                    let u = inputStorage.storage.pointer.bindMemory(to: Float.self, capacity: inputStorage.count)
                    let m = productStorage.storage.pointer.bindMemory(to: Float.self, capacity: productStorage.count)
                    func loop(_ count: Int, minimum: Int, _ body: (Range<Int>) -> Void) {
                        if split { Parallel.chunks(count, minimum: minimum, threads: threads, body) } else { body(0..<count) }
                    }
                    for index in chunks {
                        let chunkTiles = tileRange(index)
                        let (first, end) = (chunkTiles.lowerBound, chunkTiles.upperBound)
                        loop(channels, minimum: Swift.max(1, 4096 / (end - first))) { range in
                            for channel in range {
                                WinogradKernels.transformInput(
                                    padded + channel * plane, paddedWidth: paddedWidth, tileColumns: tileColumns,
                                    tiles: first..<end, into: u + channel * rowLength, step: inputStep)
                            }
                        }
                        func product(_ xi: Int) {
                            GEMM.multiply(
                                m: filters, n: end - first, k: channels, a: v + xi * filters * channels,
                                b: u + xi * inputStep, ldb: rowLength, c: m + xi * productStep, ldc: rowLength, threads: 1)
                        }
                        if split { Parallel.each(16, threads: threads, product) } else { for xi in 0..<16 { product(xi) } }
                        loop(filters, minimum: Swift.max(1, 4096 / (end - first))) { range in
                            for filter in range {
                                WinogradKernels.transformOutput(
                                    m + filter * rowLength, step: productStep, tileColumns: tileColumns, tiles: first..<end,
                                    bias: bias?[filter] ?? 0, relu: relu, outHeight: outHeight, outWidth: outWidth,
                                    into: destination + filter * outHeight * outWidth)
                            }
                        }
                    }
                }
            }
            if perThread {
                Parallel.chunks(count, minimum: 1, threads: threads) { run($0, split: false) }
            } else {
                run(0..<count, split: true)
            }
        }
    }
}

/// Per Conv node: its weights in the form its path computes from (Winograd's transform,
/// `DirectConvolution`'s packing), made on the first run and kept while the weights tensor and
/// the form are the same (an initializer, as it nearly always is; the form changes only when a
/// dynamic input size moves the node to another path). A run with other weights (fed as an
/// input) prepares them itself and replaces the entry.
final class ConvolutionCache: Sendable {
    enum Form: Equatable { case winograd, direct(DirectConvolution.Block) }

    private struct Entry: @unchecked Sendable {
        /// Held, so its identity cannot be reused by another tensor while the entry exists.
        let weights: TensorStorage
        let form: Form
        let prepared: Tensor
    }

    private let entry = Mutex<Entry?>(nil)

    func prepared(_ form: Form, for weights: Tensor, make: () -> Tensor) -> Tensor {
        if let hit = entry.withLock({ $0.flatMap { $0.weights === weights.storage && $0.form == form ? $0.prepared : nil } }) { return hit }
        let made = make()
        entry.withLock { $0 = Entry(weights: weights.storage, form: form, prepared: made) }
        return made
    }
}
