import CVesselPrefetch

/// Single-precision C = A·B with B packed once: the weights of a MatMul are packed into panels
/// of 16 columns (k rows of 16 contiguous values, the last panel padded with zeros) the first
/// time they are seen, so each run streams them instead of having OpenBLAS pack them again
/// (at a few rows — one sentence, one image — packing cost as much as multiplying).
///
/// A 6×16 register block: twelve eight-lane accumulators, A broadcast one value at a time.
/// Each element of C is one sum over k in order, whichever block, remainder path or thread
/// computes it, so results do not depend on how rows and panels are split. In the Haswell copy
/// (`VESSEL_HASWELL`) the multiply-adds are fused. The AVX-512 copy (`VESSEL_AVX512`) takes two
/// panels at once in 8×32 blocks of sixteen-lane accumulators (an odd last panel in 8×16 blocks)
/// — the same fused sums in the same order, so its results are bit for bit the Haswell copy's.
/// The blocks read a panel's k rows `rs` floats apart: 16 when packed, B's row length when B is
/// read in place (`Panels`), with the same sums either way.
///
/// Each step of the 16-wide blocks also asks for the same cache line of the next panel
/// (`vessel_prefetch`): with a few rows the first block streams a panel from memory and the
/// others reread it from L1, and without the hint the memory bus sat idle meanwhile (MiniLM
/// 1×16, one thread: 6.2 → 5.5 ms). The four-panel row asks for each of its four streams' line
/// sixteen steps ahead (asking for the next four panels' lines, 512 KiB ahead at ResNet-50's
/// classifier, left an MLP at batch 1 at 0.051 ms against 0.042). The AVX-512 pairs' first
/// 8-row block asks for the next pair's rows the same way (`Wide.block8`).
public enum PackedGEMM {
    public typealias Lanes = SIMD8<Float>
    public static let panelWidth = 16

    /// Floats a packed k×n B takes.
    public static func packedCount(k: Int, n: Int) -> Int { (n + panelWidth - 1) / panelWidth * panelWidth * k }

    /// What the blocks do to C's values on their way out: add the row's bias (one value per row
    /// of C: a convolution's per-filter bias), then the value at the same place of `residual` (a
    /// matrix laid out as C, from C's first value: a residual connection's Add), then clamp at
    /// zero (a fused Relu, `v < 0 ? 0 : v`, so NaN stays NaN). The same additions as passes over
    /// C after the product, in the same order, without the passes.
    public struct Epilogue: @unchecked Sendable {
        public var bias: UnsafePointer<Float>?
        public var residual: UnsafePointer<Float>?
        public var relu: Bool
        /// From a value of C to its residual: set by `multiply`, which knows where C starts.
        var distance = 0

        public init(bias: UnsafePointer<Float>? = nil, residual: UnsafePointer<Float>? = nil, relu: Bool = false) {
            self.bias = bias
            self.residual = residual
            self.relu = relu
        }

        public static let none = Epilogue()

        /// The epilogue of the rows from `row` on.
        @inline(__always)
        func from(_ row: Int) -> Epilogue {
            var e = self
            e.bias = bias.map { $0 + row }
            return e
        }

        /// This epilogue for the C starting at `c`.
        @inline(__always)
        func at(_ c: UnsafeMutablePointer<Float>) -> Epilogue {
            var e = self
            if let residual { e.distance = UnsafePointer(c).distance(to: residual) }
            return e
        }

        // Two concrete copies: a generic one, even transparent, compared lane by lane through
        // memory (ten times slower products); so did a compare against `SIMD16()` rather than
        // the literal 0.
        @_transparent
        func apply(_ v: SIMD8<Float>, _ row: Int, _ c: UnsafeMutablePointer<Float>, _ width: Int) -> SIMD8<Float> {
            var v = v
            if let bias { v += SIMD8(repeating: bias[row]) }
            if residual != nil {
                let r = UnsafePointer(c) + distance
                if width >= 8 {
                    v += UnsafeRawPointer(r).loadUnaligned(as: SIMD8<Float>.self)
                } else {
                    for j in 0..<max(0, width) { v[j] += r[j] }
                }
            }
            if relu { v.replace(with: 0, where: v .< 0) }
            return v
        }

