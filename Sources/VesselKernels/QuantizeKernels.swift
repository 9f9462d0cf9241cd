/// What `DynamicQuantizeLinear` does to every activation of a dynamically quantized model: the
/// float32 range of a tensor, then each value as a byte, sixteen lanes at a time.
public enum QuantizeKernels {
    public typealias Lanes = SIMD16<Float>

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> Lanes { UnsafeRawPointer(p).loadUnaligned(as: Lanes.self) }

    /// The least and greatest of `count` floats, NaN ignored: (+∞, −∞) when there are none.
    @inline(never)
    public static func range(_ x: UnsafePointer<Float>, count: Int) -> (low: Float, high: Float) {
        var low = Lanes(repeating: .infinity), high = Lanes(repeating: -.infinity)
        var i = 0
        while i + 16 <= count {
            let v = load(x + i)
            low.replace(with: v, where: v .< low)
            high.replace(with: v, where: v .> high)
            i += 16
        }
        var least = low.min(), greatest = high.max()
        while i < count {
            if x[i] < least { least = x[i] }
            if x[i] > greatest { greatest = x[i] }
            i += 1
        }
        return (least, greatest)
    }

    /// y = saturate(round_half_even(x / scale) + zeroPoint) to 0…255, in float32 as the spec
    /// computes it (a division, not a reciprocal's product: it decides which way halves round);
    /// NaN gives 0. `scale` must not be 0.
    @inline(never)
    public static func quantize(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, count: Int, scale: Float, zeroPoint: Float) {
        let s = Lanes(repeating: scale), z = Lanes(repeating: zeroPoint), top = Lanes(repeating: 255)
        // 2²³ added to an integer-valued float in 0…255 leaves the integer in the low mantissa bits.
        let magic = Lanes(repeating: 8_388_608)
        var i = 0
        while i + 16 <= count {
            var q = (load(x + i) / s).rounded(.toNearestOrEven) + z
            q.replace(with: 0, where: .!(q .>= 0))
            q.replace(with: top, where: q .> top)
            let bits = unsafeBitCast(q + magic, to: SIMD16<UInt32>.self)
            for j in 0..<16 { y[i + j] = UInt8(truncatingIfNeeded: bits[j]) }
            i += 16
        }
        while i < count {
            let q = (x[i] / scale).rounded(.toNearestOrEven) + zeroPoint
            y[i] = q >= 0 ? UInt8(Swift.min(q, 255)) : 0
            i += 1
        }
    }
}
