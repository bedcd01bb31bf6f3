#!/usr/bin/env bash
# `vigil logs` against jq on the same file, in the same run: a level + route filter
# (WARN and above on /predict) over a log file of SIZE_MB (default 1024) made of
# realistic vigil lines (access lines of several routes and statuses, warnings,
# errors, lifecycle lines). Prints lines/s and MB/s of both, and checks that they
# select the same number of lines. Needs Debian's jq (installed if missing).
#
#   bench/logs.sh [SIZE_MB=1024]
set -euo pipefail
cd "$(dirname "$0")/.."
size_mb=${1:-1024}
command -v jq >/dev/null || apt-get install -y -qq jq >/dev/null
cargo build --release -q -p vigil
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
file="$work/vigil.log"

# 20,000 distinct lines, repeated up to the size (the content, not the order, is
# what a filter's speed depends on).
python3 - "$work/seed.log" <<'PY'
import json, random, sys
random.seed(7)
routes = ["/predict", "/models/{name}/predict", "/metrics", "/health/ready", "/models", "/admin/performance"]
out = open(sys.argv[1], "w")
for i in range(20000):
    t = f"2026-12-01T{10 + i // 3600 % 10:02d}:{i // 60 % 60:02d}:{i % 60:02d}.{i % 1000000:06d}Z"
    r = random.random()
    rid = f"{random.getrandbits(128):032x}"
    if r < 0.85:
        route = random.choice(routes)
        status = random.choices([200, 422, 404, 503, 500], [90, 5, 2, 2, 1])[0]
        level = "ERROR" if status >= 500 else ("WARN" if random.random() < 0.1 else "INFO")
        line = {"timestamp": t, "level": level, "target": "vigil::access", "message": "request_completed",
                "method": "POST" if "predict" in route else "GET", "path": route.replace("{name}", "digits"),
                "route": route, "status": status, "duration_ms": round(random.lognormvariate(0, 1), 3),
                "request_bytes": 65, "response_bytes": 320, "client_ip": "127.0.0.1", "user": random.choice(["anonymous", "ci", "ops"]),
                "service": "inference", "request_id": rid[:36], "trace_id": rid}
        if status >= 400:
            line["error_code"] = {422: "invalid_input", 404: "not_found", 503: "overloaded", 500: "internal"}[status]
    elif r < 0.95:
        line = {"timestamp": t, "level": "WARN", "target": "vigil::access", "message": "slow_request", "method": "POST",
                "route": "/predict", "status": 200, "duration_ms": 612.5, "threshold_ms": 500,
                "service": "inference", "request_id": rid[:36], "trace_id": rid}
    else:
        line = {"timestamp": t, "level": "INFO", "target": "vigil::forwarder", "message": "batch_sent", "records": 128,
                "service": "inference"}
    out.write(json.dumps(line, separators=(",", ":")) + "\n")
PY
seed_bytes=$(stat -c %s "$work/seed.log")
copies=$(( size_mb * 1024 * 1024 / seed_bytes + 1 ))
for _ in $(seq 1 "$copies"); do cat "$work/seed.log"; done > "$file"
bytes=$(stat -c %s "$file")
lines=$(wc -l < "$file")
cat "$file" > /dev/null   # into the page cache for both

timed() { local start end; start=$(date +%s.%N); "$@" > "$work/out"; end=$(date +%s.%N); echo "$end - $start" | bc; }
vigil_s=$(timed target/release/vigil logs --level warn --route /predict "$file")
vigil_n=$(wc -l < "$work/out")
jq_s=$(timed jq -c 'select((.level=="WARN" or .level=="ERROR") and .route=="/predict")' "$file")
jq_n=$(wc -l < "$work/out")
[ "$vigil_n" = "$jq_n" ] || { echo "vigil logs selected $vigil_n lines, jq $jq_n" >&2; exit 1; }

echo "file: $lines lines, $((bytes / 1024 / 1024)) MiB; $vigil_n selected; $(nproc) cores; $(date -u +%FT%TZ)"
for tool in vigil jq; do
  s=${tool}_s
  printf '%-6s %8.2f s  %10.0f lines/s  %7.1f MB/s\n' "$tool" "${!s}" \
    "$(echo "$lines / ${!s}" | bc -l)" "$(echo "$bytes / 1000000 / ${!s}" | bc -l)"
done
