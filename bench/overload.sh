#!/usr/bin/env bash
# Overload: `vigil up` under wrk as fast as it goes, then SIGTERM and a restart on the
# same data dir. Every prediction the model made must be a stored row, and so every
# prediction answered 200 (a request in flight when wrk closes its connections was
# predicted and stored but never answered): the script prints the numbers and fails
# if they disagree.
#
#   bench/overload.sh [duration_seconds=60] [connections=64] [threads=2]
# Needs Debian's wrk (installed here if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
duration=${1:-60}
conns=${2:-64}
threads=${3:-2}
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
cargo build --release -q -p vigil
work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT

start() {
  target/release/vigil up --host 127.0.0.1 --port 9415 --collector-port 9416 --data-dir "$work/data" >"$work/log.$1" 2>/dev/null &
  pid=$!
  up 9415
}
predicted() { curl -s http://127.0.0.1:9415/metrics | awk '/^predictions_total\{model="defect-detector",.*status="(success|error)"\}/ {n += $2} END {printf "%d", n}'; }
spool() { curl -s http://127.0.0.1:9415/metrics | awk '/^prediction_log_spool_records / {printf "%d", $2}'; }
stored() { curl -s 'http://127.0.0.1:9416/stats?window=1d' | python3 -c 'import json,sys; print(sum(m["count"] for m in json.load(sys.stdin)["models"]))'; }

echo "wrk -t$threads -c$conns -d${duration}s on vigil up; $(nproc) cores; $(date -u +%FT%TZ)"
start 1
wrk -t"$threads" -c"$conns" -d"${duration}s" -s bench/predict.lua http://127.0.0.1:9415/predict | grep -E "Requests/sec|requests in"
n=$(answered 9415)
p=$(predicted)
echo "answered 200: $n; predicted: $p; waiting in the spool at the end of the load: $(spool)"
# The collector's write probe (a heartbeat row every 5 s, 1 s for the lock) must not
# take the busy writer for a database that takes no write.
echo "database_unreachable lines during the load: $(grep -c '"database_unreachable"' "$work/log.1" || true)"
kill -TERM "$pid"; wait "$pid" || true
start 2
for _ in $(seq 1 600); do [ "$(spool)" = 0 ] && break; sleep 0.5; done
s=$(stored)
echo "after SIGTERM and a restart: stored $s of $p predicted ($n answered)"
kill -TERM "$pid"; wait "$pid" || true; pid=
[ "$s" = "$p" ] && [ "$s" -ge "$n" ] || { echo "predicted and stored differ" >&2; exit 1; }
