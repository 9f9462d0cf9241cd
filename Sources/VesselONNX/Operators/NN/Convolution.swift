#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import VesselKernelsAVX512
import VesselKernelsHaswell
import VesselTensor

/// Window geometry shared by Conv and the pooling operators, for any number of spatial axes.
struct WindowGeometry {
    var input: [Int]
    var kernel: [Int]
    var strides: [Int]
    var dilations: [Int]
    var padBegin: [Int]
    var padEnd: [Int]
    var output: [Int]

    /// A geometry as given, unchecked (the tests' convolutions).
    init(input: [Int], kernel: [Int], strides: [Int], dilations: [Int], padBegin: [Int], padEnd: [Int], output: [Int]) {
        (self.input, self.kernel, self.strides, self.dilations) = (input, kernel, strides, dilations)
        (self.padBegin, self.padEnd, self.output) = (padBegin, padEnd, output)
    }

    init(input: [Int], kernel: [Int], attributes a: Attributes, ceilMode: Bool = false, context: KernelContext) throws {
        let n = input.count
        self.input = input
        self.kernel = kernel
        strides = a.ints("strides") ?? [Int](repeating: 1, count: n)
        dilations = a.ints("dilations") ?? [Int](repeating: 1, count: n)
        let pads = a.ints("pads") ?? [Int](repeating: 0, count: 2 * n)
        try Self.check(input: input, kernel: kernel, strides: strides, dilations: dilations, pads: pads, context: context)
        padBegin = Array(pads[..<n])
        padEnd = Array(pads[n...])
        output = []
        let autoPad = a.string("auto_pad", default: "NOTSET")
        for d in 0..<n {
            let extent = dilations[d] * (kernel[d] - 1) + 1
            switch autoPad {
            case "SAME_UPPER", "SAME_LOWER":
                let out = (input[d] + strides[d] - 1) / strides[d]
                let total = Swift.max(0, (out - 1) * strides[d] + extent - input[d])
                padBegin[d] = autoPad == "SAME_UPPER" ? total / 2 : total - total / 2
                padEnd[d] = total - padBegin[d]
                output.append(out)
            case "VALID":
                padBegin[d] = 0
                padEnd[d] = 0
                output.append((input[d] - extent) / strides[d] + 1)
            default:
                let span = input[d] + padBegin[d] + padEnd[d] - extent
                var out = (ceilMode ? (span + strides[d] - 1) / strides[d] : span / strides[d]) + 1
                // With ceil_mode, a last window that would start inside the end padding is dropped.
                if ceilMode, (out - 1) * strides[d] >= input[d] + padBegin[d] { out -= 1 }
                output.append(out)
            }
        }
        guard output.allSatisfy({ $0 > 0 }) else { throw context.invalid("the window does not fit: input \(input), kernel \(kernel)") }
    }

    /// One value per spatial axis (two for pads), each bounded so every product the window
    /// arithmetic forms fits an Int. `AttributeRules` says the same for attributes at load; this
    /// also covers kernels taken from weight shapes and the input's own sizes. Conv, the pools and
    /// ConvTranspose all check here.
    static func check(
        input: [Int], kernel: [Int], strides: [Int], dilations: [Int], pads: [Int], outputPadding: [Int]? = nil,
        context: KernelContext
    ) throws {
        let n = input.count
        guard kernel.count == n, strides.count == n, dilations.count == n, pads.count == 2 * n, (outputPadding?.count ?? n) == n else {
            throw context.invalid("kernel_shape, strides, dilations\(outputPadding == nil ? "" : ", output_padding") and pads must match \(n) spatial axes")
        }
        let limit = 1 << 31
        guard strides.allSatisfy({ (1...limit).contains($0) }), dilations.allSatisfy({ (1...limit).contains($0) }),
            kernel.allSatisfy({ (1...limit).contains($0) }), pads.allSatisfy({ (0...limit).contains($0) }),
            (outputPadding ?? []).allSatisfy({ (0...limit).contains($0) }), input.allSatisfy({ $0 <= limit })
        else {
            throw context.invalid(
                "kernel \(kernel), strides \(strides) and dilations \(dilations) must be positive and pads \(pads)\(outputPadding.map { " and output_padding \($0)" } ?? "") non-negative, all at most 2^31"
            )
        }
    }
}

extension KernelRegistry {
    static func registerConvolution(_ r: inout KernelRegistry) {
        r.registerPrepared("Conv", convKernel)
        r.register("ConvTranspose", convTransposeKernel)
    }

    static func convKernel(_ _: Node) throws -> KernelFunction {
        let cache = ConvolutionCache()
        return { c, i in
            let x = try c.input(i, 0), w = try c.input(i, 1)
            return [try convolution(x, w, i.count > 2 ? i[2] : nil, c, cache: cache)]
        }
    }

    static func convTransposeKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let x = try c.input(i, 0), w = try c.input(i, 1)
        return [try convolutionTranspose(x, w, i.count > 2 ? i[2] : nil, c)]
    }
}

