#!/usr/bin/env bash
# Thread scaling of a dry run: one core (`taskset -c 0`, --threads 1) against two cores
# (`taskset -c 0,1`, --threads 2), in alternating pairs; prints wall and CPU seconds of each
# run, then the medians and the ratios (wall one ÷ wall two: the speed-up; CPU two ÷ CPU one:
# what using both cores costs). Each pair is followed by a control: two one-thread runs at once,
# one per core, as separate processes. Their CPU time against a one-core run alone is what
# the machine itself charges when both cores are busy (shared cache, the host's scheduling),
# so a two-thread run's CPU growth above that is the pipeline's own. Wall times depend on what
# else the machine runs: compare within one invocation, and quote the load average printed
# with it.
#
#   benches/scaling.sh                     # 200,000 leads, 5 pairs
#   N=1000000 PAIRS=3 benches/scaling.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-200000}
PAIRS=${PAIRS:-5}
FLOW=${FLOW:-lead_to_hubspot}
BIN=${BIN:-target/release/rulebridge}
DATA=bench-data/leads-$N.ndjson
[[ -s $DATA ]] || python3 benches/gen_leads.py "$N" "$DATA"
command -v taskset >/dev/null || { echo "taskset is not installed" >&2; exit 1; }
out=$(mktemp -d)
run() { # cores threads label
    /usr/bin/time -f "%e %U %S" -o "$out/t.$3" taskset -c "$1" \
        "$BIN" run "$FLOW" --rules rules --input "$DATA" --dry-run --threads "$2" >/dev/null 2>&1
    read -r wall user sys <"$out/t.$3"
    cpu=$(echo "$user + $sys" | bc)
    echo "$3 $wall $cpu" | tee -a "$out/all"
}
control() { # two one-thread processes at once, one per core
    run 0 1 control &
    run 1 1 control2
    wait
}
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
"$BIN" run "$FLOW" --rules rules --input "$DATA" --dry-run >/dev/null 2>&1 # warm the cache
for _ in $(seq "$PAIRS"); do
    run 0 1 one
    run 0,1 2 two
    control
done
python3 - "$out/all" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
med = lambda label, col: statistics.median(float(r[col]) for r in rows if r[0] == label)
w1, c1, w2, c2 = med("one", 1), med("one", 2), med("two", 1), med("two", 2)
print(f"median one core: {w1:.2f} s wall, {c1:.2f} s CPU; two cores: {w2:.2f} s wall, {c2:.2f} s CPU")
print(f"speed-up (wall one / wall two): {w1 / w2:.2f}; CPU two / CPU one: {c2 / c1:.2f}")
cc = statistics.median(float(r[2]) for r in rows if r[0].startswith("control"))
print(f"control (two one-thread processes at once): CPU {cc:.2f} s each, {cc / c1:.2f} x one alone")
EOF
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
rm -rf "$out"
