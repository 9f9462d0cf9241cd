import VesselKernelsAVX512
import VesselKernelsHaswell
import VesselTensor

/// A convolution and the max pool that alone reads it (`GraphBuilder.fuseConvolutionPool`), in
/// bands of output rows: each band's convolution rows are computed into a buffer that stays in
/// L2, then pooled from there, so the convolution's output never goes to memory whole and is
/// never read back from it. Every network here starts so: SqueezeNet's 3×3 stride-2 convolution
/// (64 filters, 111×111) and 3×3 stride-2 pool; ResNet-50's, DenseNet-121's and Inception v1's 7×7
/// stride-2 ones (64 filters, 112×112) and theirs. Alone, SqueezeNet's convolution took 0.72 ms;
/// inside the model, writing 3 MiB that the pool then read back, 0.95 ms and the pool 0.23.
///
/// The convolution rows are the blocked path's (`packedConvolutionBlock`, the same sums whatever
/// the split) and the pool the planes' (`WindowKernels.maxPlane`, or
/// `maxPlaneKeepingNaN` for a band holding a NaN), so the values are those of the two nodes run
/// one after the other, bit for bit, at any thread count.
struct ConvolutionPool {
    /// The pool's geometry over the convolution's output plane.
    let pool: WindowGeometry
    let windows: PoolWindows

    /// The fused way for a 2-D max pool (unit dilation) over a convolution output `convolution`
    /// wide and high, or nil where the pool runs after the convolution instead: planes narrower
    /// than sixteen (the padded-copy way is for those).
    init?(_ pool: WindowGeometry, over convolution: [Int]) {
        guard pool.input == convolution, convolution.count == 2, convolution[1] >= 16, pool.dilations == [1, 1] else { return nil }
        self.pool = pool
        windows = PoolWindows(pool)
    }

    /// How many pool rows a band holds: as many as keep its convolution rows (all filters) near
    /// 192 KiB, at least one.
    func bandRows(filters: Int) -> Int {
        let rowBytes = filters * pool.input[1] * MemoryLayout<Float>.size
        let convolutionRows = Swift.max(pool.kernel[0], 196_608 / Swift.max(rowBytes, 1))
        return Swift.max(1, (convolutionRows - pool.kernel[0]) / pool.strides[0] + 1)
    }

    /// One image: `image` (channels × the convolution's input plane) convolved with `weights`
    /// (filters × channels·kernel), its bias and Relu applied, max-pooled into `output` (filters ×
    /// the pool's output plane), the bands shared by `threads`.
    func run(
        _ image: UnsafePointer<Float>, weights: UnsafePointer<Float>, _ g: WindowGeometry, channels: Int, filters: Int,
        bias: UnsafePointer<Float>?, relu: Bool, into output: UnsafeMutablePointer<Float>, threads: Int = Parallel.threads
    ) {
        let width = g.output[1]
        let (outHeight, outWidth) = (pool.output[0], pool.output[1])
        let depth = channels * g.kernel.reduce(1, *)
        let bandRows = bandRows(filters: filters)
        let bands = (outHeight + bandRows - 1) / bandRows
        // The most convolution rows a band needs, and the convolution's column blocks within it.
        let capacity = (bandRows - 1) * pool.strides[0] + pool.kernel[0]
        let block = Swift.min(capacity * width, packedColumnWidest(rows: depth))
        let planeStride = capacity * width
        let rowBounds = windows.rowBounds
        Parallel.chunks(bands, minimum: 1, threads: threads) { range in
            let bandStorage = Tensor(uninitialized: .float32, shape: [filters * planeStride])
            let tileStorage = Tensor(uninitialized: .float32, shape: [depth * block])
            let panelStorage = Tensor(uninitialized: .float32, shape: [PackedWeights.packedCount(k: depth, n: block)])
            let columnsMax = UnsafeMutablePointer<Float>.allocate(capacity: width + 32)
            columnsMax.initialize(repeating: 0, count: width + 32)
            var general: UnsafeMutablePointer<Float>?
            defer {
                withExtendedLifetime((bandStorage, tileStorage, panelStorage)) {}
                columnsMax.deallocate()
                general?.deallocate()
            }
            let band = bandStorage.storage.pointer.bindMemory(to: Float.self, capacity: filters * planeStride)
            let tile = tileStorage.storage.pointer.bindMemory(to: Float.self, capacity: depth * block)
            let panels = panelStorage.storage.pointer.bindMemory(to: Float.self, capacity: panelStorage.count)
            // The convolution rows the band buffer holds, from its first row.
            var held = 0..<0
            for index in range {
                let rows = Band(index, rows: bandRows, outHeight: outHeight, rowBounds: rowBounds)
                // Rows the last band computed and this one reads again move to the top.
                let kept = rows.kept(after: held)
                if kept > 0 {
                    for f in 0..<filters {
                        let plane = band + f * planeStride
                        plane.update(from: plane + (rows.lo - held.lowerBound) * width, count: kept * width)
                    }
                }
                var position = (rows.lo + kept) * width
                while position < rows.hi * width {
                    let count = Swift.min(block, rows.hi * width - position)
                    packedConvolutionBlock(
                        image, weights: weights, g, channels: channels, filters: filters, positions: position..<(position + count), tile: tile,
                        panels: panels, into: band + (position - rows.lo * width), ldc: planeStride, threads: 1,
                        epilogue: .init(bias: bias, residual: nil, relu: relu))
                    position += count
                }
                held = rows.held
                for f in 0..<filters {
                    poolPlane(
                        band + f * planeStride, rows, columnsMax: columnsMax, general: &general, into: output + (f * outHeight + rows.first) * outWidth)
                }
            }
        }
    }

