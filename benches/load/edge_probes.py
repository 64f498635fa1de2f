#!/usr/bin/env python3
"""Sends the listener edge probes (issue 12, part 3) to the gateway and to nginx, side by side.

Both proxy to the same tiny backend, which counts what reaches it. The probes: Content-Length
with Transfer-Encoding, an HTTP/1.0 body without Content-Length, bare LF line endings (all
lines, one line), and a request head sent one byte a second (both with a 3 s head timeout).

    python3 benches/load/edge_probes.py [--gateway target/debug/ccp-gateway]

Needs nginx (benches/load/run.sh installs it from Debian). Prints a Markdown table.
"""

import argparse
import http.server
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

HEAD_TIMEOUT = 3


class Backend(http.server.BaseHTTPRequestHandler):
    hits = 0

    def _answer(self):
        Backend.hits += 1
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        body = b'{"ok":true}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port):
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on {port}")


def exchange(port, raw):
    """Status line of the answer (or what happened), and whether the server closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(raw)
        data = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except socket.timeout:
            return (data.split(b"\r\n")[0].decode(errors="replace") or "no answer"), "kept open"
        return (data.split(b"\r\n")[0].decode(errors="replace") or "closed, no answer"), "closed"


def slow_head(port, path):
    """Sends a head one byte a second; seconds until the server closed, and what it said."""
    head = f"GET {path} HTTP/1.1\r\nHost: probe\r\nX-Slow: {'a' * 60}\r\n".encode()
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
        for byte in head:
            try:
                s.sendall(bytes([byte]))
            except OSError:
                return time.monotonic() - start, "closed (write failed)"
            try:
                data = s.recv(4096)
                if not data:
                    return time.monotonic() - start, "closed, no answer"
                return time.monotonic() - start, data.split(b"\r\n")[0].decode(errors="replace")
            except socket.timeout:
                pass
    return time.monotonic() - start, "still open after the whole head"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gateway", default="target/debug/ccp-gateway")
    args = ap.parse_args()
    if not shutil.which("nginx"):
        sys.exit("nginx is not installed (apt-get install nginx-light)")

    backend_port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", backend_port), Backend)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    work = tempfile.mkdtemp(prefix="ccp-edge-")
    ng_port, gw_port = free_port(), free_port()
    conf = os.path.join(work, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{}}
http {{
    access_log off;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    client_header_timeout {HEAD_TIMEOUT}s;
    server {{
        listen 127.0.0.1:{ng_port};
        location / {{
            proxy_pass http://127.0.0.1:{backend_port};
            proxy_http_version 1.1;
            proxy_buffering off;
        }}
    }}
}}
""")
    nginx = subprocess.Popen(["nginx", "-c", conf, "-p", work, "-g", "daemon off;"])
    env = {
        "PATH": os.environ.get("PATH", ""),
        "CCP_DATA_DIR": os.path.join(work, "gateway"),
        "CCP_GATEWAY_ADDR": f"127.0.0.1:{gw_port}",
        "CCP_PLAN_BASE_URL": f"http://127.0.0.1:{backend_port}",
        "CCP_HEADER_TIMEOUT_SECS": str(HEAD_TIMEOUT),
        "CCP_METRICS_ADDR": "off",
        "CCP_THREADS": "1",
    }
    gateway = subprocess.Popen([args.gateway], env=env, stderr=subprocess.DEVNULL)
    try:
        wait_listening(ng_port)
        wait_listening(gw_port)
        # The gateway checks the head before the key, so any key shows the edge rule.
        paths = {"gateway": "/ak/ccp_probe/v1/messages", "nginx": "/v1/messages"}
        probes = [
            ("Content-Length and Transfer-Encoding",
             "POST {path} HTTP/1.1\r\nHost: probe\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n"),
            ("HTTP/1.0 body without Content-Length",
             "POST {path} HTTP/1.0\r\nHost: probe\r\n\r\n{{\"model\":\"x\"}}"),
            ("bare LF on every line",
             "POST {path} HTTP/1.1\nHost: probe\nContent-Length: 2\n\n{{}}"),
            ("bare LF on one header line",
             "POST {path} HTTP/1.1\r\nHost: probe\nContent-Length: 2\r\n\r\n{{}}"),
        ]
        rows = []
        for name, template in probes:
            cells = []
            for target, port in (("gateway", gw_port), ("nginx", ng_port)):
                before = Backend.hits
                status, closed = exchange(port, template.format(path=paths[target]).encode())
                forwarded = Backend.hits - before
                cells.append(f"{status}; {closed}; {'forwarded' if forwarded else 'not forwarded'}")
            rows.append((name, *cells))
        cells = []
        for target, port in (("gateway", gw_port), ("nginx", ng_port)):
            before = Backend.hits
            seconds, what = slow_head(port, paths[target])
            forwarded = Backend.hits - before
            cells.append(f"{what} after {seconds:.1f} s; {'forwarded' if forwarded else 'not forwarded'}")
        rows.append((f"head sent 1 byte/s ({HEAD_TIMEOUT} s head timeout)", *cells))
        version = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
        print(f"| probe | gateway | {version} |")
        print("|---|---|---|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
    finally:
        gateway.terminate()
        nginx.terminate()
        gateway.wait()
        nginx.wait()
        server.shutdown()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
