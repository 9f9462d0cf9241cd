import Foundation
import Testing
import VesselTestSupport

/// `vessel import mlflow` on model directories MLflow itself wrote.
@Suite("vessel import mlflow")
struct ImportMLflowCLITests {
    @Test(
        "sklearn (skops, from a DataFrame; cloudpickle, from an array), onnx and custom pyfunc models import, validate and predict what the model predicts in Python"
    )
    func flavors() async throws {
        let scratch = try TestSupport.makeTemporaryDirectory("mlflow-import")
        defer { TestSupport.remove(scratch) }
        let expected = try TestSupport.python(
            """
            import json, warnings, numpy as np, onnx
            warnings.filterwarnings("ignore")
            import mlflow.sklearn, mlflow.onnx
            from mlflow.models import infer_signature
            from sklearn.datasets import load_wine
            from sklearn.linear_model import LogisticRegression
            X, y = load_wine(return_X_y=True, as_frame=True)
            model = LogisticRegression(max_iter=5000).fit(X, y)
            mlflow.sklearn.save_model(model, "\(scratch)/frame", signature=infer_signature(X, model.predict(X)), input_example=X.iloc[:2])
            array = X.to_numpy()
            mlflow.sklearn.save_model(model, "\(scratch)/array", signature=infer_signature(array, model.predict(array)),
                                      input_example=array[:2], serialization_format="cloudpickle")
            mlflow.onnx.save_model(onnx.load("\(TestSupport.exampleDirectory)/model.onnx"), "\(scratch)/onnx")
            import mlflow.pyfunc, pandas as pd
            class Scorer(mlflow.pyfunc.PythonModel):
                def predict(self, context, model_input, params=None):
                    return model_input["amount"] * 2.0 + model_input["name"].str.len()
            frame = pd.DataFrame({"name": ["ann", "bartholomew"], "amount": [1.5, 4.0]})
            mlflow.pyfunc.save_model("\(scratch)/pyfunc", python_model=Scorer(), signature=infer_signature(frame, Scorer().predict(None, frame)),
                                     input_example=frame)
            rows = [0, 80, 170]
            print(json.dumps({"columns": list(X.columns), "rows": array[rows].tolist(), "predictions": model.predict(array[rows]).tolist()}))
            """)
        let reference = try #require(try JSONSerialization.jsonObject(with: Data(expected.split(separator: "\n").last!.utf8)) as? [String: Any])
        let columns = try #require(reference["columns"] as? [String])
        let rows = try #require(reference["rows"] as? [[Double]])
        let predictions = try #require(reference["predictions"] as? [Int])
        let environment = ["VESSEL_HOME": scratch + "/home", "VESSEL_PYTHON": TestSupport.python]
        func vessel(_ arguments: [String]) async throws -> TestSupport.ProcessResult {
            try await TestSupport.run(TestSupport.vesselBinary, arguments, environment: environment, currentDirectory: scratch)
        }

        // Named columns in, as the DataFrame had them.
        var imported = try await vessel(["import", "mlflow", "frame", "-o", "frame-vessel"])
        #expect(imported.status == 0, "\(imported.standardError)")
        let yaml = try String(contentsOfFile: scratch + "/frame-vessel/vessel.yaml", encoding: .utf8)
        #expect(yaml.contains("format: skops") && yaml.contains("type: columns") && yaml.contains("\"alcohol\""), "\(yaml)")
        #expect(!yaml.contains("mlflow=="), "MLflow itself is not needed to load the model")
        var arguments = ["predict", "frame-vessel", "--json"]
        for (k, column) in columns.enumerated() {
            arguments += ["-i", "\(column)=[\(rows.map { String($0[k]) }.joined(separator: ","))]"]
        }
        var predicted = try await vessel(arguments)
        #expect(predicted.status == 0, "\(predicted.standardError)")
        #expect(
            predicted.standardOutput.contains(
                #""name":"predictions","datatype":"INT64","shape":[3],"data":\#(predictions)"#.replacingOccurrences(of: " ", with: "")),
            "\(predicted.standardOutput)")
        let tested = try await vessel(["test", "frame-vessel"])
        #expect(tested.status == 0, "the input example runs: \(tested.standardOutput) \(tested.standardError)")

        // One matrix in.
        imported = try await vessel(["import", "mlflow", "array", "-o", "array-vessel", "--name", "wine-array"])
        #expect(imported.status == 0, "\(imported.standardError)")
        let matrix = "[" + rows.map { "[" + $0.map { String($0) }.joined(separator: ",") + "]" }.joined(separator: ",") + "]"
        predicted = try await vessel(["predict", "array-vessel", "--json", "-i", "features=\(matrix)"])
        #expect(predicted.status == 0 && predicted.standardOutput.contains(#""model_name":"wine-array""#), "\(predicted.standardError)")
        #expect(predicted.standardOutput.contains(#""data":\#(predictions)"#.replacingOccurrences(of: " ", with: "")), "\(predicted.standardOutput)")

        // ONNX stays native: the graph's own signature, the onnx backend.
        imported = try await vessel(["import", "mlflow", "onnx"])
        #expect(imported.status == 0, "\(imported.standardError)")
        let onnxYAML = try String(contentsOfFile: scratch + "/onnx-vessel/vessel.yaml", encoding: .utf8)
        #expect(onnxYAML.contains("backend: onnx") && onnxYAML.contains(#"name: "probabilities""#), "\(onnxYAML)")
        predicted = try await vessel(["predict", "onnx-vessel", "-i", "X=[[6.3,3.3,6.0,2.5]]", "--json"])
        #expect(
            predicted.status == 0 && predicted.standardOutput.contains(#""name":"label","datatype":"INT64","shape":[1],"data":[2]"#),
            "\(predicted.standardOutput)")

        // Any python_function model: the MLflow directory itself, loaded by MLflow's pyfunc, with
        // its column signature kept as columns (text as well as numbers).
        imported = try await vessel(["import", "mlflow", "pyfunc"])
        #expect(imported.status == 0, "\(imported.standardError)")
        let pyfuncYAML = try String(contentsOfFile: scratch + "/pyfunc-vessel/vessel.yaml", encoding: .utf8)
        #expect(pyfuncYAML.contains(#"model: {format: mlflow, file: "mlflow_model"}"#) && pyfuncYAML.contains(#""mlflow-skinny==3.17.2""#), "\(pyfuncYAML)")
        predicted = try await vessel(["predict", "pyfunc-vessel", "--json", "-i", #"name=["ann","bartholomew","x"]"#, "-i", "amount=[1.5,4.0,10]"])
        #expect(
            predicted.status == 0 && predicted.standardOutput.contains(#""name":"predictions","datatype":"FP64","shape":[3],"data":[6.0,19.0,21.0]"#),
            "\(predicted.standardOutput) \(predicted.standardError)")
        #expect(try await vessel(["test", "pyfunc-vessel"]).status == 0)

        // Refusals name the problem and leave nothing behind.
        let again = try await vessel(["import", "mlflow", "frame", "-o", "frame-vessel"])
        #expect(again.status != 0 && again.standardError.contains("already exists"), "\(again.standardError)")
        try FileManager.default.createDirectory(atPath: scratch + "/plain", withIntermediateDirectories: true)
        let notMLflow = try await vessel(["import", "mlflow", "plain", "-o", "nothing"])
        #expect(notMLflow.status != 0 && notMLflow.standardError.contains("has no readable MLmodel"), "\(notMLflow.standardError)")
        try FileManager.default.removeItem(atPath: scratch + "/array/MLmodel")
        try TestSupport.write("flavors:\n  sklearn: {pickled_model: model.pkl, serialization_format: cloudpickle}\n", to: scratch + "/array/MLmodel")
        let unsigned = try await vessel(["import", "mlflow", "array", "-o", "unsigned"])
        #expect(unsigned.status != 0 && unsigned.standardError.contains("has no signature"), "\(unsigned.standardError)")
        #expect(!FileManager.default.fileExists(atPath: scratch + "/unsigned") && !FileManager.default.fileExists(atPath: scratch + "/nothing"))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: scratch).filter { $0.hasPrefix(".") }
        #expect(leftovers.isEmpty, "\(leftovers)")
    }
}
