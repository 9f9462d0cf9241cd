import Foundation
import Testing
import VesselTestSupport

@Suite("vessel init, run and bench")
struct RuntimeCLITests {
    static var nodeCases: String { TestSupport.packageRoot + "/.build/onnx-node-cases" }

    @Test("init writes a valid starter manifest from a model it need not be able to run")
    func initManifest() async throws {
        let directory = try TestSupport.makeTemporaryDirectory("init")
        defer { TestSupport.remove(directory) }
        try FileManager.default.copyItem(atPath: TestSupport.exampleDirectory + "/model.onnx", toPath: directory + "/Iris Model.onnx")
        let result = try await TestSupport.vessel(["init", directory + "/Iris Model.onnx"], home: directory + "/home")
        #expect(result.status == 0, "\(result.standardError)")
        let yaml = try String(contentsOfFile: directory + "/vessel.yaml", encoding: .utf8)
        #expect(yaml.contains("name: iris-model"))
        #expect(yaml.contains("shape: [-1, 4]"))
        #expect(try await TestSupport.vessel(["validate", directory], home: directory + "/home").status == 0)
        let again = try await TestSupport.vessel(["init", directory + "/Iris Model.onnx"], home: directory + "/home")
        #expect(again.status != 0)
        #expect(again.standardError.contains("--force"))
    }

    @Test("run takes .pb, .npy and JSON inputs and writes .npy outputs numpy reads")
    func run() async throws {
        let directory = try TestSupport.makeTemporaryDirectory("run")
        defer { TestSupport.remove(directory) }
        let model = Self.nodeCases + "/test_add/model.onnx"
        let data = Self.nodeCases + "/test_add/test_data_set_0"
        try TestSupport.python("import numpy as np; np.save('\(directory)/y.npy', np.ones((3, 4, 5), dtype=np.float32))")
        let result = try await TestSupport.vessel(
            [
                "run", model, "--input", "x=\(data)/input_0.pb", "--input", "y=\(directory)/y.npy",
                "--output-dir", directory + "/out"
            ], home: directory + "/home")
        #expect(result.status == 0, "\(result.standardError)")
        let check = try TestSupport.python(
            """
            import numpy as np, onnx
            from onnx import numpy_helper
            x = numpy_helper.to_array(onnx.load_tensor('\(data)/input_0.pb'))
            out = np.load('\(directory)/out/sum.npy')
            print(np.allclose(out, x + 1), out.dtype, out.shape)
            """)
        #expect(check.hasPrefix("True float32 (3, 4, 5)"), "\(check)")
        // Inline JSON, printed back.
        let relu = try await TestSupport.vessel(
            ["run", Self.nodeCases + "/test_relu/model.onnx", "--input", "x=\(Self.nodeCases)/test_relu/test_data_set_0/input_0.pb"], home: directory)
        #expect(relu.status == 0)
        #expect(relu.standardOutput.hasPrefix("y  float32[3, 4, 5]"))
        let wrong = try await TestSupport.vessel(["run", model, "--input", "x=[[1, 2]]", "--input", "y=[[1, 2]]"], home: directory)
        #expect(wrong.status != 0)
        #expect(wrong.standardError.contains("input `x`: expected shape [3, 4, 5]"), "\(wrong.standardError)")
        let unknown = try await TestSupport.vessel(["run", model, "--input", "z=[1]"], home: directory)
        #expect(unknown.standardError.contains("no input `z`"))
    }

    @Test("the bundled iris example runs natively and gives its examples' outputs")
    func irisExample() async throws {
        let home = try TestSupport.makeTemporaryDirectory("iris-run")
        defer { TestSupport.remove(home) }
        let result = try await TestSupport.vessel(
            [
                "run", TestSupport.exampleDirectory + "/model.onnx",
                "--input", "X=[[5.1, 3.5, 1.4, 0.2], [7.0, 3.2, 4.7, 1.4], [6.3, 3.3, 6.0, 2.5]]"
            ], home: home)
        #expect(result.status == 0, "\(result.standardError)")
        let lines = result.standardOutput.split(separator: "\n").map(String.init)
        #expect(lines.first == "label  int64[3]")
        #expect(lines.dropFirst().first == "[0, 1, 2]", "\(lines)")
        #expect(lines.contains("probabilities  float32[3, 3]"))
    }

