#!/usr/bin/env bash
# Instructions a request, user space, for two vigil builds (or settings) side by side:
# each side runs under callgrind, is warmed up with instrumentation off, then counted
# while wrk sends one-row POST /predict (bench/predict.lua) for DURATION seconds. It
# prints each round's instructions per answered request and the medians and paired
# B/A ratio. Callgrind counts what the process executes, so the number barely moves
# between rounds or with the VM's speed, where req/s and CPU time drift by tens of
# percent: it resolves a change of 1 % to the request path. What it does not see: the
# kernel (about a third of a request's time, the same for both sides), cache misses
# and waits. Confirm a change that it shows with bench/ab.sh before calling it faster.
#
#   bench/instructions.sh LABEL_A "ARGS_A" LABEL_B "ARGS_B" [duration_seconds=10]
#   RUNS=2 (rounds, alternating which side goes first); BIN_A / BIN_B: another vigil
#   binary for a side (default target/release/vigil, built here); COMMAND=up: both
#   sides run `vigil up`, and the count includes storing each prediction.
# Needs Debian's valgrind and wrk (installed if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
label_a=$1 args_a=$2 label_b=$3 args_b=$4
duration=${5:-10}
runs=${RUNS:-2}
command=${COMMAND:-serve}
case $command in serve | up) ;; *) echo "COMMAND must be serve or up" >&2; exit 2 ;; esac
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
command -v callgrind_control >/dev/null || apt-get install -y -qq valgrind >/dev/null
[ -n "${BIN_A:-}" ] && [ -n "${BIN_B:-}" ] || cargo build --release -q -p vigil
work=$(mktemp -d)
vpid=
trap '[ -n "$vpid" ] && kill "$vpid" 2>/dev/null; rm -rf "$work"' EXIT

# count BIN ARGS: instructions per request of one side, one round.
count() {
  local bin=$1 args=$2 port=9420 dir out n ir
  dir=$(mktemp -d -p "$work") out=$(mktemp -d -p "$work")
  local extra=()
  [ "$command" = up ] && extra=(--collector-port $((port + 10)))
  # shellcheck disable=SC2086 # ARGS is a word list on purpose
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out/cg.%p" \
    "$bin" "$command" --host 127.0.0.1 --port $port --data-dir "$dir" "${extra[@]}" $args \
    >/dev/null 2>&1 &
  vpid=$!
  # Under callgrind start-up takes seconds; the readiness probe says when it is done.
  for _ in $(seq 1 600); do
    curl -s -o /dev/null "http://127.0.0.1:$port/health/ready" && break
    kill -0 "$vpid" 2>/dev/null || { echo "$bin did not start" >&2; exit 1; }
    sleep 0.5
  done
  # Warm-up uncounted: first-use allocations, the inference threads' scratch space.
  wrk -t1 -c8 -d3 -s bench/predict.lua "http://127.0.0.1:$port/predict" >/dev/null
  callgrind_control -z "$vpid" >/dev/null 2>&1
  callgrind_control -i on "$vpid" >/dev/null 2>&1
  wrk -t1 -c8 -d"$duration" -s bench/predict.lua "http://127.0.0.1:$port/predict" >"$out/wrk"
  callgrind_control -d "$vpid" >/dev/null 2>&1
  kill "$vpid"
  wait "$vpid" 2>/dev/null || true
  vpid=
  if grep -q 'Non-2xx' "$out/wrk"; then echo "non-2xx answers" >&2; exit 1; fi
  n=$(awk '/requests in/ {print $1}' "$out/wrk")
  ir=$(cat "$out"/cg.*.1 | awk '/^summary:/ {print $2}')
  echo $((ir / n))
}

median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

a_all=() b_all=() ratios=()
for round in $(seq 1 "$runs"); do
  if [ $((round % 2)) = 1 ]; then
    a=$(count "${BIN_A:-target/release/vigil}" "$args_a")
    b=$(count "${BIN_B:-target/release/vigil}" "$args_b")
  else
    b=$(count "${BIN_B:-target/release/vigil}" "$args_b")
    a=$(count "${BIN_A:-target/release/vigil}" "$args_a")
  fi
  ratio=$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.4f", b / a}')
  echo "round $round: instructions a request A ($label_a) $a B ($label_b) $b (B/A $ratio)"
  a_all+=("$a") b_all+=("$b") ratios+=("$ratio")
done
echo "median instructions a request: A $(printf '%s\n' "${a_all[@]}" | median)," \
  "B $(printf '%s\n' "${b_all[@]}" | median); median paired B/A $(printf '%s\n' "${ratios[@]}" | median)"
