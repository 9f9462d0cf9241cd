import VesselTensor

// A graph rewrite run at load (see `GraphBuilder.build` for the order).
extension GraphBuilder {
    /// GELU as exporters spell it with Erf — `x / √2` (or `x · (1/√2)`), `Erf`, `+ 1`, and either
    /// `(x · 0.5) · that` or `(x · that) · 0.5` — becomes one node when each intermediate is read
    /// only by the next: one pass over memory instead of five, through the same row kernel's erf
    /// and the same roundings in the same order, so results are the unfused graph's bits. The
    /// constants may be any float32 scalars; a non-float32 input runs the original nodes in turn.
    static func fuseGelu(_ nodes: inout [Node], _ initializers: [String: Tensor], protected: Set<String>, overridable: Set<String>) {
        let readers = readerCounts(nodes)
        var reader: [String: Int] = [:], producer: [String: Int] = [:]
        for (index, node) in nodes.enumerated() {
            for input in node.inputs where !input.isEmpty { reader[input] = index }
            for output in node.outputs where !output.isEmpty { producer[output] = index }
        }
        /// A float32 constant holding one value.
        func scalar(_ name: String) -> Float? {
            guard !overridable.contains(name), let tensor = initializers[name], tensor.dtype == .float32, tensor.count == 1 else { return nil }
            return tensor.scalars(as: Float.self)[0]
        }
        /// A plain binary node of `opType` at `index`.
        func binary(_ index: Int?, _ opType: String) -> Node? {
            guard let index, nodes[index].opType == opType, nodes[index].domain.isEmpty, nodes[index].inputs.count == 2,
                nodes[index].outputs.count == 1, case .tensors = nodes[index].kernel
            else { return nil }
            return nodes[index]
        }
        /// Whether `name` is read once, by a node of this chain, and is no graph output.
        func inChain(_ name: String) -> Bool { readers[name] == 1 && !protected.contains(name) }
        /// The other input of a binary node that reads `name`.
        func other(_ node: Node, _ name: String) -> String? {
            node.inputs[0] == name ? node.inputs[1] : node.inputs[1] == name ? node.inputs[0] : nil
        }
        var replaced: [Int: Node] = [:]
        var removed: Set<Int> = []
        for (erfIndex, erf) in nodes.enumerated() where erf.opType == "Erf" && erf.domain.isEmpty && erf.inputs.count == 1 && erf.outputs.count == 1 {
            guard case .tensors = erf.kernel, inChain(erf.inputs[0]), inChain(erf.outputs[0]), let scaleIndex = producer[erf.inputs[0]] else { continue }
            // x / c1 (Div, x first) or x · c1 (Mul, either order).
            let divide: Bool, x: String, c1: String
            if let div = binary(scaleIndex, "Div"), scalar(div.inputs[1]) != nil {
                (divide, x, c1) = (true, div.inputs[0], div.inputs[1])
            } else if let mul = binary(scaleIndex, "Mul"), let name = [mul.inputs[1], mul.inputs[0]].first(where: { scalar($0) != nil }),
                let value = other(mul, name)
            {
                (divide, x, c1) = (false, value, name)
            } else {
                continue
            }
            guard let addIndex = reader[erf.outputs[0]], let add = binary(addIndex, "Add"), let c2 = other(add, erf.outputs[0]), scalar(c2) != nil,
                inChain(add.outputs[0]), let mulIndex = reader[add.outputs[0]], let mul = binary(mulIndex, "Mul"),
                let factor = other(mul, add.outputs[0])
            else { continue }
            var chain = [scaleIndex, erfIndex, addIndex, mulIndex]
            let c3: String, scaleLast: Bool
            if factor == x {
                // (x · (erf + c2)) · c3
                guard inChain(mul.outputs[0]), let lastIndex = reader[mul.outputs[0]], let last = binary(lastIndex, "Mul"),
                    let name = other(last, mul.outputs[0]), scalar(name) != nil
                else { continue }
                (c3, scaleLast) = (name, true)
                chain.append(lastIndex)
            } else {
                // (x · c3) · (erf + c2)
                guard inChain(factor), let halfIndex = producer[factor], let half = binary(halfIndex, "Mul"),
                    let name = [half.inputs[1], half.inputs[0]].first(where: { scalar($0) != nil }), other(half, name) == x
                else { continue }
                (c3, scaleLast) = (name, false)
                chain.insert(halfIndex, at: 1)
            }
            guard chain.allSatisfy({ !removed.contains($0) && replaced[$0] == nil }) else { continue }
            let originals = chain.sorted().map { nodes[$0] }
            let lastIndex = chain.max()!
            let output = nodes[scaleLast ? chain.last! : mulIndex].outputs[0]
            var fused = erf
            fused.opType = "Gelu"
            fused.name = originals.map(\.name).joined(separator: "+")
            fused.inputs = [x]
            fused.outputs = [output]
            fused.minimumRanks = []
            fused.inputTypes = InputTypes()
            let (v1, v2, v3) = (scalar(c1)!, scalar(c2)!, scalar(c3)!)
            let constants = [c1: initializers[c1]!, c2: initializers[c2]!, c3: initializers[c3]!]
            fused.kernel = .tensors { _, inputs in
                guard let input = inputs.first ?? nil else { throw ONNXError.invalidModel("node \(erf.name): missing input") }
                guard input.dtype == .float32, constants.values.allSatisfy({ $0.rank <= input.rank }) else {
                    // What this pass does not cover: the original nodes, one after another.
                    return [try runInTurn(originals, inputs: [x: input], constants: constants, output: output)]
                }
                let y = Tensor(uninitialized: .float32, shape: input.shape)
                input.withUnsafeBufferPointer(as: Float.self) { px in
                    y.withUnsafeMutableBufferPointer(as: Float.self) { py in
                        RowKernels.gelu(px.baseAddress!, py.baseAddress!, count: px.count, c1: v1, divide: divide, c2: v2, c3: v3, scaleLast: scaleLast)
                    }
                }
                return [y]
            }
            replaced[lastIndex] = fused
            removed.formUnion(chain)
        }
        nodes = nodes.enumerated().compactMap { replaced[$0.offset] ?? (removed.contains($0.offset) ? nil : $0.element) }
    }

    /// Runs `chain` (nodes in execution order) from `inputs` and `constants`, for a fused node's
    /// fallback, and returns the value named `output`.
    static func runInTurn(_ chain: [Node], inputs: [String: Tensor], constants: [String: Tensor], output: String) throws -> Tensor {
        var values = inputs.merging(constants) { first, _ in first }
        for node in chain {
            guard case .tensors(let kernel) = node.kernel else { throw ONNXError.invalidModel("node \(node.name): not a tensor kernel") }
            let results = try kernel(KernelContext(node: node) { _, _ in [] }, node.inputs.map { $0.isEmpty ? nil : values[$0] })
            for (name, tensor) in zip(node.outputs, results) where !name.isEmpty { values[name] = tensor }
        }
        guard let result = values[output] else { throw ONNXError.invalidModel("fused nodes did not produce `\(output)`") }
        return result
    }
}
