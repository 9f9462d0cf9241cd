"""Builds the whole-model fixtures with random weights and records onnxruntime's outputs.

Run from this directory in a venv with onnx, onnxruntime and numpy:
    python make_models.py
Writes models/<name>/model.onnx and models/<name>/test_data_set_0/{input,output}_K.pb.
"""
import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(20261127)


def weight(name, *shape, scale=0.2):
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


def save(name, graph, inputs, opset=17):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="vessel-fixtures")
    model.ir_version = 8
    onnx.checker.check_model(model)
    record(name, model, inputs)


def record(name, model, inputs):
    """Writes the model, its inputs and onnxruntime's outputs for them."""
    directory = os.path.join("models", name)
    os.makedirs(os.path.join(directory, "test_data_set_0"), exist_ok=True)
    onnx.save(model, os.path.join(directory, "model.onnx"))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    outputs = session.run(None, inputs)
    for k, (key, value) in enumerate(inputs.items()):
        onnx.save_tensor(numpy_helper.from_array(value, key), os.path.join(directory, "test_data_set_0", f"input_{k}.pb"))
    for k, (info, value) in enumerate(zip(session.get_outputs(), outputs)):
        onnx.save_tensor(numpy_helper.from_array(value, info.name), os.path.join(directory, "test_data_set_0", f"output_{k}.pb"))
    print(name, [o.shape for o in outputs])


def resnet_block():
    c = 16
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "g1", "b1", "m1", "v1"], ["n1"], epsilon=1e-5),
        helper.make_node("Relu", ["n1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c2", "g2", "b2", "m2", "v2"], ["n2"], epsilon=1e-5),
        helper.make_node("Add", ["n2", "x"], ["s"]),
        helper.make_node("Relu", ["s"], ["y"]),
    ]
    inits = [weight("w1", c, c, 3, 3, scale=0.1), weight("w2", c, c, 3, 3, scale=0.1)]
    for k in (1, 2):
        inits += [numpy_helper.from_array((1 + 0.1 * rng.standard_normal(c)).astype(np.float32), f"g{k}"),
                  weight(f"b{k}", c), weight(f"m{k}", c),
                  numpy_helper.from_array((0.5 + rng.random(c)).astype(np.float32), f"v{k}")]
    graph = helper.make_graph(nodes, "resnet_block",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", c, 12, 12])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", c, 12, 12])], inits)
    save("resnet_block", graph, {"x": rng.standard_normal((2, c, 12, 12)).astype(np.float32)})


