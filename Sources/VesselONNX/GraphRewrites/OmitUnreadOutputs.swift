#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import VesselTensor

// A graph rewrite run at load (see `GraphBuilder.build` for the order).
extension GraphBuilder {
    /// Operators whose outputs past the first are optional extras the kernel computes only when
    /// the node lists them: Dropout's mask, MaxPool's indices, the losses' log-probabilities,
    /// LayerNormalization's mean and inverse deviation. (Not Split, Loop or If, whose output
    /// count means something.)
    static let optionalTrailingOutputs: Set<String> = ["Dropout", "MaxPool", "SoftmaxCrossEntropyLoss", "LayerNormalization"]

    /// Drops the trailing outputs of those operators that nothing reads and the graph does not
    /// return, so the kernel neither builds them (an older exporter's Dropout lists a mask of the
    /// activation's size that every run filled and threw away) nor stays off its fast path (a
    /// MaxPool listing indices takes the general one), and the fusions see a one-output node.
    static func omitUnreadOutputs(_ nodes: inout [Node], protected: Set<String>) {
        let readers = readerCounts(nodes)
        for index in nodes.indices where nodes[index].domain.isEmpty && optionalTrailingOutputs.contains(nodes[index].opType) {
            while nodes[index].outputs.count > 1, let last = nodes[index].outputs.last,
                last.isEmpty || (readers[last] == nil && !protected.contains(last))
            {
                nodes[index].outputs.removeLast()
            }
        }
    }
}
