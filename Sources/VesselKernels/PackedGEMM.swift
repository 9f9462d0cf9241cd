/// Single-precision C = A·B with B packed once: the weights of a MatMul are packed into panels
/// of 16 columns (k rows of 16 contiguous values, the last panel padded with zeros) the first
/// time they are seen, so each run streams them instead of having OpenBLAS pack them again
/// (at a few rows — one sentence, one image — packing cost as much as multiplying).
///
/// A 6×16 register block: twelve eight-lane accumulators, A broadcast one value at a time.
/// Each element of C is one sum over k in order, whichever block, remainder path or thread
/// computes it, so results do not depend on how rows and panels are split. In the Haswell copy
/// (`VESSEL_HASWELL`) the multiply-adds are fused.
public enum PackedGEMM {
    public typealias Lanes = SIMD8<Float>
    public static let panelWidth = 16

    /// Floats a packed k×n B takes.
    public static func packedCount(k: Int, n: Int) -> Int { (n + panelWidth - 1) / panelWidth * panelWidth * k }

    /// Packs op(B) — k×n, or n×k when `transposed` — whose rows are `ldb` apart.
    public static func pack(_ b: UnsafePointer<Float>, k: Int, n: Int, ldb: Int, transposed: Bool, into packed: UnsafeMutablePointer<Float>) {
        let panels = (n + panelWidth - 1) / panelWidth
        for panel in 0..<panels {
            let first = panel * panelWidth, width = min(panelWidth, n - first)
            let target = packed + panel * panelWidth * k
            for p in 0..<k {
                let row = target + p * panelWidth
                for j in 0..<panelWidth {
                    row[j] = j < width ? (transposed ? b[(first + j) * ldb + p] : b[p * ldb + first + j]) : 0
                }
            }
        }
    }

    /// C's rows `rows` and column panels `panels` (of 16) from A (rows `lda` apart) and packed B.
    public static func multiply(
        a: UnsafePointer<Float>, lda: Int, packed: UnsafePointer<Float>, k: Int, n: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
        rows: Range<Int>, panels: Range<Int>
    ) {
        // Rows in tiles of `rowTile`, each tile against every panel: the tile's A stays in cache
        // while the panels stream past (panels outside rows would read all of A once per panel).
        var tile = rows.lowerBound
        while tile < rows.upperBound {
            let tileEnd = min(tile + rowTile, rows.upperBound)
            for panel in panels {
                let first = panel * panelWidth, width = min(panelWidth, n - first)
                let b = packed + panel * panelWidth * k
                var row = tile
                while row + 6 <= tileEnd {
                    block6(a + row * lda, lda, b, k, c + row * ldc + first, ldc, width)
                    row += 6
                }
                if row + 4 <= tileEnd {
                    block4(a + row * lda, lda, b, k, c + row * ldc + first, ldc, width)
                    row += 4
                }
                if row + 2 <= tileEnd {
                    block2(a + row * lda, lda, b, k, c + row * ldc + first, ldc, width)
                    row += 2
                }
                if row < tileEnd {
                    block1(a + row * lda, b, k, c + row * ldc + first, width)
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

    /// Stores a row's two halves, or its first `width` values.
    @inline(__always)
    static func store(_ low: Lanes, _ high: Lanes, _ c: UnsafeMutablePointer<Float>, _ width: Int) {
        if width == panelWidth {
            UnsafeMutableRawPointer(c).storeBytes(of: low, as: Lanes.self)
            UnsafeMutableRawPointer(c + 8).storeBytes(of: high, as: Lanes.self)
            return
        }
        for j in 0..<width { c[j] = j < 8 ? low[j] : high[j - 8] }
    }

    static func block6(
        _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ k: Int, _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ width: Int
    ) {
        var c00 = Lanes(), c01 = Lanes(), c10 = Lanes(), c11 = Lanes(), c20 = Lanes(), c21 = Lanes()
        var c30 = Lanes(), c31 = Lanes(), c40 = Lanes(), c41 = Lanes(), c50 = Lanes(), c51 = Lanes()
        let a0 = a, a1 = a + lda, a2 = a + 2 * lda, a3 = a + 3 * lda, a4 = a + 4 * lda, a5 = a + 5 * lda
        var bp = b
        for p in 0..<k {
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
            bp += panelWidth
        }
        store(c00, c01, c, width)
        store(c10, c11, c + ldc, width)
        store(c20, c21, c + 2 * ldc, width)
        store(c30, c31, c + 3 * ldc, width)
        store(c40, c41, c + 4 * ldc, width)
        store(c50, c51, c + 5 * ldc, width)
    }

    static func block4(
        _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ k: Int, _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ width: Int
    ) {
        var c00 = Lanes(), c01 = Lanes(), c10 = Lanes(), c11 = Lanes(), c20 = Lanes(), c21 = Lanes(), c30 = Lanes(), c31 = Lanes()
        let a0 = a, a1 = a + lda, a2 = a + 2 * lda, a3 = a + 3 * lda
        var bp = b
        for p in 0..<k {
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
            bp += panelWidth
        }
        store(c00, c01, c, width)
        store(c10, c11, c + ldc, width)
        store(c20, c21, c + 2 * ldc, width)
        store(c30, c31, c + 3 * ldc, width)
    }

    static func block2(
        _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ k: Int, _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ width: Int
    ) {
        var c00 = Lanes(), c01 = Lanes(), c10 = Lanes(), c11 = Lanes()
        let a0 = a, a1 = a + lda
        var bp = b
        for p in 0..<k {
            let b0 = load(bp), b1 = load(bp + 8)
            var x = Lanes(repeating: a0[p])
            c00 = madd(c00, x, b0)
            c01 = madd(c01, x, b1)
            x = Lanes(repeating: a1[p])
            c10 = madd(c10, x, b0)
            c11 = madd(c11, x, b1)
            bp += panelWidth
        }
        store(c00, c01, c, width)
        store(c10, c11, c + ldc, width)
    }

    static func block1(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ k: Int, _ c: UnsafeMutablePointer<Float>, _ width: Int) {
        var c0 = Lanes(), c1 = Lanes()
        var bp = b
        for p in 0..<k {
            let x = Lanes(repeating: a[p])
            c0 = madd(c0, x, load(bp))
            c1 = madd(c1, x, load(bp + 8))
            bp += panelWidth
        }
        store(c0, c1, c, width)
    }
}
