#!/usr/bin/env bash
# Instructions per record of a dry run, start-up excluded: callgrind's total on N records
# minus its total on 1 record, divided by N-1. Instruction counts do not depend on the
# machine's load (wall times here do).
#
#   benches/callgrind.sh                        # target/release/rulebridge, lead_to_hubspot
#   BIN=/path/to/other/rulebridge benches/callgrind.sh   # the same for another build
#   N=20000 FLOW=lead_to_hubspot RULES=rules benches/callgrind.sh
#   CMD='target/vrl/release/vrl-peer {input}' benches/callgrind.sh   # any peer ({input}: the file)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20000}
FLOW=${FLOW:-lead_to_hubspot}
RULES=${RULES:-rules}
BIN=${BIN:-target/release/rulebridge}
DATA=bench-data/leads-$N.ndjson
ONE=bench-data/leads-1.ndjson
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
[[ -s $DATA ]] || python3 benches/gen_leads.py "$N" "$DATA"
head -n 1 "$DATA" > "$ONE"
out=$(mktemp -d)
CMD=${CMD:-"$BIN run $FLOW --rules $RULES --input {input} --dry-run"}
count() {
    # shellcheck disable=SC2086 # the command is split into words on purpose
    valgrind --tool=callgrind --callgrind-out-file="$out/cg.$2" \
        ${CMD//\{input\}/$1} >/dev/null 2>"$out/log.$2" || true
    grep -m1 '^summary:\|^totals:' "$out/cg.$2" | awk '{print $2}'
}
many=$(count "$DATA" many)
one=$(count "$ONE" one)
echo "${CMD%% *}: $many instructions on $N records, $one on 1: $(( (many - one) / (N - 1) )) per record"
rm -rf "$out"
