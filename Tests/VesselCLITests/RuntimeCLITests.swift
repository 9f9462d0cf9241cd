import Foundation
import Testing
import VesselTestSupport

@Suite("vessel init, run and bench")
struct RuntimeCLITests {
    static var nodeCases: String { TestSupport.packageRoot + "/.build/onnx-node-cases" }

    @Test("init writes a valid starter manifest from a model it need not be able to run")
    func initManifest() throws {
        let directory = try TestSupport.makeTemporaryDirectory("init")
        defer { TestSupport.remove(directory) }
        try FileManager.default.copyItem(atPath: TestSupport.exampleDirectory + "/model.onnx", toPath: directory + "/Iris Model.onnx")
        let result = try TestSupport.vessel(["init", directory + "/Iris Model.onnx"], home: directory + "/home")
        #expect(result.status == 0, "\(result.standardError)")
        let yaml = try String(contentsOfFile: directory + "/vessel.yaml", encoding: .utf8)
        #expect(yaml.contains("name: iris-model"))
        #expect(yaml.contains("shape: [-1, 4]"))
        #expect(try TestSupport.vessel(["validate", directory], home: directory + "/home").status == 0)
        let again = try TestSupport.vessel(["init", directory + "/Iris Model.onnx"], home: directory + "/home")
        #expect(again.status != 0)
        #expect(again.standardError.contains("--force"))
    }

    @Test("run takes .pb, .npy and JSON inputs and writes .npy outputs numpy reads")
    func run() throws {
        let directory = try TestSupport.makeTemporaryDirectory("run")
        defer { TestSupport.remove(directory) }
        let model = Self.nodeCases + "/test_add/model.onnx"
        let data = Self.nodeCases + "/test_add/test_data_set_0"
        try TestSupport.python("import numpy as np; np.save('\(directory)/y.npy', np.ones((3, 4, 5), dtype=np.float32))")
        let result = try TestSupport.vessel(["run", model, "--input", "x=\(data)/input_0.pb", "--input", "y=\(directory)/y.npy",
                                             "--output-dir", directory + "/out"], home: directory + "/home")
        #expect(result.status == 0, "\(result.standardError)")
        let check = try TestSupport.python("""
        import numpy as np, onnx
        from onnx import numpy_helper
        x = numpy_helper.to_array(onnx.load_tensor('\(data)/input_0.pb'))
        out = np.load('\(directory)/out/sum.npy')
        print(np.allclose(out, x + 1), out.dtype, out.shape)
        """)
        #expect(check.hasPrefix("True float32 (3, 4, 5)"), "\(check)")
        // Inline JSON, printed back.
        let relu = try TestSupport.vessel(["run", Self.nodeCases + "/test_relu/model.onnx", "--input", "x=\(Self.nodeCases)/test_relu/test_data_set_0/input_0.pb"], home: directory)
        #expect(relu.status == 0)
        #expect(relu.standardOutput.hasPrefix("y  float32[3, 4, 5]"))
        let wrong = try TestSupport.vessel(["run", model, "--input", "x=[[1, 2]]", "--input", "y=[[1, 2]]"], home: directory)
        #expect(wrong.status != 0)
        #expect(wrong.standardError.contains("input `x`: expected shape [3, 4, 5]"), "\(wrong.standardError)")
        let unknown = try TestSupport.vessel(["run", model, "--input", "z=[1]"], home: directory)
        #expect(unknown.standardError.contains("no input `z`"))
    }

    @Test("bench reports latency percentiles and throughput as JSON")
    func bench() throws {
        let result = try TestSupport.vessel(["bench", Self.nodeCases + "/test_matmul_2d/model.onnx", "--iterations", "20", "--threads", "1", "--json"], home: NSTemporaryDirectory())
        #expect(result.status == 0, "\(result.standardError)")
        let report = try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any]
        for key in ["p50_ms", "p90_ms", "p99_ms", "throughput_per_s", "load_ms"] { #expect(report?[key] is Double, "\(key)") }
        #expect(report?["iterations"] as? Int == 20)
        let p50 = report?["p50_ms"] as? Double ?? 0, p99 = report?["p99_ms"] as? Double ?? 0
        #expect(p50 <= p99)
    }
}
