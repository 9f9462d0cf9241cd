import VesselTensor

extension KernelRegistry {
    static func registerControlFlow(_ r: inout KernelRegistry) {
        r.register("If") { c, i in
            let condition = try c.input(i, 0)
            guard condition.count >= 1 else { throw c.invalid("empty condition") }
            let branch = condition.doubles()[0] != 0 ? "then_branch" : "else_branch"
            let graph = try c.attributes.required(branch, c.attributes.graph)
            return try c.subgraph(graph, [:])
        }
        r.register("Loop") { c, i in
            let body = try c.attributes.required("body", c.attributes.graph)
            let maxTrips = i.count > 0 ? i[0].map { Int($0.integers()[0]) } : nil
            var condition = i.count > 1 ? i[1].map { $0.doubles()[0] != 0 } ?? true : true
            var carried = i.dropFirst(2).map { $0 }
            let carriedCount = carried.count
            let scanCount = body.outputs.count - 1 - carriedCount
            var scans = [[Tensor]](repeating: [], count: Swift.max(scanCount, 0))
            var trip = 0
            while condition, maxTrips.map({ trip < $0 }) ?? true {
                var feeds: [String: Tensor] = [:]
                feeds[body.inputs[0].name] = Tensor(scalar: Int64(trip))
                if body.inputs.count > 1 { feeds[body.inputs[1].name] = Tensor(scalar: condition) }
                for (index, value) in carried.enumerated() where index + 2 < body.inputs.count {
                    if let value { feeds[body.inputs[index + 2].name] = value }
                }
                let results = try c.subgraph(body, feeds)
                condition = results[0].doubles().first.map { $0 != 0 } ?? false
                carried = Array(results[1..<(1 + carriedCount)])
                for k in 0..<scans.count { scans[k].append(results[1 + carriedCount + k]) }
                trip += 1
                if trip > 10_000_000 { throw c.invalid("more than 10 million iterations") }
            }
            let stacked = scans.map { parts -> Tensor in
                guard let first = parts.first else { return Tensor(zeros: .float32, shape: [0]) }
                return Tensor.concatenate(parts.map { $0.reshaped([1] + $0.shape) }, axis: 0).reshaped([parts.count] + first.shape)
            }
            return carried.map { $0 ?? Tensor(zeros: .float32, shape: [0]) } + stacked
        }
    }
}
