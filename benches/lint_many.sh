#!/usr/bin/env bash
# Lint time of many rule files: `rules/` plus COPIES renamed copies of every flow and policy
# in it (1,000 files by default), linted by the release binary; prints wall and CPU seconds
# of GNU time, the median of ROUNDS runs.
#
#   benches/lint_many.sh
#   FILES=5000 ROUNDS=3 benches/lint_many.sh
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=${FILES:-1000}
ROUNDS=${ROUNDS:-5}
BIN=${BIN:-target/release/rulebridge}
dir=$(mktemp -d)
cp -r rules/. "$dir/"
python3 - "$dir" "$FILES" <<'EOF'
import os, re, sys
root, want = sys.argv[1], int(sys.argv[2])
sources = []
for sub in ("flows", "policies"):
    for name in sorted(os.listdir(os.path.join(root, sub))):
        text = open(os.path.join(root, sub, name)).read()
        # Single-document files only: their one `name:` is the one renamed.
        if name.endswith(".yaml") and "\n---" not in text:
            sources.append((sub, text))
existing = sum(len(files) for _, _, files in os.walk(root))
n = 0
while existing + n < want:
    sub, text = sources[n % len(sources)]
    # A copy with its own name; flows keep using the original policy.
    copy = re.sub(r"^name: (\S+)", lambda m: f"name: {m.group(1)}_copy{n}", text, count=1, flags=re.M)
    open(os.path.join(root, sub, f"copy{n}.yaml"), "w").write(copy)
    n += 1
print(f"{existing + n} files in {root}", file=sys.stderr)
EOF
for _ in $(seq "$ROUNDS"); do
    /usr/bin/time -f "%e %U %S" -o "$dir/t" "$BIN" lint "$dir" >/dev/null 2>&1 || true
    tail -n 1 "$dir/t"
done | sort -n | awk '{a[NR]=$0} END {split(a[int((NR+1)/2)], m, " "); printf "median of %d: %s s wall, %.2f s CPU\n", NR, m[1], m[2]+m[3]}'
"$BIN" lint "$dir" 2>&1 | tail -n 1
rm -rf "$dir"
