import VesselTensor

/// Operators that change how a tensor's elements are shaped, not which ones it holds.
extension KernelRegistry {
    static func registerShape(_ r: inout KernelRegistry) {
        r.registerValues("Identity", identityKernel)
        r.register("Dropout", dropoutKernel)
        r.register("Shape", shapeKernel)
        r.register("Size", sizeKernel)
        r.register("Reshape", since: 5, reshapeKernel)
        r.register("Flatten", flattenKernel)
        r.register("Squeeze", squeezeKernel)
        r.register("Unsqueeze", unsqueezeKernel)
        r.register("Transpose", transposeKernel)
        r.register("Expand", since: 8, expandKernel)
        r.register("Tile", since: 6, tileKernel)
        r.register("DepthToSpace", depthToSpaceKernel)
        r.register("SpaceToDepth", spaceToDepthKernel)
    }

    /// Tensors, and since opset 14 sequences too.
    static func identityKernel(_ c: KernelContext, _ i: [ONNXValue?]) throws -> [ONNXValue] {
        guard let value = i.first ?? nil else { throw c.invalid("missing required input 0") }
        return [value]
    }

    static func dropoutKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        // Inference: the input passes through; the mask (if asked for) is all true.
        let x = try c.input(i, 0)
        if i.count > 2, let training = i[2], training.scalars(as: Bool.self).first == true {
            throw c.invalid("training mode is not supported")
        }
        return c.node.outputs.count > 1 ? [x, Tensor([Bool](repeating: true, count: x.count), shape: x.shape)] : [x]
    }

    static func shapeKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let x = try c.input(i, 0)
        let rank = x.rank
        func clamp(_ value: Int) -> Int { Swift.min(Swift.max(value < 0 ? value + rank : value, 0), rank) }
        let start = clamp(c.attributes.int("start", default: 0))
        let end = clamp(c.attributes.int("end", default: rank))
        let dims = start < end ? Array(x.shape[start..<end]) : []
        return [Tensor(dims.map { Int64($0) }, shape: [dims.count])]
    }

    static func sizeKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] { [Tensor(scalar: Int64(try c.input(i, 0).count))] }

    static func reshapeKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
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

    static func flattenKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let x = try c.input(i, 0)
        // Flatten's axis may equal the rank (everything in the outer dimension).
        let raw = c.attributes.int("axis", default: 1)
        let axis = raw < 0 ? raw + x.rank : raw
        guard axis >= 0, axis <= x.rank else { throw c.invalid("axis \(raw) is out of range for rank \(x.rank)") }
        let outer = x.shape[..<axis].reduce(1, *)
        return [x.reshaped([outer, x.count / Swift.max(outer, 1)])]
    }

    static func squeezeKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let x = try c.input(i, 0)
        let axesList = c.opset >= 13 ? (i.count > 1 ? i[1]?.integers() : nil) : c.attributes.ints("axes")
        let axes = try Set((axesList ?? x.shape.indices.filter { x.shape[$0] == 1 }).map { try normalizeAxis($0, rank: x.rank, c) })
        for axis in axes where x.shape[axis] != 1 { throw c.invalid("cannot squeeze axis \(axis) of size \(x.shape[axis])") }
        return [x.reshaped(x.shape.enumerated().filter { !axes.contains($0.offset) }.map(\.element))]
    }

    static func unsqueezeKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
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

    static func transposeKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let x = try c.input(i, 0)
        let perm = c.attributes.ints("perm") ?? Array((0..<x.rank).reversed())
        guard perm.sorted() == Array(0..<x.rank) else { throw c.invalid("perm \(perm) is not a permutation of 0..<\(x.rank)") }
        return [transpose(x, perm)]
    }

    static func expandKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let x = try c.input(i, 0)
        let shape = try Broadcast.shape(x.shape, try c.input(i, 1).integers())
        try c.checkAllocation(x.dtype, shape)
        return [x.take(Broadcast.offsets(from: x.shape, to: shape), shape: shape)]
    }

    static func tileKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
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

    static func depthToSpaceKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
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

    static func spaceToDepthKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
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
}

/// `x` with its axes in the order `perm` gives (`stridedCopy`).
func transpose(_ x: Tensor, _ perm: [Int]) -> Tensor {
    let strides = Tensor.strides(of: x.shape)
    return stridedCopy(x, base: 0, shape: perm.map { x.shape[$0] }, steps: perm.map { strides[$0] })
}

/// The values of `x` at `base + Σ index[a]·steps[a]` for every index into `shape`, as a new
/// tensor of that shape: a transpose, a slice. Axes of extent 1 are dropped and output axes that
/// stay adjacent in the source merged; the innermost run is then copied whole when it is
/// contiguous in the source and gathered at its stride when not — no offset per element.
func stridedCopy(_ x: Tensor, base: Int, shape: [Int], steps: [Int]) -> Tensor {
    let count = Tensor.count(of: shape)
    guard let width = x.dtype.byteSize, x.dtype.elementsPerByte == 1, count > 0 else {
        return x.take(stridedOffsets(shape: shape, base: base, steps: steps), shape: shape)
    }
    var axes: [(extent: Int, step: Int)] = []
    for (extent, step) in zip(shape, steps) where extent != 1 {
        if let last = axes.last, last.step == step * extent {
            axes[axes.count - 1] = (last.extent * extent, step)
        } else {
            axes.append((extent, step))
        }
    }
    let inner = axes.popLast() ?? (1, 1)
    let out = Tensor(uninitialized: x.dtype, shape: shape)
    func copy<W>(_: W.Type) {
        let source = UnsafePointer(x.storage.pointer.assumingMemoryBound(to: W.self))
        let destination = out.storage.pointer.assumingMemoryBound(to: W.self)
        var index = [Int](repeating: 0, count: axes.count)
        var offset = base, position = 0
        for _ in 0..<(count / inner.extent) {
            if inner.step == 1 {
                (destination + position).initialize(from: source + offset, count: inner.extent)
            } else {
                for j in 0..<inner.extent { destination[position + j] = source[offset + j * inner.step] }
            }
            position += inner.extent
            var axis = axes.count - 1
            while axis >= 0 {
                index[axis] += 1
                offset += axes[axis].step
                if index[axis] < axes[axis].extent { break }
                offset -= axes[axis].step * axes[axis].extent
                index[axis] = 0
                axis -= 1
            }
        }
    }
    switch width {
    case 1: copy(UInt8.self)
    case 2: copy(UInt16.self)
    case 4: copy(UInt32.self)
    default: copy(UInt64.self)
    }
    return out
}
