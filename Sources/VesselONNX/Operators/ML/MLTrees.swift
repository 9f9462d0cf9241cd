#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import VesselTensor

/// Tree ensembles: TreeEnsembleClassifier and TreeEnsembleRegressor (opsets 1 and 3) and
/// TreeEnsemble (opset 5, with set-membership splits). Attributes become a `Forest` once, at
/// load; scores and labels follow onnxruntime's aggregators, binary special cases included.
extension KernelRegistry {
    static func registerMLTrees(_ r: inout KernelRegistry) {
        r.registerPrepared("TreeEnsembleRegressor", domain: mlDomain, treeEnsembleRegressorKernel)

        r.registerPrepared("TreeEnsembleClassifier", domain: mlDomain, treeEnsembleClassifierKernel)

        r.registerPrepared("TreeEnsemble", domain: mlDomain, since: 5, treeEnsembleKernel)
    }

    static func treeEnsembleRegressorKernel(_ node: Node) throws -> KernelFunction {
        let a = node.attributes
        let forest = try Forest(legacy: node, prefix: "target")
        let targets = a.int("n_targets", default: 1)
        guard targets >= 1 else { throw node.invalid("n_targets must be at least 1") }
        let regressor = try ForestRegressor(
            forest: forest, targets: targets, aggregate: Aggregate(name: a.string("aggregate_function", default: "SUM"), node: node),
            base: a.floatsOrTensor("base_values") ?? [], transform: PostTransform(name: a.string("post_transform", default: "NONE"), node: node),
            outputType: .float32, node: node)
        return { c, i in [try regressor.run(c.input(i, 0), c)] }
    }

    static func treeEnsembleClassifierKernel(_ node: Node) throws -> KernelFunction {
        let classifier = try ForestClassifier(node: node)
        return { c, i in try classifier.run(c.input(i, 0), c) }
    }

    static func treeEnsembleKernel(_ node: Node) throws -> KernelFunction {
        let a = node.attributes
        let forest = try Forest(version5: node)
        let targets = try a.required("n_targets", a.int)
        guard targets >= 1, targets <= 1 << 24 else { throw node.invalid("n_targets \(targets) must be 1…16,777,216") }
        let aggregateCodes = ["AVERAGE", "SUM", "MIN", "MAX"]
        let aggregateCode = a.int("aggregate_function", default: 1)
        guard aggregateCodes.indices.contains(aggregateCode) else { throw node.invalid("aggregate_function \(aggregateCode) is not 0…3") }
        let outputType = try a.required("leaf_weights", a.tensor).dtype
        let regressor = try ForestRegressor(
            forest: forest, targets: targets, aggregate: Aggregate(name: aggregateCodes[aggregateCode], node: node), base: [],
            transform: PostTransform(code: a.int("post_transform", default: 0), node: node), outputType: outputType, node: node)
        return { c, i in [try regressor.run(c.input(i, 0), c)] }
    }
}

/// How a regressor combines the trees' leaf values per target.
enum Aggregate: Sendable {
    case sum, average, min, max

    init(name: String, node: Node) throws {
        switch name {
        case "SUM": self = .sum
        case "AVERAGE": self = .average
        case "MIN": self = .min
        case "MAX": self = .max
        default: throw node.invalid("unknown aggregate_function `\(name)` (SUM, AVERAGE, MIN or MAX)")
        }
    }
}

/// A tree ensemble laid out for traversal: each tree depth-first, a branch's false child right
/// after it (no jump on that side) and its true child by index; leaves point into `weights`.
struct Forest: Sendable {
    struct TreeNode: Sendable {
        var threshold: Double
        /// Branch: the feature compared. Leaf: how many weights it has.
        var feature: Int32
        /// Branch: index of the true child. Leaf: index of its first weight.
        var next: Int32
        /// BRANCH_MEMBER: index of its set in `members`.
        var member: Int32
        /// 0 ≤, 1 <, 2 ≥, 3 >, 4 =, 5 ≠, 6 member of a set, 7 leaf.
        var mode: UInt8
        var missingTracksTrue: Bool
    }

    static let leafMode: UInt8 = 7

    struct Weight: Sendable {
        var target: Int
        var value: Double
    }

