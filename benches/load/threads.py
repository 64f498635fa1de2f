#!/usr/bin/env python3
"""Which threads of a proxy wake up, and how often, per request: starts the fake upstream and
each target (as ab.py does), drives each at a fixed rate and reads every thread's context
switches and CPU time from /proc before and after. Threads are grouped by name (tokio and
Pingora name theirs; the kernel keeps 15 characters, so sqlx's SQLite workers show as
`sqlx-sqlite-wor`).

A voluntary switch is a thread going to sleep: each one is a wake-up someone paid for. The
gateway's extra kernel time over bare Pingora is mostly these (docs/benchmarks.md).

    python3 benches/load/threads.py [--targets gateway,pingora] [--base DIR] [--rate 2000]
                                    [--seconds 10] [--scenario json_30k] [--syscalls]

`--syscalls` also counts the system calls of each kind per request (`perf stat` on the
syscall tracepoints; needs perf and root). CCP_BENCH_BIN_DIR picks another build;
`gateway_base` is the build in --base.
"""

import collections
import re
import signal
import subprocess
from pathlib import Path

from ab import drive, fixed_rate_arguments
from rig import CLK_TCK, SCENARIOS, Rig, claude_code_body, split_targets


def threads_of(pids):
    """{thread name: [voluntary, involuntary, cpu seconds]} summed over the threads so named."""
    groups = collections.defaultdict(lambda: [0, 0, 0.0])
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                status = (task / "status").read_text()
                stat = (task / "stat").read_text()
            except (FileNotFoundError, ProcessLookupError):
                continue
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            # Numbered threads of one kind count as one group.
            name = re.sub(r"[-_ ]?\d+$", "", fields["Name"].strip()) or "?"
            ticks = stat.rsplit(")", 1)[1].split()
            group = groups[name]
            group[0] += int(fields["voluntary_ctxt_switches"])
            group[1] += int(fields["nonvoluntary_ctxt_switches"])
            group[2] += (int(ticks[11]) + int(ticks[12])) / CLK_TCK
    return groups


# The calls a proxy makes per request, and SQLite's file I/O.
SYSCALLS = ("sendto", "recvfrom", "write", "writev", "read", "futex", "epoll_wait", "getpeername", "pwrite64",
            "pread64", "fdatasync")


def count_syscalls(pid):
    """Starts counting `pid`'s system calls; the returned function stops and returns {name: count}."""
    events = ["raw_syscalls:sys_enter"] + [f"syscalls:sys_enter_{name}" for name in SYSCALLS]
    perf = subprocess.Popen(["perf", "stat", "-x", ",", "-e", ",".join(events), "-p", str(pid)],
                            stderr=subprocess.PIPE, text=True)

    def stop():
        perf.send_signal(signal.SIGINT)
        counts = {}
        for line in perf.communicate()[1].splitlines():
            fields = line.split(",")
            if len(fields) > 2 and fields[0].isdigit():
                counts[fields[2].rsplit("sys_enter_", 1)[-1].replace("raw_syscalls:sys_enter", "all")] = int(fields[0])
        return counts

    return stop


def main():
    ap = fixed_rate_arguments("gateway,pingora", seconds=10)
    ap.add_argument("--syscalls", action="store_true", help="count system calls per request too (perf, root)")
    args = ap.parse_args()

    with Rig() as rig:
        _, up_port = rig.upstream()
        body_file = rig.work / "body.json"
        body_file.write_bytes(claude_code_body(*SCENARIOS[args.scenario]))
        for name in split_targets(args.targets):
            target = rig.target(name, up_port, args.base)
            drive(target.url, body_file, 2, args.rate, args.connections)  # warm pools and caches
            stop = count_syscalls(target.pids()[0]) if args.syscalls else None
            before = threads_of(target.pids())
            ok, _, _ = drive(target.url, body_file, args.seconds, args.rate, args.connections)
            after = threads_of(target.pids())
            calls = stop() if stop else {}
            print(f"\n{name}: {ok} requests at {args.rate}/s ({args.scenario}), per request:")
            print(f"  {'thread':<28} {'wake-ups':>9} {'preempted':>9} {'CPU µs':>8}")
            totals = [0.0, 0.0, 0.0]
            rows = []
            for thread, (vol, invol, cpu) in after.items():
                was = before.get(thread, [0, 0, 0.0])
                row = [(vol - was[0]) / ok, (invol - was[1]) / ok, 1e6 * (cpu - was[2]) / ok]
                totals = [t + r for t, r in zip(totals, row)]
                rows.append((thread, row))
            for thread, (vol, invol, cpu_us) in sorted(rows, key=lambda r: -r[1][0]):
                if vol or invol or cpu_us:
                    print(f"  {thread:<28} {vol:>9.3f} {invol:>9.3f} {cpu_us:>8.1f}")
            print(f"  {'all':<28} {totals[0]:>9.3f} {totals[1]:>9.3f} {totals[2]:>8.1f}")
            if calls:
                print("  system calls per request: " + ", ".join(
                    f"{name} {n / ok:.3f}" for name, n in sorted(calls.items(), key=lambda c: -c[1]) if n))


if __name__ == "__main__":
    main()
