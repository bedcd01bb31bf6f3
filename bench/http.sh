#!/usr/bin/env bash
# HTTP throughput and latency: vigil's POST /predict (default model, one row,
# keep-alive, full telemetry, logs to /dev/null through the real writer) against a
# bare axum hello-world (bench/hello), then vigil's RSS after about a million
# requests.
#
#   bench/http.sh [duration_seconds=10] [connections=32]
#   RUNS=3 (alternating runs per server and placement), RSS_REQUESTS=1000000
#
# Two placements on this 2-core machine, since the load generator shares it:
#   shared  server and wrk free to use both cores (how wrk is usually run);
#   pinned  server on core 0, wrk on core 1 (taskset): the server gets one core.
# Needs Debian's wrk (installed here if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
duration=${1:-10}
conns=${2:-32}
runs=${RUNS:-3}
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
cargo build --release -q -p vigil -p vigil-bench-hello
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT

wait_up() { for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$1/" && return; sleep 0.1; done; }

start() { # placement name port cmd...
  local placement=$1 port=$2; shift 2
  if [ "$placement" = pinned ]; then taskset -c 0 "$@" >/dev/null 2>&1 & else "$@" >/dev/null 2>&1 & fi
  pids+=($!)
  last_pid=$!
  wait_up "$port"
}

load() { # placement url label
  local pre=()
  [ "$1" = pinned ] && pre=(taskset -c 1)
  "${pre[@]}" wrk -t1 -c"$conns" -d"${duration}s" --latency -s bench/predict.lua "$2" >"$work/$3.txt"
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/$3.txt")
  p50=$(awk '$1=="50%" {print $2}' "$work/$3.txt")
  p99=$(awk '$1=="99%" {print $2}' "$work/$3.txt")
  printf '%-26s %12s req/s   p50 %-8s p99 %-8s\n' "$3" "$rps" "$p50" "$p99"
  echo "$rps" >"$work/$3.rps"
}

echo "wrk -t1 -c$conns -d${duration}s, $runs alternating runs per server"
for placement in shared pinned; do
  start "$placement" 9411 target/release/vigil-bench-hello 127.0.0.1:9411
  hello_pid=$last_pid
  start "$placement" 9412 target/release/vigil serve --host 127.0.0.1 --port 9412 --data-dir "$work/data"
  vigil_pid=$last_pid
  curl -fsS -XPOST http://127.0.0.1:9412/predict -H 'content-type: application/json' -d '{"features": [70, 250, 2.5, 45, 1500, 12]}' >/dev/null
  for run in $(seq 1 "$runs"); do
    load "$placement" http://127.0.0.1:9411/predict "$placement-hello-$run"
    load "$placement" http://127.0.0.1:9412/predict "$placement-vigil-$run"
  done
  hello=$(cat "$work"/"$placement"-hello-*.rps | median)
  vigil=$(cat "$work"/"$placement"-vigil-*.rps | median)
  ratio=$(awk -v a="$vigil" -v b="$hello" 'BEGIN {printf "%.0f", 100*a/b}')
  echo "$placement median: hello-world $hello req/s, vigil $vigil req/s, vigil / hello-world ${ratio}%"
  kill "$hello_pid" "$vigil_pid"
  wait "$hello_pid" "$vigil_pid" 2>/dev/null || true
done

# RSS after ~1M requests in total (keep loading until the counter says so).
start shared 9412 target/release/vigil serve --host 127.0.0.1 --port 9412 --data-dir "$work/data"
vigil_pid=$last_pid
total() { curl -s http://127.0.0.1:9412/metrics | awk '/^http_requests_total\{method="POST",route="\/predict",status="200"\}/ {print $2}'; }
curl -fsS -XPOST http://127.0.0.1:9412/predict -H 'content-type: application/json' -d '{"features": [70, 250, 2.5, 45, 1500, 12]}' >/dev/null
while [ "$(total | cut -d. -f1)" -lt "${RSS_REQUESTS:-1000000}" ]; do
  wrk -t1 -c"$conns" -d10s -s bench/predict.lua http://127.0.0.1:9412/predict >/dev/null
done
rss_kb=$(awk '/VmRSS/ {print $2}' /proc/$vigil_pid/status)
echo "vigil after $(total) predictions: RSS $((rss_kb / 1024)) MiB"
