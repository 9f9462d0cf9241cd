import Foundation
import Testing
@testable import VesselONNX
import VesselTensor
import VesselTestSupport

@Suite("loader")
struct LoaderTests {
    /// Builds a model with the onnx wheel in the test venv; returns its directory.
    static func make(_ script: String) throws -> String {
        let directory = try TestSupport.makeTemporaryDirectory("onnx")
        try TestSupport.python("""
        import numpy as np, onnx
        from onnx import helper, numpy_helper, TensorProto
        d = '\(directory)'
        \(script)
        """)
        return directory
    }

    @Test("a model with unknown operators fails at load, listing each with its nodes and opset")
    func unsupportedOperators() throws {
        let directory = try Self.make("""
        nodes = [helper.make_node('Relu', ['x'], ['a']),
                 helper.make_node('FancyOp', ['a'], ['b'], name='first_fancy', domain='com.example'),
                 helper.make_node('FancyOp', ['b'], ['c'], name='second_fancy', domain='com.example'),
                 helper.make_node('Attention', ['c', 'c', 'c'], ['y'], name='attn')]
        g = helper.make_graph(nodes, 'g', [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 2, 3, 4])],
                              [helper.make_tensor_value_info('y', TensorProto.FLOAT, None)])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 23), helper.make_opsetid('com.example', 2)])
        onnx.save(m, d + '/model.onnx')
        """)
        defer { TestSupport.remove(directory) }
        #expect {
            try ONNXModel(path: directory + "/model.onnx")
        } throws: { error in
            guard case ONNXError.unsupportedOperators(let operators) = error else { return false }
            let text = "\(error)"
            return operators.count == 2 && text.contains("2 operators this runtime does not implement")
                && text.contains("Attention (opset 23) at `attn`")
                && text.contains("com.example.FancyOp (opset 2) at `first_fancy`, `second_fancy`")
        }
    }

    @Test("external data is memory-mapped, and refused when its location leaves the model directory")
    func externalData() throws {
        let directory = try Self.make("""
        w = np.arange(4096, dtype=np.float32).reshape(64, 64) / 4096
        g = helper.make_graph([helper.make_node('MatMul', ['x', 'w'], ['y'])], 'g',
                              [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 64])],
                              [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, 64])], [numpy_helper.from_array(w, 'w')])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 17)])
        onnx.save_model(m, d + '/model.onnx', save_as_external_data=True, location='weights.bin', size_threshold=0)
        for location in ['../outside.bin', '/etc/hostname']:
            bad = onnx.load(d + '/model.onnx', load_external_data=False)
            for t in bad.graph.initializer:
                for e in t.external_data:
                    if e.key == 'location': e.value = location
            onnx.save(bad, d + '/bad_' + ('parent' if location.startswith('..') else 'absolute') + '.onnx')
        """)
        defer { TestSupport.remove(directory) }
        let model = try ONNXModel(path: directory + "/model.onnx")
        let weights = try #require(model.graph.initializers["w"])
        #expect(weights.storage.isReadOnly, "external data should be a view over the mapped file")
        let x = Tensor([Float](repeating: 1, count: 64), shape: [1, 64])
        let y = try #require(try model.run(["x": x])["y"]).scalars(as: Float.self)
        // Column j of w sums (64·i + j)/4096 over i.
        #expect(abs(y[0] - Float((0..<64).reduce(0) { $0 + 64 * $1 }) / 4096) < 1e-3)
        for bad in ["bad_parent", "bad_absolute"] {
            #expect {
                try ONNXModel(path: directory + "/\(bad).onnx")
            } throws: { "\($0)".contains("leaves the model's directory") }
        }
        // A symlink inside the directory that points out is refused too.
        try FileManager.default.moveItem(atPath: directory + "/weights.bin", toPath: directory + "/../vessel-outside-\(UUID().uuidString).bin")
        let outside = try FileManager.default.contentsOfDirectory(atPath: directory + "/..").first { $0.hasPrefix("vessel-outside-") }!
        defer { TestSupport.remove(directory + "/../" + outside) }
        try FileManager.default.createSymbolicLink(atPath: directory + "/weights.bin", withDestinationPath: "../" + outside)
        #expect { try ONNXModel(path: directory + "/model.onnx") } throws: { "\($0)".contains("resolves outside") }
    }

    @Test("inputs are checked against the model's declared types and shapes")
    func inputValidation() throws {
        let model = try ONNXModel(path: TestSupport.packageRoot + "/.build/onnx-node-cases/test_add/model.onnx")
        let good = Tensor([Float](repeating: 1, count: 60), shape: [3, 4, 5])
        #expect(try model.run(["x": good, "y": good])["sum"]?.shape == [3, 4, 5])
        #expect { try model.run(["x": good]) } throws: { "\($0)" == "missing input `y`" }
        #expect { try model.run(["x": good, "y": good, "z": good]) } throws: { "\($0)".contains("unknown input `z`") }
        #expect { try model.run(["x": good, "y": good.reshaped([60])]) } throws: { "\($0)".contains("expected shape [3, 4, 5], got [60]") }
        let ints = Tensor([Int64](repeating: 1, count: 60), shape: [3, 4, 5])
        #expect { try model.run(["x": good, "y": ints]) } throws: { "\($0)".contains("expected float32, got int64") }
    }

    @Test("garbage is refused with an error, never a crash", arguments: [[UInt8](), Array("not a model".utf8), [UInt8](repeating: 0xff, count: 64)])
    func garbage(_ bytes: [UInt8]) {
        #expect(throws: ONNXError.self) { try ONNXModel(data: Data(bytes), directory: nil) }
    }
}
