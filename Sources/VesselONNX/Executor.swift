#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Dispatch
import VesselTensor

/// Runs graphs. Holds no state between runs, so one loaded model serves many threads at once.
enum Executor {
    /// A scope: this graph's values (feeds, then what its nodes computed), its constants, and
    /// the enclosing scopes' values beneath. The constants are the graph's own initializers,
    /// read where they are rather than copied into `values` on every run.
    final class Scope: @unchecked Sendable {
        var values: [String: ONNXValue]
        let constants: [String: Tensor]
        let parent: Scope?

        init(values: [String: ONNXValue], constants: [String: Tensor] = [:], parent: Scope?) {
            self.values = values
            self.constants = constants
            self.parent = parent
        }

        func lookup(_ name: String) -> ONNXValue? {
            if let value = values[name] { return value }
            if let constant = constants[name] { return .tensor(constant) }
            return parent?.lookup(name)
        }
    }

    static func run(_ graph: Graph, feeds: [String: ONNXValue], outer: Scope?, control: RunControl? = nil) throws -> [ONNXValue] {
        // A feed overrides an initializer of the same name (IR < 4 defaults): feeds are values.
        let scope = Scope(values: feeds, constants: graph.initializers, parent: outer)
        let runSubgraph: @Sendable (Graph, [String: ONNXValue]) throws -> [ONNXValue] = { subgraph, subfeeds in
            try run(subgraph, feeds: subfeeds, outer: scope, control: control)
        }
        for (index, node) in graph.nodes.enumerated() {
            try control?.check()
            let context = KernelContext(node: node, runSubgraph: runSubgraph, control: control)
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
