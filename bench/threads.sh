#!/usr/bin/env bash
# Which threads pay for storing: `vigil serve` and `vigil up` (one build) at the same
# fixed request rate from `vigil load`, in alternating rounds (alternating which goes
# first), and per answered request the CPU of each group of threads (utime + stime from
# /proc, grouped by thread name: `vigil-worker`, `vigil-infer`, `vigil-forwarder`, ...;
# `up` is charged for storing what a round left after it). Prints each group's median
# for both and what `up` adds. A saturating load cannot say this: there a change in one
# thread moves the CPU every other one gets.
#
#   bench/threads.sh [rate=15000] [duration_seconds=8]
#   RUNS=4 (rounds of each); BIN: the vigil binary (default target/release/vigil,
#   built here)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
rate=${1:-15000}
duration=${2:-8}
runs=${RUNS:-4}
bin=${BIN:-target/release/vigil}
[ -n "${BIN:-}" ] || cargo build --release -q -p vigil
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT

"$bin" serve --host 127.0.0.1 --port 9452 --data-dir "$work/serve" >/dev/null 2>&1 & pids+=($!)
serve_pid=$!
"$bin" up --host 127.0.0.1 --port 9453 --collector-port 9463 --data-dir "$work/up" >/dev/null 2>&1 & pids+=($!)
up_pid=$!
up 9452
up 9453
alive "$serve_pid" "$up_pid"

# groups PID: "name ticks" per thread group (the name without a trailing -N).
groups() {
  cat /proc/"$1"/task/*/stat 2>/dev/null |
    awk '{n = $2; gsub(/[()]/, "", n); sub(/-[0-9]+$/, "", n); t[n] += $14 + $15} END {for (k in t) print k, t[k]}' |
    sort
}

# round PID PORT LABEL RUN: one round of one side; appends "label group us run" lines.
round() {
  local n0 n1
  groups "$1" >"$work/before"
  n0=$(answered "$2")
  "$bin" load --target "http://127.0.0.1:$2" --rate "$rate" --duration "${duration}s" \
    --concurrency 64 >/dev/null
  n1=$(answered "$2")
  [ "$3" = up ] && drain "$2" $(($2 + 10)) >/dev/null
  groups "$1" >"$work/after"
  join -a 2 -e 0 -o 0,1.2,2.2 "$work/before" "$work/after" |
    awk -v l="$3" -v r="$4" -v n=$((n1 - n0)) -v hz="$(getconf CLK_TCK)" \
      '$3 > $2 {printf "%s %s %.2f %s\n", l, $1, ($3 - $2) / hz * 1e6 / n, r}' >>"$work/rounds"
}

echo "vigil serve and vigil up at $rate req/s ($bin): vigil load --rate $rate --duration ${duration}s, $runs alternating rounds; $(nproc) cores; $(date -u +%FT%TZ)"
for run in $(seq 1 "$runs"); do
  if [ $((run % 2)) = 1 ]; then
    round "$serve_pid" 9452 serve "$run"
    round "$up_pid" 9453 up "$run"
  else
    round "$up_pid" 9453 up "$run"
    round "$serve_pid" 9452 serve "$run"
  fi
done
printf '%-18s %10s %10s %10s   (CPU us a request, medians of %s rounds)\n' thread serve up "up adds" "$runs"
for group in $(awk '{print $2}' "$work/rounds" | sort -u); do
  s=$(awk -v g="$group" '$1 == "serve" && $2 == g {print $3}' "$work/rounds" | median)
  u=$(awk -v g="$group" '$1 == "up" && $2 == g {print $3}' "$work/rounds" | median)
  awk -v g="$group" -v s="${s:-0}" -v u="${u:-0}" 'BEGIN {printf "%-18s %10.2f %10.2f %+10.2f\n", g, s, u, u - s}'
done
# The whole process: each round's groups summed, then the median of the rounds.
whole() { awk -v l="$1" '$1 == l {t[$4] += $3} END {for (r in t) print t[r]}' "$work/rounds" | median; }
awk -v s="$(whole serve)" -v u="$(whole up)" 'BEGIN {printf "%-18s %10.2f %10.2f %+10.2f\n", "(process)", s, u, u - s}'
