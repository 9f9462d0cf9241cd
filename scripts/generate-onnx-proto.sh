#!/usr/bin/env bash
# Regenerates Sources/VesselONNX/Generated/onnx-ml.pb.swift from the committed onnx-ml.proto.
# Needs protoc (Debian: protobuf-compiler) and protoc-gen-swift built from the same
# swift-protobuf version as Package.swift names (1.39.0):
#   git clone --branch 1.39.0 https://github.com/apple/swift-protobuf /tmp/swift-protobuf
#   (cd /tmp/swift-protobuf && swift build -c release --product protoc-gen-swift)
#   PROTOC_GEN_SWIFT=/tmp/swift-protobuf/.build/release/protoc-gen-swift scripts/generate-onnx-proto.sh
# The proto itself is onnx/onnx-ml.proto from the `onnx` wheel (1.23.2 here).
set -euo pipefail
cd "$(dirname "$0")/.."
plugin="${PROTOC_GEN_SWIFT:-$(command -v protoc-gen-swift)}"
protoc --plugin=protoc-gen-swift="$plugin" \
  --swift_out=Sources/VesselONNX/Generated \
  --swift_opt=Visibility=Internal \
  -I Sources/VesselONNX/Proto Sources/VesselONNX/Proto/onnx-ml.proto
echo "wrote Sources/VesselONNX/Generated/onnx-ml.pb.swift"
