#!/usr/bin/env bash
# Collector ingest: POST /log with batches of 500 unique records (bench/log_batch.lua)
# against `vigil collector` on SQLite and on PostgreSQL (a throwaway cluster from
# Debian's postgresql, fsync on). Prints records/s for each.
#
#   bench/ingest.sh [duration_seconds=15] [connections=4]
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-15}
conns=${2:-4}
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
scripts/install-test-deps
cargo build --release -q -p vigil
work=$(mktemp -d)
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -d "$work/pg" ]; then runuser -u postgres -- "$pgbin/pg_ctl" -D "$work/pg/data" -m fast stop >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)

run() { # label port
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$2/health" && break; sleep 0.1; done
  wrk -t1 -c"$conns" -d"${duration}s" --latency -s bench/log_batch.lua "http://127.0.0.1:$2/log" >"$work/$1.txt"
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/$1.txt")
  p50=$(awk '$1=="50%" {print $2}' "$work/$1.txt")
  p99=$(awk '$1=="99%" {print $2}' "$work/$1.txt")
  printf '%-10s %10.0f records/s  (%s batches/s, p50 %s, p99 %s)\n' "$1" "$(awk -v r="$rps" 'BEGIN {print r*500}')" "$rps" "$p50" "$p99"
}

target/release/vigil collector --host 127.0.0.1 --port 9511 --data-dir "$work/sqlite" >/dev/null 2>&1 &
pids+=($!)
run sqlite 9511

mkdir -p "$work/pg" && chown postgres:postgres "$work/pg"
runuser -u postgres -- "$pgbin/initdb" -A trust -U vigil -D "$work/pg/data" >/dev/null
runuser -u postgres -- "$pgbin/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w \
  -o "-p 9532 -k $work/pg -c listen_addresses=127.0.0.1" start >/dev/null
"$pgbin/psql" -h 127.0.0.1 -p 9532 -U vigil -d postgres -qc "CREATE DATABASE bench"
target/release/vigil collector --host 127.0.0.1 --port 9512 --data-dir "$work/unused" \
  --database-url postgres://vigil@127.0.0.1:9532/bench >/dev/null 2>&1 &
pids+=($!)
run postgres 9512
