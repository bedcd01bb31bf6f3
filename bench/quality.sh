#!/usr/bin/env bash
# `GET /quality` for every model at once over a long window, against `vigil collector`
# on SQLite: CARDS model cards (default 255) and PREDICTIONS predictions (default
# 300,000, spread over 8 of the models and the last 300 days), then ROUNDS alternating
# rounds of `GET /quality?window=366d` on this tree's release build and on BASE (another
# vigil binary), each on its own copy of the same database. Prints each round's seconds
# and the median per side.
#
#   BASE=<vigil binary> bench/quality.sh [rounds=5]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
rounds=${1:-5}
cards=${CARDS:-255}
predictions=${PREDICTIONS:-300000}
base=${BASE:?BASE=<a vigil binary to compare with>}
bin=${BIN:-target/release/vigil}
[ -n "${BIN:-}" ] || cargo build --release -q -p vigil
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT

# The database is made by BASE: the older build, as a rule, cannot open one that a
# newer build has migrated further.
"$base" collector --host 127.0.0.1 --port 9531 --data-dir "$work/a" >/dev/null 2>&1 &
pids+=($!)
up 9531
python3 - "$cards" "$predictions" <<'PY'
import json, sys, time, urllib.request
cards, n = int(sys.argv[1]), int(sys.argv[2])
def send(method, path, body):
    req = urllib.request.Request("http://127.0.0.1:9531" + path, json.dumps(body).encode(),
                                 {"content-type": "application/json"}, method=method)
    urllib.request.urlopen(req).read()
for c in range(cards):
    send("PUT", f"/models/m{c}", {"model": f"m{c}", "version": "1", "task": "classification",
                                  "labels": ["ok", "defect"]})
now = time.time()
for start in range(0, n, 1000):
    records = [{"prediction_id": f"q-{i}", "model": f"m{i % 8}", "model_version": "1",
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                           time.gmtime(now - (i / n) * 300 * 86400)),
                "label": "ok", "confidence": 0.9, "is_defect": False, "latency_ms": 1.0,
                "request_id": f"r-{i}", "status": "success"}
               for i in range(start, min(start + 1000, n))]
    send("POST", "/log", {"records": records})
print(f"{cards} cards, {n} predictions stored")
PY
kill "${pids[0]}"
wait "${pids[0]}" 2>/dev/null || true
pids=()
cp -r "$work/a" "$work/b"

"$bin" collector --host 127.0.0.1 --port 9531 --data-dir "$work/a" >/dev/null 2>&1 &
pids+=($!)
"$base" collector --host 127.0.0.1 --port 9532 --data-dir "$work/b" >/dev/null 2>&1 &
pids+=($!)
up 9531
up 9532
alive "${pids[@]}"
time_quality() {
  curl -s -o "$work/body" -w '%{time_total}\n' "http://127.0.0.1:$1/quality?window=366d"
  python3 -c 'import json,sys; m=json.load(open(sys.argv[1]))["models"]; assert len(m) == int(sys.argv[2]), len(m); print(sum(x["coverage"]["predicted"] for x in m))' "$work/body" "$cards" > "$work/predicted.$1"
}
for r in $(seq 1 "$rounds"); do
  this=$(time_quality 9531)
  other=$(time_quality 9532)
  echo "round $r: this ${this} s, base ${other} s (predicted counted: $(cat "$work/predicted.9531") / $(cat "$work/predicted.9532"))"
  echo "$this" >> "$work/this"
  echo "$other" >> "$work/base"
done
echo "median: this $(median < "$work/this") s, base $(median < "$work/base") s"
