#!/usr/bin/env python3
"""Where a proxy's CPU goes under load: starts the fake upstream and one target (as bench.py
does), drives it with oha at a fixed number of connections, samples it with `perf record`
(no call graphs: the release build keeps symbols, not frame pointers) and prints the top
functions by self time, grouped by crate.

    python3 benches/load/profile.py [--target gateway] [--scenario json_30k] [--seconds 10] [--crate core]

Needs perf (Debian: linux-perf) and oha; CCP_BENCH_BIN_DIR picks another build.
"""

import argparse
import collections
import re
import subprocess
import sys
import time

from rig import SCENARIOS, Rig, claude_code_body


def crate_of(symbol, kernel):
    """The crate a demangled Rust symbol belongs to, or the library it came from."""
    if kernel:
        return "(kernel)"
    for prefix, name in (("sqlite3", "(sqlite)"), ("_rjem_", "(jemalloc)"), ("__mem", "(libc)")):
        if symbol.startswith(prefix):
            return name
    match = re.match(r"<?(?:&?(?:mut )?)?([a-z_][a-z0-9_]*)::", symbol)
    return match.group(1) if match else "(other)"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", default="gateway", help="gateway, gateway_nometer, gateway_nolog, gateway_bare, pingora or nginx")
    ap.add_argument("--scenario", default="json_30k", choices=SCENARIOS)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rate", type=int, default=3000, help="requests per second (fixed, so targets compare per request)")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--crate", action="append", default=[], metavar="NAME",
                    help="also list the top functions of this crate or library (e.g. core, '(other)'); repeatable")
    args = ap.parse_args()

    with Rig() as rig:
        _, up_port = rig.upstream()
        target = rig.target(args.target, up_port)
        body = rig.work / "body.json"
        body.write_bytes(claude_code_body(*SCENARIOS[args.scenario]))
        load = subprocess.Popen(["oha", "--no-tui", "-z", f"{args.seconds + 4}s", "-c", str(args.connections), "-m", "POST",
                                 "-q", str(args.rate),
                                 "-D", str(body), "-T", "application/json", target.url], stdout=subprocess.DEVNULL)
        time.sleep(2)
        data = rig.work / "perf.data"
        pids = ",".join(str(p) for p in target.pids())
        subprocess.run(["perf", "record", "-q", "-F", "1999", "-o", str(data), "-p", pids, "--", "sleep", str(args.seconds)],
                       check=True, stderr=subprocess.DEVNULL)
        load.wait()
        report = subprocess.run(["perf", "report", "-i", str(data), "--no-children", "--sort", "symbol", "--stdio",
                                 "--percent-limit", "0", "--show-total-period"], capture_output=True, text=True,
                                check=True).stdout
    total = re.search(r"Event count \(approx\.\): (\d+)", report)
    rows = []
    for line in report.splitlines():
        match = re.match(r"\s+([\d.]+)%\s+\d+\s+\[([.k])\]\s+(.*)", line)
        if match:
            rows.append((float(match.group(1)), match.group(3).strip(), match.group(2) == "k"))
    # cpu-clock samples count nanoseconds of CPU: per request at the fixed rate.
    ns_total = int(total.group(1)) if total else 0
    per_req_us = ns_total / 1e3 / (args.rate * args.seconds)
    if not rows:
        sys.exit("perf recorded nothing")
    print(f"{args.target}, {args.scenario}, {args.rate} req/s on {args.connections} connections: "
          f"{per_req_us:.1f} µs CPU per request sampled; top functions by self time (share, µs per request)")
    for pct, symbol, _ in rows[: args.top]:
        print(f"{pct:6.2f}%  {pct * per_req_us / 100:6.2f} µs  {symbol[:130]}")
    by_crate = collections.Counter()
    for pct, symbol, kernel in rows:
        by_crate[crate_of(symbol, kernel)] += pct
    print("\nby crate or library (every sampled function):")
    for crate, pct in by_crate.most_common(args.top):
        print(f"{pct:6.2f}%  {pct * per_req_us / 100:6.2f} µs  {crate}")
    for crate in args.crate:
        print(f"\ntop functions of {crate}:")
        for pct, symbol, _ in [r for r in rows if crate_of(r[1], r[2]) == crate][: args.top]:
            print(f"{pct:6.2f}%  {pct * per_req_us / 100:6.2f} µs  {symbol[:130]}")


if __name__ == "__main__":
    main()
