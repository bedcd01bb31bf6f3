#!/usr/bin/env bash
# What forwarding costs /predict: `vigil serve` alone (off) vs `vigil serve
# --collector-url` posting every record to a sink that accepts and discards the
# batches (sink: the inference process's own cost, plus the sink's reading on the
# same two cores), and to a real `vigil collector` (SQLite) on the same machine,
# which takes CPU from this 2-core box (on).
#
# This VM's speed drifts by ±10-15 % between runs, so the script runs ROUNDS rounds
# (default 12), each mode once per round in a fresh random order, and compares modes
# within a round: the median of the per-round ratios and their mean ± 2 standard
# errors. It also reports each instance's own CPU per prediction
# (process_cpu_seconds_total over predictions_total).
#
#   bench/forwarding.sh [duration_seconds=5] [connections=32]
#   ROUNDS=20 MODES="off sink" bench/forwarding.sh     # skip the slow `on` runs
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-5}
conns=${2:-32}
modes=${MODES:-off sink on}
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
cargo build --release -q -p vigil -p vigil-bench-hello
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
. bench/lib.sh

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
declare -A ports=([off]=9622 [sink]=9624 [on]=9623)
# CPU seconds and predictions of one instance.
sample() { curl -s "http://127.0.0.1:$1/metrics" | awk '/^process_cpu_seconds_total/ {c=$2}
  /^predictions_total\{model="defect-detector",version="1.0.0",status="success"\}/ {p=$2} END {print c, p}'; }
for round in $(seq 1 "${ROUNDS:-12}"); do
  for name in $(printf '%s\n' $modes | shuf); do
    port=${ports[$name]}
    before=$(sample "$port")
    rps=$(wrk -t1 -c"$conns" -d"${duration}s" -s bench/predict.lua "http://127.0.0.1:$port/predict" | awk '/Requests\/sec/ {print $2}')
    # Work still in flight (the forwarder's last batch) belongs to this run.
    sleep 0.5
    us=$(echo "$before $(sample "$port")" | awk '{printf "%.2f", ($3-$1)/($4-$2)*1e6}')
    printf 'round %2s %-4s %10s req/s  %6s µs CPU per prediction\n' "$round" "$name" "$rps" "$us"
    echo "$round $name $rps $us" >>"$work/runs"
    if [ "$name" != off ]; then settle "$port"; fi
  done
done
python3 - "$work/runs" <<'PY'
import collections, statistics as st, sys
runs = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    rnd, mode, rps, us = line.split()
    runs[mode][rnd] = (float(rps), float(us))
off = runs["off"]
print(f"off: median {st.median(v[0] for v in off.values()):,.0f} req/s, "
      f"{st.median(v[1] for v in off.values()):.2f} µs CPU per prediction")
for mode, by_round in runs.items():
    if mode == "off":
        continue
    ratios = [by_round[r][0] / off[r][0] for r in by_round]
    extra = [by_round[r][1] - off[r][1] for r in by_round]
    se = st.stdev(ratios) / len(ratios) ** 0.5
    print(f"{mode}: median {st.median(v[0] for v in by_round.values()):,.0f} req/s; "
          f"per-round {mode}/off median {st.median(ratios):.3f}, "
          f"mean {st.mean(ratios):.3f} ± {2 * se:.3f} (cost {100 * (1 - st.mean(ratios)):.1f} %); "
          f"CPU per prediction {st.median(extra):+.2f} µs (median of rounds)")
    print("  per-round ratios:", " ".join(f"{x:.2f}" for x in ratios))
PY
[[ " $modes " == *" on "* ]] || exit 0
echo "records sent by the forwarding instance: $(sent 9623)"
