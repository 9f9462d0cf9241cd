import Foundation
import Testing
@testable import VesselONNX
import VesselTensor
import VesselTestSupport

/// Classic-ML models exported by skl2onnx and onnxmltools (Fixtures/make_ml_models.py) against
/// the outputs onnxruntime computed for them: labels exactly, scores and probabilities within
/// 1e-5 relative (plus 1e-6 absolute for values near zero).
@Suite("classic ML models against onnxruntime")
struct ClassicMLTests {
    static var fixtures: String { TestSupport.packageRoot + "/Tests/VesselONNXTests/Fixtures/ml" }
    static let tolerance = (rtol: 1e-5, atol: 1e-6)

    static var names: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: fixtures)) ?? [])
            .filter { FileManager.default.fileExists(atPath: fixtures + "/" + $0 + "/model.onnx") }.sorted()
    }

    @Test("the fixture set covers what the issue names")
    func coverage() {
        let required = ["linear_regression", "logistic_binary", "scaler_logistic_pipeline", "random_forest_classifier",
                        "random_forest_regressor", "gradient_boosting_500_trees", "gradient_boosting_regressor", "svc_probabilities",
                        "mlp_classifier", "column_transformer_onehot", "xgboost_classifier", "lightgbm_binary", "dict_vectorizer"]
        #expect(Set(required).isSubset(of: Set(Self.names)), "missing: \(Set(required).subtracting(Self.names).sorted())")
    }

    @Test("outputs match onnxruntime", arguments: names)
    func matches(_ name: String) throws {
        let directory = Self.fixtures + "/" + name
        let model = try ONNXModel(path: directory + "/model.onnx")
        let data = directory + "/test_data_set_0"
        var feeds: [String: ONNXValue] = [:]
        for (index, input) in model.inputs.enumerated() {
            if FileManager.default.fileExists(atPath: data + "/input_\(index).json") {
                feeds[input.name] = try Self.readMap(data + "/input_\(index).json")
            } else {
                feeds[input.name] = .tensor(try NodeConformanceTests.readTensor(data + "/input_\(index).pb"))
            }
        }
        let results = try model.run(values: feeds)
        var worst = 0.0
        for (index, output) in model.outputs.enumerated() {
            let actual = try #require(results[output.name])
            if FileManager.default.fileExists(atPath: data + "/output_\(index).json") {
                let expected = try Self.readMaps(data + "/output_\(index).json")
                guard case .sequence(let rows) = actual else {
                    Issue.record("\(name): output `\(output.name)` is a \(actual.typeDescription), expected a sequence of maps")
                    continue
                }
                #expect(rows.count == expected.count, "\(name): \(rows.count) maps, expected \(expected.count)")
                for (row, (map, reference)) in zip(rows, expected).enumerated() {
                    guard case .map(let keys, let values) = map else { Issue.record("\(name): element \(row) is not a map"); continue }
                    let keyStrings = keys.dtype == .string ? keys.strings : keys.integers().map(String.init)
                    #expect(Set(keyStrings) == Set(reference.keys), "\(name) row \(row): keys \(keyStrings), expected \(reference.keys.sorted())")
                    for (key, value) in zip(keyStrings, values.doubles()) {
                        guard let expected = reference[key] else { continue }
                        worst = max(worst, Self.relativeError(value, expected))
                        #expect(Self.close(value, expected), "\(name) row \(row) `\(key)`: \(value), expected \(expected)")
                    }
                }
                continue
            }
            let expected = try NodeConformanceTests.readTensor(data + "/output_\(index).pb")
            guard let tensor = actual.tensor else {
                Issue.record("\(name): output `\(output.name)` is a \(actual.typeDescription), expected a tensor")
                continue
            }
            #expect(tensor.dtype == expected.dtype, "\(name) `\(output.name)`: \(tensor.dtype.rawValue), expected \(expected.dtype.rawValue)")
            #expect(tensor.count == expected.count, "\(name) `\(output.name)`: shape \(tensor.shape), expected \(expected.shape)")
            guard tensor.dtype == expected.dtype, tensor.count == expected.count else { continue }
            if tensor.dtype == .string || !tensor.dtype.isFloatingPoint {
                let same = tensor.dtype == .string ? tensor.strings == expected.strings : tensor.doubles() == expected.doubles()
                #expect(same, "\(name) `\(output.name)`: labels differ from onnxruntime's")
                continue
            }
            for (k, (a, e)) in zip(tensor.doubles(), expected.doubles()).enumerated() {
                worst = max(worst, Self.relativeError(a, e))
                if !Self.close(a, e) {
                    Issue.record("\(name) `\(output.name)` element \(k): \(a), expected \(e)")
                    break
                }
            }
        }
        print("\(name): largest relative difference from onnxruntime \(worst)")
    }

    static func close(_ a: Double, _ e: Double) -> Bool {
        (a.isNaN && e.isNaN) || abs(a - e) <= tolerance.atol + tolerance.rtol * abs(e)
    }

    static func relativeError(_ a: Double, _ e: Double) -> Double {
        a == e || (a.isNaN && e.isNaN) ? 0 : abs(a - e) / max(abs(e), 1e-6)
    }

    /// A one-row map input: {"key": number}.
    static func readMap(_ path: String) throws -> ONNXValue {
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Double] ?? [:]
        let keys = object.keys.sorted()
        return .map(keys: Tensor(strings: keys, shape: [keys.count]), values: Tensor(keys.map { Float(object[$0]!) }, shape: [keys.count]))
    }

    static func readMaps(_ path: String) throws -> [[String: Double]] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [[String: Double]] ?? []
    }
}
