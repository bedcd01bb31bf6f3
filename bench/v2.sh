#!/usr/bin/env bash
# The Open Inference Protocol against /predict on one `vigil serve`, side by side in
# alternating rounds: one row as binary v2 (tritonclient's default framing) against one
# row as /predict JSON; then 256 rows each way, compared per row. Prints per round
# req/s and the server's CPU time per request (utime + stime from /proc: it resolves
# a few percent where req/s on this VM drifts by tens), then the medians and the
# medians of the paired ratios (v2 / predict). Every answer must be 2xx.
#
#   bench/v2.sh [duration_seconds=5] [connections=32]     RUNS=6
# Needs Debian's wrk (installed if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
duration=${1:-5}
conns=${2:-32}
runs=${RUNS:-6}
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
cargo build --release -q -p vigil
work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
target/release/vigil serve --host 127.0.0.1 --port 9414 --data-dir "$work/data" >/dev/null 2>&1 &
pid=$!
up 9414

# The bodies: 1 and 256 defect-detector rows (varied, inside the card's ranges).
python3 - "$work" <<'PY'
import json, struct, sys
work = sys.argv[1]
base = [70.0, 250.0, 2.5, 45.0, 1500.0, 12.0]
rows = [[v + (i % 7) * 0.25 for v in base] for i in range(256)]
for n in (1, 256):
    batch = rows[:n]
    body = {"features": batch[0]} if n == 1 else {"instances": batch}
    open(f"{work}/predict-{n}.json", "w").write(json.dumps(body))
    data = b"".join(struct.pack("<f", v) for row in batch for v in row)
    header = json.dumps({"inputs": [{"name": "input", "shape": [n, 6], "datatype": "FP32",
                                     "parameters": {"binary_data_size": len(data)}}],
                         "parameters": {"binary_data_output": True}}, separators=(",", ":")).encode()
    open(f"{work}/v2-{n}.bin", "wb").write(header + data)
    open(f"{work}/v2-{n}.len", "w").write(str(len(header)))
PY

# cpu: the server's CPU time so far, in clock ticks.
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }

load() { # kind rows round
  local url content_type header_length="" before after
  if [ "$1" = predict ]; then
    url=/predict content_type=application/json body="$work/predict-$2.json"
  else
    url=/v2/models/defect-detector/infer content_type="" body="$work/v2-$2.bin"
    header_length=$(cat "$work/v2-$2.len")
  fi
  before=$(cpu)
  BODY_FILE=$body CONTENT_TYPE=$content_type HEADER_LENGTH=$header_length \
    wrk -t1 -c"$conns" -d"${duration}s" -s bench/body.lua "http://127.0.0.1:9414$url" >"$work/$1-$2-$3.txt"
  after=$(cpu)
  grep -q "Non-2xx" "$work/$1-$2-$3.txt" && { echo "$1 $2 rows: non-2xx answers" >&2; exit 1; }
  awk '/Requests\/sec/ {print $2}' "$work/$1-$2-$3.txt" >"$work/$1-$2-$3.rps"
  awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" '/requests in/ {printf "%.2f\n", t / hz * 1e6 / $1}' "$work/$1-$2-$3.txt" >"$work/$1-$2-$3.us"
}

echo "one vigil serve; wrk -t1 -c$conns -d${duration}s, $runs alternating rounds; $(nproc) cores; $(date -u +%FT%TZ)"
for run in $(seq 1 "$runs"); do
  for rows in 1 256; do
    if [ $((run % 2)) = 1 ]; then load predict $rows $run; load v2 $rows $run
    else load v2 $rows $run; load predict $rows $run; fi
    paste "$work/predict-$rows-$run.rps" "$work/v2-$rows-$run.rps" "$work/predict-$rows-$run.us" "$work/v2-$rows-$run.us" |
      awk -v r="$run" -v n="$rows" \
      '{printf "round %d, %3d rows: req/s /predict %7.0f v2 %7.0f (v2/predict %.3f)  CPU us/request /predict %7.1f v2 %7.1f (v2/predict %.3f)\n", r, n, $1, $2, $2/$1, $3, $4, $4/$3}' |
      tee -a "$work/rounds-$rows"
  done
done
for rows in 1 256; do
  rps=$(awk '{print $11}' "$work/rounds-$rows" | tr -d ')' | median)
  us=$(awk '{print $NF}' "$work/rounds-$rows" | tr -d ')' | median)
  echo "$rows rows: median req/s /predict $(cat "$work"/predict-$rows-*.rps | median), v2 $(cat "$work"/v2-$rows-*.rps | median); median paired v2/predict: req/s $rps, CPU per request $us"
done
