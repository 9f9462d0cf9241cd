#if VESSEL_HASWELL && arch(x86_64)
import _Builtin_intrinsics.intel
#endif

/// The inner loops of pooling and of a convolution's output pass, compiled three times from this
/// one file like `RowKernels` (baseline x86-64, Haswell, AVX-512): VesselONNX itself is compiled
/// for baseline x86-64, where a sixteen-lane compare-and-select is eight SSE instructions and
/// `maxps` four. Every result here is exact (a max, a copy, one addition and a clamp per value),
/// so the copies agree bit for bit.
public enum WindowKernels {
    /// One plane's max pool (unit dilation), or false when a NaN is among the rows read, which
    /// needs the NaN care this skips (`output` is then unfinished). Output row `oh` covers input
    /// rows `rowBounds[2·oh] ..< rowBounds[2·oh + 1]`, output column `ow` input columns
    /// `columnBounds[2·ow] ..< columnBounds[2·ow + 1]`; columns `inside` have whole windows,
    /// `kernel` wide, the first from `columnBounds[2·inside.lowerBound]`, `stride` apart. Per output
    /// row: the max down its input rows over the full width into `columnsMax` (room for `width +
    /// 32` values, its end initialized), then across the windows, sixteen at a time for strides 1
    /// and 2 (a last group of fewer is computed whole, from values past the row, and written
    /// whole where the next output row follows, in part at the plane's end).
    public static func maxPlane(
        _ input: UnsafePointer<Float>, height: Int, width: Int, rowBounds: UnsafePointer<Int>, outHeight: Int,
        columnBounds: UnsafePointer<Int>, outWidth: Int, inside: Range<Int>, stride: Int, kernel: Int,
        columnsMax: UnsafeMutablePointer<Float>, into output: UnsafeMutablePointer<Float>
    ) -> Bool {
        precondition(kernel >= 1)
        var nan = SIMDMask<SIMD16<Int32>>(repeating: false)
        for oh in 0..<outHeight {
            let lo = rowBounds[2 * oh], hi = rowBounds[2 * oh + 1]
            let target = output + oh * outWidth
            guard hi > lo else {
                for ow in 0..<outWidth { target[ow] = -.infinity }
                continue
            }
            // Down the rows into `columnsMax`, sixteen columns at a time; a last partial group is the
            // row's last sixteen columns again (a max taken twice is the same max). False at a NaN
            // in a plane narrower than sixteen.
            @inline(__always) func columnsDown() -> Bool {
                if width >= 16 {
                    // The NaN lanes go in and out by argument: a captured variable lives in memory.
                    @inline(__always) func down(_ w: Int, _ nan: inout SIMDMask<SIMD16<Int32>>) {
                        var best = load(input + lo * width + w)
                        nan .|= best .!= best
                        for h in (lo + 1)..<hi {
                            let v = load(input + h * width + w)
                            nan .|= v .!= v
                            best.replace(with: v, where: v .> best)
                        }
                        UnsafeMutableRawPointer(columnsMax + w).storeBytes(of: best, as: SIMD16<Float>.self)
                    }
                    var w = 0, rowNaN = SIMDMask<SIMD16<Int32>>(repeating: false)
                    while w + 16 <= width {
                        down(w, &rowNaN)
                        w += 16
                    }
                    if w < width { down(width - 16, &rowNaN) }
                    nan .|= rowNaN
                } else {
                    for w in 0..<width {
                        var best = input[lo * width + w]
                        if best != best { return false }
                        for h in (lo + 1)..<hi {
                            let v = input[h * width + w]
                            if v != v { return false }
                            best = v > best ? v : best
                        }
                        columnsMax[w] = best
                    }
                }
                return true
            }
            // Windows clipped by the padding, at the two ends.
            @inline(__always) func clipped(_ ow: Int) {
                var value = -Float.infinity
                for w in columnBounds[2 * ow]..<columnBounds[2 * ow + 1] {
                    let v = columnsMax[w]
                    value = v > value ? v : value
                }
                target[ow] = value
            }
            #if VESSEL_AVX512 && arch(x86_64)
            // Every network's 3-wide, stride-2 pools: sixteen windows from three registers of the
            // max down the rows (columns past the row masked off), their even and odd lanes and
            // the even ones a lane on, so no maxima go through `columnsMax` (loads across two of
            // its fresh stores wait for both to reach the cache). SqueezeNet's pools alone, one
            // thread: 128 planes of 55×55 0.085 → 0.074 ms, 256 of 27×27 0.068 → 0.055. The same
            // comparisons in the same order. `columnsMax` is filled only for windows clipped by
            // padding.
            if stride == 2, kernel == 3, width >= 16 {
                let full = !inside.isEmpty && inside.lowerBound == 0 && inside.upperBound == outWidth
                if !full { _ = columnsDown() }
                for ow in 0..<inside.lowerBound { clipped(ow) }
                // The NaN lanes go in and out by argument: a captured variable lives in memory.
                @inline(__always) func downAt(_ column: Int, _ nan: inout SIMDMask<SIMD16<Int32>>) -> SIMD16<Float> {
                    let valid: __mmask16 = column + 16 <= width ? 0xFFFF : column >= width ? 0 : mask(width - column)
                    let top = input + lo * width + column
                    var best = _mm512_maskz_loadu_ps(valid, UnsafeRawPointer(top))
                    // A whole window's three rows without the loop and its checked index
                    // arithmetic per row, one thread alone: 0.072 → 0.068 ms for 128
                    // planes of 55×55, 0.056 → 0.053 for 256 of 27×27; the same comparisons.
                    if hi - lo == 3 {
                        let v1 = _mm512_maskz_loadu_ps(valid, UnsafeRawPointer(top + width))
                        let v2 = _mm512_maskz_loadu_ps(valid, UnsafeRawPointer(top + 2 * width))
                        nan .|= (best .!= best) .| (v1 .!= v1) .| (v2 .!= v2)
                        return _mm512_max_ps(v2, _mm512_max_ps(v1, best))
                    }
                    nan .|= best .!= best
                    for h in (lo + 1)..<hi {
                        let v = _mm512_maskz_loadu_ps(valid, UnsafeRawPointer(input + h * width + column))
                        nan .|= v .!= v
                        best = _mm512_max_ps(v, best)
                    }
                    return best
                }
                var o = inside.lowerBound
                var column = inside.isEmpty ? 0 : columnBounds[2 * o]
                var rowNaN = SIMDMask<SIMD16<Int32>>(repeating: false)
                var first = o < inside.upperBound ? downAt(column, &rowNaN) : SIMD16<Float>()
                while o < inside.upperBound {
                    // Output lane j reads columns 2j … 2j + 2 from `column` on: a last group of
                    // fewer than eight windows reads nothing of the second sixteen columns, of
                    // fewer than sixteen nothing of the third (its lanes past `count` are garbage,
                    // written over later or not at all). One thread, eight alternating rounds,
                    // median p50: 256 planes of 27×27 0.054 → 0.052 ms, 128 of 55×55 unchanged.
                    let count = Swift.min(16, inside.upperBound - o)
                    let second = count >= 8 ? downAt(column + 16, &rowNaN) : first
                    let third = count == 16 ? downAt(column + 32, &rowNaN) : first
                    let even = _mm512_permutex2var_ps(first, evens, second), odd = _mm512_permutex2var_ps(first, odds, second)
                    let best = _mm512_max_ps(_mm512_permutex2var_ps(even, nextLanes, third), _mm512_max_ps(odd, even))
                    if count == 16 || oh * outWidth + o + 16 <= outHeight * outWidth {
                        _mm512_storeu_ps(UnsafeMutableRawPointer(target + o), best)
                    } else {
                        _mm512_mask_storeu_ps(UnsafeMutableRawPointer(target + o), mask(count), best)
                    }
                    first = third
                    o += 16
                    column += 32
                }
                nan .|= rowNaN
                for ow in inside.upperBound..<outWidth { clipped(ow) }
                continue
            }
            #endif
            if !columnsDown() { return false }
            for ow in 0..<inside.lowerBound { clipped(ow) }
            var o = inside.lowerBound
            var start = inside.isEmpty ? 0 : columnBounds[2 * o]
            #if VESSEL_HASWELL && !VESSEL_AVX512 && arch(x86_64)
            // Every network's 3-wide, stride-2 pools, eight outputs at a time: the three windows'
            // maxima at every column, then the even columns' (`windows3Stride2`). SqueezeNet's
            // first convolution with its pool (64 planes of 111×111), one thread, best p50 of
            // three rounds of 300 against the sixteen-wide even and odd lanes: 0.959 → 0.890 ms.
            if stride == 2, kernel == 3 {
                while o < inside.upperBound {
                    let best = windows3Stride2(columnsMax + start)
                    let count = Swift.min(8, inside.upperBound - o)
                    if count == 8 || oh * outWidth + o + 8 <= outHeight * outWidth {
                        UnsafeMutableRawPointer(target + o).storeBytes(of: best, as: SIMD8<Float>.self)
                    } else {
                        for lane in 0..<count { target[o + lane] = best[lane] }
                    }
                    o += 8
                    start += 16
                }
                for ow in inside.upperBound..<outWidth { clipped(ow) }
                continue
            }
            #endif
            if stride <= 2 {
                while o < inside.upperBound {
                    var best: SIMD16<Float>
                    if stride == 1 {
                        best = load(columnsMax + start)
                        for j in 1..<kernel {
                            let v = load(columnsMax + start + j)
                            best.replace(with: v, where: v .> best)
                        }
                    } else {
                        // Window j's values for sixteen outputs are the even (j even) or odd (j
                        // odd) lanes of 32 consecutive values from start + j rounded down to even.
                        best = evenLanes(columnsMax + start)
                        var j = 1
                        while j < kernel {
                            let odd = oddLanes(columnsMax + start + j - 1)
                            best.replace(with: odd, where: odd .> best)
                            if j + 1 < kernel {
                                let even = evenLanes(columnsMax + start + j + 1)
                                best.replace(with: even, where: even .> best)
                            }
                            j += 2
                        }
                    }
                    let count = Swift.min(16, inside.upperBound - o)
                    // Past the row's windows lie its clipped ones and the next rows, all written after.
                    if count == 16 || oh * outWidth + o + 16 <= outHeight * outWidth {
                        UnsafeMutableRawPointer(target + o).storeBytes(of: best, as: SIMD16<Float>.self)
                    } else {
                        for lane in 0..<count { target[o + lane] = best[lane] }
                    }
                    o += 16
                    start += 16 * stride
                }
            } else {
                while o < inside.upperBound {
                    var best = columnsMax[start]
                    for j in 1..<kernel {
                        let v = columnsMax[start + j]
                        best = v > best ? v : best
                    }
                    target[o] = best
                    o += 1
                    start += stride
                }
            }
            for ow in inside.upperBound..<outWidth { clipped(ow) }
        }
        // A NaN read anywhere: the plane goes the NaN-keeping way (checked once, not per row).
        return !any(nan)
    }