def transformer_layer():
    d, heads, ff = 32, 4, 64
    hd = d // heads
    nodes = []
    inits = [weight(n, d, d) for n in ("wq", "wk", "wv", "wo")]
    inits += [weight("w1", d, ff), weight("bf1", ff), weight("w2", ff, d), weight("bf2", d)]
    inits += [numpy_helper.from_array(np.ones(d, np.float32), "ln_g"), numpy_helper.from_array(np.zeros(d, np.float32), "ln_b")]
    inits += [numpy_helper.from_array(np.array([0, 0, heads, hd], np.int64), "split_shape"),
              numpy_helper.from_array(np.array([0, 0, d], np.int64), "merge_shape"),
              numpy_helper.from_array(np.array(1 / np.sqrt(hd), np.float32), "scale"),
              numpy_helper.from_array(np.array(-1e9, np.float32), "neg")]
    for n in ("q", "k", "v"):
        nodes += [helper.make_node("MatMul", ["x", "w" + n], [n + "_p"]),
                  helper.make_node("Reshape", [n + "_p", "split_shape"], [n + "_r"]),
                  helper.make_node("Transpose", [n + "_r"], [n + "_t"], perm=[0, 2, 1, 3] if n != "k" else [0, 2, 3, 1])]
    nodes += [
        helper.make_node("MatMul", ["q_t", "k_t"], ["scores_raw"]),
        helper.make_node("Mul", ["scores_raw", "scale"], ["scores"]),
        # mask: [N, 1, 1, T] booleans, True = attend
        helper.make_node("Where", ["mask", "scores", "neg"], ["masked"]),
        helper.make_node("Softmax", ["masked"], ["attn"], axis=-1),
        helper.make_node("MatMul", ["attn", "v_t"], ["ctx"]),
        helper.make_node("Transpose", ["ctx"], ["ctx_t"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["ctx_t", "merge_shape"], ["ctx_m"]),
        helper.make_node("MatMul", ["ctx_m", "wo"], ["attn_out"]),
        helper.make_node("Add", ["x", "attn_out"], ["res1"]),
        helper.make_node("LayerNormalization", ["res1", "ln_g", "ln_b"], ["ln1"], axis=-1, epsilon=1e-5),
        helper.make_node("MatMul", ["ln1", "w1"], ["h1"]),
        helper.make_node("Add", ["h1", "bf1"], ["h1b"]),
    ]
    # Gelu before opset 20, as exporters write it: x * (1 + erf(x / sqrt 2)) / 2.
    nodes += [
        helper.make_node("Div", ["h1b", "sqrt2"], ["h1s"]),
        helper.make_node("Erf", ["h1s"], ["e"]),
        helper.make_node("Add", ["e", "one"], ["e1"]),
        helper.make_node("Mul", ["h1b", "e1"], ["ge"]),
        helper.make_node("Mul", ["ge", "half"], ["g"]),
        helper.make_node("MatMul", ["g", "w2"], ["h2"]),
        helper.make_node("Add", ["h2", "bf2"], ["h2b"]),
        helper.make_node("Add", ["ln1", "h2b"], ["res2"]),
        helper.make_node("LayerNormalization", ["res2", "ln_g", "ln_b"], ["y"], axis=-1, epsilon=1e-5),
    ]
    inits += [numpy_helper.from_array(np.array(np.sqrt(2), np.float32), "sqrt2"),
              numpy_helper.from_array(np.array(1, np.float32), "one"), numpy_helper.from_array(np.array(0.5, np.float32), "half")]
    graph = helper.make_graph(nodes, "transformer_layer",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "T", d]),
                               helper.make_tensor_value_info("mask", TensorProto.BOOL, ["N", 1, 1, "T"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "T", d])], inits)
    mask = np.ones((2, 1, 1, 10), bool)
    mask[1, ..., 7:] = False
    save("transformer_layer", graph, {"x": rng.standard_normal((2, 10, d)).astype(np.float32), "mask": mask})


def gelu_layer():
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Gelu", ["h"], ["y"])]
    graph = helper.make_graph(nodes, "gelu_layer", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 24])], [weight("w", 16, 24, scale=0.5)])
    save("gelu_layer", graph, {"x": rng.standard_normal((3, 16)).astype(np.float32)}, opset=20)


def lstm_tagger():
    vocab, emb, hidden, tags = 50, 16, 24, 7
    nodes = [
        helper.make_node("Gather", ["embeddings", "tokens"], ["e"]),            # [T, N, emb]
        helper.make_node("LSTM", ["e", "W", "R", "B"], ["Y", "Y_h", "Y_c"], hidden_size=hidden, direction="bidirectional"),
        helper.make_node("Transpose", ["Y"], ["Yt"], perm=[0, 2, 1, 3]),        # [T, N, 2, H]
        helper.make_node("Reshape", ["Yt", "shape"], ["feat"]),                  # [T, N, 2H]
        helper.make_node("MatMul", ["feat", "proj"], ["logits"]),
        helper.make_node("LogSoftmax", ["logits"], ["scores"], axis=-1),
        helper.make_node("ArgMax", ["scores"], ["tags"], axis=-1, keepdims=0),
    ]
    inits = [weight("embeddings", vocab, emb, scale=0.5), weight("W", 2, 4 * hidden, emb), weight("R", 2, 4 * hidden, hidden),
             weight("B", 2, 8 * hidden), weight("proj", 2 * hidden, tags, scale=0.3),
             numpy_helper.from_array(np.array([0, 0, 2 * hidden], np.int64), "shape")]
    graph = helper.make_graph(nodes, "lstm_tagger", [helper.make_tensor_value_info("tokens", TensorProto.INT64, ["T", "N"])],
                              [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["T", "N", tags]),
                               helper.make_tensor_value_info("tags", TensorProto.INT64, ["T", "N"])], inits)
    save("lstm_tagger", graph, {"tokens": rng.integers(0, vocab, (9, 3)).astype(np.int64)})


