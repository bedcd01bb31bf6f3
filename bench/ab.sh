#!/usr/bin/env bash
# Two `vigil serve` (or `vigil up`) builds or settings side by side: A and B run at once
# on loopback and are loaded in alternating rounds with the same wrk command (one-row
# POST /predict, bench/predict.lua), alternating which goes first. Per round it prints
# req/s and the server's CPU per answered request (utime + stime from /proc: it
# resolves a few percent where req/s on this VM drifts by tens), then the medians and
# the medians of the paired B/A ratios, each with the interval that holds the true
# median (`interval` in bench/lib.sh). Every answer must be 2xx.
#
#   bench/ab.sh LABEL_A "ARGS_A" LABEL_B "ARGS_B" [duration_seconds=5] [connections=32]
#   RUNS=8 (rounds); KEY_A / KEY_B: an API key each side's requests carry;
#   BIN_A / BIN_B: another vigil binary for a side (two commits side by side; default
#   target/release/vigil, built here unless both are given); COMMAND=up: both sides run `vigil up` (every
#   prediction stored in SQLite), and after each round the script waits until all of a
#   side's predictions are stored, counting the wait in its req/s and its CPU; it also
#   prints the forwarder thread's CPU per request apart (what storing costs, which
#   resolves a change to it that the whole process's CPU does not).
# Used by bench/auth.sh and bench/analytics.sh. Needs Debian's wrk (installed if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
label_a=$1 args_a=$2 label_b=$3 args_b=$4
duration=${5:-5}
conns=${6:-32}
runs=${RUNS:-8}
command=${COMMAND:-serve}
case $command in serve | up) ;; *) echo "COMMAND must be serve or up" >&2; exit 2 ;; esac
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
[ -n "${BIN_A:-}" ] && [ -n "${BIN_B:-}" ] || cargo build --release -q -p vigil
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT

# shellcheck disable=SC2086 # the ARGS are word lists on purpose
# `up` also needs its collector's port: the side's port + 10.
start() { # bin port dir args
  local bin=$1 port=$2 dir=$3
  shift 3
  if [ "$command" = up ]; then
    exec "$bin" up --host 127.0.0.1 --port "$port" --collector-port $((port + 10)) --data-dir "$dir" "$@"
  else
    exec "$bin" serve --host 127.0.0.1 --port "$port" --data-dir "$dir" "$@"
  fi
}
start "${BIN_A:-target/release/vigil}" 9412 "$work/a" $args_a >/dev/null 2>&1 & pids+=($!)
pid_a=$!
# shellcheck disable=SC2086
start "${BIN_B:-target/release/vigil}" 9413 "$work/b" $args_b >/dev/null 2>&1 & pids+=($!)
pid_b=$!
up 9412
up 9413
# A port another process holds would answer for a side that failed to start.
alive "$pid_a" "$pid_b"
# A side that sends a key must really need it.
for side in A:9412 B:9413; do
  key_var=KEY_${side%%:*}
  if [ -n "${!key_var:-}" ]; then
    code=$(curl -s -o /dev/null -w '%{http_code}' -XPOST "http://127.0.0.1:${side#*:}/predict" \
      -H 'content-type: application/json' -d '{"features": [70, 250, 2.5, 45, 1500, 12]}')
    [ "$code" = 401 ] || { echo "side ${side%%:*} answers $code without its key, not 401" >&2; exit 1; }
  fi
done

load() { # port label key pid
  local before after fwd_before fwd_after
  before=$(cpu "$4")
  fwd_before=$(thread_cpu "$4" vigil-forwarder)
  VIGIL_KEY=$3 wrk -t1 -c"$conns" -d"${duration}s" -s bench/predict.lua "http://127.0.0.1:$1/predict" >"$work/$2.txt"
  local drained=0
  if [ "$command" = up ]; then drained=$(drain "$1" $(($1 + 10))); fi
  after=$(cpu "$4")
  fwd_after=$(thread_cpu "$4" vigil-forwarder)
  grep -q "Non-2xx" "$work/$2.txt" && { echo "$2: non-2xx answers" >&2; exit 1; }
  per_second "$work/$2.txt" "$drained" >"$work/$2.rps"
  us_per_request $((after - before)) "$work/$2.txt" >"$work/$2.us"
  us_per_request $((fwd_after - fwd_before)) "$work/$2.txt" >"$work/$2.fwd"
}

echo "vigil $command: A = $label_a ($args_a), B = $label_b ($args_b)"
echo "wrk -t1 -c$conns -d${duration}s, $runs alternating rounds; $(nproc) cores; $(date -u +%FT%TZ)"
for run in $(seq 1 "$runs"); do
  if [ $((run % 2)) = 1 ]; then
    load 9412 "a-$run" "${KEY_A:-}" "$pid_a"
    load 9413 "b-$run" "${KEY_B:-}" "$pid_b"
  else
    load 9413 "b-$run" "${KEY_B:-}" "$pid_b"
    load 9412 "a-$run" "${KEY_A:-}" "$pid_a"
  fi
  paste "$work/a-$run.rps" "$work/b-$run.rps" "$work/a-$run.us" "$work/b-$run.us" | awk -v r="$run" \
    '{printf "round %d: req/s A %6.0f B %6.0f (B/A %.3f)  CPU us/request A %5.1f B %5.1f (B/A %.3f)\n", r, $1, $2, $2/$1, $3, $4, $4/$3}' |
    tee -a "$work/rounds"
  # Under `up` the forwarder's thread apart: a change to storing shows there first.
  if [ "$command" = up ]; then
    paste "$work/a-$run.fwd" "$work/b-$run.fwd" |
      awk '{printf "  forwarder thread us/request A %.2f B %.2f (B/A %.3f)\n", $1, $2, $2/$1}' | tee -a "$work/forwarder"
  fi
done
rps_ratios=$(awk '{print $9}' "$work/rounds" | tr -d ')')
cpu_ratios=$(awk '{print $NF}' "$work/rounds" | tr -d ')')
echo "median req/s: A $(cat "$work"/a-*.rps | median), B $(cat "$work"/b-*.rps | median); median paired B/A: req/s $(median <<<"$rps_ratios") ($(interval <<<"$rps_ratios")), CPU per request $(median <<<"$cpu_ratios") ($(interval <<<"$cpu_ratios"))"
if [ "$command" = up ]; then
  fwd=$(awk '{print $NF}' "$work/forwarder" | tr -d ')')
  echo "median paired B/A forwarder thread CPU per request: $(median <<<"$fwd") ($(interval <<<"$fwd"))"
fi
