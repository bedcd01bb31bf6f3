#!/usr/bin/env bash
# Single-row latency of every zoo model (scripts/zoo): vigil's runtime (tract with
# vigil's ONNX-ML operators, release build) against onnxruntime in process (one
# thread), side by side in one run: ROUNDS alternating rounds of each, medians.
# Issue 14's target: vigil within 2x of onnxruntime, and under 1 ms per row.
#
#   bench/zoo.sh [ROUNDS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
scripts/zoo target/zoo
cargo build --release -q -p vigil-model --example zoo_latency
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# RUST_BACKTRACE unset, as a service runs: with it set, an error tract makes and drops
# on every run captures a backtrace (about 9 µs per call here).
for r in $(seq 1 "$rounds"); do
  env -u RUST_BACKTRACE target/release/examples/zoo_latency target/zoo > "$work/vigil.$r.json"
  target/zoo-venv/bin/python bench/zoo_ort.py target/zoo > "$work/ort.$r.json"
done
echo "$(nproc) cores; $(date -u +%FT%TZ); $rounds alternating rounds, medians"
target/zoo-venv/bin/python - "$work" "$rounds" <<'PY'
import json, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
load = lambda side: [json.load(open(f"{work}/{side}.{r}.json")) for r in range(1, rounds + 1)]
v, o = load("vigil"), load("ort")
print(f"{'model':36} {'vigil µs':>9} {'ort µs':>9} {'vigil/ort':>9}")
worst = 0
for name in sorted(v[0]):
    a = statistics.median(x[name] for x in v) * 1e6
    b = statistics.median(x[name] for x in o) * 1e6
    worst = max(worst, a / b)
    print(f"{name:36} {a:9.1f} {b:9.1f} {a / b:9.2f}")
print(f"worst ratio {worst:.2f}")
PY