    /// One narrow plane's max pool (unit dilation) through a copy with -∞ around it, or false when
    /// a NaN is among the values read (`output` is then unfinished). Row-by-row with clipped
    /// windows costs a plane narrower than sixteen lanes scalar work per column (Inception's 14×14
    /// and 7×7 3×3 pools: 3.7× onnxruntime's time); here every window is whole.
    ///
    /// The copy is rows × columns, (outHeight - 1) · strides.0 + kernel.0 by (outWidth - 1) ·
    /// strides.1 + kernel.1 (every window whole): input row r, column c at row r + top, column
    /// c + left. `padded` holds it and 16 values more (rows · columns + 16 in all); the caller
    /// fills all of it with -∞ once for planes of one geometry, and only the input's part is
    /// written here. Then the max down each output row's `kernel.0` rows over the copy's full
    /// width, sixteen values at a time (with stride 1, the output rows one after another as one
    /// run), into `columnsMax` (an output row every `columns`; outHeight · columns + 48 +
    /// kernel.1 values, initialized), then across the
    /// windows, sixteen outputs at a time for strides 1 and 2. A max takes the later value where
    /// it is greater, rows then columns in order, as `maxPlane` does: the same bits.
    public static func maxPlanePadded(
        _ input: UnsafePointer<Float>, height: Int, width: Int, top: Int, left: Int, outHeight: Int, outWidth: Int,
        kernel: (Int, Int), strides: (Int, Int), padded: UnsafeMutablePointer<Float>, columnsMax: UnsafeMutablePointer<Float>,
        into output: UnsafeMutablePointer<Float>
    ) -> Bool {
        let rows = (outHeight - 1) * strides.0 + kernel.0, pitch = (outWidth - 1) * strides.1 + kernel.1
        // The input's part of the copy: rows and columns inside both.
        let firstRow = Swift.max(0, -top), lastRow = Swift.min(height, rows - top)
        let firstColumn = Swift.max(0, -left), lastColumn = Swift.min(width, pitch - left)
        if lastColumn > firstColumn {
            for r in firstRow..<Swift.max(firstRow, lastRow) {
                (padded + (r + top) * pitch + firstColumn + left).update(from: input + r * width + firstColumn, count: lastColumn - firstColumn)
            }
        }
        var nan = SIMDMask<SIMD16<Int32>>(repeating: false)
        @inline(__always) func down(_ source: UnsafePointer<Float>, _ target: UnsafeMutablePointer<Float>) {
            var best = load(source)
            nan .|= best .!= best
            for kh in 1..<kernel.0 {
                let v = load(source + kh * pitch)
                nan .|= v .!= v
                best.replace(with: v, where: v .> best)
            }
            UnsafeMutableRawPointer(target).storeBytes(of: best, as: SIMD16<Float>.self)
        }
        if strides.0 == 1 {
            // Output row oh starts at copy row oh: one run of outHeight rows.
            var i = 0
            while i < outHeight * pitch {
                down(padded + i, columnsMax + i)
                i += 16
            }
        } else {
            // Each row's run spills into the next's start, which that row then rewrites.
            for oh in 0..<outHeight {
                var c = 0
                while c < pitch {
                    down(padded + oh * strides.0 * pitch + c, columnsMax + oh * pitch + c)
                    c += 16
                }
            }
        }
        if any(nan) { return false }
        let total = outHeight * outWidth
        for oh in 0..<outHeight {
            let row = UnsafePointer(columnsMax + oh * pitch), target = output + oh * outWidth
            var o = 0
            if strides.1 <= 2 {
                while o < outWidth {
                    var best: SIMD16<Float>
                    if strides.1 == 1 {
                        best = load(row + o)
                        for j in 1..<kernel.1 {
                            let v = load(row + o + j)
                            best.replace(with: v, where: v .> best)
                        }
                    } else {
                        let start = row + 2 * o
                        best = evenLanes(start)
                        var j = 1
                        while j < kernel.1 {
                            let odd = oddLanes(start + j - 1)
                            best.replace(with: odd, where: odd .> best)
                            if j + 1 < kernel.1 {
                                let even = evenLanes(start + j + 1)
                                best.replace(with: even, where: even .> best)
                            }
                            j += 2
                        }
                    }
                    // Past the row lie the next rows, all written after.
                    if oh * outWidth + o + 16 <= total {
                        UnsafeMutableRawPointer(target + o).storeBytes(of: best, as: SIMD16<Float>.self)
                    } else {
                        for lane in 0..<Swift.min(16, outWidth - o) { target[o + lane] = best[lane] }
                    }
                    o += 16
                }
            } else {
                while o < outWidth {
                    let start = row + o * strides.1
                    var best = start[0]
                    for j in 1..<kernel.1 {
                        let v = start[j]
                        best = v > best ? v : best
                    }
                    target[o] = best
                    o += 1
                }
            }
        }
        return true
    }

