import Testing
import VesselManifest
import VesselModel
import VesselTensor

/// What every transport relies on before a model runs (`Signature.validate`) and what examples
/// are judged by (`OutputComparison`): exercised here directly, with the messages clients see.
@Suite("signature validation and output comparison")
struct ValidationTests {
    static let signature = Signature(
        inputs: [
            TensorSpec(name: "X", dtype: .float32, shape: [.dynamic(name: "batch"), .fixed(4)]),
            TensorSpec(name: "ids", dtype: .int64, shape: [.dynamic(name: "batch")])
        ],
        outputs: [TensorSpec(name: "Y", dtype: .float32, shape: [.dynamic(name: "batch")])])

    static func x(_ values: [Float], _ shape: [Int]) -> Tensor { Tensor(values, shape: shape) }
    static let ids = Tensor([Int64(1), 2], shape: [2])

    @Test("a request that fits passes, with any batch size")
    func fits() throws {
        try Self.signature.validate(["X": Self.x([Float](repeating: 1, count: 8), [2, 4]), "ids": Self.ids], allowNaN: false)
        try Self.signature.validate(["X": Self.x([], [0, 4]), "ids": Tensor([Int64](), shape: [0])], allowNaN: false)
    }

    @Test(
        "each misfit names the input and what was expected",
        arguments: [
            ("unknown", "unknown input `Z`; the model's inputs are X, ids"),
            ("missing", "missing input `ids`"),
            ("dtype", "input `X`: expected datatype FP32, got FP64"),
            ("rank", "input `X`: expected shape [batch, 4], got [8]"),
            ("fixed", "input `X`: expected shape [batch, 4], got [2, 3]"),
            ("nan", "input `X`: element 2 is nan; NaN and infinity are not allowed (serving.allow_nan)")
        ])
    func misfits(_ kind: String, _ message: String) {
        var inputs: [String: Tensor] = ["X": Self.x([Float](repeating: 1, count: 8), [2, 4]), "ids": Self.ids]
        switch kind {
        case "unknown": inputs["Z"] = Self.ids
        case "missing": inputs["ids"] = nil
        case "dtype": inputs["X"] = Tensor([Double](repeating: 1, count: 8), shape: [2, 4])
        case "rank": inputs["X"] = Self.x([Float](repeating: 1, count: 8), [8])
        case "fixed": inputs["X"] = Self.x([Float](repeating: 1, count: 6), [2, 3])
        default: inputs["X"] = Self.x([1, 1, .nan, 1, 1, 1, 1, 1], [2, 4])
        }
        #expect(throws: InputProblem(message)) { try Self.signature.validate(inputs, allowNaN: false) }
    }

    @Test("NaN and infinity pass when serving.allow_nan is on")
    func allowNaN() throws {
        try Self.signature.validate(["X": Self.x([1, .infinity, .nan, 1, 1, 1, 1, 1], [2, 4]), "ids": Self.ids], allowNaN: true)
    }

    @Test("outputs compare as numpy's allclose; NaN equals NaN; shapes and strings exactly")
    func comparison() {
        let expected = Tensor([Float](arrayLiteral: 1, 2, .nan), shape: [3])
        #expect(
            OutputComparison.compare(
                "y", actual: Tensor([Float](arrayLiteral: 1, 2.0005, .nan), shape: [3]), expected: expected,
                rtol: 1e-3, atol: 0
            ).passed)
        let off = OutputComparison.compare("y", actual: Tensor([Float](arrayLiteral: 1, 2.1, .nan), shape: [3]), expected: expected, rtol: 1e-3, atol: 0)
        #expect(!off.passed && off.problem?.hasPrefix("element 1: 2.09") == true, "\(off.problem ?? "")")
        let shape = OutputComparison.compare("y", actual: Tensor([Float](arrayLiteral: 1, 2, 3, 4), shape: [2, 2]), expected: expected, rtol: 1, atol: 1)
        #expect(!shape.passed && shape.problem == "shape [2, 2], expected [3]")
        #expect(OutputComparison.compare("y", actual: nil, expected: expected, rtol: 1, atol: 1).problem == "no output")
        let labels = Tensor(strings: ["setosa", "virginica"], shape: [2])
        #expect(OutputComparison.compare("l", actual: labels, expected: labels, rtol: 0, atol: 0).passed)
        #expect(!OutputComparison.compare("l", actual: Tensor(strings: ["setosa", "versicolor"], shape: [2]), expected: labels, rtol: 0, atol: 0).passed)
    }
}
