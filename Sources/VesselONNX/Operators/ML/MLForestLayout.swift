#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import VesselTensor

/// A `Forest` packed for traversal: 16-byte nodes (for float models) in one array, weights split
/// into targets and values, trees cut into fixed groups of about `groupNodes` nodes each. A group
/// is summed in tree order and groups are added in order, so results do not depend on the thread
/// count, and a thread walking one group over a block of rows keeps its nodes in cache.
struct ForestLayout<T: BinaryFloatingPoint & Sendable>: Sendable {
    struct Node: Sendable {
        var threshold: T
        var feature: Int32
        var next: Int32
        var mode: UInt8
        var missingTracksTrue: Bool
    }

    let nodes: [Node]
    let roots: [Int]
    let weightTargets: [Int32]
    let weightValues: [T]
    /// BRANCH_MEMBER sets by node position.
    let members: [Int: Set<T>]
    /// Every branch is BRANCH_LEQ without missing-value tracking: the tight loop applies.
    let simple: Bool
    let groups: [Range<Int>]
    static var groupNodes: Int { 16_384 }

    /// An empty layout (a placeholder until the forest is packed).
    init(nodes: [Node], roots: [Int]) {
        self.nodes = nodes
        self.roots = roots
        weightTargets = []
        weightValues = []
        members = [:]
        simple = true
        groups = []
    }

    init(_ forest: Forest) {
        nodes = forest.nodes.map {
            Node(threshold: T($0.threshold), feature: $0.feature, next: $0.next, mode: $0.mode, missingTracksTrue: $0.missingTracksTrue)
        }
        roots = forest.roots
        weightTargets = forest.weights.map { Int32($0.target) }
        weightValues = forest.weights.map { T($0.value) }
        var members: [Int: Set<T>] = [:]
        for (position, node) in forest.nodes.enumerated() where node.mode == 6 {
            members[position] = Set(forest.members[Int(node.member)].map { T($0) })
        }
        self.members = members
        simple = forest.nodes.allSatisfy { $0.mode == Forest.leafMode || ($0.mode == 0 && !$0.missingTracksTrue) }
        // Trees are laid out one after another, so a tree's size is the gap to the next root.
        var groups: [Range<Int>] = []
        var start = 0, size = 0
        for (k, root) in roots.enumerated() {
            let treeSize = (k + 1 < roots.count ? roots[k + 1] : forest.nodes.count) - root
            if size > 0, size + treeSize > Self.groupNodes {
                groups.append(start..<k)
                start = k
                size = 0
            }
            size += treeSize
        }
        if start < roots.count { groups.append(start..<roots.count) }
        self.groups = groups
    }

    @inline(__always)
    func leaf(_ root: Int, _ x: UnsafePointer<T>, _ nodes: UnsafePointer<Node>) -> Int {
        var k = root
        if simple {
            var n = nodes[k]
            while n.mode != Forest.leafMode {
                k = x[Int(n.feature)] <= n.threshold ? Int(n.next) : k + 1
                n = nodes[k]
            }
            return k
        }
        while true {
            let n = nodes[k]
            let v = x[Int(n.feature)]
            let goesTrue: Bool
            switch n.mode {
            case 0: goesTrue = v <= n.threshold
            case 1: goesTrue = v < n.threshold
            case 2: goesTrue = v >= n.threshold
            case 3: goesTrue = v > n.threshold
            case 4: goesTrue = v == n.threshold
            case 5: goesTrue = v != n.threshold
            case 6: goesTrue = members[k]?.contains(v) ?? false
            default: return k
            }
            k = goesTrue || (n.missingTracksTrue && v.isNaN) ? Int(n.next) : k + 1
        }
    }

    func accumulate(_ x: [T], rows: Int, features: Int, targets: Int, aggregate: Aggregate) -> (values: [T], scored: [Bool]) {
        let block = 256
        let blocks = (rows + block - 1) / block
        let groupCount = groups.count
        let size = rows * targets
        // One partial result per group, added in group order afterwards.
        var values = [T](repeating: 0, count: size * groupCount)
        var scored = [Bool](repeating: false, count: size * groupCount)
        x.withUnsafeBufferPointer { x in
            nodes.withUnsafeBufferPointer { nodes in
                weightTargets.withUnsafeBufferPointer { targetsOf in
                    weightValues.withUnsafeBufferPointer { weights in
                        values.withUnsafeMutableBufferPointer { values in
                            scored.withUnsafeMutableBufferPointer { scored in
                                let valuesBase = values.baseAddress!, scoredBase = scored.baseAddress!
                                // Tasks run group-major: each thread takes whole groups where it can.
                                let task = { (t: Int) in
                                    let group = t / blocks, first = (t % blocks) * block
                                    let out = valuesBase + group * size, seen = scoredBase + group * size
                                    for treeIndex in groups[group] {
                                        let root = roots[treeIndex]
                                        for row in first..<min(first + block, rows) {
                                            let leafNode = nodes[leaf(root, x.baseAddress! + row * features, nodes.baseAddress!)]
                                            var w = Int(leafNode.next)
                                            let end = w + Int(leafNode.feature)
                                            while w < end {
                                                let slot = row * targets + (targets == 1 ? 0 : Int(targetsOf[w]))
                                                let value = weights[w]
                                                switch aggregate {
                                                case .sum, .average: out[slot] += value
                                                case .min: out[slot] = seen[slot] ? Swift.min(out[slot], value) : value
                                                case .max: out[slot] = seen[slot] ? Swift.max(out[slot], value) : value
                                                }
                                                seen[slot] = true
                                                w += 1
                                            }
                                        }
                                    }
                                }
                                let taskCount = groupCount * blocks
                                if rows * roots.count < 4_096 {
                                    for t in 0..<taskCount { task(t) }
                                } else {
                                    Parallel.chunks(taskCount, minimum: 1) { range in for t in range { task(t) } }
                                }
                            }
                        }
                    }
                }
            }
        }
        guard groupCount > 1 else { return (values, scored) }
        var total = Array(values[0..<size]), seen = Array(scored[0..<size])
        for group in 1..<groupCount {
            for slot in 0..<size where scored[group * size + slot] {
                let value = values[group * size + slot]
                switch aggregate {
                case .sum, .average: total[slot] += value
                case .min: total[slot] = seen[slot] ? Swift.min(total[slot], value) : value
                case .max: total[slot] = seen[slot] ? Swift.max(total[slot], value) : value
                }
                seen[slot] = true
            }
        }
        return (total, seen)
    }
}
