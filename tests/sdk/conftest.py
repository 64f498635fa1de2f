"""Fixtures: a fake Anthropic API, the real ccp-gateway binary in front of it, and an access
key issued with the real ccp-admin binary. Everything binds to 127.0.0.1."""

import json
import os
import re
import socket
import struct
import subprocess
import threading
import time
import urllib.request
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN_DIR = Path(os.environ.get("CCP_BIN_DIR", ROOT / "target" / "debug"))

MESSAGE = {
    "id": "msg_sdk_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-5-5",
    "content": [{"type": "text", "text": "Hello through the gateway"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 21, "output_tokens": 5},
}

TOOL_INPUT = {"command": "echo cc-accept-12345", "description": "print a marker"}


def sse(event, data):
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def stream_events():
    """A text block and a tool_use block, the way the Anthropic API streams them."""
    tool_json = json.dumps(TOOL_INPUT)
    yield sse("message_start", {"type": "message_start", "message": {**MESSAGE, "content": [], "stop_reason": None,
                                                                     "usage": {"input_tokens": 21, "output_tokens": 1}}})
    yield sse("content_block_start", {"type": "content_block_start", "index": 0,
                                      "content_block": {"type": "text", "text": ""}})
    yield sse("ping", {"type": "ping"})
    for piece in ["Hello ", "through ", "the ", "gateway ✓"]:
        yield sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                          "delta": {"type": "text_delta", "text": piece}})
    yield sse("content_block_stop", {"type": "content_block_stop", "index": 0})
    yield sse("content_block_start", {"type": "content_block_start", "index": 1,
                                      "content_block": {"type": "tool_use", "id": "toolu_01", "name": "Bash",
                                                        "input": {}}})
    for part in [tool_json[:10], tool_json[10:25], tool_json[25:]]:
        yield sse("content_block_delta", {"type": "content_block_delta", "index": 1,
                                          "delta": {"type": "input_json_delta", "partial_json": part}})
    yield sse("content_block_stop", {"type": "content_block_stop", "index": 1})
    yield sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                                "usage": {"output_tokens": 9}})
    yield sse("message_stop", {"type": "message_stop"})


class FakeAnthropic(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen = []

    def log_message(self, *args):
        pass

    def _send(self, status, body, content_type="application/json", extra=()):
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.send_header("request-id", "req_fake_1")
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        FakeAnthropic.seen.append({"method": "GET", "path": self.path, "headers": dict(self.headers.items()), "body": b""})
        self._send(200, json.dumps({"data": [{"id": "claude-sonnet-5-5", "type": "model"}], "has_more": False}).encode())

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length)
        FakeAnthropic.seen.append({"method": "POST", "path": self.path, "headers": dict(self.headers.items()), "body": body})
        request = json.loads(body)
        if self.path.startswith("/v1/messages/count_tokens"):
            return self._send(200, b'{"input_tokens":17}')
        if request.get("model") in ("rate-limited-model", FAILOVER_MODEL):
            err = {"type": "error", "error": {"type": "rate_limit_error", "message": "Number of requests has exceeded your rate limit"}}
            return self._send(429, json.dumps(err).encode(), extra=[("retry-after", "3"), ("x-should-retry", "false")])
        if request.get("stream"):
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("transfer-encoding", "chunked")
            self.send_header("request-id", "req_fake_stream")
            self.end_headers()
            for event in stream_events():
                self.wfile.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
                self.wfile.flush()
                time.sleep(0.01)
            self.wfile.write(b"0\r\n\r\n")
            return None
        return self._send(200, json.dumps(MESSAGE).encode())


# ---------------------------------------------------------------------------------------------
# A fake Amazon Bedrock runtime. Event-stream frames are built here from the published format
# and checked once with botocore's own decoder (EventStreamBuffer), so the gateway is fed the
# real wire format.

FAILOVER_MODEL = "claude-failover-test"
FAILOVER_BEDROCK_ID = "us.anthropic.claude-failover-test-v1:0"
BEDROCK_KEY = "ABSK-CANARYBR-sdk-failover-0001"


