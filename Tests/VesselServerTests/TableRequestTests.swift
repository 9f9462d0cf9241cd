import Foundation
import Testing
@testable import VesselServer
import VesselTestSupport

/// iris served with a `columns` step: clients send named measurements, over OIP v2, MLflow
/// dataframes and Cog, and get the same species.
@Suite("table requests")
struct TableRequestTests {
    @Test("named columns in, the same answer from OIP v2, MLflow dataframe_records and dataframe_split, and Cog")
    func namedColumns() async throws {
        let parent = try TestSupport.makeTemporaryDirectory("table-iris")
        defer { TestSupport.remove(parent) }
        let directory = try TestSupport.copyExample(to: parent + "/iris")
        var yaml = try String(contentsOfFile: directory + "/vessel.yaml", encoding: .utf8)
        yaml = yaml.replacingOccurrences(
            of: "postprocess:\n",
            with: """
                preprocess:
                  - type: columns
                    input: X
                    columns: [sepal_length, sepal_width, petal_length, petal_width]

                postprocess:

                """)
        // Examples are written in the served signature: one value per column.
        yaml = yaml.replacingOccurrences(
            of: "      X: [[5.1, 3.5, 1.4, 0.2]]", with: "      {sepal_length: [5.1], sepal_width: [3.5], petal_length: [1.4], petal_width: [0.2]}"
        )
        .replacingOccurrences(
            of: "      X: [[7.0, 3.2, 4.7, 1.4]]", with: "      {sepal_length: [7.0], sepal_width: [3.2], petal_length: [4.7], petal_width: [1.4]}"
        )
        .replacingOccurrences(
            of: "      X: [[6.3, 3.3, 6.0, 2.5]]", with: "      {sepal_length: [6.3], sepal_width: [3.3], petal_length: [6.0], petal_width: [2.5]}"
        )
        .replacingOccurrences(of: "    inputs:\n      {", with: "    inputs: {").replacingOccurrences(of: "[2.5]}\n", with: "[2.5]}\n")
        try TestSupport.write(yaml, to: directory + "/vessel.yaml")
        let running = try await RunningServer.start([directory])
        defer { Task { await running.stop() } }

        let columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
        let rows: [[Double]] = [[5.1, 3.5, 1.4, 0.2], [6.3, 3.3, 6.0, 2.5]]
        let tensors = columns.enumerated().map { k, name in
            #"{"name":"\#(name)","shape":[2],"datatype":"FP32","data":[\#(rows[0][k]),\#(rows[1][k])]}"#
        }.joined(separator: ",")
        let oip = try await running.infer(#"{"inputs":[\#(tensors)]}"#)
        let outputs = jsonObject(oip)["outputs"] as? [[String: Any]] ?? []
        #expect(oip.status == 200 && outputs.last?["data"] as? [String] == ["setosa", "virginica"], "\(oip.text)")

        let records = rows.map { row in "{" + columns.enumerated().map { #""\#($1)":\#(row[$0])"# }.joined(separator: ",") + "}" }.joined(separator: ",")
        let mlflow = try await running.request(
            "POST", "/invocations", headers: ["Content-Type": "application/json"],
            body: Array(#"{"dataframe_records":[\#(records)]}"#.utf8))
        let predictions = jsonObject(mlflow)["predictions"] as? [String: Any]
        #expect(mlflow.status == 200 && predictions?["species"] as? [String] == ["setosa", "virginica"], "\(mlflow.text)")

        let split = try await running.request(
            "POST", "/invocations", headers: ["Content-Type": "application/json"],
            body: Array(#"{"dataframe_split":{"columns":["petal_width","petal_length","sepal_width","sepal_length"],"data":[[0.2,1.4,3.5,5.1]]}}"#.utf8))
        #expect(split.status == 200 && (jsonObject(split)["predictions"] as? [String: Any])?["species"] as? [String] == ["setosa"], "\(split.text)")

        let cog = try await running.request(
            "POST", "/predictions", headers: ["Content-Type": "application/json"],
            body: Array(#"{"input":{"sepal_length":6.3,"sepal_width":3.3,"petal_length":6.0,"petal_width":2.5}}"#.utf8))
        #expect(cog.status == 200 && (jsonObject(cog)["output"] as? [String: Any])?["species"] as? String == "virginica", "\(cog.text)")

        let missing = try await running.infer(#"{"inputs":[{"name":"sepal_length","shape":[1],"datatype":"FP32","data":[5.1]}]}"#)
        #expect(missing.status == 400 && missing.text.contains("missing input `sepal_width`"), "\(missing.text)")
    }
}
