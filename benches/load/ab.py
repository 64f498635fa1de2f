#!/usr/bin/env python3
"""One change, measured against the noise: CPU per request and latency (p50, p99) of two or more
builds (or settings) at the same fixed rate, in alternating rounds, reported as the median and
the spread of each.

On a shared 2-core machine a single max-throughput run moves by ±15 % from one minute to the
next, more than most single changes are worth. A fixed rate keeps the work per second equal;
alternating the targets round by round spreads the machine's slow minutes over all of them.

    python3 benches/load/ab.py --base /path/to/other/build [--rounds 5] [--rate 2000]
                               [--scenario json_30k] [--targets gateway,gateway_base,pingora]

Targets: `gateway` (this tree's build, or CCP_BENCH_BIN_DIR), `gateway_base` (the build in
--base), `gateway_nolog`, `gateway_nometer`, `gateway_bare`, `gateway_armed` (the key has a Bedrock
key), `pingora` (bare Pingora),
`pingora:OPTIONS` (bare Pingora with options, e.g. `pingora:--no-timeouts`), `nginx`.
"""

import argparse
import json
import statistics
import subprocess
import time

from rig import SCENARIOS, Rig, claude_code_body, proc_cpu_seconds, split_targets


def drive(url, body_file, seconds, rate, connections):
    """Runs oha at a fixed rate; returns the number of 200 answers and the p50 and p99 latency (ms)."""
    out = subprocess.run(["oha", "--no-tui", "--output-format", "json", "-z", f"{seconds}s", "-c", str(connections),
                          "-q", str(rate), "-m", "POST", "-D", str(body_file), "-T", "application/json", url],
                         capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    report = json.loads(out)
    percentiles = report.get("latencyPercentiles") or {}
    p50, p99 = (1000 * (percentiles.get(p) or 0.0) for p in ("p50", "p99"))
    return int(report.get("statusCodeDistribution", {}).get("200", 0)), p50, p99


def fixed_rate_arguments(targets, seconds):
    """The options of a fixed-rate comparison (this script and threads.py)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", help="a directory with another build's ccp-gateway and ccp-admin")
    ap.add_argument("--targets", default=targets)
    ap.add_argument("--scenario", default="json_30k", choices=SCENARIOS)
    ap.add_argument("--seconds", type=int, default=seconds)
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--connections", type=int, default=16)
    return ap


def main():
    ap = fixed_rate_arguments("gateway,gateway_base,pingora", seconds=8)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()

    with Rig() as rig:
        _, up_port = rig.upstream()
        names = split_targets(args.targets)
        targets = [rig.target(n, up_port, args.base) for n in names]
        body_file = rig.work / "body.json"
        body_file.write_bytes(claude_code_body(*SCENARIOS[args.scenario]))
        for target in targets:  # warm pools and caches
            drive(target.url, body_file, 2, args.rate, args.connections)
        cpu_us = {t.name: [] for t in targets}
        p50_ms = {t.name: [] for t in targets}
        p99_ms = {t.name: [] for t in targets}
        for round_no in range(args.rounds):
            # Alternate the order too, so no target always runs right after the same other one.
            order = targets if round_no % 2 == 0 else list(reversed(targets))
            for target in order:
                before = proc_cpu_seconds(target.pids())
                ok, p50, p99 = drive(target.url, body_file, args.seconds, args.rate, args.connections)
                used = proc_cpu_seconds(target.pids()) - before
                cpu_us[target.name].append(used * 1e6 / max(ok, 1))
                p50_ms[target.name].append(p50)
                p99_ms[target.name].append(p99)
            print(f"round {round_no + 1}: " + "  ".join(
                f"{n} {v[-1]:.1f} µs, p99 {p99_ms[n][-1]:.2f} ms" for n, v in cpu_us.items()), flush=True)
            time.sleep(1)

    print(f"\n{args.scenario}, {args.rate} req/s on {args.connections} connections, {args.rounds} rounds of "
          f"{args.seconds} s (medians; min–max)")
    print("| target | CPU µs per request | p50 ms | p99 ms |\n|---|---|---|---|")

    def spread(values, form):
        return f"{statistics.median(values):{form}} ({min(values):{form}}–{max(values):{form}})"

    for name in cpu_us:
        print(f"| {name} | {spread(cpu_us[name], '.1f')} | {spread(p50_ms[name], '.3f')} | {spread(p99_ms[name], '.2f')} |")
    first = statistics.median(cpu_us[names[0]])
    for name in names[1:]:
        print(f"{names[0]} / {name}: CPU {first / statistics.median(cpu_us[name]):.3f}")


if __name__ == "__main__":
    main()
