import Foundation
import Testing

#if HASWELL
import VesselKernelsHaswell
#else
import VesselKernels
#endif

/// The half conversions against Swift's own `Float(Float16)` / `Float16(Float)`, bit for bit,
/// and the integer product against a plain triple loop.
@Suite("half conversions and the integer product")
struct IntegerAndHalfKernelTests {
    @Test("every float16 widens to the float Swift gives")
    func widenEveryHalf() throws {
        try #require(KernelCPU.runnable)
        let halves = (0...UInt16.max).map { Float16(bitPattern: $0) }
        var floats = [Float](repeating: 0, count: halves.count)
        halves.withUnsafeBufferPointer { h in
            floats.withUnsafeMutableBufferPointer { f in
                HalfConversion.widen(h.baseAddress!, f.baseAddress!, count: h.count)
            }
        }
        let mismatches = zip(halves, floats).filter { half, float in
            half.isNaN ? !float.isNaN : Float(half).bitPattern != float.bitPattern
        }
        #expect(mismatches.count == 0, "\(mismatches.prefix(5).map { ($0.0.bitPattern, $0.1) })")
    }

    @Test("floats narrow to the float16 Swift gives: every half, the midpoints between neighbours (ties to even), overflow, specials, random")
    func narrowRoundsToNearestEven() throws {
        try #require(KernelCPU.runnable)
        var inputs: [Float] = [0, -0, .infinity, -.infinity, .nan, 65504, 65519.99, 65520, 65536, 1e10, -1e10, 1e-10, .leastNonzeroMagnitude]
        for bits in 0..<UInt16(0x7c00) {
            let value = Float(Float16(bitPattern: bits)), next = Float(Float16(bitPattern: bits + 1))
            inputs += [value, -value, (value + next) / 2, -(value + next) / 2, value.nextUp, value.nextDown]
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<100_000 { inputs.append(Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &generator))) }
        var halves = [Float16](repeating: 0, count: inputs.count)
        inputs.withUnsafeBufferPointer { f in
            halves.withUnsafeMutableBufferPointer { h in
                HalfConversion.narrow(f.baseAddress!, h.baseAddress!, count: f.count)
            }
        }
        let mismatches = zip(inputs, halves).filter { float, half in
            float.isNaN ? !half.isNaN : Float16(float).bitPattern != half.bitPattern
        }
        #expect(mismatches.count == 0, "\(mismatches.prefix(5).map { ($0.0, $0.0.bitPattern, $0.1.bitPattern, Float16($0.0).bitPattern) })")
    }

    @Test("half arithmetic gives Swift's Float16 of the float32 result: four operators, whole and scalar operands, blocks and tails, specials")
    func halfArithmetic() throws {
        try #require(KernelCPU.runnable)
        var generator = SystemRandomNumberGenerator()
        // Random bit patterns (every class: zeros, subnormals, normals, infinities, NaNs), a
        // count past a block and not a multiple of the lanes.
        let count = 1_300
        let a = (0..<count).map { _ in Float16(bitPattern: UInt16.random(in: 0...UInt16.max, using: &generator)) }
        var b = (0..<count).map { _ in Float16(bitPattern: UInt16.random(in: 0...UInt16.max, using: &generator)) }
        b[0] = 0
        b[1] = -0
        let operations: [(HalfConversion.Operation, (Float, Float) -> Float)] = [(.add, (+)), (.subtract, (-)), (.multiply, (*)), (.divide, (/))]
        for (operation, f) in operations {
            for (aScalar, bScalar) in [(false, false), (true, false), (false, true)] {
                var y = [Float16](repeating: .nan, count: count)
                a.withUnsafeBufferPointer { pa in
                    b.withUnsafeBufferPointer { pb in
                        y.withUnsafeMutableBufferPointer { py in
                            HalfConversion.arithmetic(
                                operation, pa.baseAddress! + (aScalar ? 5 : 0), aScalar: aScalar, pb.baseAddress! + (bScalar ? 7 : 0), bScalar: bScalar,
                                into: py.baseAddress!, count: count)
                        }
                    }
                }
                var mismatches = 0
                for i in 0..<count {
                    let expected = Float16(f(Float(a[aScalar ? 5 : i]), Float(b[bScalar ? 7 : i])))
                    if expected.isNaN ? !y[i].isNaN : expected.bitPattern != y[i].bitPattern { mismatches += 1 }
                }
                #expect(mismatches == 0, "\(operation), a scalar \(aScalar), b scalar \(bScalar)")
            }
        }
    }

    #if !HASWELL
    // The Int16-pair product is the baseline copy's alone (AVX2 CPUs take `QuadGEMM`).
    @Test("the packed product equals a plain loop, B as Int16 or Int8, at odd depths, ragged panels and row remainders")
    func integerProduct() throws {
        try #require(KernelCPU.runnable)
        for bytes in [false, true] {
            for (m, k, n) in [(1, 1, 1), (3, 7, 5), (4, 384, 16), (9, 33, 23), (17, 64, 40), (13, 130, 24)] {
                let a = (0..<(m * k)).map { _ in Int16.random(in: -255...255) }
                let b = (0..<(k * n)).map { _ in bytes ? Int16.random(in: -128...127) : Int16.random(in: -255...255) }
                let depth = IntegerGEMM.pairedDepth(k)
                var paddedA = [Int16](repeating: 0, count: m * depth)
                for i in 0..<m { for p in 0..<k { paddedA[i * depth + p] = a[i * k + p] } }
                let count = IntegerGEMM.packedCount(k: k, n: n)
                var wide = [Int16](repeating: 0, count: count), narrow = [Int8](repeating: 0, count: count)
                if bytes {
                    let values = b.map { Int8($0) }
                    values.withUnsafeBufferPointer { pb in
                        narrow.withUnsafeMutableBufferPointer { pp in IntegerGEMM.pack(pb.baseAddress!, k: k, n: n, into: pp.baseAddress!) }
                    }
                } else {
                    b.withUnsafeBufferPointer { pb in
                        wide.withUnsafeMutableBufferPointer { pp in IntegerGEMM.pack(pb.baseAddress!, k: k, n: n, into: pp.baseAddress!) }
                    }
                }
                var c = [Int32](repeating: -1, count: m * n)
                let panels = (n + IntegerGEMM.panelWidth - 1) / IntegerGEMM.panelWidth
                paddedA.withUnsafeBufferPointer { pa in
                    c.withUnsafeMutableBufferPointer { pc in
                        func run(_ packed: UnsafeRawPointer) {
                            IntegerGEMM.multiply(
                                a: pa.baseAddress!, packed: packed, bytes: bytes, k: k, n: n, c: pc.baseAddress!, rows: 0..<m, panels: 0..<panels)
                        }
                        if bytes {
                            narrow.withUnsafeBufferPointer { run(UnsafeRawPointer($0.baseAddress!)) }
                        } else {
                            wide.withUnsafeBufferPointer { run(UnsafeRawPointer($0.baseAddress!)) }
                        }
                    }
                }
                var expected = [Int32](repeating: 0, count: m * n)
                for i in 0..<m { for j in 0..<n { for p in 0..<k { expected[i * n + j] &+= Int32(a[i * k + p]) * Int32(b[p * n + j]) } } }
                #expect(c == expected, "\(m)×\(k)×\(n), B as \(bytes ? "Int8" : "Int16")")
            }
        }
    }
    #endif

    @Test("the u8·s8 quad product less zero points equals plain integer sums, pairs past vpmaddubsw's bound included")
    func byteProduct() throws {
        try #require(KernelCPU.runnable)
        var fixCount = 0
        for (rows, k, n) in [(1, 1, 1), (1, 4, 16), (3, 5, 17), (4, 64, 32), (13, 37, 33), (17, 300, 100), (9, 384, 48), (6, 1536, 40)] {
            // Weights mostly small, some at the extremes (−128 and 127 side by side go past the
            // bound), and activations up to 255: every saturating case is there.
            let extremes: [Int8] = [-128, 127, -127, 100, -90, 64, 65]
            let a = (0..<(rows * k)).map { index in index % 5 == 0 ? 255 : UInt8.random(in: 0...255) }
            let b = (0..<(k * n)).map { _ in Bool.random() ? extremes.randomElement()! : Int8.random(in: -40...40) }
            let depth = QuadGEMM.quadDepth(k), columns = QuadGEMM.paddedColumns(n), panels = columns / QuadGEMM.panelWidth
            let za = (0..<rows).map { _ in Int32.random(in: 0...255) }
            var zb = [Int32](repeating: 0, count: columns)
            for j in 0..<n { zb[j] = Int32.random(in: -128...127) }
            var padded = [UInt8](repeating: 0, count: rows * depth)
            for r in 0..<rows { for p in 0..<k { padded[r * depth + p] = a[r * k + p] } }
            var packed = [Int8](repeating: 99, count: QuadGEMM.packedCount(k: k, n: n))
            let fixes = QuadGEMM.pack(b, k: k, n: n, into: &packed, boundPairs: true)
            fixCount += fixes.values.count / 3
            // Every packed pair is within the bound, and the fixes give back what it left out.
            var restored = packed.map(Int32.init)
            for index in 0..<(fixes.values.count / 3) {
                let (p, j, value) = (Int(fixes.values[3 * index]), Int(fixes.values[3 * index + 1]), fixes.values[3 * index + 2])
                let panel = j / QuadGEMM.panelWidth
                #expect(Int(fixes.starts[panel]) <= index && index < Int(fixes.starts[panel + 1]))
                restored[panel * QuadGEMM.panelWidth * depth + (p / 4) * 4 * QuadGEMM.panelWidth + 4 * (j % QuadGEMM.panelWidth) + p % 4] += value
            }
            var unbounded = [Int8](repeating: 0, count: packed.count)
            #expect(QuadGEMM.pack(b, k: k, n: n, into: &unbounded, boundPairs: false) == QuadGEMM.Fixes(panels: panels))
            #expect(restored == unbounded.map(Int32.init), "\(rows)×\(k)·\(k)×\(n): packed bytes and fixes")
            #expect(stride(from: 0, to: packed.count, by: 2).allSatisfy { abs(Int(packed[$0])) + abs(Int(packed[$0 + 1])) <= 128 })
            var u = [Int32](repeating: 0, count: columns)
            for j in 0..<n { u[j] = (0..<k).reduce(Int32(0)) { $0 + Int32(b[$1 * n + j]) } - Int32(k) * zb[j] }
            var rowSum = [Int32](repeating: 0, count: rows)
            QuadGEMM.rowSums(padded, lda: depth, depth: depth, rows: 0..<rows, into: &rowSum)
            var c = [Int32](repeating: -7, count: rows * n)
            // In pieces, as the threads split it: rows at an odd cut, panels at an odd one.
            for (r, p) in [(0..<(rows / 2), 0..<panels), ((rows / 2)..<rows, 0..<(panels / 2 | 1)), ((rows / 2)..<rows, (panels / 2 | 1)..<panels)] {
                c.withUnsafeMutableBufferPointer {
                    QuadGEMM.multiply(
                        a: padded, lda: depth, packed: packed, k: k, n: n, c: $0.baseAddress!, za: za, rowSum: rowSum, u: u, zb: zb,
                        fixStarts: fixes.starts, fixes: fixes.values, rows: r, panels: p.clamped(to: 0..<panels))
                }
            }
            var expected = [Int32](repeating: 0, count: rows * n)
            for i in 0..<rows {
                for j in 0..<n {
                    for p in 0..<k { expected[i * n + j] += (Int32(a[i * k + p]) - za[i]) * (Int32(b[p * n + j]) - zb[j]) }
                }
            }
            #expect(c == expected, "\(rows)×\(k)·\(k)×\(n)")
        }
        #expect(fixCount > 100, "the weights put pairs past the bound")
    }

    @Test("DynamicQuantizeLinear's range and bytes equal the scalar arithmetic: halves to even, saturation, NaN, ragged tails")
    func quantize() {
        var values: [Float] = [0, 0.5, 1.5, 2.5, -0.5, 127.5, 300, -300, .nan, .infinity, -.infinity, 1e-8]
        var state: UInt64 = 1
        for _ in 0..<1_000 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            values.append(Float(Int(state >> 40) % 20_001 - 10_000) / 37)
        }
        for count in [0, 1, 15, 16, 17, 33, values.count] {
            let slice = Array(values.prefix(count))
            let finite = slice.filter { !$0.isNaN }
            let (low, high) = QuantizeKernels.range(slice, count: count)
            #expect(low == (finite.min() ?? .infinity) && high == (finite.max() ?? -.infinity), "\(count) values")
            for (scale, zero) in [(Float(0.5), Float(0)), (Float(1), Float(128)), (Float(0.37), Float(3))] {
                var bytes = [UInt8](repeating: 77, count: count)
                QuantizeKernels.quantize(slice, &bytes, count: count, scale: scale, zeroPoint: zero)
                let expected = slice.map { x -> UInt8 in
                    let q = (x / scale).rounded(.toNearestOrEven) + zero
                    return q.isNaN ? 0 : UInt8(Swift.min(Swift.max(q, 0), 255))
                }
                #expect(bytes == expected, "\(count) values, scale \(scale), zero point \(zero)")
            }
        }
    }
}
