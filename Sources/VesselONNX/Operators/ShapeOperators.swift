import VesselTensor

extension KernelRegistry {
    static func registerShapeOperators(_ r: inout KernelRegistry) {
        // Tensors, and since opset 14 sequences too.
        r.registerValues("Identity") { c, i in
            guard let value = i.first ?? nil else { throw c.invalid("missing required input 0") }
            return [value]
        }
        r.register("Dropout") { c, i in
            // Inference: the input passes through; the mask (if asked for) is all true.
            let x = try c.input(i, 0)
            if i.count > 2, let training = i[2], training.scalars(as: Bool.self).first == true {
                throw c.invalid("training mode is not supported")
            }
            return c.node.outputs.count > 1 ? [x, Tensor([Bool](repeating: true, count: x.count), shape: x.shape)] : [x]
        }
        r.register("Shape") { c, i in
            let x = try c.input(i, 0)
            let rank = x.rank
            func clamp(_ value: Int) -> Int { Swift.min(Swift.max(value < 0 ? value + rank : value, 0), rank) }
            let start = clamp(c.attributes.int("start", default: 0))
            let end = clamp(c.attributes.int("end", default: rank))
            let dims = start < end ? Array(x.shape[start..<end]) : []
            return [Tensor(dims.map { Int64($0) }, shape: [dims.count])]
        }
        r.register("Size") { c, i in [Tensor(scalar: Int64(try c.input(i, 0).count))] }
        r.register("Constant") { c, _ in
            let a = c.attributes
            if let tensor = a.tensor("value") { return [tensor] }
            if let value = a.float("value_float"), case .float? = a.values["value_float"] { return [Tensor(scalar: value)] }
            if let values = a.floats("value_floats") { return [Tensor(values, shape: [values.count])] }
            if let value = a.int("value_int") { return [Tensor(scalar: Int64(value))] }
            if let values = a.ints("value_ints") { return [Tensor(values.map { Int64($0) }, shape: [values.count])] }
            if let value = a.string("value_string") { return [Tensor(strings: [value], shape: [])] }
            if let values = a.strings("value_strings") { return [Tensor(strings: values, shape: [values.count])] }
            throw c.invalid("no value attribute (sparse constants are not supported)")
        }
        r.register("ConstantOfShape", since: 9) { c, i in
            let shape = try c.input(i, 0).integers()
            let value = c.attributes.tensor("value") ?? Tensor(scalar: Float(0))
            try c.checkAllocation(value.dtype, shape)
            let count = Tensor.count(of: shape)
            return [value.take([Int](repeating: 0, count: count), shape: shape)]
        }
        r.register("Reshape", since: 5) { c, i in
            let x = try c.input(i, 0)
            let requested = try c.input(i, 1).integers()
            let allowZero = c.attributes.int("allowzero", default: 0) == 1
            var shape = requested.enumerated().map { index, size in
                size == 0 && !allowZero ? (index < x.rank ? x.shape[index] : 0) : size
            }
            guard shape.filter({ $0 == -1 }).count <= 1, shape.allSatisfy({ $0 >= -1 }) else {
                throw c.invalid("shape \(requested) may hold one -1 and no other negative size")
            }
            if let inferred = shape.firstIndex(of: -1) {
                var known = shape
                known.remove(at: inferred)
                guard let knownCount = Tensor.checkedCount(of: known), knownCount > 0, x.count % knownCount == 0 else {
                    throw c.invalid("cannot reshape \(x.shape) to \(requested)")
                }
                shape[inferred] = x.count / knownCount
            }
            // Checked, not merely compared: [0, 2^40, 2^40] has as many elements as an empty
            // input, but its strides overflow.
            guard Tensor.checkedCount(of: shape) == x.count else {
                throw c.invalid("cannot reshape \(x.shape) (\(x.count) elements) to \(requested)")
            }
            return [x.reshaped(shape)]
        }
        r.register("Flatten") { c, i in
            let x = try c.input(i, 0)
            // Flatten's axis may equal the rank (everything in the outer dimension).
            let raw = c.attributes.int("axis", default: 1)
            let axis = raw < 0 ? raw + x.rank : raw
            guard axis >= 0, axis <= x.rank else { throw c.invalid("axis \(raw) is out of range for rank \(x.rank)") }
            let outer = x.shape[..<axis].reduce(1, *)
            return [x.reshaped([outer, x.count / Swift.max(outer, 1)])]
        }
        r.register("Squeeze") { c, i in
            let x = try c.input(i, 0)
            let axesList = c.opset >= 13 ? (i.count > 1 ? i[1]?.integers() : nil) : c.attributes.ints("axes")
            let axes = try Set((axesList ?? x.shape.indices.filter { x.shape[$0] == 1 }).map { try normalizeAxis($0, rank: x.rank, c) })
            for axis in axes where x.shape[axis] != 1 { throw c.invalid("cannot squeeze axis \(axis) of size \(x.shape[axis])") }
            return [x.reshaped(x.shape.enumerated().filter { !axes.contains($0.offset) }.map(\.element))]
        }
        r.register("Unsqueeze") { c, i in
            let x = try c.input(i, 0)
            let axesList = c.opset >= 13 ? try c.input(i, 1).integers() : try c.attributes.required("axes", c.attributes.ints)
            let rank = x.rank + axesList.count
            let axes = try Set(axesList.map { try normalizeAxis($0, rank: rank, c) })
            guard axes.count == axesList.count else { throw c.invalid("repeated axes \(axesList)") }
            var shape: [Int] = []
            var source = x.shape.makeIterator()
            for axis in 0..<rank { shape.append(axes.contains(axis) ? 1 : source.next()!) }
            return [x.reshaped(shape)]
        }
        r.register("Transpose") { c, i in
            let x = try c.input(i, 0)
            let perm = c.attributes.ints("perm") ?? Array((0..<x.rank).reversed())
            guard perm.sorted() == Array(0..<x.rank) else { throw c.invalid("perm \(perm) is not a permutation of 0..<\(x.rank)") }
            return [transpose(x, perm)]
        }
        r.register("Concat") { c, i in
            let inputs = i.compactMap { $0 }
            guard let first = inputs.first else { throw c.invalid("no inputs") }
            let axis = try normalizeAxis(try c.attributes.required("axis", c.attributes.int), rank: first.rank, c)
            let parts = inputs.filter { $0.count > 0 || inputs.allSatisfy { $0.count == 0 } }
            for part in parts where part.rank != first.rank || part.dtype != first.dtype
                || part.shape.enumerated().contains(where: { $0.offset != axis && $0.element != first.shape[$0.offset] }) {
                throw c.invalid("cannot concatenate \(first.shape) and \(part.shape) on axis \(axis)")
            }
            return [concatenate(parts.isEmpty ? [first] : parts, axis: axis)]
        }
        r.register("Split") { c, i in
            let x = try c.input(i, 0)
            let axis = try normalizeAxis(c.attributes.int("axis", default: 0), rank: x.rank, c)
            let outputs = c.node.outputs.count
            var sizes: [Int]
            if c.opset >= 13, i.count > 1, let split = i[1] {
                sizes = split.integers()
            } else if c.opset < 13, let split = c.attributes.ints("split") {
                sizes = split
            } else {
                let parts = c.attributes.int("num_outputs") ?? outputs
                guard parts >= 1, parts == outputs else { throw c.invalid("num_outputs \(parts) must be positive and equal the node's \(outputs) outputs") }
                let chunk = (x.shape[axis] + parts - 1) / parts
                sizes = (0..<parts).map { Swift.min(chunk, Swift.max(0, x.shape[axis] - $0 * chunk)) }
            }
            guard sizes.allSatisfy({ $0 >= 0 && $0 <= x.shape[axis] }), sizes.reduce(0, +) == x.shape[axis], sizes.count == outputs else {
                throw c.invalid("split sizes \(sizes) must be \(outputs) non-negative sizes adding up to \(x.shape[axis])")
            }
            var start = 0
            return sizes.map { size in
                defer { start += size }
                return slice(x, axis: axis, start: start, count: size)
            }
        }
        r.register("Slice") { c, i in
            let x = try c.input(i, 0)
            let starts: [Int], ends: [Int], axesList: [Int]?, stepsList: [Int]?
            if c.opset >= 10 {
                starts = try c.input(i, 1).integers()
                ends = try c.input(i, 2).integers()
                axesList = i.count > 3 ? i[3]?.integers() : nil
                stepsList = i.count > 4 ? i[4]?.integers() : nil
            } else {
                starts = try c.attributes.required("starts", c.attributes.ints)
                ends = try c.attributes.required("ends", c.attributes.ints)
                axesList = c.attributes.ints("axes")
                stepsList = nil
            }
            let axes = try (axesList ?? Array(0..<starts.count)).map { try normalizeAxis($0, rank: x.rank, c) }
            let steps = stepsList ?? [Int](repeating: 1, count: starts.count)
            guard ends.count == starts.count, axes.count == starts.count, steps.count == starts.count, Set(axes).count == axes.count else {
                throw c.invalid("starts, ends, axes and steps must have one entry per sliced axis, each axis once")
            }
            // Steps past the size of any axis act as the largest step that axis allows; bounding
            // them keeps the count arithmetic below from overflowing.
            let limit = 1 << 40
            let clampedSteps = steps.map { Swift.min(Swift.max($0, -limit), limit) }
            var begin = [Int](repeating: 0, count: x.rank)
            var shape = x.shape
            var step = [Int](repeating: 1, count: x.rank)
            for (k, axis) in axes.enumerated() {
                let size = x.shape[axis], s = clampedSteps[k]
                guard s != 0 else { throw c.invalid("slice step 0") }
                func clampIndex(_ value: Int, _ low: Int, _ high: Int) -> Int {
                    let v = value < 0 ? value + size : value
                    return Swift.min(Swift.max(v, low), high)
                }
                let first = s > 0 ? clampIndex(starts[k], 0, size) : clampIndex(starts[k], -1, size - 1)
                let last = s > 0 ? clampIndex(ends[k], 0, size) : clampIndex(ends[k], -1, size - 1)
                let count = s > 0 ? Swift.max(0, (last - first + s - 1) / s) : Swift.max(0, (first - last - s - 1) / -s)
                begin[axis] = first
                shape[axis] = count
                step[axis] = s
            }
            let strides = Tensor.strides(of: x.shape)
            let base = zip(begin, strides).reduce(0) { $0 + $1.0 * $1.1 }
            return [x.take(stridedOffsets(shape: shape, base: base, steps: zip(step, strides).map(*)), shape: shape)]
        }
        r.register("Gather") { c, i in
            let x = try c.input(i, 0), indices = try c.input(i, 1)
            let axis = try normalizeAxis(c.attributes.int("axis", default: 0), rank: x.rank, c)
            let size = x.shape[axis]
            let positions = try indices.integers().map { index -> Int in
                let value = index < 0 ? index + size : index
                guard value >= 0, value < size else { throw c.invalid("index \(index) is out of range for axis \(axis) of size \(size)") }
                return value
            }
            let outer = x.shape[..<axis].reduce(1, *), inner = x.shape[(axis + 1)...].reduce(1, *)
            var offsets: [Int] = []
            offsets.reserveCapacity(outer * positions.count * inner)
            for o in 0..<outer {
                for p in positions {
                    let base = (o * size + p) * inner
                    for k in 0..<inner { offsets.append(base + k) }
                }
            }
            return [x.take(offsets, shape: Array(x.shape[..<axis]) + indices.shape + Array(x.shape[(axis + 1)...]))]
        }
        r.register("GatherElements", since: 11) { c, i in
            let x = try c.input(i, 0), indices = try c.input(i, 1)
            let axis = try normalizeAxis(c.attributes.int("axis", default: 0), rank: x.rank, c)
            let strides = Tensor.strides(of: x.shape), indexStrides = Tensor.strides(of: indices.shape)
            let values = indices.integers()
            let offsets = try values.enumerated().map { position, raw in
                try elementOffset(position: position, index: raw, axis: axis, size: x.shape[axis], indexStrides: indexStrides, strides: strides, c)
            }
            return [x.take(offsets, shape: indices.shape)]
        }
        r.register("GatherND", since: 11) { c, i in
            let x = try c.input(i, 0), indices = try c.input(i, 1)
            let batchDims = c.attributes.int("batch_dims", default: 0)
            let depth = indices.shape.last ?? 0
            guard indices.rank >= 1, batchDims >= 0, batchDims < Swift.min(x.rank, indices.rank), batchDims + depth <= x.rank,
                  Array(x.shape[..<batchDims]) == Array(indices.shape[..<batchDims]) else {
                throw c.invalid("batch_dims \(batchDims) and index depth \(depth) do not fit data \(x.shape) and indices \(indices.shape)")
            }
            let strides = Tensor.strides(of: x.shape)
            let batch = x.shape[..<batchDims].reduce(1, *)
            let sliceShape = Array(x.shape[(batchDims + depth)...])
            let sliceSize = sliceShape.reduce(1, *)
            let batchSize = x.shape[batchDims...].reduce(1, *)
            let tuples = indices.integers()
            let tupleCount = indices.count / Swift.max(depth, 1)
            let perBatch = tupleCount / Swift.max(batch, 1)
            var offsets: [Int] = []
            for t in 0..<tupleCount {
                let b = t / Swift.max(perBatch, 1)
                var offset = b * batchSize
                for d in 0..<depth {
                    let size = x.shape[batchDims + d]
                    var index = tuples[t * depth + d]
                    if index < 0 { index += size }
                    guard index >= 0, index < size else { throw c.invalid("index out of range in GatherND") }
                    offset += index * strides[batchDims + d]
                }
                for k in 0..<sliceSize { offsets.append(offset + k) }
            }
            return [x.take(offsets, shape: Array(indices.shape.dropLast()) + sliceShape)]
        }
        r.register("Expand", since: 8) { c, i in
            let x = try c.input(i, 0)
            let shape = try Broadcast.shape(x.shape, try c.input(i, 1).integers())
            try c.checkAllocation(x.dtype, shape)
            return [x.take(Broadcast.offsets(from: x.shape, to: shape), shape: shape)]
        }
        r.register("Tile", since: 6) { c, i in
            let x = try c.input(i, 0)
            let repeats = try c.input(i, 1).integers()
            guard repeats.count == x.rank else { throw c.invalid("repeats has \(repeats.count) values for rank \(x.rank)") }
            guard repeats.allSatisfy({ $0 >= 0 }) else { throw c.invalid("repeats \(repeats) must not be negative") }
            let shape = zip(x.shape, repeats).map { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }
            try c.checkAllocation(x.dtype, shape)
            let strides = Tensor.strides(of: x.shape)
            let offsets = (0..<Tensor.count(of: shape)).map { position -> Int in
                var rest = position, offset = 0
                for (d, stride) in Tensor.strides(of: shape).enumerated() {
                    offset += ((rest / stride) % x.shape[d]) * strides[d]
                    rest %= stride
                }
                return offset
            }
            return [x.take(offsets, shape: shape)]
        }
        r.register("Range", since: 11) { c, i in
            let start = try c.input(i, 0), limit = try c.input(i, 1), delta = try c.input(i, 2)
            guard start.count == 1, limit.count == 1, delta.count == 1 else { throw c.invalid("start, limit and delta must be scalars") }
            let s = start.doubles()[0], l = limit.doubles()[0], d = delta.doubles()[0]
            let steps = ((l - s) / d).rounded(.up)
            guard steps.isFinite, steps < Double(Tensor.maximumBytes) else { throw c.invalid("range of \(steps) elements") }
            let count = Int(Swift.max(0, steps))
            try c.checkAllocation(start.dtype, [count])
            if Cast.isInteger(start.dtype) {
                guard abs(s) < 9.2e18, abs(d) < 9.2e18 else { throw c.invalid("start \(s) or delta \(d) does not fit a 64-bit integer") }
                let si = Int64(s), di = Int64(d)
                return [Cast.fromInt64((0..<count).map { si + Int64($0) * di }, dtype: start.dtype, shape: [count])]
            }
            return [Cast.fromDoubles((0..<count).map { s + Double($0) * d }, dtype: start.dtype, shape: [count])]
        }
        r.register("NonZero", since: 9) { c, i in
            let x = try c.input(i, 0)
            let values = x.dtype == .string ? x.strings.map { $0.isEmpty ? 0 : 1 } : x.doubles()
            let strides = Tensor.strides(of: x.shape)
            let hits = values.indices.filter { values[$0] != 0 }
            var result = [Int64](repeating: 0, count: x.rank * hits.count)
            for (n, position) in hits.enumerated() {
                var rest = position
                for d in 0..<x.rank {
                    result[d * hits.count + n] = Int64(rest / strides[d])
                    rest %= strides[d]
                }
            }
            return [Tensor(result, shape: [x.rank, hits.count])]
        }
        r.register("Trilu", since: 14) { c, i in
            let x = try c.input(i, 0)
            let k = i.count > 1 ? (i[1]?.integers().first ?? 0) : 0
            let upper = c.attributes.int("upper", default: 1) == 1
            let rows = x.shape[x.rank - 2], columns = x.shape[x.rank - 1]
            let zero = Tensor(zeros: x.dtype, shape: [1])
            return [Select.gather(x, zero, shape: x.shape) { position in
                let column = position % columns, row = (position / columns) % rows
                let keep = upper ? column - row >= k : column - row <= k
                return keep ? (true, position) : (false, 0)
            }]
        }
        r.register("OneHot", since: 9) { c, i in
            let indices = try c.input(i, 0), depthTensor = try c.input(i, 1), values = try c.input(i, 2)
            guard depthTensor.count == 1, let depthValue = depthTensor.doubles().first, depthValue.isFinite,
                  depthValue >= 1, depthValue < Double(Tensor.maximumBytes) else {
                throw c.invalid("depth must be one positive number, not \(depthTensor.doubles().prefix(4))")
            }
            let depth = Int(depthValue)
            guard values.count >= 2 else { throw c.invalid("values must hold the off and on values") }
            let axis = try normalizeAxis(c.attributes.int("axis", default: -1), rank: indices.rank + 1, c)
            let shape = Array(indices.shape[..<axis]) + [depth] + Array(indices.shape[axis...])
            try c.checkAllocation(values.dtype, shape)
            let inner = indices.shape[axis...].reduce(1, *)
            let flat = indices.doubles()
            let offValue = values.take([0], shape: [1]), onValue = values.take([1], shape: [1])
            return [Select.gather(onValue, offValue, shape: shape) { position in
                let outer = position / (depth * inner), d = (position / inner) % depth, rest = position % inner
                let raw = flat[outer * inner + rest]
                guard raw.isFinite, abs(raw) < 9.2e18 else { return (false, 0) }
                var index = Int(raw)
                if index < 0 { index += depth }
                return (index == d, 0)
            }]
        }
        r.register("DepthToSpace") { c, i in
            let x = try c.input(i, 0)
            let b = try c.attributes.required("blocksize", c.attributes.int)
            guard x.rank == 4 else { throw c.invalid("the input must have rank 4 (N, C, H, W), not \(x.rank)") }
            let (n, channels, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
            guard b >= 1, b <= 1 << 16, channels % (b * b) == 0 else {
                throw c.invalid("blocksize \(b) must be positive and its square must divide the \(channels) channels")
            }
            try c.checkAllocation(x.dtype, [n, channels, h * b, w * b])
            let crd = c.attributes.string("mode", default: "DCR") == "CRD"
            let outC = channels / (b * b)
            let shape = [n, outC, h * b, w * b]
            let offsets = (0..<Tensor.count(of: shape)).map { position -> Int in
                let ow = position % (w * b), oh = (position / (w * b)) % (h * b)
                let oc = (position / (w * b * h * b)) % outC, on = position / (w * b * h * b * outC)
                let (bh, bw, ih, iw) = (oh % b, ow % b, oh / b, ow / b)
                let ic = crd ? oc * b * b + bh * b + bw : (bh * b + bw) * outC + oc
                return ((on * channels + ic) * h + ih) * w + iw
            }
            return [x.take(offsets, shape: shape)]
        }
        r.register("SpaceToDepth") { c, i in
            let x = try c.input(i, 0)
            let b = try c.attributes.required("blocksize", c.attributes.int)
            guard x.rank == 4 else { throw c.invalid("the input must have rank 4 (N, C, H, W), not \(x.rank)") }
            let (n, channels, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
            guard b >= 1, b <= 1 << 16, h % b == 0, w % b == 0 else {
                throw c.invalid("blocksize \(b) must be positive and divide the height \(h) and width \(w)")
            }
            let shape = [n, channels * b * b, h / b, w / b]
            let offsets = (0..<Tensor.count(of: shape)).map { position -> Int in
                let ow = position % (w / b), oh = (position / (w / b)) % (h / b)
                let oc = (position / (w / b * (h / b))) % (channels * b * b), on = position / (w / b * (h / b) * channels * b * b)
                let crd = c.attributes.string("mode", default: "DCR") == "CRD"
                let block = crd ? oc % (b * b) : oc / channels, ic = crd ? oc / (b * b) : oc % channels
                return ((on * channels + ic) * h + oh * b + block / b) * w + ow * b + block % b
            }
            return [x.take(offsets, shape: shape)]
        }
        r.register("ScatterElements", since: 11) { c, i in
            let x = try c.input(i, 0), indices = try c.input(i, 1), updates = try c.input(i, 2)
            let axis = try normalizeAxis(c.attributes.int("axis", default: 0), rank: x.rank, c)
            let reduction = c.attributes.string("reduction", default: "none")
            let strides = Tensor.strides(of: x.shape), indexStrides = Tensor.strides(of: indices.shape)
            var values = x.doubles()
            let updateValues = updates.doubles()
            for (position, raw) in indices.integers().enumerated() {
                let offset = try elementOffset(position: position, index: raw, axis: axis, size: x.shape[axis],
                                               indexStrides: indexStrides, strides: strides, c)
                values[offset] = scatterReduce(values[offset], updateValues[position], reduction)
            }
            return [Cast.fromDoubles(values, dtype: x.dtype, shape: x.shape)]
        }
        r.register("ScatterND", since: 11) { c, i in
            let x = try c.input(i, 0), indices = try c.input(i, 1), updates = try c.input(i, 2)
            let reduction = c.attributes.string("reduction", default: "none")
            let depth = indices.shape.last ?? 0
            guard indices.rank >= 1, depth <= x.rank else { throw c.invalid("indices \(indices.shape) do not fit data \(x.shape)") }
            let strides = Tensor.strides(of: x.shape)
            let sliceSize = x.shape[depth...].reduce(1, *)
            let tupleCount = indices.count / Swift.max(depth, 1)
            guard updates.count == tupleCount * sliceSize else {
                throw c.invalid("updates has \(updates.count) elements; indices \(indices.shape) and data \(x.shape) need \(tupleCount * sliceSize)")
            }
            var values = x.doubles()
            let updateValues = updates.doubles(), tuples = indices.integers()
            for t in 0..<tupleCount {
                var offset = 0
                for d in 0..<depth {
                    var index = tuples[t * depth + d]
                    if index < 0 { index += x.shape[d] }
                    guard index >= 0, index < x.shape[d] else { throw c.invalid("index \(tuples[t * depth + d]) is out of range for axis \(d) of size \(x.shape[d])") }
                    offset += index * strides[d]
                }
                for k in 0..<sliceSize {
                    values[offset + k] = scatterReduce(values[offset + k], updateValues[t * sliceSize + k], reduction)
                }
            }
            return [Cast.fromDoubles(values, dtype: x.dtype, shape: x.shape)]
        }
        r.register("Pad", since: 2) { c, i in
            let x = try c.input(i, 0)
            var pads: [Int]
            var constant = Tensor(zeros: x.dtype, shape: [1])
            if c.opset >= 11 {
                pads = try c.input(i, 1).integers()
                if i.count > 2, let value = i[2], value.count > 0 { constant = value.take([0], shape: [1]) }
                if i.count > 3, let axesTensor = i[3] {
                    let axes = try axesTensor.integers().map { try normalizeAxis($0, rank: x.rank, c) }
                    guard pads.count == 2 * axes.count else { throw c.invalid("pads has \(pads.count) values for \(axes.count) axes") }
                    var full = [Int](repeating: 0, count: 2 * x.rank)
                    for (k, axis) in axes.enumerated() {
                        full[axis] = pads[k]
                        full[axis + x.rank] = pads[k + axes.count]
                    }
                    pads = full
                }
            } else {
                pads = try c.attributes.required("pads", c.attributes.ints)
                constant = Cast.fromDoubles([Double(c.attributes.float("value", default: 0))], dtype: x.dtype, shape: [1])
            }
            guard pads.count == 2 * x.rank else { throw c.invalid("pads has \(pads.count) values for rank \(x.rank)") }
            guard pads.allSatisfy({ abs($0) <= 1 << 31 }) else { throw c.invalid("pads \(pads) are out of range") }
            let mode = c.attributes.string("mode", default: "constant")
            let shape = (0..<x.rank).map { x.shape[$0] + pads[$0] + pads[$0 + x.rank] }
            guard shape.allSatisfy({ $0 >= 0 }) else { throw c.invalid("pads \(pads) remove more than the input \(x.shape) has") }
            if mode != "constant", let axis = (0..<x.rank).first(where: { x.shape[$0] == 0 && (pads[$0] != 0 || pads[$0 + x.rank] != 0) }) {
                throw c.invalid("\(mode) padding needs values to repeat, but axis \(axis) of \(x.shape) is empty")
            }
            try c.checkAllocation(x.dtype, shape)
            let strides = Tensor.strides(of: x.shape), outStrides = Tensor.strides(of: shape)
            return [Select.gather(x, constant, shape: shape) { position in
                var rest = position, offset = 0
                for d in 0..<x.rank {
                    var index = rest / outStrides[d] - pads[d]
                    rest %= outStrides[d]
                    let size = x.shape[d]
                    if index < 0 || index >= size {
                        switch mode {
                        case "edge": index = Swift.min(Swift.max(index, 0), size - 1)
                        case "reflect":
                            if size == 1 { index = 0 } else {
                                let period = 2 * (size - 1)
                                index = ((index % period) + period) % period
                                if index >= size { index = period - index }
                            }
                        case "wrap": index = ((index % size) + size) % size
                        default: return (false, 0)
                        }
                    }
                    offset += index * strides[d]
                }
                return (true, offset)
            }]
        }
    }
}

func scatterReduce(_ current: Double, _ update: Double, _ reduction: String) -> Double {
    switch reduction {
    case "add": current + update
    case "mul": current * update
    case "max": Swift.max(current, update)
    case "min": Swift.min(current, update)
    default: update
    }
}

func transpose(_ x: Tensor, _ perm: [Int]) -> Tensor {
    let strides = Tensor.strides(of: x.shape)
    let shape = perm.map { x.shape[$0] }
    return x.take(stridedOffsets(shape: shape, base: 0, steps: perm.map { strides[$0] }), shape: shape)
}

/// `count` consecutive positions of `axis` starting at `start`.
func slice(_ x: Tensor, axis: Int, start: Int, count: Int) -> Tensor {
    var shape = x.shape
    shape[axis] = count
    let strides = Tensor.strides(of: x.shape)
    return x.take(stridedOffsets(shape: shape, base: start * strides[axis], steps: strides), shape: shape)
}

/// GatherElements/ScatterElements addressing: the data offset for the element at `position` of
/// the indices tensor, whose coordinate on `axis` is replaced by `index` (negative counts back).
func elementOffset(position: Int, index raw: Int, axis: Int, size: Int, indexStrides: [Int], strides: [Int], _ c: KernelContext) throws -> Int {
    let index = raw < 0 ? raw + size : raw
    guard index >= 0, index < size else { throw c.invalid("index \(raw) is out of range on axis \(axis) of size \(size)") }
    var offset = 0, rest = position
    for d in 0..<indexStrides.count {
        let coordinate = rest / indexStrides[d]
        rest %= indexStrides[d]
        offset += (d == axis ? index : coordinate) * strides[d]
    }
    return offset
}

/// `Tensor.concatenate`, with the copying of large results split across the intra-op threads:
/// the output's bytes are cut into one range per thread, each filled from the input blocks it
/// covers. (SqueezeNet's Concats were a serial 5 % of its two-thread time.)
func concatenate(_ tensors: [Tensor], axis: Int, threads: Int = Parallel.threads) -> Tensor {
    guard let size = tensors[0].dtype.byteSize, threads > 1 else { return Tensor.concatenate(tensors, axis: axis) }
    var shape = tensors[0].shape
    shape[axis] = tensors.reduce(0) { $0 + $1.shape[axis] }
    let total = Tensor.count(of: shape) * size
    guard total >= 1 << 18 else { return Tensor.concatenate(tensors, axis: axis) }
    let inner = shape[(axis + 1)...].reduce(1, *)
    // The output is outer × (each input's block, in order): block (o, t) starts at
    // o · rowBytes + offsets[t] and is t's o-th block.
    let blocks = tensors.map { $0.shape[axis] * inner * size }
    let rowBytes = blocks.reduce(0, +)
    var offsets = [0]
    for block in blocks.dropLast() { offsets.append(offsets.last! + block) }
    let out = Tensor(uninitialized: tensors[0].dtype, shape: shape)
    let destination = out.storage.pointer
    Parallel.chunks(total, minimum: 1 << 17, threads: threads) { range in
        var position = range.lowerBound
        while position < range.upperBound {
            let (o, within) = position.quotientAndRemainder(dividingBy: rowBytes)
            // The input block holding `within`: the last one starting at or before it.
            var t = 0
            while t + 1 < blocks.count, offsets[t + 1] <= within { t += 1 }
            let skip = within - offsets[t]
            let count = Swift.min(blocks[t] - skip, range.upperBound - position)
            (destination + position).copyMemory(from: tensors[t].storage.pointer + o * blocks[t] + skip, byteCount: count)
            position += count
        }
    }
    return out
}