        @_transparent
        func apply(_ v: SIMD16<Float>, _ row: Int, _ c: UnsafeMutablePointer<Float>, _ width: Int) -> SIMD16<Float> {
            var v = v
            if let bias { v += SIMD16(repeating: bias[row]) }
            if residual != nil {
                let r = UnsafePointer(c) + distance
                if width >= 16 {
                    v += UnsafeRawPointer(r).loadUnaligned(as: SIMD16<Float>.self)
                } else {
                    for j in 0..<max(0, width) { v[j] += r[j] }
                }
            }
            if relu { v.replace(with: 0, where: v .< 0) }
            return v
        }
    }

    /// Packs op(B) — k×n, or n×k when `transposed` — whose rows are `ldb` apart: all of it, or
    /// the panels `panels` (so threads can share the work).
    @inline(never)
    public static func pack(
        _ b: UnsafePointer<Float>, k: Int, n: Int, ldb: Int, transposed: Bool, into packed: UnsafeMutablePointer<Float>, panels: Range<Int>? = nil
    ) {
        for panel in panels ?? 0..<((n + panelWidth - 1) / panelWidth) {
            let first = panel * panelWidth, width = min(panelWidth, n - first)
            let target = packed + panel * panelWidth * k
            if !transposed, width == panelWidth {
                // A whole panel of a row-major B: sixteen contiguous values per row.
                for p in 0..<k { (target + p * panelWidth).update(from: b + p * ldb + first, count: panelWidth) }
                continue
            }
            if !transposed {
                // A partial one: its values a row, then zeros, in loops of their own. One loop
                // choosing per value (and between the two layouts) made the tail a pointwise
                // convolution packs every run (`packTail`) 7 % of SqueezeNet's 512→64 over 13×13
                // alone; now 2 %.
                for p in 0..<k {
                    let row = target + p * panelWidth, source = b + p * ldb + first
                    for j in 0..<width { row[j] = source[j] }
                    for j in width..<panelWidth { row[j] = 0 }
                }
                continue
            }
            // B given transposed (n×k): a panel's row p is value p of sixteen of its rows.
            for p in 0..<k {
                let row = target + p * panelWidth
                for j in 0..<panelWidth { row[j] = j < width ? b[(first + j) * ldb + p] : 0 }
            }
        }
    }

    /// Where the blocks find B's 16-column panels: packed by `pack` (each k rows of 16 values, one
    /// panel after another), or a row-major B read where it lies (rows `ldb` apart, panel j from
    /// column 16·j) with a partial last panel packed alone (`packTail`), since its rows would read
    /// past B's. In place saves the copy that packing is (a pointwise convolution's image, read
    /// once by few filters: SqueezeNet's 128→16 over 55×55 read, wrote and reread 1.5 MB).
    public struct Panels: @unchecked Sendable {
        let base: UnsafePointer<Float>
        /// From a panel's row to its next, and from a panel to the next.
        let rowStride: Int, panelStride: Int
        /// In place: the packed partial last panel and its index (nil, -1 without one).
        let tail: UnsafePointer<Float>?
        let tailIndex: Int

        /// Panels as `pack` lays them out.
        public static func packed(_ packed: UnsafePointer<Float>, k: Int) -> Panels {
            Panels(base: packed, rowStride: panelWidth, panelStride: panelWidth * k, tail: nil, tailIndex: -1)
        }

        /// The k×n row-major `b` (rows `ldb` apart) in place; `tail` is what `packTail` packed of it.
        public static func inPlace(_ b: UnsafePointer<Float>, ldb: Int, n: Int, tail: UnsafePointer<Float>?) -> Panels {
            let partial = n % panelWidth != 0
            precondition(!partial || tail != nil, "a partial last panel read in place needs its packed copy")
            return Panels(base: b, rowStride: ldb, panelStride: panelWidth, tail: partial ? tail : nil, tailIndex: partial ? n / panelWidth : -1)
        }

        /// Panel j's first value and the distance between its rows.
        @inline(__always)
        func panel(_ j: Int) -> (UnsafePointer<Float>, Int) {
            if j == tailIndex, let tail { return (tail, panelWidth) }
            return (base + j * panelStride, rowStride)
        }
    }

    /// Packs the partial last panel of the k×n row-major `b` (rows `ldb` apart), if n leaves one,
    /// into `tail` (16·k floats) for `Panels.inPlace`.
    public static func packTail(_ b: UnsafePointer<Float>, k: Int, n: Int, ldb: Int, into tail: UnsafeMutablePointer<Float>) {
        let first = n / panelWidth * panelWidth
        guard first < n else { return }
        pack(b + first, k: k, n: n - first, ldb: ldb, transposed: false, into: tail)
    }

