import VesselKernels
import VesselKernelsAVX512
import VesselKernelsHaswell

/// Pooling's and convolution's inner loops (`VesselKernels.WindowKernels`) in the copy this CPU
/// runs (`RowKernels.variant`): every result is exact, so the copies agree bit for bit.
enum WindowKernels {
    static func maxPlane(
        _ input: UnsafePointer<Float>, height: Int, width: Int, rowBounds: UnsafePointer<Int>, outHeight: Int,
        columnBounds: UnsafePointer<Int>, outWidth: Int, inside: Range<Int>, stride: Int, kernel: Int,
        columnsMax: UnsafeMutablePointer<Float>, into output: UnsafeMutablePointer<Float>
    ) -> Bool {
        switch RowKernels.variant {
        case .avx512:
            VesselKernelsAVX512.WindowKernels.maxPlane(
                input, height: height, width: width, rowBounds: rowBounds, outHeight: outHeight, columnBounds: columnBounds, outWidth: outWidth,
                inside: inside, stride: stride, kernel: kernel, columnsMax: columnsMax, into: output)
        case .haswell:
            VesselKernelsHaswell.WindowKernels.maxPlane(
                input, height: height, width: width, rowBounds: rowBounds, outHeight: outHeight, columnBounds: columnBounds, outWidth: outWidth,
                inside: inside, stride: stride, kernel: kernel, columnsMax: columnsMax, into: output)
        case .baseline:
            VesselKernels.WindowKernels.maxPlane(
                input, height: height, width: width, rowBounds: rowBounds, outHeight: outHeight, columnBounds: columnBounds, outWidth: outWidth,
                inside: inside, stride: stride, kernel: kernel, columnsMax: columnsMax, into: output)
        }
    }

    static func maxPlanePadded(
        _ input: UnsafePointer<Float>, height: Int, width: Int, top: Int, left: Int, outHeight: Int, outWidth: Int,
        kernel: (Int, Int), strides: (Int, Int), padded: UnsafeMutablePointer<Float>, columnsMax: UnsafeMutablePointer<Float>,
        into output: UnsafeMutablePointer<Float>
    ) -> Bool {
        switch RowKernels.variant {
        case .avx512:
            VesselKernelsAVX512.WindowKernels.maxPlanePadded(
                input, height: height, width: width, top: top, left: left, outHeight: outHeight, outWidth: outWidth, kernel: kernel,
                strides: strides, padded: padded, columnsMax: columnsMax, into: output)
        case .haswell:
            VesselKernelsHaswell.WindowKernels.maxPlanePadded(
                input, height: height, width: width, top: top, left: left, outHeight: outHeight, outWidth: outWidth, kernel: kernel,
                strides: strides, padded: padded, columnsMax: columnsMax, into: output)
        case .baseline:
            VesselKernels.WindowKernels.maxPlanePadded(
                input, height: height, width: width, top: top, left: left, outHeight: outHeight, outWidth: outWidth, kernel: kernel,
                strides: strides, padded: padded, columnsMax: columnsMax, into: output)
        }
    }

    static func pool2x2(
        _ input: UnsafePointer<Float>, width: Int, outHeight: Int, outWidth: Int, isMax: Bool, into output: UnsafeMutablePointer<Float>
    ) -> Bool {
        switch RowKernels.variant {
        case .avx512:
            VesselKernelsAVX512.WindowKernels.pool2x2(input, width: width, outHeight: outHeight, outWidth: outWidth, isMax: isMax, into: output)
        case .haswell:
            VesselKernelsHaswell.WindowKernels.pool2x2(input, width: width, outHeight: outHeight, outWidth: outWidth, isMax: isMax, into: output)
        case .baseline:
            VesselKernels.WindowKernels.pool2x2(input, width: width, outHeight: outHeight, outWidth: outWidth, isMax: isMax, into: output)
        }
    }

    static func averagePlane(
        _ input: UnsafePointer<Float>, height: Int, width: Int, rowBounds: UnsafePointer<Int>, rowCounts: UnsafePointer<Int>, outHeight: Int,
        columnBounds: UnsafePointer<Int>, columnCounts: UnsafePointer<Float>, outWidth: Int, inside: Range<Int>, stride: Int, kernel: Int,
        row: UnsafeMutablePointer<Float>, rowSums: UnsafeMutablePointer<Float>, into output: UnsafeMutablePointer<Float>
    ) {
        switch RowKernels.variant {
        case .avx512:
            VesselKernelsAVX512.WindowKernels.averagePlane(
                input, height: height, width: width, rowBounds: rowBounds, rowCounts: rowCounts, outHeight: outHeight, columnBounds: columnBounds,
                columnCounts: columnCounts, outWidth: outWidth, inside: inside, stride: stride, kernel: kernel, row: row, rowSums: rowSums, into: output)
        case .haswell:
            VesselKernelsHaswell.WindowKernels.averagePlane(
                input, height: height, width: width, rowBounds: rowBounds, rowCounts: rowCounts, outHeight: outHeight, columnBounds: columnBounds,
                columnCounts: columnCounts, outWidth: outWidth, inside: inside, stride: stride, kernel: kernel, row: row, rowSums: rowSums, into: output)
        case .baseline:
            VesselKernels.WindowKernels.averagePlane(
                input, height: height, width: width, rowBounds: rowBounds, rowCounts: rowCounts, outHeight: outHeight, columnBounds: columnBounds,
                columnCounts: columnCounts, outWidth: outWidth, inside: inside, stride: stride, kernel: kernel, row: row, rowSums: rowSums, into: output)
        }
    }

