import Synchronization

/// Stops a run from outside: a deadline, or `cancel()` from another thread. The executor checks
/// it before every node, and Loop and Scan before every iteration, so a run that is told to
/// stop ends within one node's time and frees what it holds (a server's slot, a thread).
public final class RunControl: Sendable {
    public let deadline: ContinuousClock.Instant?
    private let cancelled = Atomic<Bool>(false)

    public init(deadline: ContinuousClock.Instant? = nil) {
        self.deadline = deadline
    }

    /// A control whose deadline is `timeout` from now.
    public convenience init(timeout: Duration) {
        self.init(deadline: ContinuousClock.now + timeout)
    }

    public func cancel() { cancelled.store(true, ordering: .relaxed) }

    /// Throws ``ONNXError/stopped(_:)`` once cancelled or past the deadline.
    public func check() throws(ONNXError) {
        if cancelled.load(ordering: .relaxed) { throw .stopped("the run was cancelled") }
        if let deadline, ContinuousClock.now > deadline { throw .stopped("the run passed its deadline") }
    }
}

extension Graph {
    /// Whether one run's work is bounded by the size of its inputs: no Loop (whose trip count is
    /// data), and no operator whose output size comes from a non-constant input (Range, Expand,
    /// ConstantOfShape, Tile, Resize, Pad, OneHot…). Only such a model may run a small request
    /// on a server's event loop: for anything else, a request small in bytes can still be slow.
    public var costIsBoundedByInputs: Bool {
        costIsBounded(constants: Set(initializers.keys))
    }

    /// Operators whose inputs after the first can make the output (and the work) as large as
    /// they say, with the input indices that do.
    static let sizeInputs: [String: [Int]] = [
        "Range": [0, 1, 2], "Expand": [1], "ConstantOfShape": [0], "Tile": [1], "Resize": [1, 2, 3], "Upsample": [1], "Pad": [1, 2],
        "OneHot": [1], "CenterCropPad": [1], "Col2Im": [1, 2], "MaxUnpool": [2], "STFT": [2, 3], "DFT": [2],
        "BlackmanWindow": [0], "HannWindow": [0], "HammingWindow": [0], "MelWeightMatrix": [0, 1]
    ]

    func costIsBounded(constants: Set<String>) -> Bool {
        let known = constants.union(initializers.keys)
        for node in nodes {
            if node.opType == "Loop" { return false }
            if let sizes = Self.sizeInputs[node.opType] {
                for index in sizes where index < node.inputs.count && !node.inputs[index].isEmpty && !known.contains(node.inputs[index]) {
                    return false
                }
            }
            for value in node.attributes.values.values {
                switch value {
                case .graph(let body): if !body.costIsBounded(constants: known) { return false }
                case .graphs(let bodies): if !bodies.allSatisfy({ $0.costIsBounded(constants: known) }) { return false }
                default: break
                }
            }
        }
        return true
    }
}