    /// C's rows `rows` and column panels `panels` (of 16) from A (rows `lda` apart) and packed B,
    /// `epilogue` applied to each value on its way out.
    public static func multiply(
        a: UnsafePointer<Float>, lda: Int, packed: UnsafePointer<Float>, k: Int, n: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
        rows: Range<Int>, panels: Range<Int>, epilogue: Epilogue = .none
    ) {
        multiply(a: a, lda: lda, b: .packed(packed, k: k), k: k, n: n, c: c, ldc: ldc, rows: rows, panels: panels, epilogue: epilogue)
    }

    /// C's rows `rows` and column panels `panels` (of 16) from A (rows `lda` apart) and B's
    /// panels, `epilogue` applied to each value on its way out.
    @inline(never)
    public static func multiply(
        a: UnsafePointer<Float>, lda: Int, b source: Panels, k: Int, n: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
        rows: Range<Int>, panels: Range<Int>, epilogue: Epilogue = .none
    ) {
        let epilogue = epilogue.at(c)
        // Rows in tiles of `rowTile`, each tile against every panel: the tile's A stays in cache
        // while the panels stream past (panels outside rows would read all of A once per panel).
        var tile = rows.lowerBound
        while tile < rows.upperBound {
            let tileEnd = min(tile + rowTile, rows.upperBound)
            var panels = panels
            #if VESSEL_AVX512
            // Pairs of panels 32 columns at a time, but not a packed tail read in place, nor a last
            // panel of at most 8 columns (below).
            while panels.count >= 2, panels.lowerBound + 1 != source.tailIndex, n - (panels.lowerBound + 1) * panelWidth > 8 {
                let first = panels.lowerBound * panelWidth, width = min(2 * panelWidth, n - first)
                let (b0, rs) = source.panel(panels.lowerBound), b1 = source.panel(panels.lowerBound + 1).0
                // The tile's first block asks for the next pair's rows as it goes (not a packed
                // tail's: its rows lie another way); the other blocks reread this pair from L1.
                let next = panels.lowerBound + 2
                let ahead = next < panels.upperBound && next != source.tailIndex ? source.panel(next).0 - b0 : 0
                var row = tile
                while row + 8 <= tileEnd {
                    Wide.block8(a + row * lda, lda, b0, b1, rs, row == tile ? ahead : 0, k, c + row * ldc + first, ldc, width, epilogue.from(row))
                    row += 8
                }
                if row + 4 <= tileEnd {
                    Wide.block4(a + row * lda, lda, b0, b1, rs, k, c + row * ldc + first, ldc, width, epilogue.from(row))
                    row += 4
                }
                while row < tileEnd {
                    Wide.block1(a + row * lda, b0, b1, rs, k, c + row * ldc + first, width, epilogue.from(row))
                    row += 1
                }
                panels = (panels.lowerBound + 2)..<panels.upperBound
            }
            // An odd last panel (or the two a tail or a narrow last panel leave) in sixteen-lane
            // accumulators too, eight rows at a time. A last panel of at most 8 columns takes
            // `block8Low`'s eight-lane sums (49 = 3 · 16 + 1 positions went as two pairs, 64 columns
            // computed for 49; 196 = 12 · 16 + 4 as a 16-column block for 4).
            for panel in panels {
                let first = panel * panelWidth, width = min(panelWidth, n - first)
                let (b, rs) = source.panel(panel)
                var row = tile
                while width <= 8, row + 8 <= tileEnd {
                    block8Low(a + row * lda, lda, b, rs, k, c + row * ldc + first, ldc, width, epilogue.from(row))
                    row += 8
                }
                while row + 8 <= tileEnd {
                    Wide.single8(a + row * lda, lda, b, rs, k, c + row * ldc + first, ldc, width, epilogue.from(row))
                    row += 8
                }
                while row < tileEnd {
                    Wide.single1(a + row * lda, b, rs, k, c + row * ldc + first, width, epilogue.from(row))
                    row += 1
                }
            }
            panels = panels.upperBound..<panels.upperBound
            #endif
            // The blocks of 6, 4 and 2 rows leave a single row when the tile's count is odd; it
            // runs after the panels, four panels at a time: one panel's two sums are each a chain
            // of dependent multiply-adds, which left a one-row product (a classifier at batch 1)
            // at a quarter of the FMA rate, and streamed one panel's B at a time.
            let singleRow: Int? = (tileEnd - tile) % 2 == 1 ? tileEnd - 1 : nil
            // The 16-wide blocks prefetch each row of the next panel.
            let ahead = source.panelStride
            for panel in panels {
                let first = panel * panelWidth, width = min(panelWidth, n - first)
                let (b, rs) = source.panel(panel)
                var row = tile
                // A last panel of at most 8 columns (49 = 3 · 16 + 1 positions, 196 = 12 · 16 + 4)
                // has its empty half left out.
                if width <= 8 {
                    while row + 8 <= tileEnd {
                        block8Low(a + row * lda, lda, b, rs, k, c + row * ldc + first, ldc, width, epilogue.from(row))
                        row += 8
                    }
                }
                while row + 6 <= tileEnd {
                    block6(a + row * lda, lda, b, rs, ahead, k, c + row * ldc + first, ldc, width, epilogue.from(row))
                    row += 6
                }
                if row + 4 <= tileEnd {
                    block4(a + row * lda, lda, b, rs, ahead, k, c + row * ldc + first, ldc, width, epilogue.from(row))
                    row += 4
                }
                if row + 2 <= tileEnd {
                    block2(a + row * lda, lda, b, rs, ahead, k, c + row * ldc + first, ldc, width, epilogue.from(row))
                    row += 2
                }
            }
            if let row = singleRow {
                var panel = panels.lowerBound
                // Whole panels, four at a time.
                while panel + 4 <= panels.upperBound, (panel + 4) * panelWidth <= n {
                    let first = panel * panelWidth
                    block1x4(a + row * lda, source.panel(panel).0, source.rowStride, source.panelStride, k, c + row * ldc + first, epilogue.from(row))
                    panel += 4
                }
                while panel < panels.upperBound {
                    let first = panel * panelWidth, width = min(panelWidth, n - first)
                    let (b, rs) = source.panel(panel)
                    block1(a + row * lda, b, rs, ahead, k, c + row * ldc + first, width, epilogue.from(row))
                    panel += 1
                }
            }
            tile = tileEnd
        }
    }