/// Conv as im2col + GEMM per image and group.
///
/// With `residual` (a float32 tensor of the output's shape: a residual connection's Add fused at
/// load) each output has it added after the bias, before the Relu — in the same pass on the
/// direct and packed paths (an AVX2 or AVX-512 CPU), in one pass after the others. With
/// `residualInPlace` (nothing reads the residual after this node, `fuseResidual`) those two paths
/// write the sums over it and return it as the output: each value is read and written at one place.
/// With `relu` (a Conv whose only reader was a Relu, fused at load), the bias and the Relu are
/// one pass over each image's output, with the same arithmetic as two.
/// `cache` keeps a node's weights in the form a path prepares them in (Winograd's transform, the
/// direct kernel's packing).
/// With `maxPool` (the context of a MaxPool that alone read the output, fused at load), the result
/// is the pooled output: in bands (`ConvolutionPool`) where the blocked or direct path runs, else
/// the pool after the whole convolution.
/// With `destination` (float32 X and W, no pool: a Concat's slice, `fuseConcatenation`), the
/// output is written there, its images `destinationStride` values apart, and the tensor returned
/// is empty.
func convolution(
    _ x: Tensor, _ w: Tensor, _ bias: Tensor?, _ c: KernelContext, relu: Bool = false, residual: Tensor? = nil,
    residualInPlace: Bool = false, maxPool: KernelContext? = nil, into destination: UnsafeMutablePointer<Float>? = nil, destinationStride: Int = 0,
    cache: ConvolutionCache? = nil
) throws -> Tensor {
    guard x.rank >= 3, w.rank == x.rank else { throw c.invalid("Conv needs X and W of the same rank ≥ 3, got \(x.shape) and \(w.shape)") }
    let group = c.attributes.int("group", default: 1)
    let (batch, channels) = (x.shape[0], x.shape[1])
    let (filters, channelsPerGroup) = (w.shape[0], w.shape[1])
    guard group >= 1, channels == channelsPerGroup.multipliedReportingOverflow(by: group).partialValue, filters % group == 0 else {
        throw c.invalid("X has \(channels) channels, W expects \(channelsPerGroup) × group \(group)")
    }
    let kernel = c.attributes.ints("kernel_shape") ?? Array(w.shape[2...])
    guard kernel == Array(w.shape[2...]) else { throw c.invalid("kernel_shape \(kernel) differs from the weights' shape \(w.shape)") }
    if let bias, bias.shape != [filters] { throw c.invalid("B has shape \(bias.shape); it must be [\(filters)]") }
    let g = try WindowGeometry(input: Array(x.shape[2...]), kernel: kernel, attributes: c.attributes, context: c)
    try c.checkAllocation(.float32, [batch, filters] + g.output)
    try c.checkAllocation(.float32, [channelsPerGroup] + kernel + g.output)
    let spatial = g.output.reduce(1, *), inputSpatial = g.input.reduce(1, *)
    let kernelSize = kernel.reduce(1, *)
    let rows = channelsPerGroup * kernelSize
    let filtersPerGroup = filters / group
    let dtype = x.dtype
    let fx = Cast.convert(x, to: .float32), fw = Cast.convert(w, to: .float32)
    if let residual, residual.dtype != .float32 || residual.shape != [batch, filters] + g.output {
        throw c.invalid("the residual added to the output is \(residual.dtype.rawValue) \(residual.shape), not float32 \([batch, filters] + g.output)")
    }
    // A 1×1 kernel with unit strides and no padding reads each input plane as it is: the
    // channel-by-pixel matrix is the GEMM operand, with no im2col copy.
    let pointwise =
        kernelSize == 1 && g.strides.allSatisfy { $0 == 1 } && g.padBegin.allSatisfy { $0 == 0 }
        && g.padEnd.allSatisfy { $0 == 0 } && spatial == inputSpatial
    // A 2-D kernel with unit strides reads the zero-padded image at a fixed offset per kernel
    // position, so each position can be a GEMM over a strided view of it (shiftedConvolution2D):
    // no im2col matrix (kernel-size × channels rows) written and read, but kernel-size passes over
    // the output (filters rows). That pays when the filters are at most half the channels (before
    // Winograd took them, DenseNet's 32-filter 3×3 convolutions over 128 channels: 96 → 86 ms for
    // the whole model); with as many filters as channels im2col is faster.
    // 3×3 with unit strides: Winograd's F(2×2, 3×3), 2.25× fewer multiply-adds (Winograd.swift).
    // On an AVX-512 CPU, the shapes `directBlock` names run straight from the image
    // (directConvolution), ahead of Winograd and shifted GEMMs.
    let directBlock = RowKernels.variant == .avx512 && group == 1 && g.input.count == 2 ? directBlock(g, channels: channels, filters: filters) : nil
    let direct = directBlock != nil
    let winograd = !direct && Winograd.applies(g, channelsPerGroup: channelsPerGroup, filtersPerGroup: filtersPerGroup)
    let shifted =
        !direct && !pointwise && !winograd && g.input.count == 2 && g.strides == [1, 1] && kernelSize > 1
        && filtersPerGroup * 2 <= channelsPerGroup
    // Small weights (GEMM.columnBlock), or any on an AVX2 or AVX-512 CPU (packedColumnBlock): the output
    // in column blocks, each block's im2col columns, product, bias and Relu done while the block
    // is in cache (blockedConvolution).
    let blockWidth =
        direct || winograd || shifted || !(pointwise || g.input.count == 2)
        ? nil : RowKernels.variant.hasAVX2 ? packedColumnBlock(rows: rows, spatial: spatial) : GEMM.columnBlock(m: filtersPerGroup, k: rows)
    // A fused max pool runs in bands where the blocked or direct path does (float32, no residual).
    let poolGeometry = try maxPool.map { p in
        try WindowGeometry(
            input: g.output, kernel: try p.attributes.required("kernel_shape", p.attributes.ints), attributes: p.attributes,
            ceilMode: p.attributes.int("ceil_mode", default: 0) == 1, context: p)
    }
    let banded: ConvolutionPool? =
        (blockWidth != nil && !pointwise || direct) && group == 1 && residual == nil && dtype == .float32 && RowKernels.variant.hasAVX2
        ? poolGeometry.flatMap { ConvolutionPool($0, over: g.output) } : nil
    if let banded { try c.checkAllocation(.float32, [batch, filters] + banded.pool.output) }
    if destination != nil, maxPool != nil || x.dtype != .float32 || w.dtype != .float32 {
        throw c.invalid("a convolution written into a slice takes float32 values and no pool")
    }
    // The direct and blocked paths add a residual as they store; the others leave their outputs
    // to one pass that adds it and then applies the Relu.
    let residualPass = residual != nil && !direct && blockWidth == nil
    // Where the residual is added as each value is stored (the direct path, the blocked one's
    // packed products), the sums may go over it: each value is read, then written, at one place.
    let overResidual = residual.flatMap { residual in
        residualInPlace && destination == nil && (direct || (blockWidth != nil && RowKernels.variant.hasAVX2))
            && !residual.storage.isReadOnly ? residual : nil
    }
    // Every element is written by a GEMM (beta 0), so no zero fill.
    let out =
        overResidual ?? Tensor(uninitialized: .float32, shape: destination == nil ? [batch, filters] + (banded?.pool.output ?? g.output) : [0])
    // Where image n's output starts.
    let imageStride = destination == nil ? filters * (banded?.pool.output ?? g.output).reduce(1, *) : destinationStride
    let innerRelu = relu && !residualPass
    // For each kernel position and output position, the input offset within one channel (or -1 in padding).
    let taps = pointwise || g.input.count == 2 ? [] : im2colOffsets(g)
    // The im2col matrix comes from the storage cache, so its (often megabytes of) pages are
    // reused run after run instead of faulted in anew.
    let columnStorage = Tensor(uninitialized: .float32, shape: [pointwise || shifted || winograd || direct || blockWidth != nil ? 0 : rows * spatial])
    let columns = columnStorage.storage.pointer.bindMemory(to: Float.self, capacity: rows * spatial)
    defer { withExtendedLifetime(columnStorage) {} }
    let biasValues = try bias.map { b -> [Float] in
        guard b.count == filters else { throw c.invalid("B has \(b.count) values for \(filters) filters") }
        return Cast.convert(b, to: .float32).scalars(as: Float.self)
    }
    let transformed: Tensor? =
        winograd
        ? {
            let make = {
                fw.withUnsafeBufferPointer(as: Float.self) {
                    Winograd.transformWeights($0.baseAddress!, groups: group, filtersPerGroup: filtersPerGroup, channelsPerGroup: channelsPerGroup)
                }
            }
            return cache?.prepared(.winograd, for: w, make: make) ?? make()
        }() : nil
    let packedDirect: Tensor? = directBlock.map { block in
        let make = {
            let packed = Tensor(uninitialized: .float32, shape: [DirectConvolution.packedCount(filters: filters, taps: rows, block: block)])
            fw.withUnsafeBufferPointer(as: Float.self) { pw in
                packed.withUnsafeMutableBufferPointer(as: Float.self) {
                    DirectConvolution.pack(pw.baseAddress!, filters: filters, taps: rows, block: block, into: $0.baseAddress!)
                }
            }
            return packed
        }
        return cache?.prepared(.direct(block), for: w, make: make) ?? make()
    }
    /// `body` with group gi's biases, or nil without a bias.
    func withGroupBias(_ gi: Int, _ body: (UnsafePointer<Float>?) -> Void) {
        guard let biasValues else { return body(nil) }
        biasValues.withUnsafeBufferPointer { body($0.baseAddress! + gi * filtersPerGroup) }
    }
    let residualFloats = residual ?? Tensor(uninitialized: .float32, shape: [0])
    fx.withUnsafeBufferPointer(as: Float.self) { px in
        fw.withUnsafeBufferPointer(as: Float.self) { pw in
            residualFloats.withUnsafeBufferPointer(as: Float.self) { pr in
                out.withUnsafeMutableBufferPointer(as: Float.self) { po in
                    let outputBase = destination ?? po.baseAddress!
                    for n in 0..<batch {
                        for gi in 0..<group {
                            let image = px.baseAddress! + (n * channels + gi * channelsPerGroup) * inputSpatial
                            let weights = pw.baseAddress! + gi * filtersPerGroup * rows
                            let destination = outputBase + n * imageStride + gi * filtersPerGroup * spatial
                            let added = residual == nil ? nil : pr.baseAddress! + (n * filters + gi * filtersPerGroup) * spatial
                            if let banded, let packedDirect, let directBlock {
                                let image = DirectImage(image, g, channels: channelsPerGroup)
                                packedDirect.withUnsafeBufferPointer(as: Float.self) { packed in
                                    withGroupBias(gi) { bias in
                                        banded.runDirect(
                                            image, packed: packed.baseAddress!, block: directBlock, filters: filtersPerGroup, bias: bias, relu: relu,
                                            into: outputBase + n * imageStride)
                                    }
                                }
                                continue
                            }
                            if let banded {
                                withGroupBias(gi) { bias in
                                    banded.run(
                                        image, weights: weights, g, channels: channelsPerGroup, filters: filtersPerGroup, bias: bias, relu: relu,
                                        into: outputBase + n * imageStride)
                                }
                                continue
                            }
                            if let packedDirect, let directBlock {
                                packedDirect.withUnsafeBufferPointer(as: Float.self) { packed in
                                    withGroupBias(gi) { bias in
                                        directConvolution(
                                            image, packed: packed.baseAddress!, block: directBlock, g, channels: channelsPerGroup, filters: filtersPerGroup,
                                            bias: bias, residual: added, relu: relu, into: destination)
                                    }
                                }
                                continue
                            }
                            if let block = blockWidth {
                                withGroupBias(gi) { bias in
                                    blockedConvolution(
                                        image, weights: weights, g, channels: channelsPerGroup, filters: filtersPerGroup,
                                        pointwise: pointwise, block: block, bias: bias, residual: added, relu: relu, into: destination)
                                }
                                continue
                            }
                            if pointwise {
                                GEMM.multiply(m: filtersPerGroup, n: spatial, k: rows, a: weights, b: image, c: destination)
                                continue
                            }
                            if let transformed {
                                transformed.withUnsafeBufferPointer(as: Float.self) { v in
                                    withGroupBias(gi) { bias in
                                        Winograd.convolve(
                                            image, transformed: v.baseAddress! + gi * 16 * filtersPerGroup * channelsPerGroup, g,
                                            channels: channelsPerGroup, filters: filtersPerGroup, bias: bias, relu: innerRelu,
                                            into: destination)
                                    }
                                }
                                continue
                            }
                            if shifted {
                                withGroupBias(gi) { bias in
                                    shiftedConvolution2D(
                                        image, weights: weights, g, channels: channelsPerGroup, filters: filtersPerGroup,
                                        bias: bias, relu: innerRelu, into: destination)
                                }
                                continue
                            }
                            if g.input.count == 2 {
                                Parallel.chunks(channelsPerGroup, minimum: Swift.max(1, 16_384 / Swift.max(kernelSize * spatial, 1))) { range in
                                    im2col2D(image, g, channels: range, positions: 0..<spatial, into: columns, rowLength: spatial)
                                }
                            } else {
                                for channel in 0..<channelsPerGroup {
                                    let source = image + channel * inputSpatial
                                    for k in 0..<kernelSize {
                                        let row = columns + (channel * kernelSize + k) * spatial
                                        let tap = k * spatial
                                        for s in 0..<spatial {
                                            let offset = taps[tap + s]
                                            row[s] = offset < 0 ? 0 : source[offset]
                                        }
                                    }
                                }
                            }
                            GEMM.multiply(m: filtersPerGroup, n: spatial, k: rows, a: weights, b: columns, c: destination)
                        }
                        if !shifted, !winograd, !direct, blockWidth == nil, biasValues != nil || innerRelu {
                            let image = outputBase + n * imageStride
                            Parallel.chunks(filters, minimum: Swift.max(1, 65_536 / Swift.max(spatial, 1))) { range in
                                for f in range {
                                    let destination = image + f * spatial
                                    WindowKernels.biasRelu(destination, into: destination, count: spatial, bias: biasValues?[f], relu: innerRelu)
                                }
                            }
                        }
                        if residualPass {
                            let image = outputBase + n * imageStride, added = pr.baseAddress! + n * filters * spatial
                            Parallel.chunks(filters, minimum: Swift.max(1, 65_536 / Swift.max(spatial, 1))) { range in
                                for f in range {
                                    let target = image + f * spatial, source = added + f * spatial
                                    for i in 0..<spatial {
                                        let v = target[i] + source[i]
                                        target[i] = relu && v < 0 ? 0 : v
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    if let maxPool, banded == nil { return try pool(Cast.convert(out, to: dtype), maxPool, kind: .max)[0] }
    return Cast.convert(out, to: dtype)
}

/// The shape `convolution` gives X and W under the node's attributes.
func convolutionShape(_ x: Tensor, _ w: Tensor, _ c: KernelContext) throws -> [Int] {
    guard x.rank >= 3, w.rank == x.rank else { throw c.invalid("Conv needs X and W of the same rank ≥ 3, got \(x.shape) and \(w.shape)") }
    let kernel = c.attributes.ints("kernel_shape") ?? Array(w.shape[2...])
    let g = try WindowGeometry(input: Array(x.shape[2...]), kernel: kernel, attributes: c.attributes, context: c)
    return [x.shape[0], w.shape[0]] + g.output
}

/// The column blocks of a convolution on an AVX2 or AVX-512 CPU (`blockedConvolution`): as wide as keeps
/// a block's packed columns (`rows` of them) near 128 KiB, in L2 beside the weights' row tile,
/// from 32 to 256 columns (whole pairs of 16-column panels); a small image (at most 256
/// positions) is one block, so its weights stream past once (ResNet's 2048-deep 7×7 products in
/// two 32-column blocks read their 4 MiB of weights twice: 0.54 ms, in one 0.41).
/// The blocks are then evened out over the threads: as many as that width needs, rounded up to a
/// whole number per thread, of equal width in whole panels (ResNet's 128→512 pointwise product
/// over 28×28 went in blocks of 256, 256, 256 and 16 columns, two for each of two threads: 1.5×
/// faster than one thread, now 208, 208, 208 and 160). Any cut gives the same sums: `PackedGEMM`
/// sums each element in order whatever the split.
func packedColumnBlock(rows: Int, spatial: Int, threads: Int = Parallel.threads) -> Int {
    guard spatial > 256 else { return Swift.max(spatial, 1) }
    let widest = packedColumnWidest(rows: rows)
    let blocks = ((spatial + widest - 1) / widest + threads - 1) / threads * threads
    return ((spatial + blocks - 1) / blocks + 15) / 16 * 16
}

/// The widest column block `packedColumnBlock` makes for `rows`-deep columns.
func packedColumnWidest(rows: Int) -> Int { Swift.min(256, Swift.max(32, 32_768 / Swift.max(rows, 1) / 32 * 32)) }

/// One column block of a 2-D convolution on an AVX2 or AVX-512 CPU, output positions
/// `positions`: their im2col columns gathered into `tile` (by `threads`, channels apiece; `tile`
/// nil for a pointwise kernel, whose image is read in place), packed into `panels` (on an AVX-512
/// CPU read where they lie, only a partial last panel packed there), multiplied by
/// `PackedGEMM` with `epilogue` applied as it stores, into `c` (filter rows `ldc` apart). The
/// blocked path (`blockedConvolution`) and the banded Conv + MaxPool (`ConvolutionPool`) both run
/// their products here, so both give the same sums, whatever the split.
func packedConvolutionBlock(
    _ image: UnsafePointer<Float>, weights: UnsafePointer<Float>, _ g: WindowGeometry, channels: Int, filters: Int, positions: Range<Int>,
    tile: UnsafeMutablePointer<Float>?, panels: UnsafeMutablePointer<Float>, into c: UnsafeMutablePointer<Float>, ldc: Int, threads: Int,
    epilogue: PackedWeights.Epilogue
) {
    let kernelSize = g.kernel.reduce(1, *), width = positions.count
    if let tile {
        // A block the threads share has its columns gathered by all of them (ResNet-50's
        // 512-channel 3×3 stride-2 convolution over 14×14 is one block of 4,608 rows of 49;
        // gathered by all threads, two take 1.67 ms instead of 1.84, and the 256-channel one over
        // 28×28 1.56 instead of 1.77).
        Parallel.chunks(channels, minimum: Swift.max(1, 16_384 / Swift.max(kernelSize * width, 1)), threads: threads) { range in
            im2col2D(image, g, channels: range, positions: positions, into: tile, rowLength: width)
        }
    }
    PackedWeights.packAndMultiply(
        weights, rows: filters, k: channels * kernelSize, n: width, b: tile.map { UnsafePointer($0) } ?? image + positions.lowerBound,
        ldb: tile == nil ? g.output.reduce(1, *) : width, transposed: false, scratch: panels, c: c, ldc: ldc, threads: threads, epilogue: epilogue,
        inPlace: true)
}

/// A convolution with small weights (`GEMM.columnBlock`: at most 16K values), or any weights on
/// an AVX2 or AVX-512 CPU (`packedColumnBlock`), in column blocks of the output, `block` output
/// positions at a time: the block's im2col columns (a few kilobytes; none for a pointwise kernel,
/// which reads the image in place), its product, then its bias and Relu, all while the block is
/// in cache. The whole-image way wrote and re-read an im2col matrix
/// and then passed over the whole output again for the bias and Relu: SqueezeNet's first
/// convolution (3×3, stride 2, 64 filters over 3 channels) took 1.35 ms that way inside the model
/// against 0.6 ms alone. On an AVX2 or AVX-512 CPU the block's columns are packed and the product adds
/// the bias and applies the Relu as it stores. Each block is one product of the same width over
/// the same columns whatever the thread count, so results do not depend on it.
func blockedConvolution(
    _ image: UnsafePointer<Float>, weights: UnsafePointer<Float>, _ g: WindowGeometry, channels: Int, filters: Int,
    pointwise: Bool, block: Int, bias: UnsafePointer<Float>?, residual: UnsafePointer<Float>? = nil, relu: Bool,
    into destination: UnsafeMutablePointer<Float>
) {
    let spatial = g.output.reduce(1, *)
    let rows = channels * g.kernel.reduce(1, *)
    let blocks = (spatial + block - 1) / block
    let packed = RowKernels.variant.hasAVX2
    func packedBlock(_ first: Int, _ width: Int, tile: UnsafeMutablePointer<Float>?, panels: UnsafeMutablePointer<Float>, threads: Int) {
        packedConvolutionBlock(
            image, weights: weights, g, channels: channels, filters: filters, positions: first..<(first + width), tile: tile, panels: panels,
            into: destination + first, ldc: spatial, threads: threads, epilogue: .init(bias: bias, residual: residual.map { $0 + first }, relu: relu))
    }
    let splitBlocks = !(packed && blocks == 1)
    Parallel.chunks(blocks, minimum: Swift.max(1, GEMM.splitWork / Swift.max(filters * rows * block, 1))) { range in
        // From the storage cache: a small image's one block can be a megabyte or two, whose
        // pages would otherwise be faulted in anew every run.
        let tileStorage = Tensor(uninitialized: .float32, shape: [pointwise ? 0 : rows * block])
        let panelStorage = Tensor(uninitialized: .float32, shape: [packed ? PackedWeights.packedCount(k: rows, n: block) : 0])
        defer { withExtendedLifetime((tileStorage, panelStorage)) {} }
        let tile: UnsafeMutablePointer<Float>? = pointwise ? nil : tileStorage.storage.pointer.bindMemory(to: Float.self, capacity: rows * block)
        let panels: UnsafeMutablePointer<Float>? = packed ? panelStorage.storage.pointer.bindMemory(to: Float.self, capacity: panelStorage.count) : nil
        for index in range {
            let first = index * block, width = Swift.min(block, spatial - first)
            if let panels {
                // One block (a small image): its product splits across the threads instead.
                packedBlock(first, width, tile: tile, panels: panels, threads: splitBlocks ? 1 : Parallel.threads)
                continue
            }
            if let tile {
                im2col2D(image, g, channels: 0..<channels, positions: first..<(first + width), into: tile, rowLength: width)
                GEMM.multiply(m: filters, n: width, k: rows, a: weights, b: tile, c: destination + first, ldc: spatial)
            } else {
                GEMM.multiply(m: filters, n: width, k: rows, a: weights, b: image + first, ldb: spatial, c: destination + first, ldc: spatial)
            }
            guard bias != nil || relu || residual != nil else { continue }
            for f in 0..<filters {
                let target = destination + f * spatial + first
                WindowKernels.biasRelu(target, into: target, count: width, bias: bias?[f], relu: relu && residual == nil)
                guard let residual else { continue }
                let source = residual + f * spatial + first
                for i in 0..<width {
                    let v = target[i] + source[i]
                    target[i] = relu && v < 0 ? 0 : v
                }
            }
        }
    }
}

/// A 2-D convolution with unit strides as one GEMM per kernel position, with no im2col matrix.
///
/// The image is copied once into a zero-padded buffer, `channels` planes of paddedHeight ×
/// paddedWidth. For kernel position (kh, kw) the input under output (oh, ow) sits at
/// (oh + kh·dilation) · paddedWidth + ow + kw·dilation: a fixed offset from oh · paddedWidth + ow.
/// So "output rows as wide as the padded image" are a GEMM of that position's weights (filters ×
/// channels) with the padded planes read from that offset (a channels × outHeight·paddedWidth
/// view, row distance one plane). The positions accumulate into one wide output; the columns past
/// outWidth in each row are discarded when the wide output is copied down to the result, with the
/// bias and Relu applied on the way. Against im2col it saves writing and re-reading a matrix
/// kernel-size times the image, and costs kernel-size passes over the output.
func shiftedConvolution2D(
    _ image: UnsafePointer<Float>, weights: UnsafePointer<Float>, _ g: WindowGeometry, channels: Int, filters: Int,
    bias: UnsafePointer<Float>?, relu: Bool, into destination: UnsafeMutablePointer<Float>
) {
    let (height, width) = (g.input[0], g.input[1])
    let (outHeight, outWidth) = (g.output[0], g.output[1])
    let (kernelHeight, kernelWidth) = (g.kernel[0], g.kernel[1])
    let (dilationH, dilationW) = (g.dilations[0], g.dilations[1])
    let (padTop, padLeft) = (g.padBegin[0], g.padBegin[1])
    // Wide enough that every output column's window fits: outWidth + the kernel's extent - 1.
    let paddedWidth = outWidth + (kernelWidth - 1) * dilationW
    let paddedHeight = outHeight + (kernelHeight - 1) * dilationH
    let plane = paddedHeight * paddedWidth
    let kernelSize = kernelHeight * kernelWidth
    // The last position's view of the last plane runs (kernelWidth - 1) · dilationW values past
    // it (into columns that are discarded): room for that.
    let paddedStorage = Tensor(uninitialized: .float32, shape: [channels * plane + (kernelWidth - 1) * dilationW])
    let tapStorage = Tensor(uninitialized: .float32, shape: [kernelSize * filters * channels])
    let wideStorage = Tensor(uninitialized: .float32, shape: [filters * outHeight * paddedWidth])
    withExtendedLifetime((paddedStorage, tapStorage, wideStorage)) {
        let padded = paddedStorage.storage.pointer.bindMemory(to: Float.self, capacity: paddedStorage.count)
        let tapWeights = tapStorage.storage.pointer.bindMemory(to: Float.self, capacity: tapStorage.count)
        let wide = wideStorage.storage.pointer.bindMemory(to: Float.self, capacity: wideStorage.count)
        (padded + channels * plane).initialize(repeating: 0, count: (kernelWidth - 1) * dilationW)
        Parallel.chunks(channels, minimum: Swift.max(1, 16_384 / Swift.max(plane, 1))) { range in
            for channel in range {
                padPlane(
                    image + channel * height * width, height: height, width: width, top: padTop, left: padLeft,
                    into: padded + channel * plane, rows: paddedHeight, columns: paddedWidth)
            }
        }
        // Weights by position: tapWeights[position] is filters × channels.
        for f in 0..<filters {
            for c in 0..<channels {
                let source = weights + (f * channels + c) * kernelSize
                for position in 0..<kernelSize { tapWeights[(position * filters + f) * channels + c] = source[position] }
            }
        }
        for kh in 0..<kernelHeight {
            for kw in 0..<kernelWidth {
                let position = kh * kernelWidth + kw
                GEMM.multiply(
                    m: filters, n: outHeight * paddedWidth, k: channels, a: tapWeights + position * filters * channels,
                    b: padded + kh * dilationH * paddedWidth + kw * dilationW, ldb: plane,
                    beta: position == 0 ? 0 : 1, c: wide)
            }
        }
        Parallel.chunks(filters, minimum: Swift.max(1, 65_536 / Swift.max(outHeight * outWidth, 1))) { range in
            for f in range {
                for oh in 0..<outHeight {
                    let source = wide + (f * outHeight + oh) * paddedWidth
                    let target = destination + (f * outHeight + oh) * outWidth
                    WindowKernels.biasRelu(source, into: target, count: outWidth, bias: bias?[f], relu: relu)
                }
            }
        }
    }
}

/// The register block a 2-D convolution (group 1) runs in as `directConvolution` on an AVX-512
/// CPU, or nil for the other paths. With whole groups of 64 filters (`Block.wide`), or else of
/// 32 (`Block.narrow`):
/// - strided ones, whose im2col gathers run only as long as an output row;
/// - 3×3 unit-stride ones with small weights (at most 300K values) over at most 27×27 outputs,
///   SqueezeNet's expand convolutions (the model, one thread, alternating: 3.51 → 3.36 ms;
///   Inception v1, whose larger 3×3 weights this leaves out, unchanged), but not where a 512-bit
///   multiply-add costs two 256-bit ones (`RowKernels.halvesWideFMA`: Zen 4): Winograd's fewer
///   multiply-adds win there at 13×13 (SqueezeNet, one thread, best p50 of eight alternating
///   rounds: 7.19 → 6.94 ms; its two 64→256 expand nodes 0.547 → 0.448 ms each, onnxruntime's
///   0.51) and, since its matrices stopped sharing L1 sets, at 27×27 too (32→128 alone, one
///   thread: 0.52 → 0.37 ms; the model 7.05 → 6.70 ms, four alternating rounds). The full-width
///   choice was measured before that change;
/// - with an odd number of 32-filter groups, unit-stride ones over at most 14×14 outputs
///   (DenseNet's 3×3 growth convolutions, where Winograd's transforms cost more than its saved
///   multiply-adds: one thread, 128→32 at 7×7 0.062 → 0.025 ms, onnxruntime 0.023; at 14×14
///   0.098 → 0.069, 0.060).
/// Other unit-stride shapes keep their paths: in ResNet-50 the wide block beat Winograd and the
/// pointwise products over 7×7 images alone, and lost to them inside the model (37.2 → 38.2 ms;
/// its 3×3 weights are 0.6–2.4M values); DenseNet's 28×28 growth convolutions gained alone and the
/// model did not.
func directBlock(_ g: WindowGeometry, channels: Int, filters: Int) -> DirectConvolution.Block? {
    let positions = g.output.reduce(1, *)
    // Small 3×3 weights (at most 300K values, in L2) over at most 27×27 outputs (not on Zen 4).
    let smallWinograd = g.kernel == [3, 3] && positions <= 729 && !RowKernels.halvesWideFMA && filters * channels * 9 <= 300_000
    if filters % 64 == 0, g.strides != [1, 1] || smallWinograd { return .wide }
    if filters % 32 == 0, g.strides != [1, 1] || smallWinograd || (filters % 64 == 32 && positions <= 196) { return .narrow }
    return nil
}

/// A 2-D convolution by `DirectConvolution` (VesselKernelsAVX512): the image (copied into
/// zero-padded planes first when a window reaches past it) read in place by the register
/// blocks, the threads sharing (filter group, chunk of positions) items. Each output is computed
/// the same way whichever item and thread take it.
func directConvolution(
    _ image: UnsafePointer<Float>, packed: UnsafePointer<Float>, block: DirectConvolution.Block, _ g: WindowGeometry, channels: Int,
    filters: Int, bias: UnsafePointer<Float>?, residual: UnsafePointer<Float>?, relu: Bool, into destination: UnsafeMutablePointer<Float>,
    threads: Int = Parallel.threads
) {
    let image = DirectImage(image, g, channels: channels)
    defer { withExtendedLifetime(image) {} }
    let (source, geometry, spatial) = (image.source, image.geometry, image.geometry.spatial)
    let group = block.filters, groups = (filters + group - 1) / group
    // Positions in chunks of at most `DirectConvolution.chunk`; where that leaves fewer items
    // than two a thread, in as many even parts (whole tiles) as make the items a multiple of the
    // threads. DenseNet's 128→32 growth convolutions over 14×14 were one item, and two threads
    // took as long as one (0.156 → 0.171 ms; onnxruntime 0.133 → 0.074); now 0.106, and
    // DenseNet-121 at two threads 34.9 → 33.5 ms (best p50 of six alternating rounds). Any cut
    // gives the same bits (`DirectConvolution.run`).
    let tiles = (spatial + block.positions - 1) / block.positions
    var parts = (spatial + DirectConvolution.chunk - 1) / DirectConvolution.chunk
    if threads > 1, groups * parts < 2 * threads {
        var (a, b) = (groups, threads)
        while b != 0 { (a, b) = (b, a % b) }
        parts = Swift.min(tiles, Swift.max(parts, threads / a))
    }
    let chunk = (tiles + parts - 1) / parts * block.positions, chunks = (spatial + chunk - 1) / chunk
    let work = group * Swift.min(chunk, spatial) * channels * g.kernel[0] * g.kernel[1]
    // Items run group-major, so a thread's consecutive items reuse a group's weights.
    Parallel.chunks(groups * chunks, minimum: Swift.max(1, GEMM.splitWork / Swift.max(work, 1)), threads: threads) { items in
        // Room for a whole chunk (read back sixteen positions at a time) of the widest block.
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: DirectConvolution.chunk * 64)
        defer { scratch.deallocate() }
        for item in items {
            let (filterGroup, part) = item.quotientAndRemainder(dividingBy: chunks)
            DirectConvolution.run(
                source, packed: packed, geometry, filters: filters, block: block, group: filterGroup,
                positions: (part * chunk)..<Swift.min(spatial, (part + 1) * chunk), bias: bias, residual: residual, relu: relu, scratch: scratch,
                into: destination)
        }
    }
}

/// An image as `DirectConvolution` reads it: in place, or copied into zero-padded planes when a
/// window reaches past it; and the convolution's geometry over it.
struct DirectImage {
    let source: UnsafePointer<Float>
    let geometry: DirectConvolution.Geometry
    private let padded: Tensor

    init(_ image: UnsafePointer<Float>, _ g: WindowGeometry, channels: Int) {
        let (height, width) = (g.input[0], g.input[1])
        let (outHeight, outWidth) = (g.output[0], g.output[1])
        // The rows and columns the windows span, from the first padded row and column.
        let rows = (outHeight - 1) * g.strides[0] + (g.kernel[0] - 1) * g.dilations[0] + 1
        let columns = (outWidth - 1) * g.strides[1] + (g.kernel[1] - 1) * g.dilations[1] + 1
        let copy = g.padBegin != [0, 0] || rows > height || columns > width
        padded = Tensor(uninitialized: .float32, shape: [copy ? channels * rows * columns : 0])
        let target = padded.storage.pointer.bindMemory(to: Float.self, capacity: channels * rows * columns)
        source = copy ? UnsafePointer(target) : image
        if copy {
            Parallel.chunks(channels, minimum: Swift.max(1, 16_384 / Swift.max(rows * columns, 1))) { range in
                for channel in range {
                    padPlane(
                        image + channel * height * width, height: height, width: width, top: g.padBegin[0], left: g.padBegin[1],
                        into: target + channel * rows * columns, rows: rows, columns: columns)
                }
            }
        }
        geometry = DirectConvolution.Geometry(
            channels: channels, planeStride: copy ? rows * columns : height * width, rowStride: copy ? columns : width,
            kernel: (g.kernel[0], g.kernel[1]), strides: (g.strides[0], g.strides[1]), dilations: (g.dilations[0], g.dilations[1]),
            outWidth: outWidth, spatial: outHeight * outWidth)
    }
}

/// One channel into its zero-padded plane (`rows` × `columns`): input row r, column c at
/// (r + top, c + left), zeros around it; input beyond the plane's right or bottom edge is left out.
func padPlane(
    _ source: UnsafePointer<Float>, height: Int, width: Int, top: Int, left: Int,
    into target: UnsafeMutablePointer<Float>, rows: Int, columns: Int
) {
    for row in 0..<rows {
        let line = target + row * columns
        let inputRow = row - top
        guard inputRow >= 0, inputRow < height else {
            line.initialize(repeating: 0, count: columns)
            continue
        }
        let begin = Swift.min(left, columns), end = Swift.min(left + width, columns)
        line.initialize(repeating: 0, count: begin)
        if end > begin { (line + begin).initialize(from: source + inputRow * width + (begin - left), count: end - begin) }
        (line + Swift.max(end, begin)).initialize(repeating: 0, count: columns - Swift.max(end, begin))
    }
}

/// For kernel position k and output position s, the input offset in one channel, -1 for padding.
func im2colOffsets(_ g: WindowGeometry) -> [Int] {
    let n = g.input.count
    let spatial = g.output.reduce(1, *), kernelSize = g.kernel.reduce(1, *)
    let inputStrides = Tensor.strides(of: g.input), outputStrides = Tensor.strides(of: g.output), kernelStrides = Tensor.strides(of: g.kernel)
    var result = [Int](repeating: -1, count: kernelSize * spatial)
    for k in 0..<kernelSize {
        for s in 0..<spatial {
            var offset = 0
            var inside = true
            for d in 0..<n {
                let kd = (k / kernelStrides[d]) % g.kernel[d], sd = (s / outputStrides[d]) % g.output[d]
                let position = sd * g.strides[d] - g.padBegin[d] + kd * g.dilations[d]
                if position < 0 || position >= g.input[d] { inside = false; break }
                offset += position * inputStrides[d]
            }
            if inside { result[k * spatial + s] = offset }
        }
    }
    return result
}

/// The im2col rows of `channels` for the output positions `positions` (row-major over the output
/// plane), in the kernel copy this CPU runs (`WindowKernels.im2col`): row channel · kernel size +
/// kh · kernelWidth + kw holds, at entry p - positions.lowerBound, the input under position p at
/// that kernel offset (0 in the padding). Rows are `rowLength` apart from `columns`.
func im2col2D(
    _ image: UnsafePointer<Float>, _ g: WindowGeometry, channels: Range<Int>, positions: Range<Int>,
    into columns: UnsafeMutablePointer<Float>, rowLength: Int
) {
    WindowKernels.im2col(
        image, height: g.input[0], width: g.input[1], outWidth: g.output[1], kernel: (g.kernel[0], g.kernel[1]),
        strides: (g.strides[0], g.strides[1]), dilations: (g.dilations[0], g.dilations[1]), padding: (g.padBegin[0], g.padBegin[1]),
        channels: channels, positions: positions, into: columns, rowLength: rowLength)
}