def upsampling_decoder():
    nodes = [
        helper.make_node("ConvTranspose", ["x", "wt", "bt"], ["u1"], strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1]),
        helper.make_node("Relu", ["u1"], ["r1"]),
        helper.make_node("Resize", ["r1", "", "scales"], ["u2"], mode="linear", coordinate_transformation_mode="half_pixel"),
        helper.make_node("Conv", ["u2", "wc", "bc"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Resize", ["c", "", "", "sizes"], ["u3"], mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
        helper.make_node("Sigmoid", ["u3"], ["y"]),
    ]
    inits = [weight("wt", 8, 6, 3, 3), weight("bt", 6), weight("wc", 3, 6, 3, 3), weight("bc", 3),
             numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"),
             numpy_helper.from_array(np.array([1, 3, 40, 40], np.int64), "sizes")]
    graph = helper.make_graph(nodes, "upsampling_decoder", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 5, 5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 40, 40])], inits)
    save("upsampling_decoder", graph, {"x": rng.standard_normal((1, 8, 5, 5)).astype(np.float32)})


def attention_cache():
    """Opset-23 Attention as a decoder step runs it: 3-D inputs, grouped-query heads (8 query,
    2 key/value), a 24-token past in the cache, causal with an additive padding mask, head size
    64. Its own generator, so adding it left the other fixtures' weights as they were."""
    local = np.random.default_rng(20261205)
    b, sq, past, hq, hkv, d = 2, 7, 24, 8, 2, 64
    node = helper.make_node("Attention", ["q", "k", "v", "mask", "past_key", "past_value"],
                            ["y", "present_key", "present_value"], q_num_heads=hq, kv_num_heads=hkv, is_causal=1)
    f = TensorProto.FLOAT
    graph = helper.make_graph([node], "attention_cache", [
        helper.make_tensor_value_info("q", f, [b, sq, hq * d]), helper.make_tensor_value_info("k", f, [b, sq, hkv * d]),
        helper.make_tensor_value_info("v", f, [b, sq, hkv * d]), helper.make_tensor_value_info("mask", f, [b, 1, sq, past + sq]),
        helper.make_tensor_value_info("past_key", f, [b, hkv, past, d]), helper.make_tensor_value_info("past_value", f, [b, hkv, past, d])],
        [helper.make_tensor_value_info("y", f, [b, sq, hq * d]), helper.make_tensor_value_info("present_key", f, [b, hkv, past + sq, d]),
         helper.make_tensor_value_info("present_value", f, [b, hkv, past + sq, d])])
    mask = np.zeros((b, 1, sq, past + sq), np.float32)
    mask[1, :, :, :5] = -np.inf  # the second sequence is left-padded by five tokens
    mask += local.standard_normal(mask.shape).astype(np.float32) * 0.1  # and a small additive bias
    inputs = {name: local.standard_normal(shape).astype(np.float32) for name, shape in
              [("q", (b, sq, hq * d)), ("k", (b, sq, hkv * d)), ("v", (b, sq, hkv * d))]}
    inputs["mask"] = mask
    inputs["past_key"] = local.standard_normal((b, hkv, past, d)).astype(np.float32)
    inputs["past_value"] = local.standard_normal((b, hkv, past, d)).astype(np.float32)
    save("attention_cache", graph, inputs, opset=23)


