#!/usr/bin/env bash
# Image size for the bundled example, and push/pull of a large weights layer to a registry on
# loopback beside `skopeo copy` of the same OCI layout, in the same run. Each tool gets its own
# fresh registry (so neither finds the other's blobs), and peak RSS comes from GNU time.
# Run by hand; results go into Benchmarks/RESULTS.md.
#
#   Benchmarks/image-registry.sh [SIZE_MIB] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib="${1:-2048}"
runs="${2:-3}"
# The binary an image ships: release, static Swift runtime, stripped.
swift build -c release --static-swift-stdlib -Xlinker -s --product vessel --scratch-path .build-static >/dev/null
swift build -c release --static-swift-stdlib -Xlinker -s --product vessel-runtime --scratch-path .build-static >/dev/null
vessel="$PWD/.build-static/release/vessel"
work="$PWD/Benchmarks/work"
rm -rf "$work"
mkdir -p "$work/model"
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
export VESSEL_HOME="$work/home"

echo "== image of the bundled example (vessel-runtime $(du -m "$vessel-runtime" | cut -f1) MiB; the full vessel $(du -m "$vessel" | cut -f1) MiB)"
"$vessel" pack Examples/iris --no-test >/dev/null
"$vessel" image iris:1.0.0 -t iris-image:1.0.0 -o "$work/iris-image.tar" | sed 's/^/  /'
echo "  archive: $(du -m "$work/iris-image.tar" | cut -f1) MiB"

source Benchmarks/weights-model.sh
weights_model "$work/model" big "$size_mib"
"$vessel" pack "$work/model" --no-test >/dev/null
bytes=$(( size_mib << 20 ))

start_registry() {  # $1 = name; sets $port (not a subshell, so the pid stays in $pids to be killed)
  local dir="$work/registry-$1"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "$dir"
  printf 'version: 0.1\nlog: {level: error, accesslog: {disabled: true}}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: "127.0.0.1:%s"}\n' "$dir/data" "$port" > "$dir/config.yml"
  docker-registry serve "$dir/config.yml" >/dev/null 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.05; done
}
measure() { /usr/bin/time -f "%e %M" -o "$work/time" "$@" >/dev/null 2>&1; cat "$work/time"; }
rate() { awk -v b="$bytes" -v s="$1" 'BEGIN { printf "%.2f", b / s / 1e9 }'; }

echo "== push and pull of ${size_mib} MiB (GB/s, peak RSS MiB), $runs runs"
printf '%-6s %-22s %-22s %-22s %-22s\n' run "vessel push" "skopeo copy (push)" "vessel pull" "skopeo copy (pull)"
for run in $(seq "$runs"); do
  start_registry "vessel-$run"; a=$port
  start_registry "skopeo-$run"; b=$port
  sync; sleep 2
  read -r vp_s vp_k < <(measure "$vessel" push big:1 "127.0.0.1:$a/bench/big" --insecure)
  sync; sleep 2
  read -r sp_s sp_k < <(measure skopeo copy --dest-tls-verify=false "oci:$VESSEL_HOME:big:1" "docker://127.0.0.1:$b/bench/big:1")
  rm -rf "$work/pull-vessel" "$work/pull-skopeo"; sync; sleep 2
  read -r vl_s vl_k < <(env VESSEL_HOME="$work/pull-vessel" /usr/bin/time -f "%e %M" -o "$work/time" "$vessel" pull "127.0.0.1:$a/bench/big:1" --insecure >/dev/null 2>&1; cat "$work/time")
  sync; sleep 2
  read -r sl_s sl_k < <(measure skopeo copy --src-tls-verify=false "docker://127.0.0.1:$b/bench/big:1" "oci:$work/pull-skopeo:big")
  printf '%-6s %-22s %-22s %-22s %-22s\n' "$run" "$(rate "$vp_s") GB/s $((vp_k / 1024)) MiB" "$(rate "$sp_s") GB/s $((sp_k / 1024)) MiB" \
    "$(rate "$vl_s") GB/s $((vl_k / 1024)) MiB" "$(rate "$sl_s") GB/s $((sl_k / 1024)) MiB"
  kill "${pids[@]}" 2>/dev/null || true; pids=()
  rm -rf "$work/registry-vessel-$run" "$work/registry-skopeo-$run"
done
