#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import VesselTensor

// The pooling operators (registered with Conv, whose window geometry they share): global
// average/max/Lp, MaxPool, AveragePool and LpPool, and the separable 2-D float path.

/// GlobalAveragePool of float32 planes read in place: the same sums (in Double, in order) and
/// quotients as `globalPool`, without first converting the whole tensor to doubles. Four planes
/// are summed side by side, one per lane, so four chains of additions run at once where one
/// plane's chain waited on each addition; each plane's sum is still its values in order.
func globalAverageFloat(_ x: Tensor) -> Tensor {
    let inner = x.shape[2...].reduce(1, *), planes = x.shape[0] * x.shape[1]
    let out = Tensor(uninitialized: .float32, shape: Array(x.shape[..<2]) + [Int](repeating: 1, count: x.rank - 2))
    x.withUnsafeBufferPointer(as: Float.self) { source in
        out.withUnsafeMutableBufferPointer(as: Float.self) { destination in
            Parallel.chunks(planes, minimum: Swift.max(4, 65_536 / Swift.max(inner, 1))) { range in
                var plane = range.lowerBound
                while plane + 4 <= range.upperBound {
                    let first = source.baseAddress! + plane * inner
                    let (second, third, fourth) = (first + inner, first + 2 * inner, first + 3 * inner)
                    var sums = SIMD4<Double>()
                    for k in 0..<inner { sums += SIMD4(Double(first[k]), Double(second[k]), Double(third[k]), Double(fourth[k])) }
                    for lane in 0..<4 { destination[plane + lane] = Float(sums[lane] / Double(inner)) }
                    plane += 4
                }
                while plane < range.upperBound {
                    let values = source.baseAddress! + plane * inner
                    var sum = 0.0
                    for k in 0..<inner { sum += Double(values[k]) }
                    destination[plane] = Float(sum / Double(inner))
                    plane += 1
                }
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

/// Max and average pooling of float32 images with unit dilation, done separably: first along
/// the width into a buffer of (input rows × output columns), then along the height, so the inner
/// loops run over contiguous output columns. Window counts are products of per-axis counts, so
/// averages (with or without padding counted) stay exact. Max propagates NaN.
func pool2D(_ x: Tensor, _ g: WindowGeometry, planes: Int, isMax: Bool, includePad: Bool) -> Tensor {
    let (height, width) = (g.input[0], g.input[1])
    let (outHeight, outWidth) = (g.output[0], g.output[1])
    let (kernelH, kernelW) = (g.kernel[0], g.kernel[1])
    // Per output column / row: the clamped input range and the divisor's factor.
    func ranges(_ count: Int, _ size: Int, _ kernel: Int, _ stride: Int, _ padBegin: Int, _ padEnd: Int) -> [(Int, Int, Int)] {
        (0..<count).map { o in
            let start = o * stride - padBegin
            let lo = Swift.max(start, 0), hi = Swift.min(start + kernel, size)
            let padded = Swift.min(start + kernel, size + padEnd) - Swift.max(start, -padBegin)
            return (lo, Swift.max(lo, hi), includePad ? padded : Swift.max(hi - lo, 0))
        }
    }
    let strideW = g.strides[1]
    let columns = ranges(outWidth, width, kernelW, strideW, g.padBegin[1], g.padEnd[1])
    let rows = ranges(outHeight, height, kernelH, g.strides[0], g.padBegin[0], g.padEnd[0])
    // The output columns whose windows lie wholly inside the row: insideBegin..<insideEnd
    // (windows clipped by padding sit only at the two ends).
    var insideBegin = 0
    while insideBegin < outWidth, columns[insideBegin].1 - columns[insideBegin].0 != kernelW { insideBegin += 1 }
    var insideEnd = insideBegin
    while insideEnd < outWidth, columns[insideEnd].1 - columns[insideEnd].0 == kernelW { insideEnd += 1 }
    let out = Tensor(uninitialized: .float32, shape: Array(x.shape[..<2]) + g.output)
    x.withUnsafeBufferPointer(as: Float.self) { source in
        out.withUnsafeMutableBufferPointer(as: Float.self) { destination in
            Parallel.chunks(planes, minimum: Swift.max(1, 16_384 / Swift.max(outHeight * outWidth, 1))) { range in
                let buffer = UnsafeMutablePointer<Float>.allocate(capacity: height * outWidth)
                defer { buffer.deallocate() }
                // One row of column maxima, with room for windowMax's widest load past its end.
                let columnsMax = UnsafeMutablePointer<Float>.allocate(capacity: width + 32)
                columnsMax.initialize(repeating: 0, count: width + 32)
                defer { columnsMax.deallocate() }
                for plane in range {
                    let input = source.baseAddress! + plane * height * width
                    let output = destination.baseAddress! + plane * outHeight * outWidth
                    if isMax {
                        // Without NaN in the plane (counted in a loop that vectorizes), max needs
                        // no NaN care, and the row pass vectorizes too.
                        if !containsNaN(input, count: height * width) {
                            // Down the height first, contiguous over the full width (vectorizes),
                            // then across: the scalar pass runs over outHeight rows, not height.
                            for oh in 0..<outHeight {
                                let (lo, hi, _) = rows[oh]
                                let target = output + oh * outWidth
                                guard hi > lo else {
                                    for ow in 0..<outWidth { target[ow] = -.infinity }
                                    continue
                                }
                                columnsMax.update(from: input + lo * width, count: width)
                                for h in (lo + 1)..<hi {
                                    let row = input + h * width
                                    for w in 0..<width {
                                        let v = row[w], current = columnsMax[w]
                                        columnsMax[w] = v > current ? v : current
                                    }
                                }
                                /// One output column the general way (clipped windows); returns the next.
                                func maxColumn(_ ow: Int) -> Int {
                                    let (clo, chi, _) = columns[ow]
                                    guard chi > clo else { target[ow] = -.infinity; return ow + 1 }
                                    var value = columnsMax[clo]
                                    var w = clo + 1
                                    while w < chi {
                                        let v = columnsMax[w]
                                        value = v > value ? v : value
                                        w += 1
                                    }
                                    target[ow] = value
                                    return ow + 1
                                }
                                var ow = 0
                                while ow < insideBegin { ow = maxColumn(ow) }
                                // Windows wholly inside the row (most of them): sixteen outputs
                                // at a time for strides 1 and 2, then a fixed-width max with no
                                // per-column lookups.
                                ow = windowMax(
                                    columnsMax, from: ow, to: insideEnd, first: ow < insideEnd ? columns[ow].0 : 0,
                                    stride: strideW, kernel: kernelW, into: target)
                                while ow < insideEnd {
                                    let window = columnsMax + columns[ow].0
                                    var value = window[0]
                                    for w in 1..<kernelW {
                                        let v = window[w]
                                        value = v > value ? v : value
                                    }
                                    target[ow] = value
                                    ow += 1
                                }
                                while ow < outWidth { ow = maxColumn(ow) }
                            }
                            continue
                        }
                    }
                    // Along the width.
                    for h in 0..<height {
                        let row = input + h * width, reduced = buffer + h * outWidth
                        for ow in 0..<outWidth {
                            let (lo, hi, _) = columns[ow]
                            var value: Float = isMax ? -.infinity : 0
                            for w in lo..<hi {
                                let v = row[w]
                                value = isMax ? ((v > value || v != v) ? v : value) : value + v
                            }
                            reduced[ow] = value
                        }
                    }
                    // Along the height, contiguous over output columns.
                    for oh in 0..<outHeight {
                        let (lo, hi, rowCount) = rows[oh]
                        let target = output + oh * outWidth
                        for ow in 0..<outWidth { target[ow] = isMax ? -.infinity : 0 }
                        for h in lo..<hi {
                            let reduced = buffer + h * outWidth
                            if isMax {
                                for ow in 0..<outWidth {
                                    let v = reduced[ow], current = target[ow]
                                    target[ow] = (v > current || v != v || current != current) ? (current != current ? current : v) : current
                                }
                            } else {
                                for ow in 0..<outWidth { target[ow] += reduced[ow] }
                            }
                        }
                        if !isMax {
                            for ow in 0..<outWidth { target[ow] /= Float(Swift.max(rowCount * columns[ow].2, 1)) }
                        }
                    }
                }
            }
        }
    }
    return out
}

/// The max of fixed-width windows over `values` (no NaN), sixteen outputs at a time, for outputs
/// `from..<to` whose windows start at `first`, `first + stride`, …: strides 1 and 2 only, which
/// is nearly every CNN's pooling. Returns the first output it did not write (`from` for other
/// strides; up to fifteen are left for the caller). A stride-2 load reads up to 32 values from a
/// window's start, one past the last window's end at most, so `values` needs that much room.
func windowMax(
    _ values: UnsafePointer<Float>, from: Int, to: Int, first: Int, stride: Int, kernel: Int,
    into target: UnsafeMutablePointer<Float>
) -> Int {
    guard stride == 1 || stride == 2, kernel >= 1 else { return from }
    let raw = UnsafeRawPointer(values)
    var ow = from
    var start = first
    while ow + 16 <= to {
        var best: SIMD16<Float>
        if stride == 1 {
            best = raw.loadUnaligned(fromByteOffset: start * 4, as: SIMD16<Float>.self)
            for j in 1..<kernel {
                let v = raw.loadUnaligned(fromByteOffset: (start + j) * 4, as: SIMD16<Float>.self)
                best.replace(with: v, where: v .> best)
            }
        } else {
            // Window j's values for sixteen outputs are the even (j even) or odd (j odd) lanes
            // of 32 consecutive values from start + j rounded down to even.
            best = evenLanes(raw.loadUnaligned(fromByteOffset: start * 4, as: SIMD32<Float>.self))
            var j = 1
            while j < kernel {
                let odd = oddLanes(raw.loadUnaligned(fromByteOffset: (start + j - 1) * 4, as: SIMD32<Float>.self))
                best.replace(with: odd, where: odd .> best)
                if j + 1 < kernel {
                    let even = evenLanes(raw.loadUnaligned(fromByteOffset: (start + j + 1) * 4, as: SIMD32<Float>.self))
                    best.replace(with: even, where: even .> best)
                }
                j += 2
            }
        }
        UnsafeMutableRawPointer(target).storeBytes(of: best, toByteOffset: ow * 4, as: SIMD16<Float>.self)
        ow += 16
        start += 16 * stride
    }
    return ow
}

/// The even lanes of `p`, spelled lane by lane: the compiler turns this into shuffles, where
/// `evenHalf` (or a lane choice made at run time) went through memory one lane at a time.
@inline(__always)
func evenLanes(_ p: SIMD32<Float>) -> SIMD16<Float> {
    SIMD16(p[0], p[2], p[4], p[6], p[8], p[10], p[12], p[14], p[16], p[18], p[20], p[22], p[24], p[26], p[28], p[30])
}

/// The odd lanes of `p` (see `evenLanes`).
@inline(__always)
func oddLanes(_ p: SIMD32<Float>) -> SIMD16<Float> {
    SIMD16(p[1], p[3], p[5], p[7], p[9], p[11], p[13], p[15], p[17], p[19], p[21], p[23], p[25], p[27], p[29], p[31])
}

/// Whether any of `count` floats is NaN: sixteen lanes at a time.
func containsNaN(_ values: UnsafePointer<Float>, count: Int) -> Bool {
    var found = SIMDMask<SIMD16<Int32>>(repeating: false)
    var index = 0
    let raw = UnsafeRawPointer(values)
    while index + 16 <= count {
        let lanes = raw.loadUnaligned(fromByteOffset: index * 4, as: SIMD16<Float>.self)
        found .|= lanes .!= lanes
        index += 16
    }
    if any(found) { return true }
    while index < count {
        if values[index] != values[index] { return true }
        index += 1
    }
    return false
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