    var nodes: [TreeNode] = []
    var roots: [Int] = []
    var weights: [Weight] = []
    var members: [Set<Double>] = []
    /// Weights given as float (sums are then rounded to float after every addition, as
    /// onnxruntime sums them) rather than double.
    var floatWeights = true
    var maximumFeature = -1

    /// The attributes of a node in the input lists, before layout.
    private struct Source {
        var feature: Int, threshold: Double, mode: UInt8, missingTrue: Bool, member: Int
        var trueChild: Int?, falseChild: Int?
        var weights: [Weight] = []
    }

    /// TreeEnsembleClassifier/Regressor: nodes named (tree id, node id), children by node id,
    /// leaf weights in `<prefix>_treeids/_nodeids/_ids/_weights` (prefix `class` or `target`).
    init(legacy node: Node, prefix: String) throws {
        let a = node.attributes
        let treeIds = a.ints("nodes_treeids") ?? [], nodeIds = a.ints("nodes_nodeids") ?? []
        let count = treeIds.count
        let features = a.ints("nodes_featureids") ?? [], modes = a.strings("nodes_modes") ?? []
        let trueIds = a.ints("nodes_truenodeids") ?? [], falseIds = a.ints("nodes_falsenodeids") ?? []
        let thresholds = a.floatsOrTensor("nodes_values") ?? []
        let missing = a.ints("nodes_missing_value_tracks_true") ?? []
        for (name, list) in [
            ("nodes_nodeids", nodeIds.count), ("nodes_featureids", features.count), ("nodes_modes", modes.count),
            ("nodes_truenodeids", trueIds.count), ("nodes_falsenodeids", falseIds.count), ("nodes_values", thresholds.count)
        ]
        where list != count {
            throw node.invalid("\(name) has \(list) entries but nodes_treeids has \(count)")
        }
        guard missing.isEmpty || missing.count == count else {
            throw node.invalid("nodes_missing_value_tracks_true has \(missing.count) entries for \(count) nodes")
        }
        var index: [Int64: Int] = [:]
        func key(_ tree: Int, _ id: Int) -> Int64 { Int64(tree) << 32 | Int64(UInt32(truncatingIfNeeded: id)) }
        for k in 0..<count {
            guard index.updateValue(k, forKey: key(treeIds[k], nodeIds[k])) == nil else {
                throw node.invalid("node \(nodeIds[k]) of tree \(treeIds[k]) is listed twice")
            }
        }
        let modeCodes = ["BRANCH_LEQ": UInt8(0), "BRANCH_LT": 1, "BRANCH_GTE": 2, "BRANCH_GT": 3, "BRANCH_EQ": 4, "BRANCH_NEQ": 5, "LEAF": Self.leafMode]
        var sources: [Source] = []
        sources.reserveCapacity(count)
        for k in 0..<count {
            guard let mode = modeCodes[modes[k]] else { throw node.invalid("unknown node mode `\(modes[k])` (node \(nodeIds[k]) of tree \(treeIds[k]))") }
            var source = Source(feature: features[k], threshold: thresholds[k], mode: mode, missingTrue: !missing.isEmpty && missing[k] == 1, member: -1)
            if mode != Self.leafMode {
                for (child, id) in [(\Source.trueChild, trueIds[k]), (\Source.falseChild, falseIds[k])] {
                    guard let target = index[key(treeIds[k], id)] else {
                        throw node.invalid("node \(nodeIds[k]) of tree \(treeIds[k]) points to node \(id), which does not exist")
                    }
                    source[keyPath: child] = target
                }
            }
            sources.append(source)
        }
        let leafTrees = a.ints("\(prefix)_treeids") ?? [], leafNodes = a.ints("\(prefix)_nodeids") ?? []
        let leafTargets = a.ints("\(prefix)_ids") ?? []
        let leafWeights = a.floatsOrTensor("\(prefix)_weights") ?? []
        guard leafTrees.count == leafNodes.count, leafTrees.count == leafTargets.count, leafTrees.count == leafWeights.count else {
            throw node.invalid("\(prefix)_treeids, \(prefix)_nodeids, \(prefix)_ids and \(prefix)_weights differ in length")
        }
        for k in leafTrees.indices {
            guard let target = index[key(leafTrees[k], leafNodes[k])] else {
                throw node.invalid("a weight names node \(leafNodes[k]) of tree \(leafTrees[k]), which does not exist")
            }
            // Old converters attach weights to branches too; onnxruntime ignores those.
            if sources[target].mode == Self.leafMode { sources[target].weights.append(Weight(target: leafTargets[k], value: leafWeights[k])) }
        }
        // A tree starts where the tree id changes; its first node is its root.
        var rootSources: [Int] = []
        for k in 0..<count where k == 0 || treeIds[k] != treeIds[k - 1] { rootSources.append(k) }
        floatWeights = a.tensor("\(prefix)_weights_as_tensor")?.dtype != .float64
        try layOut(sources, roots: rootSources, node: node)
        pack()
    }

