import RealModule

/// The float32 row kernels of the runtime — exp, erf and sigmoid in SIMD lanes, Softmax and
/// LogSoftmax rows, LayerNormalization rows — compiled three times from this one file: as
/// `VesselKernels` for the baseline x86-64 every machine runs (SSE2), and, through symlinks, as
/// `VesselKernelsHaswell` with `-target-cpu haswell` (AVX2 and FMA: eight lanes in one
/// register) and as `VesselKernelsAVX512` (`VESSEL_AVX512`: sixteen lanes). Elementwise results
/// are the same in every copy; a row's sums are taken in lanes, so Softmax and
/// LayerNormalization can differ in the last bit between eight and sixteen. VesselONNX picks one
/// per process from the CPU's flags (`RowKernels.variant` there). Nothing here is
/// `@inlinable`, so the code of each copy is compiled for its CPU only; the caller splits the
/// rows across threads.
public enum RowKernels {
    #if VESSEL_AVX512
    public typealias Lanes = SIMD16<Float>
    typealias Ints = SIMD16<Int32>
    #else
    public typealias Lanes = SIMD8<Float>
    typealias Ints = SIMD8<Int32>
    #endif

    /// Values per lane group.
    public static var width: Int { Lanes.scalarCount }

    /// The elementwise functions `map` applies.
    public enum Unary: Sendable {
        case exp, erf, sigmoid
    }

    /// a·b + c: fused (one rounding) in the Haswell and AVX-512 copies, two roundings in the
    /// baseline one, which has no FMA instruction (the polynomials below are accurate either way).
    @_transparent
    static func madd(_ a: Lanes, _ b: Lanes, _ c: Float) -> Lanes {
        #if VESSEL_HASWELL
        Lanes(repeating: c).addingProduct(a, b)
        #else
        a * b + c
        #endif
    }

    /// e^x lane by lane: x = n·ln 2 + r with |r| ≤ ln 2 / 2 (ln 2 split in two for
    /// precision), e^r by its degree-7 Taylor polynomial in fused multiply-adds where the CPU
    /// has them (truncation below 1e-8 relative on that range), 2^n put in the exponent bits.
    /// Within 2 ulp of the exact value for x in [−87.3, 88.7] (checked against Double's exp in
    /// the tests); below, 0; above, +inf; NaN stays NaN.
    @_transparent
    static func expLanes(_ x: Lanes) -> Lanes {
        let high = Lanes(repeating: 88.72283)
        var clamped = x
        clamped.replace(with: high, where: x .> high)
        let (p, whole) = expParts(clamped)
        // 2^n as 2^(n/2) · 2^(n − n/2): each half's exponent is a normal float's for every n
        // the clamp allows (−126…128), so neither the top nor the bottom of the range is lost.
        let first = whole &>> 1, second = whole &- first
        var result = p * unsafeBitCast((first &+ 127) &<< 23, to: Lanes.self)
        result *= unsafeBitCast((second &+ 127) &<< 23, to: Lanes.self)
        // Exact edges: far below underflows to 0, far above overflows to inf, NaN passes.
        result.replace(with: Lanes(repeating: 0), where: x .< expLow)
        result.replace(with: Lanes(repeating: .infinity), where: x .> high)
        result.replace(with: x, where: x .!= x)
        return result
    }

    /// `expLanes` for x ≤ 0 (or NaN), as softmax's shifted scores are: the same steps, so the
    /// same bits, without the top of the range — 2^n (n ≥ −126 after the clamp) fits one normal
    /// float's exponent, so it is one multiply, and nothing overflows. NaN stays NaN through the
    /// arithmetic.
    @_transparent
    static func expNonPositiveLanes(_ x: Lanes) -> Lanes {
        let (p, whole) = expParts(x)
        var result = p * unsafeBitCast((whole &+ 127) &<< 23, to: Lanes.self)
        result.replace(with: Lanes(repeating: 0), where: x .< expLow)
        return result
    }

    /// Below this e^x is 0 in float32.
    static var expLow: Lanes { Lanes(repeating: -87.33654) }

    /// e^x's steps up to the scaling: x (clamped below at `expLow`) = n·ln 2 + r, and e^r.
    @_transparent
    static func expParts(_ x: Lanes, clamp: Bool = true) -> (Lanes, Ints) {
        var clamped = x
        if clamp { clamped.replace(with: expLow, where: x .< expLow) }
        // Round to nearest (even) and to an integer without the generic conversions, which
        // were most of the time: adding 1.5·2^23 leaves n in the low mantissa bits.
        let magic = Lanes(repeating: 12_582_912)
        let shifted = clamped * 1.442695041 + magic
        let n = shifted - magic
        let whole = unsafeBitCast(shifted, to: Ints.self) &- 0x4B40_0000
        var r = clamped - n * 0.693359375
        r = r - n * -2.12194440e-4
        var p = Lanes(repeating: 1.0 / 5040)
        p = madd(p, r, 1.0 / 720)
        p = madd(p, r, 1.0 / 120)
        p = madd(p, r, 1.0 / 24)
        p = madd(p, r, 1.0 / 6)
        p = madd(p, r, 0.5)
        p = madd(p, r, 1)
        p = madd(p, r, 1)
        return (p, whole)
    }