    @Test("maps go in as JSON objects and ZipMap's sequences of maps come out as JSON")
    func mapsAndSequences() async throws {
        let directory = try TestSupport.makeTemporaryDirectory("maps")
        defer { TestSupport.remove(directory) }
        let fixtures = TestSupport.packageRoot + "/Tests/VesselONNXTests/Fixtures/ml"
        let vectorized = try await TestSupport.vessel(
            ["run", fixtures + "/dict_vectorizer/model.onnx", "--input", #"features={"a": 0.5, "c": -1.25}"#], home: directory)
        #expect(vectorized.status == 0, "\(vectorized.standardError)")
        #expect(vectorized.standardOutput.hasPrefix("variable  float32[1, 1]"), "\(vectorized.standardOutput)")
        let notAMap = try await TestSupport.vessel(["run", fixtures + "/dict_vectorizer/model.onnx", "--input", "features=[1, 2]"], home: directory)
        #expect(notAMap.status != 0)
        #expect(notAMap.standardError.contains("input `features` is a map(string,tensor(float))"), "\(notAMap.standardError)")

        let forest = fixtures + "/random_forest_binary"
        let zipped = try await TestSupport.vessel(
            [
                "run", forest + "/model.onnx", "--input", "X=\(forest)/test_data_set_0/input_0.pb",
                "--output-dir", directory + "/out"
            ], home: directory)
        #expect(zipped.status == 0, "\(zipped.standardError)")
        let rows =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: directory + "/out/output_probability.json"))) as? [[String: Double]]
        #expect(rows?.count == 50)
        #expect(rows?.allSatisfy { Set($0.keys) == ["0", "1"] && abs($0.values.reduce(0, +) - 1) < 1e-5 } == true)
        #expect(FileManager.default.fileExists(atPath: directory + "/out/output_label.npy"))

        // init leaves the sequence of maps out of the tensor signature and says why.
        try FileManager.default.copyItem(atPath: forest + "/model.onnx", toPath: directory + "/forest.onnx")
        let initialized = try await TestSupport.vessel(["init", directory + "/forest.onnx"], home: directory)
        #expect(initialized.status == 0, "\(initialized.standardError)")
        #expect(initialized.standardError.contains("`output_probability` is a seq(map(int64,tensor(float)))"))
        let yaml = try String(contentsOfFile: directory + "/vessel.yaml", encoding: .utf8)
        #expect(yaml.contains("name: output_label") && !yaml.contains("name: output_probability"))
    }

    @Test("bench reports latency percentiles, throughput and peak RSS as JSON")
    func bench() async throws {
        let result = try await TestSupport.vessel(
            ["bench", Self.nodeCases + "/test_matmul_2d/model.onnx", "--iterations", "20", "--threads", "1", "--json"], home: NSTemporaryDirectory())
        #expect(result.status == 0, "\(result.standardError)")
        let report = try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any]
        for key in ["p50_ms", "p90_ms", "p99_ms", "throughput_per_s", "load_ms"] { #expect(report?[key] is Double, "\(key)") }
        #expect(report?["iterations"] as? Int == 20)
        let p50 = report?["p50_ms"] as? Double ?? 0, p99 = report?["p99_ms"] as? Double ?? 0
        #expect(p50 <= p99)
        // The peak resident set of the process that loaded and ran the model: at least what the
        // runtime's own binary takes, far below the machine.
        let peak = report?["peak_rss_mib"] as? Double ?? 0
        #expect(peak > 5 && peak < 4096, "\(peak)")
        #expect(["avx512", "haswell", "baseline"].contains(report?["kernels"] as? String ?? ""))
    }

    @Test("VESSEL_PROFILE times the timed runs only, per operator type or per node, not the warm-up")
    func benchProfile() async throws {
        let model = Self.nodeCases + "/test_matmul_2d/model.onnx"
        for (setting, label) in [("1", "per operator (VESSEL_PROFILE=1)"), ("nodes", "per node (VESSEL_PROFILE=nodes)")] {
            let result = try await TestSupport.run(
                TestSupport.vesselBinary, ["bench", model, "--iterations", "7", "--warmup", "3", "--threads", "1"],
                environment: ["VESSEL_HOME": NSTemporaryDirectory(), "VESSEL_PROFILE": setting])
            #expect(result.status == 0, "\(result.standardError)")
            let lines = result.standardOutput.split(separator: "\n")
            let header = try #require(lines.firstIndex { $0.hasPrefix(label) }, "\(result.standardOutput)")
            // The one MatMul node, its 7 timed calls (3 more ran before them).
            let rows = lines[(header + 1)...].filter { $0.hasPrefix("  MatMul") }
            #expect(rows.count == 1 && rows[0].hasSuffix("(7 calls)"), "\(result.standardOutput)")
            #expect(setting == "nodes" ? rows[0].split(separator: " ").count > 4 : rows[0].split(separator: " ").count == 4, "\(rows)")
        }
    }
}
