#if VESSEL_HASWELL && arch(x86_64)
import _Builtin_intrinsics.intel
#endif

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
            store(q, magic, y + i)
            i += 16
        }
        while i < count {
            let q = (x[i] / scale).rounded(.toNearestOrEven) + zeroPoint
            y[i] = q >= 0 ? UInt8(Swift.min(q, 255)) : 0
            i += 1
        }
    }

    /// Sixteen integer-valued floats in 0…255 as bytes: packed by saturating conversions in
    /// the Haswell and AVX-512 copies (a byte at a time they were most of the time), else the
    /// low byte of each value + 2²³'s bits.
    @inline(__always)
    static func store(_ q: Lanes, _ magic: Lanes, _ y: UnsafeMutablePointer<UInt8>) {
        #if VESSEL_AVX512 && arch(x86_64)
        let bytes = _mm512_cvtusepi32_epi8(_mm512_cvtps_epi32(q))
        UnsafeMutableRawPointer(y).storeBytes(of: bytes, as: __m128i.self)
        #elseif VESSEL_HASWELL && arch(x86_64)
        // Packing works within 128-bit halves: the bytes come out as [low 0–3, high 0–3] in
        // the first half and [low 4–7, high 4–7] in the second; one permute puts the four
        // groups in order.
        let words = _mm256_packus_epi32(_mm256_cvtps_epi32(q.lowHalf), _mm256_cvtps_epi32(q.highHalf))
        let bytes = _mm256_packus_epi16(words, words)
        let ordered = _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 0, 0, 0, 0))
        UnsafeMutableRawPointer(y).storeBytes(of: ordered.lowHalf, as: SIMD2<Int64>.self)
        #else
        let bits = unsafeBitCast(q + magic, to: SIMD16<UInt32>.self)
        for j in 0..<16 { y[j] = UInt8(truncatingIfNeeded: bits[j]) }
        #endif
    }

    /// The floats of an integer product as `MatMulInteger` → `Cast` → `Mul` (→ `Add`) write
    /// them: `target[j] = Float(source[j]) · factor (+ bias[j])` for j in `columns`, the factor
    /// `factors[0]` for all or `factors[j]` each — two roundings, in the separate kernels' order
    /// (never fused into one multiply-add).
    @inline(never)
    public static func scaleSums(
        _ source: UnsafePointer<Int32>, _ target: UnsafeMutablePointer<Float>, columns: Range<Int>, factors: UnsafePointer<Float>,
        perColumn: Bool, bias: UnsafePointer<Float>?
    ) {
        // Plain loops, one per case, which LLVM vectorizes with `vcvtdq2ps`: converting through
        // `SIMD16<Float>.init(_: SIMD16<Int32>)` compiled to a call per sixteen values.
        let factor = factors[0]
        switch (perColumn, bias) {
        case (true, let bias?): for j in columns { target[j] = Float(source[j]) * factors[j] + bias[j] }
        case (true, nil): for j in columns { target[j] = Float(source[j]) * factors[j] }
        case (false, let bias?): for j in columns { target[j] = Float(source[j]) * factor + bias[j] }
        case (false, nil): for j in columns { target[j] = Float(source[j]) * factor }
        }
    }
}
