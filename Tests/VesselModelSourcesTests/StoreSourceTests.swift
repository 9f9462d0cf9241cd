import Foundation
import Testing
import VesselArtifact
import VesselModel
import VesselONNX
import VesselModelSources
import VesselStore
import VesselTensor
import VesselTestSupport

@Suite("models served from the store")
struct StoreSourceTests {
    /// A MatMul + Add whose weights are external data in `net/data/weights.bin`, beside
    /// `net/model.onnx`, with one example; packed into a fresh store.
    static func packExternalDataModel() throws -> (home: String, model: String, store: Store, reference: Reference) {
        let home = try TestSupport.makeTemporaryDirectory("external-home")
        let model = try TestSupport.makeTemporaryDirectory("external-model")
        _ = try TestSupport.python(
            """
            import json, os, numpy as np, onnx
            from onnx import helper, numpy_helper, TensorProto
            d = '\(model)'
            os.makedirs(d + '/net/data')
            rng = np.random.default_rng(5)
            w = rng.standard_normal((256, 64)).astype(np.float32)
            b = rng.standard_normal(64).astype(np.float32)
            g = helper.make_graph([helper.make_node('MatMul', ['x', 'w'], ['h']), helper.make_node('Add', ['h', 'b'], ['y'])], 'g',
                                  [helper.make_tensor_value_info('x', TensorProto.FLOAT, ['N', 256])],
                                  [helper.make_tensor_value_info('y', TensorProto.FLOAT, ['N', 64])],
                                  [numpy_helper.from_array(w, 'w'), numpy_helper.from_array(b, 'b')])
            m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 17)])
            m.ir_version = 8
            onnx.save_model(m, d + '/net/model.onnx', save_as_external_data=True, all_tensors_to_one_file=True,
                            location='data/weights.bin', size_threshold=0)
            x = rng.standard_normal((1, 256)).astype(np.float32)
            y = (x.astype(np.float64) @ w + b).astype(np.float32)
            # A second example reads its input from a file declared, wrongly, as weights: it must still
            # be unpacked, since the examples read it from the directory.
            x2 = rng.standard_normal((2, 256)).astype(np.float32)
            os.makedirs(d + '/examples')
            np.save(d + '/examples/x2.npy', x2)
            y2 = (x2.astype(np.float64) @ w + b).astype(np.float32)
            open(d + '/vessel.yaml', 'w').write(f'''schemaVersion: 1
            name: extnet
            version: "1"
            model: {{format: onnx, file: net/model.onnx}}
            files:
              - path: net/data/weights.bin
                role: weights
              - path: examples/x2.npy
                role: weights
            signature:
              inputs: [{{name: x, dtype: float32, shape: [batch, 256]}}]
              outputs: [{{name: y, dtype: float32, shape: [batch, 64]}}]
            examples:
              - name: one
                inputs: {{x: {json.dumps(x.tolist())}}}
                outputs: {{y: {json.dumps(y.tolist())}}}
                rtol: 1.0e-4
                atol: 1.0e-4
              - name: two
                inputs: {{x: {{file: examples/x2.npy}}}}
                outputs: {{y: {json.dumps(y2.tolist())}}}
                rtol: 1.0e-4
                atol: 1.0e-4
            ''')
            """)
        let store = try Store(root: home)
        let reference = try Reference(parsing: "extnet:1")
        _ = try Packer(store: store).pack(directory: model, reference: reference)
        return (home, model, store, reference)
    }

    @Test("the model file and its external data are read where they lie in their blobs, checked, and run")
    func externalDataInPlace() throws {
        let (home, model, store, reference) = try Self.packExternalDataModel()
        defer {
            TestSupport.remove(home)
            TestSupport.remove(model)
        }
        let work = home + "/work"
        let loaded = try LoadedModel.open(reference: reference, store: store, workDirectory: work)
        // Neither file was copied; the examples and vessel.yaml were.
        #expect(!FileManager.default.fileExists(atPath: work + "/net/model.onnx"))
        #expect(!FileManager.default.fileExists(atPath: work + "/net/data/weights.bin"))
        #expect(FileManager.default.fileExists(atPath: work + "/vessel.yaml"))
        #expect(FileManager.default.fileExists(atPath: work + "/examples/x2.npy"))
        #expect(try loaded.examples().count == 2)
        let backend = try #require(loaded.backend as? ONNXBackend)
        #expect(backend.model.graph.initializers["w"]?.storage.isReadOnly == true)
        for example in try loaded.examples() {
            let outputs = try loaded.backend.predict(example.inputs)
            let got = try #require(outputs["y"]).scalars(as: Float.self)
            let expected = try #require(example.outputs["y"]).scalars(as: Float.self)
            #expect(zip(got, expected).allSatisfy { abs($0 - $1) <= 1e-4 + 1e-4 * abs($1) }, "\(got.prefix(4)) vs \(expected.prefix(4))")
        }
    }

    @Test(
        "a byte changed in the model's blob or in its external data's: the load fails naming that file and digest",
        arguments: ["net/model.onnx", "net/data/weights.bin"])
    func tamperedInPlace(_ path: String) throws {
        let (home, model, store, reference) = try Self.packExternalDataModel()
        defer {
            TestSupport.remove(home)
            TestSupport.remove(model)
        }
        let artifact = try Artifact.load(reference, from: store)
        let file = try #require(artifact.files.first { $0.path == path })
        // Inside the file's content, past the tar header.
        try TestSupport.flipByte(in: store.blobPath(file.descriptor.digest), at: 600)
        #expect(
            performing: { try LoadedModel.open(reference: reference, store: store, workDirectory: home + "/work") },
            throws: { "\($0)".contains(path) && "\($0)".contains(file.descriptor.digest.description) })
    }
}
