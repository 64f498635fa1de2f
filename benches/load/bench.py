#!/usr/bin/env python3
"""Load benchmark: the same fast fake Anthropic upstream measured several ways in one run:
direct, through nginx as a plain reverse proxy, through the smallest possible Pingora proxy
(gateway/examples/bare_pingora.rs, tuned as the gateway is: Pingora's own floor), and through
ccp-gateway. More gateway targets: `gateway_nometer` (metering off), `gateway_nolog` (no access
log), `gateway_bare` (neither), `gateway_pg` (PostgreSQL, see --postgres), `gateway_base`
(another build, see --baseline), `pingora_untuned` (bare Pingora on Pingora's defaults),
`pingora_notimeouts` (bare Pingora without the gateway's client and peer timeouts: the floor
of the runs before round eight in docs/benchmarks.md), `pingora_meter` (bare Pingora that also
leaves the gateway's metering row for every request, through the gateway's metering writer to
SQLite: Pingora's floor with metering on), and the
Bedrock leg against a fake Bedrock runtime: `failover` (Plan answers 429 every time, each request
fails over) and `bedrock` (the circuit is open).

For each scenario (30 KB and 150 KB non-streaming Claude Code-like bodies, a 50-event stream)
it measures max throughput (oha, fixed connections, no rate limit) and fixed rates (500 and
2 000 req/s by default, latency-corrected), and reports req/s, p50/p99 latency, the proxy's CPU
time per request (from /proc), its peak RSS and the connections it opened to the upstream
(after a warm-up: a proxy that reuses its keep-alive pool opens none); for the stream, the
time to first byte. It prints the ratios against the targets of docs/benchmarks.md.
Everything binds to 127.0.0.1; every run is bounded in time.

Run through benches/load/run.sh, which builds the release binaries and installs nginx and oha.
"""

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
import urllib.request
from urllib.parse import urlsplit

from rig import GATEWAY_VARIANTS, HEADERS, ROOT, Rig, Sampler, claude_code_body, env_assignments, proc_context_switches, proc_cpu_seconds


def oha(url, body_file, duration, connections, rate=None):
    cmd = ["oha", "--no-tui", "--output-format", "json", "-z", f"{duration}s", "-c", str(connections),
           "-m", "POST", "-D", str(body_file), "-T", "application/json"]
    for name, value in HEADERS.items():
        cmd += ["-H", f"{name}: {value}"]
    if rate:
        cmd += ["-q", str(rate), "--latency-correction"]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=duration + 60)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout)


def summarize(result):
    codes = result.get("statusCodeDistribution", {})
    ok = int(codes.get("200", 0))
    total = sum(int(v) for v in codes.values())
    pct = result["latencyPercentiles"]
    return {
        "rps": result["summary"]["requestsPerSec"],
        "ok": ok,
        "non_200": total - ok,
        "errors": sum(result.get("errorDistribution", {}).values()),
        "p50_ms": pct["p50"] * 1e3,
        "p99_ms": pct["p99"] * 1e3,
    }


