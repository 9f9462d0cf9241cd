#if VESSEL_HASWELL && arch(x86_64)
import _Builtin_intrinsics.intel
#endif

/// Int32 C = A·B for `MatMulInteger` with A as unsigned and B as signed bytes, four products a
/// step into each Int32 lane: one `vpdpbusd` (64 multiply-adds) in the AVX-512 VNNI copy; in the
/// Haswell copy `vpmaddubsw` (u8·s8 pairs summed to Int16, 32 multiply-adds), then `vpmaddwd`
/// by ones to add the pairs into Int32 — two instructions for 32, against the Int16-pair
/// `IntegerGEMM`'s one for 16 that first widens both operands.
///
/// `vpmaddubsw` saturates its pair sums at Int16, so the Haswell copy is exact only while each
/// pair of B′ (rows 2p and 2p+1 of a column) has |b₀| + |b₁| ≤ 128: then |a₀b₀ + a₁b₁| ≤
/// 255 · 128 < 2¹⁵. `pack(…, boundPairs: true)` moves whatever a pair has beyond that bound
/// out of the packed bytes into a short list of fixes (row, column, value), and `multiply` adds
/// their products to the sums it stores. Weights that `quantize_dynamic` writes have about one
/// such pair in 4,000.
///
/// The operands are not less their zero points — that would not fit in a byte. With A′ and B′
/// the bytes as stored (an int8 A is moved to unsigned by adding 128, a uint8 B to signed by
/// subtracting it, and their zero points with them) the product of the differences is
///
///     Σₚ (A′ᵣₚ − zaᵣ)(B′ₚⱼ − zbⱼ) = Σₚ A′ᵣₚB′ₚⱼ − zaᵣ·(Σₚ B′ₚⱼ − k·zbⱼ) − zbⱼ·Σₚ A′ᵣₚ
///
/// so the caller passes, per column, `u` = Σₚ B′ₚⱼ − k·zbⱼ (fixed for a weight, from B′ before
/// any pair is bounded) and `zb`, and per row `za` and A′'s byte sum (`rowSums`). All of it
/// wraps as Int32, as the Int16-pair product does, so the two give the same bits; sums do not
/// depend on how rows and panels are split.
///
/// B is packed once into panels of 16 columns; for each quad of rows (4q … 4q+3) a panel holds
/// each column's four bytes side by side — 64 bytes, one AVX-512 register or two AVX2 ones.
/// A's rows are `lda` bytes apart and zero past k up to `quadDepth(k)`.
public enum QuadGEMM {
    public static let panelWidth = 16

    /// k rounded up to a multiple of four: the length of A's rows and B's packed columns.
    public static func quadDepth(_ k: Int) -> Int { (k + 3) & ~3 }

    /// Columns rounded up to whole panels: the length of `u` and `zb`.
    public static func paddedColumns(_ n: Int) -> Int { (n + panelWidth - 1) / panelWidth * panelWidth }

    /// Bytes a packed k×n B takes.
    public static func packedCount(k: Int, n: Int) -> Int { paddedColumns(n) * quadDepth(k) }

    /// What a packed B leaves out when its pairs are bounded: `values` holds (row, column,
    /// value) triples in panel order, and panel `i`'s are triples `starts[i] ..< starts[i + 1]`.
    public struct Fixes: Sendable, Equatable {
        public var starts: [Int32]
        public var values: [Int32]

        /// No fixes for `panels` panels.
        public init(panels: Int) {
            starts = [Int32](repeating: 0, count: panels + 1)
            values = []
        }
    }

