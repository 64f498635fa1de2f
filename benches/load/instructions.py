#!/usr/bin/env python3
"""Instructions per request, target by target, and the functions that execute them: runs each
target under valgrind's callgrind, warms it up, zeroes the counts, sends a fixed number of
requests at a fixed rate and divides the instructions counted by the requests.

    python3 benches/load/instructions.py [--targets pingora,gateway_bare,gateway] [--base DIR]
                                         [--scenario json_30k] [--requests 1000] [--top 25]

Unlike CPU time, an instruction count does not move with what else the machine is doing: the
same build, inputs and rate give the same count (within a few tenths of a per cent), so a
change worth 1 % can be measured on a busy 2-core machine where `ab.py`'s spread is ±10 %.
It counts user-space work only: system calls, the kernel's TCP work, cache misses and waiting
are not in it, so a change in instructions is checked in time afterwards (`ab.py`, criterion).

Targets: bare Pingora (`pingora`), the gateway variants of rig.py (`gateway`, `gateway_bare`,
`gateway_nolog`, `gateway_nometer`), and `gateway_base` (the build in --base). The binaries come
from target/release (or CCP_BENCH_BIN_DIR). At this script's low rate the metering writer
writes on its 1 s tick, so its batches are smaller than under load and a metering row costs
more than at saturation (`metering_write_bench` measures batch sizes). Needs valgrind and oha.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import rig  # noqa: E402


ENTRY_FRAMES = re.compile(r"^(clone|start_thread|std::sys::backtrace::|<std::sys::thread::|core::ops::function::FnOnce::call_once\{\{vtable\.shim\}\}"
                          r"|tokio::runtime::(task|blocking)::)")


def under_callgrind(bin_dir, work):
    """The binary layout of `bin_dir` with the measured programs under callgrind, which
    writes its counts to `work`/cg.<pid>.<n> on each dump."""
    def script(real):
        return (f'exec valgrind --tool=callgrind --callgrind-out-file={work}/cg.%p {real} "$@" '
                f"2>>{work}/valgrind.log\n")
    return rig.wrapped_bin_dir(bin_dir, work, script)


def self_costs(dump):
    """Instructions by function (self cost) in a callgrind dump, and the dump's total."""
    out = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100", str(dump)],
                         capture_output=True, text=True, check=True).stdout
    total = int(re.search(r"([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS", out).group(1).replace(",", ""))
    costs = {}
    for line in out.splitlines():
        match = re.match(r"\s*([\d,]+) \([\d. ]+%\)\s+(?:\S*?:)?(.*?) \[(.*)\]$", line)
        if match:
            name = re.sub(r"'\d+$", "", match.group(2))  # callgrind's recursion marks
            costs[name] = costs.get(name, 0) + int(match.group(1).replace(",", ""))
    # Thread entry frames (clone, std's thread start, the runtimes' task polls) come out with
    # their callees' costs whatever the option says: left out.
    return total, {k: v for k, v in costs.items() if not ENTRY_FRAMES.match(k)}


def measure(name, base, scenario, requests, rate, work):
    with rig.Rig() as r:
        _, up_port = r.upstream()
        target = r.target(name, up_port, base)
        body = r.work / "body.json"
        body.write_bytes(rig.claude_code_body(*rig.SCENARIOS[scenario]))

        def load(n):
            subprocess.run(["oha", "--no-tui", "-n", str(n), "-c", "4", "-q", str(rate), "-m", "POST",
                            "-D", str(body), "-T", "application/json", target.url],
                           stdout=subprocess.DEVNULL, check=True)

        load(max(requests // 3, 100))
        pid = target.pids()[0]
        subprocess.run(["callgrind_control", "-z", str(pid)], check=True, stdout=subprocess.DEVNULL)
        load(requests)
        time.sleep(1.5)  # the metering writer's tick: the rows of these requests are written
        subprocess.run(["callgrind_control", "-d", str(pid)], check=True, stdout=subprocess.DEVNULL)
        dumps = sorted(work.glob(f"cg.{pid}.*"), key=lambda p: p.stat().st_mtime)
        for _ in range(50):
            if dumps and dumps[-1].stat().st_size > 0:
                break
            time.sleep(0.2)
            dumps = sorted(work.glob(f"cg.{pid}.*"), key=lambda p: p.stat().st_mtime)
        if not dumps:
            raise SystemExit(f"{name}: callgrind wrote no counts (see {work}/valgrind.log)")
        return self_costs(dumps[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--targets", default="pingora,gateway_bare,gateway")
    ap.add_argument("--base", type=Path, help="another build's directory, for the gateway_base target")
    ap.add_argument("--scenario", default="json_30k", choices=rig.SCENARIOS)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--rate", type=int, default=100, help="requests per second (valgrind runs programs ~50x slower)")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    for tool in ("valgrind", "callgrind_control", "oha"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not installed")
    work = Path(tempfile.mkdtemp(prefix="ccp-instructions-"))
    try:
        rig.STARTUP_SECS = 180
        rig.RELEASE = under_callgrind(rig.RELEASE.resolve(), work / "this")
        base = under_callgrind(args.base.resolve(), work / "base") if args.base else None
        results = {}
        for name in args.targets.split(","):
            total, costs = measure(name, base, args.scenario, args.requests, args.rate, work / ("base" if name == "gateway_base" else "this"))
            results[name] = (total / args.requests, {k: v / args.requests for k, v in costs.items()})
            print(f"{name}: {total / args.requests / 1e3:.1f} k instructions per request", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    names = list(results)
    first = names[0]
    print(f"\ninstructions per request, {args.scenario} ({args.requests} requests at {args.rate} req/s, counted after a warm-up)")
    print("| target | k instructions per request | against " + first + " |")
    print("|---|---|---|")
    for name in names:
        per, _ = results[name]
        print(f"| {name} | {per / 1e3:.1f} | {per / results[first][0]:.3f} |")
    for name in names[1:]:
        theirs, ours = results[first][1], results[name][1]
        diff = {k: ours.get(k, 0) - theirs.get(k, 0) for k in set(ours) | set(theirs)}
        print(f"\n{name} against {first}: functions by self instructions per request (difference, {first}, {name})")
        for k in sorted(diff, key=lambda k: -abs(diff[k]))[: args.top]:
            print(f"  {diff[k]:+9.0f} {theirs.get(k, 0):9.0f} {ours.get(k, 0):9.0f}  {k[:120]}")


if __name__ == "__main__":
    main()
