#!/usr/bin/env bash
# The chaos test at scale: RECORDS (100000) Salesforce leads through the release binary with
# 20% sandbox faults (5xx, connections dropped before and after processing, slow responses),
# the process killed with SIGKILL KILLS (10) times and restarted; prints the figures line
# (duplicates, missing, requests, faults) that BENCHMARKS.md quotes.
#
#   benches/chaos.sh
#   RECORDS=20000 KILLS=5 benches/chaos.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CHAOS_RECORDS=${RECORDS:-100000} CHAOS_KILLS=${KILLS:-10} \
    cargo test --release -q -p rulebridge-cli --test state_runs killed -- --nocapture 2>&1 |
    grep -E "^(kill|chaos|run |test result|thread .* panicked|  left|  right)"
