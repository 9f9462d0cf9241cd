import VesselTensor

/// The dtypes the ONNX spec allows each input: a type variable's list (Neg takes signed numbers,
/// MatMul no bool), and ties — inputs that share a type variable (MatMul's A and B, Concat's
/// inputs, Where's X and Y) hold one dtype, and a few inputs have a fixed one (int64 shapes,
/// float scales). The executor checks them before a kernel runs, so no kernel meets a type the
/// spec does not give it, or reads its second input as the first one's type. The schemas are
/// generated from the onnx wheel (`Generated/InputTypes+Schemas.swift`).
struct InputTypes: Sendable {
    /// Input positions that must hold one dtype.
    var groups: [[Int]] = []
    /// Input positions and the dtypes their type variable allows (one, for a fixed type).
    var allowed: [(index: Int, dtypes: Set<DType>)] = []

    var isEmpty: Bool { groups.isEmpty && allowed.isEmpty }

    /// No ties (an operator of another domain, or one whose inputs are independent).
    init() {}

    /// The rule for a node of `opType` in `domain` at `opset`, with `count` inputs.
    init(opType: String, domain: String, opset: Int, count: Int) {
        guard let versions = Self.schemas["\(domain):\(opType)"],
            let labels = versions.last(where: { $0.since <= opset })?.inputs, !labels.isEmpty
        else { return }
        let variadic = labels.last?.hasSuffix("...") == true
        var byLabel: [String: [Int]] = [:]
        for index in 0..<count {
            guard index < labels.count || variadic else { break }
            var label = labels[Swift.min(index, labels.count - 1)]
            if label.hasSuffix("...") { label.removeLast(3) }
            if label.isEmpty { continue }
            if label.hasPrefix("="), let dtype = DType(rawValue: String(label.dropFirst())) {
                allowed.append((index, [dtype]))
            } else if !label.hasPrefix("=") {
                let parts = label.split(separator: "#")
                byLabel[String(parts[0]), default: []].append(index)
                if parts.count == 2, let set = Int(parts[1]) {
                    allowed.append((index, Set(Self.typeSets[set].compactMap(DType.init(rawValue:)))))
                }
            }
        }
        groups = byLabel.values.filter { $0.count > 1 }.map { $0.sorted() }.sorted { $0[0] < $1[0] }
    }

    func check(_ node: Node, _ inputs: [Tensor?]) throws {
        for (index, dtypes) in allowed where index < inputs.count {
            if let input = inputs[index], !dtypes.contains(input.dtype) {
                throw node.invalid(
                    "input \(index) (`\(node.inputs[index])`) is \(input.dtype.rawValue); opset \(node.opset) of \(node.opType) takes \(dtypes.map(\.rawValue).sorted().joined(separator: ", ")) there"
                )
            }
        }
        for group in groups {
            let present = group.filter { $0 < inputs.count && inputs[$0] != nil }
            guard let first = present.first, let dtype = inputs[first]?.dtype else { continue }
            for index in present.dropFirst() where inputs[index]!.dtype != dtype {
                throw node.invalid(
                    "input \(index) (`\(node.inputs[index])`) is \(inputs[index]!.dtype.rawValue) but input \(first) (`\(node.inputs[first])`) is \(dtype.rawValue); \(node.opType) takes one type for both"
                )
            }
        }
    }
}
