#!/usr/bin/env bash
# What a hot model swap costs requests in flight: `vigil up` under wrk, one round
# steady and one round with a new model version uploaded in the middle, alternating.
# Reports each round's p99, p99.9, p99.99 and max latency (bench/predict-tail.lua); the
# swap rounds' tail against the steady rounds' is what issue 11 bounds (no request more
# than 10 ms above the steady p99). Every request must answer 200.
#
#   bench/swap.sh [duration_seconds=10] [connections=32]
#   RUNS=3 (pairs of rounds)
# Needs Debian's wrk (installed here if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
duration=${1:-10}
conns=${2:-32}
runs=${RUNS:-3}
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
cargo build --release -q -p vigil
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT

target/release/vigil up --host 127.0.0.1 --port 9415 --collector-port 9416 --data-dir "$work/data" \
  >/dev/null 2>"$work/stderr" & pids+=($!)
up 9415
key=$(awk '/^admin key/ {getline; print $1; exit}' "$work/stderr")
boundary=vigil-bench-boundary
# upload VERSION: a multipart body with the bundled defect-detector at VERSION.
upload() {
  local body="$work/upload-$1"
  {
    printf -- '--%s\r\nContent-Disposition: form-data; name="onnx"; filename="model.onnx"\r\n\r\n' "$boundary"
    cat models/defect-detector/model.onnx
    printf -- '\r\n--%s\r\nContent-Disposition: form-data; name="card"; filename="model.toml"\r\n\r\n' "$boundary"
    sed "s/^version = \"1.0.0\"/version = \"$1\"/" models/defect-detector/model.toml
    printf -- '\r\n--%s--\r\n' "$boundary"
  } >"$body"
  curl -fsS -o /dev/null -XPOST "http://127.0.0.1:9415/admin/models/defect-detector" \
    -H "Authorization: Bearer $key" -H "content-type: multipart/form-data; boundary=$boundary" \
    --data-binary @"$body"
}

load() { # label
  wrk -t1 -c"$conns" -d"${duration}s" --latency -s bench/predict-tail.lua http://127.0.0.1:9415/predict >"$work/$1.txt"
  grep -q "Non-2xx" "$work/$1.txt" && { echo "$1: non-2xx answers" >&2; exit 1; }
  printf '%-10s %10s req/s  p99 %-8s %s\n' "$1" "$(awk '/Requests\/sec/ {print $2}' "$work/$1.txt")" \
    "$(awk '$1=="99%" {print $2}' "$work/$1.txt")" "$(sed -n 's/^tail: //p' "$work/$1.txt")"
}

echo "wrk -t1 -c$conns -d${duration}s --latency, $runs pairs of rounds; $(nproc) cores; $(date -u +%FT%TZ)"
for run in $(seq 1 "$runs"); do
  load "steady-$run"
  # The upload lands a third of the way into the round.
  (sleep "$(awk -v d="$duration" 'BEGIN {print d / 3}')"; upload "2.0.$run") &
  uploader=$!
  load "swap-$run"
  wait "$uploader"
  served=$(curl -s -XPOST http://127.0.0.1:9415/predict -H 'content-type: application/json' \
    -d '{"features": [70, 250, 2.5, 45, 1500, 12]}' | sed 's/.*"model_version":"\([^"]*\)".*/\1/')
  [ "$served" = "2.0.$run" ] || { echo "swap $run did not take: serving $served" >&2; exit 1; }
done