    /// TreeEnsemble (opset 5): nodes by index, children by node or leaf index, one weight per
    /// leaf, set-membership splits.
    init(version5 node: Node) throws {
        let a = node.attributes
        let features = try a.required("nodes_featureids", a.ints)
        let count = features.count
        let splits = try a.required("nodes_splits", a.tensor).doubles()
        let modes = try a.required("nodes_modes", a.tensor).integers()
        let trueIds = try a.required("nodes_truenodeids", a.ints), falseIds = try a.required("nodes_falsenodeids", a.ints)
        let trueLeafs = a.ints("nodes_trueleafs") ?? [], falseLeafs = a.ints("nodes_falseleafs") ?? []
        let missing = a.tensor("nodes_missing_value_tracks_true")?.integers() ?? a.ints("nodes_missing_value_tracks_true") ?? []
        let leafTargets = try a.required("leaf_targetids", a.ints)
        let leafWeightTensor = try a.required("leaf_weights", a.tensor)
        let leafWeights = leafWeightTensor.doubles()
        let roots = try a.required("tree_roots", a.ints)
        for (name, list) in [
            ("nodes_splits", splits.count), ("nodes_modes", modes.count), ("nodes_truenodeids", trueIds.count),
            ("nodes_falsenodeids", falseIds.count)
        ] where list != count {
            throw node.invalid("\(name) has \(list) entries but nodes_featureids has \(count)")
        }
        for (name, list) in [("nodes_trueleafs", trueLeafs.count), ("nodes_falseleafs", falseLeafs.count), ("nodes_missing_value_tracks_true", missing.count)]
        where list != 0 && list != count {
            throw node.invalid("\(name) has \(list) entries for \(count) nodes")
        }
        guard leafTargets.count == leafWeights.count else { throw node.invalid("leaf_targetids and leaf_weights differ in length") }
        // BRANCH_MEMBER sets, in node order, separated by NaN.
        var sets: [Set<Double>] = []
        var current: Set<Double> = []
        for value in a.tensor("membership_values")?.doubles() ?? [] {
            if value.isNaN {
                sets.append(current)
                current = []
            } else {
                current.insert(value)
            }
        }
        if !current.isEmpty { sets.append(current) }
        var sources: [Source] = []
        var nextSet = 0
        for k in 0..<count {
            guard (0...6).contains(modes[k]) else { throw node.invalid("node \(k) has mode \(modes[k]); modes are 0…6") }
            var member = -1
            if modes[k] == 6 {
                guard nextSet < sets.count else { throw node.invalid("membership_values has no set for BRANCH_MEMBER node \(k)") }
                member = nextSet
                nextSet += 1
            }
            sources.append(
                Source(
                    feature: features[k], threshold: splits[k], mode: UInt8(modes[k]),
                    missingTrue: !missing.isEmpty && missing[k] == 1, member: member))
        }
        // Leaves become nodes of their own after the branches.
        for k in leafWeights.indices {
            sources.append(
                Source(
                    feature: 0, threshold: 0, mode: Self.leafMode, missingTrue: false, member: -1,
                    weights: [Weight(target: leafTargets[k], value: leafWeights[k])]))
        }
        for k in 0..<count {
            for (child, id, isLeaf) in [
                (\Source.trueChild, trueIds[k], !trueLeafs.isEmpty && trueLeafs[k] == 1),
                (\Source.falseChild, falseIds[k], !falseLeafs.isEmpty && falseLeafs[k] == 1)
            ] {
                let limit = isLeaf ? leafWeights.count : count
                guard id >= 0, id < limit else { throw node.invalid("node \(k) points to \(isLeaf ? "leaf" : "node") \(id), which does not exist") }
                sources[k][keyPath: child] = isLeaf ? count + id : id
            }
        }
        for root in roots where root < 0 || root >= count { throw node.invalid("tree root \(root) is not a node") }
        guard !roots.isEmpty else { throw node.invalid("tree_roots is empty: the ensemble has no trees") }
        if let target = leafTargets.first(where: { !(0...Self.largestIndex).contains($0) }) {
            throw node.invalid("leaf target id \(target) is not a target index")
        }
        members = sets
        floatWeights = leafWeightTensor.dtype != .float64
        try layOut(sources, roots: roots, node: node)
        pack()
    }

