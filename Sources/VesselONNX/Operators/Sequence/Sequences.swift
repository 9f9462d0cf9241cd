#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import VesselTensor

/// The sequence operators (opset 11): lists of tensors built, indexed, split and joined.
extension KernelRegistry {
    static func registerSequences(_ r: inout KernelRegistry) {
        r.registerValues("SequenceEmpty", since: 11, sequenceEmptyKernel)
        r.registerValues("SequenceConstruct", since: 11, sequenceConstructKernel)
        r.registerValues("SequenceLength", since: 11, sequenceLengthKernel)
        r.registerValues("SequenceAt", since: 11, sequenceAtKernel)
        r.registerValues("SequenceInsert", since: 11, sequenceInsertKernel)
        r.registerValues("SequenceErase", since: 11, sequenceEraseKernel)
        r.registerValues("SplitToSequence", since: 11, splitToSequenceKernel)
        r.registerValues("ConcatFromSequence", since: 11, concatFromSequenceKernel)
    }

    static func sequenceElements(_ value: ONNXValue??, _ c: KernelContext) throws -> [ONNXValue] {
        guard case .sequence(let elements)?? = value else { throw c.invalid("input 0 must be a sequence") }
        return elements
    }

    static func sequenceTensors(_ elements: [ONNXValue], _ c: KernelContext) throws -> [Tensor] {
        try elements.map {
            guard let tensor = $0.tensor else { throw c.invalid("the sequence holds \($0.typeDescription), not tensors") }
            return tensor
        }
    }

    /// A position input: a scalar index, negative from the end, in `0...limit`.
    static func sequencePosition(_ value: ONNXValue??, count: Int, allowEnd: Bool, _ c: KernelContext) throws -> Int? {
        guard let value = value ?? nil else { return nil }
        guard let tensor = value.tensor, tensor.count == 1, Cast.isInteger(tensor.dtype) else {
            throw c.invalid("position must be one integer")
        }
        let raw = tensor.integers()[0]
        let index = raw < 0 ? raw + count : raw
        guard index >= 0, index < count || (allowEnd && index == count) else {
            throw c.invalid("position \(raw) is out of range for a sequence of \(count)")
        }
        return index
    }

    static func sequenceEmptyKernel(_ c: KernelContext, _: [ONNXValue?]) throws -> [ONNXValue] {
        [.sequence([])]
    }

    static func sequenceConstructKernel(_ c: KernelContext, _ i: [ONNXValue?]) throws -> [ONNXValue] {
        let elements = try i.map { value -> ONNXValue in
            guard let tensor = value?.tensor else { throw c.invalid("takes tensors") }
            return .tensor(tensor)
        }
        let dtypes = Set(try sequenceTensors(elements, c).map(\.dtype))
        guard dtypes.count <= 1 else { throw c.invalid("the tensors differ in type: \(dtypes.map(\.rawValue).sorted())") }
        return [.sequence(elements)]
    }

    static func sequenceLengthKernel(_ c: KernelContext, _ i: [ONNXValue?]) throws -> [ONNXValue] {
        [.tensor(Tensor(scalar: Int64(try sequenceElements(i.first, c).count)))]
    }

    static func sequenceAtKernel(_ c: KernelContext, _ i: [ONNXValue?]) throws -> [ONNXValue] {
        let elements = try sequenceElements(i.first, c)
        guard let index = try sequencePosition(i.count > 1 ? i[1] : nil, count: elements.count, allowEnd: false, c) else {
            throw c.invalid("missing position")
        }
        return [elements[index]]
    }

    static func sequenceInsertKernel(_ c: KernelContext, _ i: [ONNXValue?]) throws -> [ONNXValue] {
        var elements = try sequenceElements(i.first, c)
        guard i.count > 1, let tensor = i[1]?.tensor else { throw c.invalid("input 1 must be a tensor") }
        if let first = try sequenceTensors(elements, c).first, first.dtype != tensor.dtype {
            throw c.invalid("cannot insert \(tensor.dtype.rawValue) into a sequence of \(first.dtype.rawValue)")
        }
        let index = try sequencePosition(i.count > 2 ? i[2] : nil, count: elements.count, allowEnd: true, c) ?? elements.count
        elements.insert(.tensor(tensor), at: index)
        return [.sequence(elements)]
    }

    static func sequenceEraseKernel(_ c: KernelContext, _ i: [ONNXValue?]) throws -> [ONNXValue] {
        var elements = try sequenceElements(i.first, c)
        guard !elements.isEmpty else { throw c.invalid("cannot erase from an empty sequence") }
        let index = try sequencePosition(i.count > 1 ? i[1] : nil, count: elements.count, allowEnd: false, c) ?? elements.count - 1
        elements.remove(at: index)
        return [.sequence(elements)]
    }

    static func splitToSequenceKernel(_ c: KernelContext, _ i: [ONNXValue?]) throws -> [ONNXValue] {
        guard let x = i.first??.tensor else { throw c.invalid("input 0 must be a tensor") }
        let axis = try normalizeAxis(c.attributes.int("axis", default: 0), rank: x.rank, c)
        let length = x.shape[axis]
        if i.count > 1, let split = i[1]?.tensor {
            let sizes =
                split.rank == 0
                ? Array(repeating: split.integers()[0], count: max(1, (length + max(split.integers()[0], 1) - 1) / max(split.integers()[0], 1)))
                : split.integers()
            guard sizes.allSatisfy({ $0 >= 0 }) else { throw c.invalid("split sizes must not be negative") }
            var start = 0
            var parts: [ONNXValue] = []
            for size in sizes where start < length {
                let count = min(size, length - start)
                parts.append(.tensor(slice(x, axis: axis, start: start, count: count)))
                start += count
            }
            guard split.rank == 0 || start == length, sizes.reduce(0, +) == length || split.rank == 0 else {
                throw c.invalid("split sizes \(sizes) do not add up to \(length)")
            }
            return [.sequence(parts)]
        }
        let keep = c.attributes.int("keepdims", default: 1) == 1
        return [
            .sequence(
                (0..<length).map { k in
                    let part = slice(x, axis: axis, start: k, count: 1)
                    if keep { return .tensor(part) }
                    var shape = part.shape
                    shape.remove(at: axis)
                    return .tensor(part.reshaped(shape))
                })
        ]
    }

    static func concatFromSequenceKernel(_ c: KernelContext, _ i: [ONNXValue?]) throws -> [ONNXValue] {
        let parts = try sequenceTensors(sequenceElements(i.first, c), c)
        guard let first = parts.first else { throw c.invalid("cannot concatenate an empty sequence") }
        let newAxis = c.attributes.int("new_axis", default: 0) == 1
        let axis = try normalizeAxis(try c.attributes.required("axis", c.attributes.int), rank: first.rank + (newAxis ? 1 : 0), c)
        let inputs =
            newAxis
            ? parts.map { part -> Tensor in
                var shape = part.shape
                shape.insert(1, at: axis)
                return part.reshaped(shape)
            } : parts
        for part in inputs
        where part.dtype != inputs[0].dtype || part.rank != inputs[0].rank
            || part.shape.enumerated().contains(where: { $0.offset != axis && $0.element != inputs[0].shape[$0.offset] })
        {
            throw c.invalid("cannot concatenate \(inputs[0].shape) and \(part.shape) on axis \(axis)")
        }
        return [.tensor(Tensor.concatenate(inputs, axis: axis))]
    }
}