    /// Softmax (or LogSoftmax) of the rows `rows` of `size` values each.
    @inline(never)
    public static func softmaxRows(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, rows: Range<Int>, size: Int, log: Bool) {
        for row in rows {
            softmaxRow(input + row * size, output + row * size, size, log: log)
        }
    }

    /// Attention's scores, rows `rows` of `size` values: each value multiplied by `factor` (or
    /// divided by it), plus the row's mask (`masks + maskOffsets[row]`, one value per column, or
    /// its first value for every column when not `along`), then the row's softmax — each step
    /// rounded as the separate Mul (Div), Add and Softmax kernels round it.
    @inline(never)
    public static func maskedSoftmaxRows(
        _ input: UnsafePointer<Float>, masks: UnsafePointer<Float>, maskOffsets: UnsafePointer<Int>, along: Bool, factor: Float, divide: Bool,
        _ output: UnsafeMutablePointer<Float>, rows: Range<Int>, size n: Int
    ) {
        let whole = n / width * width, f = Lanes(repeating: factor)
        for row in rows {
            let x = input + row * n, y = output + row * n, m = masks + maskOffsets[row]
            // The scaled, masked scores into y, their largest kept on the way.
            var k = 0
            var lanes = Lanes(repeating: -.infinity)
            @inline(__always) func put(_ v: Lanes, _ k: Int) {
                storeLanes(v, y + k)
                lanes.replace(with: v, where: v .> lanes)
            }
            if along {
                if divide {
                    while k < whole { put(load(x + k) / f + load(m + k), k); k += width }
                    for j in whole..<n { y[j] = x[j] / factor + m[j] }
                } else {
                    while k < whole { put(load(x + k) * f + load(m + k), k); k += width }
                    for j in whole..<n { y[j] = x[j] * factor + m[j] }
                }
            } else {
                let shift = m[0], shifts = Lanes(repeating: m[0])
                if divide {
                    while k < whole { put(load(x + k) / f + shifts, k); k += width }
                    for j in whole..<n { y[j] = x[j] / factor + shift }
                } else {
                    while k < whole { put(load(x + k) * f + shifts, k); k += width }
                    for j in whole..<n { y[j] = x[j] * factor + shift }
                }
            }
            var peak = lanes.max()
            for j in whole..<n { peak = max(peak, y[j]) }
            softmaxRow(y, y, n, peak: peak, log: false)
        }
    }

    @inline(never)
    public static func softmaxRow(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, log: Bool) {
        let whole = n / width * width
        var peak = -Float.infinity
        var lanes = Lanes(repeating: -.infinity)
        var k = 0
        while k < whole {
            let v = load(x + k)
            lanes.replace(with: v, where: v .> lanes)
            k += width
        }
        peak = lanes.max()
        for j in whole..<n { peak = max(peak, x[j]) }
        softmaxRow(x, y, n, peak: peak, log: log)
    }

    /// The rest of `softmaxRow` once the row's largest value `peak` is known.
    @inline(__always)
    static func softmaxRow(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, peak: Float, log: Bool) {
        let whole = n / width * width
        var k = 0
        // A NaN anywhere makes its exp NaN, the sum NaN and so the whole row NaN; a row of −inf
        // (fully masked) has no defined softmax and gives NaN as well.
        let shift = Lanes(repeating: peak)
        var sums = Lanes(repeating: 0)
        while k < whole {
            let e = expNonPositiveLanes(load(x + k) - shift)
            if !log { storeLanes(e, y + k) }
            sums += e
            k += width
        }
        var sum = sums.sum()
        for j in whole..<n {
            let e = Float.exp(x[j] - peak)
            if !log { y[j] = e }
            sum += e
        }
        if log {
            let offset = peak + Float.log(sum)
            for j in 0..<n { y[j] = x[j] - offset }
        } else {
            let inverse = 1 / sum
            k = 0
            while k < whole {
                storeLanes(load(y + k) * inverse, y + k)
                k += width
            }
            for j in whole..<n { y[j] *= inverse }
        }
    }

