#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Dispatch
import VesselTensor

/// Runs graphs. Holds no state between runs, so one loaded model serves many threads at once.
enum Executor {
    /// A scope: this graph's values, with the enclosing scopes' values visible beneath.
    final class Scope: @unchecked Sendable {
        var values: [String: ONNXValue]
        let parent: Scope?

        init(values: [String: ONNXValue], parent: Scope?) {
            self.values = values
            self.parent = parent
        }

        func lookup(_ name: String) -> ONNXValue? {
            values[name] ?? parent?.lookup(name)
        }
    }

    static func run(_ graph: Graph, feeds: [String: ONNXValue], outer: Scope?, control: RunControl? = nil) throws -> [ONNXValue] {
        var initial: [String: ONNXValue] = [:]
        initial.reserveCapacity(graph.initializers.count + feeds.count)
        for (name, tensor) in graph.initializers { initial[name] = .tensor(tensor) }
        for (name, value) in feeds { initial[name] = value }
        let scope = Scope(values: initial, parent: outer)
        for (index, node) in graph.nodes.enumerated() {
            try control?.check()
            let context = KernelContext(
                node: node,
                runSubgraph: { subgraph, subfeeds in
                    try run(subgraph, feeds: subfeeds, outer: scope, control: control)
                }, control: control)
            let started = Profiler.enabled ? DispatchTime.now().uptimeNanoseconds : 0
            let results: [ONNXValue]
            switch node.kernel {
            case .tensors(let kernel):
                let inputs: [Tensor?] = try node.inputs.map { name in
                    if name.isEmpty { return nil }
                    guard let value = scope.lookup(name) else {
                        throw ONNXError.invalidNode(node: node.name, opType: node.opType, reason: "input `\(name)` has no value")
                    }
                    guard let tensor = value.tensor else {
                        throw ONNXError.invalidNode(
                            node: node.name, opType: node.opType,
                            reason: "input `\(name)` is a \(value.typeDescription); this operator takes tensors")
                    }
                    return tensor
                }
                if !node.minimumRanks.isEmpty { try InputRanks.check(node, inputs) }
                if !node.inputTypes.isEmpty { try node.inputTypes.check(node, inputs) }
                results = try kernel(context, inputs).map { .tensor($0) }
            case .values(let kernel):
                let inputs: [ONNXValue?] = try node.inputs.map { name in
                    if name.isEmpty { return nil }
                    guard let value = scope.lookup(name) else {
                        throw ONNXError.invalidNode(node: node.name, opType: node.opType, reason: "input `\(name)` has no value")
                    }
                    return value
                }
                results = try kernel(context, inputs)
            }
            if Profiler.enabled {
                Profiler.record(
                    node.opType, name: node.name.isEmpty ? "#\(index)" : node.name,
                    seconds: Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9)
            }
            for (output, value) in zip(node.outputs, results) where !output.isEmpty {
                scope.values[output] = value
            }
            for name in graph.releaseAfter[index] { scope.values[name] = nil }
        }
        return try graph.outputs.map { output in
            guard let value = scope.lookup(output.name) else { throw ONNXError.invalidModel("output `\(output.name)` was not computed") }
            return value
        }
    }
}
