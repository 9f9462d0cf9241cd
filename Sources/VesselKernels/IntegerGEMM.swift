/// Int32 C = A·B for the integer products of quantized models (`MatMulInteger`), with both 8-bit
/// operands already less their zero points: A widened to Int16 (every value in −255…255, so a
/// product of two fits in Int32), B kept as Int16 or — when every value less its zero point
/// fits, as with symmetric int8 weights — as Int8, half the bytes to stream.
///
/// B is packed once into panels of 8 columns: for each pair of rows (2p, 2p+1) of B, the panel
/// holds each column's two values side by side — 16 values. A is read as Int16 pairs along k
/// (its rows padded to an even length). One step takes a panel row as eight Int32 lanes (bytes
/// sign-extended to Int16 first) and A's pair broadcast the same way, and adds the two products
/// of each lane, the halves sign-extended by shifts and multiplied twice. Integer sums are
/// exact and wrap as Int32, so results do not depend on how rows and panels are split.
///
/// Only the baseline (SSE2) copy has it: CPUs with AVX2 take the byte product `QuadGEMM`,
/// which gives the same sums.
public enum IntegerGEMM {
    public typealias Sums = SIMD8<Int32>
    public static let panelWidth = 8

    /// k rounded up to even: the length of A's and B's packed rows in Int16s.
    public static func pairedDepth(_ k: Int) -> Int { (k + 1) & ~1 }

    /// Int16s a packed k×n B takes.
    public static func packedCount(k: Int, n: Int) -> Int {
        (n + panelWidth - 1) / panelWidth * panelWidth * pairedDepth(k)
    }