    /// LayerNormalization of the rows `rows` of `size` values: (x − mean) / sqrt(var + ε) · scale
    /// + bias, mean and variance in two passes (in lanes, then summed); each row's mean
    /// and 1/sqrt(var + ε) into `means` / `inverseStd` when given.
    @inline(never)
    public static func layerNormRows(
        _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, rows: Range<Int>, size: Int, epsilon: Float,
        scale: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
        means: UnsafeMutablePointer<Float>?, inverseStd: UnsafeMutablePointer<Float>?
    ) {
        for row in rows {
            let x = input + row * size, y = output + row * size
            let whole = size / width * width
            var lanes = Lanes(repeating: 0)
            var k = 0
            while k < whole { lanes += load(x + k); k += width }
            var total = lanes.sum()
            for j in whole..<size { total += x[j] }
            let mean = total / Float(size)
            let center = Lanes(repeating: mean)
            lanes = Lanes(repeating: 0)
            k = 0
            while k < whole {
                let d = load(x + k) - center
                lanes += d * d
                k += width
            }
            var squares = lanes.sum()
            for j in whole..<size { squares += (x[j] - mean) * (x[j] - mean) }
            let inverse = 1 / (squares / Float(size) + epsilon).squareRoot()
            k = 0
            while k < whole {
                var v =
                    (load(x + k) - center) * inverse
                    * load(scale + k)
                if let bias { v += load(bias + k) }
                storeLanes(v, y + k)
                k += width
            }
            for j in whole..<size { y[j] = (x[j] - mean) * inverse * scale[j] + (bias?[j] ?? 0) }
            means?[row] = mean
            inverseStd?[row] = inverse
        }
    }

    /// `function` over the values `range` of `input` (its lower bound a multiple of `width`; a
    /// ragged end padded into one more group). One loop per function, the function inlined.
    @inline(never)
    public static func map(_ function: Unary, _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, range: Range<Int>) {
        var k = range.lowerBound
        switch function {
        case .exp:
            while k + width <= range.upperBound {
                storeLanes(expLanes(load(input + k)), output + k)
                k += width
            }
        case .erf:
            while k + width <= range.upperBound {
                storeLanes(erfLanes(load(input + k)), output + k)
                k += width
            }
        case .sigmoid:
            while k + width <= range.upperBound {
                storeLanes(sigmoidLanes(load(input + k)), output + k)
                k += width
            }
        }
        tail(input, output, k..<range.upperBound) { lanes in
            switch function {
            case .exp: expLanes(lanes)
            case .erf: erfLanes(lanes)
            case .sigmoid: sigmoidLanes(lanes)
            }
        }
    }

    /// A ragged end (fewer values than a lane group) through `f`, padded with zeros.
    static func tail(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ range: Range<Int>, _ f: (Lanes) -> Lanes) {
        guard !range.isEmpty else { return }
        var lanes = Lanes(repeating: 0)
        for j in range { lanes[j - range.lowerBound] = input[j] }
        let result = f(lanes)
        for j in range { output[j] = result[j - range.lowerBound] }
    }

    /// GELU as exporters spell it with Erf, for the values `range` (its lower bound a multiple
    /// of `width`): `(x·c3)·(erf(x/c1) + c2)`, or `(x·(erf(x/c1) + c2))·c3` when `scaleLast`;
    /// `x·c1` instead of `x/c1` when not `divide`. Each step rounds as its own node's kernel
    /// does, so results are the unfused graph's bits.
    @inline(never)
    public static func gelu(
        _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, range: Range<Int>, c1: Float, divide: Bool, c2: Float, c3: Float,
        scaleLast: Bool
    ) {
        // A loop of its own for each spelling, so the flags are constants in it.
        switch (divide, scaleLast) {
        case (true, true): geluLoop(input, output, range, c1, true, c2, c3, true)
        case (true, false): geluLoop(input, output, range, c1, true, c2, c3, false)
        case (false, true): geluLoop(input, output, range, c1, false, c2, c3, true)
        case (false, false): geluLoop(input, output, range, c1, false, c2, c3, false)
        }
    }

