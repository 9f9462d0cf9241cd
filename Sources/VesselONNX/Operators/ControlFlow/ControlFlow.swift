import VesselTensor

extension KernelRegistry {
    static func registerControlFlow(_ r: inout KernelRegistry) {
        r.registerValues("If", ifKernel)
        // Loop-carried values may be sequences (a body that appends to a list); scan outputs
        // are tensors, stacked along a new first axis.
        r.registerValues("Loop", loopKernel)
        // Scan (opset 9+): runs `body` once per slice of the scan inputs along their scan axes,
        // carrying state values from step to step and stacking each step's scan outputs.
        r.register("Scan", since: 9, scanKernel)
    }

    static func ifKernel(_ c: KernelContext, _ i: [ONNXValue?]) throws -> [ONNXValue] {
        guard let condition = i.first??.tensor else { throw c.invalid("the condition must be a tensor") }
        guard condition.count >= 1 else { throw c.invalid("empty condition") }
        let branch = condition.doubles()[0] != 0 ? "then_branch" : "else_branch"
        let graph = try c.attributes.required(branch, c.attributes.graph)
        return try c.subgraph(graph, values: [:])
    }

    static func loopKernel(_ c: KernelContext, _ i: [ONNXValue?]) throws -> [ONNXValue] {
        let body = try c.attributes.required("body", c.attributes.graph)
        if i.count > 0, let trips = i[0]?.tensor, trips.count != 1 { throw c.invalid("the trip count M must hold one value, not \(trips.shape)") }
        if i.count > 1, let cond = i[1]?.tensor, cond.count != 1 { throw c.invalid("the condition must hold one value, not \(cond.shape)") }
        let maxTrips = i.count > 0 ? i[0]?.tensor.map { $0.integers()[0] } : nil
        var condition = i.count > 1 ? i[1]?.tensor.map { $0.doubles()[0] != 0 } ?? true : true
        guard !body.inputs.isEmpty else { throw c.invalid("the body must take the iteration number, the condition and the carried values") }
        var carried = i.dropFirst(2).map { $0 }
        let carriedCount = carried.count
        let scanCount = body.outputs.count - 1 - carriedCount
        var scans = [[Tensor]](repeating: [], count: Swift.max(scanCount, 0))
        var trip = 0
        while condition, maxTrips.map({ trip < $0 }) ?? true {
            // A trip count is data: only the run's deadline bounds it.
            try c.checkStop()
            var feeds: [String: ONNXValue] = [:]
            feeds[body.inputs[0].name] = .tensor(Tensor(scalar: Int64(trip)))
            if body.inputs.count > 1 { feeds[body.inputs[1].name] = .tensor(Tensor(scalar: condition)) }
            for (index, value) in carried.enumerated() where index + 2 < body.inputs.count {
                if let value { feeds[body.inputs[index + 2].name] = value }
            }
            let results = try c.subgraph(body, values: feeds)
            guard results.count == 1 + carriedCount + scans.count, let next = results[0].tensor else {
                throw c.invalid("the body must give a condition tensor, \(carriedCount) carried values and the scan outputs")
            }
            condition = next.doubles().first.map { $0 != 0 } ?? false
            carried = Array(results[1..<(1 + carriedCount)])
            for k in 0..<scans.count {
                guard let part = results[1 + carriedCount + k].tensor else { throw c.invalid("scan output \(k) must be a tensor") }
                scans[k].append(part)
            }
            trip += 1
            if trip > 10_000_000 { throw c.invalid("more than 10 million iterations") }
        }
        let stacked = scans.map { parts -> Tensor in
            guard let first = parts.first else { return Tensor(zeros: .float32, shape: [0]) }
            return Tensor.concatenate(parts.map { $0.reshaped([1] + $0.shape) }, axis: 0).reshaped([parts.count] + first.shape)
        }
        return carried.map { $0 ?? .tensor(Tensor(zeros: .float32, shape: [0])) } + stacked.map { .tensor($0) }
    }

    static func scanKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let body = try c.attributes.required("body", c.attributes.graph)
        let scanCount = try c.attributes.required("num_scan_inputs", c.attributes.int)
        let inputs = i.map { $0 }
        guard scanCount >= 1, scanCount <= inputs.count else { throw c.invalid("num_scan_inputs \(scanCount) does not fit \(inputs.count) inputs") }
        let stateCount = inputs.count - scanCount
        guard body.inputs.count == inputs.count else { throw c.invalid("the body takes \(body.inputs.count) inputs, the node gives \(inputs.count)") }
        let scanOutputCount = body.outputs.count - stateCount
        guard scanOutputCount >= 0 else { throw c.invalid("the body gives fewer outputs than there are state values") }
        var states = try (0..<stateCount).map { try c.input(inputs, $0) }
        let scans = try (0..<scanCount).map { try c.input(inputs, stateCount + $0) }
        if let scalar = scans.firstIndex(where: { $0.rank == 0 }) { throw c.invalid("scan input \(scalar) is a scalar; it needs an axis to scan") }
        let inputAxes = try (c.attributes.ints("scan_input_axes") ?? Array(repeating: 0, count: scanCount)).enumerated().map {
            try normalizeAxis($0.element, rank: scans[$0.offset].rank, c)
        }
        let inputDirections = c.attributes.ints("scan_input_directions") ?? Array(repeating: 0, count: scanCount)
        let outputAxesList = c.attributes.ints("scan_output_axes") ?? Array(repeating: 0, count: scanOutputCount)
        let outputDirections = c.attributes.ints("scan_output_directions") ?? Array(repeating: 0, count: scanOutputCount)
        guard inputAxes.count == scanCount, inputDirections.count == scanCount,
            outputAxesList.count == scanOutputCount, outputDirections.count == scanOutputCount
        else {
            throw c.invalid("scan_input_*/scan_output_* attributes must have one entry per scan input/output")
        }
        let length = scans[0].shape[inputAxes[0]]
        for (k, scan) in scans.enumerated() where scan.shape[inputAxes[k]] != length {
            throw c.invalid("scan input \(k) has \(scan.shape[inputAxes[k]]) steps, scan input 0 has \(length)")
        }
        var outputs = [[Tensor]](repeating: [], count: scanOutputCount)
        for step in 0..<length {
            try c.checkStop()
            var feeds: [String: Tensor] = [:]
            for (k, state) in states.enumerated() { feeds[body.inputs[k].name] = state }
            for (k, scan) in scans.enumerated() {
                let axis = inputAxes[k]
                let index = inputDirections[k] == 1 ? length - 1 - step : step
                var shape = scan.shape
                shape.remove(at: axis)
                feeds[body.inputs[stateCount + k].name] = slice(scan, axis: axis, start: index, count: 1).reshaped(shape)
            }
            let results = try c.subgraph(body, feeds)
            states = Array(results[0..<stateCount])
            for k in 0..<scanOutputCount { outputs[k].append(results[stateCount + k]) }
        }
        let stacked = try outputs.enumerated().map { k, parts -> Tensor in
            let ordered = outputDirections[k] == 1 ? Array(parts.reversed()) : parts
            guard let first = ordered.first else {
                // No steps: an empty stack of the body's declared element type.
                return Tensor(zeros: body.outputs[stateCount + k].dtype ?? .float32, shape: [0])
            }
            let axis = try normalizeAxis(outputAxesList[k], rank: first.rank + 1, c)
            let expanded = ordered.map { part -> Tensor in
                var shape = part.shape
                shape.insert(1, at: axis)
                return part.reshaped(shape)
            }
            return Tensor.concatenate(expanded, axis: axis)
        }
        return states + stacked
    }
}
