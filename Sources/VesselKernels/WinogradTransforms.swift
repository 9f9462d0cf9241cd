#if VESSEL_AVX512
import _Builtin_intrinsics.intel
#endif

/// The input and output transforms of Winograd's F(2×2, 3×3) (VesselONNX's `Winograd` has the
/// algorithm and the products between them), compiled three times like `RowKernels`: `Lanes`
/// tiles at a time — four in the baseline copy (SSE), eight in the Haswell copy, sixteen in the
/// AVX-512 one. The transforms are additions and subtractions in a fixed order per value, so
/// every copy gives the same bits.
public enum WinogradTransforms {
    #if VESSEL_AVX512
    public typealias Lanes = SIMD16<Float>
    typealias Pair = SIMD32<Float>
    #elseif VESSEL_HASWELL
    public typealias Lanes = SIMD8<Float>
    typealias Pair = SIMD16<Float>
    #else
    public typealias Lanes = SIMD4<Float>
    typealias Pair = SIMD8<Float>
    #endif

    /// Tiles per block: the columns a padded row needs past the last tile's are `2 · tilesPerBlock + 2`
    /// from a block's first tile (see `transformInput`).
    public static var tilesPerBlock: Int { Lanes.scalarCount }

    /// Bᵀ d B for the tiles `tiles` of one zero-padded channel (rows `paddedWidth` apart, tile
    /// (ty, tx) under rows 2ty…2ty+3 and columns 2tx…2tx+3), `tilesPerBlock` tiles of a row of
    /// tiles at a time, into `target[ξ · step + (t - tiles.lowerBound)]` for the 16 positions ξ.
    /// A block reads `2 · tilesPerBlock + 2` values of each row from column 2tx, and is written
    /// whole: past the end of a row of tiles its extra values land on the next row's tiles (written
    /// again right after) or in slack after the chunk (`tilesPerBlock` values).
    public static func transformInput(
        _ plane: UnsafePointer<Float>, paddedWidth: Int, tileColumns: Int, tiles: Range<Int>,
        into target: UnsafeMutablePointer<Float>, step: Int
    ) {
        blocks(tiles, tileColumns: tileColumns) { t, ty, tx, _ in
            // Row 2ty + i of the block's patches, as its four columns 2tx + j.
            @_transparent func row(_ i: Int) -> Quad {
                let start = plane + (2 * ty + i) * paddedWidth + 2 * tx
                let (d0, d1) = evenOdd(start), (d2, d3) = evenOdd(start + 2)
                return Quad(d0, d1, d2, d3)
            }
            let (d0, d1, d2, d3) = (row(0), row(1), row(2), row(3))
            // Bᵀ d: rows d0 - d2, d1 + d2, d2 - d1, d1 - d3; then the same along each row.
            let out = target + (t - tiles.lowerBound)
            @_transparent func emit(_ i: Int, _ e: Quad) {
                UnsafeMutableRawPointer(out + (i * 4) * step).storeBytes(of: e.a - e.c, as: Lanes.self)
                UnsafeMutableRawPointer(out + (i * 4 + 1) * step).storeBytes(of: e.b + e.c, as: Lanes.self)
                UnsafeMutableRawPointer(out + (i * 4 + 2) * step).storeBytes(of: e.c - e.b, as: Lanes.self)
                UnsafeMutableRawPointer(out + (i * 4 + 3) * step).storeBytes(of: e.b - e.d, as: Lanes.self)
            }
            emit(0, d0 - d2)
            emit(1, d1 + d2)
            emit(2, d2 - d1)
            emit(3, d1 - d3)
        }
    }

    /// Aᵀ m A (+ bias, Relu) for the tiles `tiles` of one filter: a block of tiles' 2×2 outputs at
    /// a time from `products[ξ · step + (t - tiles.lowerBound)]` (read whole, so with slack after
    /// the chunk as `transformInput` writes it), written where they fall inside the output.
    public static func transformOutput(
        _ products: UnsafePointer<Float>, step: Int, tileColumns: Int, tiles: Range<Int>,
        bias: Float, relu: Bool, outHeight: Int, outWidth: Int,
        into output: UnsafeMutablePointer<Float>
    ) {
        blocks(tiles, tileColumns: tileColumns) { t, ty, tx, blockTiles in
            let base = products + (t - tiles.lowerBound)
            // Row i of the block's products, as its four columns.
            @_transparent func row(_ i: Int) -> Quad {
                @_transparent func load(_ xi: Int) -> Lanes { UnsafeRawPointer(base + xi * step).loadUnaligned(as: Lanes.self) }
                return Quad(load(4 * i), load(4 * i + 1), load(4 * i + 2), load(4 * i + 3))
            }
            // Aᵀ m: rows m0 + m1 + m2 and m1 - m2 - m3; then the same along each row.
            let (m0, m1, m2, m3) = (row(0), row(1), row(2), row(3))
            let s0 = m0 + m1 + m2, s1 = m1 - m2 - m3
            let biasLanes = Lanes(repeating: bias)
            var y00 = s0.a + s0.b + s0.c + biasLanes, y01 = s0.b - s0.c - s0.d + biasLanes
            var y10 = s1.a + s1.b + s1.c + biasLanes, y11 = s1.b - s1.c - s1.d + biasLanes
            if relu {
                y00.replace(with: 0, where: y00 .< 0)
                y01.replace(with: 0, where: y01 .< 0)
                y10.replace(with: 0, where: y10 .< 0)
                y11.replace(with: 0, where: y11 .< 0)
            }
            let columns = min(2 * blockTiles, outWidth - 2 * tx)
            interleave(y00, y01, columns: columns, into: output + (2 * ty) * outWidth + 2 * tx)
            if 2 * ty + 1 < outHeight {
                interleave(y10, y11, columns: columns, into: output + (2 * ty + 1) * outWidth + 2 * tx)
            }
        }
    }

