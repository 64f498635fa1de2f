#!/usr/bin/env python3
"""Load benchmark: the same fast fake Anthropic upstream measured three ways in one run:
direct, through nginx as a plain reverse proxy, through the smallest possible Pingora proxy
(gateway/examples/bare_pingora.rs: Pingora's own floor), and through ccp-gateway.
Two more gateway targets measure the Bedrock leg against a fake Bedrock runtime (binary
event-stream): `failover` (Plan answers 429 every time, each request fails over; the
circuit threshold is set out of reach) and `bedrock` (the circuit is open: Bedrock direct).
Their p50 difference is what failing over adds before Bedrock's own first byte.

For each scenario (30 KB and 150 KB non-streaming Claude Code-like bodies, a 50-event stream)
it measures max throughput (oha, fixed connections, no rate limit) and a fixed 500 req/s rate,
and reports p50/p99 latency, achieved req/s, proxy CPU time per request (from /proc) and the
proxy's peak RSS. Everything binds to 127.0.0.1; every run is bounded in time.

Run through benches/load/run.sh, which builds the release binaries and installs oha.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RELEASE = ROOT / "target" / "release"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open")


def claude_code_body(kb, stream):
    """A body shaped like Claude Code's: system blocks, tool definitions, a conversation."""
    tool = {
        "name": "Bash",
        "description": "Executes a bash command. " * 40,
        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]},
    }
    body = {
        "model": "claude-sonnet-5-5",
        "max_tokens": 32000,
        "stream": stream,
        "thinking": {"type": "adaptive", "display": "omitted"},
        "system": [
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.332;"},
            {"type": "text", "text": "You are Claude Code. " * 300, "cache_control": {"type": "ephemeral"}},
        ],
        "tools": [dict(tool, name=f"Tool{i}") for i in range(8)],
        "messages": [],
    }
    turn = 0
    while len(json.dumps(body, separators=(",", ":"))) < kb * 1024:
        body["messages"].append({"role": "user", "content": [{"type": "text", "text": f"Step {turn}: " + "please edit the file. " * 40}]})
        body["messages"].append({"role": "assistant", "content": [{"type": "text", "text": "Done. " * 80}]})
        turn += 1
    return json.dumps(body, separators=(",", ":")).encode()


def proc_cpu_seconds(pids):
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
        except (FileNotFoundError, IndexError):
            pass
    return total / CLK_TCK


def proc_rss_kb(pids):
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


def children(pid):
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


class Sampler(threading.Thread):
    """Samples the RSS of a process group every 100 ms."""

    def __init__(self, pids_fn):
        super().__init__(daemon=True)
        self.pids_fn, self.peak_kb, self.stop = pids_fn, 0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.peak_kb = max(self.peak_kb, proc_rss_kb(self.pids_fn()))
            time.sleep(0.1)


