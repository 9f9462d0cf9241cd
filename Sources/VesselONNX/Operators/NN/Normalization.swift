#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import VesselTensor

extension KernelRegistry {
    static func registerNormalization(_ r: inout KernelRegistry) {
        r.register("BatchNormalization", batchNormalizationKernel)
        r.register("InstanceNormalization", since: 6, instanceNormalizationKernel)
        r.register("LayerNormalization", since: 17, layerNormalizationKernel)
        r.register("GroupNormalization", since: 18, groupNormalizationKernel)
        r.register("LRN", lrnKernel)
        r.register("LpNormalization", lpNormalizationKernel)
        r.register("RMSNormalization", since: 23, rmsNormalizationKernel)
    }

    static func lpNormalizationKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let x = try c.input(i, 0)
        let axis = try normalizeAxis(c.attributes.int("axis", default: -1), rank: x.rank, c)
        let p = c.attributes.int("p", default: 2)
        guard p == 1 || p == 2 else { throw c.invalid("p must be 1 or 2") }
        let moved = transposeToLast(x.shape, axis: axis)
        var values = x.doubles()
        let size = x.shape[axis]
        for start in stride(from: 0, to: moved.offsets.count, by: Swift.max(size, 1)) {
            let offsets = moved.offsets[start..<(start + size)]
            let norm = p == 1 ? offsets.reduce(0) { $0 + Swift.abs(values[$1]) } : offsets.reduce(0) { $0 + values[$1] * values[$1] }.squareRoot()
            for offset in offsets { values[offset] = norm == 0 ? 0 : values[offset] / norm }
        }
        return [Cast.fromDoubles(values, dtype: x.dtype, shape: x.shape)]
    }

    static func rmsNormalizationKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let x = try c.input(i, 0), scale = try c.input(i, 1)
        let axis = try normalizeAxis(c.attributes.int("axis", default: -1), rank: x.rank, c)
        let epsilon = Double(c.attributes.float("epsilon", default: 1e-5))
        let normalizedShape = Array(x.shape[axis...])
        let inner = normalizedShape.reduce(1, *)
        guard (try? Broadcast.shape(scale.shape, normalizedShape)) == normalizedShape else {
            throw c.invalid("scale has shape \(scale.shape), which does not broadcast to the normalized shape \(normalizedShape)")
        }
        let gains = scale.take(Broadcast.offsets(from: scale.shape, to: normalizedShape), shape: normalizedShape).doubles()
        var values = x.doubles()
        for row in 0..<(x.count / Swift.max(inner, 1)) {
            let range = (row * inner)..<((row + 1) * inner)
            let meanSquare = values[range].reduce(0) { $0 + $1 * $1 } / Double(inner)
            let inverse = 1 / (meanSquare + epsilon).squareRoot()
            for (k, index) in range.enumerated() { values[index] = values[index] * inverse * gains[k] }
        }
        return [Cast.fromDoubles(values, dtype: x.dtype, shape: x.shape)]
    }

    static func batchNormalizationKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let x = try c.input(i, 0)
        if c.attributes.int("training_mode", default: 0) == 1 { throw c.invalid("training mode is not supported") }
        let scale = try c.input(i, 1).doubles(), bias = try c.input(i, 2).doubles()
        let mean = try c.input(i, 3).doubles(), variance = try c.input(i, 4).doubles()
        let epsilon = Double(c.attributes.float("epsilon", default: 1e-5))
        let channels = x.rank > 1 ? x.shape[1] : 1
        let inner = x.rank > 2 ? x.shape[2...].reduce(1, *) : 1
        try checkPerChannel([("scale", scale), ("B", bias), ("input_mean", mean), ("input_var", variance)], count: channels, c)
        let factors = (0..<channels).map { scale[$0] / (variance[$0] + epsilon).squareRoot() }
        let offsets = (0..<channels).map { bias[$0] - mean[$0] * factors[$0] }
        if x.dtype == .float32 {
            // Plane by plane: one multiply-add per element, contiguous.
            let out = Tensor(uninitialized: .float32, shape: x.shape)
            x.withUnsafeBufferPointer(as: Float.self) { source in
                out.withUnsafeMutableBufferPointer(as: Float.self) { destination in
                    Parallel.chunks(x.count / Swift.max(inner, 1), minimum: Swift.max(1, 16_384 / Swift.max(inner, 1))) { range in
                        for plane in range {
                            let channel = plane % channels
                            let f = Float(factors[channel]), o = Float(offsets[channel])
                            let base = plane * inner
                            for k in base..<(base + inner) { destination[k] = source[k] * f + o }
                        }
                    }
                }
            }
            return [out]
        }
        var values = x.doubles()
        for index in values.indices {
            let channel = (index / inner) % channels
            values[index] = values[index] * factors[channel] + offsets[channel]
        }
        return [Cast.fromDoubles(values, dtype: x.dtype, shape: x.shape)]
    }

    static func instanceNormalizationKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let x = try c.input(i, 0)
        let scale = try c.input(i, 1).doubles(), bias = try c.input(i, 2).doubles()
        let epsilon = Double(c.attributes.float("epsilon", default: 1e-5))
        let channels = x.shape[1], inner = x.shape[2...].reduce(1, *)
        try checkPerChannel([("scale", scale), ("B", bias)], count: channels, c)
        var values = x.doubles()
        for group in 0..<(x.count / Swift.max(inner, 1)) {
            normalize(
                &values[(group * inner)..<((group + 1) * inner)], epsilon: epsilon,
                scale: { _ in scale[group % channels] }, bias: { _ in bias[group % channels] })
        }
        return [Cast.fromDoubles(values, dtype: x.dtype, shape: x.shape)]
    }

    static func layerNormalizationKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let x = try c.input(i, 0)
        let axis = try normalizeAxis(c.attributes.int("axis", default: -1), rank: x.rank, c)
        let epsilon = Double(c.attributes.float("epsilon", default: 1e-5))
        let inner = x.shape[axis...].reduce(1, *)
        let scaleTensor = try c.input(i, 1)
        let normalizedShape = Array(x.shape[axis...])
        for (name, tensor) in [("Scale", Optional(scaleTensor)), ("B", i.count > 2 ? i[2] : nil)] {
            if let tensor, tensor.shape != normalizedShape, (try? Broadcast.shape(tensor.shape, normalizedShape)) != normalizedShape {
                throw c.invalid("\(name) has shape \(tensor.shape), which does not broadcast to the normalized shape \(normalizedShape)")
            }
        }
        if x.dtype == .float32, scaleTensor.dtype == .float32, (i.count > 2 ? i[2]?.dtype ?? .float32 : .float32) == .float32 {
            return try layerNormFloat(
                x, scaleTensor, i.count > 2 ? i[2] : nil, axis: axis, epsilon: Float(epsilon), statsType: .float32, stats: c.node.outputs.count > 1)
        }
        let scale = scaleTensor.take(Broadcast.offsets(from: scaleTensor.shape, to: normalizedShape), shape: normalizedShape).doubles()
        var bias = [Double](repeating: 0, count: inner)
        if i.count > 2, let b = i[2] { bias = b.take(Broadcast.offsets(from: b.shape, to: normalizedShape), shape: normalizedShape).doubles() }
        var values = x.doubles()
        var means: [Double] = [], inverse: [Double] = []
        for row in 0..<(x.count / Swift.max(inner, 1)) {
            let (mean, invStd) = normalize(
                &values[(row * inner)..<((row + 1) * inner)], epsilon: epsilon,
                scale: { scale[$0] }, bias: { bias[$0] })
            means.append(mean)
            inverse.append(invStd)
        }
        let statsShape = Array(x.shape[..<axis]) + [Int](repeating: 1, count: x.rank - axis)
        let statsType: DType = DType(rawValue: "float32")!
        return [
            Cast.fromDoubles(values, dtype: x.dtype, shape: x.shape),
            Cast.fromDoubles(means, dtype: statsType, shape: statsShape),
            Cast.fromDoubles(inverse, dtype: statsType, shape: statsShape)
        ]
    }

    static func groupNormalizationKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let x = try c.input(i, 0)
        let groups = try c.attributes.required("num_groups", c.attributes.int)
        let epsilon = Double(c.attributes.float("epsilon", default: 1e-5))
        let scale = try c.input(i, 1).doubles(), bias = try c.input(i, 2).doubles()
        let channels = x.shape[1], inner = x.shape[2...].reduce(1, *)
        guard groups > 0, channels % groups == 0 else { throw c.invalid("\(channels) channels do not split into \(groups) groups") }
        let perGroup = channels / groups
        // Opset 18 gives scale and bias per group; 21 per channel.
        let perChannel = c.opset >= 21
        try checkPerChannel(
            [("scale", scale), ("bias", bias)], count: perChannel ? channels : groups,
            unit: perChannel ? "channels" : "groups (one per group before opset 21)", c)
        var values = x.doubles()
        let size = perGroup * inner
        for block in 0..<(x.count / Swift.max(size, 1)) {
            let group = block % groups
            normalize(
                &values[(block * size)..<((block + 1) * size)], epsilon: epsilon,
                scale: { perChannel ? scale[group * perGroup + $0 / inner] : scale[group] },
                bias: { perChannel ? bias[group * perGroup + $0 / inner] : bias[group] })
        }
        return [Cast.fromDoubles(values, dtype: x.dtype, shape: x.shape)]
    }

    static func lrnKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let x = try c.input(i, 0)
        let size = try c.attributes.required("size", c.attributes.int)
        let alpha = Double(c.attributes.float("alpha", default: 1e-4)), beta = Double(c.attributes.float("beta", default: 0.75))
        let bias = Double(c.attributes.float("bias", default: 1))
        let channels = x.shape[1], inner = x.shape[2...].reduce(1, *)
        let before = (size - 1) / 2, after = size - 1 - before
        if x.dtype == .float32 {
            return [
                lrnFloat(
                    x, channels: channels, inner: inner, before: before, after: after,
                    scale: alpha / Double(size), beta: beta, bias: bias)
            ]
        }
        let values = x.doubles()
        var out = values
        for index in values.indices {
            let channel = (index / inner) % channels
            var sum = 0.0
            for other in Swift.max(0, channel - before)...Swift.min(channels - 1, channel + after) {
                let value = values[index + (other - channel) * inner]
                sum += value * value
            }
            out[index] = values[index] / Libm.pow(bias + alpha / Double(size) * sum, beta)
        }
        return [Cast.fromDoubles(out, dtype: x.dtype, shape: x.shape)]
    }
}

