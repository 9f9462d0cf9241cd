import Testing
@testable import VesselONNX
import VesselTensor

@Suite("float32 broadcast kernel")
struct BroadcastKernelTests {
    @Test("matches the generic broadcasting path on random shape pairs", arguments: 0..<4)
    func matchesGeneric(_ kind: Int) throws {
        var generator = SplitMix64(seed: UInt64(kind) + 11)
        for _ in 0..<300 {
            let rank = Int(generator.next() % 5)
            let out = (0..<rank).map { _ in Int(generator.next() % 4) + 1 }
            // Each operand: a suffix of the output shape with some axes set to 1.
            func operand() -> [Int] {
                let drop = rank == 0 ? 0 : Int(generator.next() % UInt64(rank + 1))
                return out.dropFirst(drop).map { generator.next() % 3 == 0 ? 1 : $0 }
            }
            let sa = operand(), sb = operand()
            let a = Tensor((0..<Tensor.count(of: sa)).map { _ in Float(Int(generator.next() % 200) - 100) / 7 }, shape: sa)
            let b = Tensor((0..<Tensor.count(of: sb)).map { _ in Float(Int(generator.next() % 200) + 1) / 9 }, shape: sb)
            let fast = try floatBroadcast(kind, a, b)
            let f: (Float, Float) -> Float = [{ $0 + $1 }, { $0 - $1 }, { $0 * $1 }, { $0 / $1 }][kind]
            let reference = try mapBinary(a, b, Float.self, Float.self, f)
            #expect(fast.shape == reference.shape, "\(sa) ⊙ \(sb)")
            #expect(fast.scalars(as: Float.self) == reference.scalars(as: Float.self), "\(sa) ⊙ \(sb)")
        }
    }
}
