#if VESSEL_HASWELL && arch(x86_64)
import _Builtin_intrinsics.intel
#endif

/// float16 ↔ float32 for whole buffers: Swift lowers each scalar `Float(Float16)` and
/// `Float16(Float)` to a compiler-rt call even for Haswell, so a model's every half tensor paid
/// two calls per element. Widening is exact: F16C's `vcvtph2ps` in the Haswell and AVX-512
/// copies, integer SIMD in the baseline one. Narrowing, in integer SIMD (eight lanes, sixteen
/// in the AVX-512 copy: F16C's `vcvtps2ph` takes its rounding as an immediate, which only a C
/// macro can pass; the halves stored by a pack or `vpmovdw`, not lane by lane), rounds to nearest, ties to even, overflows to infinity, keeps subnormals,
/// and gives a quiet NaN for a NaN (the method of F. Giesen's public-domain
/// `float_to_half_fast3_rtne`). Never inlined: a copy inlined into a caller's module would be
/// compiled for that module's (baseline) CPU.
public enum HalfConversion {
    #if VESSEL_AVX512
    typealias Bits = SIMD16<UInt32>
    typealias Floats = SIMD16<Float>
    #else
    typealias Bits = SIMD8<UInt32>
    typealias Floats = SIMD8<Float>
    #endif

    @inline(never)
    public static func widen(_ input: UnsafePointer<Float16>, _ output: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        #if VESSEL_HASWELL && arch(x86_64)
        while i + 8 <= count {
            _mm256_storeu_ps(output + i, _mm256_cvtph_ps(UnsafeRawPointer(input + i).loadUnaligned(as: __m128i.self)))
            i += 8
        }
        #else
        while i + 8 <= count {
            let p = UnsafeRawPointer(input + i).assumingMemoryBound(to: UInt16.self)
            // Lane by lane (a zero extension): `init(truncatingIfNeeded:)` is a call per element.
            let halves = Bits(UInt32(p[0]), UInt32(p[1]), UInt32(p[2]), UInt32(p[3]), UInt32(p[4]), UInt32(p[5]), UInt32(p[6]), UInt32(p[7]))
            UnsafeMutableRawPointer(output + i).storeBytes(of: widen(halves), as: SIMD8<Float>.self)
            i += 8
        }
        #endif
        while i < count {
            output[i] = Float(input[i])
            i += 1
        }
    }

    @inline(never)
    public static func narrow(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float16>, count: Int) {
        var i = 0
        let lanes = Bits.scalarCount
        #if VESSEL_AVX512 && arch(x86_64)
        // Sixteen halves stored by one truncating `vpmovdw`.
        while i + 16 <= count {
            let halves = narrow(UnsafeRawPointer(input + i).loadUnaligned(as: Bits.self))
            UnsafeMutableRawPointer(output + i).storeBytes(of: _mm512_cvtepi32_epi16(unsafeBitCast(halves, to: __m512i.self)), as: __m256i.self)
            i += 16
        }
        #elseif VESSEL_HASWELL && arch(x86_64)
        // Sixteen halves packed by `vpackusdw` (every lane is below 2^16) and put in order by one
        // permute: the pack interleaves the two registers' 128-bit halves. Lane by lane, the
        // stores took as long as the conversion.
        let order = _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7)
        while i + 16 <= count {
            let low = narrow(UnsafeRawPointer(input + i).loadUnaligned(as: Bits.self))
            let high = narrow(UnsafeRawPointer(input + i + 8).loadUnaligned(as: Bits.self))
            let packed = _mm256_packus_epi32(unsafeBitCast(low, to: __m256i.self), unsafeBitCast(high, to: __m256i.self))
            UnsafeMutableRawPointer(output + i).storeBytes(of: _mm256_permutevar8x32_epi32(packed, order), as: __m256i.self)
            i += 16
        }
        #endif
        while i + lanes <= count {
            let halves = narrow(UnsafeRawPointer(input + i).loadUnaligned(as: Bits.self))
            let p = UnsafeMutableRawPointer(output + i).assumingMemoryBound(to: UInt16.self)
            for j in 0..<lanes { p[j] = UInt16(truncatingIfNeeded: halves[j]) }
            i += lanes
        }
        while i < count {
            output[i] = Float16(input[i])
            i += 1
        }
    }

    /// All ones in the lanes where `a < b`, zero elsewhere; both below 2^31. (Comparisons that
    /// make a `SIMDMask` are built lane by lane through memory; this stays in registers.)
    @inline(__always)
    static func below(_ a: Bits, _ b: Bits) -> Bits { 0 &- ((a &- b) &>> 31) }

    @inline(__always)
    static func select(_ mask: Bits, _ yes: Bits, _ no: Bits) -> Bits { (yes & mask) | (no & ~mask) }

    /// Half bits (in the low 16 of each lane) to float bits.
    @inline(__always)
    static func widen(_ h: Bits) -> Floats {
        let shifted = (h & 0x7fff) &<< 13
        // Exponent and mantissa in place, scaled by 2^112: exact for zeros, subnormals, normals.
        let scaled = unsafeBitCast(unsafeBitCast(shifted, to: Floats.self) * Floats(repeating: Float(bitPattern: 0x7780_0000)), to: Bits.self)
        // Infinity and NaN (exponent 0x7c00): the float exponent all ones, the mantissa kept.
        let special = 0 &- (((h & 0x7c00) &+ 0x0400) &>> 15)
        let bits = select(special, shifted | 0x7f80_0000, scaled) | ((h & 0x8000) &<< 16)
        return unsafeBitCast(bits, to: Floats.self)
    }

    /// Float bits to half bits (in the low 16 of each lane).
    @inline(__always)
    static func narrow(_ f: Bits) -> Bits {
        let sign = f & 0x8000_0000
        let magnitude = f ^ sign
        // Below 2^-14: subnormal or zero, rounded by a float addition of 0.5 (as bits: the magic).
        let magic = Bits(repeating: ((127 - 15) + (23 - 10) + 1) << 23)
        let subnormal =
            unsafeBitCast(
                unsafeBitCast(magnitude, to: Floats.self) + unsafeBitCast(magic, to: Floats.self), to: Bits.self) &- magic
        // Normal: rebias, round to nearest even on the 13 dropped bits.
        let odd = (magnitude &>> 13) & 1
        let normal = (magnitude &+ Bits(repeating: UInt32(bitPattern: Int32(15 - 127) << 23)) &+ 0xfff &+ odd) &>> 13
        var result = select(below(magnitude, Bits(repeating: 113 << 23)), subnormal, normal)
        // At or past 65536 (values from 65520 round up to it through `normal`), or infinity:
        // 0x7c00; NaN: a quiet NaN.
        result = select(below(magnitude, Bits(repeating: (127 + 16) << 23)), result, Bits(repeating: 0x7c00))
        result = select(below(Bits(repeating: 0x7f80_0000), magnitude), Bits(repeating: 0x7e00), result)
        return result | (sign &>> 16)
    }
}
