#!/usr/bin/env python3
"""Times NDJSON commands side by side, and checks their outcome counts. Used by dry_run.sh.

    side_by_side.py time RECORDS ROUNDS INPUT NAME 'COMMAND' [NAME 'COMMAND' ...]
    side_by_side.py check SAMPLE.ndjson NAME 'COMMAND' [NAME 'COMMAND' ...]

`time` runs every command once per round, in turn (the order rotates each round), with its
standard output going to /dev/null, and prints a markdown table: min and median wall time,
records/s at the median, CPU time (user + system) and peak RSS. Ratios are taken round by
round (both commands of a pair ran within the same minute) and their median is reported,
so that a machine that slows down for a while moves both sides of a ratio.

Wall time is a monotonic clock around each run. CPU time (user + system) and peak RSS are
the kernel's accounting of the finished command, read through GNU time (`/usr/bin/time -f
"%U %S %M"`); without it, from wait4(2) directly, whose peak RSS cannot read below this
Python process's own size.

`check` runs each command on a sample, counts the outcome lines (must equal the input's
non-blank lines), counts the statuses, and compares every command's lines with the first
command's (JSON-equal, key order aside, and byte for byte).

Commands are split like a shell splits words; the text `{input}` is replaced by the input
path. No shell is started, so the figures are those of the command itself.
"""

import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time


# Peak RSS from wait4(2) includes what the child's memory was before exec, i.e. this Python
# process's (~15 MB). GNU time is a small C program, so its figure is the command's own.
GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


def run(argv, stdout):
    """Runs argv to completion; returns (wall s, cpu s, peak RSS bytes, exit code, stderr)."""
    report = None
    if GNU_TIME:
        fd, report = tempfile.mkstemp(prefix="side_by_side.", suffix=".time")
        os.close(fd)
        argv = [GNU_TIME, "-q", "-f", "%U %S %M", "-o", report, *argv]
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.PIPE)
    # Read stderr while it runs (a summary line, or an error to show).
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    rss = usage.ru_maxrss * 1024
    if report:
        with open(report) as f:
            fields = f.read().split()
        os.unlink(report)
        # GNU time reports the command's exit status as its own.
        user, sys_, kib = fields[-3:]
        cpu, rss = float(user) + float(sys_), int(kib) * 1024
    return wall, cpu, rss, code, err.decode(errors="replace")


def commands(args, input_path):
    if len(args) % 2:
        sys.exit("expected NAME 'COMMAND' pairs")
    out = []
    for name, cmd in zip(args[0::2], args[1::2]):
        out.append((name, [a.replace("{input}", input_path) for a in shlex.split(cmd)]))
    return out


def fmt_rate(x):
    return f"{x:,.0f}"


def time_cmd(records, rounds, input_path, args):
    cmds = commands(args, input_path)
    results = {name: [] for name, _ in cmds}
    devnull = open(os.devnull, "wb")
    for r in range(rounds):
        order = cmds[r % len(cmds):] + cmds[: r % len(cmds)]
        for name, argv in order:
            wall, cpu, rss, code, err = run(argv, devnull)
            # rulebridge exits 1 when records failed (the duplicates); anything else is an error.
            if code not in (0, 1) or (code == 1 and name != "rulebridge"):
                sys.exit(f"{name} failed with exit code {code}: {' '.join(argv)}\n{err}")
            results[name].append((wall, cpu, rss))
            print(f"  round {r + 1}/{rounds}  {name:<10} {wall:8.2f} s wall  {cpu:8.2f} s cpu  "
                  f"{rss / 2**20:7.1f} MiB peak", file=sys.stderr, flush=True)

    def med(name, i):
        return statistics.median(x[i] for x in results[name])

    def ratio(a, b, i=0):
        """Median over rounds of a/b (wall when i == 0, cpu when i == 1)."""
        return statistics.median(x[i] / y[i] for x, y in zip(results[a], results[b]))

    base = "rulebridge"
    print(f"| command | min wall s | median wall s | records/s (median) | median CPU s | peak RSS MiB (max) | ratio (wall) | ratio (CPU) |")
    print(f"|---|---:|---:|---:|---:|---:|---|---|")
    for name, _ in cmds:
        walls = [x[0] for x in results[name]]
        if name == base:
            rw = rc = "—"
        elif name == "floor":
            rw = f"rulebridge/floor = {ratio(base, name):.2f}"
            rc = f"rulebridge/floor = {ratio(base, name, 1):.2f}"
        else:
            rw = f"{name}/rulebridge = {ratio(name, base):.1f}"
            rc = f"{name}/rulebridge = {ratio(name, base, 1):.1f}"
        print(f"| {name} | {min(walls):.2f} | {statistics.median(walls):.2f} | "
              f"{fmt_rate(records / statistics.median(walls))} | {med(name, 1):.2f} | "
              f"{max(x[2] for x in results[name]) / 2**20:.1f} | {rw} | {rc} |")


def check_cmd(sample, args):
    with open(sample, "rb") as f:
        expected = sum(1 for line in f if line.strip())
    cmds = commands(args, sample)
    outputs = {}
    ok = True
    for name, argv in cmds:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True)
        if proc.returncode not in (0, 1) or (proc.returncode == 1 and name != "rulebridge"):
            sys.exit(f"{name} failed with exit code {proc.returncode}:\n{proc.stderr.decode(errors='replace')}")
        lines = proc.stdout.decode().splitlines()
        outputs[name] = lines
        statuses = {}
        for i, line in enumerate(lines):
            o = json.loads(line)
            if name != "floor":
                if o.get("index") != i:
                    print(f"{name}: line {i} has index {o.get('index')}", file=sys.stderr)
                    ok = False
                    break
                statuses[o["status"]] = statuses.get(o["status"], 0) + 1
        good = len(lines) == expected
        ok &= good
        detail = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
        print(f"  {name:<10} {len(lines)} outcome lines for {expected} records"
              f"{' (' + detail + ')' if detail else ''}: {'ok' if good else 'MISMATCH'}",
              file=sys.stderr)
    first = cmds[0][0]
    for name, _ in cmds[1:]:
        if name == "floor":
            continue
        pairs = list(zip(outputs[first], outputs[name]))
        same = sum(a == b for a, b in pairs)
        # JSON-equal: the same values, key order aside (VRL's objects are sorted by key).
        equal = sum(json.loads(a) == json.loads(b) for a, b in pairs)
        print(f"  {name:<10} {equal} of {expected} lines JSON-equal to {first}'s"
              f" ({same} byte-identical)", file=sys.stderr)
    if not ok:
        sys.exit("outcome counts do not match the input")


def main(argv):
    if len(argv) >= 5 and argv[1] == "time":
        records, rounds, input_path = int(argv[2]), int(argv[3]), argv[4]
        time_cmd(records, rounds, input_path, argv[5:])
    elif len(argv) >= 3 and argv[1] == "check":
        check_cmd(argv[2], argv[3:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