    /// Rows per tile: 48 rows of a 1536-long A are 288 KiB, inside a core's L2.
    static let rowTile = 48

    @inline(__always)
    static func madd(_ c: Lanes, _ a: Lanes, _ b: Lanes) -> Lanes {
        #if VESSEL_HASWELL
        c.addingProduct(a, b)
        #else
        c + a * b
        #endif
    }

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> Lanes { UnsafeRawPointer(p).loadUnaligned(as: Lanes.self) }

    /// Stores a row's two halves, or its first `width` values, after the epilogue.
    @_transparent
    static func store(_ low: Lanes, _ high: Lanes, _ c: UnsafeMutablePointer<Float>, _ width: Int, _ e: Epilogue, _ row: Int) {
        let low = e.apply(low, row, c, width), high = e.apply(high, row, c + 8, width - 8)
        if width == panelWidth {
            UnsafeMutableRawPointer(c).storeBytes(of: low, as: Lanes.self)
            UnsafeMutableRawPointer(c + 8).storeBytes(of: high, as: Lanes.self)
            return
        }
        for j in 0..<width { c[j] = j < 8 ? low[j] : high[j - 8] }
    }

    static func block6(
        _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ rs: Int, _ ahead: Int, _ k: Int,
        _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ width: Int, _ e: Epilogue
    ) {
        var c00 = Lanes(), c01 = Lanes(), c10 = Lanes(), c11 = Lanes(), c20 = Lanes(), c21 = Lanes()
        var c30 = Lanes(), c31 = Lanes(), c40 = Lanes(), c41 = Lanes(), c50 = Lanes(), c51 = Lanes()
        let a0 = a, a1 = a + lda, a2 = a + 2 * lda, a3 = a + 3 * lda, a4 = a + 4 * lda, a5 = a + 5 * lda
        var bp = b
        for p in 0..<k {
            vessel_prefetch(bp + ahead)
            let b0 = load(bp), b1 = load(bp + 8)
            var x = Lanes(repeating: a0[p])
            c00 = madd(c00, x, b0)
            c01 = madd(c01, x, b1)
            x = Lanes(repeating: a1[p])
            c10 = madd(c10, x, b0)
            c11 = madd(c11, x, b1)
            x = Lanes(repeating: a2[p])
            c20 = madd(c20, x, b0)
            c21 = madd(c21, x, b1)
            x = Lanes(repeating: a3[p])
            c30 = madd(c30, x, b0)
            c31 = madd(c31, x, b1)
            x = Lanes(repeating: a4[p])
            c40 = madd(c40, x, b0)
            c41 = madd(c41, x, b1)
            x = Lanes(repeating: a5[p])
            c50 = madd(c50, x, b0)
            c51 = madd(c51, x, b1)
            bp += rs
        }
        store(c00, c01, c, width, e, 0)
        store(c10, c11, c + ldc, width, e, 1)
        store(c20, c21, c + 2 * ldc, width, e, 2)
        store(c30, c31, c + 3 * ldc, width, e, 3)
        store(c40, c41, c + 4 * ldc, width, e, 4)
        store(c50, c51, c + 5 * ldc, width, e, 5)
    }

