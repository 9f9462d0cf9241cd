import VesselKernels
import VesselKernelsAVX512
import VesselKernelsHaswell
import VesselTensor

/// float16 and bfloat16 models computed in float32, as onnxruntime's CPU provider does (its
/// `InsertCastTransformer` puts casts around the nodes it has no half kernels for): the
/// arithmetic operators below widen their half-precision inputs to float32, run their float32
/// kernels, and round the outputs back once. For `+ − × ÷` and square roots the result is the
/// correctly rounded half value (float32's 24 bits are enough for one rounding to half to be
/// exact); products and reductions accumulate in float32, which is more accurate than half.
///
/// Inputs that come back on every run (weights) are widened once and kept, so the float32
/// kernels' own caches (packed MatMul weights) keep them too.
enum HalfPrecision {
    /// The operators computed so, and which of their outputs are rounded back (nil: all of them;
    /// LayerNormalization's mean and inverse deviation are float32 by the spec's stash type).
    static let computedInFloat32: [String: [Int]?] = [
        "Add": nil, "Sub": nil, "Mul": nil, "Div": nil, "Pow": nil, "MatMul": nil, "Gemm": nil, "Conv": nil,
        "Erf": nil, "Gelu": nil, "Tanh": nil, "Sigmoid": nil, "Relu": nil, "Exp": nil, "Log": nil, "Sqrt": nil, "Reciprocal": nil,
        "Softmax": nil, "LogSoftmax": nil, "LayerNormalization": [0], "ReduceMean": nil, "ReduceSum": nil
    ]

    /// `kernel`, computing in float32 when an input is float16 or bfloat16.
    static func wrap(_ kernel: @escaping KernelFunction, node: Node, narrowed: [Int]?) -> KernelFunction {
        let kept = (0..<node.inputs.count).map { _ in PackedWeights() }
        let operation: VesselKernels.HalfConversion.Operation? =
            switch node.opType {
            case "Add": .add
            case "Sub": .subtract
            case "Mul": .multiply
            case "Div": .divide
            default: nil
            }
        return { context, inputs in
            guard let half = inputs.lazy.compactMap({ $0?.dtype }).first(where: { $0 == .float16 || $0 == .bfloat16 }) else {
                return try kernel(context, inputs)
            }
            if let operation, inputs.count == 2, let a = inputs[0], let b = inputs[1], let y = arithmetic(operation, a, b) { return [y] }
            let widened = inputs.enumerated().map { index, input -> Tensor? in
                guard let input, input.dtype == half else { return input }
                let widen = { Cast.convert(input, to: .float32) }
                return index < kept.count ? kept[index].packed(for: input, key: [], pack: widen) : widen()
            }
            let outputs = try kernel(context, widened)
            return outputs.enumerated().map { index, output in
                output.dtype == .float32 && (narrowed?.contains(index) ?? true) ? Cast.convert(output, to: half) : output
            }
        }
    }

    /// `HalfConversion.arithmetic` in the CPU's kernel copy: (a, a is one value, b, b is one
    /// value, result, count).
    static func arithmetic(
        _ operation: VesselKernels.HalfConversion.Operation
    ) -> @Sendable (UnsafePointer<Float16>, Bool, UnsafePointer<Float16>, Bool, UnsafeMutablePointer<Float16>, Int) -> Void {
        switch RowKernels.variant {
        case .avx512:
            { VesselKernelsAVX512.HalfConversion.arithmetic(.init(rawValue: operation.rawValue)!, $0, aScalar: $1, $2, bScalar: $3, into: $4, count: $5) }
        case .haswell:
            { VesselKernelsHaswell.HalfConversion.arithmetic(.init(rawValue: operation.rawValue)!, $0, aScalar: $1, $2, bScalar: $3, into: $4, count: $5) }
        case .baseline: { VesselKernels.HalfConversion.arithmetic(operation, $0, aScalar: $1, $2, bScalar: $3, into: $4, count: $5) }
        }
    }

