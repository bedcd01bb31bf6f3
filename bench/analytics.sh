#!/usr/bin/env bash
# What request analytics (`/admin/performance`, `/admin/usage`) cost `/predict`: the
# same build with `--analytics false` and `--analytics true`, side by side in
# alternating rounds (bench/ab.sh).
#
#   bench/analytics.sh [duration_seconds=5] [connections=32]     RUNS=8
set -euo pipefail
cd "$(dirname "$0")/.."
exec bench/ab.sh analytics-off "--analytics false" analytics-on "--analytics true" "$@"
