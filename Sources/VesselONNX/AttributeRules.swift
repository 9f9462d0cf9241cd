/// Load-time checks of the attributes the spec bounds: a model whose Conv has a stride of 0 or
/// whose DepthToSpace has a blocksize of 0 fails to load with a message naming the node, rather
/// than dividing by zero (or reading past a buffer) when it first runs.
///
/// Kernels check again what depends on input shapes (a kernel that does not fit its input, an
/// axis out of range); these are the checks that need no input at all. The upper bound (2^31)
/// keeps every product the kernels form from them (dilation × kernel, stride × size) inside an
/// Int.
enum AttributeRules {
    static let limit = 1 << 31

    /// Window operators: strides, dilations and kernel sizes are positive; pads non-negative.
    static let windowed: Set<String> = [
        "Conv", "ConvTranspose", "ConvInteger", "QLinearConv", "DeformConv", "MaxPool", "AveragePool", "LpPool", "MaxUnpool", "Col2Im"
    ]
    static let grouped: Set<String> = ["Conv", "ConvTranspose", "ConvInteger", "QLinearConv", "DeformConv"]

    static func check(_ node: Node) throws {
        guard node.domain.isEmpty else { return }
        let a = node.attributes
        func fail(_ reason: String) -> ONNXError { .invalidNode(node: node.name, opType: node.opType, reason: reason) }
        func positive(_ name: String) throws {
            if let values = a.ints(name), !values.allSatisfy({ (1...limit).contains($0) }) {
                throw fail("\(name) \(values) must be positive (at most 2^31)")
            }
        }
        func nonNegative(_ name: String) throws {
            if let values = a.ints(name), !values.allSatisfy({ (0...limit).contains($0) }) {
                throw fail("\(name) \(values) must be non-negative (at most 2^31)")
            }
        }
        if windowed.contains(node.opType) {
            try positive("strides")
            try positive("dilations")
            try positive("kernel_shape")
            try nonNegative("pads")
            try nonNegative("output_padding")
            try nonNegative("output_shape")
            if let kernel = a.ints("kernel_shape"), let strides = a.ints("strides"), kernel.count != strides.count {
                throw fail("kernel_shape \(kernel) and strides \(strides) name different numbers of axes")
            }
            if let kernel = a.ints("kernel_shape"), let pads = a.ints("pads"), pads.count != 2 * kernel.count {
                throw fail("pads \(pads) must hold a begin and an end for each of the \(kernel.count) kernel axes")
            }
        }
        if grouped.contains(node.opType) {
            let group = a.int("group", default: 1)
            guard (1...limit).contains(group) else { throw fail("group \(group) must be positive") }
        }
        switch node.opType {
        case "DepthToSpace", "SpaceToDepth":
            let size = a.int("blocksize", default: 1)
            guard (1...(1 << 16)).contains(size) else { throw fail("blocksize \(size) must be positive (at most 65536)") }
        case "LRN":
            let size = a.int("size", default: 1)
            guard (1...limit).contains(size) else { throw fail("size \(size) must be positive") }
        case "LpPool", "GlobalLpPool", "LpNormalization":
            let p = a.int("p", default: 2)
            guard (1...limit).contains(p) else { throw fail("p \(p) must be positive") }
        case "TopK" where node.opset < 10:
            let k = a.int("k", default: 1)
            guard (0...limit).contains(k) else { throw fail("k \(k) must be non-negative") }
        default:
            break
        }
    }
}
