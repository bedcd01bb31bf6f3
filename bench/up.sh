#!/usr/bin/env bash
# What storing every prediction costs: a bare axum hello-world (bench/hello), `vigil
# serve` (no forwarding) and `vigil up` (every prediction stored in SQLite, in process)
# side by side, in alternating rounds, one-row POST /predict, keep-alive. After each
# `up` round the script waits until every prediction the model made is stored and
# checks that the counts agree (stored = predicted >= answered 200: a request in flight
# when wrk closes its connection at the end of a round was predicted and stored, but
# never answered). Per round it also prints each vigil's CPU per answered request
# (utime + stime from /proc, the storing included: `up` is charged for the records it
# stores after the round too), which resolves what req/s on this VM, drifting by tens
# of percent within minutes, cannot; then the medians and the paired up/serve ratios,
# each with the interval that holds the true median (see `interval` in bench/lib.sh).
#
#   bench/up.sh [duration_seconds=6] [connections=32]
#   RUNS=3 (rounds), THREADS=1 (wrk threads); BIN: a vigil binary already built (both
#   vigil sides run it; default target/release/vigil, built here)
# Needs Debian's wrk (installed here if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
duration=${1:-6}
conns=${2:-32}
runs=${RUNS:-3}
threads=${THREADS:-1}
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
bin=${BIN:-target/release/vigil}
if [ -n "${BIN:-}" ]; then
  cargo build --release -q -p vigil-bench-hello
else
  cargo build --release -q -p vigil -p vigil-bench-hello
fi
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT

target/release/vigil-bench-hello 127.0.0.1:9411 >/dev/null 2>&1 & pids+=($!)
"$bin" serve --host 127.0.0.1 --port 9412 --data-dir "$work/serve" >/dev/null 2>&1 & pids+=($!)
serve_pid=$!
"$bin" up --host 127.0.0.1 --port 9413 --collector-port 9414 --data-dir "$work/up" >/dev/null 2>&1 & pids+=($!)
up_pid=$!
for _ in $(seq 1 100); do curl -s -o /dev/null http://127.0.0.1:9411/ && break; sleep 0.1; done
up 9412
up 9413
for port in 9412 9413; do
  curl -fsS -XPOST "http://127.0.0.1:$port/predict" -H 'content-type: application/json' \
    -d '{"features": [70, 250, 2.5, 45, 1500, 12]}' >/dev/null
done

# per_request TICKS LABEL: CPU microseconds per request of the round LABEL.
per_request() { us_per_request "$1" "$work/$2.txt" >"$work/$2.us"; }

load() { # url label
  wrk -t"$threads" -c"$conns" -d"${duration}s" -s bench/predict.lua "$1" >"$work/$2.txt"
  awk '/Requests\/sec/ {print $2}' "$work/$2.txt" >"$work/$2.rps"
  printf '%-10s %12s req/s\n' "$2" "$(cat "$work/$2.rps")"
}

echo "wrk -t$threads -c$conns -d${duration}s, $runs alternating rounds; $(nproc) cores; $(date -u +%FT%TZ)"
for run in $(seq 1 "$runs"); do
  load http://127.0.0.1:9411/predict "hello-$run"
  before=$(cpu "$serve_pid")
  load http://127.0.0.1:9412/predict "serve-$run"
  per_request $(($(cpu "$serve_pid") - before)) "serve-$run"
  before=$(cpu "$up_pid")
  load http://127.0.0.1:9413/predict "up-$run"
  # Every answered prediction is stored before the next round starts. The time that
  # takes counts against `up`: its req/s below are answered requests over the round
  # plus the drain, so storing that lags behind the load is not free.
  drained=$(drain 9413 9414)
  per_second "$work/up-$run.txt" "$drained" >"$work/up-$run.rps"
  per_request $(($(cpu "$up_pid") - before)) "up-$run"
  echo "  up: answered $(answered 9413), predicted $(predicted 9413), stored $(stored 9414) ${drained}s after the load; req/s with the drain $(cat "$work/up-$run.rps"); CPU us/request serve $(cat "$work/serve-$run.us"), up $(cat "$work/up-$run.us")"
  [ "$(stored 9414)" = "$(predicted 9413)" ] && [ "$(stored 9414)" -ge "$(answered 9413)" ] || { echo "up lost records" >&2; exit 1; }
  paste "$work/serve-$run.rps" "$work/up-$run.rps" "$work/serve-$run.us" "$work/up-$run.us" |
    awk '{print $2 / $1, $3 / $4}' >>"$work/paired"
done
hello=$(cat "$work"/hello-*.rps | median)
serve=$(cat "$work"/serve-*.rps | median)
up=$(cat "$work"/up-*.rps | median)
pct() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.0f%%", 100*a/b}'; }
echo "median req/s: hello-world $hello, serve $serve, up $up"
echo "serve / hello-world $(pct "$serve" "$hello"); up / hello-world $(pct "$up" "$hello"); up / serve $(pct "$up" "$serve")"
echo "median CPU us/request: serve $(cat "$work"/serve-*.us | median), up $(cat "$work"/up-*.us | median)"
# pct_of COLUMN: the paired ratios of that column in percent, one a line.
pct_of() { awk -v c="$1" '{printf "%.0f\n", 100 * $c}' "$work/paired"; }
echo "paired up / serve (medians of the rounds' ratios, then the interval of that median): req/s $(pct_of 1 | median)% ($(pct_of 1 | interval)), serve's CPU per request / up's $(pct_of 2 | median)% ($(pct_of 2 | interval))"