    /// Packs B′ (k×n signed bytes, row-major) into panels of 16 columns of quads. With
    /// `boundPairs` (for the Haswell copy) each pair whose magnitudes add up to more than 128
    /// has its larger value brought that much nearer zero, and the difference is returned as a
    /// fix; without it nothing is left out.
    @discardableResult
    public static func pack(_ b: UnsafePointer<Int8>, k: Int, n: Int, into packed: UnsafeMutablePointer<Int8>, boundPairs: Bool) -> Fixes {
        let depth = quadDepth(k), panels = paddedColumns(n) / panelWidth
        var fixes = Fixes(panels: panels)
        for panel in 0..<panels {
            let first = panel * panelWidth, width = min(panelWidth, n - first)
            let target = packed + panel * panelWidth * depth
            for quad in 0..<(depth / 4) {
                let row = target + quad * 4 * panelWidth
                for j in 0..<panelWidth {
                    for t in 0..<4 {
                        let p = 4 * quad + t
                        row[4 * j + t] = j < width && p < k ? b[p * n + first + j] : 0
                    }
                    guard boundPairs, j < width else { continue }
                    for t in [0, 2] {
                        let (x, y) = (Int32(row[4 * j + t]), Int32(row[4 * j + t + 1]))
                        let excess = abs(x) + abs(y) - 128
                        guard excess > 0 else { continue }
                        // The larger magnitude is at least half the sum, so at least `excess`.
                        let larger = abs(x) >= abs(y) ? t : t + 1
                        let value = Int32(row[4 * j + larger])
                        let kept = value > 0 ? value - excess : value + excess
                        row[4 * j + larger] = Int8(kept)
                        fixes.values += [Int32(4 * quad + larger), Int32(first + j), value - kept]
                    }
                }
            }
            fixes.starts[panel + 1] = Int32(fixes.values.count / 3)
        }
        return fixes
    }

    /// Each row's byte sum over its first `depth` bytes, rows `lda` apart, into `sums[row]`.
    @inline(never)
    public static func rowSums(_ a: UnsafePointer<UInt8>, lda: Int, depth: Int, rows: Range<Int>, into sums: UnsafeMutablePointer<Int32>) {
        for row in rows {
            let bytes = a + row * lda
            #if VESSEL_AVX512 && arch(x86_64)
            let ones = _mm512_set1_epi8(1)
            var total = _mm512_setzero_si512()
            var p = 0
            while p + 64 <= depth {
                total = _mm512_dpbusd_epi32(total, _mm512_loadu_si512(UnsafeRawPointer(bytes + p)), ones)
                p += 64
            }
            if p < depth {
                let mask: __mmask64 = (1 << UInt64(depth - p)) &- 1
                total = _mm512_dpbusd_epi32(total, _mm512_maskz_loadu_epi8(mask, UnsafeRawPointer(bytes + p)), ones)
            }
            sums[row] = _mm512_reduce_add_epi32(total)
            #else
            var total: Int32 = 0
            for p in 0..<depth { total &+= Int32(bytes[p]) }
            sums[row] = total
            #endif
        }
    }

    /// C's rows `rows` (ldc = n) for panels `panels`: A′·B′ less the zero-point terms (see the
    /// type's comment), plus the products of `fixes` (`starts` and `values` of `Fixes`). `za`
    /// and `rowSum` are indexed by row, `u` and `zb` by column (padded to whole panels). Never
    /// inlined into a (baseline) caller.
    @inline(never)
    public static func multiply(
        a: UnsafePointer<UInt8>, lda: Int, packed: UnsafePointer<Int8>, k: Int, n: Int, c: UnsafeMutablePointer<Int32>,
        za: UnsafePointer<Int32>, rowSum: UnsafePointer<Int32>, u: UnsafePointer<Int32>, zb: UnsafePointer<Int32>,
        fixStarts: UnsafePointer<Int32>, fixes: UnsafePointer<Int32>, rows: Range<Int>, panels: Range<Int>
    ) {
        let depth = quadDepth(k)
        #if VESSEL_AVX512 && arch(x86_64)
        var panel = panels.lowerBound
        while panel < panels.upperBound {
            // Two panels (32 columns) at a time; a lone last one is read twice and stored once.
            let two = panel + 1 < panels.upperBound
            let b0 = packed + panel * panelWidth * depth
            let b1 = two ? b0 + panelWidth * depth : b0
            let edge = Edge(first: panel * panelWidth, width: min((two ? 2 : 1) * panelWidth, n - panel * panelWidth), u: u, zb: zb)
            var row = rows.lowerBound
            while row + 8 <= rows.upperBound {
                block8(a + row * lda, lda, b0, b1, depth / 4, c + row * n, n, za + row, rowSum + row, edge)
                row += 8
            }
            while row < rows.upperBound {
                block1(a + row * lda, b0, b1, depth / 4, c + row * n, za[row], rowSum[row], edge)
                row += 1
            }
            panel += two ? 2 : 1
        }
        #else
        // One panel (two registers of eight columns) at a time, against four rows.
        for panel in panels {
            let b = packed + panel * panelWidth * depth
            let edge = Edge(first: panel * panelWidth, width: min(panelWidth, n - panel * panelWidth), u: u, zb: zb)
            var row = rows.lowerBound
            while row + 4 <= rows.upperBound {
                block4(a + row * lda, lda, b, depth / 4, c + row * n, n, za + row, rowSum + row, edge)
                row += 4
            }
            while row < rows.upperBound {
                block1(a + row * lda, b, depth / 4, c + row * n, za[row], rowSum[row], edge)
                row += 1
            }
        }
        #endif
        // What bounding the pairs left out of the packed bytes.
        let fixRange = Int(fixStarts[panels.lowerBound])..<Int(fixStarts[panels.upperBound])
        guard !fixRange.isEmpty else { return }
        for row in rows {
            let bytes = a + row * lda, sums = c + row * n
            for index in fixRange {
                let fix = fixes + 3 * index
                sums[Int(fix[1])] &+= Int32(bytes[Int(fix[0])]) &* fix[2]
            }
        }
    }