def oha(url, body_file, duration, connections, rate=None, headers=()):
    cmd = ["oha", "--no-tui", "--output-format", "json", "-z", f"{duration}s", "-c", str(connections),
           "-m", "POST", "-D", str(body_file), "-T", "application/json"]
    for h in headers:
        cmd += ["-H", h]
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--rate", type=int, default=500)
    ap.add_argument("--threads", type=int, default=2, help="gateway threads and nginx workers")
    ap.add_argument("--out", default=str(ROOT / "benches" / "results"))
    ap.add_argument("--scenarios", default="json_30k,json_150k,stream_50ev", help="comma-separated subset")
    ap.add_argument("--targets", default="direct,nginx,pingora,gateway,failover,bedrock", help="comma-separated subset "
                    "(also: gateway_nometer, the gateway with CCP_METERING=off; gateway_base, see --baseline)")
    ap.add_argument("--baseline", help="a directory with another build's ccp-gateway and ccp-admin (e.g. the "
                    "previous commit's target/release): measured as the target gateway_base in the same run")
    ap.add_argument("--postgres", help="a PostgreSQL URL (e.g. postgres://postgres@127.0.0.1:5432/test): also measure "
                    "the gateway on a fresh schema there, change listener on, as the target gateway_pg")
    args = ap.parse_args()

    for tool in ("oha", "nginx"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found: run benches/load/run.sh")

    work = Path(tempfile.mkdtemp(prefix="ccp-bench-"))
    procs = []
    try:
        up_port, ng_port, gw_port, bare_port = free_port(), free_port(), free_port(), free_port()
        up = subprocess.Popen([str(RELEASE / "ccp-fake-upstream"), f"127.0.0.1:{up_port}"], stdout=subprocess.DEVNULL)
        procs.append(up)
        wait_port(up_port)

        (work / "nginx").mkdir()
        conf = work / "nginx" / "nginx.conf"
        conf.write_text(f"""
user root;
worker_processes {args.threads};
pid {work}/nginx/nginx.pid;
error_log {work}/nginx/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log {work}/nginx/access.log;
    client_body_temp_path {work}/nginx/body;
    proxy_temp_path {work}/nginx/proxy;
    client_max_body_size 32m;
    client_body_buffer_size 256k;
    upstream plan {{ server 127.0.0.1:{up_port}; keepalive 128; }}
    server {{
        listen 127.0.0.1:{ng_port};
        location / {{
            proxy_pass http://plan;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_request_buffering off;
        }}
    }}
}}
""")
        ng = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(work / "nginx"), "-g", "daemon off;"])
        procs.append(ng)
        wait_port(ng_port)

        bare = subprocess.Popen([str(RELEASE / "examples" / "bare_pingora"), f"127.0.0.1:{up_port}",
                                 f"127.0.0.1:{bare_port}", str(args.threads)], stderr=subprocess.DEVNULL)
        procs.append(bare)
        wait_port(bare_port)

        limited_port, bedrock_port = free_port(), free_port()
        for port, mode in ((limited_port, "rate-limited"), (bedrock_port, "bedrock")):
            fake = subprocess.Popen([str(RELEASE / "ccp-fake-upstream"), f"127.0.0.1:{port}", mode], stdout=subprocess.DEVNULL)
            procs.append(fake)
            wait_port(port)

        def start_gateway(name, plan_port, extra_env=(), bedrock=False, bin_dir=RELEASE):
            port = free_port()
            env = {"PATH": os.environ["PATH"], "CCP_DATA_DIR": str(work / name), "CCP_GATEWAY_ADDR": f"127.0.0.1:{port}",
                   "CCP_PLAN_BASE_URL": f"http://127.0.0.1:{plan_port}", "CCP_THREADS": str(args.threads),
                   "CCP_LOG_FORMAT": "json", "CCP_SHUTDOWN_GRACE_SECS": "1",
                   "CCP_BEDROCK_ENDPOINT": f"http://127.0.0.1:{bedrock_port}", **dict(extra_env)}

            def admin(*a, stdin=None):
                out = subprocess.run([str(bin_dir / "ccp-admin"), "--json", *a], env=env, check=True, capture_output=True, input=stdin)
                return json.loads(out.stdout)

            admin("user", "create", "--name", "Bench", "--email", "bench@example.com")
            issued = admin("key", "issue", "--user", "bench@example.com")
            if bedrock:
                admin("bedrock-key", "set", "--access-key", issued["id"], "--region", "us-east-1", stdin=b"ABSK-bench-bedrock-key\n")
                admin("model-map", "set", "--anthropic", "claude-sonnet-5-5", "--bedrock", "us.anthropic.claude-sonnet-5-5-v1:0")
            log = open(work / f"{name}.log", "wb")
            proc = subprocess.Popen([str(bin_dir / "ccp-gateway")], env=env, stderr=log)
            procs.append(proc)
            wait_port(port)
            return proc, f"http://127.0.0.1:{port}/ak/{issued['key']}/v1/messages?beta=true"

        gw, gw_url = start_gateway("gw", up_port)
        if args.postgres:
            schema = f"ccp_bench_{os.getpid()}"
            subprocess.run(["psql", args.postgres, "-qc", f"CREATE SCHEMA {schema}"], check=True)
            procs.append(DropSchema(args.postgres, schema))
            wrap_key = work / "pg-wrap.key"
            wrap_key.write_text(os.urandom(32).hex())
            sep = "&" if "?" in args.postgres else "?"
            pg, pg_url = start_gateway("gw_pg", up_port, {
                "CCP_DATABASE_URL": f"{args.postgres}{sep}options=-c%20search_path%3D{schema}",
                "CCP_PEPPER": os.urandom(24).hex(), "CCP_KEY_WRAPPER": "local", "CCP_WRAP_KEY_FILE": str(wrap_key)})
        if args.baseline:
            base, base_url = start_gateway("gw_base", up_port, bin_dir=Path(args.baseline))
        nm, nm_url = start_gateway("nometer", up_port, {"CCP_METERING": "off"})
        fo, fo_url = start_gateway("failover", limited_port, {"CCP_CIRCUIT_FAILURE_THRESHOLD": "1000000000"}, bedrock=True)
        bd, bd_url = start_gateway("bedrock", limited_port, {"CCP_CIRCUIT_FAILURE_THRESHOLD": "1",
                                                              "CCP_CIRCUIT_OPEN_SECS": "86400"}, bedrock=True)

        wanted = set(args.targets.split(","))
        targets = {
            "direct": (f"http://127.0.0.1:{up_port}/v1/messages?beta=true", lambda: [up.pid]),
            "nginx": (f"http://127.0.0.1:{ng_port}/v1/messages?beta=true", lambda: [ng.pid] + children(ng.pid)),
            "pingora": (f"http://127.0.0.1:{bare_port}/v1/messages?beta=true", lambda: [bare.pid]),
            "gateway": (gw_url, lambda: [gw.pid]),
            "gateway_nometer": (nm_url, lambda: [nm.pid]),
            **({"gateway_pg": (pg_url, lambda: [pg.pid])} if args.postgres else {}),
            **({"gateway_base": (base_url, lambda: [base.pid])} if args.baseline else {}),
            "failover": (fo_url, lambda: [fo.pid]),
            "bedrock": (bd_url, lambda: [bd.pid]),
        }
        targets = {k: v for k, v in targets.items() if k in wanted}
        scenarios = {
            "json_30k": claude_code_body(30, False),
            "json_150k": claude_code_body(150, False),
            "stream_50ev": claude_code_body(30, True),
        }
        scenarios = {k: v for k, v in scenarios.items() if k in args.scenarios.split(",")}
        headers = ["anthropic-version: 2023-06-01", "x-api-key: sk-ant-bench", "anthropic-beta: claude-code-20250219"]
        results = []
        for scenario, body in scenarios.items():
            body_file = work / f"{scenario}.json"
            body_file.write_bytes(body)
            for name, (url, pids) in targets.items():
                oha(url, body_file, 2, args.connections, headers=headers)  # warm up pools and caches
                for mode, rate in (("max", None), (f"{args.rate}rps", args.rate)):
                    sampler = Sampler(pids)
                    sampler.start()
                    cpu0 = proc_cpu_seconds(pids())
                    raw = oha(url, body_file, args.duration, args.connections if rate is None else 16, rate, headers)
                    cpu = proc_cpu_seconds(pids()) - cpu0
                    sampler.stop.set()
                    sampler.join()
                    row = summarize(raw)
                    row.update({"scenario": scenario, "target": name, "mode": mode, "body_bytes": len(body),
                                "cpu_ms_per_req": cpu * 1e3 / max(row["ok"], 1), "peak_rss_mb": sampler.peak_kb / 1024})
                    results.append(row)
                    print(f"{scenario:12} {name:8} {mode:7} {row['rps']:9.0f} req/s  p50 {row['p50_ms']:7.3f} ms  "
                          f"p99 {row['p99_ms']:7.3f} ms  cpu {row['cpu_ms_per_req']:.3f} ms/req  rss {row['peak_rss_mb']:.1f} MB  "
                          f"non-200 {row['non_200']} errors {row['errors']}", flush=True)

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        (out / f"load-{stamp}.json").write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
        print_comparison(results, args.rate)
        print(f"\nraw results: {out / f'load-{stamp}.json'}")
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


