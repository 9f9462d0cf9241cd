#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import VesselTensor

extension KernelRegistry {
    static func registerStrings(_ r: inout KernelRegistry) {
        r.register("StringNormalizer", since: 10, stringNormalizerKernel)
    }

    static func stringNormalizerKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let x = try c.input(i, 0)
        guard x.dtype == .string else { throw c.invalid("StringNormalizer takes strings") }
        guard x.rank == 1 || (x.rank == 2 && x.shape[0] == 1) else { throw c.invalid("input must be [C] or [1, C], got \(x.shape)") }
        let caseSensitive = c.attributes.int("is_case_sensitive", default: 0) == 1
        let stopwords = c.attributes.strings("stopwords") ?? []
        let stopSet = Set(caseSensitive ? stopwords : stopwords.map { $0.lowercased() })
        var kept = x.strings.filter { !stopSet.contains(caseSensitive ? $0 : $0.lowercased()) }
        switch c.attributes.string("case_change_action", default: "NONE") {
        case "LOWER": kept = kept.map { $0.lowercased() }
        case "UPPER": kept = kept.map { $0.uppercased() }
        case "NONE": break
        case let other: throw c.invalid("unknown case_change_action `\(other)`")
        }
        // With every string removed, the output holds one empty string.
        if kept.isEmpty { kept = [""] }
        return [Tensor(strings: kept, shape: x.rank == 1 ? [kept.count] : [1, kept.count])]
    }
}
