#!/usr/bin/env bash
# HTTP throughput and latency: vigil's POST /predict (default model, one row,
# keep-alive, full telemetry, logs to /dev/null through the real writer) against a
# bare axum hello-world, then vigil's RSS after about a million requests.
#
#   bench/http.sh [duration_seconds=10] [connections=32]    (RUNS=3 alternating runs)
#
# Server and load generator are pinned to different cores (taskset), so they do not
# steal each other's CPU on this 2-core machine. Needs Debian's wrk (installed here).
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
conns=${2:-32}
runs=${RUNS:-3}
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
cargo build --release -q -p vigil -p vigil-bench-hello
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT

run_wrk() { # url label
  taskset -c 1 wrk -t1 -c"$conns" -d"${duration}s" --latency -s bench/predict.lua "$1" >"$work/$2.txt"
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/$2.txt")
  p50=$(awk '$1=="50%" {print $2}' "$work/$2.txt")
  p99=$(awk '$1=="99%" {print $2}' "$work/$2.txt")
  printf '%-28s %12s req/s   p50 %-8s p99 %-8s\n' "$2" "$rps" "$p50" "$p99"
  echo "$rps" >"$work/$2.rps"
}

taskset -c 0 target/release/vigil-bench-hello 127.0.0.1:9411 >/dev/null &
pids+=($!)
taskset -c 0 target/release/vigil serve --host 127.0.0.1 --port 9412 --data-dir "$work/data" >/dev/null 2>&1 &
vigil_pid=$!
pids+=($vigil_pid)
for port in 9411 9412; do
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
done
curl -fsS -XPOST http://127.0.0.1:9412/predict -H 'content-type: application/json' -d '{"features": [70, 250, 2.5, 45, 1500, 12]}' >/dev/null

echo "wrk -t1 -c$conns -d${duration}s, server on core 0, wrk on core 1, $runs alternating runs each"
for run in $(seq 1 "$runs"); do
  run_wrk http://127.0.0.1:9411/predict "hello-world-$run"
  run_wrk http://127.0.0.1:9412/predict "vigil-predict-$run"
done
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
hello=$(cat "$work"/hello-world-*.rps | median)
vigil=$(cat "$work"/vigil-predict-*.rps | median)
ratio=$(awk -v a="$vigil" -v b="$hello" 'BEGIN {printf "%.0f", 100*a/b}')
echo "median: hello-world $hello req/s, vigil $vigil req/s, vigil / hello-world: ${ratio}%"

# RSS after ~1M requests in total (keep going until the counter says so).
total() { curl -s http://127.0.0.1:9412/metrics | awk '/^http_requests_total\{method="POST",route="\/predict",status="200"\}/ {print $2}'; }
while [ "$(total | cut -d. -f1)" -lt "${RSS_REQUESTS:-1000000}" ]; do
  taskset -c 1 wrk -t1 -c"$conns" -d10s -s bench/predict.lua http://127.0.0.1:9412/predict >/dev/null
done
rss_kb=$(awk '/VmRSS/ {print $2}' /proc/$vigil_pid/status)
echo "vigil after $(total) predictions: RSS $((rss_kb / 1024)) MiB"
