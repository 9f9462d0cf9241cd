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
        let required = [
            "linear_regression", "logistic_binary", "scaler_logistic_pipeline", "random_forest_classifier",
            "random_forest_regressor", "gradient_boosting_500_trees", "gradient_boosting_regressor", "svc_probabilities",
            "mlp_classifier", "column_transformer_onehot", "xgboost_classifier", "lightgbm_binary", "dict_vectorizer"
        ]
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

@Suite("classic ML models that are malformed or fed wrongly")
struct ClassicMLErrorTests {
    /// A one-tree regressor (feature 1 ≤ 0.5 → 10 else 20) with `change` applied to its attributes.
    static func tree(_ change: String = "", input: String = "[None, 3]") throws -> String {
        try LoaderTests.make(
            """
            attrs = dict(n_targets=1, nodes_treeids=[0, 0, 0], nodes_nodeids=[0, 1, 2], nodes_featureids=[1, 0, 0],
                         nodes_modes=['BRANCH_LEQ', 'LEAF', 'LEAF'], nodes_values=[0.5, 0.0, 0.0],
                         nodes_truenodeids=[1, 0, 0], nodes_falsenodeids=[2, 0, 0],
                         target_treeids=[0, 0], target_nodeids=[1, 2], target_ids=[0, 0], target_weights=[10.0, 20.0],
                         post_transform='NONE')
            \(change)
            node = helper.make_node('TreeEnsembleRegressor', ['x'], ['y'], name='forest', domain='ai.onnx.ml', **attrs)
            g = helper.make_graph([node], 'g', [helper.make_tensor_value_info('x', TensorProto.FLOAT, \(input))],
                                  [helper.make_tensor_value_info('y', TensorProto.FLOAT, None)])
            m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 17), helper.make_opsetid('ai.onnx.ml', 3)])
            onnx.save(m, d + '/model.onnx')
            """)
    }

    @Test("a sound tree runs, NaN follows the false branch, and too few features is an error")
    func soundTree() throws {
        let directory = try Self.tree(input: "[None, None]")
        defer { TestSupport.remove(directory) }
        let model = try ONNXModel(path: directory + "/model.onnx")
        let y = try #require(try model.run(["x": Tensor([Float](arrayLiteral: 0, 0.2, 0, 0, 0.9, 0, 0, .nan, 0), shape: [3, 3])])["y"])
        #expect(y.shape == [3, 1])
        #expect(y.scalars(as: Float.self) == [10, 20, 20])
        #expect { try model.run(["x": Tensor([Float](repeating: 0, count: 1), shape: [1, 1])]) } throws: {
            "\($0)".contains("TreeEnsembleRegressor node `forest`: the trees read feature 1 but the input has 1 features")
        }
        #expect { try model.run(["x": Tensor(strings: ["a", "b", "c"], shape: [1, 3])]) } throws: { "\($0)".contains("expected float32, got string") }
        let declared = try Self.tree()
        defer { TestSupport.remove(declared) }
        #expect { try ONNXModel(path: declared + "/model.onnx").run(["x": Tensor([Float](repeating: 0, count: 2), shape: [1, 2])]) } throws: {
            "\($0)".contains("input `x`: expected shape [-1, 3], got [1, 2]")
        }
    }

    @Test(
        "malformed tree attributes fail at load, naming the node and the fault",
        arguments: [
            ("attrs['nodes_truenodeids'] = [9, 0, 0]", "node 0 of tree 0 points to node 9, which does not exist"),
            ("attrs['nodes_truenodeids'] = [0, 0, 0]", "is reached twice"),
            ("attrs['nodes_modes'] = ['BRANCH_SOMETIMES', 'LEAF', 'LEAF']", "unknown node mode `BRANCH_SOMETIMES`"),
            ("attrs['post_transform'] = 'SQUASH'", "unknown post_transform `SQUASH`"),
            ("attrs['nodes_values'] = [0.5]", "nodes_values has 1 entries but nodes_treeids has 3"),
            ("attrs['target_ids'] = [0, 3]", "a leaf weight names target 3 of 1"),
            ("attrs['target_nodeids'] = [1, 7]", "a weight names node 7 of tree 0, which does not exist")
        ])
    func malformedTree(change: String, message: String) throws {
        let directory = try Self.tree(change)
        defer { TestSupport.remove(directory) }
        #expect { try ONNXModel(path: directory + "/model.onnx") } throws: { error in
            let text = "\(error)"
            return text.contains("TreeEnsembleRegressor node `forest`") && text.contains(message)
        }
    }

    @Test("linear models and ZipMap check their inputs against their attributes")
    func linearAndZipMap() throws {
        let directory = try LoaderTests.make(
            """
            nodes = [helper.make_node('LinearClassifier', ['x'], ['label', 'scores'], name='linear', domain='ai.onnx.ml',
                                      coefficients=[1.0, 0.0, 0.0, 1.0, -1.0, -1.0], intercepts=[0.0, 0.0, 0.5],
                                      classlabels_strings=['a', 'b', 'c'], post_transform='SOFTMAX'),
                     helper.make_node('ZipMap', ['scores'], ['probabilities'], name='zip', domain='ai.onnx.ml',
                                      classlabels_strings=['a', 'b', 'c'])]
            g = helper.make_graph(nodes, 'g', [helper.make_tensor_value_info('x', TensorProto.FLOAT, [None, None])],
                                  [helper.make_tensor_value_info('label', TensorProto.STRING, None),
                                   helper.make_value_info('probabilities', helper.make_sequence_type_proto(
                                       helper.make_map_type_proto(TensorProto.STRING, helper.make_tensor_type_proto(TensorProto.FLOAT, None))))])
            m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 17), helper.make_opsetid('ai.onnx.ml', 1)])
            onnx.save(m, d + '/model.onnx')
            """)
        defer { TestSupport.remove(directory) }
        let model = try ONNXModel(path: directory + "/model.onnx")
        #expect(model.outputs[1].nonTensorType == "seq(map(string,tensor(float)))")
        let results = try model.run(values: ["x": .tensor(Tensor([Float](arrayLiteral: 3, 0, 0, 3, -2, -2), shape: [3, 2]))])
        #expect(results["label"]?.tensor?.strings == ["a", "b", "c"])
        guard case .sequence(let rows)? = results["probabilities"], case .map(let keys, let values) = rows[0] else {
            Issue.record("probabilities is not a sequence of maps")
            return
        }
        #expect(rows.count == 3 && keys.strings == ["a", "b", "c"])
        let p = values.scalars(as: Float.self)
        #expect(abs(p.reduce(0, +) - 1) < 1e-6 && p[0] > p[1] && p[0] > p[2])
        // The tensor API refuses a sequence output, and says which.
        #expect { try model.run(["x": Tensor([Float](repeating: 0, count: 2), shape: [1, 2])]) } throws: {
            "\($0)".contains("output `probabilities` is a seq(map(string,tensor(float))), not a tensor")
        }
        #expect { try model.run(values: ["x": .tensor(Tensor([Float](repeating: 0, count: 3), shape: [1, 3]))]) } throws: {
            "\($0)".contains("LinearClassifier node `linear`: 6 coefficients do not fit 3 classes × 3 features")
        }
    }
}
