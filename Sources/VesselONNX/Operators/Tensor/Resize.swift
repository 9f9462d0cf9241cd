#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import VesselTensor

/// Resize and Upsample: separable N-D interpolation. Each output coordinate along each axis maps
/// to input taps with weights; an output element is the sum over the product of its axes' taps.
struct Resampler {
    enum Mode: String { case nearest, linear, cubic }

    var mode: Mode
    var transform: String
    var nearestMode: String
    var cubicA: Double
    var excludeOutside: Bool
    var extrapolation: Double
    var roi: [Double]
    var antialias = false

    /// Taps (input index, weight) for one output coordinate; nil means "outside" (extrapolate).
    func taps(output x: Int, axis: Int, inputSize: Int, outputSize: Int, scale: Double) -> [(Int, Double)]? {
        let xResized = Double(x)
        // The spec's transforms use the unrounded output length, scale × input.
        let outputLength = scale * Double(inputSize)
        let original: Double
        switch transform {
        case "asymmetric": original = xResized / scale
        case "align_corners": original = outputSize == 1 ? 0 : xResized * Double(inputSize - 1) / (outputLength - 1)
        case "pytorch_half_pixel": original = outputLength > 1 ? (xResized + 0.5) / scale - 0.5 : 0
        case "half_pixel_symmetric":
            let adjustment = Double(outputSize) / (scale * Double(inputSize))
            let center = Double(inputSize) / 2
            original = center * (1 - adjustment) + (xResized + 0.5) / scale - 0.5
        case "tf_crop_and_resize":
            let rank = roi.count / 2
            let start = roi[axis], end = roi[axis + rank]
            original =
                outputSize > 1
                ? start * Double(inputSize - 1) + xResized * (end - start) * Double(inputSize - 1) / Double(outputSize - 1)
                : 0.5 * (start + end) * Double(inputSize - 1)
            if original < 0 || original > Double(inputSize - 1) { return nil }
        default: original = (xResized + 0.5) / scale - 0.5  // half_pixel
        }
        func clamp(_ index: Int) -> Int { Swift.min(Swift.max(index, 0), inputSize - 1) }
        switch mode {
        case .nearest:
            let index: Int
            let fraction = original - original.rounded(.down)
            switch nearestMode {
            case "floor": index = Int(original.rounded(.down))
            case "ceil": index = Int(original.rounded(.up))
            case "round_prefer_ceil": index = fraction == 0.5 ? Int(original.rounded(.up)) : Int(original.rounded())
            default: index = fraction == 0.5 ? Int(original.rounded(.down)) : Int(original.rounded())
            }
            return [(clamp(index), 1)]
        case .linear where antialias && scale < 1, .cubic where antialias && scale < 1:
            // Downsampling with antialiasing: the filter is stretched by 1/scale and normalized.
            let base = Int(original.rounded(.down))
            let ratio = original - Double(base)
            let a = cubicA
            // The triangle reaches 1 input step, the cubic 2, each stretched by 1/scale.
            let reach: Double = mode == .linear ? 1 : 2
            let start = Int((-reach / scale).rounded(.down)) + 1
            var result: [(Int, Double)] = []
            for offset in start..<(2 - start) {
                let t = Swift.abs(scale * (Double(offset) - ratio))
                var w: Double
                if mode == .linear {
                    w = Swift.max(0, Swift.min(1, 1 - t))
                } else if t <= 1 {
                    w = ((a + 2) * t - (a + 3)) * t * t + 1
                } else if t < 2 {
                    w = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
                } else {
                    w = 0
                }
                let index = base + offset
                if excludeOutside, index < 0 || index >= inputSize { w = 0 }
                result.append((clamp(index), w))
            }
            let total = result.reduce(0) { $0 + $1.1 }
            return total == 0 ? result : result.map { ($0.0, $0.1 / total) }
        case .linear:
            let base = original.rounded(.down)
            let ratio = original - base
            return [(clamp(Int(base)), 1 - ratio), (clamp(Int(base) + 1), ratio)]
        case .cubic:
            let base = Int(original.rounded(.down))
            let r = original - Double(base)
            let a = cubicA
            func weight(_ d: Double) -> Double {
                let t = Swift.abs(d)
                if t <= 1 { return ((a + 2) * t - (a + 3)) * t * t + 1 }
                if t < 2 { return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a }
                return 0
            }
            var result: [(Int, Double)] = []
            var total = 0.0
            for offset in -1...2 {
                let index = base + offset
                var w = weight(r - Double(offset))
                if excludeOutside, index < 0 || index >= inputSize { w = 0 }
                total += w
                result.append((clamp(index), w))
            }
            if excludeOutside, total != 0 { result = result.map { ($0.0, $0.1 / total) } }
            return result
        }
    }

