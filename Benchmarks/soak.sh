#!/usr/bin/env bash
# Overload soak: `vessel serve` under 256 closed-loop clients against max_concurrency 2 and
# max_queue 64, while 1,000 slowloris-style connections trickle header bytes, for SECONDS
# (default 600). Every 30 s: requests answered, by status, p50/p99 of the 200s, the server's RSS
# and open descriptors, slow connections open and closed by the server, and the time an
# ordinary client's /v2/health/live takes. The load comes from one Python process (asyncio),
# so every status and latency is counted exactly. Run by hand; results go into
# Benchmarks/RESULTS.md.
#
#   Benchmarks/soak.sh [SECONDS] [VESSEL_BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-600}"
vessel="${2:-$PWD/.build/release/vessel}"
[ -n "${2:-}" ] || swift build -c release --product vessel >/dev/null
scripts/onnx-test-data.sh >/dev/null   # the venv with numpy and onnx
work="$PWD/Benchmarks/work/soak"
rm -rf "$work" && mkdir -p "$work/model"
.build/venv/bin/python scripts/matmul_model.py "$work/model" soak 256 0.01 Tanh '{max_concurrency: 2, max_queue: 64, timeout_ms: 5000}'
ulimit -n 8192
"$vessel" serve "$work/model" --port 18099 --no-log > "$work/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 200); do curl -sf http://127.0.0.1:18099/v2/health/ready >/dev/null && break; sleep 0.1; done
echo "vessel $("$vessel" --version 2>/dev/null || true), max descriptors $(ulimit -n); $seconds s"
python3 - "$pid" "$seconds" <<'PY'
import asyncio, json, os, sys, time
pid, seconds = int(sys.argv[1]), float(sys.argv[2])
rows = 64
body = json.dumps({"inputs": [{"name": "X", "shape": [rows, 256], "datatype": "FP32", "data": [0.5] * (rows * 256)}]}).encode()
request = (b"POST /v2/models/soak/infer HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
           b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
stats = {"status": {}, "lat200": [], "errors": 0, "slow_open": 0, "slow_closed": 0}
deadline = time.monotonic() + seconds

async def read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    await reader.readexactly(length)
    return status, b"connection: close" in head.lower()

async def client():
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", 18099)
            while time.monotonic() < deadline:
                start = time.monotonic()
                writer.write(request)
                status, close = await read_response(reader)
                stats["status"][status] = stats["status"].get(status, 0) + 1
                if status == 200:
                    stats["lat200"].append(time.monotonic() - start)
                if close:
                    break
            writer.close()
        except Exception:
            stats["errors"] += 1
            await asyncio.sleep(0.05)

async def slowloris():
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", 18099)
        except Exception:
            await asyncio.sleep(1)
            continue
        stats["slow_open"] += 1
        try:
            writer.write(b"POST /v2/models/soak/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            while time.monotonic() < deadline:
                await asyncio.sleep(5)
                writer.write(b"X")
                await writer.drain()
                if reader.at_eof():
                    raise ConnectionError
        except Exception:
            stats["slow_closed"] += 1
        finally:
            stats["slow_open"] -= 1
            writer.close()

def rss_mib():
    return int(open(f"/proc/{pid}/status").read().split("VmRSS:")[1].split()[0]) // 1024

async def probe():
    start = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", 18099)
    writer.write(b"GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    status, _ = await read_response(reader)
    writer.close()
    return status, (time.monotonic() - start) * 1000

async def report():
    print("| minute | answered | 200 | 503 | other | errors | 200 p50 ms | 200 p99 ms | RSS MiB | fds | slow open | slow closed | live probe |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    started = time.monotonic()
    last = {}
    while time.monotonic() < deadline:
        await asyncio.sleep(min(30, max(0.1, deadline - time.monotonic())))
        counts = dict(stats["status"])
        window = {k: v - last.get(k, 0) for k, v in counts.items()}
        last = counts
        lat = sorted(stats["lat200"]); stats["lat200"] = []
        pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")
        try:
            status, ms = await asyncio.wait_for(probe(), 10)
            live = f"{status} in {ms:.1f} ms"
        except Exception as error:
            live = f"failed ({type(error).__name__})"
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        other = sum(v for k, v in window.items() if k not in (200, 503))
        print(f"| {(time.monotonic() - started) / 60:.1f} | {sum(window.values())} | {window.get(200, 0)} | {window.get(503, 0)} | {other} | "
              f"{stats['errors']} | {pct(0.5):.1f} | {pct(0.99):.1f} | {rss_mib()} | {fds} | {stats['slow_open']} | {stats['slow_closed']} | {live} |",
              flush=True)
    print(f"statuses over the run: {dict(sorted(stats['status'].items()))}")

async def main():
    print(f"RSS at start: {rss_mib()} MiB")
    tasks = [asyncio.create_task(client()) for _ in range(256)] + [asyncio.create_task(slowloris()) for _ in range(1000)]
    await report()
    await asyncio.gather(*tasks, return_exceptions=True)
asyncio.run(main())
PY
kill -0 $pid && echo "the server is still up"
