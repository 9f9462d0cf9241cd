#if VESSEL_HASWELL && arch(x86_64)
import _Builtin_intrinsics.intel
#endif

/// float16 ↔ float32 for whole buffers: without F16C Swift lowers each scalar `Float(Float16)`
/// and `Float16(Float)` to a compiler-rt call, so a model's every half tensor paid two calls per
/// element. Widening is exact: F16C's `vcvtph2ps` in the Haswell and AVX-512 copies, integer
/// SIMD in the baseline one. Narrowing rounds to nearest, ties to even, overflows to infinity,
/// keeps subnormals and gives a quiet NaN for a NaN: F16C's `vcvtps2ph` in the Haswell and
/// AVX-512 copies (a plain loop LLVM vectorizes into it: the intrinsic takes its rounding as an
/// immediate, which only a C macro can pass), integer SIMD in the baseline one (the method of
/// F. Giesen's public-domain `float_to_half_fast3_rtne`). Never inlined: a copy inlined into a
/// caller's module would be compiled for that module's (baseline) CPU.
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
        #if VESSEL_HASWELL && arch(x86_64)
        // F16C: LLVM turns this loop into `vcvtps2ph` eight (sixteen) at a time, rounding as
        // MXCSR says — to nearest, ties to even, which nothing in Vessel changes.
        for i in 0..<count { output[i] = Float16(input[i]) }
        #else
        var i = 0
        let lanes = Bits.scalarCount
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
        #endif
    }

    /// The four arithmetic operators `HalfConversion.arithmetic` computes.
    public enum Operation: Int, Sendable { case add, subtract, multiply, divide }

    /// `y[i] = half(float(a[i]) ∘ float(b[i]))` for i in 0..<count; with `aScalar` (`bScalar`)
    /// `a[0]` (`b[0]`) stands for every value. The float32 operation rounded once to half is the
    /// correctly rounded half result (float32 carries more than twice half's 11 bits), the bits
    /// widening both tensors, computing in float32 and narrowing give — here a block at a time
    /// in L1, without the two float32 tensors written and read back.
    @inline(never)
    public static func arithmetic(
        _ operation: Operation, _ a: UnsafePointer<Float16>, aScalar: Bool, _ b: UnsafePointer<Float16>, bScalar: Bool,
        into y: UnsafeMutablePointer<Float16>, count: Int
    ) {
        let block = 512
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 3 * block) { buffer in
            let x = buffer.baseAddress!, z = x + block, r = x + 2 * block
            if aScalar { widen(a, x, count: 1) }
            if bScalar { widen(b, z, count: 1) }
            if aScalar { x.update(repeating: x[0], count: block) }
            if bScalar { z.update(repeating: z[0], count: block) }
            var first = 0
            while first < count {
                let n = min(block, count - first)
                if !aScalar { widen(a + first, x, count: n) }
                if !bScalar { widen(b + first, z, count: n) }
                switch operation {
                case .add: for i in 0..<n { r[i] = x[i] + z[i] }
                case .subtract: for i in 0..<n { r[i] = x[i] - z[i] }
                case .multiply: for i in 0..<n { r[i] = x[i] * z[i] }
                case .divide: for i in 0..<n { r[i] = x[i] / z[i] }
                }
                narrow(r, y + first, count: n)
                first += n
            }
        }
    }

    /// GELU spelled with Erf over float16 values and float16 constants (`c1`, `c2`, `c3` those
    /// constants widened; the spellings are `RowKernels.gelu`'s): each step widened, computed in
    /// float32 and rounded to half as its own node rounds it — `x / c1` (or `x · c1`), erf, `+ c2`,
    /// then `(x · that) · c3` or `(x · c3) · that` — a block of 512 values at a time in L1. The
    /// bits are the unfused nodes'. Here rather than in the caller's (baseline) module, so its
    /// float loops run in this copy's lanes.
    @inline(never)
    public static func gelu(
        _ x: UnsafePointer<Float16>, _ y: UnsafeMutablePointer<Float16>, count: Int, c1: Float, divide: Bool, c2: Float, c3: Float,
        scaleLast: Bool
    ) {
        let block = 512
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 3 * block) { floats in
            withUnsafeTemporaryAllocation(of: Float16.self, capacity: block) { halves in
                let (xf, a, e, h) = (floats.baseAddress!, floats.baseAddress! + block, floats.baseAddress! + 2 * block, halves.baseAddress!)
                var first = 0
                while first < count {
                    let n = min(block, count - first)
                    widen(x + first, xf, count: n)
                    if divide { for i in 0..<n { a[i] = xf[i] / c1 } } else { for i in 0..<n { a[i] = xf[i] * c1 } }
                    roundTrip(a, through: h, count: n)
                    RowKernels.map(.erf, a, e, range: 0..<n)
                    roundTrip(e, through: h, count: n)
                    for i in 0..<n { e[i] += c2 }
                    roundTrip(e, through: h, count: n)
                    if scaleLast {
                        for i in 0..<n { e[i] *= xf[i] }
                        roundTrip(e, through: h, count: n)
                        for i in 0..<n { e[i] *= c3 }
                    } else {
                        for i in 0..<n { a[i] = xf[i] * c3 }
                        roundTrip(a, through: h, count: n)
                        for i in 0..<n { e[i] *= a[i] }
                    }
                    narrow(e, y + first, count: n)
                    first += n
                }
            }
        }
    }

    /// Attention's float16 scores, rows `rows` of `size` values (`RowKernels.maskedSoftmaxRows`'s
    /// steps over half values): each value widened and multiplied by `factor` (or divided by it),
    /// rounded to half; plus the row's mask (`masks + maskOffsets[row]`, one value per column, or
    /// its first for every column when not `along`), rounded to half; then the row's softmax in
    /// float32 (`RowKernels.softmaxRow`, as the Softmax node computes a widened row), rounded to
    /// half. Each step rounds as its own node does, so the bits are the separate nodes'.
    @inline(never)
    public static func maskedSoftmaxRows(
        _ input: UnsafePointer<Float16>, masks: UnsafePointer<Float16>, maskOffsets: UnsafePointer<Int>, along: Bool, factor: Float,
        divide: Bool, _ output: UnsafeMutablePointer<Float16>, rows: Range<Int>, size n: Int
    ) {
        // Rows a block at a time (about 512 values, at least one row), so the conversions run
        // over whole blocks rather than a short row each.
        let block = max(1, 512 / max(n, 1))
        withUnsafeTemporaryAllocation(of: Float.self, capacity: (block + 1) * n) { floats in
            withUnsafeTemporaryAllocation(of: Float16.self, capacity: block * n) { halves in
                let (v, w, h) = (floats.baseAddress!, floats.baseAddress! + block * n, halves.baseAddress!)
                var first = rows.lowerBound
                while first < rows.upperBound {
                    let count = min(block, rows.upperBound - first), values = count * n
                    widen(input + first * n, v, count: values)
                    if divide { for j in 0..<values { v[j] /= factor } } else { for j in 0..<values { v[j] *= factor } }
                    roundTrip(v, through: h, count: values)
                    for row in 0..<count {
                        let m = masks + maskOffsets[first + row], target = v + row * n
                        widen(m, w, count: along ? n : 1)
                        if along {
                            for j in 0..<n { target[j] += w[j] }
                        } else {
                            let shift = w[0]
                            for j in 0..<n { target[j] += shift }
                        }
                    }
                    roundTrip(v, through: h, count: values)
                    for row in 0..<count { RowKernels.softmaxRow(v + row * n, v + row * n, n, log: false) }
                    narrow(v, output + first * n, count: values)
                    first += count
                }
            }
        }
    }

    /// `v`'s `count` values rounded to half and widened back, through `scratch`: one float16
    /// node's output as the next node reads it (`gelu`, `maskedSoftmaxRows`).
    static func roundTrip(_ v: UnsafeMutablePointer<Float>, through scratch: UnsafeMutablePointer<Float16>, count: Int) {
        narrow(v, scratch, count: count)
        widen(scratch, v, count: count)
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
