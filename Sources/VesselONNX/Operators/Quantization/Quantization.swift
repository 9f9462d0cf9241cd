#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import VesselTensor

/// For each element of `x`, the index of its scale/zero point: one for the tensor, one per
/// position along `axis`, or (with `blockSize`) one per block of positions along `axis`.
func quantizationIndex(_ x: Tensor, _ scale: Tensor, axis rawAxis: Int, blockSize: Int, _ c: KernelContext) throws -> [Int] {
    if scale.count == 1 { return [Int](repeating: 0, count: x.count) }
    let axis = try normalizeAxis(rawAxis, rank: x.rank, c)
    let strides = Tensor.strides(of: x.shape)
    if blockSize <= 0 {
        guard scale.rank == 1, scale.count == x.shape[axis] else {
            throw c.invalid("a per-axis scale needs \(x.shape[axis]) values along axis \(axis), got shape \(scale.shape)")
        }
        return (0..<x.count).map { ($0 / strides[axis]) % x.shape[axis] }
    }
    var expected = x.shape
    expected[axis] = (x.shape[axis] + blockSize - 1) / blockSize
    guard scale.shape == expected else { throw c.invalid("a blocked scale needs shape \(expected), got \(scale.shape)") }
    let scaleStrides = Tensor.strides(of: scale.shape)
    return (0..<x.count).map { position in
        var rest = position, index = 0
        for d in 0..<x.rank {
            let coordinate = rest / strides[d]
            rest %= strides[d]
            index += (d == axis ? coordinate / blockSize : coordinate) * scaleStrides[d]
        }
        return index
    }
}

/// The representable range of an integer quantization type.
func quantizationRange(_ dtype: DType) -> (Double, Double)? {
    switch dtype {
    case .int8: (-128, 127)
    case .uint8: (0, 255)
    case .int16: (-32768, 32767)
    case .uint16: (0, 65535)
    case .int32: (Double(Int32.min), Double(Int32.max))
    case .int4: (-8, 7)
    case .uint4: (0, 15)
    case .int2: (-2, 1)
    case .uint2: (0, 3)
    default: nil
    }
}

/// The float8 and float4 types, which quantize by rounding to the type rather than to integers.
func isNarrowFloat(_ dtype: DType) -> Bool {
    dtype.isFloatingPoint && !dtype.travels
}

extension KernelRegistry {
    static func registerQuantization(_ r: inout KernelRegistry) {
        r.register("DequantizeLinear", since: 10, dequantizeLinearKernel)
        r.register("QuantizeLinear", since: 10, quantizeLinearKernel)
        r.register("DynamicQuantizeLinear", since: 11, dynamicQuantizeLinearKernel)
    }