def mlp_gemm():
    """Two Gemm layers as PyTorch's Linear exports them (transB=1), one with alpha and beta, and
    one with B as it is (transB=0): the packed-weights path's other operator."""
    local = np.random.default_rng(20261207)
    w1 = numpy_helper.from_array((local.standard_normal((64, 100)) * 0.1).astype(np.float32), "w1")
    b1 = numpy_helper.from_array((local.standard_normal(64) * 0.1).astype(np.float32), "b1")
    w2 = numpy_helper.from_array((local.standard_normal((64, 10)) * 0.1).astype(np.float32), "w2")
    b2 = numpy_helper.from_array((local.standard_normal((1, 10)) * 0.1).astype(np.float32), "b2")
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], transB=1, alpha=0.5, beta=2.0),
             helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Gemm", ["r", "w2", "b2"], ["y"])]
    graph = helper.make_graph(nodes, "mlp_gemm", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [7, 100])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [7, 10])], [w1, b1, w2, b2])
    save("mlp_gemm", graph, {"x": local.standard_normal((7, 100)).astype(np.float32)})


def quantized():
    """The transformer layer quantized the dynamic way (DynamicQuantizeLinear + MatMulInteger,
    onnxruntime's quantize_dynamic) and the ResNet block quantized the static way in operator
    form (QuantizeLinear, QLinearConv, QLinearAdd is left out by asking for Conv only), each
    with onnxruntime's outputs for the float model's recorded inputs (and, for the first, the
    onnx reference evaluator's: it cannot run the second's DequantizeLinear-10)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic, quantize_static

    def recorded(name):
        directory = os.path.join("models", name, "test_data_set_0")
        model = onnx.load(os.path.join("models", name, "model.onnx"))
        names = [i.name for i in model.graph.input]
        return {n: numpy_helper.to_array(onnx.load_tensor(os.path.join(directory, f"input_{k}.pb"))) for k, n in enumerate(names)}

    def finish(name, path, inputs):
        model = onnx.load(path)
        record(name, model, inputs)
        print(name, sorted({n.op_type for n in model.graph.node}))

    import tempfile
    with tempfile.TemporaryDirectory() as scratch:
        out = os.path.join(scratch, "dynamic.onnx")
        quantize_dynamic(os.path.join("models", "transformer_layer", "model.onnx"), out, weight_type=QuantType.QInt8)
        finish("transformer_layer_int8", out, recorded("transformer_layer"))
        # onnx's reference evaluator computes the operators as the spec writes them; onnxruntime
        # without VNNI multiplies u8×s8 pairs into saturating int16 and lands elsewhere.
        from onnx.reference import ReferenceEvaluator
        reference = ReferenceEvaluator(onnx.load(out)).run(None, recorded("transformer_layer"))[0]
        onnx.save_tensor(numpy_helper.from_array(reference, "y"),
                         os.path.join("models", "transformer_layer_int8", "test_data_set_0", "reference_output_0.pb"))

        inputs = recorded("resnet_block")
        local = np.random.default_rng(20261206)

        class Reader(CalibrationDataReader):
            def __init__(self):
                self.batches = iter([{"x": local.standard_normal(inputs["x"].shape).astype(np.float32)} for _ in range(8)])

            def get_next(self):
                return next(self.batches, None)

        out = os.path.join(scratch, "static.onnx")
        quantize_static(os.path.join("models", "resnet_block", "model.onnx"), out, Reader(), quant_format=QuantFormat.QOperator,
                        op_types_to_quantize=["Conv", "MatMul"], activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        finish("resnet_block_qoperator", out, inputs)


if __name__ == "__main__":
    resnet_block()
    transformer_layer()
    gelu_layer()
    lstm_tagger()
    upsampling_decoder()
    attention_cache()
    quantized()
    mlp_gemm()