class DropSchema:
    """Drops the benchmark's PostgreSQL schema when the run's processes are stopped."""

    def __init__(self, url, schema):
        self.url, self.schema = url, schema

    def send_signal(self, _sig):
        pass

    def wait(self, timeout=None):
        subprocess.run(["psql", self.url, "-qc", f"DROP SCHEMA IF EXISTS {self.schema} CASCADE"], check=False)

    def kill(self):
        pass


def print_comparison(results, rate):
    get = {(r["scenario"], r["target"], r["mode"]): r for r in results}
    scenarios = list(dict.fromkeys(r["scenario"] for r in results))
    if all((s, t, "max") in get for s in scenarios for t in ("gateway", "gateway_pg")):
        print(f"\n| scenario | max req/s SQLite / PostgreSQL + listener (ratio) | CPU ms/req at max SQLite / PostgreSQL | "
              f"CPU ms/req at {rate} req/s SQLite / PostgreSQL | p50 at {rate} req/s SQLite / PostgreSQL (ms) |")
        print("|---|---|---|---|---|")
        for scenario in scenarios:
            a, b = get[(scenario, "gateway", "max")], get[(scenario, "gateway_pg", "max")]
            ar, br = get[(scenario, "gateway", f"{rate}rps")], get[(scenario, "gateway_pg", f"{rate}rps")]
            print(f"| {scenario} | {a['rps']:.0f} / {b['rps']:.0f} ({b['rps'] / a['rps']:.2f}) | "
                  f"{a['cpu_ms_per_req']:.3f} / {b['cpu_ms_per_req']:.3f} | {ar['cpu_ms_per_req']:.3f} / {br['cpu_ms_per_req']:.3f} | "
                  f"{ar['p50_ms']:.3f} / {br['p50_ms']:.3f} |")
    if all((s, t, "max") in get for s in scenarios for t in ("gateway", "gateway_nometer")):
        print(f"\n| scenario | max req/s metering on / off (ratio) | CPU ms/req at {rate} req/s on / off | p50 at {rate} req/s on / off (ms) |")
        print("|---|---|---|---|")
        for scenario in scenarios:
            on, off = get[(scenario, "gateway", "max")], get[(scenario, "gateway_nometer", "max")]
            onr, offr = get[(scenario, "gateway", f"{rate}rps")], get[(scenario, "gateway_nometer", f"{rate}rps")]
            print(f"| {scenario} | {on['rps']:.0f} / {off['rps']:.0f} ({on['rps'] / off['rps']:.2f}) | "
                  f"{onr['cpu_ms_per_req']:.3f} / {offr['cpu_ms_per_req']:.3f} | {onr['p50_ms']:.3f} / {offr['p50_ms']:.3f} |")
    if all((s, t, "max") in get for s in scenarios for t in ("failover", "bedrock")):
        print(f"\n| scenario | max req/s failover / Bedrock direct | CPU ms/req at {rate} req/s failover / Bedrock direct | "
              f"p50 at {rate} req/s failover / Bedrock direct (ms) | failover adds at p50 (ms) | peak RSS (MB) |")
        print("|---|---|---|---|---|---|")
        for scenario in scenarios:
            f, d = get[(scenario, "failover", "max")], get[(scenario, "bedrock", "max")]
            fr, dr = get[(scenario, "failover", f"{rate}rps")], get[(scenario, "bedrock", f"{rate}rps")]
            print(f"| {scenario} | {f['rps']:.0f} / {d['rps']:.0f} | {fr['cpu_ms_per_req']:.3f} / {dr['cpu_ms_per_req']:.3f} | "
                  f"{fr['p50_ms']:.3f} / {dr['p50_ms']:.3f} | {fr['p50_ms'] - dr['p50_ms']:.3f} | "
                  f"{max(f['peak_rss_mb'], fr['peak_rss_mb'], d['peak_rss_mb'], dr['peak_rss_mb']):.1f} |")
    if not all((s, t, "max") in get for s in scenarios for t in ("gateway", "nginx", "pingora", "direct")):
        return
    print("\n| scenario | max req/s gateway / nginx (ratio) | max req/s bare Pingora | CPU ms/req at max: gateway / nginx / bare Pingora | "
          f"CPU ms/req at {rate} req/s: gateway / nginx (ratio) | p50 added at {rate} req/s: gateway / nginx (ms) | gateway peak RSS (MB) |")
    print("|---|---|---|---|---|---|---|")
    for scenario in scenarios:
        g, n, b = (get[(scenario, t, "max")] for t in ("gateway", "nginx", "pingora"))
        gr, nr, dr = (get[(scenario, t, f"{rate}rps")] for t in ("gateway", "nginx", "direct"))
        print(f"| {scenario} | {g['rps']:.0f} / {n['rps']:.0f} ({g['rps'] / n['rps']:.2f}) | {b['rps']:.0f} | "
              f"{g['cpu_ms_per_req']:.3f} / {n['cpu_ms_per_req']:.3f} / {b['cpu_ms_per_req']:.3f} | "
              f"{gr['cpu_ms_per_req']:.3f} / {nr['cpu_ms_per_req']:.3f} ({gr['cpu_ms_per_req'] / nr['cpu_ms_per_req']:.2f}) | "
              f"{gr['p50_ms'] - dr['p50_ms']:.3f} / {nr['p50_ms'] - dr['p50_ms']:.3f} | "
              f"{max(g['peak_rss_mb'], gr['peak_rss_mb']):.1f} |")


if __name__ == "__main__":
    main()
