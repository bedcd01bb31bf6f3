#!/usr/bin/env bash
# What API keys cost `/predict`: two `vigil serve` instances side by side, one open
# (no keys) and one with a `predict` key configured (every request hashed and checked),
# loaded in alternating rounds with the same wrk command; the keyed side sends its key.
# Prints each round's req/s and server CPU per request (utime + stime from /proc, which
# resolves a few percent where req/s on this VM drifts by tens), the medians and the
# median of the paired ratios.
#
#   bench/auth.sh [duration_seconds=6] [connections=32]
#   RUNS=5 (alternating rounds)
# Needs Debian's wrk (installed here if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
duration=${1:-6}
conns=${2:-32}
runs=${RUNS:-5}
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
cargo build --release -q -p vigil
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT

# A key made by the real CLI, stored as its hash in the keyed instance's data dir.
key=$(target/release/vigil keys create --name bench --role predict --data-dir "$work/keyed" 2>/dev/null)
target/release/vigil serve --host 127.0.0.1 --port 9412 --data-dir "$work/open" >/dev/null 2>&1 & pids+=($!)
open_pid=$!
target/release/vigil serve --host 127.0.0.1 --port 9413 --data-dir "$work/keyed" >/dev/null 2>&1 & pids+=($!)
keyed_pid=$!
up 9412
up 9413
# The keyed side really refuses requests without the key.
[ "$(curl -s -o /dev/null -w '%{http_code}' -XPOST http://127.0.0.1:9413/predict \
  -H 'content-type: application/json' -d '{"features": [70, 250, 2.5, 45, 1500, 12]}')" = 401 ]

# cpu PID: the process's CPU time so far, in clock ticks.
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }

load() { # url label key pid
  local before after
  before=$(cpu "$4")
  VIGIL_KEY=$3 wrk -t1 -c"$conns" -d"${duration}s" -s bench/predict.lua "$1" >"$work/$2.txt"
  after=$(cpu "$4")
  grep -q "Non-2xx" "$work/$2.txt" && { echo "$2: non-2xx answers" >&2; exit 1; }
  awk '/Requests\/sec/ {print $2}' "$work/$2.txt" >"$work/$2.rps"
  awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" '/requests in/ {printf "%.2f\n", t / hz * 1e6 / $1}' "$work/$2.txt" >"$work/$2.us"
}

echo "wrk -t1 -c$conns -d${duration}s, $runs alternating rounds; $(nproc) cores; $(date -u +%FT%TZ)"
for run in $(seq 1 "$runs"); do
  # Alternate which side goes first, so drift within a round favours neither.
  if [ $((run % 2)) = 1 ]; then
    load http://127.0.0.1:9412/predict "open-$run" "" "$open_pid"
    load http://127.0.0.1:9413/predict "keyed-$run" "$key" "$keyed_pid"
  else
    load http://127.0.0.1:9413/predict "keyed-$run" "$key" "$keyed_pid"
    load http://127.0.0.1:9412/predict "open-$run" "" "$open_pid"
  fi
  o=$(cat "$work/open-$run.rps"); k=$(cat "$work/keyed-$run.rps")
  ou=$(cat "$work/open-$run.us"); ku=$(cat "$work/keyed-$run.us")
  awk -v o="$o" -v k="$k" -v ou="$ou" -v ku="$ku" -v r="$run" 'BEGIN {printf "round %d: req/s open %6.0f keyed %6.0f (%.3f)  CPU us/request open %5.1f keyed %5.1f (%.3f)\n", r, o, k, k/o, ou, ku, ku/ou}' | tee -a "$work/rounds"
done
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
open=$(cat "$work"/open-*.rps | median)
keyed=$(cat "$work"/keyed-*.rps | median)
rps_ratio=$(awk '{print $8}' "$work/rounds" | tr -d '()' | median)
cpu_ratio=$(awk '{print $NF}' "$work/rounds" | tr -d '()' | median)
echo "median req/s: open $open, keyed $keyed; median paired keyed/open: req/s $rps_ratio, CPU per request $cpu_ratio"