def upstream_counts(port):
    """The fake upstream's connections accepted and requests served so far."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/__fake/stats", timeout=10) as answer:
        stats = json.load(answer)
    return stats["connections"], stats["requests"]


def first_byte_times(url, body, requests=300):
    """Sends `requests` streaming requests one after another on one keep-alive connection and
    returns, in ms, the time from the request's last byte to the response's first."""
    parts = urlsplit(url)
    head = (f"POST {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in HEADERS.items())
            + f"Content-Length: {len(body)}\r\n\r\n").encode()
    times = []
    with socket.create_connection((parts.hostname, parts.port)) as conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(requests):
            conn.sendall(head + body)
            sent = time.perf_counter()
            data = conn.recv(65536)
            times.append((time.perf_counter() - sent) * 1e3)
            while not data.endswith(b"0\r\n\r\n"):  # the stream's last chunk
                more = conn.recv(65536)
                if not more:
                    raise RuntimeError(f"{url}: connection closed mid-stream")
                data += more
    return times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=1, help="measure every target this many times per scenario, "
                    "in turns (each round starts with the next target), and report the median of the rounds: "
                    "a ratio between targets that one slow or fast phase of the machine cannot swing")
    ap.add_argument("--rates", default="500,2000", help="comma-separated fixed rates (req/s), each at 16 connections")
    ap.add_argument("--threads", type=int, default=2, help="gateway threads and nginx workers")
    ap.add_argument("--out", default=str(ROOT / "benches" / "results"))
    ap.add_argument("--scenarios", default="json_30k,json_150k,stream_50ev", help="comma-separated subset")
    ap.add_argument("--targets", default="direct,nginx,pingora,pingora_meter,gateway",
                    help="comma-separated subset of: direct, "
                    "nginx, pingora, pingora_untuned, pingora_notimeouts, pingora_meter (bare Pingora with the "
                    "gateway's metering row; pingora_meter_pg writes it to --postgres), gateway, gateway_nometer, gateway_pg, gateway_base, gateway_armed (the key "
                    "has a Bedrock key), failover, bedrock")
    ap.add_argument("--pingora-args", default="", help="extra bare_pingora options for the pingora target "
                    "(e.g. '--write-buffer 1460'; see gateway/examples/bare_pingora.rs)")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME=OPTIONS",
                    help="another bare_pingora target with these options, e.g. 'wb1460=--write-buffer 1460' "
                    "or 'sysalloc=@/path/to/bare_pingora' (another build); repeatable, to measure one lever at a time")
    ap.add_argument("--gateway-variant", action="append", default=[], metavar="NAME=ENV",
                    help="another gateway target with these environment variables (space-separated KEY=VALUE), "
                    "e.g. 'decay1s=_RJEM_MALLOC_CONF=dirty_decay_ms:1000'; repeatable")
    ap.add_argument("--baseline", help="a directory with another build's ccp-gateway and ccp-admin (e.g. the "
                    "previous commit's target/release): measured as the target gateway_base in the same run")
    ap.add_argument("--postgres", help="a PostgreSQL URL (e.g. postgres://postgres@127.0.0.1:5432/test): also measure "
                    "the gateway on a fresh schema there, change listener on, as the target gateway_pg")
    args = ap.parse_args()
    rates = [int(r) for r in args.rates.split(",") if r]

    for tool in ("oha", "nginx"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found: run benches/load/run.sh")

    wanted = args.targets.split(",")
    with Rig(args.threads) as rig:
        direct, up_port = rig.upstream()
        direct.name = "direct"
        _, limited_port = rig.upstream("rate-limited")
        _, rig.bedrock_port = rig.upstream("bedrock")
        makers = {
            "direct": lambda: direct,
            "nginx": lambda: rig.nginx(up_port),
            "pingora": lambda: rig.bare_pingora(up_port, args=args.pingora_args.split()),
            "pingora_untuned": lambda: rig.bare_pingora(up_port, "pingora_untuned", ["--untuned"]),
            "pingora_notimeouts": lambda: rig.bare_pingora(up_port, "pingora_notimeouts", ["--no-timeouts"]),
            "pingora_meter": lambda: rig.metered_pingora(up_port),
            "pingora_meter_pg": lambda: rig.metered_pingora(up_port, "pingora_meter_pg",
                                                            rig.postgres_schema(args.postgres, "_bare")),
            **{name: lambda name=name: rig.target(name, up_port) for name in GATEWAY_VARIANTS},
            "gateway_pg": lambda: rig.gateway("gateway_pg", up_port, {
                "CCP_DATABASE_URL": rig.postgres_schema(args.postgres), "CCP_PEPPER": "bench-" + "0" * 40,
                "CCP_KEY_WRAPPER": "local", "CCP_WRAP_KEY_FILE": str(wrap_key(rig))}),
            "gateway_base": lambda: rig.gateway("gateway_base", up_port, bin_dir=Path(args.baseline)),
            "gateway_armed": lambda: rig.target("gateway_armed", up_port),
            "failover": lambda: rig.gateway("failover", limited_port, {"CCP_CIRCUIT_FAILURE_THRESHOLD": "1000000000"}, bedrock=True),
            "bedrock": lambda: rig.gateway("bedrock", limited_port, {"CCP_CIRCUIT_FAILURE_THRESHOLD": "1",
                                                                      "CCP_CIRCUIT_OPEN_SECS": "86400"}, bedrock=True),
        }
        for variant in args.variant:
            name, _, options = variant.partition("=")
            makers[name] = lambda name=name, options=options: rig.bare_pingora(up_port, name, options.split())
            wanted.append(name)
        for variant in args.gateway_variant:
            name, _, assignments = variant.partition("=")
            env = env_assignments(assignments)
            makers[name] = lambda name=name, env=env: rig.gateway(name, up_port, env)
            wanted.append(name)
        unknown = [t for t in wanted if t not in makers]
        if unknown or ({"gateway_pg", "pingora_meter_pg"} & set(wanted) and not args.postgres) or ("gateway_base" in wanted and not args.baseline):
            sys.exit(f"unknown or unconfigured targets: {unknown or 'gateway_pg and pingora_meter_pg need --postgres, gateway_base --baseline'}")
        targets = [makers[t]() for t in wanted]
        scenarios = {
            "json_30k": claude_code_body(30, False),
            "json_150k": claude_code_body(150, False),
            "stream_50ev": claude_code_body(30, True),
        }
        scenarios = {k: v for k, v in scenarios.items() if k in args.scenarios.split(",")}
        results = []
        for scenario, body in scenarios.items():
            body_file = rig.work / f"{scenario}.json"
            body_file.write_bytes(body)
            for round_ in range(args.rounds):
                # Each round starts with the next target, so none is always measured first.
                shift = round_ % len(targets)
                for target in targets[shift:] + targets[:shift]:
                    results += measure(target, scenario, body, body_file, rates, args, up_port, round_)
        if args.rounds > 1:
            results = medians(results)

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        (out / f"load-{stamp}.json").write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
        print_tables(results, rates)
        print(f"\nraw results: {out / f'load-{stamp}.json'}")


def measure(target, scenario, body, body_file, rates, args, up_port, round_):
    """One round of one target on one scenario: the maximum rate, the fixed rates and, for a
    stream, the time to first byte. With several rounds, each row carries its round."""
    rows = []
    tag = f" r{round_ + 1}" if args.rounds > 1 else ""
    oha(target.url, body_file, 2, args.connections)  # warm up pools and caches
    for mode, rate in [("max", None)] + [(f"{r}rps", r) for r in rates]:
        sampler = Sampler(target.pids)
        sampler.start()
        cpu0, switches0 = proc_cpu_seconds(target.pids()), proc_context_switches(target.pids())
        conns0, served0 = upstream_counts(up_port)
        raw = oha(target.url, body_file, args.duration, args.connections if rate is None else 16, rate)
        cpu = proc_cpu_seconds(target.pids()) - cpu0
        switches = proc_context_switches(target.pids()) - switches0
        conns1, served1 = upstream_counts(up_port)
        row = summarize(raw)
        row.update({"scenario": scenario, "target": target.name, "mode": mode, "body_bytes": len(body),
                    "connections": args.connections if rate is None else 16,
                    "cpu_ms_per_req": cpu * 1e3 / max(row["ok"], 1), "peak_rss_mb": sampler.finish(),
                    "switches_per_req": switches / max(row["ok"], 1),
                    # Plan's side only (failover and bedrock use other upstreams).
                    "upstream_connections": conns1 - conns0, "upstream_requests": served1 - served0})
        rows.append(row)
        print(f"{scenario:12} {target.name:15} {mode:7}{tag} {row['rps']:9.0f} req/s  p50 {row['p50_ms']:7.3f} ms  "
              f"p99 {row['p99_ms']:7.3f} ms  cpu {row['cpu_ms_per_req']:.3f} ms/req  cs/req {row['switches_per_req']:.2f}  "
              f"rss {row['peak_rss_mb']:.1f} MB  upstream conns {row['upstream_connections']}  non-200 {row['non_200']} "
              f"errors {row['errors']}", flush=True)
    if scenario.startswith("stream"):
        times = first_byte_times(target.url, body)
        row = {"scenario": scenario, "target": target.name, "mode": "ttfb",
               "p50_ms": statistics.median(times), "p99_ms": statistics.quantiles(times, n=100)[98]}
        rows.append(row)
        print(f"{scenario:12} {target.name:15} ttfb   {tag} p50 {row['p50_ms']:7.3f} ms  p99 {row['p99_ms']:7.3f} ms", flush=True)
    if args.rounds > 1:
        for row in rows:
            row["round"] = round_ + 1
    return rows


# Figures folded into the median of the rounds (the peak RSS takes the largest, counts the sum).
MEDIAN_KEYS = ("rps", "cpu_ms_per_req", "p50_ms", "p99_ms", "switches_per_req")
SUM_KEYS = ("ok", "non_200", "errors", "upstream_connections", "upstream_requests")


def medians(rows):
    """The rows of every round, then one row per scenario, target and mode without a round: the
    median of each figure over the rounds (its lowest and highest in `spread`), the largest
    peak RSS and the summed counts. The tables read the rows without a round."""
    groups = {}
    for r in rows:
        groups.setdefault((r["scenario"], r["target"], r["mode"]), []).append(r)
    folded = []
    for (scenario, target, mode), group in groups.items():
        row = {"scenario": scenario, "target": target, "mode": mode, "rounds": len(group), "spread": {}}
        for key in group[0]:
            values = [g[key] for g in group]
            if key in MEDIAN_KEYS:
                row[key] = statistics.median(values)
                row["spread"][key] = [min(values), max(values)]
            elif key == "peak_rss_mb":
                row[key] = max(values)
            elif key in SUM_KEYS:
                row[key] = sum(values)
            elif key not in row and key != "round":
                row[key] = group[0][key]
        folded.append(row)
    return rows + folded


def wrap_key(rig):
    path = rig.work / "pg-wrap.key"
    path.write_text("11" * 32)
    return path


def print_tables(results, rates):
    get = {(r["scenario"], r["target"], r["mode"]): r for r in results if "round" not in r}
    rounds = {}  # (scenario, target, round) -> its row at the maximum rate
    for r in results:
        if "round" in r and r["mode"] == "max":
            rounds[(r["scenario"], r["target"], r["round"])] = r
    scenarios = list(dict.fromkeys(r["scenario"] for r in results))
    names = list(dict.fromkeys(r["target"] for r in results))

    def have(*targets):
        return all((s, t, "max") in get for s in scenarios for t in targets)

    def ratio(a, b, key):
        return a[key] / b[key] if b[key] else float("nan")

    def added_us(a, b):
        return 1000 * (a["cpu_ms_per_req"] - b["cpu_ms_per_req"])

    print("\n| scenario | target | max req/s | CPU ms/req at max | peak RSS (MB) | upstream connections opened at max "
          "(per 1 000 upstream requests) |")
    print("|---|---|---|---|---|---|")
    for s in scenarios:
        for t in names:
            if (s, t, "max") in get:
                r = get[(s, t, "max")]
                rss = max(get[(s, t, m)]["peak_rss_mb"] for m in ["max"] + [f"{x}rps" for x in rates])
                opened = (f"{r['upstream_connections']} ({1000 * r['upstream_connections'] / r['upstream_requests']:.2f})"
                          if r.get("upstream_requests") else "-")
                print(f"| {s} | {t} | {r['rps']:.0f} | {r['cpu_ms_per_req']:.3f} | {rss:.1f} | {opened} |")

    for a, b, what in (("gateway", "pingora", "gateway / bare Pingora: max req/s (target ≥ 0.92) | CPU per request (target ≤ 1.10)"),
                       ("pingora_meter", "pingora", "bare Pingora with the metering row / bare Pingora: max req/s | CPU per request"),
                       ("gateway", "pingora_meter", "gateway / bare Pingora with the metering row: max req/s | CPU per request"),
                       ("pingora_meter_pg", "pingora", "bare Pingora with the metering row on PostgreSQL / bare Pingora: max req/s | CPU per request"),
                       ("gateway_pg", "pingora_meter_pg", "gateway / bare Pingora, both metering to PostgreSQL: max req/s | CPU per request"),
                       ("gateway", "pingora_notimeouts", "gateway / bare Pingora without timeouts: max req/s | CPU per request"),
                       ("gateway", "nginx", "gateway / nginx: max req/s (target ≥ 0.8) | CPU per request (target ≤ 1.5)"),
                       ("pingora", "nginx", "bare Pingora / nginx: max req/s | CPU per request")):
        if have(a, b):
            each = ""
            if rounds:
                each = " each round: req/s, CPU |"
            # The CPU one adds over the other, in µs a request: a ratio moves with the machine's
            # phase (the other's own cost), the added work much less.
            print(f"\n| scenario | {what} |{each} CPU added, µs a request{' (each round)' if rounds else ''} |")
            print("|---|---|---|---|" + ("---|" if rounds else ""))
            for s in scenarios:
                x, y = get[(s, a, "max")], get[(s, b, "max")]
                cells = ""
                added = f" {added_us(x, y):.0f}"
                if rounds:
                    pairs = [(rounds[(s, a, n)], rounds[(s, b, n)]) for n in range(1, x["rounds"] + 1)]
                    cells = " " + "; ".join(f"{ratio(p, q, 'rps'):.2f}, {ratio(p, q, 'cpu_ms_per_req'):.2f}"
                                            for p, q in pairs) + " |"
                    added += " (" + "; ".join(f"{added_us(p, q):.0f}" for p, q in pairs) + ")"
                print(f"| {s} | {ratio(x, y, 'rps'):.2f} | {ratio(x, y, 'cpu_ms_per_req'):.2f} |{cells}{added} |")
    if "direct" in names:
        proxies = [t for t in names if t != "direct"]
        print("\n| scenario | rate | " + " | ".join(f"{t}: p50 / p99 added (ms)" for t in proxies) + " |")
        print("|---|---|" + "---|" * len(proxies))
        for s in scenarios:
            for rate in rates:
                d = get.get((s, "direct", f"{rate}rps"))
                cells = []
                for t in proxies:
                    r = get.get((s, t, f"{rate}rps"))
                    cells.append(f"{r['p50_ms'] - d['p50_ms']:.3f} / {r['p99_ms'] - d['p99_ms']:.3f}" if r and d else "-")
                print(f"| {s} | {rate} req/s | " + " | ".join(cells) + " |")
            if (s, "direct", "ttfb") in get:
                d = get[(s, "direct", "ttfb")]
                cells = [f"{get[(s, t, 'ttfb')]['p50_ms'] - d['p50_ms']:.3f} / {get[(s, t, 'ttfb')]['p99_ms'] - d['p99_ms']:.3f}"
                         if (s, t, "ttfb") in get else "-" for t in proxies]
                print(f"| {s} | first byte, one at a time | " + " | ".join(cells) + " |")
    if have("gateway", "gateway_nometer"):
        print("\n| scenario | max req/s metering on / off (ratio) | CPU ms/req at max on / off |")
        print("|---|---|---|")
        for s in scenarios:
            on, off = get[(s, "gateway", "max")], get[(s, "gateway_nometer", "max")]
            print(f"| {s} | {on['rps']:.0f} / {off['rps']:.0f} ({ratio(on, off, 'rps'):.2f}) | "
                  f"{on['cpu_ms_per_req']:.3f} / {off['cpu_ms_per_req']:.3f} |")
    if have("failover", "bedrock") and rates:
        rate = rates[0]
        print(f"\n| scenario | max req/s failover / Bedrock direct | p50 at {rate} req/s failover / Bedrock direct (ms) | "
              "failover adds at p50 (ms) |")
        print("|---|---|---|---|")
        for s in scenarios:
            f, d = get[(s, "failover", "max")], get[(s, "bedrock", "max")]
            fr, dr = get[(s, "failover", f"{rate}rps")], get[(s, "bedrock", f"{rate}rps")]
            print(f"| {s} | {f['rps']:.0f} / {d['rps']:.0f} | {fr['p50_ms']:.3f} / {dr['p50_ms']:.3f} | "
                  f"{fr['p50_ms'] - dr['p50_ms']:.3f} |")


if __name__ == "__main__":
    main()