    static func planeMeans(_ source: UnsafePointer<Float>, inner: Int, count: Int, into target: UnsafeMutablePointer<Float>) {
        switch RowKernels.variant {
        case .avx512: VesselKernelsAVX512.WindowKernels.planeMeans(source, inner: inner, count: count, into: target)
        case .haswell: VesselKernelsHaswell.WindowKernels.planeMeans(source, inner: inner, count: count, into: target)
        case .baseline: VesselKernels.WindowKernels.planeMeans(source, inner: inner, count: count, into: target)
        }
    }

    static func biasRelu(_ source: UnsafePointer<Float>, into target: UnsafeMutablePointer<Float>, count: Int, bias: Float?, relu: Bool) {
        switch RowKernels.variant {
        case .avx512: VesselKernelsAVX512.WindowKernels.biasRelu(source, into: target, count: count, bias: bias, relu: relu)
        case .haswell: VesselKernelsHaswell.WindowKernels.biasRelu(source, into: target, count: count, bias: bias, relu: relu)
        case .baseline: VesselKernels.WindowKernels.biasRelu(source, into: target, count: count, bias: bias, relu: relu)
        }
    }

    static func channelAffine(
        _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, count: Int, normalize: (factor: Float, offset: Float)?,
        scale: Float, shift: Float, relu: Bool
    ) {
        switch RowKernels.variant {
        case .avx512:
            VesselKernelsAVX512.WindowKernels.channelAffine(input, output, count: count, normalize: normalize, scale: scale, shift: shift, relu: relu)
        case .haswell:
            VesselKernelsHaswell.WindowKernels.channelAffine(input, output, count: count, normalize: normalize, scale: scale, shift: shift, relu: relu)
        case .baseline:
            VesselKernels.WindowKernels.channelAffine(input, output, count: count, normalize: normalize, scale: scale, shift: shift, relu: relu)
        }
    }

    static func im2col(
        _ image: UnsafePointer<Float>, height: Int, width: Int, outWidth: Int, kernel: (Int, Int), strides: (Int, Int),
        dilations: (Int, Int), padding: (Int, Int), channels: Range<Int>, positions: Range<Int>,
        into columns: UnsafeMutablePointer<Float>, rowLength: Int
    ) {
        switch RowKernels.variant {
        case .avx512:
            VesselKernelsAVX512.WindowKernels.im2col(
                image, height: height, width: width, outWidth: outWidth, kernel: kernel, strides: strides, dilations: dilations, padding: padding,
                channels: channels, positions: positions, into: columns, rowLength: rowLength)
        case .haswell:
            VesselKernelsHaswell.WindowKernels.im2col(
                image, height: height, width: width, outWidth: outWidth, kernel: kernel, strides: strides, dilations: dilations, padding: padding,
                channels: channels, positions: positions, into: columns, rowLength: rowLength)
        case .baseline:
            VesselKernels.WindowKernels.im2col(
                image, height: height, width: width, outWidth: outWidth, kernel: kernel, strides: strides, dilations: dilations, padding: padding,
                channels: channels, positions: positions, into: columns, rowLength: rowLength)
        }
    }
}

/// Winograd's input and output transforms (`VesselKernels.WinogradTransforms`) in the copy this
/// CPU runs: 4, 8 or 16 tiles at a time, the same bits in every copy.
enum WinogradKernels {
    static var tilesPerBlock: Int {
        switch RowKernels.variant {
        case .avx512: VesselKernelsAVX512.WinogradTransforms.tilesPerBlock
        case .haswell: VesselKernelsHaswell.WinogradTransforms.tilesPerBlock
        case .baseline: VesselKernels.WinogradTransforms.tilesPerBlock
        }
    }

    static func transformInput(
        _ plane: UnsafePointer<Float>, paddedWidth: Int, tileColumns: Int, tiles: Range<Int>, into target: UnsafeMutablePointer<Float>, step: Int
    ) {
        switch RowKernels.variant {
        case .avx512:
            VesselKernelsAVX512.WinogradTransforms.transformInput(
                plane, paddedWidth: paddedWidth, tileColumns: tileColumns, tiles: tiles, into: target, step: step)
        case .haswell:
            VesselKernelsHaswell.WinogradTransforms.transformInput(
                plane, paddedWidth: paddedWidth, tileColumns: tileColumns, tiles: tiles, into: target, step: step)
        case .baseline:
            VesselKernels.WinogradTransforms.transformInput(plane, paddedWidth: paddedWidth, tileColumns: tileColumns, tiles: tiles, into: target, step: step)
        }
    }

    static func transformOutput(
        _ products: UnsafePointer<Float>, step: Int, tileColumns: Int, tiles: Range<Int>, bias: Float, relu: Bool, outHeight: Int, outWidth: Int,
        into output: UnsafeMutablePointer<Float>
    ) {
        switch RowKernels.variant {
        case .avx512:
            VesselKernelsAVX512.WinogradTransforms.transformOutput(
                products, step: step, tileColumns: tileColumns, tiles: tiles, bias: bias, relu: relu, outHeight: outHeight, outWidth: outWidth,
                into: output)
        case .haswell:
            VesselKernelsHaswell.WinogradTransforms.transformOutput(
                products, step: step, tileColumns: tileColumns, tiles: tiles, bias: bias, relu: relu, outHeight: outHeight, outWidth: outWidth,
                into: output)
        case .baseline:
            VesselKernels.WinogradTransforms.transformOutput(
                products, step: step, tileColumns: tileColumns, tiles: tiles, bias: bias, relu: relu, outHeight: outHeight, outWidth: outWidth,
                into: output)
        }
    }
}
