import VesselTensor

/// The least rank the ONNX spec gives each input an operator reads by axis (N × C × … images,
/// 2-D matrices, 3-D sequences), checked by the executor before the kernel runs: no kernel reads
/// an axis its input does not have, whatever a model feeds it. Exact ranks and the relations
/// between inputs stay with each kernel.
enum InputRanks {
    /// By operator of the default domain: input k's least rank (0: any).
    static let minimum: [String: [Int]] = [
        "Conv": [3, 3], "ConvTranspose": [3, 3], "ConvInteger": [3, 3], "QLinearConv": [3, 0, 0, 3],
        "MaxPool": [3], "AveragePool": [3], "LpPool": [3], "MaxUnpool": [3],
        "GlobalAveragePool": [2], "GlobalMaxPool": [2], "GlobalLpPool": [2],
        "MaxRoiPool": [4, 2], "RoiAlign": [4, 2, 1],
        "InstanceNormalization": [2], "GroupNormalization": [2], "LRN": [2],
        "Gemm": [2, 2], "Trilu": [2], "Det": [2],
        "LSTM": [3, 3, 3, 2], "GRU": [3, 3, 3, 2], "RNN": [3, 3, 3, 2],
        "Attention": [3, 3, 3], "NonMaxSuppression": [3, 3], "ReverseSequence": [2],
        "NegativeLogLikelihoodLoss": [2], "SoftmaxCrossEntropyLoss": [2]
    ]

    static func check(_ node: Node, _ inputs: [Tensor?]) throws {
        for (index, least) in node.minimumRanks.enumerated() where index < inputs.count {
            if let input = inputs[index], input.rank < least {
                throw node.invalid("input \(index) (`\(node.inputs[index])`) has shape \(input.shape); \(node.opType) needs rank ≥ \(least)")
            }
        }
    }
}