    func resize(_ x: Tensor, outputShape: [Int], scales: [Double]) -> Tensor {
        let rank = x.rank
        let strides = Tensor.strides(of: x.shape)
        // Per axis, per output coordinate: taps, or nil to extrapolate.
        let axisTaps: [[[(Int, Double)]?]] = (0..<rank).map { d in
            (0..<outputShape[d]).map { o in
                if outputShape[d] == x.shape[d] && scales[d] == 1 && transform != "tf_crop_and_resize" { return [(o, 1.0)] }
                return taps(output: o, axis: d, inputSize: x.shape[d], outputSize: outputShape[d], scale: scales[d])
            }
        }
        let values = x.doubles()
        let count = Tensor.count(of: outputShape)
        let outStrides = Tensor.strides(of: outputShape)
        var result = [Double](repeating: 0, count: count)
        var coordinates = [Int](repeating: 0, count: rank)
        for position in 0..<count {
            var rest = position
            for d in 0..<rank {
                coordinates[d] = rest / outStrides[d]
                rest %= outStrides[d]
            }
            var perAxis: [[(Int, Double)]] = []
            var outside = false
            for d in 0..<rank {
                guard let t = axisTaps[d][coordinates[d]] else { outside = true; break }
                perAxis.append(t)
            }
            if outside {
                result[position] = extrapolation
                continue
            }
            // Sum over the Cartesian product of the axes' taps.
            var sum = 0.0
            var choice = [Int](repeating: 0, count: rank)
            while true {
                var offset = 0, weight = 1.0
                for d in 0..<rank {
                    let (index, w) = perAxis[d][choice[d]]
                    offset += index * strides[d]
                    weight *= w
                }
                if weight != 0 { sum += weight * values[offset] }
                var d = rank - 1
                while d >= 0 {
                    choice[d] += 1
                    if choice[d] < perAxis[d].count { break }
                    choice[d] = 0
                    d -= 1
                }
                if d < 0 { break }
            }
            result[position] = sum
        }
        // Integer outputs round to nearest (as onnxruntime does) instead of truncating.
        if !x.dtype.isFloatingPoint { result = result.map { $0.rounded() } }
        return Cast.fromDoubles(result, dtype: x.dtype, shape: outputShape)
    }
}

extension KernelRegistry {
    static func registerResize(_ r: inout KernelRegistry) {
        r.register("Upsample", since: 7, upsampleKernel)
        r.register("Resize", since: 10, resizeKernel)
    }

