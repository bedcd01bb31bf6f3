#!/usr/bin/env bash
# What forwarding costs /predict: `vigil serve` alone (off) vs `vigil serve
# --collector-url` posting every record to a `vigil collector` (SQLite) on the same
# machine, which also takes CPU from this 2-core box (on), and to a sink that
# discards the batches (sink: the inference process's own cost). ROUNDS alternating
# wrk runs each (default 3); medians of the runs, and the median of the per-round
# sink/off ratios (runs next to each other share the VM's mood).
#
#   bench/forwarding.sh [duration_seconds=10] [connections=32]
#   ROUNDS=5 MODES="off sink" bench/forwarding.sh     # skip the slow `on` runs
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
conns=${2:-32}
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
cargo build --release -q -p vigil -p vigil-bench-hello
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
up() { for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$1/health" && return; sleep 0.1; done; }

target/release/vigil collector --host 127.0.0.1 --port 9621 --data-dir "$work/collector" >/dev/null 2>&1 &
pids+=($!)
target/release/vigil serve --host 127.0.0.1 --port 9622 --data-dir "$work/off" >/dev/null 2>&1 &
pids+=($!)
target/release/vigil serve --host 127.0.0.1 --port 9623 --data-dir "$work/on" --collector-url http://127.0.0.1:9621 >/dev/null 2>&1 &
pids+=($!)
target/release/vigil-bench-hello 127.0.0.1:9625 >/dev/null 2>&1 &
pids+=($!)
target/release/vigil serve --host 127.0.0.1 --port 9624 --data-dir "$work/sink" --collector-url http://127.0.0.1:9625 >/dev/null 2>&1 &
pids+=($!)
up 9621; up 9622; up 9623; up 9624
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
declare -A ports=([off]=9622 [sink]=9624 [on]=9623)
# The inference process's own CPU per prediction (process_cpu_seconds_total over
# predictions_total): steadier than req/s on a shared VM.
sample() { curl -s "http://127.0.0.1:$1/metrics" | awk '/^process_cpu_seconds_total/ {c=$2}
  /^predictions_total\{model="defect-detector",version="1.0.0",status="success"\}/ {p=$2} END {print c, p}'; }
for run in $(seq 1 "${ROUNDS:-3}"); do
  for name in ${MODES:-off sink on}; do
    port=${ports[$name]}
    before=$(sample "$port")
    rps=$(wrk -t1 -c"$conns" -d"${duration}s" -s bench/predict.lua "http://127.0.0.1:$port/predict" | awk '/Requests\/sec/ {print $2}')
    # Work still in flight (the forwarder's last batch) belongs to this run.
    sleep 0.5
    us=$(echo "$before $(sample "$port")" | awk '{printf "%.2f", ($3-$1)/($4-$2)*1e6}')
    printf 'forwarding %-4s run %s: %10s req/s  %6s µs CPU per prediction\n' "$name" "$run" "$rps" "$us"
    echo "$rps" >>"$work/$name.rps"
    echo "$us" >>"$work/$name.cpu"
    # A forwarder still working through a backlog would steal CPU from the next run:
    # wait until its sent counter stops moving.
    prev=-1
    while :; do
      cur=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^prediction_log_records_total\{outcome="sent"\}/ {print $2}')
      [ "$cur" = "$prev" ] && break
      prev=$cur
      sleep 1
    done
  done
done
off=$(median <"$work/off.rps")
cost() { awk -v a="$1" -v b="$off" 'BEGIN {printf "%.1f", 100*(1-a/b)}'; }
for name in ${MODES:-off sink on}; do
  [ "$name" = off ] && continue
  m=$(median <"$work/$name.rps")
  ratios=$(paste "$work/$name.rps" "$work/off.rps" | awk '{printf "%.3f\n", $1/$2}')
  echo "median: off $off req/s, $name $m req/s (cost $(cost "$m")%); per-round $name/off:" $ratios \
    "(median $(echo "$ratios" | median))"
  echo "median CPU per prediction: off $(median <"$work/off.cpu") µs, $name $(median <"$work/$name.cpu") µs"
done
[[ " ${MODES:-on} " == *" on "* ]] || exit 0
sent=$(curl -s http://127.0.0.1:9623/metrics | awk '/^prediction_log_records_total\{outcome="sent"\}/ {print $2}')
echo "records sent by the forwarding instance: $sent"
