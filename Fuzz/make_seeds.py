"""Writes the seed corpus of each fuzz target into Fuzz/Corpus/TARGET/seed-*.

Run once with the test venv (onnx, Pillow, tokenizers) and a built `vessel`; the files are
committed, so a fuzz run needs none of these. Findings kept as regressions live beside the seeds
under other names and are not touched here.

    scripts/onnx-test-data.sh   # the node cases, in .build/onnx-node-cases
    .build/venv/bin/python Fuzz/make_seeds.py .build/debug/vessel
"""

import glob
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import onnx
from PIL import Image
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "Fuzz", "Corpus")


def reset(target):
    directory = os.path.join(CORPUS, target)
    os.makedirs(directory, exist_ok=True)
    for old in glob.glob(os.path.join(directory, "seed-*")):
        os.remove(old)
    return directory


def write(directory, name, data):
    with open(os.path.join(directory, "seed-" + name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def onnx_seeds():
    """The bundled examples' models, and the first case of every set of operators in ONNX's
    node suite (small models whose attributes and shapes are the spec's own)."""
    directory = reset("onnx")
    for example in ["iris", "digits"]:
        path = os.path.join(ROOT, "Examples", example, "model.onnx")
        if os.path.exists(path) and os.path.getsize(path) < 64 << 10:
            write(directory, example + ".onnx", open(path, "rb").read())
    node = os.path.join(ROOT, ".build", "onnx-node-cases")  # scripts/onnx-test-data.sh
    seen = set()
    for case in sorted(os.listdir(node)):
        path = os.path.join(node, case, "model.onnx")
        if not os.path.exists(path) or os.path.getsize(path) > 4096:
            continue
        model = onnx.load(path)
        ops = tuple(sorted({n.op_type for n in model.graph.node}))
        if ops in seen:
            continue
        seen.add(ops)
        write(directory, case + ".onnx", open(path, "rb").read())


def archive_seeds(vessel):
    """`vessel export` of the iris example, and the smallest layouts a reader must refuse."""
    directory = reset("archive")
    home = tempfile.mkdtemp()
    try:
        env = dict(os.environ, VESSEL_HOME=home)
        subprocess.run([vessel, "pack", os.path.join(ROOT, "Examples", "iris")], env=env, check=True, capture_output=True)
        out = os.path.join(home, "iris.tar")
        subprocess.run([vessel, "export", "iris:1.0.0", "--output", out], env=env, check=True, capture_output=True)
        write(directory, "iris-export.tar", open(out, "rb").read())
    finally:
        shutil.rmtree(home)
    import tarfile

    def tar(entries):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as t:
            for name, data in entries:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
        return buffer.getvalue()

    layout = b'{"imageLayoutVersion":"1.0.0"}'
    write(directory, "layout-only.tar", tar([("oci-layout", layout)]))
    write(directory, "empty-index.tar", tar([("oci-layout", layout), ("index.json", b'{"schemaVersion":2,"manifests":[]}')]))


def oci_seeds():
    """Documents with digests that resolve nowhere (the target adds a real artifact's at start)."""
    directory = reset("oci")
    digest = "sha256:" + "ab" * 32
    write(directory, "manifest.json", json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.cncf.model.manifest.v1+json",
        "config": {"mediaType": "application/vnd.cncf.model.config.v1+json", "digest": digest, "size": 2},
        "layers": [{"mediaType": "application/vnd.cncf.model.weight.v1.raw", "digest": digest, "size": 2,
                    "annotations": {"org.opencontainers.image.title": "model.onnx"}}]}))
    write(directory, "index.json", json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": 2,
                       "platform": {"architecture": "amd64", "os": "linux"}}]}))


def manifest_seeds():
    directory = reset("manifest")
    for path in sorted(glob.glob(os.path.join(ROOT, "Examples", "*", "vessel.yaml"))):
        write(directory, os.path.basename(os.path.dirname(path)) + ".yaml", open(path, "rb").read())
    write(directory, "aliases.yaml", "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n")


