#!/usr/bin/env bash
# What forwarding costs /predict, measured side by side: two `vigil serve` instances
# run at the same moments, each with its own wrk, one without a collector (off) and one
# posting every record to a sink that reads and discards the batches (sink,
# `bench/hello`, which counts against the forwarding side). This VM's speed drifts by
# 10-50 % within minutes, so runs taken one after the other (bench/forwarding.sh) need
# dozens of rounds and still carry about ±4 %; here both sides meet the same drift and
# the per-round ratio of their req/s is steady to about ±1 %.
#
#   bench/forwarding-paired.sh [duration_seconds=5] [connections_per_side=32]
#   ROUNDS=20 (default)
#   PLACEMENT=cores bench/forwarding-paired.sh 5 16  # one core per side (see below)
#   PAIR="off off" bench/forwarding-paired.sh        # A/A control: the noise floor
#   PAIR="sink off" bench/forwarding-paired.sh       # the sides the other way round
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-5}
conns=${2:-32}
rounds=${ROUNDS:-20}
[ "$rounds" -ge 2 ] || { echo "ROUNDS must be at least 2" >&2; exit 2; }
read -r left right <<<"${PAIR:-off sink}"
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
cargo build --release -q -p vigil -p vigil-bench-hello
work=$(mktemp -d)
pids=()
. bench/lib.sh

# Two placements, both immune to that drift because both sides meet the same vCPUs at
# the same moments. The two vCPUs of this VM run at different speeds at the same
# moment (by up to 40 %, and which one is faster changes): an A/A run with each side
# pinned to a core, or held to one CPU by a cgroup quota, differed by up to 50 % within
# a round.
#   turns (default)  each side gets both cores, in turns of 50 ms while the other is
#                    frozen (cgroup freezer): the whole 2-core machine, wrk included,
#                    as `vigil serve` runs on it by default.
#   cores            each side owns one core at any moment, and the sides swap cores
#                    every 50 ms; vigil starts pinned, so it sizes its workers and
#                    inference threads for one core.
# A side's processes (vigil, its wrk, the sink) live in a v1 cgroup, which this VM
# mounts, so the swapper can find (or freeze) all their threads.
placement=${PLACEMENT:-turns}
case $placement in
  cores) cg=/sys/fs/cgroup/cpu pin=(taskset -c 0) ;;
  turns) cg=/sys/fs/cgroup/freezer pin=() ;;
  *) echo "PLACEMENT is cores or turns" >&2; exit 2 ;;
