/// Int32 C = A·B for the integer products of quantized models (`MatMulInteger`), with both 8-bit
/// operands already less their zero points and widened to Int16 (so every value is in
/// −255…255 and a product of two fits in Int32).
///
/// B is packed once into panels of 8 columns: for each pair of rows (2p, 2p+1) of B, the panel
/// holds each column's two values side by side — 16 Int16s. A is read as Int16 pairs along k
/// (its rows padded to an even length). One step takes a panel row as eight Int32 lanes and A's
/// pair broadcast the same way, sign-extends the halves of both by shifts, and adds the two
/// products of each lane: 16 multiply-adds in two 8-lane multiplies (`vpmaddwd`'s arithmetic,
/// which LLVM does not yet make of it). Integer sums are exact and wrap as Int32, so results do not depend
/// on how rows and panels are split.
public enum IntegerGEMM {
    public typealias Sums = SIMD8<Int32>
    public static let panelWidth = 8

    /// k rounded up to even: the length of A's and B's packed rows in Int16s.
    public static func pairedDepth(_ k: Int) -> Int { (k + 1) & ~1 }

    /// Int16s a packed k×n B takes.
    public static func packedCount(k: Int, n: Int) -> Int {
        (n + panelWidth - 1) / panelWidth * panelWidth * pairedDepth(k)
    }

    /// Packs B (k×n, row-major, values less their zero points) into panels of 8 columns of pairs.
    public static func pack(_ b: UnsafePointer<Int16>, k: Int, n: Int, into packed: UnsafeMutablePointer<Int16>) {
        let depth = pairedDepth(k), panels = (n + panelWidth - 1) / panelWidth
        for panel in 0..<panels {
            let first = panel * panelWidth, width = min(panelWidth, n - first)
            let target = packed + panel * panelWidth * depth
            for pair in 0..<(depth / 2) {
                let row = target + pair * 2 * panelWidth
                for j in 0..<panelWidth {
                    let p = 2 * pair
                    row[2 * j] = j < width ? b[p * n + first + j] : 0
                    row[2 * j + 1] = j < width && p + 1 < k ? b[(p + 1) * n + first + j] : 0
                }
            }
        }
    }

    /// C's rows `rows` (ldc = n) for panels `panels`, from A (Int16 rows of `pairedDepth(k)`,
    /// the padding zero) and packed B. Never inlined into a (baseline) caller.
    @inline(never)
    public static func multiply(
        a: UnsafePointer<Int16>, packed: UnsafePointer<Int16>, k: Int, n: Int, c: UnsafeMutablePointer<Int32>, rows: Range<Int>, panels: Range<Int>
    ) {
        let depth = pairedDepth(k)
        var panel = panels.lowerBound
        while panel < panels.upperBound {
            // Two panels at a time (16 columns) where there are two.
            let two = panel + 1 < panels.upperBound
            let b0 = packed + panel * panelWidth * depth
            let b1 = two ? b0 + panelWidth * depth : b0
            var row = rows.lowerBound
            while row + 4 <= rows.upperBound {
                block4(a + row * depth, depth, b0, b1, depth / 2, c + row * n, n, panel * panelWidth, two ? 2 : 1)
                row += 4
            }
            while row < rows.upperBound {
                block1(a + row * depth, b0, b1, depth / 2, c + row * n, n, panel * panelWidth, two ? 2 : 1)
                row += 1
            }
            panel += two ? 2 : 1
        }
    }

    /// A panel row as eight Int32 lanes, each holding one column's pair (low half: row 2p).
    @inline(__always)
    static func load(_ p: UnsafePointer<Int16>) -> Sums { UnsafeRawPointer(p).loadUnaligned(as: Sums.self) }

    /// `sums` plus, in each lane, a[2p]·b[2p] + a[2p+1]·b[2p+1]: `pair` holds A's two Int16 in
    /// every lane and `b` a column's two, as they lie; the halves are sign-extended by shifts.
    /// (`SIMD16<Int32>(truncatingIfNeeded:)` would be a call per element.)
    @inline(__always)
    static func madd(_ sums: Sums, _ pair: Sums, _ b: Sums) -> Sums {
        sums &+ (((pair &<< 16) &>> 16) &* ((b &<< 16) &>> 16) &+ (pair &>> 16) &* (b &>> 16))
    }

    /// A's pair at `index` as it lies (two Int16 in one lane), in every lane.
    @inline(__always)
    static func pair(_ a: UnsafePointer<Int16>, _ index: Int) -> Sums {
        Sums(repeating: UnsafeRawPointer(a + 2 * index).loadUnaligned(as: Int32.self))
    }

    /// Stores `count` panels' worth of columns (8 or 16, fewer at the right edge) of one row.
    @inline(__always)
    static func store(_ s0: Sums, _ s1: Sums, _ c: UnsafeMutablePointer<Int32>, n: Int, first: Int, panels: Int) {
        let width = min(panels * panelWidth, n - first)
        if width == 2 * panelWidth {
            UnsafeMutableRawPointer(c + first).storeBytes(of: s0, as: Sums.self)
            UnsafeMutableRawPointer(c + first + panelWidth).storeBytes(of: s1, as: Sums.self)
            return
        }
        for j in 0..<width { c[first + j] = j < panelWidth ? s0[j] : s1[j - panelWidth] }
    }

    /// Four rows of A against one or two panels.
    @inline(__always)
    static func block4(
        _ a: UnsafePointer<Int16>, _ lda: Int, _ b0: UnsafePointer<Int16>, _ b1: UnsafePointer<Int16>, _ pairs: Int,
        _ c: UnsafeMutablePointer<Int32>, _ n: Int, _ first: Int, _ panels: Int
    ) {
        var c00 = Sums(), c01 = Sums(), c10 = Sums(), c11 = Sums(), c20 = Sums(), c21 = Sums(), c30 = Sums(), c31 = Sums()
        for p in 0..<pairs {
            let x0 = load(b0 + p * 2 * panelWidth), x1 = load(b1 + p * 2 * panelWidth)
            let a0 = pair(a, p), a1 = pair(a + lda, p), a2 = pair(a + 2 * lda, p), a3 = pair(a + 3 * lda, p)
            c00 = madd(c00, a0, x0)
            c01 = madd(c01, a0, x1)
            c10 = madd(c10, a1, x0)
            c11 = madd(c11, a1, x1)
            c20 = madd(c20, a2, x0)
            c21 = madd(c21, a2, x1)
            c30 = madd(c30, a3, x0)
            c31 = madd(c31, a3, x1)
        }
        store(c00, c01, c, n: n, first: first, panels: panels)
        store(c10, c11, c + n, n: n, first: first, panels: panels)
        store(c20, c21, c + 2 * n, n: n, first: first, panels: panels)
        store(c30, c31, c + 3 * n, n: n, first: first, panels: panels)
    }

    @inline(__always)
    static func block1(
        _ a: UnsafePointer<Int16>, _ b0: UnsafePointer<Int16>, _ b1: UnsafePointer<Int16>, _ pairs: Int,
        _ c: UnsafeMutablePointer<Int32>, _ n: Int, _ first: Int, _ panels: Int
    ) {
        var c0 = Sums(), c1 = Sums()
        for p in 0..<pairs {
            let a0 = pair(a, p)
            c0 = madd(c0, a0, load(b0 + p * 2 * panelWidth))
            c1 = madd(c1, a0, load(b1 + p * 2 * panelWidth))
        }
        store(c0, c1, c, n: n, first: first, panels: panels)
    }
}
