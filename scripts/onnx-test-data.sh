#!/usr/bin/env bash
# Test-time only: a Python venv with the `onnx` wheel, the official `tritonclient[http]`, Pillow and scikit-learn, and
# the ONNX backend node cases the wheel defines, written to .build/onnx-node-cases.
# Vessel itself never runs Python.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=".build/venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
# onnx for fixtures and node cases; the official Triton HTTP client to test `vessel serve` with;
# Pillow, the reference the `image` processing step is checked against (12.x: Pillow 13 runs the
# vertical pass first for some downscales, which moves a few pixels by a few levels; see
# docs/manifest.md); scikit-learn, joblib and skops for the Python backend's models; MLflow (the
# skinny distribution, with pandas) to write the model directories `vessel import mlflow` reads;
# cog, whose BasePredictor, Input and Path the imported Cog projects use; onnxruntime, which
# mlflow.onnx.save_model needs; kubernetes-validate, which checks `vessel deploy`'s manifests
# against Kubernetes' own schemas.
if ! "$venv/bin/python" -c "import onnx, numpy, tritonclient.http, PIL, sklearn, joblib, skops, mlflow, pandas, cog, onnxruntime, tokenizers, kubernetes_validate; assert PIL.__version__ == '12.3.0'" 2>/dev/null; then
  "$venv/bin/pip" install -q --disable-pip-version-check onnx==1.23.2 numpy==2.4.6 "tritonclient[http]==2.73.0" pillow==12.3.0 \
    scikit-learn==1.9.1 joblib==1.6.0 skops==0.16.0 mlflow-skinny==3.17.2 pandas==3.1.1 cog==0.23.1 onnxruntime==1.32.0 tokenizers==0.23.3 \
    kubernetes-validate==1.37.0
fi
# A local wheelhouse the Python backend's tests resolve and vendor requirements from, so the
# tests themselves never reach a package index.
wheelhouse=".build/wheelhouse"
if [ ! -f "$wheelhouse/.complete" ]; then
  "$venv/bin/pip" download -q --disable-pip-version-check --only-binary=:all: --dest "$wheelhouse" numpy==2.4.6
  touch "$wheelhouse/.complete"
fi
# TensorFlow (CPU) in a venv of its own, for the SavedModel and Keras loaders' tests.
if ! .build/venv-tf/bin/python -c "import tensorflow" 2>/dev/null; then
  python3 -m venv .build/venv-tf
  .build/venv-tf/bin/pip install -q --disable-pip-version-check tensorflow-cpu==2.21.0
fi
# PyTorch in a venv of its own, for the TorchScript loader's tests. PyPI's Linux wheel brings its
# CUDA libraries (some GB); torch imports none of them on a CPU, but refuses to import without.
if ! .build/venv-torch/bin/python -c "import torch, numpy" 2>/dev/null; then
  python3 -m venv .build/venv-torch
  .build/venv-torch/bin/pip install -q --disable-pip-version-check torch==2.15.0 numpy==2.4.6
fi
# BentoML in a venv of its own (its pins are not the test venv's), to build the Bentos `vessel import
# bento` reads; and a wheelhouse of what those Bentos require, which their imports pack from.
if ! .build/venv-bento/bin/python -c "import bentoml, sklearn" 2>/dev/null; then
  python3 -m venv .build/venv-bento
  .build/venv-bento/bin/pip install -q --disable-pip-version-check bentoml==1.4.40 scikit-learn==1.9.1 numpy==2.4.6
fi
if [ ! -f .build/wheelhouse-bento/.complete ]; then
  .build/venv-bento/bin/pip download -q --disable-pip-version-check --only-binary=:all: --dest .build/wheelhouse-bento \
    bentoml==1.4.40 scikit-learn==1.9.1 numpy==2.4.6
  touch .build/wheelhouse-bento/.complete
fi
# OpenSSF Model Signing's own tool, which verifies what `vessel sign` writes and signs what
# `vessel verify` checks (its dependencies, sigstore's, kept apart from the test venv's).
# model-signing, plus what the attestation tests check with: the in-toto package (DSSE),
# cyclonedx-python-lib's strict CycloneDX schema and sigstore-protobuf-specs' bundle parser.
if ! .build/venv-signing/bin/python -c "import model_signing, in_toto, cyclonedx.validation.json, sigstore_protobuf_specs" 2>/dev/null; then
  python3 -m venv .build/venv-signing
  .build/venv-signing/bin/pip install -q --disable-pip-version-check model-signing==1.1.1 pyopenssl \
    "cyclonedx-python-lib[json-validation]==11.12.0" sigstore-protobuf-specs==0.5.2 in-toto==3.1.0
fi
cases=".build/onnx-node-cases"
if [ ! -f "$cases/tolerances.tsv" ]; then
  rm -rf "$cases"
  "$venv/bin/python" Tests/VesselONNXTests/Conformance/generate_node_cases.py "$cases"
fi
# The model suites the wheel ships with their data (pytorch-converted, pytorch-operator, simple, light).
data=$("$venv/bin/python" -c "import onnx, os; print(os.path.join(os.path.dirname(onnx.__file__), 'backend', 'test', 'data'))")
ln -sfn "$data" .build/onnx-backend-data
