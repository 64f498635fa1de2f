"""The benchmark rig shared by bench.py and scale.py: starts the fake upstreams, nginx, the bare
Pingora baseline and gateways on 127.0.0.1, reads their CPU time and memory from /proc, and
stops everything (and removes its files) when the `with` block ends.
"""

import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The release binaries measured; CCP_BENCH_BIN_DIR points elsewhere (a copy kept aside, say).
RELEASE = Path(os.environ.get("CCP_BENCH_BIN_DIR") or ROOT / "target" / "release")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Seconds a started program has to open its port (instructions.py raises it: under valgrind a
# gateway takes many seconds to start).
STARTUP_SECS = 30


def wait_port(port, timeout=None):
    deadline = time.monotonic() + (timeout or STARTUP_SECS)
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open")


# The measured programs, by target, in the binary layout of target/release.
WRAPPED = {"gateway": "ccp-gateway", "pingora": "examples/bare_pingora"}


def wrapped_bin_dir(bin_dir, work, script):
    """A copy of `bin_dir`'s binary layout in `work`/bin in which the measured programs run
    under a tool: `script(real)` is the shell script that runs the program at path `real` with
    the arguments it was given ("$@"). The admin CLI and the fake upstream run as they are."""
    out = work / "bin"
    (out / "examples").mkdir(parents=True)
    for name in ("ccp-admin", "ccp-fake-upstream"):
        os.symlink(bin_dir / name, out / name)
    for rel in WRAPPED.values():
        wrapper = out / rel
        wrapper.write_text("#!/bin/bash\n" + script(bin_dir / rel))
        wrapper.chmod(0o755)
    return out


def raise_fd_limit():
    """Lets this process and the ones it starts hold tens of thousands of sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


# The request shapes measured: body size in KB and whether the answer streams.
SCENARIOS = {"json_30k": (30, False), "json_150k": (150, False), "stream_50ev": (30, True)}

# Gateway variants by the settings that make them.
GATEWAY_VARIANTS = {
    "gateway": {},
    "gateway_nometer": {"CCP_METERING": "off"},
    "gateway_nolog": {"CCP_LOG": "warn"},
    "gateway_bare": {"CCP_LOG": "warn", "CCP_METERING": "off"},
}


def claude_code_body(kb, stream):
    """A body shaped like Claude Code's: system blocks, tool definitions, a conversation
    (benches/wrk/claude_code.lua builds the same)."""
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


HEADERS = {"anthropic-version": "2023-06-01", "x-api-key": "sk-ant-bench", "anthropic-beta": "claude-code-20250219"}


def proc_cpu_seconds(pids):
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
        except (FileNotFoundError, IndexError):
            pass
    return total / CLK_TCK


def proc_context_switches(pids):
    """Voluntary and involuntary context switches of every thread of `pids` so far."""
    total = 0
    for pid in pids:
        for status in Path(f"/proc/{pid}/task").glob("*/status"):
            try:
                for line in status.read_text().splitlines():
                    if "ctxt_switches:" in line:
                        total += int(line.split()[1])
            except (FileNotFoundError, ProcessLookupError):
                pass
    return total


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

    def finish(self):
        self.stop.set()
        self.join()
        return self.peak_kb / 1024


class Target:
    """One thing to measure: where to send requests, and which processes do the work."""

    def __init__(self, name, url, pids_fn):
        self.name, self.url, self.pids = name, url, pids_fn


def env_assignments(text):
    """`A=1 B=x:y` (space-separated KEY=VALUE) into a dict of environment variables."""
    return dict(pair.split("=", 1) for pair in text.split())


def split_targets(spec):
    """`a,b,c` into target names; a comma inside `gateway:ENV` or `pingora:OPTIONS` (as in
    `gateway:_RJEM_MALLOC_CONF=narenas:2,dirty_decay_ms:1000`) stays in its target."""
    return re.split(r",(?=(?:gateway|pingora|nginx|direct)(?:[_:,]|$))", spec)


class Rig:
    """Starts processes for one run; everything stops when the `with` block ends."""

    def __init__(self, threads=2):
        self.threads = threads
        self.work = Path(tempfile.mkdtemp(prefix="ccp-bench-"))
        self.procs = []
        self.cleanups = []  # run after every process has stopped
        self.bedrock_port = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for p in reversed(self.procs):
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        for cleanup in self.cleanups:
            cleanup()
        shutil.rmtree(self.work, ignore_errors=True)

    def spawn(self, cmd, port, **kw):
        proc = subprocess.Popen(cmd, **kw)
        self.procs.append(proc)
        wait_port(port)
        return proc

    def upstream(self, mode="anthropic"):
        """A `ccp-fake-upstream`; returns (target, port)."""
        port = free_port()
        proc = self.spawn([str(RELEASE / "ccp-fake-upstream"), f"127.0.0.1:{port}", mode], port, stdout=subprocess.DEVNULL)
        return Target(f"direct:{mode}", f"http://127.0.0.1:{port}/v1/messages?beta=true", lambda: [proc.pid]), port

    def nginx(self, up_port, worker_connections=4096):
        """nginx as a plain reverse proxy: upstream keep-alive, no buffering, access log on."""
        port = free_port()
        (self.work / "nginx").mkdir(exist_ok=True)
        conf = self.work / "nginx" / "nginx.conf"
        conf.write_text(f"""
user root;
worker_processes {self.threads};
worker_rlimit_nofile {worker_connections * 2 + 1024};
pid {self.work}/nginx/nginx.pid;
error_log {self.work}/nginx/error.log warn;
events {{ worker_connections {worker_connections}; }}
http {{
    access_log {self.work}/nginx/access.log;
    client_body_temp_path {self.work}/nginx/body;
    proxy_temp_path {self.work}/nginx/proxy;
    client_max_body_size 32m;
    client_body_buffer_size 256k;
    keepalive_timeout 300s;
    keepalive_requests 1000000;
    upstream plan {{ server 127.0.0.1:{up_port}; keepalive 1024; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://plan;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_read_timeout 600s;
        }}
    }}
}}
""")
        proc = self.spawn(["nginx", "-c", str(conf), "-p", str(self.work / "nginx"), "-g", "daemon off;"], port)
        return Target("nginx", f"http://127.0.0.1:{port}/v1/messages?beta=true", lambda: [proc.pid] + children(proc.pid))

    def bare_pingora(self, up_port, name="pingora", args=()):
        """gateway/examples/bare_pingora.rs: tuned as the gateway is unless `args` say otherwise.
        A first argument `@PATH` runs another build of it (one with the system allocator, say)."""
        port = free_port()
        binary = RELEASE / "examples" / "bare_pingora"
        if args and args[0].startswith("@"):
            binary, args = Path(args[0][1:]), args[1:]
        proc = self.spawn([str(binary), f"127.0.0.1:{up_port}", f"127.0.0.1:{port}", str(self.threads), *args], port,
                          stderr=subprocess.DEVNULL)
        return Target(name, f"http://127.0.0.1:{port}/v1/messages?beta=true", lambda: [proc.pid])

    def metered_pingora(self, up_port, name="pingora_meter", database=None):
        """Bare Pingora that also leaves the gateway's metering row for every request, written by
        the gateway's metering writer to SQLite (or to the PostgreSQL URL `database`): Pingora's
        floor with metering on."""
        return self.bare_pingora(up_port, name, ["--meter", database or str(self.work / name)])

    def target(self, name, up_port, base=None):
        """A target by name: a gateway variant, `gateway_armed` (the key has a Bedrock key, so every
        request keeps its body for a failover until Plan answers; Plan answers, so none happens),
        `gateway_base` (the build in `base`), `pingora`, `pingora_meter` (bare Pingora with the
        gateway's metering row), `pingora:OPTIONS` (bare Pingora with those options),
        `gateway:ENV` (the gateway with these space-separated KEY=VALUE variables) or `nginx`
        (profile.py, ab.py and threads.py)."""
        if name in GATEWAY_VARIANTS:
            return self.gateway(name, up_port, GATEWAY_VARIANTS[name])
        if name == "gateway_armed":
            return self.gateway(name, up_port, bedrock=True)
        if name == "gateway_base":
            if not base:
                raise SystemExit("gateway_base needs another build's directory")
            return self.gateway(name, up_port, bin_dir=Path(base))
        if name == "pingora":
            return self.bare_pingora(up_port)
        if name == "pingora_meter":
            return self.metered_pingora(up_port)
        if name.startswith("pingora:"):  # bare Pingora with options, e.g. `pingora:--no-timeouts`
            return self.bare_pingora(up_port, name, name.split(":", 1)[1].split())
        if name.startswith("gateway:"):  # the gateway with more environment, e.g. `gateway:CCP_LOG=warn`
            env = env_assignments(name.split(":", 1)[1])
            return self.gateway(name, up_port, env)
        if name == "nginx":
            return self.nginx(up_port)
        raise SystemExit(f"unknown target {name}")

    def gateway(self, name, plan_port, extra_env=(), bedrock=False, bin_dir=None):
        """A `ccp-gateway` on its own SQLite database (unless `extra_env` says otherwise), with
        one user and one access key issued through `ccp-admin`."""
        bin_dir = bin_dir or RELEASE
        port = free_port()
        workdir = self.work / re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        env = {"PATH": os.environ["PATH"], "CCP_DATA_DIR": str(workdir), "CCP_GATEWAY_ADDR": f"127.0.0.1:{port}",
               "CCP_PLAN_BASE_URL": f"http://127.0.0.1:{plan_port}", "CCP_THREADS": str(self.threads),
               "CCP_LOG_FORMAT": "json", "CCP_SHUTDOWN_GRACE_SECS": "1", **dict(extra_env)}
        if self.bedrock_port:
            env["CCP_BEDROCK_ENDPOINT"] = f"http://127.0.0.1:{self.bedrock_port}"

        def admin(*a, stdin=None):
            out = subprocess.run([str(bin_dir / "ccp-admin"), "--json", *a], env=env, check=True, capture_output=True, input=stdin)
            return json.loads(out.stdout)

        admin("user", "create", "--name", "Bench", "--email", "bench@example.com")
        issued = admin("key", "issue", "--user", "bench@example.com")
        if bedrock:
            admin("bedrock-key", "set", "--access-key", issued["id"], "--region", "us-east-1", stdin=b"ABSK-bench-bedrock-key\n")
            admin("model-map", "set", "--anthropic", "claude-sonnet-5-5", "--bedrock", "us.anthropic.claude-sonnet-5-5-v1:0")
        log = open(f"{workdir}.log", "wb")
        proc = self.spawn([str(bin_dir / "ccp-gateway")], port, env=env, stderr=log)
        return Target(name, f"http://127.0.0.1:{port}/ak/{issued['key']}/v1/messages?beta=true", lambda: [proc.pid])

    def postgres_schema(self, url, tag=""):
        """A fresh schema in `url` (one for each `tag`), dropped at the end; returns the URL that uses it."""
        schema = f"ccp_bench_{os.getpid()}{tag}"
        subprocess.run(["psql", url, "-qc", f"CREATE SCHEMA {schema}"], check=True)
        self.cleanups.append(lambda: subprocess.run(["psql", url, "-qc", f"DROP SCHEMA IF EXISTS {schema} CASCADE"], check=False))
        sep = "&" if "?" in url else "?"
        return f"{url}{sep}options=-c%20search_path%3D{schema}"

