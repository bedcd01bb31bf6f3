#!/usr/bin/env bash
# Collector ingest, two builds side by side: `vigil collector` on SQLite from binaries
# A and B at once, loaded in alternating 8 s rounds with POST /log batches of 500
# unique records (bench/log_batch.lua, wrk -t1 -c4). Prints records/s and the
# collector's CPU microseconds per record (utime + stime from /proc) per round.
#
#   bench/ingest-ab.sh BIN_A BIN_B [rounds=3]
# Needs Debian's wrk (installed here if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
A=$1 B=$2
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
work=$(mktemp -d)
"$A" collector --host 127.0.0.1 --port 9421 --data-dir "$work/a" >/dev/null 2>&1 & pa=$!
"$B" collector --host 127.0.0.1 --port 9422 --data-dir "$work/b" >/dev/null 2>&1 & pb=$!
trap 'kill $pa $pb; rm -rf "$work"' EXIT
up 9421
up 9422
# one PORT PID: a round; prints records/s and CPU us/record.
one() {
  local before after rate
  before=$(cpu "$2")
  rate=$(wrk -t1 -c4 -d8s -s bench/log_batch.lua "http://127.0.0.1:$1/log" | awk '/Requests\/sec/ {print $2 * 500}')
  after=$(cpu "$2")
  echo "$rate records/s, $(awk -v t=$((after - before)) -v r="$rate" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", t / hz * 1e6 / (r * 8)}') us/record"
}
for _ in $(seq 1 "${3:-3}"); do echo "A $(one 9421 "$pa")   B $(one 9422 "$pb")"; done
