# Sourced by the benchmarks that run onnxruntime beside vessel: builds vessel (release) and makes
# the venv `.build/venv-bench` (onnx, onnxruntime, numpy) once. Sets $vessel and $venv.
swift build -c release --product vessel >/dev/null
vessel="$PWD/.build/release/vessel"
venv=".build/venv-bench"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check onnx==1.23.2 onnxruntime numpy
fi