    typealias Sums = SIMD16<Int32>

    /// Where a block's columns start and how many it stores, with their zero-point terms.
    struct Edge {
        let first: Int, width: Int, u0: Sums, u1: Sums, zb0: Sums, zb1: Sums

        init(first: Int, width: Int, u: UnsafePointer<Int32>, zb: UnsafePointer<Int32>) {
            self.first = first
            self.width = width
            u0 = UnsafeRawPointer(u + first).loadUnaligned(as: Sums.self)
            zb0 = UnsafeRawPointer(zb + first).loadUnaligned(as: Sums.self)
            // A lone last panel has no second one to read: its terms are never stored.
            let second = width > panelWidth
            u1 = second ? UnsafeRawPointer(u + first + panelWidth).loadUnaligned(as: Sums.self) : Sums()
            zb1 = second ? UnsafeRawPointer(zb + first + panelWidth).loadUnaligned(as: Sums.self) : Sums()
        }

        /// One row's two sums less their zero-point terms, stored.
        @inline(__always)
        func store(_ s0: Sums, _ s1: Sums, _ c: UnsafeMutablePointer<Int32>, za: Int32, rowSum: Int32) {
            let z = Sums(repeating: za), r = Sums(repeating: rowSum)
            let low = s0 &- z &* u0 &- r &* zb0, high = s1 &- z &* u1 &- r &* zb1
            if width == 2 * panelWidth {
                UnsafeMutableRawPointer(c + first).storeBytes(of: low, as: Sums.self)
                UnsafeMutableRawPointer(c + first + panelWidth).storeBytes(of: high, as: Sums.self)
                return
            }
            if width == panelWidth {
                UnsafeMutableRawPointer(c + first).storeBytes(of: low, as: Sums.self)
                return
            }
            for j in 0..<width { c[first + j] = j < panelWidth ? low[j] : high[j - panelWidth] }
        }
    }

    #if VESSEL_AVX512 && arch(x86_64)
    @inline(__always)
    static func load(_ p: UnsafePointer<Int8>) -> __m512i { _mm512_loadu_si512(UnsafeRawPointer(p)) }

    /// A's quad `q` (four bytes as one Int32) in every lane.
    @inline(__always)
    static func quad(_ a: UnsafePointer<UInt8>, _ q: Int) -> __m512i {
        _mm512_set1_epi32(UnsafeRawPointer(a + 4 * q).loadUnaligned(as: Int32.self))
    }

    @inline(__always)
    static func sums(_ v: __m512i) -> Sums { unsafeBitCast(v, to: Sums.self) }