    static func dequantizeLinearKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let x = try c.input(i, 0), scale = try c.input(i, 1)
        let zeroPoint = i.count > 2 ? i[2] : nil
        guard quantizationRange(x.dtype) != nil || isNarrowFloat(x.dtype) else { throw c.invalid("\(x.dtype.rawValue) inputs are not supported") }
        let outputType = c.attributes.int("output_dtype").flatMap { $0 == 0 ? nil : ONNXDataType.dtype(Int32(clamping: $0)) } ?? scale.dtype
        // Bytes with one float32 scale and zero point (what quantize_dynamic's Gather of
        // embeddings feeds it on every run): (x − zero point) · scale in float32, which is the
        // exact product rounded once, as the general path's Double arithmetic gives.
        if x.dtype == .uint8 || x.dtype == .int8, scale.dtype == .float32, outputType == .float32, scale.rank == 0,
            (zeroPoint?.rank ?? 0) == 0, zeroPoint.map({ $0.dtype == x.dtype }) ?? true, c.attributes.int("block_size", default: 0) == 0
        {
            let factor = scale.scalars(as: Float.self)[0], zero = Float(zeroPoint?.integers().first ?? 0)
            return [
                x.dtype == .uint8
                    ? Cast.integersToFloat(x, UInt8.self, zero: zero, scale: factor) : Cast.integersToFloat(x, Int8.self, zero: zero, scale: factor)
            ]
        }
        let index = try quantizationIndex(
            x, scale, axis: c.attributes.int("axis", default: 1),
            blockSize: c.attributes.int("block_size", default: 0), c)
        let values = x.doubles(), scales = scale.doubles(), zeros = zeroPoint?.doubles()
        let result = (0..<x.count).map { k in (values[k] - (zeros?[index[k]] ?? 0)) * scales[index[k]] }
        return [Cast.fromDoubles(result, dtype: outputType, shape: x.shape)]
    }

    static func quantizeLinearKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let x = try c.input(i, 0), scale = try c.input(i, 1)
        let zeroPoint = i.count > 2 ? i[2] : nil
        let outputType =
            zeroPoint?.dtype
            ?? c.attributes.int("output_dtype").flatMap { $0 == 0 ? nil : ONNXDataType.dtype(Int32(clamping: $0)) } ?? .uint8
        let index = try quantizationIndex(
            x, scale, axis: c.attributes.int("axis", default: 1),
            blockSize: c.attributes.int("block_size", default: 0), c)
        let values = x.doubles(), scales = scale.doubles(), zeros = zeroPoint?.doubles()
        // To float8 or float4: x / scale + zero point, rounded to the type (to nearest, ties to
        // even), saturated unless `saturate` is 0.
        if isNarrowFloat(outputType) {
            let ratios = (0..<x.count).map { k in Float(values[k]) / Float(scales[index[k]]) + Float(zeros?[index[k]] ?? 0) }
            let saturate = c.attributes.int("saturate", default: 1) != 0
            return [Cast.convert(Tensor(ratios, shape: x.shape), to: outputType, saturate: saturate, rounding: .nearest)]
        }
        guard let (low, high) = quantizationRange(outputType) else { throw c.invalid("quantizing to \(outputType.rawValue) is not supported") }
        // The division happens in the input's precision (float32 for float32 inputs): it
        // decides which way values near .5 round.
        let single = x.dtype != .float64
        let result = (0..<x.count).map { k -> Double in
            let ratio = single ? Double(Float(values[k]) / Float(scales[index[k]])) : values[k] / scales[index[k]]
            // Round half to even, then saturate to the type.
            let quantized = ratio.rounded(.toNearestOrEven) + (zeros?[index[k]] ?? 0)
            return Swift.min(Swift.max(quantized, low), high)
        }
        return [Cast.fromDoubles(result, dtype: outputType, shape: x.shape)]
    }

    static func dynamicQuantizeLinearKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let x = try c.input(i, 0)
        guard x.dtype == .float32 else { throw c.invalid("DynamicQuantizeLinear takes float32") }
        let y = Tensor(uninitialized: .uint8, shape: x.shape)
        // In float32, as the spec computes. The range always includes 0, so 0 is exactly
        // representable; NaN is left out of it, and quantizes to 0.
        let (scale, zeroPoint) = x.withUnsafeBufferPointer(as: Float.self) { px -> (Float, Float) in
            let (low, high) = RowKernels.range(px.baseAddress!, count: px.count)
            let scale = (Swift.max(high, 0) - Swift.min(low, 0)) / 255
            let zeroPoint: Float = scale == 0 || !scale.isFinite ? 0 : Swift.min(Swift.max((-Swift.min(low, 0) / scale).rounded(.toNearestOrEven), 0), 255)
            y.withUnsafeMutableBufferPointer(as: UInt8.self) { py in
                if scale == 0 {
                    py.initialize(repeating: UInt8(zeroPoint))
                } else {
                    RowKernels.quantize(px.baseAddress!, py.baseAddress!, count: px.count, scale: scale, zeroPoint: zeroPoint)
                }
            }
            return (scale, zeroPoint)
        }
        return [y, Tensor(scalar: scale), Tensor(scalar: UInt8(zeroPoint))]
    }
}
