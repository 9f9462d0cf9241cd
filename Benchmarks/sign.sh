#!/usr/bin/env bash
# Signing and verifying a large artifact beside re-hashing it, same run: `vessel verify` (every
# blob re-hashed), `vessel sign` (every file hashed from its layer, each layer checked on the
# way) and `vessel verify --key` (signature, files, then the remaining blobs), and `sha256sum`
# of the weights file for scale. Rounds alternate; the best of each is kept.
#   Benchmarks/sign.sh [MEBIBYTES] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
size="${1:-4096}"
rounds="${2:-3}"
swift build -c release --product vessel >/dev/null
vessel="$PWD/.build/release/vessel"
work="$PWD/Benchmarks/work/sign"
rm -rf "$work" && mkdir -p "$work/model"
cp Examples/iris/vessel.yaml Examples/iris/model.onnx Examples/iris/labels.txt Examples/iris/README.md "$work/model/"
head -c $((size << 20)) /dev/urandom > "$work/model/weights.bin"
sed -i 's/^  - path: README.md$/  - path: weights.bin\n    role: weights\n  - path: README.md/' "$work/model/vessel.yaml"
export VESSEL_HOME="$work/home"
"$vessel" pack "$work/model" --no-test >/dev/null 2>&1
"$vessel" keygen "$work/key.pem" >/dev/null
seconds() { local start end; start=$(date +%s.%N); "$@" >/dev/null; end=$(date +%s.%N); python3 -c "print(f'{$end - $start:.2f}')"; }
echo "| round | vessel verify s | vessel sign s | vessel verify --key s | sha256sum s |"
echo "|---|---|---|---|---|"
for round in $(seq 1 "$rounds"); do
  v=$(seconds "$vessel" verify iris:1.0.0)
  s=$(seconds "$vessel" sign iris:1.0.0 --key "$work/key.pem")
  k=$(seconds "$vessel" verify iris:1.0.0 --key "$work/key.pem.pub")
  h=$(seconds sha256sum "$work/model/weights.bin")
  echo "| $round | $v | $s | $k | $h |"
done
echo "($size MiB of weights; $(nproc) cores)"
