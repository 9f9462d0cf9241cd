#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Dispatch
import VesselTensor

/// Runs graphs. Holds no state between runs, so one loaded model serves many threads at once.
enum Executor {
    /// A scope: this graph's values by slot (`Graph.slots`: feeds, then what its nodes computed),
    /// its constants read where they are, and the enclosing scopes' values beneath, found by name
    /// (what a subgraph reads from outside).
    final class Scope: @unchecked Sendable {
        var values: [ONNXValue?]
        let graph: Graph
        let parent: Scope?
        /// Feeds that name no value of the graph, kept for lookups by name as before.
        var extra: [String: ONNXValue] = [:]

        init(graph: Graph, feeds: [String: ONNXValue], parent: Scope?) {
            self.graph = graph
            self.parent = parent
            values = [ONNXValue?](repeating: nil, count: graph.slots.count)
            for (name, value) in feeds {
                if let slot = graph.slots[name] { values[slot] = value } else { extra[name] = value }
            }
        }

        /// The value in `slot`: computed or fed, else the initializer there.
        @inline(__always)
        func value(at slot: Int) -> ONNXValue? {
            if let value = values[slot] { return value }
            return graph.constantsBySlot[slot].map { .tensor($0) }
        }

        func lookup(_ name: String) -> ONNXValue? {
            if let slot = graph.slots[name], let value = value(at: slot) { return value }
            if let value = extra[name] { return value }
            return parent?.lookup(name)
        }
    }

    static func run(_ graph: Graph, feeds: [String: ONNXValue], outer: Scope?, control: RunControl? = nil) throws -> [ONNXValue] {
        // A feed overrides an initializer of the same name (IR < 4 defaults): feeds are values.
        let scope = Scope(graph: graph, feeds: feeds, parent: outer)
        let runSubgraph: @Sendable (Graph, [String: ONNXValue]) throws -> [ONNXValue] = { subgraph, subfeeds in
            try run(subgraph, feeds: subfeeds, outer: scope, control: control)
        }
        for index in graph.nodes.indices {
            try control?.check()
            let node = graph.nodes[index]
            let slots = graph.stepSlots[index]
            let context = KernelContext(node: node, runSubgraph: runSubgraph, control: control)
            let started = Profiler.enabled ? DispatchTime.now().uptimeNanoseconds : 0
            /// Input `position`'s value, or nil for an omitted one.
            func input(_ position: Int) throws -> ONNXValue? {
                let slot = slots.inputs[position]
                if slot == Graph.StepSlots.omitted { return nil }
                let name = node.inputs[position]
                guard let value = slot == Graph.StepSlots.outer ? scope.lookup(name) : scope.value(at: slot) ?? scope.lookup(name) else {
                    throw ONNXError.invalidNode(node: node.name, opType: node.opType, reason: "input `\(name)` has no value")
                }
                return value
            }
            let results: [ONNXValue]
            switch node.kernel {
            case .tensors(let kernel):
                let inputs: [Tensor?] = try slots.inputs.indices.map { position in
                    guard let value = try input(position) else { return nil }
                    guard let tensor = value.tensor else {
                        throw ONNXError.invalidNode(
                            node: node.name, opType: node.opType,
                            reason: "input `\(node.inputs[position])` is a \(value.typeDescription); this operator takes tensors")
                    }
                    return tensor
                }
                if !node.minimumRanks.isEmpty { try InputRanks.check(node, inputs) }
                if !node.inputTypes.isEmpty { try node.inputTypes.check(node, inputs) }
                results = try kernel(context, inputs).map { .tensor($0) }
            case .values(let kernel):
                let inputs: [ONNXValue?] = try slots.inputs.indices.map(input)
                results = try kernel(context, inputs)
            }
            if Profiler.enabled {
                Profiler.record(
                    node.opType, name: node.name.isEmpty ? "#\(index)" : node.name,
                    seconds: Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9)
            }
            for (slot, value) in zip(slots.outputs, results) where slot != Graph.StepSlots.omitted {
                scope.values[slot] = value
            }
            for slot in slots.release { scope.values[slot] = nil }
        }
        return try graph.outputs.map { output in
            guard let value = scope.lookup(output.name) else { throw ONNXError.invalidModel("output `\(output.name)` was not computed") }
            return value
        }
    }
}
