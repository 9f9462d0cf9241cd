#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import VesselTensor

// The pooling operators (registered with Conv, whose window geometry they share): global
// average/max/Lp, MaxPool, AveragePool and LpPool, and the separable 2-D float path.

/// GlobalAveragePool of float32 planes read in place, their sums in Double
/// (`WindowKernels.planeMeans`), without first converting the whole tensor to doubles as
/// `globalPool` does. Each plane's mean is computed alone, so the split does not change it.
func globalAverageFloat(_ x: Tensor) -> Tensor {
    let inner = x.shape[2...].reduce(1, *), planes = x.shape[0] * x.shape[1]
    let out = Tensor(uninitialized: .float32, shape: Array(x.shape[..<2]) + [Int](repeating: 1, count: x.rank - 2))
    x.withUnsafeBufferPointer(as: Float.self) { source in
        out.withUnsafeMutableBufferPointer(as: Float.self) { destination in
            Parallel.chunks(planes, minimum: Swift.max(4, 65_536 / Swift.max(inner, 1))) { range in
                WindowKernels.planeMeans(
                    source.baseAddress! + range.lowerBound * inner, inner: inner, count: range.count,
                    into: destination.baseAddress! + range.lowerBound)
            }
        }
    }
    return out
}

func globalPool(_ x: Tensor, _ f: (ArraySlice<Double>) -> Double) throws -> Tensor {
    let inner = x.shape[2...].reduce(1, *)
    let values = x.doubles()
    let result = (0..<(x.shape[0] * x.shape[1])).map { f(values[($0 * inner)..<(($0 + 1) * inner)]) }
    return Cast.fromDoubles(result, dtype: x.dtype, shape: Array(x.shape[..<2]) + [Int](repeating: 1, count: x.rank - 2))
}

enum PoolKind { case max, average, lp(Double) }

func pool(_ x: Tensor, _ c: KernelContext, kind: PoolKind) throws -> [Tensor] {
    let a = c.attributes
    let kernel = try a.required("kernel_shape", a.ints)
    guard x.rank >= 3 else { throw c.invalid("the input must have rank ≥ 3 (N, C, spatial…), not \(x.shape)") }
    let g = try WindowGeometry(input: Array(x.shape[2...]), kernel: kernel, attributes: a, ceilMode: a.int("ceil_mode", default: 0) == 1, context: c)
    try c.checkAllocation(.float64, Array(x.shape[..<2]) + g.output)
    let includePad = a.int("count_include_pad", default: 0) == 1
    let planes = x.shape[0] * x.shape[1]
    let inputSpatial = g.input.reduce(1, *), spatial = g.output.reduce(1, *)
    let kernelSize = kernel.reduce(1, *)
    let isLp: Bool = { if case .lp = kind { true } else { false } }()
    // One window over the whole unpadded input (ResNet's 7×7 average before its classifier) is
    // GlobalAveragePool: sixteen sums a plane, not a row-sum pass per plane (2,048 7×7
    // planes, one thread: 0.31 → 0.03 ms).
    if case .average = kind, x.dtype == .float32, c.node.outputs.count == 1, g.kernel == g.input, g.dilations.allSatisfy({ $0 == 1 }),
        g.padBegin.allSatisfy({ $0 == 0 }), g.padEnd.allSatisfy({ $0 == 0 }), g.output.allSatisfy({ $0 == 1 })
    {
        return [globalAverageFloat(x)]
    }
    // Exactly the condition under which pool2D below handles the node, so nothing else needs taps.
    let simple2D = !isLp && x.dtype == .float32 && c.node.outputs.count == 1 && g.input.count == 2 && g.dilations == [1, 1]
    if simple2D {
        return [pool2D(x, g, planes: planes, isMax: { if case .max = kind { true } else { false } }(), includePad: includePad)]
    }
    let taps = im2colOffsets(g)
    // Positions in the padded extent (for count_include_pad): windows clipped to input + pads.
    var paddedCounts = [Int](repeating: kernelSize, count: spatial)
    if includePad {
        let outputStrides = Tensor.strides(of: g.output)
        for s in 0..<spatial {
            var count = 1
            for d in 0..<g.input.count {
                let start = ((s / outputStrides[d]) % g.output[d]) * g.strides[d] - g.padBegin[d]
                var inside = 0
                for kd in 0..<kernel[d] {
                    let position = start + kd * g.dilations[d]
                    if position >= -g.padBegin[d], position < g.input[d] + g.padEnd[d] { inside += 1 }
                }
                count *= inside
            }
            paddedCounts[s] = count
        }
    }
    if x.dtype == .float32, c.node.outputs.count == 1 {
        if case .lp = kind {
        } else {
            return [
                poolFloat(
                    x, taps: taps, kernelSize: kernelSize, planes: planes, inputSpatial: inputSpatial, spatial: spatial,
                    shape: Array(x.shape[..<2]) + g.output, isMax: { if case .max = kind { true } else { false } }(),
                    divisors: includePad ? paddedCounts : nil)
            ]
        }
    }
    // The general path: any dtype, rank and dilation, and MaxPool's Indices output.
    let values = x.doubles()
    var result = [Double](repeating: 0, count: planes * spatial)
    var indices = [Int64](repeating: 0, count: planes * spatial)
    for plane in 0..<planes {
        let base = plane * inputSpatial
        for s in 0..<spatial {
            var best = -Double.infinity, bestIndex = -1, sum = 0.0, count = 0
            for k in 0..<kernelSize {
                let offset = taps[k * spatial + s]
                guard offset >= 0 else { continue }
                let value = values[base + offset]
                count += 1
                switch kind {
                case .max: if value > best || bestIndex < 0 { best = value; bestIndex = offset }
                case .average: sum += value
                case .lp(let p): sum += Libm.pow(Swift.abs(value), p)
                }
            }
            let out = plane * spatial + s
            switch kind {
            case .max:
                result[out] = best
                indices[out] = Int64(base + Swift.max(bestIndex, 0))
            case .average: result[out] = sum / Double(includePad ? paddedCounts[s] : Swift.max(count, 1))
            case .lp(let p): result[out] = Libm.pow(sum, 1 / p)
            }
        }
    }
    let shape = Array(x.shape[..<2]) + g.output
    var outputs = [Cast.fromDoubles(result, dtype: x.dtype, shape: shape)]
    if case .max = kind, c.node.outputs.count > 1 {
        if a.int("storage_order", default: 0) == 1, g.input.count == 2 {
            // Column-major indices within each plane.
            let (h, w) = (g.input[0], g.input[1])
            indices = indices.map { value in
                let plane = Int(value) / (h * w), rest = Int(value) % (h * w)
                return Int64(plane * h * w + (rest % w) * h + rest / w)
            }
        }
        outputs.append(Tensor(indices, shape: shape))
    }
    return outputs
}

