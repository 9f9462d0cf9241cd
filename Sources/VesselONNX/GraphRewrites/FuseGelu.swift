import VesselTensor

// A graph rewrite run at load (see `GraphBuilder.build` for the order).
extension GraphBuilder {
    /// GELU as exporters spell it with Erf — `x / √2` (or `x · (1/√2)`), `Erf`, `+ 1`, and either
    /// `(x · 0.5) · that` or `(x · that) · 0.5` — becomes one node when each intermediate is read
    /// only by the next: one pass over memory instead of five, through the same row kernel's erf
    /// and the same roundings in the same order, so results are the unfused graph's bits. The
    /// constants may be any float32 scalars, or float16 ones over a float16 input (each step
    /// rounded to half as the nodes do, `HalfPrecision.gelu`); any other input runs the original
    /// nodes in turn.
    static func fuseGelu(_ nodes: inout [Node], _ initializers: [String: Tensor], protected: Set<String>, overridable: Set<String>) {
        let chains = Chains(nodes, initializers, protected: protected, overridable: overridable)
        var replaced: [Int: Node] = [:]
        var removed: Set<Int> = []
        for (erfIndex, erf) in nodes.enumerated() where erf.opType == "Erf" && erf.domain.isEmpty && erf.inputs.count == 1 && erf.outputs.count == 1 {
            guard case .tensors = erf.kernel, chains.absorbable(erf.inputs[0]), chains.absorbable(erf.outputs[0]),
                let scaleIndex = chains.producer[erf.inputs[0]]
            else { continue }
            // x / c1 (Div, x first) or x · c1 (Mul, either order).
            let divide: Bool, x: String, c1: String
            if let div = chains.binary(scaleIndex, "Div"), chains.scalar(div.inputs[1]) != nil {
                (divide, x, c1) = (true, div.inputs[0], div.inputs[1])
            } else if let mul = chains.binary(scaleIndex, "Mul"), let name = [mul.inputs[1], mul.inputs[0]].first(where: { chains.scalar($0) != nil }),
                let value = Chains.other(mul, than: name)
            {
                (divide, x, c1) = (false, value, name)
            } else {
                continue
            }
            guard let addIndex = chains.reader[erf.outputs[0]], let add = chains.binary(addIndex, "Add"), let c2 = Chains.other(add, than: erf.outputs[0]),
                chains.scalar(c2) != nil,
                chains.absorbable(add.outputs[0]), let mulIndex = chains.reader[add.outputs[0]], let mul = chains.binary(mulIndex, "Mul"),
                let factor = Chains.other(mul, than: add.outputs[0])
            else { continue }
            var chain = [scaleIndex, erfIndex, addIndex, mulIndex]
            let c3: String, scaleLast: Bool
            if factor == x {
                // (x · (erf + c2)) · c3
                guard chains.absorbable(mul.outputs[0]), let lastIndex = chains.reader[mul.outputs[0]], let last = chains.binary(lastIndex, "Mul"),
                    let name = Chains.other(last, than: mul.outputs[0]), chains.scalar(name) != nil
                else { continue }
                (c3, scaleLast) = (name, true)
                chain.append(lastIndex)
            } else {
                // (x · c3) · (erf + c2)
                guard chains.absorbable(factor), let halfIndex = chains.producer[factor], let half = chains.binary(halfIndex, "Mul"),
                    let name = [half.inputs[1], half.inputs[0]].first(where: { chains.scalar($0) != nil }), Chains.other(half, than: name) == x
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
            let constants = [c1: initializers[c1]!, c2: initializers[c2]!, c3: initializers[c3]!]
            // One type for the three, float32 or float16 (widened here, exactly).
            let type = constants[c1]!.dtype
            guard constants.values.allSatisfy({ $0.dtype == type }) else { continue }
            func value(_ name: String) -> Float {
                type == .float32 ? constants[name]!.scalars(as: Float.self)[0] : Float(constants[name]!.scalars(as: Float16.self)[0])
            }
            let (v1, v2, v3) = (value(c1), value(c2), value(c3))
            fused.kernel = .tensors { _, inputs in
                guard let input = inputs.first ?? nil else { throw ONNXError.invalidModel("node \(erf.name): missing input") }
                guard input.dtype == type, constants.values.allSatisfy({ $0.rank <= input.rank }) else {
                    // What this pass does not cover: the original nodes, one after another.
                    return [try runInTurn(originals, inputs: [x: input], constants: constants, output: output)]
                }
                if type == .float16 { return [HalfPrecision.gelu(input, c1: v1, divide: divide, c2: v2, c3: v3, scaleLast: scaleLast)] }
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
        nodes = chains.applying(replaced, removing: removed)
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
