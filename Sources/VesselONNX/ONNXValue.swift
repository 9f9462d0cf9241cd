public import VesselTensor

/// A value flowing through a graph: a tensor, or one of the non-tensor types classic-ML models
/// pass between operators (ZipMap's sequence of maps, DictVectorizer's map input).
public enum ONNXValue: Sendable {
    case tensor(Tensor)
    /// An ordered list of values (tensors or maps).
    indirect case sequence([ONNXValue])
    /// A map: `keys` is 1-D int64 or string, `values` 1-D with as many elements, pairs in order.
    indirect case map(keys: Tensor, values: Tensor)

    public var tensor: Tensor? {
        if case .tensor(let tensor) = self { return tensor }
        return nil
    }

    /// The ONNX spelling of this value's type, for messages: `tensor(float)`,
    /// `seq(map(string,tensor(float)))`.
    public var typeDescription: String {
        switch self {
        case .tensor(let tensor): "tensor(\(tensor.dtype.onnxName))"
        case .sequence(let elements): "seq(\(elements.first?.typeDescription ?? "?"))"
        case .map(let keys, let values): "map(\(keys.dtype.onnxName),tensor(\(values.dtype.onnxName)))"
        }
    }
}

extension DType {
    /// The element type as ONNX writes it in type strings (`float`, `int64`, `string`).
    var onnxName: String {
        switch self {
        case .float32: "float"
        case .float64: "double"
        default: rawValue
        }
    }
}

/// Runs one node whose inputs or outputs may be sequences or maps.
public typealias ValueKernelFunction = @Sendable (KernelContext, [ONNXValue?]) throws -> [ONNXValue]

/// A node's kernel, resolved at load time.
enum NodeKernel: Sendable {
    /// Tensors in, tensors out: almost every operator.
    case tensors(KernelFunction)
    /// Sequences and maps in or out.
    case values(ValueKernelFunction)
}
