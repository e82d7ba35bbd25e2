#!/usr/bin/env bash
# Dry-run throughput of `rulebridge run lead_to_hubspot --dry-run`, side by side with
#   floor  - benches/floor.rs: parse each NDJSON line into a serde_json::Value and write it back;
#   jq     - benches/lead_to_hubspot.jq, the same mapping by hand, in jq;
#   jaq    - the same program in jaq (installed under target/bench-tools when missing);
#   vrl    - benches/vrl-peer: the same mapping as a VRL program on the vrl crate (a workspace
#            member outside default-members, built here into target/vrl).
#
#   benches/dry_run.sh                 # 1,000,000 generated leads, 3 rounds
#   N=100000 ROUNDS=5 benches/dry_run.sh
#
# Every command reads the same file and writes to /dev/null. Rounds are interleaved (each
# round runs every command once, the order rotating), so a slow spell of the machine hits
# all of them. Prints a markdown table: min and median wall time, records/s, CPU time,
# peak RSS and the ratios (see BENCHMARKS.md). Needs python3, jq, and cargo.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-1000000}
ROUNDS=${ROUNDS:-3}
SAMPLE=${SAMPLE:-10000}
JAQ_VERSION=3.1.2
DATA=bench-data/leads-$N.ndjson
TOOLS=target/bench-tools

if [[ ! -s $DATA ]]; then
    echo "generating $N leads into $DATA" >&2
    python3 benches/gen_leads.py "$N" "$DATA"
fi

echo "building rulebridge and the floor (release)" >&2
cargo build --release --quiet --bin rulebridge
RULEBRIDGE=target/release/rulebridge
# The bench target's executable name carries a hash; ask cargo for it.
FLOOR=$(cargo build --release --quiet --bench floor --message-format=json |
    python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "floor" and m.get("executable"):
        print(m["executable"])')
[[ -x $FLOOR ]] || { echo "could not find the floor executable" >&2; exit 1; }
# Its own target directory: the vrl crate's dependencies stay apart from rulebridge's.
echo "building the VRL peer (release; the first build takes a while)" >&2
cargo build --release --quiet -p vrl-peer --target-dir target/vrl
VRL=target/vrl/release/vrl-peer

JQ=${JQ:-$(command -v jq || true)}
[[ -n $JQ ]] || { echo "jq is not installed (apt-get install jq)" >&2; exit 1; }
JAQ=${JAQ:-$(command -v jaq || true)}
if [[ -z $JAQ ]]; then
    JAQ=$TOOLS/bin/jaq
    if [[ ! -x $JAQ ]]; then
        echo "installing jaq $JAQ_VERSION into $TOOLS" >&2
        cargo install --quiet --locked jaq --version "$JAQ_VERSION" --root "$TOOLS"
    fi
fi

PROGRAM=benches/lead_to_hubspot.jq
COMMANDS=(
    rulebridge "$RULEBRIDGE run lead_to_hubspot --rules rules --input {input} --dry-run"
    floor "$FLOOR {input}"
    jq "$JQ -nc -f $PROGRAM {input}"
    jaq "$JAQ -nc -f $PROGRAM {input}"
    vrl "$VRL {input}"
)

echo >&2
echo "machine: $(nproc) cores, $(uname -sr); $("$JQ" --version), $("$JAQ" --version)" >&2
echo "input: $DATA ($N records, $(du -h "$DATA" | cut -f1))" >&2

# Correctness on a sample: one outcome per input line, in order, for every command.
SAMPLE_FILE=bench-data/sample-$SAMPLE.ndjson
head -n "$SAMPLE" "$DATA" >"$SAMPLE_FILE"
echo "checking outcomes on the first $SAMPLE records" >&2
python3 benches/side_by_side.py check "$SAMPLE_FILE" "${COMMANDS[@]}"

echo "timing $ROUNDS interleaved rounds" >&2
python3 benches/side_by_side.py time "$N" "$ROUNDS" "$DATA" "${COMMANDS[@]}"
