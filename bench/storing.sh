#!/usr/bin/env bash
# What storing a prediction costs `vigil up`, for two builds side by side, at a fixed
# request rate instead of as fast as it goes. Both sides run at once on loopback; in
# alternating rounds (alternating which goes first) `vigil load` sends one-row
# predictions at RATE for DURATION, the script waits until the side has stored every
# prediction it made, and prints per answered request the CPU of the whole process and
# of its `vigil-forwarder` thread (utime + stime from /proc, the storing after the
# round included), then the medians of the paired B/A ratios with their intervals
# (`interval` in bench/lib.sh).
#
# Why a fixed rate: under a saturating wrk load a change to storing also changes how
# much CPU is left to the handlers, and the VM's drift between rounds (tens of percent)
# hides a change of a few; at a rate both sides sustain, each side does the same work
# and only its cost a record differs.
#
#   bench/storing.sh LABEL_A BIN_A LABEL_B BIN_B [rate=12000] [duration_seconds=8]
#   RUNS=6 (rounds)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
label_a=$1 bin_a=$2 label_b=$3 bin_b=$4
rate=${5:-12000}
duration=${6:-8}
runs=${RUNS:-6}
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT

"$bin_a" up --host 127.0.0.1 --port 9472 --collector-port 9482 --data-dir "$work/a" >/dev/null 2>&1 & pids+=($!)
pid_a=$!
"$bin_b" up --host 127.0.0.1 --port 9473 --collector-port 9483 --data-dir "$work/b" >/dev/null 2>&1 & pids+=($!)
pid_b=$!
up 9472
up 9473
alive "$pid_a" "$pid_b"

# round PID PORT LABEL: one round of one side; writes "process_us forwarder_us".
round() {
  local c0 f0 n0 n1
  c0=$(cpu "$1") f0=$(thread_cpu "$1" vigil-forwarder) n0=$(answered "$2")
  # Both sides are loaded by the same generator: A's `vigil load`.
  "$bin_a" load --target "http://127.0.0.1:$2" --rate "$rate" --duration "${duration}s" \
    --concurrency 64 >"$work/$3.load"
  n1=$(answered "$2")
  drain "$2" $(($2 + 10)) >/dev/null
  awk -v c=$(($(cpu "$1") - c0)) -v f=$(($(thread_cpu "$1" vigil-forwarder) - f0)) \
    -v n=$((n1 - n0)) -v hz="$(getconf CLK_TCK)" \
    'BEGIN {printf "%.2f %.2f\n", c / hz * 1e6 / n, f / hz * 1e6 / n}' >"$work/$3.us"
}

echo "vigil up at $rate req/s: A = $label_a ($bin_a), B = $label_b ($bin_b)"
echo "vigil load --rate $rate --duration ${duration}s, $runs alternating rounds; $(nproc) cores; $(date -u +%FT%TZ)"
for run in $(seq 1 "$runs"); do
  if [ $((run % 2)) = 1 ]; then
    round "$pid_a" 9472 "a-$run"
    round "$pid_b" 9473 "b-$run"
  else
    round "$pid_b" 9473 "b-$run"
    round "$pid_a" 9472 "a-$run"
  fi
  paste "$work/a-$run.us" "$work/b-$run.us" | awk -v r="$run" \
    '{printf "round %d: CPU us/request A %6.2f B %6.2f (B/A %.3f)  forwarder thread A %5.2f B %5.2f (B/A %.3f)\n", r, $1, $3, $3/$1, $2, $4, $4/$2}' |
    tee -a "$work/rounds"
done
process=$(awk '{print $10}' "$work/rounds" | tr -d ')')
forwarder=$(awk '{print $NF}' "$work/rounds" | tr -d ')')
echo "median paired B/A: CPU per request $(median <<<"$process") ($(interval <<<"$process"))," \
  "forwarder thread per request $(median <<<"$forwarder") ($(interval <<<"$forwarder"))"