esac
[ -d "$cg" ] || { echo "needs the v1 cgroup controller mounted at $cg" >&2; exit 2; }
declare -A side_ports
start_side() { # name port sink_port
  local name=$1 port=$2 sink=$3 args=()
  mkdir -p "$cg/vigil-bench-$name"
  if [ "${name%[0-9]}" = sink ]; then
    in_side "$name" target/release/vigil-bench-hello "127.0.0.1:$sink" >/dev/null 2>&1 &
    pids+=($!)
    args=(--collector-url "http://127.0.0.1:$sink")
  fi
  in_side "$name" target/release/vigil serve --host 127.0.0.1 --port "$port" \
    --data-dir "$work/$name" "${args[@]}" >/dev/null 2>&1 &
  pids+=($!)
  side_ports[$name]=$port
  up "$port"
}
in_side() { # name command...: runs the command inside the side's cgroup
  local group="$cg/vigil-bench-$1"
  shift
  exec sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$group" "${pin[@]}" "$@"
}
cleanup() {
  # The swapper first, then thaw both sides so they can act on SIGTERM.
  if [ -n "${swapper:-}" ]; then kill "$swapper" 2>/dev/null || true; wait "$swapper" 2>/dev/null || true; fi
  for f in "$cg"/vigil-bench-*/freezer.state; do if [ -e "$f" ]; then echo THAWED >"$f"; fi; done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rmdir "$cg"/vigil-bench-* 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
# Both names may be the same mode (the A/A control): the second gets a suffix.
[ "$right" = "$left" ] && right="${right}2"
start_side "$left" 9632 9634
start_side "$right" 9633 9635

sample() { curl -s "http://127.0.0.1:$1/metrics" | awk '/^process_cpu_seconds_total/ {c=$2}
  /^predictions_total\{model="defect-detector",version="1.0.0",status="success"\}/ {p=$2}
  /^prediction_batch_size_sum\{model="defect-detector"/ {bs=$2} /^prediction_batch_size_count\{model="defect-detector"/ {bc=$2}
  END {print c, p, bs, bc}'; }
load() { # name seconds -> writes $work/<name>.txt
  in_side "$1" wrk -t1 -c"$conns" -d"$2s" -s bench/predict.lua \
    "http://127.0.0.1:${side_ports[$1]}/predict" >"$work/$1.txt"
}
rps() { awk '/Requests\/sec/ {print $2}' "$work/$1.txt"; }
# Two samples -> CPU µs per prediction and rows per inference batch over the run.
per_prediction() {
  awk '{ if ($6 == $2 || $8 == $4) { print "no predictions in this run" > "/dev/stderr"; exit 1 }
         printf "%.2f %.2f", ($5-$1)/($6-$2)*1e6, ($7-$3)/($8-$4) }'
}

# The swapper: every 50 ms, the sides trade cores (cores) or turns (turns).
python3 - "$placement" "$cg/vigil-bench-$left" "$cg/vigil-bench-$right" <<'PY' &
import os, signal, sys, time
placement, groups = sys.argv[1], sys.argv[2:]
# However it ends, it leaves both sides running: a side left frozen would hang its wrk.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
def freeze(group, state):
    with open(f"{group}/freezer.state", "w") as f:
        f.write(state)
    # Freezing finishes asynchronously: wait, so the sides never run together.
    while state == "FROZEN" and open(f"{group}/freezer.state").read().strip() != "FROZEN":
        time.sleep(0.0005)
turn = 0
try:
    while True:
        if placement == "cores":
            for group, cpu in zip(groups, (turn, 1 - turn)):
                for tid in open(f"{group}/tasks").read().split():
                    try:
                        os.sched_setaffinity(int(tid), {cpu})
                    except OSError:
                        pass  # a thread that just ended
        else:
            freeze(groups[1 - turn], "FROZEN")
            freeze(groups[turn], "THAWED")
        turn = 1 - turn
        time.sleep(0.05)
finally:
    if placement == "turns":
        for group in groups:
            freeze(group, "THAWED")
PY
swapper=$!
load "$left" 2 &
l=$!
load "$right" 2 &
wait "$l" "$!" # warm-up, not counted
for round in $(seq 1 "$rounds"); do
  lb=$(sample "${side_ports[$left]}")
  rb=$(sample "${side_ports[$right]}")
  load "$left" "$duration" &
  l=$!
  load "$right" "$duration" &
  wait "$l" "$!"
  sleep 0.5 # the forwarder's last batch belongs to this run
  lus=$(echo "$lb $(sample "${side_ports[$left]}")" | per_prediction)
  rus=$(echo "$rb $(sample "${side_ports[$right]}")" | per_prediction)
  printf 'round %2s  %-5s %9s req/s %6s µs CPU %5s rows/batch   %-5s %9s req/s %6s µs CPU %5s rows/batch\n' \
    "$round" "$left" "$(rps "$left")" $lus "$right" "$(rps "$right")" $rus
  echo "$round $(rps "$left") $lus $(rps "$right") $rus" >>"$work/runs"
  for side in "$left" "$right"; do
    if [ "${side%[0-9]}" = sink ]; then settle "${side_ports[$side]}"; fi
  done
  # Without the swapper the sides are no longer paired: stop rather than mislead.
  kill -0 "$swapper" 2>/dev/null || { echo "the swapper died; results are not paired" >&2; exit 1; }
done
python3 - "$work/runs" "$left" "$right" <<'PY'
import math, statistics as st, sys
path, left, right = sys.argv[1:]
rows = [[float(x) for x in line.split()] for line in open(path)]
# The cost is always the forwarding side over off, whichever side it ran on.
flip = left != "off" and right.startswith("off")
num, den = (left, right) if flip else (right, left)
ratios = [(r[1] / r[4]) if flip else (r[4] / r[1]) for r in rows]
logs = [math.log(x) for x in ratios]
se = st.stdev(logs) / len(logs) ** 0.5
gm = math.exp(st.mean(logs))
lo, hi = math.exp(st.mean(logs) - 2 * se), math.exp(st.mean(logs) + 2 * se)
for name, at in ((left, 1), (right, 4)):
    print(f"{name}: median {st.median(r[at] for r in rows):,.0f} req/s, "
          f"{st.median(r[at + 1] for r in rows):.2f} µs CPU per prediction, "
          f"{st.median(r[at + 2] for r in rows):.2f} rows per inference batch")
print(f"{num}/{den} per round: geometric mean {gm:.4f} (± 2 SE: {lo:.4f}-{hi:.4f}), "
      f"median {st.median(ratios):.4f}; cost {100 * (1 - gm):.1f} % "
      f"({100 * (1 - hi):.1f}-{100 * (1 - lo):.1f} %)")
print("  per-round ratios:", " ".join(f"{x:.3f}" for x in ratios))
PY