    /// Calls `body(t, ty, tx, count)` for the blocks of up to `tilesPerBlock` consecutive tiles of
    /// `tiles` that share a row of tiles: t = ty · tileColumns + tx is the block's first tile.
    @_transparent
    static func blocks(_ tiles: Range<Int>, tileColumns: Int, _ body: (_ t: Int, _ ty: Int, _ tx: Int, _ count: Int) -> Void) {
        var t = tiles.lowerBound
        while t < tiles.upperBound {
            let (ty, firstColumn) = t.quotientAndRemainder(dividingBy: tileColumns)
            let rowEnd = min(tiles.upperBound, (ty + 1) * tileColumns)
            var tx = firstColumn
            while t < rowEnd {
                let count = min(Lanes.scalarCount, rowEnd - t)
                body(t, ty, tx, count)
                t += count
                tx += count
            }
        }
    }

    #if VESSEL_AVX512
    /// The even and the odd values of the 32 at `p`, by two-register permutes.
    @_transparent
    static func evenOdd(_ p: UnsafePointer<Float>) -> (Lanes, Lanes) {
        let low = _mm512_loadu_ps(UnsafeRawPointer(p)), high = _mm512_loadu_ps(UnsafeRawPointer(p + 16))
        let evens = unsafeBitCast(SIMD16<Int32>(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30), to: __m512i.self)
        let odds = unsafeBitCast(SIMD16<Int32>(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31), to: __m512i.self)
        return (
            _mm512_permutex2var_ps(low, evens, high),
            _mm512_permutex2var_ps(low, odds, high)
        )
    }

    /// a0, b0, a1, b1, … a15, b15, the first `columns` of them, into `target` (masked stores
    /// for fewer than 32).
    @_transparent
    static func interleave(_ a: Lanes, _ b: Lanes, columns: Int, into target: UnsafeMutablePointer<Float>) {
        let x = a, y = b
        let low = _mm512_permutex2var_ps(x, unsafeBitCast(SIMD16<Int32>(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23), to: __m512i.self), y)
        let high = _mm512_permutex2var_ps(x, unsafeBitCast(SIMD16<Int32>(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31), to: __m512i.self), y)
        if columns >= 32 {
            _mm512_storeu_ps(UnsafeMutableRawPointer(target), low)
            _mm512_storeu_ps(UnsafeMutableRawPointer(target + 16), high)
            return
        }
        _mm512_mask_storeu_ps(UnsafeMutableRawPointer(target), __mmask16(truncatingIfNeeded: (1 << min(columns, 16)) - 1), low)
        if columns > 16 { _mm512_mask_storeu_ps(UnsafeMutableRawPointer(target + 16), __mmask16(truncatingIfNeeded: (1 << (columns - 16)) - 1), high) }
    }
    #else
    /// The even and the odd values of the 2 · tilesPerBlock at `p`.
    @_transparent
    static func evenOdd(_ p: UnsafePointer<Float>) -> (Lanes, Lanes) {
        let v = UnsafeRawPointer(p).loadUnaligned(as: Pair.self)
        #if VESSEL_HASWELL
        return (Lanes(v[0], v[2], v[4], v[6], v[8], v[10], v[12], v[14]), Lanes(v[1], v[3], v[5], v[7], v[9], v[11], v[13], v[15]))
        #else
        return (Lanes(v[0], v[2], v[4], v[6]), Lanes(v[1], v[3], v[5], v[7]))
        #endif
    }

    /// a0, b0, a1, b1, …, the first `columns` of them, into `target`.
    @_transparent
    static func interleave(_ a: Lanes, _ b: Lanes, columns: Int, into target: UnsafeMutablePointer<Float>) {
        #if VESSEL_HASWELL
        let values = Pair(a[0], b[0], a[1], b[1], a[2], b[2], a[3], b[3], a[4], b[4], a[5], b[5], a[6], b[6], a[7], b[7])
        #else
        let values = Pair(a[0], b[0], a[1], b[1], a[2], b[2], a[3], b[3])
        #endif
        if columns >= Pair.scalarCount {
            UnsafeMutableRawPointer(target).storeBytes(of: values, as: Pair.self)
            return
        }
        withUnsafeBytes(of: values) { UnsafeMutableRawPointer(target).copyMemory(from: $0.baseAddress!, byteCount: columns * 4) }
    }
    #endif

    /// Four columns of a block of tiles, added and subtracted column by column.
    struct Quad {
        var a, b, c, d: Lanes

        @_transparent
        init(_ a: Lanes, _ b: Lanes, _ c: Lanes, _ d: Lanes) {
            (self.a, self.b, self.c, self.d) = (a, b, c, d)
        }

        @_transparent
        static func + (l: Quad, r: Quad) -> Quad { Quad(l.a + r.a, l.b + r.b, l.c + r.c, l.d + r.d) }

        @_transparent
        static func - (l: Quad, r: Quad) -> Quad { Quad(l.a - r.a, l.b - r.b, l.c - r.c, l.d - r.d) }
    }
}
