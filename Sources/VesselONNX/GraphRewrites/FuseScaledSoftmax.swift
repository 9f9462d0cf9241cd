import VesselTensor

// A graph rewrite run at load (see `GraphBuilder.build` for the order).
extension GraphBuilder {
    /// Attention's scores as exporters write them — `Mul` by a constant scale (or `Div` by it),
    /// `Add` of a mask, `Softmax` over the last axis — become one node when each intermediate is
    /// read only by the next: each row is scaled, masked and normalized in one pass instead of
    /// three over heads × tokens × tokens values. Every step rounds as its own kernel does (a
    /// float32 product, a float32 sum, then the same softmax row kernel), so results are the
    /// separate nodes' bits (float16 scores, mask and scale: each step widened, computed in
    /// float32 and rounded to half as its node rounds it, `HalfConversion.maskedSoftmaxRows`); a
    /// mask that would widen the scores, another dtype or another axis runs the original nodes in
    /// turn.
    static func fuseScaledSoftmax(_ nodes: inout [Node], _ initializers: [String: Tensor], protected: Set<String>, overridable: Set<String>) {
        let chains = Chains(nodes, initializers, protected: protected, overridable: overridable)
        var replaced: [Int: Node] = [:]
        var removed: Set<Int> = []
        for (index, scale) in nodes.enumerated() where ["Mul", "Div"].contains(scale.opType) && scale.domain.isEmpty {
            guard scale.inputs.count == 2, scale.outputs.count == 1, case .tensors = scale.kernel, !removed.contains(index) else { continue }
            let divide = scale.opType == "Div"
            let factorName = divide || chains.scalar(scale.inputs[1]) != nil ? scale.inputs[1] : scale.inputs[0]
            guard let factor = chains.scalar(factorName), let x = Chains.other(scale, than: factorName), initializers[x] == nil,
                let (addIndex, add, _) = chains.soleReader(of: scale.outputs[0], "Add"), let maskName = Chains.other(add, than: scale.outputs[0]),
                let (softmaxIndex, softmax, _) = chains.soleReader(of: add.outputs[0], "Softmax"), softmax.inputs.count == 1
            else { continue }
            let originals = [scale, add, softmax]
            let output = softmax.outputs[0]
            let value = factor.dtype == .float16 ? Float(factor.scalars(as: Float16.self)[0]) : factor.scalars(as: Float.self)[0]
            let legacy = softmax.opset < 13
            let axis = softmax.attributes.int("axis", default: legacy ? 1 : -1)
            var fused = softmax
            fused.name = originals.map(\.name).joined(separator: "+")
            fused.inputs = [x, maskName]
            fused.minimumRanks = []
            fused.inputTypes = InputTypes()
            fused.kernel = .tensors { _, inputs in
                guard let scores = inputs[0] ?? nil, let mask = inputs[1] ?? nil else {
                    throw ONNXError.invalidModel("node \(softmax.name): missing input")
                }
                let rank = scores.rank
                let maskShape = [Int](repeating: 1, count: Swift.max(0, rank - mask.rank)) + mask.shape
                let dtype = scores.dtype
                guard dtype == .float32 || dtype == .float16, mask.dtype == dtype, factor.dtype == dtype, rank >= 1, mask.rank <= rank,
                    factor.rank <= rank, axis == rank - 1 || axis == -1, zip(maskShape, scores.shape).allSatisfy({ $0 == 1 || $0 == $1 })
                else {
                    // What this pass does not cover: the original nodes, one after another.
                    return [try runInTurn(originals, inputs: [x: scores, maskName: mask], constants: [factorName: factor], output: output)]
                }
                let n = scores.shape[rank - 1], rows = n == 0 ? 0 : scores.count / n
                // Each row's first mask value, and the step along the row (0 when broadcast).
                let strides = Tensor.strides(of: maskShape)
                let steps = (0..<(rank - 1)).map { maskShape[$0] == 1 ? 0 : strides[$0] }
                let rowOffsets = stridedOffsets(shape: Array(scores.shape.dropLast()), base: 0, steps: steps)
                let along = maskShape[rank - 1] == 1 ? 0 : 1
                let y = Tensor(uninitialized: dtype, shape: scores.shape)
                if dtype == .float16 {
                    scores.withUnsafeBufferPointer(as: Float16.self) { px in
                        mask.withUnsafeBufferPointer(as: Float16.self) { pm in
                            y.withUnsafeMutableBufferPointer(as: Float16.self) { py in
                                rowOffsets.withUnsafeBufferPointer { offsets in
                                    Parallel.chunks(rows, minimum: Swift.max(1, 8_192 / Swift.max(n, 1))) { range in
                                        RowKernels.maskedSoftmaxRows(
                                            px.baseAddress!, masks: pm.baseAddress!, maskOffsets: offsets.baseAddress!, along: along == 1,
                                            factor: value, divide: divide, py.baseAddress!, rows: range, size: n)
                                    }
                                }
                            }
                        }
                    }
                    return [y]
                }
                scores.withUnsafeBufferPointer(as: Float.self) { px in
                    mask.withUnsafeBufferPointer(as: Float.self) { pm in
                        y.withUnsafeMutableBufferPointer(as: Float.self) { py in
                            let (source, masks, target) = (px.baseAddress!, pm.baseAddress!, py.baseAddress!)
                            rowOffsets.withUnsafeBufferPointer { offsets in
                                Parallel.chunks(rows, minimum: Swift.max(1, 16_384 / Swift.max(n, 1))) { range in
                                    RowKernels.maskedSoftmaxRows(
                                        source, masks: masks, maskOffsets: offsets.baseAddress!, along: along == 1, factor: value, divide: divide,
                                        target, rows: range, size: n)
                                }
                            }
                        }
                    }
                }
                return [y]
            }
            replaced[softmaxIndex] = fused
            removed.formUnion([index, addIndex, softmaxIndex])
        }
        nodes = chains.applying(replaced, removing: removed)
    }
}
