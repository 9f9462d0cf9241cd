import Foundation
import Testing
@testable import VesselONNX
import VesselTensor
import VesselTestSupport

/// Whole models with random weights (Fixtures/make_models.py) against the outputs onnxruntime
/// computed for them: a ResNet block with BatchNorm, a transformer encoder layer with a padding
/// mask, Gelu (opset 20), a bidirectional LSTM tagger, a ConvTranspose + Resize decoder, and an
/// opset-23 Attention decoder step (grouped-query heads, a KV cache, causal and padding masks).
@Suite("whole models against onnxruntime")
struct WholeModelNumericsTests {
    static var fixtures: String { TestSupport.packageRoot + "/Tests/VesselONNXTests/Fixtures/models" }

    @Test(
        "outputs match onnxruntime within 1e-4 relative",
        arguments: [
            "resnet_block", "transformer_layer", "gelu_layer", "lstm_tagger", "upsampling_decoder", "attention_cache"
        ])
    func matches(_ name: String) {
        let outcome = NodeConformanceTests.run(case: Self.fixtures + "/" + name, tolerance: (1e-4, 1e-6))
        #expect(outcome == .passed, "\(name): \(outcome)")
    }

    /// A quantized model is checked against its float original as well as onnxruntime: the
    /// integer products are exact, but onnxruntime on a CPU without VNNI multiplies u8×s8 pairs
    /// into saturating int16 (the transformer's outputs move by up to 0.15 from the spec's), and
    /// requantizes QLinearConv in float32. So: Vessel's output must be as close to the float
    /// model's as onnxruntime's is; where onnx's reference evaluator could run the model, equal
    /// to its output; elsewhere, a small fraction of the quantization error from onnxruntime's.
    @Test(
        "quantized models (quantize_dynamic's MatMulInteger, quantize_static's QLinearConv) are as accurate as onnxruntime's",
        arguments: [("transformer_layer_int8", "transformer_layer"), ("resnet_block_qoperator", "resnet_block")])
    func quantized(_ name: String, _ original: String) throws {
        let directory = Self.fixtures + "/" + name
        let model = try ONNXModel(path: directory + "/model.onnx")
        #expect(model.graph.nodes.contains { ["MatMulInteger", "QLinearConv"].contains($0.opType) })
        var feeds: [String: Tensor] = [:]
        for (index, input) in model.graph.inputs.enumerated() {
            feeds[input.name] = try NodeConformanceTests.readTensor(directory + "/test_data_set_0/input_\(index).pb")
        }
        let ours = try #require(try model.run(feeds)[model.graph.outputs[0].name]).doubles()
        let theirs = try NodeConformanceTests.readTensor(directory + "/test_data_set_0/output_0.pb").doubles()
        let float = try NodeConformanceTests.readTensor(Self.fixtures + "/" + original + "/test_data_set_0/output_0.pb").doubles()
        func meanDistance(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).map { abs($0 - $1) }.reduce(0, +) / Double(a.count) }
        let theirError = meanDistance(theirs, float), ourError = meanDistance(ours, float), apart = meanDistance(ours, theirs)
        #expect(ours.count == theirs.count && theirs.count == float.count)
        #expect(theirError > 0, "the fixture's quantized output equals the float one: not a quantized model")
        #expect(ourError <= theirError * 1.25, "\(name): error from the float model \(ourError), onnxruntime's \(theirError)")
        let referencePath = directory + "/test_data_set_0/reference_output_0.pb"
        if FileManager.default.fileExists(atPath: referencePath) {
            let reference = try NodeConformanceTests.readTensor(referencePath).doubles()
            let worst = zip(ours, reference).map { abs($0 - $1) / (1e-3 + abs($1)) }.max() ?? .infinity
            #expect(worst < 1e-4, "\(name): differs from onnx's reference evaluator by \(worst) relative")
        } else {
            #expect(apart <= theirError * 0.1, "\(name): mean distance from onnxruntime \(apart), its own error \(theirError)")
        }
    }

    /// A float16 model (onnxruntime's own `convert_float_to_float16` of the transformer layer,
    /// inputs and outputs kept float32), run by onnxruntime, by onnx's reference evaluator and by
    /// Vessel, which computes its arithmetic in float32 and rounds each result to float16 once:
    /// Vessel's output must be as close to the float32 model's as one of the other two, nearer
    /// the reference evaluator's than onnxruntime is, on the first run and on the later ones
    /// (weights widened once and kept), with the same bits every time.
    @Test("a float16 model computes in float32: as close to the float32 original as onnxruntime or onnx's reference, nearer the reference")
    func halfPrecision() throws {
        let directory = try TestSupport.makeTemporaryDirectory("fp16-model")
        defer { TestSupport.remove(directory) }
        let original = Self.fixtures + "/transformer_layer"
        _ = try TestSupport.python(
            """
            import onnx, numpy as np, onnxruntime as ort
            from onnx import numpy_helper
            from onnxruntime.transformers.float16 import convert_float_to_float16
            model = convert_float_to_float16(onnx.load("\(original)/model.onnx"), keep_io_types=True)
            assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in model.graph.initializer)
            # The converter appends its input casts last; onnx's reference evaluator wants order.
            known = {i.name for i in model.graph.input} | {i.name for i in model.graph.initializer} | {""}
            pending, ordered = list(model.graph.node), []
            while pending:
                ready = next(n for n in pending if all(x in known for x in n.input))
                ordered.append(ready); known.update(ready.output); pending.remove(ready)
            del model.graph.node[:]
            model.graph.node.extend(ordered)
            onnx.save(model, "\(directory)/model.onnx")
            names = [i.name for i in model.graph.input]
            feeds = {n: numpy_helper.to_array(onnx.load_tensor(f"\(original)/test_data_set_0/input_{k}.pb")) for k, n in enumerate(names)}
            out = ort.InferenceSession("\(directory)/model.onnx", providers=["CPUExecutionProvider"]).run(None, feeds)[0]
            onnx.save_tensor(numpy_helper.from_array(out, "y"), "\(directory)/output_0.pb")
            from onnx.reference import ReferenceEvaluator
            reference = ReferenceEvaluator(model).run(None, feeds)[0]
            onnx.save_tensor(numpy_helper.from_array(reference, "y"), "\(directory)/reference_0.pb")
            """)
        let model = try ONNXModel(path: directory + "/model.onnx")
        var feeds: [String: Tensor] = [:]
        for (index, input) in model.graph.inputs.enumerated() {
            feeds[input.name] = try NodeConformanceTests.readTensor(original + "/test_data_set_0/input_\(index).pb")
        }
        let theirs = try NodeConformanceTests.readTensor(directory + "/output_0.pb").doubles()
        let float = try NodeConformanceTests.readTensor(original + "/test_data_set_0/output_0.pb").doubles()
        func meanDistance(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).map { abs($0 - $1) }.reduce(0, +) / Double(a.count) }
        let reference = try NodeConformanceTests.readTensor(directory + "/reference_0.pb").doubles()
        let theirError = meanDistance(theirs, float)
        #expect(theirError > 0, "the float16 model's output equals the float32 one's: no half arithmetic happened")
        let referenceError = meanDistance(reference, float), theirDistance = meanDistance(theirs, reference)
        var first: [Double] = []
        for run in 1...3 {
            let ours = try #require(try model.run(feeds)[model.graph.outputs[0].name]).doubles()
            #expect(ours.count == float.count)
            let ourError = meanDistance(ours, float)
            // onnxruntime keeps float32 between the nodes it casts around (fewer roundings than
            // the spec's), onnx's reference evaluator rounds in float16 as numpy does: Vessel
            // rounds once per node, so it lands between them, and nearer the spec's.
            #expect(
                ourError <= max(theirError, referenceError),
                "run \(run): error from the float32 model \(ourError); onnxruntime's \(theirError), the reference evaluator's \(referenceError)")
            #expect(
                meanDistance(ours, reference) <= theirDistance,
                "run \(run): \(meanDistance(ours, reference)) from the reference evaluator; onnxruntime is \(theirDistance) from it")
            if run == 1 { first = ours } else { #expect(ours == first, "run \(run) differs from the first") }
        }
    }

    @Test(
        "MatMul and Gemm weights, packed and kept from the second run on, give onnxruntime's outputs and the first run's bits",
        arguments: ["transformer_layer", "mlp_gemm"])
    func packedWeights(_ fixture: String) throws {
        let directory = Self.fixtures + "/" + fixture
        let model = try ONNXModel(path: directory + "/model.onnx")
        var feeds: [String: Tensor] = [:]
        for (index, input) in model.graph.inputs.enumerated() {
            feeds[input.name] = try NodeConformanceTests.readTensor(directory + "/test_data_set_0/input_\(index).pb")
        }
        let name = model.graph.outputs[0].name
        let expected = try NodeConformanceTests.readTensor(directory + "/test_data_set_0/output_0.pb").doubles()
        // The first run packs each B for itself and remembers it; the second packs it again and
        // keeps it; the third uses the kept one. All three give the same bits (on a CPU without
        // AVX2, all three take OpenBLAS's path).
        var first: [Double] = []
        for run in 1...3 {
            let got = try #require(try model.run(feeds)[name]).doubles()
            let outside = zip(got, expected).filter { abs($0 - $1) > 1e-4 * abs($1) + 1e-6 }.count
            #expect(outside == 0, "\(fixture) run \(run): \(outside) values beyond 1e-4 relative + 1e-6")
            if run == 1 { first = got } else { #expect(got == first, "\(fixture): run \(run) differs from the first") }
        }
    }

    @Test("Conv + BatchNormalization (+ Relu, + the residual Add and Relu) become one node at load, and still match onnxruntime")
    func batchNormFolded() throws {
        let model = try ONNXModel(path: Self.fixtures + "/resnet_block/model.onnx")
        let kinds = model.graph.nodes.map(\.name)
        #expect(!model.graph.nodes.contains { $0.opType == "BatchNormalization" }, "\(kinds)")
        #expect(kinds.filter { $0.hasSuffix("+BatchNormalization+Relu") }.count == 1, "\(kinds)")
        #expect(kinds.filter { $0.hasSuffix("+BatchNormalization+Add+Relu") }.count == 1, "\(kinds)")
        #expect(kinds.count == 2, "\(kinds)")
        // The folded parameters replace the originals rather than sit beside them.
        #expect(model.graph.initializers.keys.filter { ["g1", "b1", "m1", "v1", "w1"].contains($0) }.isEmpty)
        #expect(NodeConformanceTests.run(case: Self.fixtures + "/resnet_block", tolerance: (1e-4, 1e-6)) == .passed)
    }

    /// Python defining `write_case(path, model, x, y)`: a node-suite case directory (model.onnx,
    /// and input `x` and expected output `y` in test_data_set_0) that `NodeConformanceTests.run`
    /// reads; with numpy as `np`, and onnx's `helper`, `numpy_helper` and `TensorProto` imported.
    static let writeCase = """
        import os, onnx
        import numpy as np
        from onnx import helper, numpy_helper, TensorProto
        def write_case(path, model, x, y):
            os.makedirs(f"{path}/test_data_set_0")
            onnx.save(model, f"{path}/model.onnx")
            open(f"{path}/test_data_set_0/input_0.pb", "wb").write(numpy_helper.from_array(x, "x").SerializeToString())
            open(f"{path}/test_data_set_0/output_0.pb", "wb").write(numpy_helper.from_array(y, "y").SerializeToString())

        """

    @Test("Gemm + Relu is one node that adds C and clamps as it stores: numpy's values, and the unfused Gemm's bits clamped")
    func gemmReluFused() throws {
        let directory = try TestSupport.makeTemporaryDirectory("gemm-relu")
        defer { TestSupport.remove(directory) }
        // Each case twice: Gemm alone, and Gemm → Relu. C's shapes, alpha and beta cover the
        // epilogue's residual (alpha 1), beta · C first (beta ≠ 1), the pass after the product
        // (alpha ≠ 1), no C at all, and a transposed B. Expected outputs from numpy in float64.
        _ = try TestSupport.python(
            Self.writeCase + """
                rng = np.random.default_rng(17)
                m, k, n = 37, 70, 45
                x = rng.standard_normal((m, k)).astype(np.float32)
                cases = {
                    "row_bias": (1.0, 1.0, (n,), False),
                    "full_c_beta": (1.0, 0.5, (m, n), False),
                    "column_c_alpha": (1.5, 1.0, (m, 1), False),
                    "scalar_c": (1.0, 2.0, (), True),
                    "no_c": (1.0, 1.0, None, True),
                }
                for name, (alpha, beta, c_shape, trans_b) in cases.items():
                    w = rng.standard_normal((n, k) if trans_b else (k, n)).astype(np.float32)
                    inits = [numpy_helper.from_array(w, "w")]
                    inputs = ["x", "w"]
                    y = alpha * (x.astype(np.float64) @ (w.T if trans_b else w).astype(np.float64))
                    if c_shape is not None:
                        c = rng.standard_normal(c_shape).astype(np.float32)
                        inits.append(numpy_helper.from_array(c, "c"))
                        inputs.append("c")
                        y = y + beta * c.astype(np.float64)
                    for relu in [False, True]:
                        nodes = [helper.make_node("Gemm", inputs, ["g" if relu else "y"], alpha=alpha, beta=beta, transB=int(trans_b))]
                        if relu: nodes.append(helper.make_node("Relu", ["g"], ["y"]))
                        graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])],
                                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
                        expected = (np.maximum(y, 0) if relu else y).astype(np.float32)
                        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
                        write_case(f"\(directory)/{name}{'_relu' if relu else ''}", model, x, expected)
                """)
        for name in ["row_bias", "full_c_beta", "column_c_alpha", "scalar_c", "no_c"] {
            let plain = try ONNXModel(path: directory + "/\(name)/model.onnx")
            let fused = try ONNXModel(path: directory + "/\(name)_relu/model.onnx")
            #expect(fused.graph.nodes.map(\.name) == [plain.graph.nodes[0].name + "+Relu"], "\(name): \(fused.graph.nodes.map(\.name))")
            for variant in [name, name + "_relu"] {
                #expect(NodeConformanceTests.run(case: directory + "/\(variant)", tolerance: (1e-5, 1e-5)) == .passed, "\(variant)")
            }
            let feeds = ["x": try NodeConformanceTests.readTensor(directory + "/\(name)/test_data_set_0/input_0.pb")]
            // The first run packs W for itself, the second keeps it packed, the third reads it kept.
            for run in 1...3 {
                let product = try #require(try plain.run(feeds)["y"]).scalars(as: Float.self)
                let clamped = try #require(try fused.run(feeds)["y"]).scalars(as: Float.self)
                let differing = zip(product, clamped).filter { ($0 < 0 ? 0 : $0).bitPattern != $1.bitPattern }.count
                #expect(differing == 0, "\(name) run \(run): \(differing) values differ from the unfused Gemm's, clamped")
            }
        }
    }

    @Test("a Mul and an Add of per-channel (or single) constants after a Conv fold into its weights and bias; a per-row one keeps its node")
    func channelConstantsFoldIntoConv() throws {
        let directory = try TestSupport.makeTemporaryDirectory("conv-affine")
        defer { TestSupport.remove(directory) }
        // Caffe2's DenseNet stem without its BatchNormalization: Conv → Mul → Add → Relu →
        // MaxPool. Expected outputs from numpy in float64.
        _ = try TestSupport.python(
            Self.writeCase + """
                rng = np.random.default_rng(13)
                w = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
                bias = rng.standard_normal(8).astype(np.float32)
                x = rng.standard_normal((1, 3, 20, 21)).astype(np.float32)
                def conv(x):
                    p = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
                    out = np.zeros((1, 8, 20, 21))
                    for i in range(3):
                        for j in range(3):
                            out += np.einsum('fc,nchw->nfhw', w[:, :, i, j].astype(np.float64), p[:, :, i:i + 20, j:j + 21])
                    return out + bias.reshape(1, 8, 1, 1)
                def pool(y):
                    return np.max(np.stack([y[:, :, i:i + 17:2, j:j + 19:2] for i in range(3) for j in range(3)]), axis=0)
                cases = {
                    "folded": (rng.standard_normal((8, 1, 1)).astype(np.float32), rng.standard_normal((1, 8, 1, 1)).astype(np.float32), True),
                    "single": (np.array(0.75, np.float32), rng.standard_normal((1, 1, 1, 1)).astype(np.float32), False),
                    "per_row": (rng.standard_normal((1, 1, 20, 1)).astype(np.float32), rng.standard_normal((8, 1, 1)).astype(np.float32), False),
                }
                for name, (s, b, b_first) in cases.items():
                    nodes = [helper.make_node("Conv", ["x", "w", "bias"], ["c"], pads=[1, 1, 1, 1]),
                             helper.make_node("Mul", ["c", "s"], ["t"]),
                             helper.make_node("Add", ["b", "t"] if b_first else ["t", "b"], ["u"]),
                             helper.make_node("Relu", ["u"], ["r"]),
                             helper.make_node("MaxPool", ["r"], ["y"], kernel_shape=[3, 3], strides=[2, 2])]
                    inits = [numpy_helper.from_array(a, n) for a, n in [(w, "w"), (bias, "bias"), (s, "s"), (b, "b")]]
                    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 20, 21])],
                                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
                    y = pool(np.maximum(conv(x) * s.astype(np.float64) + b.astype(np.float64), 0)).astype(np.float32)
                    write_case(f"\(directory)/{name}", helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), x, y)
                """)
        for name in ["folded", "single"] {
            let model = try ONNXModel(path: directory + "/\(name)/model.onnx")
            let names = model.graph.nodes.map(\.name)
            #expect(names.count == 1 && names[0].contains("+Mul+Add"), "\(name): \(names)")
            // The folded parameters replace the originals rather than sit beside them.
            #expect(model.graph.initializers.keys.filter { ["w", "bias", "s", "b"].contains($0) }.isEmpty, "\(name)")
            #expect(NodeConformanceTests.run(case: directory + "/\(name)", tolerance: (1e-5, 1e-6)) == .passed, "\(name)")
        }
        // A per-row Mul is no per-channel scale: the Conv keeps its weights and the Mul its node.
        let kept = try ONNXModel(path: directory + "/per_row/model.onnx")
        #expect(kept.graph.nodes.contains { $0.opType == "Mul" }, "\(kept.graph.nodes.map(\.name))")
        #expect(!kept.graph.nodes.contains { $0.name.contains("+Mul+Add") }, "\(kept.graph.nodes.map(\.name))")
        #expect(NodeConformanceTests.run(case: directory + "/per_row", tolerance: (1e-5, 1e-6)) == .passed)
    }

    @Test("Mul and Add by per-channel constants, then Relu, run as one pass with bit-identical results; other shapes fall back")
    func channelAffineFused() throws {
        let directory = try TestSupport.makeTemporaryDirectory("affine")
        defer { TestSupport.remove(directory) }
        // Two cases written by the onnx package, expected outputs computed by numpy in float32:
        // a [2, 8, 5, 7] input (fused), and a [8, 5, 7] one whose channel axis is 0 (fallback).
        _ = try TestSupport.python(
            Self.writeCase + """
                rng = np.random.default_rng(7)
                s = rng.standard_normal((8, 1, 1)).astype(np.float32)
                b = rng.standard_normal((1, 8, 1, 1)).astype(np.float32)
                for name, shape, bias in [("fused", [2, 8, 5, 7], b), ("fallback", [8, 5, 7], b.reshape(8, 1, 1))]:
                    nodes = [helper.make_node("Mul", ["x", "s"], ["t"]), helper.make_node("Add", ["b", "t"], ["u"]), helper.make_node("Relu", ["u"], ["y"])]
                    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                                              [numpy_helper.from_array(s, "s"), numpy_helper.from_array(bias, "b")])
                    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
                    x = rng.standard_normal(shape).astype(np.float32)
                    y = np.maximum(bias + x * s, np.float32(0)).astype(np.float32)
                    write_case(f"\(directory)/{name}", model, x, y)
                """)
        let model = try ONNXModel(path: directory + "/fused/model.onnx")
        #expect(model.graph.nodes.map(\.name).count == 1)
        #expect(model.graph.nodes.first?.name.hasSuffix("+Add+Relu") == true)
        #expect(NodeConformanceTests.run(case: directory + "/fused", tolerance: (0, 0)) == .passed)
        #expect(NodeConformanceTests.run(case: directory + "/fallback", tolerance: (0, 0)) == .passed)
    }

    @Test("a BatchNormalization before the per-channel Mul and Add joins their pass, bit-identical to the four kernels in turn")
    func normalizationJoinsChannelAffine() throws {
        let directory = try TestSupport.makeTemporaryDirectory("bn-affine")
        defer { TestSupport.remove(directory) }
        // DenseNet's shape: Concat → BatchNormalization → Mul → Add → Relu. The expected output
        // rounds as the kernels do: the normalization's factor and offset in double, then
        // float32 multiply-adds, one rounding per operation (numpy float32 does the same).
        _ = try TestSupport.python(
            """
            import numpy as np, onnx, os
            from onnx import helper, numpy_helper, TensorProto
            rng = np.random.default_rng(11)
            C = 6
            g, beta, mean = (rng.standard_normal(C).astype(np.float32) for _ in range(3))
            var = rng.uniform(0.5, 2.0, C).astype(np.float32)
            s = rng.standard_normal((C, 1, 1)).astype(np.float32)
            b = rng.standard_normal((1, C, 1, 1)).astype(np.float32)
            inits = [numpy_helper.from_array(a, n) for a, n in [(g, "g"), (beta, "beta"), (mean, "mean"), (var, "var"), (s, "s"), (b, "b")]]
            nodes = [helper.make_node("Concat", ["x1", "x2"], ["x"], axis=1),
                     helper.make_node("BatchNormalization", ["x", "g", "beta", "mean", "var"], ["n"], epsilon=1e-3),
                     helper.make_node("Mul", ["n", "s"], ["t"]), helper.make_node("Add", ["t", "b"], ["u"]), helper.make_node("Relu", ["u"], ["y"])]
            graph = helper.make_graph(nodes, "bn_affine", [helper.make_tensor_value_info("x1", TensorProto.FLOAT, [2, 2, 5, 7]),
                                                           helper.make_tensor_value_info("x2", TensorProto.FLOAT, [2, 4, 5, 7])],
                                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
            model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
            os.makedirs(f"\(directory)/case/test_data_set_0")
            onnx.save(model, f"\(directory)/case/model.onnx")
            x1 = rng.standard_normal((2, 2, 5, 7)).astype(np.float32)
            x2 = rng.standard_normal((2, 4, 5, 7)).astype(np.float32)
            x = np.concatenate([x1, x2], axis=1)
            eps = float(np.float32(1e-3))
            factor = g.astype(np.float64) / np.sqrt(var.astype(np.float64) + eps)
            offset = beta.astype(np.float64) - mean.astype(np.float64) * factor
            f = factor.astype(np.float32).reshape(1, C, 1, 1)
            o = offset.astype(np.float32).reshape(1, C, 1, 1)
            y = np.maximum((x * f + o) * s + b, np.float32(0)).astype(np.float32)
            for k, a in enumerate([x1, x2]):
                open(f"\(directory)/case/test_data_set_0/input_{k}.pb", "wb").write(numpy_helper.from_array(a, f"x{k + 1}").SerializeToString())
            open(f"\(directory)/case/test_data_set_0/output_0.pb", "wb").write(numpy_helper.from_array(y, "y").SerializeToString())
            """)
        let model = try ONNXModel(path: directory + "/case/model.onnx")
        let names = model.graph.nodes.map(\.name)
        #expect(names.count == 2, "\(names)")
        #expect(
            names.contains { $0.contains("+Add+Relu") } && !model.graph.nodes.contains { $0.opType == "BatchNormalization" && !$0.name.contains("+") },
            "\(names)")
        #expect(NodeConformanceTests.run(case: directory + "/case", tolerance: (0, 0)) == .passed)
    }

    @Test("quantize_dynamic's scales Mul, MatMulInteger, Cast, Mul and bias Add run as one node, bit-identical; other scale shapes fall back")
    func integerProductFused() throws {
        let directory = try TestSupport.makeTemporaryDirectory("int-product")
        defer { TestSupport.remove(directory) }
        // The chain quantize_dynamic writes, with the quantized activation as graph inputs; the
        // expected output rounds as the separate kernels do: Int32 sums to float32, then a float32
        // product and sum (numpy float32 does the same). Cases: a per-tensor scale with a bias,
        // per-column scales (per_channel) without one, a uint8 weight, and a [1, N] scale that
        // the fused pass does not take.
        _ = try TestSupport.python(
            """
            import numpy as np, onnx, os
            from onnx import helper, numpy_helper, TensorProto
            rng = np.random.default_rng(5)
            K, N = 37, 20
            for name, wtype, scale_shape, with_bias in [("tensor", np.int8, [], True), ("column", np.int8, [N], False),
                                                         ("unsigned", np.uint8, [], True), ("fallback", np.int8, [1, N], True)]:
                lo, hi = (-128, 128) if wtype == np.int8 else (0, 256)
                w = rng.integers(lo, hi, (K, N)).astype(wtype)
                wz = np.array(rng.integers(lo, hi), dtype=wtype)
                ws = rng.uniform(0.001, 0.01, scale_shape).astype(np.float32)
                bias = rng.standard_normal(N).astype(np.float32)
                nodes = [helper.make_node("Mul", ["xs", "ws"], ["s"]),
                         helper.make_node("MatMulInteger", ["xq", "w", "xz", "wz"], ["sums"]),
                         helper.make_node("Cast", ["sums"], ["f"], to=TensorProto.FLOAT),
                         helper.make_node("Mul", ["f", "s"], ["p" if with_bias else "y"])]
                if with_bias:
                    nodes.append(helper.make_node("Add", ["p", "bias"], ["y"]))
                inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(wz, "wz"), numpy_helper.from_array(ws, "ws"),
                         numpy_helper.from_array(bias, "bias")]
                graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("xq", TensorProto.UINT8, [2, 9, K]),
                                                         helper.make_tensor_value_info("xz", TensorProto.UINT8, []),
                                                         helper.make_tensor_value_info("xs", TensorProto.FLOAT, [])],
                                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
                model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
                os.makedirs(f"\(directory)/{name}/test_data_set_0")
                onnx.save(model, f"\(directory)/{name}/model.onnx")
                xq = rng.integers(0, 256, (2, 9, K)).astype(np.uint8)
                xz = np.array(rng.integers(0, 256), dtype=np.uint8)
                xs = np.array(rng.uniform(0.01, 0.1), dtype=np.float32)
                sums = (xq.astype(np.int64) - int(xz)) @ (w.astype(np.int64) - int(wz))
                y = sums.astype(np.float32) * (xs * ws)
                if with_bias:
                    y = y + bias
                for k, (a, n) in enumerate([(xq, "xq"), (xz, "xz"), (xs, "xs")]):
                    open(f"\(directory)/{name}/test_data_set_0/input_{k}.pb", "wb").write(numpy_helper.from_array(a, n).SerializeToString())
                open(f"\(directory)/{name}/test_data_set_0/output_0.pb", "wb").write(numpy_helper.from_array(y.astype(np.float32), "y").SerializeToString())
            """)
        for (name, suffix) in [("tensor", "+Cast+Mul+Add"), ("column", "+Cast+Mul"), ("unsigned", "+Cast+Mul+Add"), ("fallback", "+Cast+Mul+Add")] {
            let model = try ONNXModel(path: directory + "/\(name)/model.onnx")
            let names = model.graph.nodes.map(\.name)
            // The scales' Mul, read by this chain alone, is part of the node.
            #expect(names.count == 1 && names[0].hasSuffix(suffix), "\(name): \(names)")
            #expect(NodeConformanceTests.run(case: directory + "/\(name)", tolerance: (0, 0)) == .passed, "\(name)")
        }
    }

    @Test("GELU spelled with Erf runs as one node with the unfused graph's bits: both orders, a multiplied 1/√2, float32 and float16, and a fallback")
    func geluFused() throws {
        let directory = try TestSupport.makeTemporaryDirectory("gelu")
        defer { TestSupport.remove(directory) }
        // Each model twice: as exported, and with the Erf output also a graph output, which
        // keeps the chain apart. The fused run must give the separate nodes' bits. "long" spans
        // blocks of 512 values with a tail that is not a whole lane group.
        _ = try TestSupport.python(
            """
            import numpy as np, onnx
            from onnx import helper, numpy_helper, TensorProto
            for dtype, kind, tag in [(np.float32, TensorProto.FLOAT, ""), (np.float16, TensorProto.FLOAT16, "16")]:
                def const(name, value, rank):
                    return numpy_helper.from_array(np.array(value, dtype=dtype).reshape([1] * rank), name)
                for name, scale_last, divide, shape, rank in [("half-first", False, True, [2, 3, 37], 1), ("half-last", True, True, [5, 16], 0),
                                                              ("reciprocal", False, False, [3, 33], 1), ("long", True, True, [3, 700], 0),
                                                              ("fallback", False, True, [], 1)]:
                    first = helper.make_node("Div", ["x", "c1"], ["d"]) if divide else helper.make_node("Mul", ["c1", "x"], ["d"])
                    nodes = [first, helper.make_node("Erf", ["d"], ["e"]), helper.make_node("Add", ["one", "e"], ["a"])]
                    if scale_last:
                        nodes += [helper.make_node("Mul", ["x", "a"], ["m"]), helper.make_node("Mul", ["m", "half"], ["y"])]
                    else:
                        nodes += [helper.make_node("Mul", ["half", "x"], ["h"]), helper.make_node("Mul", ["h", "a"], ["y"])]
                    inits = [const("c1", 1.4142135 if divide else 0.70710677, rank), const("one", 1.0, rank), const("half", 0.5, rank)]
                    for suffix, outputs in [("", ["y"]), ("-open", ["y", "e"])]:
                        graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", kind, shape)],
                                                  [helper.make_tensor_value_info(o, kind, None) for o in outputs], inits)
                        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), f"\(directory)/{name}{tag}{suffix}.onnx")
            """)
        for half in [false, true] {
            for (name, shape) in [("half-first", [2, 3, 37]), ("half-last", [5, 16]), ("reciprocal", [3, 33]), ("long", [3, 700]), ("fallback", [Int]())] {
                let file = name + (half ? "16" : "")
                let model = try ONNXModel(path: directory + "/\(file).onnx"), open = try ONNXModel(path: directory + "/\(file)-open.onnx")
                #expect(model.graph.nodes.count == 1 && model.graph.nodes.first?.opType == "Gelu", "\(file): \(model.graph.nodes.map(\.name))")
                #expect(open.graph.nodes.count > 1, "\(file)")
                let values = (0..<shape.reduce(1, *)).map { Float($0 % 211) * 0.09 - 9.5 }
                let x = half ? Tensor(values.map { Float16($0) }, shape: shape) : Tensor(values, shape: shape)
                let got = try #require(try model.run(["x": x])["y"]), expected = try #require(try open.run(["x": x])["y"])
                #expect(got.dtype == x.dtype && got.shape == expected.shape, "\(file)")
                let bits = { (t: Tensor) -> [UInt32] in
                    half ? t.scalars(as: Float16.self).map { UInt32($0.bitPattern) } : t.scalars(as: Float.self).map(\.bitPattern)
                }
                #expect(bits(got) == bits(expected), "\(file)")
            }
        }
    }

    @Test("MatMul then a constant bias Add runs as one node with the separate nodes' bits, the bias on either side, float32 and float16")
    func biasFused() throws {
        let directory = try TestSupport.makeTemporaryDirectory("bias")
        defer { TestSupport.remove(directory) }
        _ = try TestSupport.python(
            """
            import numpy as np, onnx
            from onnx import helper, numpy_helper, TensorProto
            rng = np.random.default_rng(3)
            weights, bias = rng.standard_normal((37, 20)), rng.standard_normal(20)
            for dtype, kind, tag in [(np.float32, TensorProto.FLOAT, ""), (np.float16, TensorProto.FLOAT16, "16")]:
                inits = [numpy_helper.from_array(weights.astype(dtype), "w"), numpy_helper.from_array(bias.astype(dtype), "b")]
                for name, order in [("after", ["p", "b"]), ("before", ["b", "p"])]:
                    nodes = [helper.make_node("MatMul", ["x", "w"], ["p"]), helper.make_node("Add", order, ["y"])]
                    for suffix, outputs in [("", ["y"]), ("-open", ["y", "p"])]:
                        graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", kind, [3, 5, 37])],
                                                  [helper.make_tensor_value_info(o, kind, None) for o in outputs], inits)
                        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), f"\(directory)/{name}{tag}{suffix}.onnx")
            """)
        let values: [Float] = (0..<(3 * 5 * 37)).map { Float(($0 * 7_919) % 1_009) / 97 - 5 }
        let x = Tensor(values, shape: [3, 5, 37]), x16 = Tensor(values.map { Float16($0) }, shape: [3, 5, 37])
        for name in ["after", "before", "after16", "before16"] {
            let half = name.hasSuffix("16")
            let model = try ONNXModel(path: directory + "/\(name).onnx"), open = try ONNXModel(path: directory + "/\(name)-open.onnx")
            #expect(model.graph.nodes.map(\.name).count == 1 && open.graph.nodes.count == 2, "\(name)")
            // Twice: the first run packs the weight for that call only, the second keeps it.
            for _ in 0..<2 {
                let input = half ? x16 : x
                let got = try #require(try model.run(["x": input])["y"]), expected = try #require(try open.run(["x": input])["y"])
                let gotBits = half ? got.scalars(as: Float16.self).map { UInt32($0.bitPattern) } : got.scalars(as: Float.self).map(\.bitPattern)
                let expectedBits =
                    half ? expected.scalars(as: Float16.self).map { UInt32($0.bitPattern) } : expected.scalars(as: Float.self).map(\.bitPattern)
                #expect(got.dtype == (half ? .float16 : .float32) && got.shape == [3, 5, 20] && gotBits == expectedBits, "\(name)")
            }
        }
    }

    @Test("a Conv's residual Add or Sum and its Relu run as one node with the separate nodes' bits, on each conv path; a broadcast falls back")
    func residualFused() throws {
        let directory = try TestSupport.makeTemporaryDirectory("residual")
        defer { TestSupport.remove(directory) }
        _ = try TestSupport.python(
            """
            import numpy as np, onnx
            from onnx import helper, numpy_helper, TensorProto
            rng = np.random.default_rng(5)
            def weights(name, filters, channels, k):
                return [numpy_helper.from_array(rng.standard_normal((filters, channels, k, k)).astype(np.float32) * 0.3, name + "w"),
                        numpy_helper.from_array(rng.standard_normal(filters).astype(np.float32), name + "b")]
            # name: (filters, kernel, strides, pads, residual shape, op, conv first, relu)
            cases = {"pointwise": (32, 1, 1, 0, [1, 32, 9, 11], "Add", True, True),
                     "direct": (64, 1, 2, 0, [1, 64, 5, 6], "Sum", False, False),
                     "winograd": (16, 3, 1, 1, [1, 16, 9, 11], "Add", True, True),
                     "broadcast": (32, 1, 1, 0, [1, 32, 1, 1], "Add", False, True)}
            for name, (filters, k, stride, pad, rshape, op, first, relu) in cases.items():
                inits = weights("", filters, 16, k)
                nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4),
                         helper.make_node(op, ["c", "r"] if first else ["r", "c"], ["s" if relu else "y"])]
                if relu: nodes.append(helper.make_node("Relu", ["s"], ["y"]))
                inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 9, 11]),
                          helper.make_tensor_value_info("r", TensorProto.FLOAT, rshape)]
                for suffix, outputs in [("", ["y"]), ("-open", ["y", "c"])]:
                    graph = helper.make_graph(nodes, name, inputs, [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs], inits)
                    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), f"\(directory)/{name}{suffix}.onnx")
            # Two convolutions meet at the Add: the later fuses, the earlier's output is the residual.
            inits = weights("p", 32, 16, 1) + weights("q", 32, 16, 3)
            nodes = [helper.make_node("Conv", ["x", "pw", "pb"], ["p"]),
                     helper.make_node("Conv", ["x", "qw", "qb"], ["c"], pads=[1, 1, 1, 1]),
                     helper.make_node("Add", ["p", "c"], ["s"]), helper.make_node("Relu", ["s"], ["y"])]
            for suffix, outputs in [("", ["y"]), ("-open", ["y", "c", "p"])]:
                graph = helper.make_graph(nodes, "pair", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 9, 11])],
                                          [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs], inits)
                onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), f"\(directory)/pair{suffix}.onnx")
            """)
        func values(_ shape: [Int], _ seed: Int) -> Tensor {
            Tensor((0..<Tensor.count(of: shape)).map { Float((($0 + seed) * 7_919) % 1_009) / 97 - 5 }, shape: shape)
        }
        let x = values([1, 16, 9, 11], 1)
        let cases: [(String, [Int]?, Int)] = [
            ("pointwise", [1, 32, 9, 11], 1), ("direct", [1, 64, 5, 6], 1), ("winograd", [1, 16, 9, 11], 1), ("broadcast", [1, 32, 1, 1], 1),
            ("pair", nil, 2)
        ]
        for (name, residual, fusedCount) in cases {
            let model = try ONNXModel(path: directory + "/\(name).onnx"), open = try ONNXModel(path: directory + "/\(name)-open.onnx")
            #expect(model.graph.nodes.count == fusedCount && open.graph.nodes.count > fusedCount, "\(name)")
            var feeds = ["x": x]
            if let residual { feeds["r"] = values(residual, 3) }
            for _ in 0..<2 {
                let got = try #require(try model.run(feeds)["y"]), expected = try #require(try open.run(feeds)["y"])
                let gotBits = got.scalars(as: Float.self).map(\.bitPattern), expectedBits = expected.scalars(as: Float.self).map(\.bitPattern)
                #expect(got.shape == expected.shape && gotBits == expectedBits, "\(name)")
            }
        }
    }

    @Test("attention's scale, mask Add and Softmax run as one node with the separate nodes' bits, float32 and float16; a widening mask falls back")
    func scaledSoftmaxFused() throws {
        let directory = try TestSupport.makeTemporaryDirectory("scaled-softmax")
        defer { TestSupport.remove(directory) }
        // Scores [2, 3, 5, 7]; masks as BERT's [2, 1, 1, 7], a full [2, 3, 5, 7], one value per
        // row [5, 1], and [4, 2, 3, 5, 7], which widens the result and so takes the fallback;
        // 140 rows of 7, more than one of the float16 pass's blocks of rows.
        let cases: [(name: String, scores: [Int], mask: [Int])] = [
            ("bert", [2, 3, 5, 7], [2, 1, 1, 7]), ("full", [2, 3, 5, 7], [2, 3, 5, 7]), ("rows", [2, 3, 5, 7], [5, 1]),
            ("widening", [2, 3, 5, 7], [4, 2, 3, 5, 7]), ("blocks", [1, 2, 70, 7], [1, 1, 1, 7])
        ]
        _ = try TestSupport.python(
            """
            import numpy as np, onnx
            from onnx import helper, numpy_helper, TensorProto
            for name, op, x_shape, mask_shape in [("bert", "Mul", [2, 3, 5, 7], [2, 1, 1, 7]), ("full", "Div", [2, 3, 5, 7], [2, 3, 5, 7]),
                                                  ("rows", "Mul", [2, 3, 5, 7], [5, 1]), ("widening", "Mul", [2, 3, 5, 7], [4, 2, 3, 5, 7]),
                                                  ("blocks", "Div", [1, 2, 70, 7], [1, 1, 1, 7])]:
                for dtype, kind, tag in [(np.float32, TensorProto.FLOAT, ""), (np.float16, TensorProto.FLOAT16, "16")]:
                    # 1/√32 and √32, as BERT scales a 32-wide head: not powers of two, so each product rounds.
                    scale = numpy_helper.from_array(np.array([0.17677669 if op == "Mul" else 5.656854], dtype=dtype), "s")
                    nodes = [helper.make_node(op, ["x", "s"], ["t"]), helper.make_node("Add", ["m", "t"], ["u"]),
                             helper.make_node("Softmax", ["u"], ["y"], axis=-1)]
                    for suffix, outputs in [("", ["y"]), ("-open", ["y", "t"])]:
                        graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", kind, x_shape),
                                                                helper.make_tensor_value_info("m", kind, mask_shape)],
                                                  [helper.make_tensor_value_info(o, kind, None) for o in outputs], [scale])
                        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), f"\(directory)/{name}{tag}{suffix}.onnx")
            """)
        for (name, scoresShape, maskShape) in cases {
            let scores: [Float] = (0..<scoresShape.reduce(1, *)).map { Float(($0 * 7_919) % 1_013) / 37 - 13 }
            let maskValues: [Float] = (0..<maskShape.reduce(1, *)).map { $0 % 3 == 0 ? -10_000 : Float($0 % 5) / 4 }
            for tag in ["", "16"] {
                let half = tag == "16"
                func tensor(_ values: [Float], _ shape: [Int]) -> Tensor {
                    half ? Tensor(values.map { Float16($0) }, shape: shape) : Tensor(values, shape: shape)
                }
                let feeds = ["x": tensor(scores, scoresShape), "m": tensor(maskValues, maskShape)]
                let model = try ONNXModel(path: directory + "/\(name)\(tag).onnx"), open = try ONNXModel(path: directory + "/\(name)\(tag)-open.onnx")
                #expect(model.graph.nodes.count == 1 && open.graph.nodes.count == 3, "\(name)\(tag)")
                let got = try #require(try model.run(feeds)["y"]), expected = try #require(try open.run(feeds)["y"])
                let bits = { (t: Tensor) in half ? t.scalars(as: Float16.self).map { UInt32($0.bitPattern) } : t.scalars(as: Float.self).map(\.bitPattern) }
                #expect(got.shape == expected.shape && got.dtype == expected.dtype && bits(got) == bits(expected), "\(name)\(tag)")
            }
        }
    }

    @Test("attention's Transposes into and out of heads run inside their MatMuls with the separate nodes' bits, float32 and float16; others fall back")
    func transposesFused() throws {
        let directory = try TestSupport.makeTemporaryDirectory("transposes")
        defer { TestSupport.remove(directory) }
        _ = try TestSupport.python(
            """
            import onnx
            from onnx import helper, TensorProto
            T = helper.make_node
            # Q, K, V as [batch, sequence, heads, size]: Q·Kᵀ per head, then · V, back to [batch, sequence, heads, size].
            heads = [T("Transpose", ["q"], ["qh"], perm=[0, 2, 1, 3]), T("Transpose", ["k"], ["kh"], perm=[0, 2, 3, 1]),
                     T("MatMul", ["qh", "kh"], ["s"]), T("Transpose", ["v"], ["vh"], perm=[0, 2, 1, 3]),
                     T("MatMul", ["s", "vh"], ["c"]), T("Transpose", ["c"], ["y"], perm=[0, 2, 1, 3])]
            # Q's sizes across its rows (A's columns strided) and K's heads broadcast: the original nodes.
            other = [T("Transpose", ["q"], ["qh"], perm=[0, 2, 3, 1]), T("MatMul", ["qh", "k"], ["y"])]
            shapes = {"heads": ([2, 5, 3, 4], [2, 7, 3, 4], [2, 7, 3, 4]), "other": ([2, 5, 3, 4], [2, 1, 5, 6], None)}
            for name, nodes in [("heads", heads), ("other", other)]:
                for kind, tag in [(TensorProto.FLOAT, ""), (TensorProto.FLOAT16, "16")]:
                    inputs = [helper.make_tensor_value_info(n, kind, s) for n, s in zip("qkv", shapes[name]) if s]
                    for suffix, outputs in [("", ["y"]), ("-open", ["y"] + [o for n in nodes for o in n.output if o != "y"])]:
                        graph = helper.make_graph(nodes, name, inputs, [helper.make_tensor_value_info(o, kind, None) for o in outputs])
                        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), f"\(directory)/{name}{tag}{suffix}.onnx")
            """)
        func values(_ shape: [Int], _ seed: Int, half: Bool) -> Tensor {
            let floats = (0..<shape.reduce(1, *)).map { Float(($0 * 7_919 + seed * 104_729) % 1_013) / 101 - 5 }
            return half ? Tensor(floats.map { Float16($0) }, shape: shape) : Tensor(floats, shape: shape)
        }
        for (name, shapes, fusedCount) in [("heads", [[2, 5, 3, 4], [2, 7, 3, 4], [2, 7, 3, 4]], 2), ("other", [[2, 5, 3, 4], [2, 1, 5, 6]], 1)] {
            for tag in ["", "16"] {
                let half = tag == "16"
                let model = try ONNXModel(path: directory + "/\(name)\(tag).onnx"), open = try ONNXModel(path: directory + "/\(name)\(tag)-open.onnx")
                #expect(model.graph.nodes.count == fusedCount && open.graph.nodes.count > fusedCount, "\(name)\(tag)")
                let feeds = Dictionary(uniqueKeysWithValues: zip(["q", "k", "v"], shapes).enumerated().map { ($1.0, values($1.1, $0, half: half)) })
                let got = try #require(try model.run(feeds)["y"]), expected = try #require(try open.run(feeds)["y"])
                let bits = { (t: Tensor) in half ? t.scalars(as: Float16.self).map { UInt32($0.bitPattern) } : t.scalars(as: Float.self).map(\.bitPattern) }
                #expect(got.shape == expected.shape && got.dtype == expected.dtype && bits(got) == bits(expected), "\(name)\(tag)")
            }
        }
    }

    @Test("without OpenBLAS the built-in GEMM gives the same results, with row distances and accumulation too")
    func builtinGEMM() throws {
        // A product large enough for blocking to matter, compared with the BLAS path.
        let (m, n, k) = (37, 129, 65)
        var generator = SystemRandomNumberGenerator()
        let a = (0..<(m * k)).map { _ in Float.random(in: -1...1, using: &generator) }
        // B with rows 7 apart (the plain cases read it as k×n or n×k, dense).
        let b = (0..<(k * (n + 7))).map { _ in Float.random(in: -1...1, using: &generator) }
        let start = (0..<(m * (n + 3))).map { _ in Float.random(in: -1...1, using: &generator) }
        for (transB, strided) in [(false, false), (true, false), (false, true)] {
            var blas = strided ? start : [Float](repeating: 0, count: m * n), builtin = blas
            let (ldb, ldc, beta): (Int?, Int, Float) = strided ? (n + 7, n + 3, 1) : (nil, n, 0)
            GEMM.multiply(m: m, n: n, k: k, a: a, b: b, transB: transB, ldb: ldb, beta: beta, c: &blas, ldc: ldc)
            GEMM.builtin(
                m: m, n: n, k: k, alpha: 1, a: a, transA: false, b: b, transB: transB, ldb: ldb ?? (transB ? k : n),
                beta: beta, c: &builtin, ldc: ldc)
            var worst: Float = 0
            for index in 0..<blas.count { worst = max(worst, abs(blas[index] - builtin[index]) / (1 + abs(blas[index]))) }
            #expect(worst <= 1e-4, "transB \(transB), strided \(strided)")
            if strided {
                // The columns past n in each row of C were left alone.
                #expect((0..<m).allSatisfy { i in (n..<(n + 3)).allSatisfy { blas[i * ldc + $0] == start[i * ldc + $0] } })
            }
        }
    }
}
