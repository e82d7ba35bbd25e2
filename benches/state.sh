#!/usr/bin/env bash
# What the state store costs a send, and what it saves a re-run, as markdown tables.
#
#   1. RECORDS (20000) new leads through lead_to_hubspot (the kit without its rate limit, the
#      sandbox's limit out of reach), ROUNDS (3) alternating rounds of: no store, an SQLite
#      file, a PostgreSQL database (when .ci/postgres can start one). Whole-process wall and
#      CPU times; the ratio is to the run without a store in the same round.
#   2. RERUN (100000) leads sent once, then again unchanged: wall time, CPU time and the
#      requests the sandbox saw, for each.
#
#   With LIMITED=1 the kit keeps HubSpot's own limit (100 requests per 10 s), so the sends
#   run at the pace a real portal allows and the table shows what the store costs then.
#
#   KEYS=random (the default) gives the leads e-mails in no particular order, as real ones
#   come, so each record's ledger, id-map and changelog rows land on pages of their own;
#   KEYS=sequential numbers them in order (neighbouring records share pages), as the
#   figures before 2026-12-04 were measured.
#
#   benches/state.sh
#   RECORDS=5000 ROUNDS=1 RERUN=20000 benches/state.sh
#   LIMITED=1 RECORDS=30000 RERUN=0 benches/state.sh
#   BIN=/tmp/other/rulebridge KEYS=sequential benches/state.sh
set -euo pipefail
cd "$(dirname "$0")/.."

RECORDS=${RECORDS:-20000}
ROUNDS=${ROUNDS:-3}
RERUN=${RERUN:-100000}
LIMITED=${LIMITED:-0}
KEYS=${KEYS:-random}

# BIN=/path/to/rulebridge measures another build (nothing is built then).
if [ -z "${BIN:-}" ]; then
    cargo build -q --release -p rulebridge-cli
    BIN=$PWD/target/release/rulebridge
fi
WORK=$(mktemp -d)
trap 'kill "$SANDBOX_PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT

# The sandbox as its own process, so every run meets the same one.
"$BIN" sandbox --port 0 --rate-limit-factor 1000000 >"$WORK/sandbox.out" 2>&1 &
SANDBOX_PID=$!
for _ in $(seq 100); do
    grep -q "listening on" "$WORK/sandbox.out" 2>/dev/null && break
    sleep 0.1
done
URL=$(sed -n 's/^sandbox listening on //p' "$WORK/sandbox.out" | head -1)
export HUBSPOT_TOKEN=sandbox-hubspot-token RULEBRIDGE_BASE_URL_HUBSPOT="$URL/hubspot"

cp -r rules "$WORK/rules"
rm -rf "$WORK/rules/.fields"
if [ "$LIMITED" != 1 ]; then
    sed -i '/^rate_limit:/d' "$WORK/rules/providers/hubspot.yaml"
fi
"$BIN" fields hubspot contact --create-missing --rules "$WORK/rules" >/dev/null

PG=""
if PG_SERVER=$(.ci/postgres 2>/dev/null); then
    PG=$PG_SERVER
fi

# leads PREFIX N FILE: N leads with distinct e-mails under PREFIX.
leads() {
    python3 - "$1" "$2" "$3" "$KEYS" <<'PY'
import hashlib, json, sys
prefix, n, path, keys = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
def local(i):
    if keys == "sequential":
        return f"{prefix}.{i}"
    return f"{hashlib.sha1(f'{prefix}.{i}'.encode()).hexdigest()[:10]}.{prefix}.{i}"
with open(path, "w") as f:
    for i in range(n):
        f.write(json.dumps({
            "email": f"{local(i)}@example.com", "name": f"Lead{i} Person{i}",
            "company": f"Company {i % 97}", "phone": f"+1415555{i % 10000:04d}",
            "country": "US", "score": (i * 7) % 100, "source": "web",
        }) + "\n")
PY
}

requests() {
    curl -s "$URL/_sandbox/state" | python3 -c 'import json,sys; print(json.load(sys.stdin)["providers"]["hubspot"]["requests"])'
}

# timed LABEL ARGS...: runs a send, prints "wall cpu" seconds.
timed() {
    /usr/bin/time -f "%e %U %S" -o "$WORK/time" "$BIN" run lead_to_hubspot --rules "$WORK/rules" "$@" \
        >/dev/null 2>"$WORK/stderr" || { cat "$WORK/stderr" >&2; exit 1; }
    awk '{ printf "%.2f %.2f\n", $1, $2 + $3 }' "$WORK/time"
}

echo "# State store benchmarks"
echo
echo "- date: $(date -u +%Y-%m-%dT%H:%MZ); commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "- machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); keys: $KEYS"
echo
limit="the kit's rate limit removed"
[ "$LIMITED" = 1 ] && limit="HubSpot's rate limit kept (100 requests per 10 s)"
echo "## Send throughput: $RECORDS new leads, $ROUNDS rounds, $limit"
echo
echo "| round | store | wall s | CPU s | records/s | wall ÷ no store | CPU ÷ no store |"
echo "|---:|---|---:|---:|---:|---:|---:|"
for r in $(seq "$ROUNDS"); do
    modes="none sqlite"
    [ -n "$PG" ] && modes="$modes postgres"
    base_wall=""
    base_cpu=""
    for m in $modes; do
        leads "r$r-$m" "$RECORDS" "$WORK/in.ndjson"
        case $m in
            none) read -r wall cpu < <(timed --input "$WORK/in.ndjson" --no-state) ;;
            sqlite) read -r wall cpu < <(timed --input "$WORK/in.ndjson" --state "$WORK/r$r.db") ;;
            postgres)
                db="rb_bench_${r}_$$"
                psql -q "$PG" -c "CREATE DATABASE $db" >/dev/null
                read -r wall cpu < <(timed --input "$WORK/in.ndjson" --state "${PG%/*}/$db")
                ;;
        esac
        if [ "$m" = none ]; then
            base_wall=$wall
            base_cpu=$cpu
        fi
        awk -v r="$r" -v m="$m" -v w="$wall" -v c="$cpu" -v n="$RECORDS" -v bw="$base_wall" -v bc="$base_cpu" \
            'BEGIN { printf "| %s | %s | %.2f | %.2f | %.0f | %.2f | %.2f |\n", r, m, w, c, n / w, w / bw, c / bc }'
    done
done

[ "$RERUN" -gt 0 ] || exit 0
echo
echo "## Re-run: $RERUN leads, then the same $RERUN unchanged (SQLite)"
echo
echo "| run | wall s | CPU s | requests | outcome |"
echo "|---|---:|---:|---:|---|"
leads "rerun" "$RERUN" "$WORK/rerun.ndjson"
for run in first second; do
    before=$(requests)
    read -r wall cpu < <(timed --input "$WORK/rerun.ndjson" --state "$WORK/rerun.db")
    after=$(requests)
    echo "| $run | $wall | $cpu | $((after - before)) | $(tail -1 "$WORK/stderr") |"
    eval "${run}_wall=$wall"
done
awk -v a="$first_wall" -v b="$second_wall" 'BEGIN { printf "\nThe unchanged re-run takes %.3f of the first run'"'"'s wall time (%.1f× faster).\n", b / a, a / b }'
