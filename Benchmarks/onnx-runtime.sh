#!/usr/bin/env bash
# Vessel's native runtime beside onnxruntime (PyPI), same models, same input files, same run,
# 1 and 2 threads: p50/p90/p99 latency (the better of two interleaved rounds per tool) and the
# ratio. Then peak RSS while running ResNet-50.
# Run by hand; results go into Benchmarks/RESULTS.md.
#
#   Benchmarks/onnx-runtime.sh [ITERATIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
iterations="${1:-30}"
scripts/onnx-test-data.sh >/dev/null        # the light models come with the onnx wheel
source Benchmarks/ort-venv.sh                # sets $vessel and $venv
work="$PWD/Benchmarks/work/ort"
mkdir -p "$work"
python="$venv/bin/python"
light=.build/onnx-backend-data/light

# The MLP 784-512-256-10 (random weights, dynamic batch) and input files for every model.
"$python" Benchmarks/ort_bench.py prepare "$work" "$light"

printf "| model | threads | vessel p50 ms | vessel p90 | vessel p99 | onnxruntime p50 ms | ort p90 | ort p99 | p50 ratio (vessel ÷ ort) |\n|---|---|---|---|---|---|---|---|---|\n"
for entry in "resnet50:$light/light_resnet50.onnx" "squeezenet:$light/light_squeezenet.onnx" "vgg19:$light/light_vgg19.onnx" \
             "densenet121:$light/light_densenet121.onnx" "inception_v1:$light/light_inception_v1.onnx" \
             "mlp_b1:$work/mlp.onnx" "mlp_b64:$work/mlp.onnx"; do
  name="${entry%%:*}"; model="${entry#*:}"
  n=$iterations
  case "$name" in mlp*) n=$((iterations * 50));; vgg19) n=$(( (iterations + 2) / 3 ));; esac
  input_args=$(cat "$work/$name.args")
  for threads in 1 2; do
    # Two rounds, the tools alternating (vessel, onnxruntime, vessel, onnxruntime); each tool's
    # row is its round with the lower p50. This VM loses its second vCPU for seconds at a time,
    # which lands on whichever tool is running then; the better of two interleaved rounds
    # measures both undisturbed, the same way for both.
    # shellcheck disable=SC2086
    v1=$("$vessel" bench "$model" --threads "$threads" --iterations "$n" --warmup 3 $input_args --json)
    o1=$("$python" Benchmarks/ort_bench.py run "$model" "$threads" "$n" "$work/$name.inputs")
    # shellcheck disable=SC2086
    v2=$("$vessel" bench "$model" --threads "$threads" --iterations "$n" --warmup 3 $input_args --json)
    o2=$("$python" Benchmarks/ort_bench.py run "$model" "$threads" "$n" "$work/$name.inputs")
    "$python" - "$name" "$threads" "$v1" "$v2" "$o1" "$o2" <<'PY'
import json, sys
name, threads = sys.argv[1], sys.argv[2]
v = min((json.loads(a) for a in sys.argv[3:5]), key=lambda r: r["p50_ms"])
o = min((json.loads(a) for a in sys.argv[5:7]), key=lambda r: r["p50_ms"])
print(f"| {name} | {threads} | {v['p50_ms']:.3f} | {v['p90_ms']:.3f} | {v['p99_ms']:.3f} | {o['p50_ms']:.3f} | {o['p90_ms']:.3f} | {o['p99_ms']:.3f} | {v['p50_ms'] / o['p50_ms']:.2f} |")
PY
  done
done

echo
echo "Peak RSS while running ResNet-50 (20 runs, 1 thread), GNU time:"
input_args=$(cat "$work/resnet50.args")
# shellcheck disable=SC2086
/usr/bin/time -f "vessel bench: %M KiB" "$vessel" bench "$light/light_resnet50.onnx" --threads 1 --iterations 20 --warmup 1 $input_args --json >/dev/null
/usr/bin/time -f "onnxruntime (python process): %M KiB" "$python" Benchmarks/ort_bench.py run "$light/light_resnet50.onnx" 1 20 "$work/resnet50.inputs" >/dev/null
"$python" -c "import onnxruntime, numpy; print('onnxruntime', onnxruntime.__version__, 'numpy', numpy.__version__)"
echo "vessel BLAS: $("$vessel" bench "$work/mlp.onnx" --iterations 1 --warmup 0 --json $(cat "$work/mlp_b1.args") | "$python" -c 'import json,sys; print(json.load(sys.stdin)["blas"])')"