    /// Eight rows of a panel whose columns all lie in its first eight: one accumulator per row
    /// (eight independent chains keep both FMA pipes busy), each the low half of `block6`'s sums
    /// in the same order, so the same bits. ResNet-50's 1×1 convolutions over 7×7 images had a
    /// quarter of their multiplies in the 15 empty columns of the last panel.
    static func block8Low(
        _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ rs: Int, _ k: Int,
        _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ width: Int, _ e: Epilogue
    ) {
        var c0 = Lanes(), c1 = Lanes(), c2 = Lanes(), c3 = Lanes(), c4 = Lanes(), c5 = Lanes(), c6 = Lanes(), c7 = Lanes()
        let a0 = a, a1 = a + lda, a2 = a + 2 * lda, a3 = a + 3 * lda, a4 = a + 4 * lda, a5 = a + 5 * lda, a6 = a + 6 * lda, a7 = a + 7 * lda
        var bp = b
        for p in 0..<k {
            let b0 = load(bp)
            c0 = madd(c0, Lanes(repeating: a0[p]), b0)
            c1 = madd(c1, Lanes(repeating: a1[p]), b0)
            c2 = madd(c2, Lanes(repeating: a2[p]), b0)
            c3 = madd(c3, Lanes(repeating: a3[p]), b0)
            c4 = madd(c4, Lanes(repeating: a4[p]), b0)
            c5 = madd(c5, Lanes(repeating: a5[p]), b0)
            c6 = madd(c6, Lanes(repeating: a6[p]), b0)
            c7 = madd(c7, Lanes(repeating: a7[p]), b0)
            bp += rs
        }
        @inline(__always) func store(_ v: Lanes, _ row: Int) {
            let target = c + row * ldc
            let v = e.apply(v, row, target, width)
            if width == 8 {
                UnsafeMutableRawPointer(target).storeBytes(of: v, as: Lanes.self)
            } else {
                for j in 0..<width { target[j] = v[j] }
            }
        }
        store(c0, 0)
        store(c1, 1)
        store(c2, 2)
        store(c3, 3)
        store(c4, 4)
        store(c5, 5)
        store(c6, 6)
        store(c7, 7)
    }

    static func block4(
        _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ rs: Int, _ ahead: Int, _ k: Int,
        _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ width: Int, _ e: Epilogue
    ) {
        var c00 = Lanes(), c01 = Lanes(), c10 = Lanes(), c11 = Lanes(), c20 = Lanes(), c21 = Lanes(), c30 = Lanes(), c31 = Lanes()
        let a0 = a, a1 = a + lda, a2 = a + 2 * lda, a3 = a + 3 * lda
        var bp = b
        for p in 0..<k {
            vessel_prefetch(bp + ahead)
            let b0 = load(bp), b1 = load(bp + 8)
            var x = Lanes(repeating: a0[p])
            c00 = madd(c00, x, b0)
            c01 = madd(c01, x, b1)
            x = Lanes(repeating: a1[p])
            c10 = madd(c10, x, b0)
            c11 = madd(c11, x, b1)
            x = Lanes(repeating: a2[p])
            c20 = madd(c20, x, b0)
            c21 = madd(c21, x, b1)
            x = Lanes(repeating: a3[p])
            c30 = madd(c30, x, b0)
            c31 = madd(c31, x, b1)
            bp += rs
        }
        store(c00, c01, c, width, e, 0)
        store(c10, c11, c + ldc, width, e, 1)
        store(c20, c21, c + 2 * ldc, width, e, 2)
        store(c30, c31, c + 3 * ldc, width, e, 3)
    }