/// Per-channel parameters: exactly `count` values each, one per channel (or per `unit`, such as
/// groups).
func checkPerChannel(_ parameters: [(name: String, values: [Double])], count: Int, unit: String = "channels", _ c: KernelContext) throws {
    for (name, values) in parameters where values.count != count {
        throw c.invalid("\(name) has \(values.count) values for \(count) \(unit)")
    }
}

/// Normalizes a slice to zero mean and unit variance, then applies per-position scale and bias.
/// Returns the mean and 1/σ.
@discardableResult
func normalize(_ values: inout ArraySlice<Double>, epsilon: Double, scale: (Int) -> Double, bias: (Int) -> Double) -> (Double, Double) {
    let count = Double(values.count)
    let mean = values.reduce(0, +) / count
    let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / count
    let inverse = 1 / (variance + epsilon).squareRoot()
    for (k, index) in values.indices.enumerated() {
        values[index] = (values[index] - mean) * inverse * scale(k) + bias(k)
    }
    return (mean, inverse)
}

/// LRN over float32 NCHW: the window sum of squares along channels is kept per pixel as the
/// window slides (one add and one subtract per channel), in Double so it does not drift.
func lrnFloat(_ x: Tensor, channels: Int, inner: Int, before: Int, after: Int, scale: Double, beta: Double, bias: Double) -> Tensor {
    let out = Tensor(uninitialized: .float32, shape: x.shape)
    let images = x.count / Swift.max(channels * inner, 1)
    // β = 0.75, the default AlexNet and GoogLeNet export.
    let threeQuarters = beta == 0.75
    x.withUnsafeBufferPointer(as: Float.self) { source in
        out.withUnsafeMutableBufferPointer(as: Float.self) { destination in
            for n in 0..<images {
                let base = n * channels * inner
                // The window slides along channels, so the threads split the pixels; a 56×56 image
                // (3,136 pixels) was left to one thread at the 4,096 this once asked for.
                Parallel.chunks(inner, minimum: 512) { pixels in
                    var window = [Double](repeating: 0, count: pixels.count)
                    func square(_ c: Int, _ k: Int) -> Double {
                        let v = Double(source[base + c * inner + pixels.lowerBound + k])
                        return v * v
                    }
                    // The window for channel 0 covers channels 0...after.
                    for c in 0...Swift.min(after, channels - 1) { for k in 0..<pixels.count { window[k] += square(c, k) } }
                    for c in 0..<channels {
                        let offset = base + c * inner + pixels.lowerBound
                        if threeQuarters {
                            // b^0.75 as √b·√√b: square roots vectorize where pow is a call per value.
                            for k in 0..<pixels.count {
                                let b = bias + scale * Swift.max(window[k], 0), root = b.squareRoot()
                                destination[offset + k] = Float(Double(source[offset + k]) / (root * root.squareRoot()))
                            }
                        } else {
                            for k in 0..<pixels.count {
                                let denominator = Libm.pow(bias + scale * Swift.max(window[k], 0), beta)
                                destination[offset + k] = Float(Double(source[offset + k]) / denominator)
                            }
                        }
                        // Slide: channel c + after + 1 enters, c − before leaves.
                        let entering = c + after + 1, leaving = c - before
                        if entering < channels { for k in 0..<pixels.count { window[k] += square(entering, k) } }
                        if leaving >= 0 { for k in 0..<pixels.count { window[k] -= square(leaving, k) } }
                    }
                }
            }
        }
    }
    return out
}

