/// What can go wrong loading or running an ONNX model, each case naming the node or file.
public enum ONNXError: Error, Sendable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case invalidModel(String)
    /// Every operator the model uses that this runtime lacks, found at load time.
    case unsupportedOperators([UnsupportedOperator])
    case invalidNode(node: String, opType: String, reason: String)
    case missingInput(name: String)
    case unexpectedInput(name: String, known: [String])
    case inputMismatch(name: String, reason: String)
    case externalData(tensor: String, reason: String)
    /// A run that a ``RunControl`` stopped: cancelled, or past its deadline.
    case stopped(String)

    public struct UnsupportedOperator: Sendable, Hashable, CustomStringConvertible {
        public var domain: String
        public var opType: String
        public var opset: Int
        public var nodes: [String]

        public var description: String {
            let name = domain.isEmpty || domain == "ai.onnx" ? opType : "\(domain).\(opType)"
            return
                "\(name) (opset \(opset)) at \(nodes.prefix(3).map { "`\($0)`" }.joined(separator: ", "))\(nodes.count > 3 ? " and \(nodes.count - 3) more" : "")"
        }
    }

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): "cannot read ONNX model \(path): \(reason)"
        case .invalidModel(let reason): "invalid ONNX model: \(reason)"
        case .unsupportedOperators(let operators):
            "the model uses \(operators.count) operator\(operators.count == 1 ? "" : "s") this runtime does not implement: "
                + operators.map(\.description).joined(separator: "; ")
        case .invalidNode(let node, let opType, let reason): "\(opType) node `\(node)`: \(reason)"
        case .missingInput(let name): "missing input `\(name)`"
        case .unexpectedInput(let name, let known): "unknown input `\(name)`; the model's inputs are \(known.joined(separator: ", "))"
        case .inputMismatch(let name, let reason): "input `\(name)`: \(reason)"
        case .externalData(let tensor, let reason): "external data of tensor `\(tensor)`: \(reason)"
        case .stopped(let reason): reason
        }
    }
}
