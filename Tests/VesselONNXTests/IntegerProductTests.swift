import Testing
import VesselTensor
@testable import VesselONNX

/// MatMulInteger's packed products — the Int16-pair one of CPUs without AVX2, and the byte one
/// of AVX2 (`vpmaddubsw`, B's pairs bounded) and AVX-512 VNNI CPUs — against plain integer sums,
/// for every pairing of int8 and uint8 (uniform bytes: many of B's pairs past the bound), zero
/// points per tensor, per row and per column, and depths that are not whole quads.
@Suite("integer products")
struct IntegerProductTests {
    struct Case {
        let a: Tensor, b: Tensor, aZeros: [Int32], bZeros: [Int32], rows: Int, m: Int, k: Int, n: Int, expected: [Int32]
    }

    static func cases() -> [Case] {
        var state: UInt64 = 5
        func next() -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int(state >> 33)
        }
        var cases: [Case] = []
        for (aSigned, bSigned) in [(false, true), (false, false), (true, true), (true, false)] {
            for (batches, m, k, n) in [(1, 1, 3, 5), (2, 5, 8, 17), (1, 19, 37, 33), (3, 4, 64, 48), (2, 23, 41, 40)] {
                let rows = batches * m
                let aValues = (0..<(rows * k)).map { _ in aSigned ? next() % 256 - 128 : next() % 256 }
                let bValues = (0..<(k * n)).map { _ in bSigned ? next() % 256 - 128 : next() % 256 }
                let aZeros = (0..<(n % 2 == 0 ? m : 1)).map { _ in Int32(aSigned ? next() % 256 - 128 : next() % 256) }
                let bZeros = (0..<(m % 2 == 1 ? n : 1)).map { _ in Int32(bSigned ? next() % 256 - 128 : next() % 256) }
                let a = aSigned ? Tensor(aValues.map { Int8($0) }, shape: [rows, k]) : Tensor(aValues.map { UInt8($0) }, shape: [rows, k])
                let b = bSigned ? Tensor(bValues.map { Int8($0) }, shape: [k, n]) : Tensor(bValues.map { UInt8($0) }, shape: [k, n])
                var expected = [Int32](repeating: 0, count: rows * n)
                for i in 0..<rows {
                    for j in 0..<n {
                        let za = Int(aZeros[aZeros.count == 1 ? 0 : i % m]), zb = Int(bZeros[bZeros.count == 1 ? 0 : j])
                        expected[i * n + j] = Int32((0..<k).reduce(0) { $0 + (aValues[i * k + $1] - za) * (bValues[$1 * n + j] - zb) })
                    }
                }
                cases.append(Case(a: a, b: b, aZeros: aZeros, bZeros: bZeros, rows: rows, m: m, k: k, n: n, expected: expected))
            }
        }
        return cases
    }

    @Test("the Int16-pair product (the baseline copy's) equals plain sums")
    func pairs() {
        for c in Self.cases() {
            let sums = IntegerProducts.packedProduct(c.a, c.b, aZeros: c.aZeros, bZeros: c.bZeros, rows: c.rows, m: c.m, k: c.k, n: c.n, weights: nil)
            #expect(sums == c.expected, "\(c.a.dtype)·\(c.b.dtype) \(c.rows)×\(c.k)·\(c.k)×\(c.n)")
        }
    }

    @Test("a fused product's floats are the sums times their factors plus the bias, per thread block")
    func fusedFloats() throws {
        for c in Self.cases() {
            for perColumn in [false, true] {
                let factors = perColumn ? (0..<c.n).map { Float($0 + 1) * 0.013 } : [Float(0.0071)]
                let bias = (0..<c.n).map { Float($0) * -0.25 }
                var floats = [Float](repeating: .nan, count: c.rows * c.n)
                floats.withUnsafeMutableBufferPointer { out in
                    let epilogue = IntegerProducts.FloatEpilogue(factors: factors, bias: bias, output: out.baseAddress!)
                    if RowKernels.variant.hasAVX2 {
                        _ = IntegerProducts.quadProduct(
                            c.a, c.b, aZeros: c.aZeros, bZeros: c.bZeros, rows: c.rows, m: c.m, k: c.k, n: c.n, weights: nil, epilogue: epilogue)
                    } else {
                        _ = IntegerProducts.packedProduct(
                            c.a, c.b, aZeros: c.aZeros, bZeros: c.bZeros, rows: c.rows, m: c.m, k: c.k, n: c.n, weights: nil, epilogue: epilogue)
                    }
                }
                let expected = c.expected.indices.map { index -> Float in
                    let product = Float(c.expected[index]) * factors[perColumn ? index % c.n : 0]
                    return product + bias[index % c.n]
                }
                #expect(floats == expected, "\(c.a.dtype)·\(c.b.dtype) \(c.rows)×\(c.k)·\(c.k)×\(c.n), factor per column: \(perColumn)")
            }
        }
    }

    @Test("the byte product equals plain sums, also from a kept packed weight", .enabled(if: RowKernels.variant.hasAVX2))
    func quads() {
        for c in Self.cases() {
            let weights = PackedWeights()
            for round in 0..<3 {
                let sums = IntegerProducts.quadProduct(
                    c.a, c.b, aZeros: c.aZeros, bZeros: c.bZeros, rows: c.rows, m: c.m, k: c.k, n: c.n, weights: weights)
                #expect(sums == c.expected, "\(c.a.dtype)·\(c.b.dtype) \(c.rows)×\(c.k)·\(c.k)×\(c.n), run \(round)")
            }
        }
    }
}
