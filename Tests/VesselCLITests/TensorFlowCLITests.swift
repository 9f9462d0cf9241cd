import Foundation
import Testing
import VesselTestSupport

/// The python backend's TensorFlow loaders on models real TensorFlow saved: a SavedModel
/// (`model.export`) and a `.keras` file, run with no predictor code, against the same model in
/// Python. The interpreter is the TensorFlow venv scripts/onnx-test-data.sh makes.
@Suite("TensorFlow SavedModel and Keras models")
struct TensorFlowCLITests {
    static let python = TestSupport.packageRoot + "/.build/venv-tf/bin/python"

    @Test("a SavedModel and a .keras file load without code and give what TensorFlow gives")
    func savedModelAndKeras() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.python), "scripts/onnx-test-data.sh makes .build/venv-tf")
        let scratch = try TestSupport.makeTemporaryDirectory("tensorflow")
        defer { TestSupport.remove(scratch) }
        let made = try await TestSupport.run(
            Self.python,
            [
                "-c",
                """
                import json, os
                os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
                import numpy as np, keras, tensorflow as tf
                keras.utils.set_random_seed(0)
                inputs = keras.Input(shape=(4,), name="features")
                hidden = keras.layers.Dense(8, activation="relu")(inputs)
                outputs = keras.layers.Dense(3, activation="softmax", name="probabilities")(hidden)
                model = keras.Model(inputs, outputs)
                model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
                X = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]], dtype=np.float32)
                model.fit(X, np.array([0, 2, 1]), epochs=3, verbose=0)
                os.makedirs("\(scratch)/keras", exist_ok=True)
                model.save("\(scratch)/keras/model.keras")
                model.export("\(scratch)/savedmodel/model", verbose=False)
                signature = tf.saved_model.load("\(scratch)/savedmodel/model").signatures["serving_default"]
                print(json.dumps({"expected": model(X).numpy().tolist(), "outputs": list(signature.structured_outputs),
                                  "inputs": list(signature.structured_input_signature[1]), "version": tf.__version__}))
                """
            ])
        #expect(made.status == 0, "\(made.standardError)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data((made.standardOutput.split(separator: "\n").last ?? "").utf8)) as? [String: Any])
        let expected = (report["expected"] as? [[Double]] ?? []).flatMap { $0 }
        let savedOutput = try #require((report["outputs"] as? [String])?.first)
        let savedInput = try #require((report["inputs"] as? [String])?.first)
        let version = try #require(report["version"] as? String)
        let rows = "[[5.1,3.5,1.4,0.2],[6.7,3.0,5.2,2.3],[5.9,3.0,4.2,1.5]]"
        for (directory, format, file, input, output) in [
            ("savedmodel", "savedmodel", "model", savedInput, savedOutput),
            ("keras", "keras", "model.keras", "features", "probabilities")
        ] {
            try TestSupport.write(
                """
                name: \(directory)
                version: "1"
                model: {format: \(format), file: \(file)}
                runtime:
                  backend: python
                  requirements: [tensorflow-cpu==\(version)]
                signature:
                  inputs: [{name: \(input), dtype: float32, shape: [-1, 4]}]
                  outputs: [{name: \(output), dtype: float32, shape: [-1, 3]}]

                """, to: "\(scratch)/\(directory)/vessel.yaml")
            let predicted = try await TestSupport.run(
                TestSupport.vesselBinary, ["predict", "\(scratch)/\(directory)", "--json", "-i", "\(input)=\(rows)"],
                environment: ["VESSEL_PYTHON": Self.python, "VESSEL_HOME": scratch + "/home", "TF_CPP_MIN_LOG_LEVEL": "3"])
            #expect(predicted.status == 0, "\(format): \(predicted.standardError)")
            let json = try JSONSerialization.jsonObject(with: Data(predicted.standardOutput.utf8)) as? [String: Any]
            let data = ((json?["outputs"] as? [[String: Any]])?.first?["data"] as? [Double]) ?? []
            #expect(data.count == 9 && zip(data, expected).allSatisfy { abs($0 - $1) <= 1e-6 }, "\(format): \(data) vs \(expected)")
        }

        // A SavedModel whose serving signature wants an input the manifest does not name is refused at load.
        let yaml = try String(contentsOfFile: scratch + "/savedmodel/vessel.yaml", encoding: .utf8)
        try TestSupport.write(yaml.replacingOccurrences(of: "{name: \(savedInput),", with: "{name: wrong,"), to: scratch + "/savedmodel/vessel.yaml")
        let refused = try await TestSupport.run(
            TestSupport.vesselBinary, ["predict", scratch + "/savedmodel", "-i", "wrong=\(rows)"],
            environment: ["VESSEL_PYTHON": Self.python, "VESSEL_HOME": scratch + "/home", "TF_CPP_MIN_LOG_LEVEL": "3"])
        #expect(refused.status != 0 && refused.standardError.contains("the signature lacks \(savedInput)"), "\(refused.standardError)")
    }
}