    static func block2(
        _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ rs: Int, _ ahead: Int, _ k: Int,
        _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ width: Int, _ e: Epilogue
    ) {
        var c00 = Lanes(), c01 = Lanes(), c10 = Lanes(), c11 = Lanes()
        let a0 = a, a1 = a + lda
        var bp = b
        for p in 0..<k {
            vessel_prefetch(bp + ahead)
            let b0 = load(bp), b1 = load(bp + 8)
            var x = Lanes(repeating: a0[p])
            c00 = madd(c00, x, b0)
            c01 = madd(c01, x, b1)
            x = Lanes(repeating: a1[p])
            c10 = madd(c10, x, b0)
            c11 = madd(c11, x, b1)
            bp += rs
        }
        store(c00, c01, c, width, e, 0)
        store(c10, c11, c + ldc, width, e, 1)
    }

    /// One row against four whole panels (`b`, the first, and the next three `panelWidth · k`
    /// floats apart): eight independent sums, each in `block1`'s order.
    static func block1x4(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ rs: Int, _ step: Int, _ k: Int, _ c: UnsafeMutablePointer<Float>, _ e: Epilogue
    ) {
        var c0 = Lanes(), c1 = Lanes(), c2 = Lanes(), c3 = Lanes(), c4 = Lanes(), c5 = Lanes(), c6 = Lanes(), c7 = Lanes()
        var bp = b
        // Sixteen rows ahead in each of the four streams.
        let ahead = 16 * rs
        for p in 0..<k {
            vessel_prefetch(bp + ahead)
            vessel_prefetch(bp + ahead + step)
            vessel_prefetch(bp + ahead + 2 * step)
            vessel_prefetch(bp + ahead + 3 * step)
            let x = Lanes(repeating: a[p])
            c0 = madd(c0, x, load(bp))
            c1 = madd(c1, x, load(bp + 8))
            c2 = madd(c2, x, load(bp + step))
            c3 = madd(c3, x, load(bp + step + 8))
            c4 = madd(c4, x, load(bp + 2 * step))
            c5 = madd(c5, x, load(bp + 2 * step + 8))
            c6 = madd(c6, x, load(bp + 3 * step))
            c7 = madd(c7, x, load(bp + 3 * step + 8))
            bp += rs
        }
        store(c0, c1, c, panelWidth, e, 0)
        store(c2, c3, c + panelWidth, panelWidth, e, 0)
        store(c4, c5, c + 2 * panelWidth, panelWidth, e, 0)
        store(c6, c7, c + 3 * panelWidth, panelWidth, e, 0)
    }

    static func block1(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ rs: Int, _ ahead: Int, _ k: Int, _ c: UnsafeMutablePointer<Float>, _ width: Int, _ e: Epilogue
    ) {
        var c0 = Lanes(), c1 = Lanes()
        var bp = b
        for p in 0..<k {
            vessel_prefetch(bp + ahead)
            let x = Lanes(repeating: a[p])
            c0 = madd(c0, x, load(bp))
            c1 = madd(c1, x, load(bp + 8))
            bp += rs
        }
        store(c0, c1, c, width, e, 0)
    }
}

#if VESSEL_AVX512
extension PackedGEMM {
    /// The AVX-512 blocks: rows of two adjacent panels (`b0`, `b1`, each k rows of 16) in
    /// sixteen-lane accumulators, A broadcast one value at a time.
    enum Wide {
        typealias Lanes = SIMD16<Float>

        @inline(__always)
        static func load(_ p: UnsafePointer<Float>) -> Lanes { UnsafeRawPointer(p).loadUnaligned(as: Lanes.self) }

        /// Stores a row's 32 columns, or its first `width`, after the epilogue.
        @_transparent
        static func store(_ low: Lanes, _ high: Lanes, _ c: UnsafeMutablePointer<Float>, _ width: Int, _ e: Epilogue, _ row: Int) {
            let low = e.apply(low, row, c, width), high = e.apply(high, row, c + 16, width - 16)
            if width == 2 * panelWidth {
                UnsafeMutableRawPointer(c).storeBytes(of: low, as: Lanes.self)
                UnsafeMutableRawPointer(c + 16).storeBytes(of: high, as: Lanes.self)
                return
            }
            for j in 0..<width { c[j] = j < 16 ? low[j] : high[j - 16] }
        }

