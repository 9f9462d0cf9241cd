#!/usr/bin/env bash
# The main job on the bundled example: build vessel, pack Examples/iris into a store, inspect it,
# verify every blob, export it as an OCI archive and read that back with skopeo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release --product vessel
vessel=".build/release/vessel"
export VESSEL_HOME="${VESSEL_HOME:-$PWD/.build/demo-store}"
echo "== store: $VESSEL_HOME"
"$vessel" validate Examples/iris
"$vessel" pack Examples/iris -t iris:1.0.0
"$vessel" list
"$vessel" inspect iris:1.0.0
"$vessel" verify iris:1.0.0
"$vessel" export iris:1.0.0 -o .build/iris.tar
echo "== skopeo reads the store and the archive:"
skopeo inspect --raw "oci:$VESSEL_HOME:iris:1.0.0" | head -c 300; echo " …"
skopeo inspect --raw oci-archive:.build/iris.tar >/dev/null && echo "oci-archive:.build/iris.tar ok"