    static func upsampleKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let x = try c.input(i, 0)
        let scales = c.opset >= 9 ? try c.input(i, 1).doubles() : (try c.attributes.required("scales", c.attributes.floats)).map(Double.init)
        return [try legacyResize(x, scales: scales, c)]
    }

    static func resizeKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let x = try c.input(i, 0)
        if c.opset < 11 { return [try legacyResize(x, scales: try c.input(i, 1).doubles(), c)] }
        let a = c.attributes
        let rank = x.rank
        let axes = try (a.ints("axes") ?? Array(0..<rank)).map { try normalizeAxis($0, rank: rank, c) }
        var roi = [Double](repeating: 0, count: rank) + [Double](repeating: 1, count: rank)
        if i.count > 1, let given = i[1], given.count > 0 {
            let values = given.doubles()
            guard values.allSatisfy({ $0.isFinite }) else { throw c.invalid("roi \(values.prefix(8)) must be finite") }
            for (k, axis) in axes.enumerated() where values.count == 2 * axes.count {
                roi[axis] = values[k]
                roi[axis + rank] = values[k + axes.count]
            }
        }
        var scales = [Double](repeating: 1, count: rank)
        var outputShape = x.shape
        if i.count > 3, let sizesTensor = i[3], sizesTensor.count > 0 {
            let sizes = sizesTensor.integers()
            guard sizes.count == axes.count else { throw c.invalid("sizes has \(sizes.count) values for \(axes.count) axes") }
            for (k, axis) in axes.enumerated() where sizes[k] < 0 || x.shape[axis] == 0 && sizes[k] != 0 {
                throw c.invalid("size \(sizes[k]) for axis \(axis) of \(x.shape) is negative or samples an empty axis")
            }
            let policy = a.string("keep_aspect_ratio_policy", default: "stretch")
            if policy == "stretch" {
                for (k, axis) in axes.enumerated() {
                    outputShape[axis] = sizes[k]
                    scales[axis] = Double(sizes[k]) / Double(x.shape[axis])
                }
            } else {
                let ratios = axes.enumerated().map { Double(sizes[$0.offset]) / Double(x.shape[$0.element]) }
                let scale = policy == "not_larger" ? ratios.min()! : ratios.max()!
                for axis in axes {
                    scales[axis] = scale
                    guard scale.isFinite, scale > 0, scale * Double(x.shape[axis]) < 1e12 else { throw c.invalid("sizes \(sizes) do not fit input \(x.shape)") }
                    outputShape[axis] = Int((scale * Double(x.shape[axis])).rounded(.toNearestOrAwayFromZero))
                }
            }
        } else if i.count > 2, let scalesTensor = i[2], scalesTensor.count > 0 {
            let given = scalesTensor.doubles()
            guard given.count == axes.count else { throw c.invalid("scales has \(given.count) values for \(axes.count) axes") }
            for (k, axis) in axes.enumerated() {
                scales[axis] = given[k]
                outputShape[axis] = try scaledSize(x.shape[axis], given[k], c)
            }
        } else {
            throw c.invalid("one of scales and sizes must be given")
        }
        try c.checkAllocation(x.dtype, outputShape)
        guard let mode = Resampler.Mode(rawValue: a.string("mode", default: "nearest")) else { throw c.invalid("unknown mode") }
        var resampler = Resampler(
            mode: mode, transform: a.string("coordinate_transformation_mode", default: "half_pixel"),
            nearestMode: a.string("nearest_mode", default: "round_prefer_floor"),
            cubicA: Double(a.float("cubic_coeff_a", default: -0.75)), excludeOutside: a.int("exclude_outside", default: 0) == 1,
            extrapolation: Double(a.float("extrapolation_value", default: 0)), roi: roi
        )
        resampler.antialias = a.int("antialias", default: 0) == 1
        return [resampler.resize(x, outputShape: outputShape, scales: scales)]
    }
}

/// An axis's size after scaling (rounded down, as Resize and Upsample do), refusing scales that
/// are not positive and finite, and sizes no tensor could have.
func scaledSize(_ size: Int, _ scale: Double, _ c: KernelContext) throws -> Int {
    let scaled = (Double(size) * scale).rounded(.down)
    guard scale.isFinite, scale > 0, scaled < 1e12 else {
        throw c.invalid("scale \(scale) must be positive and finite, and keep the axis of \(size) below 10^12")
    }
    return Int(scaled)
}

/// Upsample and opset-10 Resize: asymmetric coordinates, nearest rounds down.
func legacyResize(_ x: Tensor, scales: [Double], _ c: KernelContext) throws -> Tensor {
    guard scales.count == x.rank else { throw c.invalid("scales has \(scales.count) values for rank \(x.rank)") }
    let outputShape = try zip(x.shape, scales).map { try scaledSize($0, $1, c) }
    try c.checkAllocation(x.dtype, outputShape)
    let modeName = c.attributes.string("mode", default: "nearest")
    let mode: Resampler.Mode = modeName == "nearest" ? .nearest : .linear
    let resampler = Resampler(
        mode: mode, transform: "asymmetric", nearestMode: "floor", cubicA: -0.75,
        excludeOutside: false, extrapolation: 0, roi: [])
    return resampler.resize(x, outputShape: outputShape, scales: scales)
}