        /// Eight rows of the pair `b0`, `b1`. With `ahead` not 0, each step also asks for its row
        /// of the pair `ahead` floats on (`b0 + ahead`, `b1 + ahead`): a pointwise convolution's
        /// image read in place has its k rows a plane apart, k streams the hardware prefetcher
        /// does not follow, and SqueezeNet's 128→16 over 55×55 waited on them (0.23 ms in the
        /// model against 0.13 alone). A pair read in place is 128 bytes a row, three cache lines
        /// when the row does not start on one, hence three hints.
        static func block8(
            _ a: UnsafePointer<Float>, _ lda: Int, _ b0: UnsafePointer<Float>, _ b1: UnsafePointer<Float>, _ rs: Int, _ ahead: Int, _ k: Int,
            _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ width: Int, _ e: Epilogue
        ) {
            var c00 = Lanes(), c01 = Lanes(), c10 = Lanes(), c11 = Lanes(), c20 = Lanes(), c21 = Lanes(), c30 = Lanes(), c31 = Lanes()
            var c40 = Lanes(), c41 = Lanes(), c50 = Lanes(), c51 = Lanes(), c60 = Lanes(), c61 = Lanes(), c70 = Lanes(), c71 = Lanes()
            let a0 = a, a1 = a + lda, a2 = a + 2 * lda, a3 = a + 3 * lda, a4 = a + 4 * lda, a5 = a + 5 * lda, a6 = a + 6 * lda
            let a7 = a + 7 * lda
            // The residual this block adds on its way out, asked for before the products: written
            // several nodes earlier, it is out of the caches by now, and with ResNet-50's k of 64
            // the epilogue came soon enough to wait on it (its three 64→256 convolutions over
            // 56×56 with their Add, one thread, in the model: 1.39, 1.28, 1.22 → 1.30, 1.12, 1.14
            // ms best of four; the C lines asked for as well did no better alone).
            if e.residual != nil {
                let r = UnsafePointer(c) + e.distance
                for i in 0..<8 {
                    vessel_prefetch(r + i * ldc)
                    vessel_prefetch(r + i * ldc + 16)
                    vessel_prefetch(r + i * ldc + 31)
                }
            }
            for p in 0..<k {
                if ahead != 0 {
                    vessel_prefetch(b0 + ahead + p * rs)
                    vessel_prefetch(b1 + ahead + p * rs)
                    vessel_prefetch(b1 + ahead + p * rs + 15)
                }
                let x0 = load(b0 + p * rs), x1 = load(b1 + p * rs)
                var y = Lanes(repeating: a0[p])
                c00 = c00.addingProduct(y, x0)
                c01 = c01.addingProduct(y, x1)
                y = Lanes(repeating: a1[p])
                c10 = c10.addingProduct(y, x0)
                c11 = c11.addingProduct(y, x1)
                y = Lanes(repeating: a2[p])
                c20 = c20.addingProduct(y, x0)
                c21 = c21.addingProduct(y, x1)
                y = Lanes(repeating: a3[p])
                c30 = c30.addingProduct(y, x0)
                c31 = c31.addingProduct(y, x1)
                y = Lanes(repeating: a4[p])
                c40 = c40.addingProduct(y, x0)
                c41 = c41.addingProduct(y, x1)
                y = Lanes(repeating: a5[p])
                c50 = c50.addingProduct(y, x0)
                c51 = c51.addingProduct(y, x1)
                y = Lanes(repeating: a6[p])
                c60 = c60.addingProduct(y, x0)
                c61 = c61.addingProduct(y, x1)
                y = Lanes(repeating: a7[p])
                c70 = c70.addingProduct(y, x0)
                c71 = c71.addingProduct(y, x1)
            }
            store(c00, c01, c, width, e, 0)
            store(c10, c11, c + ldc, width, e, 1)
            store(c20, c21, c + 2 * ldc, width, e, 2)
            store(c30, c31, c + 3 * ldc, width, e, 3)
            store(c40, c41, c + 4 * ldc, width, e, 4)
            store(c50, c51, c + 5 * ldc, width, e, 5)
            store(c60, c61, c + 6 * ldc, width, e, 6)
            store(c70, c71, c + 7 * ldc, width, e, 7)
        }

