#!/usr/bin/env bash
# Ground-truth ingest: POST /feedback with batches of 1000 labels (bench/feedback_batch.lua)
# against `vigil collector` on SQLite, every label for a stored prediction (so each one
# is graded: looked up, joined, inserted, counted into the quality window). The
# predictions (PRELOAD of them, default 1,000,000, ids b-1 …) are stored first through
# POST /log. Prints labels/s, and checks afterwards that the collector graded exactly
# what wrk sent.
#
#   bench/feedback.sh [duration_seconds=10] [connections=4]
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
conns=${2:-4}
preload=${PRELOAD:-1000000}
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
cargo build --release -q -p vigil
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT

target/release/vigil collector --host 127.0.0.1 --port 9521 --data-dir "$work/sqlite" >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -s -o /dev/null http://127.0.0.1:9521/health && break; sleep 0.1; done
curl -sf -X PUT http://127.0.0.1:9521/models/defect-detector -H 'content-type: application/json' \
  -d '{"model":"defect-detector","version":"1.0.0","task":"classification","labels":["ok","defect"]}' >/dev/null

python3 - "$preload" <<'PY'
import json, sys, time, urllib.request
n = int(sys.argv[1])
now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
started = time.monotonic()
for start in range(1, n + 1, 1000):
    records = [{"prediction_id": f"b-{i}", "model": "defect-detector", "model_version": "1.0.0",
                "timestamp": now, "label": "ok", "confidence": 0.9, "is_defect": False,
                "latency_ms": 1.0, "request_id": f"r-{i}", "status": "success"}
               for i in range(start, min(start + 1000, n + 1))]
    req = urllib.request.Request("http://127.0.0.1:9521/log", json.dumps({"records": records}).encode(),
                                 {"content-type": "application/json"})
    urllib.request.urlopen(req).read()
print(f"stored {n} predictions in {time.monotonic() - started:.1f} s")
PY

wrk -t1 -c"$conns" -d"${duration}s" --latency -s bench/feedback_batch.lua http://127.0.0.1:9521/feedback >"$work/wrk.txt"
rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")
p50=$(awk '$1=="50%" {print $2}' "$work/wrk.txt")
p99=$(awk '$1=="99%" {print $2}' "$work/wrk.txt")
sent=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
non2xx=$(awk '/Non-2xx/ {print $NF}' "$work/wrk.txt")
graded=$(curl -s http://127.0.0.1:9521/metrics | awk '/^model_feedback_total/ {s += $2} END {print s}')
printf 'sqlite %10.0f labels/s  (%s batches/s, p50 %s, p99 %s)\n' "$(awk -v r="$rps" 'BEGIN {print r*1000}')" "$rps" "$p50" "$p99"
echo "wrk sent $sent batches (${non2xx:-0} not 2xx); the collector graded $graded labels"
if [ -n "${non2xx:-}" ] || [ "$graded" != "$((sent * 1000))" ]; then
  echo "FAIL: not every label was graded once" >&2
  exit 1
fi
if [ "$((sent * 1000))" -gt "$preload" ]; then
  echo "FAIL: more labels than stored predictions; raise PRELOAD" >&2
  exit 1
fi