/// Max and average pooling of float32 planes, reading the input in place.
func poolFloat(
    _ x: Tensor, taps: [Int], kernelSize: Int, planes: Int, inputSpatial: Int, spatial: Int, shape: [Int],
    isMax: Bool, divisors: [Int]?
) -> Tensor {
    let out = Tensor(uninitialized: .float32, shape: shape)
    x.withUnsafeBufferPointer(as: Float.self) { source in
        out.withUnsafeMutableBufferPointer(as: Float.self) { destination in
            taps.withUnsafeBufferPointer { taps in
                for plane in 0..<planes {
                    let input = source.baseAddress! + plane * inputSpatial
                    let output = destination.baseAddress! + plane * spatial
                    for s in 0..<spatial {
                        var best = -Float.infinity, sum: Float = 0, count = 0
                        var k = s
                        for _ in 0..<kernelSize {
                            let offset = taps[k]
                            k += spatial
                            if offset < 0 { continue }
                            let value = input[offset]
                            if isMax {
                                if value > best || value.isNaN { best = value }
                            } else {
                                sum += value
                            }
                            count += 1
                        }
                        output[s] = isMax ? best : sum / Float(divisors?[s] ?? Swift.max(count, 1))
                    }
                }
            }
        }
    }
    return out
}

/// A 2-D pool's windows per axis: for each output row and column, the input range its window
/// covers clamped to the input (`rowBounds`, `columnBounds`: lo, hi pairs) and its count for an
/// average (the padding counted with `includePad`); and the output columns whose windows lie
/// wholly inside the row (`inside`: windows clipped by padding sit only at the two ends).
struct PoolWindows {
    let rows: [(lo: Int, hi: Int, count: Int)], columns: [(lo: Int, hi: Int, count: Int)]
    let rowBounds: [Int], columnBounds: [Int]
    let inside: Range<Int>

    init(_ g: WindowGeometry, includePad: Bool = false) {
        func ranges(_ axis: Int) -> [(lo: Int, hi: Int, count: Int)] {
            let (size, kernel, stride, padBegin, padEnd) = (g.input[axis], g.kernel[axis], g.strides[axis], g.padBegin[axis], g.padEnd[axis])
            return (0..<g.output[axis]).map { o in
                let start = o * stride - padBegin
                let lo = Swift.max(start, 0), hi = Swift.min(start + kernel, size)
                let padded = Swift.min(start + kernel, size + padEnd) - Swift.max(start, -padBegin)
                return (lo, Swift.max(lo, hi), includePad ? padded : Swift.max(hi - lo, 0))
            }
        }
        rows = ranges(0)
        columns = ranges(1)
        rowBounds = rows.flatMap { [$0.lo, $0.hi] }
        columnBounds = columns.flatMap { [$0.lo, $0.hi] }
        let kernelW = g.kernel[1], outWidth = g.output[1]
        var begin = 0
        while begin < outWidth, columns[begin].hi - columns[begin].lo != kernelW { begin += 1 }
        var end = begin
        while end < outWidth, columns[end].hi - columns[end].lo == kernelW { end += 1 }
        inside = begin..<end
    }
}