        static func block4(
            _ a: UnsafePointer<Float>, _ lda: Int, _ b0: UnsafePointer<Float>, _ b1: UnsafePointer<Float>, _ rs: Int, _ k: Int,
            _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ width: Int, _ e: Epilogue
        ) {
            var c00 = Lanes(), c01 = Lanes(), c10 = Lanes(), c11 = Lanes(), c20 = Lanes(), c21 = Lanes(), c30 = Lanes(), c31 = Lanes()
            let a0 = a, a1 = a + lda, a2 = a + 2 * lda, a3 = a + 3 * lda
            for p in 0..<k {
                let x0 = load(b0 + p * rs), x1 = load(b1 + p * rs)
                var y = Lanes(repeating: a0[p])
                c00 = c00.addingProduct(y, x0)
                c01 = c01.addingProduct(y, x1)
                y = Lanes(repeating: a1[p])
                c10 = c10.addingProduct(y, x0)
                c11 = c11.addingProduct(y, x1)
                y = Lanes(repeating: a2[p])
                c20 = c20.addingProduct(y, x0)
                c21 = c21.addingProduct(y, x1)
                y = Lanes(repeating: a3[p])
                c30 = c30.addingProduct(y, x0)
                c31 = c31.addingProduct(y, x1)
            }
            store(c00, c01, c, width, e, 0)
            store(c10, c11, c + ldc, width, e, 1)
            store(c20, c21, c + 2 * ldc, width, e, 2)
            store(c30, c31, c + 3 * ldc, width, e, 3)
        }

        /// Stores a row's 16 columns, or its first `width`, after the epilogue.
        @_transparent
        static func store(_ v: Lanes, _ c: UnsafeMutablePointer<Float>, _ width: Int, _ e: Epilogue, _ row: Int) {
            let v = e.apply(v, row, c, width)
            if width == panelWidth {
                UnsafeMutableRawPointer(c).storeBytes(of: v, as: Lanes.self)
                return
            }
            for j in 0..<width { c[j] = v[j] }
        }

        /// Eight rows of one panel.
        static func single8(
            _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ rs: Int, _ k: Int,
            _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ width: Int, _ e: Epilogue
        ) {
            var c0 = Lanes(), c1 = Lanes(), c2 = Lanes(), c3 = Lanes(), c4 = Lanes(), c5 = Lanes(), c6 = Lanes(), c7 = Lanes()
            let a0 = a, a1 = a + lda, a2 = a + 2 * lda, a3 = a + 3 * lda, a4 = a + 4 * lda, a5 = a + 5 * lda, a6 = a + 6 * lda
            let a7 = a + 7 * lda
            for p in 0..<k {
                let x = load(b + p * rs)
                c0 = c0.addingProduct(Lanes(repeating: a0[p]), x)
                c1 = c1.addingProduct(Lanes(repeating: a1[p]), x)
                c2 = c2.addingProduct(Lanes(repeating: a2[p]), x)
                c3 = c3.addingProduct(Lanes(repeating: a3[p]), x)
                c4 = c4.addingProduct(Lanes(repeating: a4[p]), x)
                c5 = c5.addingProduct(Lanes(repeating: a5[p]), x)
                c6 = c6.addingProduct(Lanes(repeating: a6[p]), x)
                c7 = c7.addingProduct(Lanes(repeating: a7[p]), x)
            }
            store(c0, c, width, e, 0)
            store(c1, c + ldc, width, e, 1)
            store(c2, c + 2 * ldc, width, e, 2)
            store(c3, c + 3 * ldc, width, e, 3)
            store(c4, c + 4 * ldc, width, e, 4)
            store(c5, c + 5 * ldc, width, e, 5)
            store(c6, c + 6 * ldc, width, e, 6)
            store(c7, c + 7 * ldc, width, e, 7)
        }

        /// One row of one panel.
        static func single1(
            _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ rs: Int, _ k: Int, _ c: UnsafeMutablePointer<Float>, _ width: Int, _ e: Epilogue
        ) {
            var c0 = Lanes()
            for p in 0..<k { c0 = c0.addingProduct(Lanes(repeating: a[p]), load(b + p * rs)) }
            store(c0, c, width, e, 0)
        }

        static func block1(
            _ a: UnsafePointer<Float>, _ b0: UnsafePointer<Float>, _ b1: UnsafePointer<Float>, _ rs: Int, _ k: Int, _ c: UnsafeMutablePointer<Float>,
            _ width: Int, _ e: Epilogue
        ) {
            var c0 = Lanes(), c1 = Lanes()
            for p in 0..<k {
                let y = Lanes(repeating: a[p])
                c0 = c0.addingProduct(y, load(b0 + p * rs))
                c1 = c1.addingProduct(y, load(b1 + p * rs))
            }
            store(c0, c1, c, width, e, 0)
        }
    }
}
#endif