    /// Places each tree depth-first: a node, its false subtree, then its true subtree.
    /// Feature and target indices are kept as Int32 in the packed nodes.
    static let largestIndex = Int(Int32.max)

    private mutating func layOut(_ sources: [Source], roots rootSources: [Int], node: Node) throws {
        if let bad = sources.first(where: { $0.mode != Self.leafMode && !(0...Self.largestIndex).contains($0.feature) }) {
            throw node.invalid("feature id \(bad.feature) is not a feature index")
        }
        if let bad = sources.lazy.flatMap(\.weights).first(where: { !(0...Self.largestIndex).contains($0.target) }) {
            throw node.invalid("target id \(bad.target) is not a target index")
        }
        var placed = [Bool](repeating: false, count: sources.count)
        nodes.reserveCapacity(sources.count)
        for root in rootSources {
            roots.append(nodes.count)
            // (source, parent position, whether this is the parent's true child)
            var stack: [(Int, Int, Bool)] = [(root, -1, false)]
            while let (source, parent, isTrue) = stack.popLast() {
                guard !placed[source] else { throw node.invalid("the trees are not trees: node \(source) (in list order) is reached twice") }
                placed[source] = true
                let position = nodes.count
                if isTrue { nodes[parent].next = Int32(position) }
                let s = sources[source]
                if s.mode == Self.leafMode {
                    nodes.append(
                        TreeNode(
                            threshold: 0, feature: Int32(s.weights.count), next: Int32(weights.count), member: -1,
                            mode: Self.leafMode, missingTracksTrue: false))
                    weights += s.weights
                    continue
                }
                guard s.feature >= 0 else { throw node.invalid("node \(source) (in list order) compares feature \(s.feature)") }
                maximumFeature = max(maximumFeature, s.feature)
                nodes.append(
                    TreeNode(
                        threshold: s.threshold, feature: Int32(s.feature), next: -1, member: Int32(s.member),
                        mode: s.mode, missingTracksTrue: s.missingTrue))
                stack.append((s.trueChild!, position, true))
                stack.append((s.falseChild!, position, false))
            }
        }
    }

    /// Sums (or minima, maxima) of the leaf weights every tree gives every row: `values` and
    /// `scored` are rows × targets. Computed in float unless the model gave double weights.
    func accumulate(_ x: Tensor, _ c: KernelContext, targets: Int, aggregate: Aggregate) throws -> (rows: Int, values: [Double], scored: [Bool]) {
        let (rows, features) = try x.mlRows(c)
        guard x.dtype != .string, x.dtype != .bool else { throw c.invalid("takes numeric input, got \(x.dtype.rawValue)") }
        guard maximumFeature < features else {
            throw c.invalid("the trees read feature \(maximumFeature) but the input has \(features) features")
        }
        switch layout {
        case .float(let layout):
            let data = x.dtype == .float32 ? x.scalars(as: Float.self) : x.doubles().map { Float($0) }
            let (values, scored) = layout.accumulate(data, rows: rows, features: features, targets: targets, aggregate: aggregate)
            return (rows, values.map(Double.init), scored)
        case .double(let layout):
            let (values, scored) = layout.accumulate(x.doubles(), rows: rows, features: features, targets: targets, aggregate: aggregate)
            return (rows, values, scored)
        }
    }

    /// The traversal-ready copy, in the precision of the model's weights; made once, at load.
    private(set) var layout: Layout = .float(ForestLayout<Float>(nodes: [], roots: []))

