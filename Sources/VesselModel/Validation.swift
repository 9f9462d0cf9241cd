public import VesselManifest
public import VesselTensor

/// A request that does not fit the model's signature: names the input and what was expected.
public struct InputProblem: Error, Sendable, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension Signature {
    /// Checks named inputs against the signature before anything runs: unknown and missing
    /// names, dtype, rank and every fixed dimension, and NaN/infinity unless allowed.
    public func validate(_ inputs: [String: Tensor], allowNaN: Bool) throws(InputProblem) {
        let known = self.inputs.map(\.name)
        for name in inputs.keys.sorted() where !known.contains(name) {
            throw InputProblem("unknown input `\(name)`; the model's inputs are \(known.joined(separator: ", "))")
        }
        for spec in self.inputs {
            guard let tensor = inputs[spec.name] else {
                if spec.isOptional { continue }
                throw InputProblem("missing input `\(spec.name)`")
            }
            guard tensor.dtype == spec.dtype else {
                throw InputProblem("input `\(spec.name)`: expected datatype \(spec.dtype.oipName), got \(tensor.dtype.oipName)")
            }
            let expected = "[" + spec.shape.map(\.description).joined(separator: ", ") + "]"
            guard tensor.rank == spec.shape.count, zip(spec.shape, tensor.shape).allSatisfy({ $0.accepts($1) }) else {
                throw InputProblem("input `\(spec.name)`: expected shape \(expected), got \(tensor.shape)")
            }
            if !allowNaN, tensor.dtype.isFloatingPoint, let bad = firstNonFinite(tensor) {
                throw InputProblem("input `\(spec.name)`: element \(bad.index) is \(bad.value); NaN and infinity are not allowed (serving.allow_nan)")
            }
        }
    }
}

/// The first NaN or infinity, scanning float32 in place (the common case, often millions of
/// elements) and converting other float types.
func firstNonFinite(_ tensor: Tensor) -> (index: Int, value: Double)? {
    if tensor.dtype == .float32 {
        return tensor.withUnsafeBufferPointer(as: Float.self) { values in
            values.firstIndex { !$0.isFinite }.map { ($0, Double(values[$0])) }
        }
    }
    let values = tensor.doubles()
    return values.firstIndex { !$0.isFinite }.map { ($0, values[$0]) }
}

/// How far an output is from an example's expected output.
public struct OutputComparison: Sendable {
    public var name: String
    public var maxAbsolute: Double
    public var maxRelative: Double
    public var passed: Bool
    /// Why it failed (shape, dtype, or the first element out of tolerance).
    public var problem: String?

    /// numpy's allclose per element: |a − e| ≤ atol + rtol·|e|; NaN equals NaN; strings and
    /// integers exactly.
    public static func compare(_ name: String, actual: Tensor?, expected: Tensor, rtol: Double, atol: Double) -> OutputComparison {
        guard let actual else { return OutputComparison(name: name, maxAbsolute: .nan, maxRelative: .nan, passed: false, problem: "no output") }
        guard actual.count == expected.count, actual.shape == expected.shape || actual.count == 0 || expected.shape.isEmpty else {
            return OutputComparison(
                name: name, maxAbsolute: .nan, maxRelative: .nan, passed: false,
                problem: "shape \(actual.shape), expected \(expected.shape)")
        }
        if actual.dtype == .string || expected.dtype == .string {
            let same = actual.dtype == expected.dtype && actual.strings == expected.strings
            return OutputComparison(
                name: name, maxAbsolute: same ? 0 : .nan, maxRelative: same ? 0 : .nan, passed: same,
                problem: same ? nil : "strings differ")
        }
        var maxAbsolute = 0.0, maxRelative = 0.0
        var problem: String?
        for (k, (a, e)) in zip(actual.doubles(), expected.doubles()).enumerated() {
            if a.isNaN && e.isNaN || a == e { continue }
            let difference = abs(a - e)
            maxAbsolute = max(maxAbsolute, difference.isNaN ? .infinity : difference)
            maxRelative = max(maxRelative, e == 0 ? .infinity : difference / abs(e))
            if problem == nil, !(difference <= atol + rtol * abs(e)) { problem = "element \(k): \(a), expected \(e)" }
        }
        return OutputComparison(name: name, maxAbsolute: maxAbsolute, maxRelative: maxRelative, passed: problem == nil, problem: problem)
    }
}