    /// GELU spelled with Erf over float16 values and float16 constants (`fuseGelu`; `c1`, `c2`,
    /// `c3` are those constants widened): `HalfConversion.gelu` in the CPU's kernel copy, each
    /// step rounded to half as the separate nodes round it, a block of 512 values at a time in L1
    /// instead of five tensors, the blocks split across the threads.
    static func gelu(_ x: Tensor, c1: Float, divide: Bool, c2: Float, c3: Float, scaleLast: Bool) -> Tensor {
        let kernel: (UnsafePointer<Float16>, UnsafeMutablePointer<Float16>, Int) -> Void =
            switch RowKernels.variant {
            case .avx512:
                { VesselKernelsAVX512.HalfConversion.gelu($0, $1, count: $2, c1: c1, divide: divide, c2: c2, c3: c3, scaleLast: scaleLast) }
            case .haswell:
                { VesselKernelsHaswell.HalfConversion.gelu($0, $1, count: $2, c1: c1, divide: divide, c2: c2, c3: c3, scaleLast: scaleLast) }
            case .baseline: { VesselKernels.HalfConversion.gelu($0, $1, count: $2, c1: c1, divide: divide, c2: c2, c3: c3, scaleLast: scaleLast) }
            }
        let block = 512
        let y = Tensor(uninitialized: .float16, shape: x.shape)
        x.withUnsafeBufferPointer(as: Float16.self) { px in
            y.withUnsafeMutableBufferPointer(as: Float16.self) { py in
                let count = px.count
                Parallel.chunks((count + block - 1) / block, minimum: 8) { blocks in
                    let first = blocks.lowerBound * block
                    kernel(px.baseAddress! + first, py.baseAddress! + first, Swift.min(count, blocks.upperBound * block) - first)
                }
            }
        }
        return y
    }

    /// float16 `a ∘ b` in one pass (`HalfConversion.arithmetic` in the CPU's kernel copy), or nil
    /// for the widening way: when both are float16 and one is the result's shape while the other
    /// is too, one value, or repeats along the result's last axes (a bias over the last axis, an
    /// attention mask over the heads). Operand by operand the same bits as widening.
    static func arithmetic(_ operation: VesselKernels.HalfConversion.Operation, _ a: Tensor, _ b: Tensor) -> Tensor? {
        guard a.dtype == .float16, b.dtype == .float16, let shape = try? Broadcast.shape(a.shape, b.shape) else { return nil }
        let count = Tensor.count(of: shape)
        /// Whether `t`'s values, repeated, lay out the result: all of it, or its last axes.
        func repeats(_ t: Tensor) -> Bool {
            var dims = t.shape[...]
            while dims.first == 1 { dims = dims.dropFirst() }
            return dims.count <= shape.count && Array(shape.suffix(dims.count)) == Array(dims)
        }
        guard a.count == count || b.count == count, count > 0 else { return nil }
        let period = Swift.min(a.count, b.count)
        // One value, or a period long enough for a call per repeat.
        guard period == 1 || period == count || (period >= 64 && repeats(a.count == count ? b : a)) else { return nil }
        let run = arithmetic(operation)
        let out = Tensor(uninitialized: .float16, shape: shape)
        let (aScalar, bScalar) = (a.count == 1 && count > 1, b.count == 1 && count > 1)
        a.withUnsafeBufferPointer(as: Float16.self) { pa in
            b.withUnsafeBufferPointer(as: Float16.self) { pb in
                out.withUnsafeMutableBufferPointer(as: Float16.self) { po in
                    let (x, y, z) = (pa.baseAddress!, pb.baseAddress!, po.baseAddress!)
                    if aScalar || bScalar || period == count {
                        Parallel.chunks(count, minimum: 65_536) { range in
                            let first = range.lowerBound
                            run(aScalar ? x : x + first, aScalar, bScalar ? y : y + first, bScalar, z + first, range.count)
                        }
                    } else {
                        // One operand whole, the other repeated every `period` values.
                        let aWhole = a.count == count
                        Parallel.chunks(count / period, minimum: Swift.max(1, 65_536 / period)) { repeats in
                            for index in repeats {
                                let first = index * period
                                run(aWhole ? x + first : x, false, aWhole ? y : y + first, false, z + first, period)
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}
