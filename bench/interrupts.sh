#!/usr/bin/env bash
# Rescheduling and function-call interrupts (the RES and CAL lines of /proc/interrupts,
# both CPUs) per request for `vigil serve` and `vigil up` under the same load, in
# alternating rounds. On a VM each is an exit to the host, and how much one costs
# varies with the host; see docs/BENCHMARKS.md, "Three runs with 16 KiB pages".
# Counts the whole machine, so run it on an otherwise idle one.
#
#   bench/interrupts.sh [duration_seconds=5] [connections=32]
#   RUNS=2 (rounds). Needs Debian's wrk (installed here if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
duration=${1:-5}
conns=${2:-32}
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
cargo build --release -q -p vigil
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
target/release/vigil serve --host 127.0.0.1 --port 9612 --data-dir "$work/serve" >/dev/null 2>&1 & pids+=($!)
target/release/vigil up --host 127.0.0.1 --port 9613 --collector-port 9623 --data-dir "$work/up" >/dev/null 2>&1 & pids+=($!)
up 9612
up 9613

# interrupts NAME: the machine's NAME interrupts so far, all CPUs.
interrupts() { awk -v n="$1:" '$1 == n {for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) t += $i} END {print t}' /proc/interrupts; }

echo "wrk -t1 -c$conns -d${duration}s, ${RUNS:-2} alternating rounds; $(nproc) cores; $(date -u +%FT%TZ)"
for run in $(seq 1 "${RUNS:-2}"); do
  for side in serve:9612 up:9613; do
    port=${side#*:}
    res=$(interrupts RES) cal=$(interrupts CAL)
    wrk -t1 -c"$conns" -d"${duration}s" -s bench/predict.lua "http://127.0.0.1:$port/predict" >"$work/wrk.txt"
    # `up` stores after the load too: its interrupts until then count.
    if [ "$port" = 9613 ]; then drain 9613 9623 >/dev/null; fi
    n=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
    awk -v s="${side%%:*}" -v r="$run" -v n="$n" -v res=$(($(interrupts RES) - res)) -v cal=$(($(interrupts CAL) - cal)) \
      'BEGIN {printf "round %d %-5s %8d requests: RES %.4f, CAL %.4f a request\n", r, s, n, res / n, cal / n}'
  done
done