    /// A band: pool rows `first ..< last`, reading convolution rows `lo ..< hi`.
    struct Band {
        let first: Int, last: Int, lo: Int, hi: Int
        /// The band's pool rows' input row bounds (`PoolWindows.rowBounds`), from its first
        /// convolution row.
        let bounds: [Int]

        /// Band `index` of `rows` pool rows each (the last may have fewer) over `outHeight`.
        init(_ index: Int, rows: Int, outHeight: Int, rowBounds: [Int]) {
            let (first, last) = (index * rows, Swift.min(outHeight, (index + 1) * rows))
            let lo = rowBounds[2 * first]
            (self.first, self.last, self.lo) = (first, last, lo)
            hi = (first..<last).reduce(lo) { Swift.max($0, rowBounds[2 * $1 + 1]) }
            bounds = (first..<last).flatMap { [rowBounds[2 * $0] - lo, rowBounds[2 * $0 + 1] - lo] }
        }

        /// The convolution rows a buffer holds once the band's rows are in it.
        var held: Range<Int> { lo..<Swift.max(lo, hi) }

        /// How many of the band's first rows a buffer holding rows `held` (the last band's) has
        /// already: they move to the buffer's top instead of being computed again.
        func kept(after held: Range<Int>) -> Int { held.contains(lo) ? held.upperBound - lo : 0 }
    }

    /// One plane's band pooled (`WindowKernels.maxPlane`, else `maxPlaneKeepingNaN` in `general`,
    /// allocated the first time for any band, for a band holding a NaN): the band's convolution rows, `plane`
    /// on, into the pool rows, `target` on. `columnsMax` holds the convolution's width + 32 floats.
    func poolPlane(
        _ plane: UnsafePointer<Float>, _ band: Band, columnsMax: UnsafeMutablePointer<Float>, general: inout UnsafeMutablePointer<Float>?,
        into target: UnsafeMutablePointer<Float>
    ) {
        let (width, outWidth) = (pool.input[1], pool.output[1])
        windows.columnBounds.withUnsafeBufferPointer { columnBounds in
            if WindowKernels.maxPlane(
                plane, height: band.hi - band.lo, width: width, rowBounds: band.bounds, outHeight: band.last - band.first,
                columnBounds: columnBounds.baseAddress!, outWidth: outWidth, inside: windows.inside, stride: pool.strides[1], kernel: pool.kernel[1],
                columnsMax: columnsMax, into: target)
            {
                return
            }
            let buffer = general ?? UnsafeMutablePointer<Float>.allocate(capacity: pool.input[0] * outWidth)
            general = buffer
            maxPlaneKeepingNaN(
                plane, height: band.hi - band.lo, width: width, rowBounds: band.bounds, outHeight: band.last - band.first,
                columnBounds: columnBounds.baseAddress!, outWidth: outWidth, buffer: buffer, into: target)
        }
    }

