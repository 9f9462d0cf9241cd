#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import VesselTensor

// A graph rewrite run at load (see `GraphBuilder.build` for the order).
extension GraphBuilder {
    /// Runs, once at load time, every node whose inputs are all constants, and replaces it by
    /// its outputs as initializers (constant folding). Graph outputs stay computed by nodes.
    func foldConstants(_ nodes: inout [Node], _ initializers: inout [String: Tensor], fed: Set<String>, protected: Set<String>) throws {
        var constants = initializers.filter { !fed.contains($0.key) }
        var kept: [Node] = []
        for node in nodes {
            let hasSubgraph = node.attributes.values.values.contains { if case .graph = $0 { true } else if case .graphs = $0 { true } else { false } }
            guard case .tensors(let kernel) = node.kernel else {
                kept.append(node)
                continue
            }
            let foldable =
                !hasSubgraph && !Self.nondeterministic.contains(node.opType) && node.domain.isEmpty
                && node.inputs.allSatisfy { $0.isEmpty || constants[$0] != nil }
                && !node.outputs.contains(where: protected.contains)
            guard foldable else {
                kept.append(node)
                continue
            }
            let context = KernelContext(node: node) { _, _ in [] }
            // A node that fails here is left to fail (or not) at run time, with its real inputs.
            guard let results = try? kernel(context, node.inputs.map { $0.isEmpty ? nil : constants[$0] }),
                results.count >= node.outputs.filter({ !$0.isEmpty }).count
            else {
                kept.append(node)
                continue
            }
            for (name, tensor) in zip(node.outputs, results) where !name.isEmpty { constants[name] = tensor }
        }
        // Keep the constants something still reads.
        var needed = Set(kept.flatMap(\.inputs)).union(protected)
        for node in kept {
            for value in node.attributes.values.values {
                if case .graph(let graph) = value { needed.formUnion(graph.capturedNames) }
            }
        }
        for (name, tensor) in constants where needed.contains(name) { initializers[name] = tensor }
        nodes = kept
    }
}
