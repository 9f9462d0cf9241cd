#!/usr/bin/env bash
# Each distinct convolution of a light model-zoo model alone, vessel beside onnxruntime, same
# run, and the totals weighted by how often each appears: whether a whole-model gap is in the
# convolution kernels or around them. Run by hand; results go into Benchmarks/RESULTS.md.
#
#   Benchmarks/conv-shapes.sh [MODEL] [THREADS] [ITERATIONS]     (MODEL: resnet50, squeezenet, …)
set -euo pipefail
cd "$(dirname "$0")/.."
model="${1:-resnet50}"; threads="${2:-1}"; iterations="${3:-100}"
scripts/onnx-test-data.sh >/dev/null
source Benchmarks/ort-venv.sh                # sets $vessel and $venv
work="$PWD/Benchmarks/work/conv-shapes/$model"
mkdir -p "$work"
"$venv/bin/python" Benchmarks/conv_shapes.py extract ".build/onnx-backend-data/light/light_$model.onnx" "$work"
"$venv/bin/python" Benchmarks/conv_shapes.py run "$work" "$vessel" "$threads" "$iterations"