    /// Four lane groups a step, with no branch between them: erf's branches and exp make one
    /// long chain of dependent steps per group, and the CPU overlaps more of four chains side
    /// by side (128×1536 values, one thread: 0.40 → 0.37 ms before erf lost its division).
    @inline(__always)
    static func geluLoop(
        _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ range: Range<Int>, _ c1: Float, _ divide: Bool, _ c2: Float,
        _ c3: Float, _ scaleLast: Bool
    ) {
        let (k1, k2, k3) = (Lanes(repeating: c1), Lanes(repeating: c2), Lanes(repeating: c3))
        @_transparent func lanes(_ x: Lanes) -> Lanes {
            let a = erfLanes(divide ? x / k1 : x * k1) + k2
            return scaleLast ? x * a * k3 : x * k3 * a
        }
        var k = range.lowerBound
        while k + 4 * width <= range.upperBound {
            let (x0, x1, x2, x3) = (load(input + k), load(input + k + width), load(input + k + 2 * width), load(input + k + 3 * width))
            let (y0, y1, y2, y3) = (lanes(x0), lanes(x1), lanes(x2), lanes(x3))
            storeLanes(y0, output + k)
            storeLanes(y1, output + k + width)
            storeLanes(y2, output + k + 2 * width)
            storeLanes(y3, output + k + 3 * width)
            k += 4 * width
        }
        while k + width <= range.upperBound {
            storeLanes(lanes(load(input + k)), output + k)
            k += width
        }
        tail(input, output, k..<range.upperBound) { lanes($0) }
    }

    /// erf, within 2.1e-7 of libm's (relatively below 1e-3), odd in x: below 0.921875 in
    /// magnitude x·P(x²), P of degree 5; above it 1 − e^Q(|x|), Q of degree 8 in |x| − 2.4609375
    /// fitting log(erfc) (least squares over Chebyshev points, float64, then rounded to float);
    /// 1 past 3.925, where erf rounds to 1. One exp and no division: the Maclaurin series and
    /// Abramowitz & Stegun 7.1.26 it replaced took ~75 vector operations a lane group, this ~40.
    @_transparent
    static func erfLanes(_ x: Lanes) -> Lanes {
        // |x| and x's sign bit by masks (erf(|x|) is never negative, so the sign is or-ed
        // back); NaN flows through every step below and comes out NaN.
        let bits = unsafeBitCast(x, to: Ints.self)
        let a = unsafeBitCast(bits & 0x7FFF_FFFF, to: Lanes.self)
        let z = a * a
        var p = Lanes(repeating: -0.000602407672)
        p = madd(p, z, 0.00500077242)
        p = madd(p, z, -0.026772853)
        p = madd(p, z, 0.112820357)
        p = madd(p, z, -0.376125246)
        p = madd(p, z, 1.12837911)
        let small = a * p
        let t = a - 2.4609375
        var q = Lanes(repeating: 1.61309379e-06)
        q = madd(q, t, -1.38132455e-05)
        q = madd(q, t, 8.11069913e-05)
        q = madd(q, t, -0.000438717921)
        q = madd(q, t, 0.0022490134)
        q = madd(q, t, -0.0112033254)
        q = madd(q, t, -0.942601085)
        q = madd(q, t, -5.27898932)
        q = madd(q, t, -7.59916592)
        // Where Q's branch is taken it lies in [−17.4, −0.4]: e^Q needs neither exp's clamps
        // nor its edges. Elsewhere Q is clamped to 0 so 2^n stays a float (and the lane is
        // replaced below).
        q.replace(with: Lanes(repeating: 0), where: q .> 0)
        let (e, whole) = expParts(q, clamp: false)
        var result = Lanes(repeating: 1) - e * unsafeBitCast((whole &+ 127) &<< 23, to: Lanes.self)
        result.replace(with: small, where: a .< 0.921875)
        result.replace(with: Lanes(repeating: 1), where: a .> 3.925)
        return unsafeBitCast(unsafeBitCast(result, to: Ints.self) | (bits & Ints(repeating: Int32(bitPattern: 0x8000_0000))), to: Lanes.self)
    }

    /// 1 / (1 + e^−x), split by sign so the exp never overflows: e^x / (1 + e^x) below zero.
    @_transparent
    static func sigmoidLanes(_ x: Lanes) -> Lanes {
        let negative = x .< 0
        let e = expLanes(x.replacing(with: -x, where: .!negative) as Lanes)
        let one = Lanes(repeating: 1)
        var result: Lanes = one / (one + e)
        result.replace(with: e / (one + e), where: negative)
        return result
    }

    /// `expLanes`, `erfLanes` and `sigmoidLanes` for callers outside (the tests). Inside, the
    /// loops call those directly: a call with sixteen lanes takes them as four 128-bit pieces,
    /// and its body then computed in those (erf ran at half the speed of eight lanes).
    @inline(never)
    public static func exp(_ x: Lanes) -> Lanes { expLanes(x) }

    @inline(never)
    public static func erf(_ x: Lanes) -> Lanes { erfLanes(x) }

    @inline(never)
    public static func sigmoid(_ x: Lanes) -> Lanes { sigmoidLanes(x) }

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> Lanes {
        UnsafeRawPointer(p).loadUnaligned(as: Lanes.self)
    }

    @inline(__always)
    static func storeLanes(_ v: Lanes, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: Lanes.self)
    }
}