/// LayerNormalization of float32 data through `RowKernels.layerNorm`, Scale and B broadcast to
/// the normalized shape first (used as they are when they have it); the Mean and InvStdDev
/// outputs in `statsType`, when `stats` (the node lists them: `omitUnreadOutputs` drops them
/// when nothing reads them).
func layerNormFloat(_ x: Tensor, _ scale: Tensor, _ bias: Tensor?, axis: Int, epsilon: Float, statsType: DType, stats: Bool = true) throws -> [Tensor] {
    let normalizedShape = Array(x.shape[axis...])
    let inner = normalizedShape.reduce(1, *), rows = x.count / Swift.max(inner, 1)
    func full(_ t: Tensor) -> Tensor { t.shape == normalizedShape ? t : t.take(Broadcast.offsets(from: t.shape, to: normalizedShape), shape: normalizedShape) }
    let scaleFull = full(scale), biasFull = bias.map(full)
    let out = Tensor(uninitialized: .float32, shape: x.shape)
    var means = [Float](repeating: 0, count: stats ? rows : 0), inverse = [Float](repeating: 0, count: stats ? rows : 0)
    if x.count > 0 {
        x.withUnsafeBufferPointer(as: Float.self) { input in
            out.withUnsafeMutableBufferPointer(as: Float.self) { output in
                scaleFull.withUnsafeBufferPointer(as: Float.self) { s in
                    means.withUnsafeMutableBufferPointer { m in
                        inverse.withUnsafeMutableBufferPointer { v in
                            let (m, v) = stats ? (m.baseAddress, v.baseAddress) : (nil, nil)
                            if let biasFull {
                                biasFull.withUnsafeBufferPointer(as: Float.self) { b in
                                    RowKernels.layerNorm(
                                        input.baseAddress!, output.baseAddress!, rows: rows, size: inner, epsilon: epsilon,
                                        scale: s.baseAddress!, bias: b.baseAddress, means: m, inverseStd: v)
                                }
                            } else {
                                RowKernels.layerNorm(
                                    input.baseAddress!, output.baseAddress!, rows: rows, size: inner, epsilon: epsilon,
                                    scale: s.baseAddress!, bias: nil, means: m, inverseStd: v)
                            }
                        }
                    }
                }
            }
        }
    }
    guard stats else { return [out] }
    let statsShape = Array(x.shape[..<axis]) + [Int](repeating: 1, count: x.rank - axis)
    return [
        out, Cast.fromDoubles(means.map(Double.init), dtype: statsType, shape: statsShape),
        Cast.fromDoubles(inverse.map(Double.init), dtype: statsType, shape: statsShape)
    ]
}