    /// Packs B (k×n, row-major, values less their zero points) into panels of 8 columns of
    /// pairs, as Int16 or as Int8 (`packedCount` values either way).
    @_specialize(where Value == Int8)
    @_specialize(where Value == Int16)
    public static func pack<Value: FixedWidthInteger>(_ b: UnsafePointer<Value>, k: Int, n: Int, into packed: UnsafeMutablePointer<Value>) {
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

    /// Rows `rows` of A (k bytes each, as `Int8` when `signed`, else `UInt8`) less their zero
    /// points (`zeros[row]`) as Int16 rows of `pairedDepth(k)`, the padding zero, into `left`.
    @inline(never)
    public static func widen(
        _ a: UnsafePointer<UInt8>, signed: Bool, k: Int, zeros: UnsafePointer<Int32>, rows: Range<Int>, into left: UnsafeMutablePointer<Int16>
    ) {
        let depth = pairedDepth(k)
        for row in rows {
            let target = left + row * depth, zero = Int16(truncatingIfNeeded: zeros[row])
            if signed {
                let source = UnsafeRawPointer(a + row * k).assumingMemoryBound(to: Int8.self)
                for p in 0..<k { target[p] = Int16(source[p]) &- zero }
            } else {
                let source = a + row * k
                for p in 0..<k { target[p] = Int16(source[p]) &- zero }
            }
            if depth != k { target[k] = 0 }
        }
    }

    /// C's rows `rows` (ldc = n) for panels `panels`, from A (Int16 rows of `pairedDepth(k)`,
    /// the padding zero) and packed B: Int16 values, or Int8 ones when `bytes`. Never inlined
    /// into a (baseline) caller.
    @inline(never)
    public static func multiply(
        a: UnsafePointer<Int16>, packed: UnsafeRawPointer, bytes: Bool, k: Int, n: Int, c: UnsafeMutablePointer<Int32>, rows: Range<Int>,
        panels: Range<Int>
    ) {
        // Each a copy of its own, the element size a constant in it.
        if bytes {
            multiply(a, packed, 1, k, n, c, rows, panels)
        } else {
            multiply(a, packed, 2, k, n, c, rows, panels)
        }
    }

    @inline(__always)
    static func multiply(
        _ a: UnsafePointer<Int16>, _ packed: UnsafeRawPointer, _ size: Int, _ k: Int, _ n: Int, _ c: UnsafeMutablePointer<Int32>,
        _ rows: Range<Int>, _ panels: Range<Int>
    ) {
        let depth = pairedDepth(k), panelBytes = panelWidth * depth * size
        var panel = panels.lowerBound
        while panel < panels.upperBound {
            // Two panels at a time (16 columns) where there are two.
            let two = panel + 1 < panels.upperBound
            let b0 = packed + panel * panelBytes
            let b1 = two ? b0 + panelBytes : b0
            let b = Panels(first: b0, second: b1, size: size)
            var row = rows.lowerBound
            while row + 4 <= rows.upperBound {
                block4(a + row * depth, depth, b, depth / 2, c + row * n, n, panel * panelWidth, two ? 2 : 1)
                row += 4
            }
            while row < rows.upperBound {
                block1(a + row * depth, b, depth / 2, c + row * n, n, panel * panelWidth, two ? 2 : 1)
                row += 1
            }
            panel += two ? 2 : 1
        }
    }

    /// Two panels' rows of pairs, stepped together: values of `size` bytes (1 or 2).
    struct Panels {
        var first: UnsafeRawPointer
        let second: Int, size: Int

        @inline(__always)
        init(first: UnsafeRawPointer, second: UnsafeRawPointer, size: Int) {
            self.first = first
            self.second = first.distance(to: second)
            self.size = size
        }

        /// The current pair row of each panel, as eight Int32 lanes of two Int16 each.
        @inline(__always)
        var rows: (Sums, Sums) { (load(first, size), load(first + second, size)) }

        /// On to the next pair row.
        @inline(__always)
        mutating func step() { first += 2 * panelWidth * size }
    }

    /// Sixteen values as eight Int32 lanes of two Int16 each: Int16s as they lie, Int8s
    /// sign-extended.
    @inline(__always)
    static func load(_ p: UnsafeRawPointer, _ size: Int) -> Sums {
        if size == 2 { return p.loadUnaligned(as: Sums.self) }
        let v = p.loadUnaligned(as: SIMD16<Int8>.self)
        var wide = SIMD16<Int16>()
        for j in 0..<16 { wide[j] = Int16(v[j]) }
        return unsafeBitCast(wide, to: Sums.self)
    }

    /// `sums` plus, in each lane, a[2p]·b[2p] + a[2p+1]·b[2p+1]: `pair` holds A's two Int16 in
    /// every lane and `b` a column's two, as they lie; the halves are sign-extended by shifts.
    /// (`SIMD16<Int32>(truncatingIfNeeded:)` would be a call per element.)
    @inline(__always)
    static func madd(_ sums: Sums, _ pair: Sums, _ b: Sums) -> Sums {
        sums &+ (((pair &<< 16) &>> 16) &* ((b &<< 16) &>> 16) &+ (pair &>> 16) &* (b &>> 16))
    }

    /// A's pair at `a` as it lies (two Int16 in one lane), in every lane.
    @inline(__always)
    static func pair(_ a: UnsafePointer<Int16>) -> Sums { Sums(repeating: UnsafeRawPointer(a).loadUnaligned(as: Int32.self)) }

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
        _ a: UnsafePointer<Int16>, _ lda: Int, _ b: Panels, _ pairs: Int, _ c: UnsafeMutablePointer<Int32>, _ n: Int, _ first: Int,
        _ panels: Int
    ) {
        var c00 = Sums(), c01 = Sums(), c10 = Sums(), c11 = Sums(), c20 = Sums(), c21 = Sums(), c30 = Sums(), c31 = Sums()
        var b = b, a = a
        for _ in 0..<pairs {
            let (x0, x1) = b.rows
            let a0 = pair(a), a1 = pair(a + lda), a2 = pair(a + 2 * lda), a3 = pair(a + 3 * lda)
            c00 = madd(c00, a0, x0)
            c01 = madd(c01, a0, x1)
            c10 = madd(c10, a1, x0)
            c11 = madd(c11, a1, x1)
            c20 = madd(c20, a2, x0)
            c21 = madd(c21, a2, x1)
            c30 = madd(c30, a3, x0)
            c31 = madd(c31, a3, x1)
            b.step()
            a += 2
        }
        store(c00, c01, c, n: n, first: first, panels: panels)
        store(c10, c11, c + n, n: n, first: first, panels: panels)
        store(c20, c21, c + 2 * n, n: n, first: first, panels: panels)
        store(c30, c31, c + 3 * n, n: n, first: first, panels: panels)
    }

    @inline(__always)
    static func block1(
        _ a: UnsafePointer<Int16>, _ b: Panels, _ pairs: Int, _ c: UnsafeMutablePointer<Int32>, _ n: Int, _ first: Int, _ panels: Int
    ) {
        var c0 = Sums(), c1 = Sums()
        var b = b, a = a
        for _ in 0..<pairs {
            let (x0, x1) = b.rows
            let a0 = pair(a)
            c0 = madd(c0, a0, x0)
            c1 = madd(c1, a0, x1)
            b.step()
            a += 2
        }
        store(c0, c1, c, n: n, first: first, panels: panels)
    }
}