def es_frame(headers, payload):
    """One application/vnd.amazon.eventstream message with string headers."""
    head = b"".join(
        bytes([len(k)]) + k.encode() + b"\x07" + struct.pack(">H", len(v.encode())) + v.encode()
        for k, v in headers.items()
    )
    prelude = struct.pack(">II", 12 + len(head) + len(payload) + 4, len(head))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + head + payload
    return message + struct.pack(">I", zlib.crc32(message))


def es_event(event_type, payload):
    return es_frame(
        {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"},
        json.dumps(payload).encode(),
    )


def bedrock_tool_stream():
    """Text, then a Bash tool call with its input in three fragments, as ConverseStream sends it."""
    tool_json = json.dumps(TOOL_INPUT)
    frames = [es_event("messageStart", {"role": "assistant", "p": "abcdefgh"})]
    for piece in ["Running ", "the tool."]:
        frames.append(es_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}}))
    frames.append(es_event("contentBlockStop", {"contentBlockIndex": 0}))
    frames.append(es_event("contentBlockStart", {"contentBlockIndex": 1,
                                                 "start": {"toolUse": {"toolUseId": "tooluse_bdrk_01", "name": "Bash"}}}))
    for part in [tool_json[:7], tool_json[7:30], tool_json[30:]]:
        frames.append(es_event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": part}}}))
    frames.append(es_event("contentBlockStop", {"contentBlockIndex": 1}))
    frames.append(es_event("messageStop", {"stopReason": "tool_use"}))
    frames.append(es_event("metadata", {"usage": {"inputTokens": 40, "outputTokens": 12, "totalTokens": 52,
                                                  "cacheReadInputTokens": 5, "cacheWriteInputTokens": 0},
                                        "metrics": {"latencyMs": 30}}))
    return frames


def bedrock_text_stream(text):
    return [
        es_event("messageStart", {"role": "assistant"}),
        es_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": text}}),
        es_event("contentBlockStop", {"contentBlockIndex": 0}),
        es_event("messageStop", {"stopReason": "end_turn"}),
        es_event("metadata", {"usage": {"inputTokens": 60, "outputTokens": 3, "totalTokens": 63}, "metrics": {"latencyMs": 9}}),
    ]


def check_frames_with_botocore(frames):
    from botocore.eventstream import EventStreamBuffer

    buffer = EventStreamBuffer()
    buffer.add_data(b"".join(frames))
    decoded = list(buffer)
    assert len(decoded) == len(frames)
    for message in decoded:
        assert message.headers[":message-type"] == "event"
        json.loads(message.payload)


class FakeBedrock(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        raw_head = str(self.requestline) + "\n" + str(self.headers)
        FakeBedrock.seen.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body, "raw": raw_head})
        request = json.loads(body)
        if self.headers.get("authorization") != f"Bearer {BEDROCK_KEY}":
            return self._error(403, "AccessDeniedException", "bad key")
        match = re.fullmatch(r"/model/([^/]+)/(converse|converse-stream)", self.path)
        if not match:
            return self._error(404, "UnknownOperationException", "no such operation")
        answered_tool = any(
            "toolResult" in block for m in request["messages"] for block in m["content"]
        )
        if match.group(2) == "converse":
            out = {"output": {"message": {"role": "assistant", "content": [{"text": "Hello from Bedrock"}]}},
                   "stopReason": "end_turn", "usage": {"inputTokens": 9, "outputTokens": 4, "totalTokens": 13},
                   "metrics": {"latencyMs": 5}}
            data = json.dumps(out).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.send_header("x-amzn-requestid", "4f1e2d3c-0000-1111-2222-333344445555")
            self.end_headers()
            self.wfile.write(data)
            return None
        frames = bedrock_text_stream("TOOL_OK cc-accept-12345") if answered_tool else bedrock_tool_stream()
        self.send_response(200)
        self.send_header("content-type", "application/vnd.amazon.eventstream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for frame in frames:
            self.wfile.write(f"{len(frame):x}\r\n".encode() + frame + b"\r\n")
            self.wfile.flush()
            time.sleep(0.005)
        self.wfile.write(b"0\r\n\r\n")
        return None

    def _error(self, status, code, message):
        data = json.dumps({"message": message}).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("x-amzn-errortype", f"{code}:http://internal.amazon.com/coral/com.amazon.bedrock/")
        self.end_headers()
        self.wfile.write(data)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def binary_env(tmp_path_factory, name, server):
    """A fresh data directory and the minimal environment for `server` and ccp-admin (both
    must be built): nothing inherited but PATH."""
    for binary in (server, "ccp-admin"):
        assert (BIN_DIR / binary).exists(), f"build first: cargo build --bins ({BIN_DIR / binary} missing)"
    data = tmp_path_factory.mktemp(name)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "CCP_DATA_DIR": str(data),
        "CCP_LOG_FORMAT": "json",
        "CCP_THREADS": "2",
    }
    return data, env


