# Sourced by the benchmarks: `weights_model DIR NAME SIZE_MIB` writes DIR/weights.bin (incompressible,
# from a fixed AES-CTR stream, so every run has the same bytes), a vessel.yaml naming it and the
# predictor that would load it (the benchmarks pack with --no-test and never run it).
weights_model() {
  local dir="$1" name="$2" size_mib="$3"
  mkdir -p "$dir"
  echo "generating ${size_mib} MiB of incompressible weights…" >&2
  openssl enc -aes-128-ctr -pass pass:vessel -nosalt -pbkdf2 -in /dev/zero 2>/dev/null | head -c "$((size_mib << 20))" > "$dir/weights.bin" || true  # openssl ends on SIGPIPE
  cat > "$dir/vessel.yaml" <<YAML
name: $name
version: "1"
model: {format: safetensors, file: weights.bin}
runtime: {backend: python, predictor: "predict.py:Predictor"}
signature:
  inputs: [{name: x, dtype: float32, shape: [-1]}]
  outputs: [{name: y, dtype: float32, shape: [-1]}]
YAML
  printf 'class Predictor:\n    def setup(self):\n        pass\n\n    def predict(self, x):\n        return x\n' > "$dir/predict.py"
}
