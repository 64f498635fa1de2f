#!/usr/bin/env python3
"""Scale benchmark: many long-lived and idle connections through nginx, bare Pingora and the
gateway, side by side in one run, against `ccp-fake-upstream slow-stream` (streams of one event
a second for a minute; JSON answers at once).

1. Slow streams: `--streams` clients (1 000 by default) each send a 30 KB Claude Code-shaped
   streaming request at once and read the stream to its end. Reported: how many completed,
   the proxy's peak RSS and its RSS before, and its CPU time.
2. Idle keep-alive: `--idle` clients (10 000 by default) each send one JSON request, read the
   answer and then hold the connection open and silent. Reported: the proxy's RSS before and
   with every connection open, and the difference per connection.

    python3 benches/load/scale.py [--streams 1000] [--idle 10000] [--targets nginx,pingora,gateway]

`gateway_armed` is the gateway with a Bedrock key on the access key (failover possible).

Needs the release binaries and nginx (benches/load/run.sh builds and installs them).
"""

import argparse
import asyncio
import json
import shutil
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from rig import HEADERS, ROOT, Rig, Sampler, claude_code_body, proc_cpu_seconds, proc_rss_kb, raise_fd_limit


def request_bytes(url, body):
    parts = urlsplit(url)
    head = (f"POST {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in HEADERS.items())
            + f"Content-Length: {len(body)}\r\n\r\n").encode()
    return parts, head + body


async def read_response(reader):
    """Reads one HTTP/1.1 response (Content-Length or chunked); returns (status, body)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    headers = {k.strip().lower(): v.strip() for k, v in
               (line.split(b":", 1) for line in head.split(b"\r\n")[1:] if b":" in line)}
    if b"content-length" in headers:
        return status, await reader.readexactly(int(headers[b"content-length"]))
    body = b""
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        chunk = await reader.readexactly(size + 2)
        if size == 0:
            return status, body
        body += chunk[:-2]


async def one_stream(parts, raw):
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(raw)
        await writer.drain()
        status, body = await read_response(reader)
        return status == 200 and b"message_stop" in body
    except (OSError, asyncio.IncompleteReadError, ValueError):
        return False
    finally:
        writer.close()


async def slow_streams(url, count, body):
    parts, raw = request_bytes(url, body)
    done = await asyncio.gather(*(one_stream(parts, raw) for _ in range(count)))
    return sum(done)


async def hold_idle(url, count, body, measure):
    """Opens `count` connections, one request each, then calls `measure()` with all of them
    open and idle; returns (answered, measure's result)."""
    parts, raw = request_bytes(url, body)
    sem = asyncio.Semaphore(500)  # opening pace, not a cap on what stays open
    conns = []

    async def open_one():
        async with sem:
            try:
                reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
                writer.write(raw)
                await writer.drain()
                status, _ = await read_response(reader)
                conns.append(writer)
                return status == 200
            except (OSError, asyncio.IncompleteReadError, ValueError):
                return False

    answered = sum(await asyncio.gather(*(open_one() for _ in range(count))))
    await asyncio.sleep(2)  # let the proxy settle with every connection idle
    result = measure()
    for writer in conns:
        writer.close()
    return answered, result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--streams", type=int, default=1000)
    ap.add_argument("--skip-streams", action="store_true", help="only the idle keep-alive test")
    ap.add_argument("--idle", type=int, default=10000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--targets", default="nginx,pingora,gateway")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME=OPTIONS",
                    help="another bare_pingora target with these options, e.g. 'rb16k=--read-buffer 16384'")
    ap.add_argument("--out", default=str(ROOT / "benches" / "results"))
    args = ap.parse_args()
    if not shutil.which("nginx"):
        sys.exit("nginx not found: run benches/load/run.sh")
    limit = raise_fd_limit()
    if limit < args.idle + args.streams + 1000:
        sys.exit(f"the open-file limit ({limit}) is too low for {args.idle} connections")

    with Rig(args.threads) as rig:
        _, up_port = rig.upstream("slow-stream")
        makers = {
            "nginx": lambda: rig.nginx(up_port, worker_connections=args.idle + args.streams + 1024),
            "pingora": lambda: rig.bare_pingora(up_port),
            "gateway": lambda: rig.gateway("gateway", up_port),
            "gateway_armed": lambda: rig.target("gateway_armed", up_port),
        }
        for variant in args.variant:
            name, _, options = variant.partition("=")
            makers[name] = lambda name=name, options=options: rig.bare_pingora(up_port, name, options.split())
        targets = [makers[t]() for t in args.targets.split(",") + [v.partition("=")[0] for v in args.variant]]
        stream_body, json_body = claude_code_body(30, True), claude_code_body(2, False)
        results = []
        for target in targets:
            asyncio.run(hold_idle(target.url, 8, json_body, lambda: None))  # warm-up: pools, caches
            time.sleep(1)
            if args.skip_streams:
                args.streams = 0
            before = proc_rss_kb(target.pids()) / 1024
            sampler = Sampler(target.pids)
            sampler.start()
            cpu0, started = proc_cpu_seconds(target.pids()), time.monotonic()
            completed = asyncio.run(slow_streams(target.url, args.streams, stream_body))
            elapsed, cpu = time.monotonic() - started, proc_cpu_seconds(target.pids()) - cpu0
            peak = sampler.finish()
            row = {"target": target.name, "test": "slow_streams", "streams": args.streams, "completed": completed,
                   "seconds": elapsed, "rss_before_mb": before, "peak_rss_mb": peak, "cpu_s": cpu}
            results.append(row)
            print(f"{target.name:8} slow streams: {completed}/{args.streams} complete in {elapsed:.1f} s; "
                  f"RSS {before:.1f} MB before, peak {peak:.1f} MB; CPU {cpu:.2f} s", flush=True)

            time.sleep(2)
            before = proc_rss_kb(target.pids()) / 1024
            answered, during = asyncio.run(hold_idle(target.url, args.idle, json_body,
                                                     lambda: proc_rss_kb(target.pids()) / 1024))
            per_conn = (during - before) * 1024 / max(answered, 1)
            row = {"target": target.name, "test": "idle_keepalive", "connections": args.idle, "answered": answered,
                   "rss_before_mb": before, "rss_idle_mb": during, "kb_per_connection": per_conn}
            results.append(row)
            print(f"{target.name:8} idle keep-alive: {answered}/{args.idle} answered and held; RSS {before:.1f} MB "
                  f"before, {during:.1f} MB with all open: {per_conn:.1f} KB per connection", flush=True)

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        (out / f"scale-{stamp}.json").write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
        print(f"\nraw results: {out / f'scale-{stamp}.json'}")


if __name__ == "__main__":
    main()