    /// One image by `DirectConvolution`'s register blocks (AVX-512; `packed` the weights packed for
    /// `block`), bias and Relu applied, max-pooled into `output` (filters × the pool's output
    /// plane), the bands shared by `threads`. A band's convolution rows stay position-major, one
    /// filter group at a time (`block.filters` floats a position, as the blocks leave them), and
    /// are pooled so (`DirectConvolution.maxPool`, sixteen filters a vector whatever the pool's
    /// stride): only the pooled values are transposed out to the planes, a quarter of the
    /// convolution's for a stride-2 pool. The sums and the pool's order are the direct
    /// convolution's and the planes' pool's, so the values are those of the two nodes run one
    /// after the other, bit for bit; a band holding a NaN goes out to planes and is pooled as
    /// they are. In place of the whole convolution and the planes' pool after it, one thread, the
    /// stem node: SqueezeNet 0.758 → 0.605 ms (onnxruntime's Conv and MaxPool 0.52), ResNet-50
    /// 2.65 → 2.43, DenseNet-121 2.65 → 2.39.
    func runDirect(
        _ image: DirectImage, packed: UnsafePointer<Float>, block: DirectConvolution.Block, filters: Int, bias: UnsafePointer<Float>?, relu: Bool,
        into output: UnsafeMutablePointer<Float>, threads: Int = Parallel.threads
    ) {
        let width = pool.input[1]
        let (outHeight, outWidth) = (pool.output[0], pool.output[1])
        let lanes = block.filters, groups = (filters + lanes - 1) / lanes
        let bandRows = bandRows(filters: lanes)
        let bands = (outHeight + bandRows - 1) / bandRows
        let capacity = (bandRows - 1) * pool.strides[0] + pool.kernel[0]
        // Room past the last position for the blocks' last tile and the sixteen positions a
        // transposition reads.
        let bandFloats = (capacity * width + 16) * lanes, pooledFloats = (bandRows * outWidth + 16) * lanes
        let rowBounds = windows.rowBounds
        Parallel.chunks(bands, minimum: 1, threads: threads) { range in
            let buffers = UnsafeMutablePointer<Float>.allocate(capacity: groups * bandFloats + pooledFloats + width * lanes + width + 32)
            let pooled = buffers + groups * bandFloats, columnsMax = pooled + pooledFloats
            (columnsMax + width * lanes).initialize(repeating: 0, count: width + 32)
            var planes: UnsafeMutablePointer<Float>?, general: UnsafeMutablePointer<Float>?
            defer {
                buffers.deallocate()
                planes?.deallocate()
                general?.deallocate()
            }
            // The convolution rows each group's band buffer holds, from its first row.
            var held = 0..<0
            for index in range {
                let rows = Band(index, rows: bandRows, outHeight: outHeight, rowBounds: rowBounds)
                let (first, last, lo, hi) = (rows.first, rows.last, rows.lo, rows.hi)
                // Rows the last band computed and this one reads again stay, moved to the top.
                let kept = rows.kept(after: held)
                for group in 0..<groups {
                    let band = buffers + group * bandFloats
                    if kept > 0 { band.update(from: band + (lo - held.lowerBound) * width * lanes, count: kept * width * lanes) }
                    if hi > lo + kept {
                        DirectConvolution.accumulate(
                            image.source, packed: packed, image.geometry, filters: filters, block: block, group: group,
                            positions: (lo + kept) * width..<hi * width, bias: bias, relu: relu, into: band + kept * width * lanes)
                    }
                    let count = Swift.min(lanes, filters - group * lanes)
                    let target = output + group * lanes * outHeight * outWidth + first * outWidth
                    let pooledAll = windows.columnBounds.withUnsafeBufferPointer { columnBounds in
                        DirectConvolution.maxPool(
                            band, lanes: lanes, width: width, rowBounds: rows.bounds, outHeight: last - first, columnBounds: columnBounds.baseAddress!,
                            outWidth: outWidth, columnsMax: columnsMax, into: pooled)
                    }
                    if pooledAll {
                        DirectConvolution.store(
                            pooled, block: block, positions: (last - first) * outWidth, filters: count, into: target, spatial: outHeight * outWidth,
                            adding: nil, relu: false)
                        continue
                    }
                    // A NaN: the band out to planes, each pooled the planes' way.
                    let spatial = (hi - lo) * width
                    let buffer = planes ?? UnsafeMutablePointer<Float>.allocate(capacity: lanes * capacity * width)
                    planes = buffer
                    DirectConvolution.store(band, block: block, positions: spatial, filters: count, into: buffer, spatial: spatial, adding: nil, relu: false)
                    for f in 0..<count {
                        poolPlane(
                            buffer + f * spatial, rows, columnsMax: columnsMax + width * lanes, general: &general, into: target + f * outHeight * outWidth)
                    }
                }
                held = rows.held
            }
        }
    }
}