    /// Eight rows of A against two panels: sixteen accumulators.
    @inline(__always)
    static func block8(
        _ a: UnsafePointer<UInt8>, _ lda: Int, _ b0: UnsafePointer<Int8>, _ b1: UnsafePointer<Int8>, _ quads: Int,
        _ c: UnsafeMutablePointer<Int32>, _ n: Int, _ za: UnsafePointer<Int32>, _ rowSum: UnsafePointer<Int32>, _ edge: Edge
    ) {
        let zero = _mm512_setzero_si512()
        var c00 = zero, c01 = zero, c10 = zero, c11 = zero, c20 = zero, c21 = zero, c30 = zero, c31 = zero
        var c40 = zero, c41 = zero, c50 = zero, c51 = zero, c60 = zero, c61 = zero, c70 = zero, c71 = zero
        let a0 = a, a1 = a + lda, a2 = a + 2 * lda, a3 = a + 3 * lda, a4 = a + 4 * lda, a5 = a + 5 * lda, a6 = a + 6 * lda
        let a7 = a + 7 * lda
        for q in 0..<quads {
            let x0 = load(b0 + q * 4 * panelWidth), x1 = load(b1 + q * 4 * panelWidth)
            var y = quad(a0, q)
            c00 = _mm512_dpbusd_epi32(c00, y, x0)
            c01 = _mm512_dpbusd_epi32(c01, y, x1)
            y = quad(a1, q)
            c10 = _mm512_dpbusd_epi32(c10, y, x0)
            c11 = _mm512_dpbusd_epi32(c11, y, x1)
            y = quad(a2, q)
            c20 = _mm512_dpbusd_epi32(c20, y, x0)
            c21 = _mm512_dpbusd_epi32(c21, y, x1)
            y = quad(a3, q)
            c30 = _mm512_dpbusd_epi32(c30, y, x0)
            c31 = _mm512_dpbusd_epi32(c31, y, x1)
            y = quad(a4, q)
            c40 = _mm512_dpbusd_epi32(c40, y, x0)
            c41 = _mm512_dpbusd_epi32(c41, y, x1)
            y = quad(a5, q)
            c50 = _mm512_dpbusd_epi32(c50, y, x0)
            c51 = _mm512_dpbusd_epi32(c51, y, x1)
            y = quad(a6, q)
            c60 = _mm512_dpbusd_epi32(c60, y, x0)
            c61 = _mm512_dpbusd_epi32(c61, y, x1)
            y = quad(a7, q)
            c70 = _mm512_dpbusd_epi32(c70, y, x0)
            c71 = _mm512_dpbusd_epi32(c71, y, x1)
        }
        edge.store(sums(c00), sums(c01), c, za: za[0], rowSum: rowSum[0])
        edge.store(sums(c10), sums(c11), c + n, za: za[1], rowSum: rowSum[1])
        edge.store(sums(c20), sums(c21), c + 2 * n, za: za[2], rowSum: rowSum[2])
        edge.store(sums(c30), sums(c31), c + 3 * n, za: za[3], rowSum: rowSum[3])
        edge.store(sums(c40), sums(c41), c + 4 * n, za: za[4], rowSum: rowSum[4])
        edge.store(sums(c50), sums(c51), c + 5 * n, za: za[5], rowSum: rowSum[5])
        edge.store(sums(c60), sums(c61), c + 6 * n, za: za[6], rowSum: rowSum[6])
        edge.store(sums(c70), sums(c71), c + 7 * n, za: za[7], rowSum: rowSum[7])
    }

    @inline(__always)
    static func block1(
        _ a: UnsafePointer<UInt8>, _ b0: UnsafePointer<Int8>, _ b1: UnsafePointer<Int8>, _ quads: Int, _ c: UnsafeMutablePointer<Int32>,
        _ za: Int32, _ rowSum: Int32, _ edge: Edge
    ) {
        var c0 = _mm512_setzero_si512(), c1 = c0
        for q in 0..<quads {
            let y = quad(a, q)
            c0 = _mm512_dpbusd_epi32(c0, y, load(b0 + q * 4 * panelWidth))
            c1 = _mm512_dpbusd_epi32(c1, y, load(b1 + q * 4 * panelWidth))
        }
        edge.store(sums(c0), sums(c1), c, za: za, rowSum: rowSum)
    }
    #elseif VESSEL_HASWELL && arch(x86_64)
    /// Eight columns' quads: half a panel row.
    @inline(__always)
    static func half(_ p: UnsafePointer<Int8>) -> __m256i { UnsafeRawPointer(p).loadUnaligned(as: __m256i.self) }

    /// A's quad `q` (four bytes as one Int32) in every lane.
    @inline(__always)
    static func quad(_ a: UnsafePointer<UInt8>, _ q: Int) -> __m256i {
        _mm256_set1_epi32(UnsafeRawPointer(a + 4 * q).loadUnaligned(as: Int32.self))
    }

    /// `sums` plus, in each lane, the four u8·s8 products of A's quad `y` and a column's quad in
    /// `x`: pairs into Int16 (exact while B's pairs are bounded), pairs of pairs into Int32.
    @inline(__always)
    static func dot(_ sums: __m256i, _ y: __m256i, _ x: __m256i, _ ones: __m256i) -> __m256i {
        _mm256_add_epi32(sums, _mm256_madd_epi16(_mm256_maddubs_epi16(y, x), ones))
    }

