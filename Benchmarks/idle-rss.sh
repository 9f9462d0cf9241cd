#!/usr/bin/env bash
# Resident memory of `vessel serve` before, right after, and 5 s after a burst of large binary
# requests (three waves of eight concurrent requests, 512–4096 rows × 1024 floats, to a model of
# two 1024×1024 MatMuls). Shows whether memory goes back to the system once the server is idle.
# Run by hand; results go into Benchmarks/RESULTS.md.
#
#   Benchmarks/idle-rss.sh [VESSEL_BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
vessel="${1:-$PWD/.build/release/vessel}"
scripts/onnx-test-data.sh >/dev/null   # the venv with numpy and onnx
work="$PWD/Benchmarks/work/idle-rss"
mkdir -p "$work"
.build/venv/bin/python scripts/matmul_model.py "$work" slow 1024 0.001 Sin '{max_concurrency: 2, max_queue: 64, max_body_bytes: 268435456}'
"$vessel" serve "$work" --port 18097 --no-log > "$work/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 200); do curl -sf http://127.0.0.1:18097/v2/health/ready >/dev/null && break; sleep 0.1; done
python3 - "$pid" <<'PY'
import http.client, json, sys, threading, time
pid = int(sys.argv[1])
def rss(): return int(open(f"/proc/{pid}/status").read().split("VmRSS:")[1].split()[0]) // 1024
def one(rows):
    header = json.dumps({"inputs": [{"name": "X", "shape": [rows, 1024], "datatype": "FP32", "parameters": {"binary_data_size": rows * 4096}}],
                         "outputs": [{"name": "Y", "parameters": {"binary_data": True}}]}).encode()
    c = http.client.HTTPConnection("127.0.0.1", 18097, timeout=300)
    c.request("POST", "/v2/models/slow/infer", header + bytes(rows * 4096),
              {"Inference-Header-Content-Length": str(len(header)), "Content-Type": "application/octet-stream"})
    r = c.getresponse(); r.read(); assert r.status == 200, r.status
print(f"ready: {rss()} MiB")
for _ in range(3):
    threads = [threading.Thread(target=one, args=(rows,)) for rows in [512, 1024, 2048, 3000, 4096, 1500, 2500, 3500]]
    [t.start() for t in threads]; [t.join() for t in threads]
print(f"right after the burst: {rss()} MiB")
time.sleep(5)
print(f"after 5 s idle: {rss()} MiB")
PY
