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
        try TestSupport.python(
            """
            import numpy as np, onnx
            from onnx import helper, numpy_helper, TensorProto
            d = '\(directory)'
            \(script)
            """)
        return directory
    }

    @Test("IR 3 initializers listed as inputs are constants (folded, fused, not feedable); from IR 4 they are defaults a feed overrides")
    func initializersListedAsInputs() throws {
        let directory = try Self.make(
            """
            rng = np.random.default_rng(3)
            params = {'w': rng.uniform(-1, 1, (4, 3, 1, 1)), 'b': rng.uniform(-1, 1, 4), 'scale': rng.uniform(0.5, 2, 4),
                      'shift': rng.uniform(-1, 1, 4), 'mean': rng.uniform(-1, 1, 4), 'var': rng.uniform(0.5, 2, 4)}
            params = {k: v.astype(np.float32) for k, v in params.items()}
            x = rng.uniform(-1, 1, (1, 3, 2, 2)).astype(np.float32)
            np.save(d + '/x.npy', x)
            def expected(w):
                conv = np.einsum('fc,nchw->nfhw', w[:, :, 0, 0], x) + params['b'][None, :, None, None]
                s = (params['scale'] / np.sqrt(params['var'] + 1e-5))[None, :, None, None]
                return np.maximum((conv - params['mean'][None, :, None, None]) * s + params['shift'][None, :, None, None], 0)
            np.save(d + '/expected.npy', expected(params['w']).astype(np.float32))
            np.save(d + '/w2.npy', (params['w'] * 2).astype(np.float32))
            np.save(d + '/expected2.npy', expected(params['w'] * 2).astype(np.float32))
            nodes = [helper.make_node('Conv', ['x', 'w', 'b'], ['c']),
                     helper.make_node('BatchNormalization', ['c', 'scale', 'shift', 'mean', 'var'], ['n']),
                     helper.make_node('Relu', ['n'], ['y'])]
            inputs = [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 3, 2, 2])] + [
                helper.make_tensor_value_info(k, TensorProto.FLOAT, list(v.shape)) for k, v in params.items()]
            g = helper.make_graph(nodes, 'g', inputs, [helper.make_tensor_value_info('y', TensorProto.FLOAT, None)],
                                  [numpy_helper.from_array(v, k) for k, v in params.items()])
            for ir, opset in [(3, 8), (8, 13)]:
                m = helper.make_model(g, opset_imports=[helper.make_opsetid('', opset)])
                m.ir_version = ir
                onnx.save(m, d + f'/ir{ir}.onnx')
            """)
        defer { TestSupport.remove(directory) }
        func npy(_ name: String) throws -> Tensor { try Tensor(npy: [UInt8](Data(contentsOf: URL(fileURLWithPath: directory + "/" + name)))) }
        func close(_ a: Tensor?, _ b: Tensor) -> Bool {
            guard let a, a.shape == b.shape else { return false }
            return zip(a.scalars(as: Float.self), b.scalars(as: Float.self)).allSatisfy { abs($0 - $1) <= 1e-5 * (1 + abs($1)) }
        }
        let x = try npy("x.npy"), expected = try npy("expected.npy")
        // IR 3: Conv, BatchNormalization and Relu become one node; `w` is no input.
        let old = try ONNXModel(path: directory + "/ir3.onnx")
        #expect(old.graph.nodes.count == 1)
        #expect(old.graph.inputs.map(\.name) == ["x"])
        #expect(close(try old.run(["x": x])["y"], expected))
        #expect(throws: ONNXError.self) { try old.run(["x": x, "w": try npy("w2.npy")]) }
        // IR 8: the same listing makes `w` an input with a default, and a feed overrides it.
        let new = try ONNXModel(path: directory + "/ir8.onnx")
        #expect(new.graph.inputs.count == 7)
        #expect(close(try new.run(["x": x])["y"], expected))
        #expect(close(try new.run(["x": x, "w": try npy("w2.npy")])["y"], try npy("expected2.npy")))
    }

    @Test("outputs nothing reads (Dropout's mask, MaxPool's indices) are dropped at load: the pool fuses, no mask is built; read ones stay")
    func unreadOptionalOutputs() throws {
        let directory = try Self.make(
            """
            rng = np.random.default_rng(5)
            w = numpy_helper.from_array(rng.uniform(-1, 1, (8, 3, 3, 3)).astype(np.float32), 'w')
            nodes = [helper.make_node('Conv', ['x', 'w'], ['c']), helper.make_node('Relu', ['c'], ['r']),
                     helper.make_node('MaxPool', ['r'], ['p', 'i'], kernel_shape=[3, 3], strides=[2, 2]),
                     helper.make_node('Dropout', ['p'], ['y', 'mask'], ratio=0.5)]
            for name, extra in [('unread', []), ('read', ['i', 'mask'])]:
                types = {'y': TensorProto.FLOAT, 'i': TensorProto.INT64, 'mask': TensorProto.BOOL}
                outputs = [helper.make_tensor_value_info(n, types[n], None) for n in ['y'] + extra]
                g = helper.make_graph(nodes, 'g', [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 3, 'h', 'w'])], outputs, [w])
                onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid('', 12)]), d + f'/{name}.onnx')
            """)
        defer { TestSupport.remove(directory) }
        let unread = try ONNXModel(path: directory + "/unread.onnx"), read = try ONNXModel(path: directory + "/read.onnx")
        #expect(unread.graph.nodes.map(\.name) == ["Conv_0+Relu+MaxPool", "Dropout_3"], "\(unread.graph.nodes.map(\.name))")
        #expect(unread.graph.nodes.map(\.outputs) == [["p"], ["y"]], "\(unread.graph.nodes.map(\.outputs))")
        #expect(read.graph.nodes.map(\.outputs) == [["r"], ["p", "i"], ["y", "mask"]], "\(read.graph.nodes.map(\.outputs))")
        var generator = SplitMix64(seed: 5)
        let x = Tensor((0..<(3 * 19 * 23)).map { _ in Float(generator.nextUnit() * 2 - 1) }, shape: [1, 3, 19, 23])
        let got = try unread.run(["x": x]), expected = try read.run(["x": x])
        let y = try #require(got["y"]), e = try #require(expected["y"])
        #expect(y.shape == [1, 8, 8, 10] && y.shape == e.shape)
        #expect(y.scalars(as: Float.self).map(\.bitPattern) == e.scalars(as: Float.self).map(\.bitPattern))
        let mask = try #require(expected["mask"]), indices = try #require(expected["i"])
        #expect(mask.shape == y.shape && mask.scalars(as: Bool.self).allSatisfy { $0 })
        #expect(indices.shape == y.shape && indices.scalars(as: Int64.self).allSatisfy { (0..<(8 * 17 * 21)).contains($0) })
        #expect(got.count == 1)
    }

    @Test("a model with unknown operators fails at load, listing each with its nodes and opset")
    func unsupportedOperators() throws {
        let directory = try Self.make(
            """
            nodes = [helper.make_node('Relu', ['x'], ['a']),
                     helper.make_node('FancyOp', ['a'], ['b'], name='first_fancy', domain='com.example'),
                     helper.make_node('FancyOp', ['b'], ['c'], name='second_fancy', domain='com.example'),
                     helper.make_node('DeformConv', ['c', 'c', 'c'], ['y'], name='deform')]
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
                && text.contains("DeformConv (opset 23) at `deform`")
                && text.contains("com.example.FancyOp (opset 2) at `first_fancy`, `second_fancy`")
        }
    }

    @Test("external data is memory-mapped, and refused when its location leaves the model directory")
    func externalData() throws {
        let directory = try Self.make(
            """
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

    @Test("large raw_data initializers are views over the mapped file, equal to what decoding the whole file gives")
    func rawDataViews() throws {
        let directory = try Self.make(
            """
            rng = np.random.default_rng(3)
            w = rng.standard_normal((64, 64)).astype(np.float32)
            b = rng.standard_normal(64).astype(np.float32)
            g = helper.make_graph([helper.make_node('MatMul', ['x', 'w'], ['h']), helper.make_node('Add', ['h', 'b'], ['y'])], 'g',
                                  [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 64])],
                                  [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, 64])],
                                  [numpy_helper.from_array(w, 'w'), numpy_helper.from_array(b, 'b')])
            m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 17)])
            onnx.save(m, d + '/model.onnx')
            # Two encodings one after the other decode as one merged message: the second graph field's
            # initializers (a 2 KiB one, then an int64 one) follow the first's.
            extra = onnx.ModelProto()
            extra.graph.initializer.extend([numpy_helper.from_array(rng.standard_normal((8, 64)).astype(np.float32), 'small'),
                                            numpy_helper.from_array(np.arange(1024, dtype=np.int64), 'ids')])
            open(d + '/merged.onnx', 'wb').write(m.SerializeToString() + extra.SerializeToString())
            bad = onnx.load(d + '/model.onnx')
            bad.graph.initializer[0].raw_data = bad.graph.initializer[0].raw_data + b'1234'
            onnx.save(bad, d + '/long.onnx')
            data = open(d + '/model.onnx', 'rb').read()
            open(d + '/truncated.onnx', 'wb').write(data[:len(data) - 100])
            """)
        defer { TestSupport.remove(directory) }
        for file in ["model", "merged"] {
            let path = directory + "/\(file).onnx"
            let mapped = try ONNXModel(path: path)
            let decoded = try ONNXModel(data: try Data(contentsOf: URL(fileURLWithPath: path)), directory: directory)
            #expect(Set(mapped.graph.initializers.keys) == Set(decoded.graph.initializers.keys))
            for (name, tensor) in decoded.graph.initializers {
                let view = try #require(mapped.graph.initializers[name])
                #expect(view.dtype == tensor.dtype && view.shape == tensor.shape, "\(name)")
                #expect(view.bytesEqual(tensor), "\(name) in \(file).onnx")
                // 16 KiB and 8 KiB payloads are views (or aligned copies); 2 KiB and 256 B stay decoded.
                if tensor.count * tensor.dtype.byteSize! < RawDataScan.minimumPayload { #expect(!view.storage.isReadOnly, "\(name)") }
            }
            let x = Tensor((0..<64).map { Float($0) / 64 }, shape: [1, 64])
            #expect(try mapped.run(["x": x])["y"]!.bytesEqual(try decoded.run(["x": x])["y"]!))
        }
        #expect(try ONNXModel(path: directory + "/merged.onnx").graph.initializers["ids"]?.scalars(as: Int64.self) == (0..<1024).map { Int64($0) })
        #expect { try ONNXModel(path: directory + "/long.onnx") } throws: {
            "\($0)".contains("tensor `w` has 16388 bytes of raw data, shape [64, 64] of float32 needs 16384")
        }
        #expect { try ONNXModel(path: directory + "/truncated.onnx") } throws: { "\($0)".contains("not an ONNX model protobuf") }
    }

    @Test("bytes of a mapped file at an offset that misaligns their elements are copied, not viewed")
    func misalignedView() throws {
        let directory = try TestSupport.makeTemporaryDirectory("mapped")
        defer { TestSupport.remove(directory) }
        let values: [Float] = [1.5, -2.25, 3, 1e-3]
        var bytes: [UInt8] = [7, 7, 7]
        values.withUnsafeBytes { bytes += $0 }
        try Data(bytes).write(to: URL(fileURLWithPath: directory + "/w.bin"))
        let file = try MappedFile(path: directory + "/w.bin")
        let copied = Tensor(dtype: .float32, shape: [4], storage: file.storage(3..<19, elementSize: 4))
        #expect(!copied.storage.isReadOnly)
        #expect(copied.scalars(as: Float.self) == values)
        let viewed = file.storage(0..<16, elementSize: 4)
        #expect(viewed.isReadOnly && viewed.pointer == file.base)
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

private extension Tensor {
    /// Same dtype, shape and bytes.
    func bytesEqual(_ other: Tensor) -> Bool {
        dtype == other.dtype && shape == other.shape && memcmp(storage.pointer, other.storage.pointer, count * dtype.byteSize!) == 0
    }
}
