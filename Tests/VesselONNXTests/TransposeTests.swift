import Testing
import VesselTensor
@testable import VesselONNX

/// Transpose's run copies against the offset-per-element gather it replaced.
@Suite("transpose")
struct TransposeTests {
    static func permutations(_ n: Int) -> [[Int]] {
        guard n > 0 else { return [[]] }
        return permutations(n - 1).flatMap { p in
            (0...p.count).map {
                var q = p; q.insert(n - 1, at: $0); return q
            }
        }
    }

    @Test("every permutation of shapes with unit axes, adjacent runs and strided ones equals the gather, for 1- to 8-byte types")
    func matchesGather() {
        for shape in [[2, 3, 4], [1, 5, 1, 3], [4, 1, 6, 2], [3, 2, 2, 5], [7], [1, 1], [2, 128, 3]] {
            let count = shape.reduce(1, *)
            let tensors = [
                Tensor((0..<count).map { Float($0) * 0.5 }, shape: shape), Tensor((0..<count).map { UInt8($0 % 251) }, shape: shape),
                Tensor((0..<count).map { Int64($0) - 40 }, shape: shape), Tensor((0..<count).map { Int16($0) }, shape: shape)
            ]
            for perm in Self.permutations(shape.count) {
                let strides = Tensor.strides(of: shape)
                let outShape = perm.map { shape[$0] }
                for x in tensors {
                    let expected = x.take(stridedOffsets(shape: outShape, base: 0, steps: perm.map { strides[$0] }), shape: outShape)
                    let got = transpose(x, perm)
                    #expect(got.shape == outShape && got.doubles() == expected.doubles(), "\(x.dtype) \(shape) by \(perm)")
                }
            }
        }
        let strings = Tensor(strings: ["a", "b", "c", "d", "e", "f"], shape: [2, 3])
        #expect(transpose(strings, [1, 0]).strings == ["a", "d", "b", "e", "c", "f"])
    }
}
