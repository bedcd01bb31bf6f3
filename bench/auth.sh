#!/usr/bin/env bash
# What API keys cost `/predict`: `vigil serve` open (no keys) against one with a
# `predict` key configured (every request hashed and checked; the keyed side sends its
# key), side by side in alternating rounds (bench/ab.sh).
#
#   bench/auth.sh [duration_seconds=5] [connections=32]     RUNS=8
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p vigil
config=$(mktemp --suffix=.toml)
trap 'rm -f "$config"' EXIT
# A key made by the real CLI; its [[keys]] entry (on stderr) becomes the config file.
key=$(target/release/vigil keys create --name bench --role predict --print-only 2>"$config.note")
sed -n '/^\[\[keys\]\]/,$p' "$config.note" >"$config"
rm -f "$config.note"
KEY_B=$key bench/ab.sh open "" keyed "--config $config" "$@"