/// Max and average pooling of float32 images with unit dilation, a plane at a time in the kernel
/// copies (`WindowKernels.maxPlane`, `averagePlane`), separably: along the width, then along the
/// height. Window counts are products of per-axis counts, so averages (with or without padding
/// counted) stay exact. A max plane with a NaN among the rows read goes the NaN-propagating way
/// below instead.
func pool2D(_ x: Tensor, _ g: WindowGeometry, planes: Int, isMax: Bool, includePad: Bool) -> Tensor {
    let (height, width) = (g.input[0], g.input[1])
    let (outHeight, outWidth) = (g.output[0], g.output[1])
    let (kernelH, kernelW) = (g.kernel[0], g.kernel[1])
    let strideW = g.strides[1]
    let windows = PoolWindows(g, includePad: includePad)
    let (rows, columns) = (windows.rows, windows.columns)
    // 2×2 windows, stride 2, none clipped: straight from the row pairs (`pool2x2`).
    let twoByTwo =
        g.kernel == [2, 2] && g.strides == [2, 2] && g.padBegin == [0, 0] && g.padEnd == [0, 0] && 2 * outHeight <= height
        && 2 * outWidth <= width
    // Max over planes narrower than sixteen lanes: through a copy with -∞ around it
    // (`maxPlanePadded`), every window whole.
    let narrowMax = isMax && width < 16
    let paddedRows = (outHeight - 1) * g.strides[0] + kernelH, paddedColumns = (outWidth - 1) * strideW + kernelW
    let out = Tensor(uninitialized: .float32, shape: Array(x.shape[..<2]) + g.output)
    let (rowBounds, columnBounds) = (windows.rowBounds, windows.columnBounds)
    // Averaging's divisor factors: per output row, and per output column as floats (exact small
    // integers) with room for the kernel's sixteen-lane loads past the last.
    let rowCounts = rows.map(\.count), columnCounts = columns.map { Float($0.count) } + [Float](repeating: 1, count: 16)
    x.withUnsafeBufferPointer(as: Float.self) { source in
        out.withUnsafeMutableBufferPointer(as: Float.self) { destination in
            Parallel.chunks(planes, minimum: Swift.max(1, 16_384 / Swift.max(outHeight * outWidth, 1))) { range in
                // The general way's buffer, made when a plane first needs it (max pooling without
                // NaN never does).
                var general: UnsafeMutablePointer<Float>?, averageSums: UnsafeMutablePointer<Float>?
                defer {
                    general?.deallocate()
                    averageSums?.deallocate()
                }
                // One row of column maxima (or, averaging, a copy of the input row), with room for
                // the widest load past its end.
                let columnsMax = UnsafeMutablePointer<Float>.allocate(capacity: width + 32)
                columnsMax.initialize(repeating: 0, count: width + 32)
                defer { columnsMax.deallocate() }
                let paddedCount = narrowMax ? paddedRows * paddedColumns + 16 : 0
                let paddedCopy = UnsafeMutablePointer<Float>.allocate(capacity: paddedCount)
                paddedCopy.initialize(repeating: -.infinity, count: paddedCount)
                let paddedColumnsCount = narrowMax ? outHeight * paddedColumns + 48 + kernelW : 0
                let paddedColumnsMax = UnsafeMutablePointer<Float>.allocate(capacity: paddedColumnsCount)
                paddedColumnsMax.initialize(repeating: -.infinity, count: paddedColumnsCount)
                defer {
                    paddedCopy.deallocate()
                    paddedColumnsMax.deallocate()
                }
                for plane in range {
                    let input = source.baseAddress! + plane * height * width
                    let output = destination.baseAddress! + plane * outHeight * outWidth
                    if twoByTwo, WindowKernels.pool2x2(input, width: width, outHeight: outHeight, outWidth: outWidth, isMax: isMax, into: output) {
                        continue
                    }
                    if narrowMax,
                        WindowKernels.maxPlanePadded(
                            input, height: height, width: width, top: g.padBegin[0], left: g.padBegin[1], outHeight: outHeight,
                            outWidth: outWidth, kernel: (kernelH, kernelW), strides: (g.strides[0], strideW), padded: paddedCopy,
                            columnsMax: paddedColumnsMax, into: output)
                    {
                        continue
                    }
                    // Max without NaN among the rows read (most planes): per output row, down
                    // the height over the full width, then across the windows, both in the
                    // kernel copy's lanes. A NaN sends the plane the general way below.
                    if isMax, !narrowMax,
                        WindowKernels.maxPlane(
                            input, height: height, width: width, rowBounds: rowBounds, outHeight: outHeight, columnBounds: columnBounds,
                            outWidth: outWidth, inside: windows.inside, stride: strideW, kernel: kernelW, columnsMax: columnsMax,
                            into: output)
                    {
                        continue
                    }
                    // Average pooling: the same sums and divisions in the kernel copy's lanes.
                    if !isMax {
                        let sums = averageSums ?? UnsafeMutablePointer<Float>.allocate(capacity: height * (outWidth + 16))
                        averageSums = sums
                        WindowKernels.averagePlane(
                            input, height: height, width: width, rowBounds: rowBounds, rowCounts: rowCounts, outHeight: outHeight,
                            columnBounds: columnBounds, columnCounts: columnCounts, outWidth: outWidth, inside: windows.inside,
                            stride: strideW, kernel: kernelW, row: columnsMax, rowSums: sums, into: output)
                        continue
                    }
                    // A max plane with a NaN: every NaN kept.
                    let buffer = general ?? UnsafeMutablePointer<Float>.allocate(capacity: height * outWidth)
                    general = buffer
                    maxPlaneKeepingNaN(
                        input, height: height, width: width, rowBounds: rowBounds, outHeight: outHeight, columnBounds: columnBounds,
                        outWidth: outWidth, buffer: buffer, into: output)
                }
            }
        }
    }
    return out
}