def wait_until_ready(url, proc, log_path, seconds=30):
    """Polls `url` until it answers 200; fails with the process log if it exits or times out."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        assert proc.poll() is None, log_path.read_text()
        assert time.monotonic() < deadline, f"{url} did not answer 200 in {seconds} s"
        time.sleep(0.1)


def log_once_more(log_path, needle, action, seconds=10):
    """Runs `action`, then waits until `needle` occurs in the log once more than before it ran
    (the gateway writes its log in batches, up to 100 ms late); returns the log's text."""
    before = log_path.read_text().count(needle)
    action()
    deadline = time.monotonic() + seconds
    while True:
        text = log_path.read_text()
        if text.count(needle) > before:
            return text
        assert time.monotonic() < deadline, f"{needle!r} not logged again in {seconds} s:\n{text[-3000:]}"
        time.sleep(0.05)


def serve(handler):
    """Runs `handler` on 127.0.0.1 in a background thread; yields the server."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


@pytest.fixture(scope="session")
def fake_anthropic():
    yield from serve(FakeAnthropic)


@pytest.fixture(scope="session")
def fake_bedrock():
    check_frames_with_botocore(bedrock_tool_stream())
    yield from serve(FakeBedrock)


@pytest.fixture(scope="session")
def gateway(fake_anthropic, fake_bedrock, tmp_path_factory):
    data, env = binary_env(tmp_path_factory, "ccp-data", "ccp-gateway")
    port = free_port()
    env.update({
        "CCP_GATEWAY_ADDR": f"127.0.0.1:{port}",
        "CCP_PLAN_BASE_URL": f"http://127.0.0.1:{fake_anthropic.server_address[1]}",
        "CCP_BEDROCK_ENDPOINT": f"http://127.0.0.1:{fake_bedrock.server_address[1]}",
        "CCP_SHUTDOWN_GRACE_SECS": "2",
    })

    def admin(*args):
        out = subprocess.run([str(BIN_DIR / "ccp-admin"), "--json", *args], env=env, capture_output=True, check=True)
        return json.loads(out.stdout)

    def failover_key():
        """A new key that fails over: its Bedrock key goes in on stdin, as an admin would type
        it. Each test takes its own, so no test inherits another's circuit breaker state."""
        issued = admin("key", "issue", "--user", "sdk@example.com", "--name", "failover")
        subprocess.run([str(BIN_DIR / "ccp-admin"), "bedrock-key", "set", "--access-key", issued["id"],
                        "--region", "us-east-1"], env=env, input=f"{BEDROCK_KEY}\n".encode(), capture_output=True,
                       check=True)
        return issued["key"]

    admin("user", "create", "--name", "SDK Tester", "--email", "sdk@example.com")
    key = admin("key", "issue", "--user", "sdk@example.com")["key"]
    admin("model-map", "set", "--anthropic", FAILOVER_MODEL, "--bedrock", FAILOVER_BEDROCK_ID)
    log_path = data / "gateway.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([str(BIN_DIR / "ccp-gateway")], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    wait_until_ready(f"{base}/readyz", proc, log_path)
    yield {"base": base, "base_url": f"{base}/ak/{key}", "key": key, "log": log_path, "process": proc,
           "failover_key": failover_key, "data": data, "admin": admin, "env": env}
    proc.terminate()
    proc.wait(timeout=15)
