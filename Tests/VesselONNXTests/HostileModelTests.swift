import Foundation
import Testing
@testable import VesselONNX
import VesselTensor
import VesselTestSupport

/// Models and inputs that once crashed (a trap: integer overflow, index out of range, division
/// by zero) or hung the runtime. Each must now fail with an error naming the node, at load or
/// at run: a crash here takes the whole test process down, so each case failed before its fix.
@Suite("hostile models")
struct HostileModelTests {
    /// One Python run writes every case's model: `NAME.onnx`.
    static let directory: String? = {
        guard let directory = try? TestSupport.makeTemporaryDirectory("hostile") else { return nil }
        do {
            try TestSupport.python(
                """
                import numpy as np, onnx
                from onnx import helper, numpy_helper, TensorProto as T
                d = '\(directory)'
                def save(name, nodes, inputs, outputs, inits=(), opset=18, ir=8, domain_opsets=()):
                    g = helper.make_graph(nodes, name, inputs, outputs, list(inits))
                    m = helper.make_model(g, opset_imports=[helper.make_opsetid('', opset)] + [helper.make_opsetid(k, v) for k, v in domain_opsets])
                    m.ir_version = ir
                    onnx.save(m, f'{d}/{name}.onnx')
                x = lambda name='x', shape=None, t=T.FLOAT: helper.make_tensor_value_info(name, t, shape)
                y = lambda: helper.make_tensor_value_info('y', T.FLOAT, None)
                yi = lambda: helper.make_tensor_value_info('y', T.INT64, None)
                i64 = lambda name, values: numpy_helper.from_array(np.array(values, np.int64), name)
                big = 1 << 62
                save('reshape_overflow', [helper.make_node('Reshape', ['x', 's'], ['y'])], [x()], [y()], [i64('s', [big, 4])])
                save('reshape_product_overflow', [helper.make_node('Reshape', ['x', 's'], ['y'])], [x()], [y()], [i64('s', [0, 1 << 40, 1 << 40])])
                save('reshape_two_inferred', [helper.make_node('Reshape', ['x', 's'], ['y'])], [x()], [y()], [i64('s', [-1, -1])])
                w = numpy_helper.from_array(np.ones((2, 1, 3, 3), np.float32), 'w')
                save('conv_stride_0', [helper.make_node('Conv', ['x', 'w'], ['y'], strides=[0, 0])], [x()], [y()], [w])
                save('conv_dilation_negative', [helper.make_node('Conv', ['x', 'w'], ['y'], dilations=[-1, 1])], [x()], [y()], [w])
                save('conv_group_0', [helper.make_node('Conv', ['x', 'w'], ['y'], group=0)], [x()], [y()], [w])
                save('conv_kernel_mismatch', [helper.make_node('Conv', ['x', 'w'], ['y'], kernel_shape=[5, 5])], [x()], [y()], [w])
                save('conv_transpose_group_0', [helper.make_node('ConvTranspose', ['x', 'w'], ['y'], group=0)], [x()], [y()], [w])
                save('argmax_empty_axis', [helper.make_node('ArgMax', ['x'], ['y'], axis=1)], [x()], [yi()])
                save('depth_to_space_0', [helper.make_node('DepthToSpace', ['x'], ['y'], blocksize=0)], [x()], [y()])
                save('depth_to_space_rank_2', [helper.make_node('DepthToSpace', ['x'], ['y'], blocksize=2)], [x()], [y()])
                save('space_to_depth_0', [helper.make_node('SpaceToDepth', ['x'], ['y'], blocksize=0)], [x()], [y()])
                save('max_pool_kernel_0', [helper.make_node('MaxPool', ['x'], ['y'], kernel_shape=[0, 0])], [x()], [y()])
                save('max_pool_rank_2', [helper.make_node('MaxPool', ['x'], ['y'], kernel_shape=[1, 1])], [x()], [y()])
                save('opset_999', [helper.make_node('Relu', ['x'], ['y'])], [x()], [y()], opset=999)
                save('ir_version_999', [helper.make_node('Relu', ['x'], ['y'])], [x()], [y()], ir=999)
                # A Loop whose trip count is data: only a deadline stops it.
                \(TestSupport.loopModelScript(saveTo: directory + "/loop_forever.onnx"))
                \(TestSupport.loopModelScript(saveTo: directory + "/loop_empty_trip_count.onnx", tripShape: "[0]"))
                save('expand_overflow', [helper.make_node('Expand', ['x', 's'], ['y'])], [x()], [y()], [i64('s', [big, big])])
                save('tile_overflow', [helper.make_node('Tile', ['x', 's'], ['y'])], [x()], [y()], [i64('s', [big, big])])
                # Found by the onnx fuzz target: a graph output listed twice trapped at run.
                save('duplicate_outputs', [helper.make_node('Relu', ['x'], ['y'])], [x()], [y(), y()])
                save('lp_normalization_scalar', [helper.make_node('LpNormalization', ['x'], ['y'])], [x()], [y()])
                u = numpy_helper.from_array(np.ones((1, 2), np.float32), 'u')
                save('scatter_elements_short_updates', [helper.make_node('ScatterElements', ['x', 'i', 'u'], ['y'])], [x()], [y()], [i64('i', [[0, 1], [1, 0]]), u])
                save('gather_elements_rank', [helper.make_node('GatherElements', ['x', 'i'], ['y'])], [x()], [y()], [i64('i', [[[0]]])])
                save('gather_elements_wide', [helper.make_node('GatherElements', ['x', 'i'], ['y'])], [x()], [y()], [i64('i', [[0, 0, 0]])])
                save('einsum_ellipsis_rank', [helper.make_node('Einsum', ['x', 'x'], ['y'], equation='...ij,jk->ik')], [x()], [y()])
                save('einsum_label_space', [helper.make_node('Einsum', ['x', 'x', 'x', 'x'], ['y'], equation='ab,cd,ef,gh->')], [x()], [y()])
                f32 = lambda name, values: numpy_helper.from_array(np.array(values, np.float32), name)
                save('batch_norm_short_parameters', [helper.make_node('BatchNormalization', ['x', 'g', 'b', 'm', 'v'], ['y'])], [x()], [y()],
                     [f32('g', [1]), f32('b', [0]), f32('m', [0]), f32('v', [1])])
                save('instance_norm_rank_1', [helper.make_node('InstanceNormalization', ['x', 'g', 'b'], ['y'])], [x()], [y()], [f32('g', [1]), f32('b', [0])])
                save('group_norm_short_scale', [helper.make_node('GroupNormalization', ['x', 'g', 'b'], ['y'], num_groups=2)], [x()], [y()],
                     [f32('g', [1]), f32('b', [0])], opset=21)
                save('lrn_size_0', [helper.make_node('LRN', ['x'], ['y'], size=0)], [x()], [y()])
                save('trilu_rank_1', [helper.make_node('Trilu', ['x'], ['y'])], [x()], [y()])
                save('gemm_rank_1', [helper.make_node('Gemm', ['x', 'x'], ['y'])], [x()], [y()])
                save('nll_short_weight', [helper.make_node('NegativeLogLikelihoodLoss', ['x', 't', 'w'], ['y'])], [x()], [y()],
                     [i64('t', [[2, 2]]), f32('w', [1])])
                save('matmul_mixed_types', [helper.make_node('MatMul', ['x', 'w'], ['y'])], [x()], [y()],
                     [numpy_helper.from_array(np.ones((2, 2), np.float64), 'w')])
                save('gather_nd_empty_tuples', [helper.make_node('GatherND', ['x', 'i'], ['y'])], [x()], [y()],
                     [numpy_helper.from_array(np.zeros((2, 0), np.int64), 'i')])
                save('neg_int4', [helper.make_node('Neg', ['x'], ['y'])], [x('x', None, T.INT4)], [helper.make_tensor_value_info('y', T.INT4, None)])
                save('duplicate_inputs', [helper.make_node('Add', ['x', 'x'], ['y'])], [x(), x()], [y()])
                save('constant_of_shape_overflow', [helper.make_node('ConstantOfShape', ['s'], ['y'])], [], [y()], [i64('s', [big, big])])
                """)
        } catch {
            return nil
        }
        return directory
    }()