    /// The smallest and largest target (or class) a leaf weight names, for the operators' checks.
    private(set) var targetRange: ClosedRange<Int>?

    /// Builds the layout, then drops the double-precision node, weight and set tables it was
    /// built from: runs read only the layout, so the forest is not held in memory twice.
    private mutating func pack() {
        layout = floatWeights ? .float(ForestLayout<Float>(self)) : .double(ForestLayout<Double>(self))
        let targets = weights.map(\.target)
        if let low = targets.min(), let high = targets.max() { targetRange = low...high }
        nodes = []
        weights = []
        members = []
    }

    /// The error for a leaf weight outside 0..<count, if any.
    func targetProblem(count: Int, what: String) -> String? {
        guard let range = targetRange, range.lowerBound < 0 || range.upperBound >= count else { return nil }
        return "a leaf weight names \(what) \(range.lowerBound < 0 ? range.lowerBound : range.upperBound) of \(count)"
    }

    enum Layout: Sendable {
        case float(ForestLayout<Float>)
        case double(ForestLayout<Double>)
    }
}

/// A per-target running score that knows whether any tree gave it a value (onnxruntime's
/// `ScoreValue`): classes no leaf voted for stay "unscored".
struct Scores {
    var values: [Double]
    var scored: [Bool]
    let roundToFloat: Bool

    init(values: ArraySlice<Double>, scored: ArraySlice<Bool>, roundToFloat: Bool) {
        self.values = Array(values)
        self.scored = Array(scored)
        self.roundToFloat = roundToFloat
    }

    @inline(__always) func round(_ x: Double) -> Double { roundToFloat ? Double(Float(x)) : x }
}

/// TreeEnsembleRegressor and TreeEnsemble: per-target sums (or averages, minima, maxima) plus
/// base values, then the post-transform.
struct ForestRegressor: Sendable {
    let forest: Forest
    let targets: Int
    let aggregate: Aggregate
    let base: [Double]
    let transform: PostTransform
    let outputType: DType

    init(forest: Forest, targets: Int, aggregate: Aggregate, base: [Double], transform: PostTransform, outputType: DType, node: Node) throws {
        if let problem = forest.targetProblem(count: targets, what: "target") { throw node.invalid(problem) }
        guard [.float32, .float64, .float16].contains(outputType) else { throw node.invalid("leaf weights must be float, double or float16") }
        self.forest = forest
        self.targets = targets
        self.aggregate = aggregate
        self.base = base
        self.transform = transform
        self.outputType = outputType
    }

    func run(_ x: Tensor, _ c: KernelContext) throws -> Tensor {
        let (rows, values, scored) = try forest.accumulate(x, c, targets: targets, aggregate: aggregate)
        let trees = Double(forest.roots.count)
        var output = [Float](repeating: 0, count: rows * targets)
        var doubles = [Double](repeating: 0, count: rows * targets)
        for row in 0..<rows {
            let range = row * targets..<(row + 1) * targets
            let s = Scores(values: values[range], scored: scored[range], roundToFloat: forest.floatWeights)
            var scores = [Float](repeating: 0, count: targets)
            for t in 0..<targets {
                let origin: Double
                if targets == 1 { origin = base.count == 1 ? base[0] : 0 } else { origin = base.count == targets ? base[t] : 0 }
                var value = s.scored[t] ? s.values[t] : 0
                if aggregate == .average { value = s.round(value / trees) }
                value = s.round(value + origin)
                doubles[row * targets + t] = value
                scores[t] = Float(value)
            }
            scores.withUnsafeMutableBufferPointer { scores in
                output.withUnsafeMutableBufferPointer { out in transform.write(scores, second: nil, to: out.baseAddress! + row * targets) }
            }
        }
        if outputType == .float64, transform == .none { return Tensor(doubles, shape: [rows, targets]) }
        let tensor = Tensor(output, shape: [rows, targets])
        return outputType == .float32 ? tensor : Cast.convert(tensor, to: outputType)
    }
}

/// TreeEnsembleClassifier: per-class sums of leaf weights plus base values, the winning
/// label, and onnxruntime's handling of binary models that store one class's score only.
struct ForestClassifier: Sendable {
    let forest: Forest
    let labels: ClassLabels
    let classes: Int
    let base: [Double]
    let transform: PostTransform
    /// Two labels but weights for one class only: the other class's score is derived.
    let binaryCase: Bool
    let weightsArePositive: Bool