    @inline(__always)
    static func joined(_ low: __m256i, _ high: __m256i) -> Sums {
        Sums(lowHalf: unsafeBitCast(low, to: SIMD8<Int32>.self), highHalf: unsafeBitCast(high, to: SIMD8<Int32>.self))
    }

    /// Four rows of A against one panel: eight accumulators.
    @inline(__always)
    static func block4(
        _ a: UnsafePointer<UInt8>, _ lda: Int, _ b: UnsafePointer<Int8>, _ quads: Int, _ c: UnsafeMutablePointer<Int32>, _ n: Int,
        _ za: UnsafePointer<Int32>, _ rowSum: UnsafePointer<Int32>, _ edge: Edge
    ) {
        let ones = _mm256_set1_epi16(1), zero = _mm256_setzero_si256()
        var c00 = zero, c01 = zero, c10 = zero, c11 = zero, c20 = zero, c21 = zero, c30 = zero, c31 = zero
        let a0 = a, a1 = a + lda, a2 = a + 2 * lda, a3 = a + 3 * lda
        for q in 0..<quads {
            let x0 = half(b + q * 4 * panelWidth), x1 = half(b + q * 4 * panelWidth + 32)
            var y = quad(a0, q)
            c00 = dot(c00, y, x0, ones)
            c01 = dot(c01, y, x1, ones)
            y = quad(a1, q)
            c10 = dot(c10, y, x0, ones)
            c11 = dot(c11, y, x1, ones)
            y = quad(a2, q)
            c20 = dot(c20, y, x0, ones)
            c21 = dot(c21, y, x1, ones)
            y = quad(a3, q)
            c30 = dot(c30, y, x0, ones)
            c31 = dot(c31, y, x1, ones)
        }
        edge.store(joined(c00, c01), Sums(), c, za: za[0], rowSum: rowSum[0])
        edge.store(joined(c10, c11), Sums(), c + n, za: za[1], rowSum: rowSum[1])
        edge.store(joined(c20, c21), Sums(), c + 2 * n, za: za[2], rowSum: rowSum[2])
        edge.store(joined(c30, c31), Sums(), c + 3 * n, za: za[3], rowSum: rowSum[3])
    }

    @inline(__always)
    static func block1(
        _ a: UnsafePointer<UInt8>, _ b: UnsafePointer<Int8>, _ quads: Int, _ c: UnsafeMutablePointer<Int32>, _ za: Int32, _ rowSum: Int32,
        _ edge: Edge
    ) {
        let ones = _mm256_set1_epi16(1)
        var c0 = _mm256_setzero_si256(), c1 = c0
        for q in 0..<quads {
            let y = quad(a, q)
            c0 = dot(c0, y, half(b + q * 4 * panelWidth), ones)
            c1 = dot(c1, y, half(b + q * 4 * panelWidth + 32), ones)
        }
        edge.store(joined(c0, c1), Sums(), c, za: za, rowSum: rowSum)
    }
    #else
    // The baseline copy (and any CPU without these instructions): plain sums, one panel at a
    // time. Production never picks it; the kernel tests hold the other copies to it.
    @inline(__always)
    static func block4(
        _ a: UnsafePointer<UInt8>, _ lda: Int, _ b: UnsafePointer<Int8>, _ quads: Int, _ c: UnsafeMutablePointer<Int32>, _ n: Int,
        _ za: UnsafePointer<Int32>, _ rowSum: UnsafePointer<Int32>, _ edge: Edge
    ) {
        for r in 0..<4 { block1(a + r * lda, b, quads, c + r * n, za[r], rowSum[r], edge) }
    }

    static func block1(
        _ a: UnsafePointer<UInt8>, _ b: UnsafePointer<Int8>, _ quads: Int, _ c: UnsafeMutablePointer<Int32>, _ za: Int32, _ rowSum: Int32,
        _ edge: Edge
    ) {
        var sums = Sums()
        for q in 0..<quads {
            for j in 0..<panelWidth {
                for t in 0..<4 { sums[j] &+= Int32(a[4 * q + t]) &* Int32(b[q * 4 * panelWidth + 4 * j + t]) }
            }
        }
        edge.store(sums, Sums(), c, za: za, rowSum: rowSum)
    }
    #endif
}
