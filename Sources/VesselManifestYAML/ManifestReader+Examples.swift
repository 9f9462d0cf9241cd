import VesselTensor
import VesselManifest
import Yams

extension ManifestReader {
    mutating func readExamples(
        _ node: Node, signature: Signature, extraOutputs: Set<String>, files: inout Set<String>, extra: inout [FileEntry]
    ) -> [Example] {
        guard case .sequence(let sequence) = node else {
            walker.error("`examples` must be a list", at: node, hint: "each example: `{name, inputs: {…}, outputs: {…}}`")
            return []
        }
        var examples: [Example] = []
        var names: Set<String> = []
        for (index, item) in sequence.enumerated() {
            guard
                let fields = walker.fields(
                    item, in: "an example", allowed: ["name", "inputs", "outputs", "rtol", "atol"],
                    required: ["inputs"])
            else { continue }
            let name = fields["name"].flatMap { walker.nonEmptyString($0.value, "the example `name`") } ?? "example-\(index + 1)"
            if let node = fields["name"]?.value, !names.insert(name).inserted {
                walker.error("duplicate example name `\(name)`", at: node)
            }
            let inputs =
                fields["inputs"].map {
                    readTensorData($0.value, specs: signature.inputs, extraNames: [], requireAll: true, example: name, files: &files, extra: &extra)
                } ?? [:]
            let outputs =
                fields["outputs"].map {
                    readTensorData($0.value, specs: signature.outputs, extraNames: extraOutputs, requireAll: false, example: name, files: &files, extra: &extra)
                } ?? [:]
            let rtol = fields["rtol"].flatMap { walker.number($0.value, "`rtol`", minimum: 0) } ?? 1e-5
            let atol = fields["atol"].flatMap { walker.number($0.value, "`atol`", minimum: 0) } ?? 1e-6
            examples.append(Example(name: name, inputs: inputs, outputs: outputs, rtol: rtol, atol: atol))
        }
        return examples
    }

    private mutating func readTensorData(
        _ node: Node, specs: [TensorSpec], extraNames: Set<String>, requireAll: Bool, example: String,
        files: inout Set<String>, extra: inout [FileEntry]
    ) -> [String: ExampleData] {
        let what = requireAll ? "inputs" : "outputs"
        guard case .mapping(let mapping) = node else {
            walker.error("the \(what) of example `\(example)` must map tensor names to data", at: node)
            return [:]
        }
        var result: [String: ExampleData] = [:]
        let known = specs.map(\.name) + extraNames.sorted()
        for (key, valueNode) in mapping {
            guard let name = walker.string(key, "a tensor name") else { continue }
            if brokenTensorNames.contains(name) { continue }
            guard known.contains(name) else {
                walker.error(
                    "example `\(example)` has \(what.dropLast()) `\(name)`, which the signature does not have", at: key,
                    hint: Suggestion.didYouMean(name, in: known) ?? "\(what): \(known.joined(separator: ", "))")
                continue
            }
            if case .mapping = valueNode {
                guard let fields = walker.fields(valueNode, in: "example data", allowed: ["file"], required: ["file"]),
                    let fileNode = fields["file"]?.value, let path = checkPath(fileNode, what: "`file`", allowDirectory: false)
                else { continue }
                // A BYTES input (an image step's) takes any file as one element: its bytes.
                let bytes = specs.first { $0.name == name }?.dtype == .string
                if !(path.hasSuffix(".npy") || path.hasSuffix(".json") || bytes) {
                    walker.error(
                        "example data file `\(path)` must be .npy or .json", at: fileNode,
                        hint: "any file (an image) works for a BYTES input, such as an `image` step's")
                    continue
                }
                if !covers(files, path) {
                    files.insert(path)
                    extra.append(FileEntry(path: path, role: .dataset, description: "data of example \(example)"))
                }
                result[name] = .file(path)
                continue
            }
            let value = walker.value(valueNode)
            if let spec = specs.first(where: { $0.name == name }) {
                checkInline(value, against: spec, at: valueNode, example: example)
            }
            result[name] = .inline(value)
        }
        if requireAll {
            for spec in specs where result[spec.name] == nil && !brokenTensorNames.contains(spec.name) && !spec.isOptional {
                walker.error("example `\(example)` is missing input `\(spec.name)`", at: node)
            }
        }
        return result
    }

    /// Checks inline example data is rectangular, fits the declared shape, and holds the right kind
    /// of element for the dtype.
    private mutating func checkInline(_ value: Value, against spec: TensorSpec, at node: Node, example: String) {
        var shape: [Int] = []
        var level: Value = value
        while case .array(let items) = level {
            shape.append(items.count)
            guard let first = items.first else { break }
            level = first
        }
        var ragged = false
        var badElement: Value?
        func visit(_ value: Value, depth: Int) {
            if depth == shape.count {
                if case .array = value { ragged = true; return }
                if badElement == nil, !Self.element(value, fits: spec.dtype) { badElement = value }
                return
            }
            guard case .array(let items) = value, items.count == shape[depth] else { ragged = true; return }
            for item in items { visit(item, depth: depth + 1) }
        }
        visit(value, depth: 0)
        if ragged {
            walker.error("data for `\(spec.name)` in example `\(example)` is ragged: every row must have the same length", at: node)
            return
        }
        if let badElement {
            walker.error("data for `\(spec.name)` in example `\(example)` holds \(badElement), which is not a \(spec.dtype.rawValue)", at: node)
        }
        // A flat list is accepted for any shape with the same element count, as OIP's flat `data`.
        let count = shape.reduce(1, *)
        if spec.accepts(shape: shape) { return }
        if shape.count == 1, spec.shape.allSatisfy({ if case .fixed = $0 { true } else { false } }),
            spec.shape.reduce(1, { $0 * (Int($1.description) ?? 1) }) == count
        {
            return
        }
        let declared = "[" + spec.shape.map(\.description).joined(separator: ", ") + "]"
        walker.error("data for `\(spec.name)` in example `\(example)` has shape \(shape), which does not fit \(declared)", at: node)
    }

    static func element(_ value: Value, fits dtype: DType) -> Bool {
        switch (dtype, value) {
        case (.string, .string): true
        case (.bool, .bool): true
        case (.bool, .int(let number)): number == 0 || number == 1
        case (_, .int) where dtype != .string && dtype != .bool: true
        case (_, .double) where dtype.isFloatingPoint: true
        default: false
        }
    }
}