    init(node: Node) throws {
        let a = node.attributes
        forest = try Forest(legacy: node, prefix: "class")
        labels = try ClassLabels(node: node, integers: "classlabels_int64s")
        let classes = labels.count
        self.classes = classes
        guard classes >= 2 else { throw node.invalid("needs at least two class labels (classlabels_strings or classlabels_int64s)") }
        if let problem = forest.targetProblem(count: classes, what: "class") { throw node.invalid(problem) }
        let base = a.floatsOrTensor("base_values") ?? []
        self.base = base
        transform = try PostTransform(name: a.string("post_transform", default: "NONE"), node: node)
        let classIds = Set(a.ints("class_ids") ?? [])
        binaryCase = classes == 2 && classIds.count == 1
        weightsArePositive = (a.floatsOrTensor("class_weights") ?? []).allSatisfy { $0 >= 0 }
    }

    func run(_ x: Tensor, _ c: KernelContext) throws -> [Tensor] {
        let (rows, values, scored) = try forest.accumulate(x, c, targets: classes, aggregate: .sum)
        var output = [Float](repeating: 0, count: rows * classes)
        // Integer labels may come out as the literal 0/1 of the binary rule below; string labels
        // are always chosen by index.
        var chosen = [Int](repeating: 0, count: rows)
        output.withUnsafeMutableBufferPointer { output in
            chosen.withUnsafeMutableBufferPointer { chosen in
                // Rows are independent: large batches finish on every thread.
                Parallel.chunks(rows, minimum: 256) { range in
                    for row in range { finish(row, values, scored, output.baseAddress!, chosen.baseAddress!) }
                }
            }
        }
        return [labels.tensor(chosen, shape: [rows]), Tensor(output, shape: [rows, classes])]
    }

    /// Base values, the label and the transformed scores of one row.
    private func finish(_ row: Int, _ values: [Double], _ scored: [Bool], _ output: UnsafeMutablePointer<Float>, _ chosen: UnsafeMutablePointer<Int>) {
        let range = row * classes..<(row + 1) * classes
        var s = Scores(values: values[range], scored: scored[range], roundToFloat: forest.floatWeights)
        var second: SecondClass?
        var scoreCount = classes
        if classes > 2 {
            for k in base.indices where k < classes {
                s.values[k] = s.scored[k] ? s.round(s.values[k] + base[k]) : base[k]
                s.scored[k] = true
            }
            var best = -1
            for k in 0..<classes where s.scored[k] && (best == -1 || s.values[k] > s.values[best]) { best = k }
            chosen[row] = max(best, 0)
        } else {
            var secondCode = -1
            if base.count == 2 {
                if s.scored[1] {
                    // As onnxruntime: base_values[0] is assumed to equal base_values[1].
                    s.values[1] = s.round(base[1] + s.values[0])
                    s.values[0] = -s.values[1]
                } else {
                    s.values[1] = s.round(s.values[1] + base[1])
                    s.values[0] = s.round(s.values[0] + base[0])
                }
            } else if base.count == 1 {
                s.values[0] = s.round(s.values[0] + base[0])
                if !s.scored[1] { scoreCount = 1 }
            } else if base.isEmpty {
                secondCode = 3
                if !s.scored[1] { scoreCount = 1 }
            }
            let positive = scoreCount == 2 && s.scored[1] ? s.values[1] : (s.scored[0] ? s.values[0] : 0)
            if binaryCase {
                if weightsArePositive {
                    secondCode = positive > 0.5 ? 0 : 1
                } else {
                    secondCode = positive > 0 ? 2 : 3
                }
                chosen[row] = secondCode == 0 || secondCode == 2 ? 1 : 0
            } else {
                chosen[row] = positive > 0 ? 1 : 0
            }
            switch secondCode {
            case 0, 1: second = .complement
            case 2, 3: second = .negated
            default: second = nil
            }
        }
        var scores = (0..<scoreCount).map { s.scored[$0] ? Float(s.values[$0]) : 0 }
        scores.withUnsafeMutableBufferPointer { scores in
            transform.write(scores, second: second, to: output + row * classes)
        }
    }
}