    static func model(_ name: String) throws -> String {
        let directory = try #require(directory, "the hostile models could not be written (is .build/venv there?)")
        return "\(directory)/\(name).onnx"
    }

    /// Loading fails with a message that contains `expected`.
    @Test(
        "refused at load",
        arguments: [
            ("conv_stride_0", "strides [0, 0] must be positive"),
            ("conv_dilation_negative", "dilations [-1, 1] must be positive"),
            ("conv_group_0", "group 0 must be positive"),
            ("conv_transpose_group_0", "group 0 must be positive"),
            ("depth_to_space_0", "blocksize 0 must be positive"),
            ("space_to_depth_0", "blocksize 0 must be positive"),
            ("max_pool_kernel_0", "kernel_shape [0, 0] must be positive"),
            ("opset_999", "opset 999 of domain `ai.onnx` is newer than this runtime implements"),
            ("ir_version_999", "IR version 999 is newer than this runtime reads"),
            ("duplicate_inputs", "declares input `x` twice"),
            ("lrn_size_0", "size")
        ])
    func refusedAtLoad(_ name: String, _ expected: String) throws {
        let path = try Self.model(name)
        #expect {
            try ONNXModel(path: path)
        } throws: { error in
            "\(error)".contains(expected)
        }
    }

    /// Loading works; running on `shape` fails with a message that contains `expected`.
    @Test(
        "refused at run",
        arguments: [
            ("reshape_overflow", [2, 4], "cannot reshape"),
            ("reshape_product_overflow", [0, 4], "cannot reshape"),
            ("reshape_two_inferred", [2, 4], "one -1"),
            ("conv_kernel_mismatch", [1, 1, 8, 8], "kernel_shape [5, 5] differs"),
            ("argmax_empty_axis", [3, 0], "axis 1 of shape [3, 0] is empty"),
            ("depth_to_space_rank_2", [4, 4], "rank 4"),
            ("max_pool_rank_2", [4, 4], "rank ≥ 3"),
            ("expand_overflow", [1, 1], "Expand"),
            ("tile_overflow", [1, 1], "Tile"),
            ("constant_of_shape_overflow", [], "ConstantOfShape"),
            // Found by the onnx fuzz target: an axis of a scalar was taken as axis 0 of nothing.
            ("lp_normalization_scalar", [], "axis -1 is out of range for rank 0"),
            ("scatter_elements_short_updates", [2, 2], "updates [1, 2] must have the shape of indices [2, 2]"),
            ("gather_elements_rank", [2, 2], "indices [1, 1, 1] do not fit data [2, 2]"),
            ("gather_elements_wide", [2, 2], "indices [1, 3] do not fit data [2, 2]"),
            ("einsum_ellipsis_rank", [2], "term `...ij` of `...ij,jk->ik` does not match an operand of rank 1"),
            ("einsum_label_space", [64, 64], "too many to sum"),
            ("batch_norm_short_parameters", [1, 3, 2, 2], "scale has 1 values for 3 channels"),
            ("instance_norm_rank_1", [4], "InstanceNormalization needs rank ≥ 2"),
            ("group_norm_short_scale", [1, 4, 2], "scale has 1 values for 4 channels"),
            // The executor's rank check (InputRanks), for every operator that reads inputs by axis.
            ("trilu_rank_1", [3], "input 0 (`x`) has shape [3]; Trilu needs rank ≥ 2"),
            ("gemm_rank_1", [3], "Gemm needs rank ≥ 2"),
            ("nll_short_weight", [1, 3, 2], "weight has 1 values for 3 classes"),
            // The executor's dtype check (InputTypes, from the onnx schemas).
            ("matmul_mixed_types", [2, 2], "input 1 (`w`) is float64 but input 0 (`x`) is float32; MatMul takes one type for both")
        ])
    func refusedAtRun(_ name: String, _ shape: [Int], _ expected: String) throws {
        let model = try ONNXModel(path: try Self.model(name))
        let input = Tensor([Float](repeating: 1, count: Tensor.count(of: shape)), shape: shape)
        let feeds = model.inputs.isEmpty ? [:] : ["x": input]
        #expect {
            try model.run(feeds)
        } throws: { error in
            "\(error)".contains(expected)
        }
    }

    @Test("GatherND with index tuples of length 0 gives the whole data once per tuple, as onnxruntime")
    func gatherNDEmptyTuples() throws {
        let model = try ONNXModel(path: try Self.model("gather_nd_empty_tuples"))
        let outputs = try model.run(["x": Tensor([Float(1), 2, 3], shape: [3])])
        #expect(outputs["y"]?.shape == [2, 3])
        #expect(outputs["y"]?.scalars(as: Float.self) == [1, 2, 3, 1, 2, 3])
    }

    @Test("Neg of an int4 tensor is refused for its type, as the spec lists Neg's types")
    func negOfInt4() throws {
        let model = try ONNXModel(path: try Self.model("neg_int4"))
        #expect {
            try model.run(["x": Tensor(converting: [1, -2], to: .int4, shape: [2])])
        } throws: { error in
            "\(error)".contains("input 0 (`x`) is int4; opset 18 of Neg takes bfloat16, float16, float32, float64, int16, int32, int64, int8 there")
        }
    }

    @Test("a graph that lists one output twice returns it once")
    func duplicateOutputs() throws {
        let model = try ONNXModel(path: try Self.model("duplicate_outputs"))
        let outputs = try model.run(["x": Tensor([Float(-1), 2], shape: [2])])
        #expect(outputs.count == 1)
        #expect(outputs["y"]?.scalars(as: Float.self) == [0, 2])
    }

    @Test("a Loop with a trip count of 2^62 stops at its deadline, and a Loop without a trip count value is refused")
    func loopStopsAtDeadline() throws {
        let model = try ONNXModel(path: try Self.model("loop_forever"))
        #expect(!model.graph.costIsBoundedByInputs)
        let clock = ContinuousClock()
        let started = clock.now
        #expect {
            try model.run(
                ["m": Tensor([Int64(1) << 62], shape: []), "x": Tensor([Float(0)], shape: [1])],
                control: RunControl(timeout: .milliseconds(200)))
        } throws: { error in
            guard case ONNXError.stopped = error else { return false }
            return true
        }
        // Generous: the point is that it stops at all, on a loaded machine too.
        #expect(clock.now - started < .seconds(20))
        let cancelled = RunControl()
        cancelled.cancel()
        #expect(throws: ONNXError.self) { try model.run(["m": Tensor([Int64(5)], shape: []), "x": Tensor([Float(0)], shape: [1])], control: cancelled) }
        let empty = try ONNXModel(path: try Self.model("loop_empty_trip_count"))
        #expect {
            try empty.run(["m": Tensor([Int64](), shape: [0]), "x": Tensor([Float(0)], shape: [1])])
        } throws: { error in
            "\(error)".contains("trip count M must hold one value")
        }
    }

    @Test("a FIFO named as the model is refused at once instead of blocking the loader")
    func fifoModel() throws {
        let directory = try TestSupport.makeTemporaryDirectory("fifo-model")
        defer { TestSupport.remove(directory) }
        let path = directory + "/model.onnx"
        #expect(mkfifo(path, 0o600) == 0)
        #expect {
            try ONNXModel(path: path)
        } throws: { error in
            "\(error)".contains("not a regular file")
        }
        #expect {
            try ONNXModel(path: directory)
        } throws: { error in
            "\(error)".contains("directory")
        }
    }

    @Test("the shape checks: zero-size shapes whose other products overflow are refused; counts saturate instead of trapping")
    func shapeChecks() {
        #expect(Tensor.checkedCount(of: [0, 1 << 40, 1 << 40]) == nil)
        #expect(Tensor.checkedCount(of: [0, 4]) == 0)
        #expect(Tensor.checkedCount(of: [Int.max, 2]) == nil)
        #expect(Tensor.count(of: [Int.max, 2]) == Int.max)
        #expect(Tensor([Double.nan, 1e300, -1e300, 3], shape: [4]).integers() == [0, Int.max, Int.min, 3])
    }
}

/// Every variant the hostile-input sweep found crashing or hanging (`hostile-findings.tsv`),
/// replayed through `vessel run` in processes of their own: each must now end in a clean error
/// or a result.
@Suite("hostile node-case variants")
struct HostileVariantTests {
    @Test("each recorded crash and hang of the node-case sweep is now a clean error or a result")
    func replayFindings() throws {
        let cases = TestSupport.packageRoot + "/.build/onnx-node-cases"
        try #require(FileManager.default.fileExists(atPath: cases), "scripts/onnx-test-data.sh writes the node cases")
        let out = try TestSupport.makeTemporaryDirectory("hostile-replay")
        defer { TestSupport.remove(out) }
        let script = TestSupport.packageRoot + "/Tests/VesselONNXTests/Conformance/hostile_mutations.py"
        let findings = TestSupport.packageRoot + "/Tests/VesselONNXTests/Conformance/hostile-findings.tsv"
        let result = try TestSupport.run(TestSupport.python, [script, cases, TestSupport.vesselBinary, out, "--only", findings, "--jobs", "2"])
        #expect(result.status == 0, "\(result.standardOutput)\n\(result.standardError.suffix(2000))")
    }
}