    /// One plane's 2×2 pool with stride 2 and no padding (DenseNet's transitions, VGG's max
    /// pools), straight from the input's row pairs: output (oh, ow) from rows 2·oh and 2·oh + 1,
    /// columns 2·ow and 2·ow + 1 (the caller checks they are inside the plane). Sixteen outputs at
    /// a time (the last few from copies): the separable way's one-row copy, its row of column maxima
    /// or sums, and its sixteen-wide groups over a 7- or 14-wide row cost more than the pooling.
    /// The same operations in the same order as `maxPlane` and `averagePlane`, so the same bits:
    /// a max takes the lower row's value where it is greater, then the odd column's where that
    /// is; an average is `(0 + (0 + a + b) + (0 + c + d)) / 4`. Returns false, with `output`
    /// unfinished, when a max meets a NaN.
    public static func pool2x2(
        _ input: UnsafePointer<Float>, width: Int, outHeight: Int, outWidth: Int, isMax: Bool, into output: UnsafeMutablePointer<Float>
    ) -> Bool {
        var nan = SIMDMask<SIMD16<Int32>>(repeating: false)
        // The last fewer than sixteen outputs of a row: their values copied into zeros (no load
        // past the plane), the same step, the first lanes stored.
        let rest = outWidth % 16
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 64) { copies in
            let top = copies.baseAddress!, bottom = top + 32
            top.initialize(repeating: 0, count: 64)
            for oh in 0..<outHeight {
                let row0 = input + 2 * oh * width, row1 = row0 + width
                let target = output + oh * outWidth
                var ow = 0
                while ow + 16 <= outWidth {
                    let value = combine(evenLanes(row0 + 2 * ow), oddLanes(row0 + 2 * ow), evenLanes(row1 + 2 * ow), oddLanes(row1 + 2 * ow), isMax, &nan)
                    UnsafeMutableRawPointer(target + ow).storeBytes(of: value, as: SIMD16<Float>.self)
                    ow += 16
                }
                guard rest > 0 else { continue }
                top.update(from: row0 + 2 * ow, count: 2 * rest)
                bottom.update(from: row1 + 2 * ow, count: 2 * rest)
                let value = combine(evenLanes(top), oddLanes(top), evenLanes(bottom), oddLanes(bottom), isMax, &nan)
                for lane in 0..<rest { target[ow + lane] = value[lane] }
            }
        }
        return !any(nan)
    }

    /// `pool2x2`'s one step for sixteen outputs: the even and odd columns of the two rows.
    @inline(__always)
    static func combine(
        _ even0: SIMD16<Float>, _ odd0: SIMD16<Float>, _ even1: SIMD16<Float>, _ odd1: SIMD16<Float>, _ isMax: Bool,
        _ nan: inout SIMDMask<SIMD16<Int32>>
    ) -> SIMD16<Float> {
        if isMax {
            nan .|= (even0 .!= even0) .| (odd0 .!= odd0) .| (even1 .!= even1) .| (odd1 .!= odd1)
            var even = even0, odd = odd0
            even.replace(with: even1, where: even1 .> even0)
            odd.replace(with: odd1, where: odd1 .> odd0)
            even.replace(with: odd, where: odd .> even)
            return even
        }
        let zero = SIMD16<Float>()
        let top = zero + even0 + odd0, bottom = zero + even1 + odd1
        return (zero + top + bottom) / SIMD16(repeating: 4)
    }

    /// One plane of average pooling, separably (the order the scalar separable way had summed in): per input row
    /// the windows along the width (`0 + v₀ + v₁ + …` in order) into `rowSums` (`height` rows of
    /// `outWidth + 16`), then per output row its input rows `rowBounds[2·oh]..<rowBounds[2·oh+1]`
    /// added from 0 in order and divided by `rowCounts[oh] · columnCounts[ow]` (at least 1;
    /// `columnCounts` as floats, room for `outWidth + 16`). Windows
    /// wholly inside a row (`inside`, the first from `columnBounds[2·inside.lowerBound]`) are
    /// summed sixteen at a time for strides 1 and 2 from `row`, a copy of the input row with 32
    /// zeros after it (room for `width + 32`); clipped ones, at the two ends, one at a time.
    public static func averagePlane(
        _ input: UnsafePointer<Float>, height: Int, width: Int, rowBounds: UnsafePointer<Int>, rowCounts: UnsafePointer<Int>, outHeight: Int,
        columnBounds: UnsafePointer<Int>, columnCounts: UnsafePointer<Float>, outWidth: Int, inside: Range<Int>, stride: Int, kernel: Int,
        row: UnsafeMutablePointer<Float>, rowSums: UnsafeMutablePointer<Float>, into output: UnsafeMutablePointer<Float>
    ) {
        let pitch = outWidth + 16
        for h in 0..<height {
            row.update(from: input + h * width, count: width)
            let sums = rowSums + h * pitch
            @inline(__always) func clipped(_ ow: Int) {
                var value: Float = 0
                for w in columnBounds[2 * ow]..<columnBounds[2 * ow + 1] { value = value + row[w] }
                sums[ow] = value
            }
            for ow in 0..<inside.lowerBound { clipped(ow) }
            var o = inside.lowerBound
            var start = inside.isEmpty ? 0 : columnBounds[2 * o]
            if stride <= 2 {
                while o < inside.upperBound {
                    var sum = SIMD16<Float>()
                    if stride == 1 {
                        for j in 0..<kernel { sum = sum + load(row + start + j) }
                    } else {
                        // Window j's values: the even (j even) or odd lanes of 32 values from
                        // start + j rounded down to even.
                        for j in 0..<kernel { sum = sum + (j % 2 == 0 ? evenLanes(row + start + j) : oddLanes(row + start + j - 1)) }
                    }
                    UnsafeMutableRawPointer(sums + o).storeBytes(of: sum, as: SIMD16<Float>.self)
                    o += 16
                    start += 16 * stride
                }
            } else {
                while o < inside.upperBound {
                    var value: Float = 0
                    for j in 0..<kernel { value = value + row[start + j] }
                    sums[o] = value
                    o += 1
                    start += stride
                }
            }
            for ow in inside.upperBound..<outWidth { clipped(ow) }
        }
        // Down the rows sixteen columns at a time (the sums' rows have room past outWidth), the
        // divisor an exact product of small counts; a last partial group stored in part.
        for oh in 0..<outHeight {
            let target = output + oh * outWidth
            let lo = rowBounds[2 * oh], hi = rowBounds[2 * oh + 1], count = SIMD16<Float>(repeating: Float(rowCounts[oh]))
            var ow = 0
            while ow < outWidth {
                var total = SIMD16<Float>()
                for h in lo..<hi { total = total + load(rowSums + h * pitch + ow) }
                var divisor = count * load(columnCounts + ow)
                divisor.replace(with: 1, where: divisor .< 1)
                let value = total / divisor
                if ow + 16 <= outWidth {
                    UnsafeMutableRawPointer(target + ow).storeBytes(of: value, as: SIMD16<Float>.self)
                } else {
                    for lane in 0..<(outWidth - ow) { target[ow + lane] = value[lane] }
                }
                ow += 16
            }
        }
    }

    /// The mean of each of `count` planes of `inner` values at `source`, into `target`: sixteen
    /// sums in Double per plane, value k into sum k mod 16 (the last values with zeros past
    /// them), then those in one fixed order. Every copy adds in that order, so they agree bit for
    /// bit; one sum per plane in value order waited on each addition in turn.
    public static func planeMeans(_ source: UnsafePointer<Float>, inner: Int, count: Int, into target: UnsafeMutablePointer<Float>) {
        for plane in 0..<count {
            let values = source + plane * inner
            var low = SIMD8<Double>(), high = SIMD8<Double>()
            var k = 0
            while k + 16 <= inner {
                let v = load(values + k)
                low += SIMD8<Double>(v.lowHalf)
                high += SIMD8<Double>(v.highHalf)
                k += 16
            }
            if k < inner {
                var v = SIMD16<Float>()
                for j in 0..<(inner - k) { v[j] = values[k + j] }
                low += SIMD8<Double>(v.lowHalf)
                high += SIMD8<Double>(v.highHalf)
            }
            let s = low + high
            let sum = ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]))
            target[plane] = Float(sum / Double(inner))
        }
    }

    /// `target = relu?(source + bias)`, either step optional (with neither, a copy); `source`
    /// may be `target`.
    public static func biasRelu(_ source: UnsafePointer<Float>, into target: UnsafeMutablePointer<Float>, count: Int, bias: Float?, relu: Bool) {
        switch (bias, relu) {
        case (let b?, true):
            for i in 0..<count {
                let v = source[i] + b
                target[i] = v < 0 ? 0 : v
            }
        case (let b?, false):
            for i in 0..<count { target[i] = source[i] + b }
        case (nil, true):
            for i in 0..<count {
                let v = source[i]
                target[i] = v < 0 ? 0 : v
            }
        case (nil, false):
            if UnsafePointer(target) != source { target.update(from: source, count: count) }
        }
    }

    /// The im2col rows of `channels` (planes height × width from `image`) for the output positions
    /// `positions` (row-major over output rows `outWidth` wide): row channel · kernel size + kh ·
    /// kernelWidth + kw holds, at entry p - positions.lowerBound, the input under position p at
    /// that kernel offset (0 in the padding). Rows are `rowLength` apart from `columns`. Within
    /// one output row the entries are a contiguous copy (stride 1) or every stride-th input value
    /// (sixteen at a time for stride 2). Here rather than in VesselONNX so that its many short
    /// runs (a column block of a stride-2 convolution is a few dozen positions) are this CPU's
    /// code with the gather inlined: a third of such a convolution's time went to the calls.
    public static func im2col(
        _ image: UnsafePointer<Float>, height: Int, width: Int, outWidth: Int, kernel: (Int, Int), strides: (Int, Int),
        dilations: (Int, Int), padding: (Int, Int), channels: Range<Int>, positions: Range<Int>,
        into columns: UnsafeMutablePointer<Float>, rowLength: Int
    ) {
        let (kernelHeight, kernelWidth) = kernel
        let (strideH, strideW) = strides
        let (dilationH, dilationW) = dilations
        let (padTop, padLeft) = padding
        guard !positions.isEmpty else { return }
        // Per kw: the output columns whose input column falls inside the image, [first, last)
        // (both clamped to the row: with wide padding every column can be outside).
        withUnsafeTemporaryAllocation(of: Int.self, capacity: 2 * kernelWidth) { bounds in
            for kw in 0..<kernelWidth {
                let offsetW = kw * dilationW - padLeft
                let first = min(outWidth, offsetW >= 0 ? 0 : (-offsetW + strideW - 1) / strideW)
                let end = width - offsetW <= 0 ? 0 : (width - offsetW + strideW - 1) / strideW
                bounds[2 * kw] = first
                bounds[2 * kw + 1] = max(first, min(outWidth, end))
            }
            let (firstRow, firstColumn) = positions.lowerBound.quotientAndRemainder(dividingBy: outWidth)
            for channel in channels {
                let plane = image + channel * height * width
                for kh in 0..<kernelHeight {
                    let rows = columns + (channel * kernelHeight + kh) * kernelWidth * rowLength
                    // Output row oh, its columns a..<b, at entry `offset` of each row.
                    var (oh, a, offset) = (firstRow, firstColumn, 0)
                    while offset < positions.count {
                        let b = min(outWidth, a + positions.count - offset)
                        let ih = oh * strideH - padTop + kh * dilationH
                        let inside = ih >= 0 && ih < height
                        for kw in 0..<kernelWidth {
                            let destination = rows + kw * rowLength + offset - a
                            guard inside else {
                                (destination + a).initialize(repeating: 0, count: b - a)
                                continue
                            }
                            let lo = min(max(bounds[2 * kw], a), b), hi = min(max(bounds[2 * kw + 1], lo), b)
                            if lo > a { (destination + a).initialize(repeating: 0, count: lo - a) }
                            if b > hi { (destination + hi).initialize(repeating: 0, count: b - hi) }
                            guard hi > lo else { continue }
                            // Input column ow · strideW + offsetW of row ih, for ow in lo..<hi.
                            let start = ih * width + kw * dilationW - padLeft + lo * strideW
                            if strideW == 1 {
                                (destination + lo).initialize(from: plane + start, count: hi - lo)
                            } else {
                                gather(plane + start, stride: strideW, count: hi - lo, limit: height * width - start, into: destination + lo)
                            }
                        }
                        offset += b - a
                        oh += 1
                        a = 0
                    }
                }
            }
        }
    }

    /// One plane of a channel's affine map: `relu?((x · factor + offset) · scale + shift)`, the
    /// first step (an inference-mode BatchNormalization folded in front) optional — each product
    /// and sum rounded on its own, as the nodes it replaces round them.
    public static func channelAffine(
        _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, count: Int, normalize: (factor: Float, offset: Float)?,
        scale s: Float, shift b: Float, relu: Bool
    ) {
        if let (f, o) = normalize {
            if relu {
                for i in 0..<count {
                    let v = (input[i] * f + o) * s + b
                    output[i] = v < 0 ? 0 : v
                }
            } else {
                for i in 0..<count { output[i] = (input[i] * f + o) * s + b }
            }
        } else if relu {
            for i in 0..<count {
                let v = input[i] * s + b
                output[i] = v < 0 ? 0 : v
            }
        } else {
            for i in 0..<count { output[i] = input[i] * s + b }
        }
    }

    /// Every `stride`-th value of `source` from its first, `count` of them, into `target`:
    /// sixteen at a time for stride 2 while the 32 values a load reads stay below `limit`
    /// values from `source`.
    @inline(__always)
    public static func gather(_ source: UnsafePointer<Float>, stride: Int, count: Int, limit: Int, into target: UnsafeMutablePointer<Float>) {
        var i = 0
        #if VESSEL_AVX512
        if stride == 2 {
            // Sixteen at a time to the end: loads and the store masked to the values there are.
            while i < count {
                let outputs = min(16, count - i), inputs = min(32, limit - 2 * i)
                let low = _mm512_maskz_loadu_ps(mask(min(inputs, 16)), UnsafeRawPointer(source + 2 * i))
                let high = _mm512_maskz_loadu_ps(mask(max(inputs - 16, 0)), UnsafeRawPointer(source + 2 * i + 16))
                _mm512_mask_storeu_ps(UnsafeMutableRawPointer(target + i), mask(outputs), _mm512_permutex2var_ps(low, evens, high))
                i += 16
            }
            return
        }
        #endif
        if stride == 2 {
            while i + 16 <= count, 2 * i + 32 <= limit {
                UnsafeMutableRawPointer(target + i).storeBytes(of: evenLanes(source + 2 * i), as: SIMD16<Float>.self)
                i += 16
            }
        }
        while i < count {
            target[i] = source[i * stride]
            i += 1
        }
    }

    @_transparent
    static func load(_ p: UnsafePointer<Float>) -> SIMD16<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self) }

    #if VESSEL_HASWELL && !VESSEL_AVX512 && arch(x86_64)
    /// Eight 3-wide windows with stride 2 over the values at `p` (it reads 18): at each of the
    /// first sixteen columns the max of it and the next two, taken in order as `maxPlane` does (the
    /// next where greater), then the even columns' — the same bits as the windows one by one.
    /// `vmaxps` (`v > best ? v : best`) by intrinsic: a compare and select was moved past the
    /// lane shuffle by the compiler, into shuffles of the compare's masks.
    @_transparent
    static func windows3Stride2(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        let low = _mm256_max_ps(_mm256_loadu_ps(p + 2), _mm256_max_ps(_mm256_loadu_ps(p + 1), _mm256_loadu_ps(p)))
        let high = _mm256_max_ps(_mm256_loadu_ps(p + 10), _mm256_max_ps(_mm256_loadu_ps(p + 9), _mm256_loadu_ps(p + 8)))
        // `__m256` is `SIMD8<Float>` in Swift: its lanes are read directly.
        return SIMD8(low[0], low[2], low[4], low[6], high[0], high[2], high[4], high[6])
    }
    #endif

    #if VESSEL_AVX512
    /// Lane indices of `_mm512_permutex2var_ps` picking the even (odd) values of two registers.
    static var evens: __m512i { unsafeBitCast(SIMD16<Int32>(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30), to: __m512i.self) }
    static var odds: __m512i { unsafeBitCast(SIMD16<Int32>(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31), to: __m512i.self) }
    /// … picking lanes 1 to 15 of the first register, then lane 0 of the second.
    static var nextLanes: __m512i { unsafeBitCast(SIMD16<Int32>(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16), to: __m512i.self) }

    /// The first `count` (0…16) lanes.
    @_transparent
    static func mask(_ count: Int) -> __mmask16 { __mmask16(truncatingIfNeeded: (1 << count) - 1) }

    /// The even lanes of the 32 values at `p`: one two-register permute (the lanes spelled out
    /// compiled to a lane-by-lane insert here).
    @_transparent
    static func evenLanes(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
        _mm512_permutex2var_ps(_mm512_loadu_ps(UnsafeRawPointer(p)), evens, _mm512_loadu_ps(UnsafeRawPointer(p + 16)))
    }

    /// The odd lanes of the 32 values at `p`.
    @_transparent
    static func oddLanes(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
        _mm512_permutex2var_ps(_mm512_loadu_ps(UnsafeRawPointer(p)), odds, _mm512_loadu_ps(UnsafeRawPointer(p + 16)))
    }
    #else
    /// The even lanes of the 32 values at `p`, spelled lane by lane: the compiler turns this into
    /// shuffles, where `evenHalf` (or a lane choice made at run time) went through memory one lane
    /// at a time.
    @_transparent
    static func evenLanes(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
        let v = UnsafeRawPointer(p).loadUnaligned(as: SIMD32<Float>.self)
        return SIMD16(v[0], v[2], v[4], v[6], v[8], v[10], v[12], v[14], v[16], v[18], v[20], v[22], v[24], v[26], v[28], v[30])
    }

    /// The odd lanes of the 32 values at `p` (see `evenLanes`).
    @_transparent
    static func oddLanes(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
        let v = UnsafeRawPointer(p).loadUnaligned(as: SIMD32<Float>.self)
        return SIMD16(v[1], v[3], v[5], v[7], v[9], v[11], v[13], v[15], v[17], v[19], v[21], v[23], v[25], v[27], v[29], v[31])
    }
    #endif
}
