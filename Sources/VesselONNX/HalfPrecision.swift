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
        return { context, inputs in
            guard let half = inputs.lazy.compactMap({ $0?.dtype }).first(where: { $0 == .float16 || $0 == .bfloat16 }) else {
                return try kernel(context, inputs)
            }
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
}
