import Synchronization
import Testing
@testable import VesselONNX
import VesselTensor

/// Times each part ran (and nested parts, as -1).
final class Hits: Sendable {
    private let state: Mutex<(counts: [Int], nested: Int)>
    init(_ count: Int) { state = Mutex(([Int](repeating: 0, count: count), 0)) }
    func add(_ part: Int) { state.withLock { if part < 0 { $0.nested += 1 } else { $0.counts[part] += 1 } } }
    var counts: [Int] { state.withLock { $0.counts } }
    var nested: Int { state.withLock { $0.nested } }
}

@Suite("intra-op worker threads", .serialized)
struct WorkerPoolTests {
    @Test("every part runs exactly once, from callers on many threads at once, with nested loops run in place")
    func partsOnce() async throws {
        for threads in [2, 3, 1, 2] {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for caller in 0..<6 {
                    group.addTask {
                        for round in 0..<200 {
                            let count = 1 + (caller * 7 + round) % 40
                            let hits = Hits(count)
                            Parallel.each(count, threads: threads) { part in
                                hits.add(part)
                                // A loop inside a part (a GEMM inside a chunk) runs on this thread.
                                if part == 0 { Parallel.each(3, threads: threads) { _ in hits.add(-1) } }
                            }
                            #expect(hits.counts == [Int](repeating: 1, count: count) && hits.nested == 3)
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
    }

    @Test("a product split across threads matches the one-thread product, bit for bit but for one-row products, and repeats exactly")
    func splitProducts() {
        var generator = SplitMix64(seed: 3)
        // (m, n, k): wide (split by columns), tall (by rows), one row (OpenBLAS's vector path,
        // whose sums run in another order when the columns are cut), one below the split size,
        // and small-A products that run in column blocks (cut anywhere else, their halves
        // rounded differently from the whole).
        for (m, n, k) in [(64, 3136, 147), (1000, 49, 640), (1, 784, 1024), (8, 8, 8), (16, 3025, 64), (7, 1000, 33), (256, 1024, 512)] {
            for (transA, transB) in [(false, false), (true, false), (false, true)] {
                let a = (0..<(m * k)).map { _ in Float(generator.nextUnit() * 2 - 1) }
                let b = (0..<(k * n)).map { _ in Float(generator.nextUnit() * 2 - 1) }
                func product(threads: Int) -> [Float] {
                    var c = [Float](repeating: .nan, count: m * n)
                    GEMM.multiply(m: m, n: n, k: k, a: a, transA: transA, b: b, transB: transB, c: &c, threads: threads)
                    return c
                }
                let one = product(threads: 1)
                let label = "\(m)×\(n)×\(k) transA \(transA) transB \(transB)"
                #expect(!one.contains { $0.isNaN }, "\(label)")
                for threads in [2, 3] {
                    let split = product(threads: threads)
                    // Compared as one Bool: a failure then names the case instead of printing both arrays.
                    let repeated = product(threads: threads) == split, same = split == one
                    #expect(repeated, "\(label), \(threads) threads, run twice")
                    if m > 1 {
                        #expect(same, "\(label), \(threads) threads")
                    } else {
                        let worst = zip(split, one).map { abs($0 - $1) / (1 + abs($1)) }.max() ?? 0
                        #expect(worst < 1e-5, "\(label), \(threads) threads: \(worst)")
                    }
                }
            }
        }
    }

    @Test("a large Concat copied by several threads equals the one-thread copy, on every axis")
    func parallelConcat() {
        var generator = SplitMix64(seed: 9)
        // Inputs differing along the axis (one of them small) and each output at least 256 KiB.
        for axis in 0..<4 {
            let sizes = [30, 10, 50]
            let tensors = sizes.map { size -> Tensor in
                var shape = [2, 8, 48, 50]
                shape[axis] = size
                return Tensor((0..<Tensor.count(of: shape)).map { _ in Float(generator.nextUnit()) }, shape: shape)
            }
            let expected = Tensor.concatenate(tensors, axis: axis)
            #expect(expected.count * 4 >= 1 << 18, "axis \(axis): below the size that is copied in parallel")
            for threads in [2, 3] {
                let result = concatenate(tensors, axis: axis, threads: threads)
                let same = result.shape == expected.shape && result.scalars(as: Float.self) == expected.scalars(as: Float.self)
                #expect(same, "axis \(axis), \(threads) threads")
            }
        }
    }
}
