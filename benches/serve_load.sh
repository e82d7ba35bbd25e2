#!/usr/bin/env bash
# Load and fault benchmark of `rulebridge serve` (BENCHMARKS.md, "serve under load"):
# CLIENTS (16) concurrent clients for LOAD_SECONDS (30) against the release binary, one new
# Salesforce lead per request, the sandbox behind it; then the same load with serve killed
# (SIGKILL) after KILL_AFTER (5) s and restarted on the same port and state file, AFTER (5) s
# more; checks that every accepted record has exactly one outcome in the store and one lead
# at the fake, and that no lead was written twice. Exits 1 if a check fails.
#
#   benches/serve_load.sh
#   CLIENTS=32 LOAD_SECONDS=60 benches/serve_load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release -p rulebridge-cli
cargo bench -q --bench serve_load -- \
    --bin "$PWD/target/release/rulebridge" \
    --clients "${CLIENTS:-16}" --seconds "${LOAD_SECONDS:-30}" \
    --kill-after "${KILL_AFTER:-5}" --after-restart "${AFTER:-5}"
