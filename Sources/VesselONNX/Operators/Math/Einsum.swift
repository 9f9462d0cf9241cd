#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import VesselTensor

extension KernelRegistry {
    static func registerEinsum(_ r: inout KernelRegistry) {
        r.register("Einsum", since: 12, einsumKernel)
    }

    static func einsumKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let operands = i.compactMap { $0 }
        let equation = try c.attributes.required("equation", c.attributes.string).filter { $0 != " " }
        return [try einsum(equation, operands, c)]
    }
}

/// Einstein summation by walking the index space of every label once. Ellipses stand for the
/// leading dimensions an operand has beyond its labels, and broadcast across operands.
func einsum(_ equation: String, _ operands: [Tensor], _ c: KernelContext) throws -> Tensor {
    let parts = equation.components(separatedBy: "->")
    guard parts.count <= 2 else { throw c.invalid("equation `\(equation)` has more than one `->`") }
    let inputSpecs = parts[0].components(separatedBy: ",")
    guard inputSpecs.count == operands.count else { throw c.invalid("equation `\(equation)` names \(inputSpecs.count) operands, got \(operands.count)") }
    // A term is letters and at most one "...".
    func letters(_ spec: String) throws -> Int {
        let pieces = spec.components(separatedBy: "...")
        guard pieces.count <= 2, pieces.allSatisfy({ $0.allSatisfy { $0.isASCII && $0.isLetter } }) else {
            throw c.invalid("term `\(spec)` of `\(equation)` must be letters with at most one `...`")
        }
        return pieces.joined().count
    }
    // Expand each "..." into placeholder labels (Unicode scalars past the letters).
    var ellipsisRank = 0
    for (spec, operand) in zip(inputSpecs, operands) {
        let named = try letters(spec)
        guard spec.contains("...") ? named <= operand.rank : named == operand.rank else {
            throw c.invalid("term `\(spec)` of `\(equation)` does not match an operand of rank \(operand.rank)")
        }
        if spec.contains("...") { ellipsisRank = Swift.max(ellipsisRank, operand.rank - named) }
    }
    if parts.count > 1 {
        let named = try letters(parts[1])
        guard Set(parts[1].filter(\.isLetter)).count == named else { throw c.invalid("output `\(parts[1])` of `\(equation)` repeats a label") }
        guard parts[1].filter(\.isLetter).allSatisfy(parts[0].contains) else {
            throw c.invalid("output `\(parts[1])` of `\(equation)` names a label no input has")
        }
    }
    let placeholders = (0..<ellipsisRank).map { Character(UnicodeScalar(0x100 + $0)!) }
    func expand(_ spec: String, rank: Int?) -> [Character] {
        let characters = Array(spec)
        guard let dots = (0..<max(0, characters.count - 2)).first(where: { characters[$0..<$0 + 3] == [".", ".", "."] }) else { return characters }
        let count = rank.map { $0 - (spec.count - 3) } ?? ellipsisRank
        return Array(characters[..<dots]) + placeholders.suffix(count) + Array(characters[(dots + 3)...])
    }
    let labels = zip(inputSpecs, operands).map { expand($0, rank: $1.rank) }
    var sizes: [Character: Int] = [:]
    for (operandLabels, operand) in zip(labels, operands) {
        guard operandLabels.count == operand.rank else { throw c.invalid("`\(equation)` does not match operand of rank \(operand.rank)") }
        for (label, size) in zip(operandLabels, operand.shape) {
            if let known = sizes[label], known != size {
                if known == 1 { sizes[label] = size } else if size != 1 { throw c.invalid("label \(label) has sizes \(known) and \(size)") }
            } else if sizes[label] == nil {
                sizes[label] = size
            }
        }
    }
    let outputLabels: [Character]
    if parts.count > 1 {
        outputLabels = expand(parts[1], rank: nil)
    } else {
        let counts = labels.joined().reduce(into: [Character: Int]()) { $0[$1, default: 0] += 1 }
        outputLabels = placeholders + counts.filter { $0.value == 1 && !placeholders.contains($0.key) }.keys.sorted()
    }
    let all = outputLabels + Set(labels.joined()).subtracting(outputLabels).sorted()
    let allSizes = all.map { sizes[$0] ?? 1 }
    // For each operand, its stride per label in `all` (0 where absent or broadcast).
    let strides: [[Int]] = zip(labels, operands).map { operandLabels, operand in
        let own = Tensor.strides(of: operand.shape)
        return all.map { label in
            var stride = 0
            for (axis, l) in operandLabels.enumerated() where l == label && operand.shape[axis] != 1 { stride += own[axis] }
            return stride
        }
    }
    let values = operands.map { $0.doubles() }
    let outputShape = outputLabels.map { sizes[$0] ?? 1 }
    let outputCount = Tensor.count(of: outputShape)
    let inner = allSizes[outputLabels.count...].reduce(1, *)
    // One step per point of the label space: bounded, like any kernel's output, by what a run
    // may allocate; a deadline or cancel stops it between output elements.
    guard let steps = Tensor.checkedCount(of: allSizes), Tensor.allocationProblem(.float64, [steps]) == nil else {
        throw c.invalid("`\(equation)` spans \(allSizes) label values, too many to sum")
    }
    var result = [Double](repeating: 0, count: outputCount)
    var index = [Int](repeating: 0, count: all.count)
    var offsets = [Int](repeating: 0, count: operands.count)
    for position in 0..<(outputCount * inner) {
        if position % 65536 == 0 { try c.checkStop() }
        var product = 1.0
        for k in 0..<operands.count { product *= values[k][offsets[k]] }
        result[position / Swift.max(inner, 1)] += product
        var d = all.count - 1
        while d >= 0 {
            index[d] += 1
            for k in 0..<operands.count { offsets[k] += strides[k][d] }
            if index[d] < allSizes[d] { break }
            for k in 0..<operands.count { offsets[k] -= strides[k][d] * index[d] }
            index[d] = 0
            d -= 1
        }
    }
    return Cast.fromDoubles(result, dtype: operands[0].dtype, shape: outputShape)
}
