# Helpers the serving benchmarks share; `source` it.

now() { date +%s.%N; }

# wait_ready START URL: seconds from START (a `now`) until URL answers 200; fails after a minute.
wait_ready() {
  local start=$1 url=$2
  for _ in $(seq 1 2400); do
    if curl -sf "$url" >/dev/null 2>&1; then python3 -c "print(f'{$(now) - $start:.2f}')"; return 0; fi
    sleep 0.05
  done
  echo "never ready: $url" >&2; return 1
}

# wrk_best URL LUA_SCRIPT CONNECTIONS SECONDS: wrk_measure twice, the run with more requests/s.
wrk_best() {
  local a b; a=$(wrk_measure "$@"); b=$(wrk_measure "$@")
  if [ "${a%% *}" -ge "${b%% *}" ]; then echo "$a"; else echo "$b"; fi
}

# wrk_measure URL LUA_SCRIPT CONNECTIONS SECONDS: "req/s p50_ms p99_ms non_2xx" for one wrk run.
wrk_measure() {
  local url=$1 script=$2 connections=$3 seconds=$4 threads=2
  [ "$connections" -lt 2 ] && threads=1
  wrk -t"$threads" -c"$connections" -d"${seconds}s" --latency -s "$script" "$url" | python3 -c '
import re, sys
text = sys.stdin.read()
def ms(v, unit): return float(v) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
p = {k: ms(v, u) for k, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)}
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
print("%.0f %.3f %.3f %s" % (rps, p["50"], p["99"], errors.group(1) if errors else 0))'
}