/// One plane's max pool with every NaN kept (the way a plane holding one goes): along the width
/// into `buffer` (`height` × `outWidth`), then down each output row's input rows over contiguous
/// output columns. Output row `oh` covers input rows `rowBounds[2·oh] ..< rowBounds[2·oh + 1]`,
/// column `ow` input columns `columnBounds[2·ow] ..< columnBounds[2·ow + 1]`.
func maxPlaneKeepingNaN(
    _ input: UnsafePointer<Float>, height: Int, width: Int, rowBounds: UnsafePointer<Int>, outHeight: Int, columnBounds: UnsafePointer<Int>,
    outWidth: Int, buffer: UnsafeMutablePointer<Float>, into output: UnsafeMutablePointer<Float>
) {
    for h in 0..<height {
        let row = input + h * width, reduced = buffer + h * outWidth
        for ow in 0..<outWidth {
            var value = -Float.infinity
            for w in columnBounds[2 * ow]..<columnBounds[2 * ow + 1] {
                let v = row[w]
                value = (v > value || v != v) ? v : value
            }
            reduced[ow] = value
        }
    }
    for oh in 0..<outHeight {
        let target = output + oh * outWidth
        for ow in 0..<outWidth { target[ow] = -.infinity }
        for h in rowBounds[2 * oh]..<rowBounds[2 * oh + 1] {
            let reduced = buffer + h * outWidth
            for ow in 0..<outWidth {
                let v = reduced[ow], current = target[ow]
                target[ow] = (v > current || v != v || current != current) ? (current != current ? current : v) : current
            }
        }
    }
}

extension KernelRegistry {
    static func registerPooling(_ r: inout KernelRegistry) {
        r.register("MaxPool", maxPoolKernel)
        r.register("AveragePool", averagePoolKernel)
        r.register("LpPool", lpPoolKernel)
        r.register("GlobalAveragePool", globalAveragePoolKernel)
        r.register("GlobalMaxPool", globalMaxPoolKernel)
        r.register("GlobalLpPool", since: 2, globalLpPoolKernel)
    }

    static func maxPoolKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] { try pool(try c.input(i, 0), c, kind: .max) }

    static func averagePoolKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] { try pool(try c.input(i, 0), c, kind: .average) }

    static func lpPoolKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        try pool(try c.input(i, 0), c, kind: .lp(Double(c.attributes.int("p", default: 2))))
    }

    static func globalAveragePoolKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let x = try c.input(i, 0)
        if x.dtype == .float32, x.rank >= 3 { return [globalAverageFloat(x)] }
        return [try globalPool(x) { $0.reduce(0, +) / Double($0.count) }]
    }

    static func globalMaxPoolKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] { [try globalPool(try c.input(i, 0)) { $0.max() ?? 0 }] }

    static func globalLpPoolKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let p = Double(c.attributes.int("p", default: 2))
        return [try globalPool(try c.input(i, 0)) { Libm.pow($0.reduce(0) { $0 + Libm.pow(Swift.abs($1), p) }, 1 / p) }]
    }
}