def oip_seeds():
    """First byte even: a JSON body; odd: two bytes of header length, then JSON and binary."""
    directory = reset("oip")
    bodies = {
        "iris.json": {"inputs": [{"name": "X", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]},
        "nested.json": {"id": "r1", "inputs": [{"name": "x", "shape": [2, 2], "datatype": "INT64", "data": [[1, 2], [3, 4]]}],
                        "outputs": [{"name": "y", "parameters": {"binary_data": True}}], "parameters": {"raw": True}},
        "bytes.json": {"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": ["héllo", "world"]},
                                  {"name": "flag", "shape": [1], "datatype": "BOOL", "data": [True]},
                                  {"name": "h", "shape": [1], "datatype": "FP16", "data": [0.5]}]},
        "content-type.json": {"inputs": [{"name": "img", "shape": [1], "datatype": "BYTES", "data": ["aGVsbG8="],
                                          "parameters": {"content_type": "base64"}}]},
        "mlflow-split.json": {"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2.5], [3, 4]]}},
        "mlflow-records.json": {"dataframe_records": [{"x": [1, 2, 3, 4]}, {"x": [5, 6, 7, 8]}]},
        "mlflow-instances.json": {"instances": [[1, 2, 3, 4]]},
        "mlflow-inputs.json": {"inputs": {"x": [[1, 2, 3, 4]], "k": [3]}},
        "cog.json": {"id": "p1", "input": {"x": [[1, 2, 3, 4]], "text": ["a"], "k": [1]}},
    }
    for name, body in bodies.items():
        write(directory, name, b"\x00" + json.dumps(body).encode())
    header = json.dumps({"inputs": [
        {"name": "X", "shape": [1, 4], "datatype": "FP32", "parameters": {"binary_data_size": 16}},
        {"name": "s", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": 7}}],
        "parameters": {"binary_data_output": True}}).encode()
    binary = struct.pack("<4f", 5.1, 3.5, 1.4, 0.2) + struct.pack("<I", 3) + b"abc"
    write(directory, "binary.bin", b"\x01" + struct.pack("<H", len(header)) + header + binary)


def image_seeds():
    directory = reset("image")
    image = Image.new("RGB", (8, 6))
    for x in range(8):
        for y in range(6):
            image.putpixel((x, y), (x * 30, y * 40, 128))
    for name, kwargs in {"png": {}, "jpeg": {"quality": 80}, "webp": {"lossless": True}}.items():
        buffer = io.BytesIO()
        image.save(buffer, name.upper(), **kwargs)
        write(directory, "rgb." + name, buffer.getvalue())
    gray = io.BytesIO()
    image.convert("LA").save(gray, "PNG")
    write(directory, "gray-alpha.png", gray.getvalue())
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = io.BytesIO()
    image.save(rotated, "JPEG", exif=exif.tobytes())
    write(directory, "exif-orientation-6.jpeg", rotated.getvalue())


def tokenizer_seeds():
    """Tiny tokenizers of each model kind, as `tokenizers` writes them; a zero byte, then text."""
    directory = reset("tokenizer")
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "world", "##s", "##ing", "a", "b", "c", ",", "!"]
    wordpiece = Tokenizer(models.WordPiece({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    wordpiece.normalizer = normalizers.BertNormalizer(lowercase=True)
    wordpiece.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    wordpiece.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    wordpiece.decoder = decoders.WordPiece()
    bpe = Tokenizer(models.BPE({"h": 0, "e": 1, "l": 2, "o": 3, "he": 4, "ll": 5, "hell": 6, "<unk>": 7},
                               [("h", "e"), ("l", "l"), ("he", "ll")], unk_token="<unk>"))
    bpe.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    bpe.pre_tokenizer = pre_tokenizers.Whitespace()
    bytelevel = Tokenizer(models.BPE({"a": 0, "b": 1, "ab": 2, "Ġ": 3}, [("a", "b")]))
    bytelevel.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bytelevel.post_processor = processors.ByteLevel(trim_offsets=True)
    bytelevel.decoder = decoders.ByteLevel()
    unigram = Tokenizer(models.Unigram([("<unk>", 0.0), ("▁hello", -1.0), ("▁", -2.0), ("h", -3.0), ("e", -3.0),
                                        ("l", -3.0), ("o", -3.0)], unk_id=0))
    unigram.pre_tokenizer = pre_tokenizers.Metaspace()
    unigram.decoder = decoders.Metaspace()
    wordlevel = Tokenizer(models.WordLevel({"hello": 0, "world": 1, "[UNK]": 2}, unk_token="[UNK]"))
    wordlevel.pre_tokenizer = pre_tokenizers.Whitespace()
    for name, tokenizer in {"wordpiece": wordpiece, "bpe": bpe, "bytelevel": bytelevel, "unigram": unigram,
                            "wordlevel": wordlevel}.items():
        tokenizer.enable_truncation(16)
        write(directory, name + ".json", tokenizer.to_str().encode() + b"\x00Hello worlds, hellings! ab ab")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    onnx_seeds()
    archive_seeds(os.path.abspath(sys.argv[1]))
    oci_seeds()
    manifest_seeds()
    oip_seeds()
    image_seeds()
    tokenizer_seeds()
    for target in sorted(os.listdir(CORPUS)):
        files = glob.glob(os.path.join(CORPUS, target, "*"))
        print(f"{target}: {len(files)} files, {sum(os.path.getsize(f) for f in files)} bytes")
