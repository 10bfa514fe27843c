#!/usr/bin/env bash
# doorstep against the automerge-repo reference sync server, the same reconnect storm one after
# the other on this machine (docs/perf.md, "Against the automerge-repo reference server"):
#
#   bench/automerge-repo/compare.sh [PHONES…]     (default: 100 300)
#
# Needs node and npm (README's prerequisites) and cargo. Writes target/bench/storm.json,
# target/bench/automerge-repo-storm.json and target/bench/storm-compare.json.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --silent
cd ../..
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(100 300)
cargo build -q --release -p doorstep-server --bins --examples
echo "== doorstep"
target/release/examples/bench_storm "${sizes[@]}"
echo "== automerge-repo reference sync server"
node bench/automerge-repo/storm.mjs "${sizes[@]}"
node bench/automerge-repo/compare.mjs target/bench/storm.json target/bench/automerge-repo-storm.json
