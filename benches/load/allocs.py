#!/usr/bin/env python3
"""Heap allocations per request, target by target, and the code that makes them: runs each
target under heaptrack twice for the same time at two fixed rates, and divides the difference
in allocation calls by the difference in requests (so start-up and timer work cancel out).

    python3 benches/load/allocs.py --bin-dir DIR [--targets gateway,pingora] [--scenario json_30k]
                                   [--rates 200,1000] [--seconds 10] [--top 25]

heaptrack sees only the C library's allocator, so DIR must hold a build with the system
allocator: `cargo build --release -p ccp-gateway --no-default-features --bin ccp-gateway
--example bare_pingora`, with `ccp-admin` and `ccp-fake-upstream` copied beside it (the
layout of target/release). Needs heaptrack (Debian: heaptrack) and oha; rustfilt, when on
PATH, demangles the sites.
"""

import argparse
import collections
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Frames that only pass an allocation on; a site is the innermost frame that is none of these.
PASS_ON = re.compile(
    r"^(<?(alloc|core|std|bytes|hashbrown|smallvec)::|<(alloc|core|std|bytes|hashbrown|smallvec)::|"
    r"<T as (alloc|core)|<\[|<&|<str as|<String|<Vec|__rust|malloc|realloc|calloc|operator new|0x)"
)
# The escapes of Rust's legacy symbol mangling that heaptrack leaves in place.
ESCAPES = {"$LT$": "<", "$GT$": ">", "$u20$": " ", "$RF$": "&", "$C$": ",", "$u7b$": "{", "$u7d$": "}", "$BP$": "*", "..": "::"}
def wrapper_dir(rig_mod, bin_dir, work):
    """The binary layout with the measured programs under heaptrack. Each wrapper stops its
    program with SIGKILL (heaptrack then closes its file: bare Pingora's graceful shutdown
    would outlast the rig's wait); lost are the last few events only."""
    def script(real):
        if b"_rjem_malloc" in real.read_bytes():
            raise SystemExit(f"{real} is built with jemalloc, which heaptrack cannot see: build it with --no-default-features")
        return f"""heaptrack -o {work}/heap-{real.name}-$$ {real} "$@" > /dev/null &
trap 'pkill -KILL -f "^{real}"; wait $!; exit 0' TERM INT
wait $!
"""
    return rig_mod.wrapped_bin_dir(bin_dir, work, script)


def heap_file(work, before):
    """The newest heaptrack file written since `before` (a set of names)."""
    for _ in range(100):
        new = [p for p in work.glob("heap-*.zst") if p.name not in before and p.stat().st_size > 0]
        if new:
            time.sleep(0.5)  # heaptrack may still be finishing it
            return max(new, key=lambda p: p.stat().st_mtime)
        time.sleep(0.2)
    raise SystemExit("heaptrack wrote no file")


def one_run(rig_mod, target_name, rate, seconds, scenario, work):
    before = {p.name for p in work.glob("heap-*.zst")}
    with rig_mod.Rig() as rig:
        _, up_port = rig.upstream()
        target = rig.target(target_name, up_port)
        body = rig.work / "body.json"
        body.write_bytes(rig_mod.claude_code_body(*rig_mod.SCENARIOS[scenario]))
        time.sleep(1)
        out = subprocess.run(["oha", "--no-tui", "-z", f"{seconds}s", "-c", "8", "-m", "POST", "-q", str(rate),
                              "-D", str(body), "-T", "application/json", "--output-format", "json", target.url],
                             capture_output=True, text=True, check=True)
        codes = json.loads(out.stdout)["statusCodeDistribution"]
        if set(codes) != {"200"}:
            raise SystemExit(f"{target_name}: not every answer was 200: {codes}")
    return sum(codes.values()), heap_file(work, before)


def calls(path):
    out = subprocess.run(["heaptrack_print", "-f", str(path), "-p", "0", "-a", "0", "-T", "0"],
                         capture_output=True, text=True, check=True).stdout
    return int(re.search(r"calls to allocation functions: (\d+)", out).group(1))


def sites(later, earlier):
    """Allocation calls by site, `later` minus `earlier`."""
    stacks = subprocess.run(["heaptrack_print", "-f", str(later), "-d", str(earlier), "-p", "0", "-a", "0", "-T", "0",
                             "--flamegraph-cost-type", "allocations", "-F", "/dev/stdout"],
                            capture_output=True, text=True, check=True).stdout
    if shutil.which("rustfilt"):
        stacks = subprocess.run(["rustfilt"], input=stacks, capture_output=True, text=True, check=True).stdout
    counts = collections.Counter()
    for line in stacks.splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.lstrip("-").isdigit():
            continue
        frames = [re.sub(r" \(.*?\)$", "", f) for f in stack.split(";")]
        site = next((f for f in reversed(frames) if f and not PASS_ON.search(f) and "RawVec" not in f), frames[-1])
        site = re.sub(r"::h[0-9a-f]{16}$", "", site)
        for escaped, plain in ESCAPES.items():
            site = site.replace(escaped, plain)
        counts[site.removeprefix("_")[:140]] += int(n)
    return counts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin-dir", required=True, type=Path, help="a build with the system allocator")
    ap.add_argument("--targets", default="gateway,pingora", help="gateway variants (rig.py) and/or pingora")
    ap.add_argument("--scenario", default="json_30k")
    ap.add_argument("--rates", default="200,1000", help="two fixed rates, requests per second")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    low, high = (int(r) for r in args.rates.split(","))
    work = Path(tempfile.mkdtemp(prefix="ccp-allocs-"))
    try:
        sys.path.insert(0, str(Path(__file__).parent))
        import rig
        rig.RELEASE = wrapper_dir(rig, args.bin_dir.resolve(), work)
        results = {}
        for name in args.targets.split(","):
            n_low, f_low = one_run(rig, name, low, args.seconds, args.scenario, work)
            n_high, f_high = one_run(rig, name, high, args.seconds, args.scenario, work)
            per_request = (calls(f_high) - calls(f_low)) / (n_high - n_low)
            results[name] = (per_request, sites(f_high, f_low), n_high - n_low)
        print(f"\nheap allocations per request, {args.scenario} ({args.rates} req/s for {args.seconds} s each)")
        for name, (per_request, _, _) in results.items():
            print(f"  {name:<20} {per_request:7.1f}")
        for name, (_, counts, n) in results.items():
            print(f"\n{name}: top sites (allocations per request)")
            for site, c in counts.most_common(args.top):
                print(f"  {c / n:6.2f}  {site}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
