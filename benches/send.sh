#!/usr/bin/env bash
# The sending benchmarks against the sandbox, as markdown tables:
#
#   1. throughput: lead_to_hubspot through the HubSpot kit (batch upserts of 100, no rate
#      limit) next to a load generator sending the same requests (the ceiling);
#   2. the same in a single sandbox, where the sandbox's e-mail lookup dominates;
#   3. pacing accuracy of the kit's `100 per 10s` against the sandbox's own limit (~35 s).
#
#   benches/send.sh                      # everything, about 2-3 minutes after the build
#   RECORDS=20000 ROUNDS=1 benches/send.sh
#
# Settings (environment): RECORDS (50000), SEGMENT (1000 leads per fresh sandbox),
# CONCURRENCY (1,4,8), ROUNDS (2), SINGLE (10000 leads in one sandbox; 0 skips it),
# PACED (320 paced requests).
set -euo pipefail
cd "$(dirname "$0")/.."

RECORDS=${RECORDS:-50000}
SEGMENT=${SEGMENT:-1000}
CONCURRENCY=${CONCURRENCY:-1,4,8}
ROUNDS=${ROUNDS:-2}
SINGLE=${SINGLE:-10000}
PACED=${PACED:-320}

cargo bench --no-run --bench send_throughput --bench send_pacing

echo "# Sending benchmarks"
echo
echo "- date: $(date -u +%Y-%m-%dT%H:%MZ); commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
echo "- $(rustc --version)"
echo
echo "## Throughput: $RECORDS leads, a fresh sandbox every $SEGMENT"
echo
cargo bench -q --bench send_throughput -- \
    --records "$RECORDS" --segment "$SEGMENT" --concurrency "$CONCURRENCY" --rounds "$ROUNDS"
if [ "$SINGLE" -gt 0 ]; then
    echo
    echo "## Throughput: $SINGLE leads in one sandbox"
    echo
    cargo bench -q --bench send_throughput -- --records "$SINGLE" --concurrency 4 --rounds 1
fi
echo
echo "## Pacing: $PACED creates, kit 100 per 10s, sandbox limit 100 per 10s"
echo
cargo bench -q --bench send_pacing -- --requests "$PACED"
