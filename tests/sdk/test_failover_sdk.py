"""Failover as Claude Code would live it, read by the official Anthropic SDK: the Anthropic API
answers 429, the gateway replays the request on (fake) Bedrock's ConverseStream, and the SDK
gets an ordinary Anthropic stream, a tool_use round trip included."""

import json
import subprocess

import anthropic
import pytest

from conftest import (
    BEDROCK_KEY,
    BIN_DIR,
    FAILOVER_BEDROCK_ID,
    FAILOVER_MODEL,
    TOOL_INPUT,
    FakeAnthropic,
    FakeBedrock,
    log_once_more,
)

CLIENT_KEY = "sk-ant-sdk-CANARYCT-0002"


@pytest.fixture()
def failover_key(gateway):
    """This test's own access key with a Bedrock key (a fresh circuit breaker)."""
    return gateway["failover_key"]()


@pytest.fixture()
def client(gateway, failover_key):
    FakeAnthropic.seen.clear()
    FakeBedrock.seen.clear()
    return anthropic.Anthropic(base_url=f"{gateway['base']}/ak/{failover_key}", api_key=CLIENT_KEY, max_retries=0)


def assert_no_client_credentials(seen):
    for request in seen:
        everything = request["raw"] + request["body"].decode()
        for canary in ("CANARYCT", "anthropic-version", "anthropic-beta", "x-api-key"):
            assert canary not in everything, f"{canary} reached Bedrock"
        assert request["headers"]["authorization"] == f"Bearer {BEDROCK_KEY}"


def test_a_rate_limited_stream_fails_over_and_a_tool_round_trip_completes(client):
    history = [{"role": "user", "content": "run echo"}]
    with client.messages.stream(model=FAILOVER_MODEL, max_tokens=1024, messages=history,
                                tools=[{"name": "Bash", "description": "Run a command",
                                        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}]) as stream:
        text = "".join(stream.text_stream)
        first = stream.get_final_message()
    assert text == "Running the tool."
    assert first.model == FAILOVER_MODEL
    assert first.stop_reason == "tool_use"
    tool = first.content[1]
    assert tool.type == "tool_use" and tool.name == "Bash" and tool.id == "tooluse_bdrk_01"
    assert tool.input == TOOL_INPUT
    assert first.usage.input_tokens == 40 and first.usage.output_tokens == 12
    assert first.usage.cache_read_input_tokens == 5

    # The tool result goes back the same way.
    history += [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool.id, "content": "cc-accept-12345"}]}]
    with client.messages.stream(model=FAILOVER_MODEL, max_tokens=1024, messages=history) as stream:
        second = stream.get_final_message()
    assert second.content[0].text == "TOOL_OK cc-accept-12345"
    assert second.stop_reason == "end_turn"

    assert len(FakeAnthropic.seen) == 2, "Plan was tried first each time"
    converse = json.loads(FakeBedrock.seen[1]["body"])
    result = converse["messages"][-1]["content"][0]["toolResult"]
    assert result["toolUseId"] == "tooluse_bdrk_01"
    assert [r["path"] for r in FakeBedrock.seen] == [f"/model/{FAILOVER_BEDROCK_ID.replace(':', '%3A')}/converse-stream"] * 2
    assert_no_client_credentials(FakeBedrock.seen)


def test_a_rate_limited_create_fails_over_to_converse(client):
    message = client.messages.create(model=FAILOVER_MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}])
    assert message.content[0].text == "Hello from Bedrock"
    assert message.id.startswith("msg_bdrk_")
    assert message.model == FAILOVER_MODEL
    assert_no_client_credentials(FakeBedrock.seen)


def test_no_failover_secret_in_logs_or_listings(gateway, client, failover_key):
    log = log_once_more(
        gateway["log"],
        '"path":"plan_bedrock"',
        lambda: client.messages.create(model=FAILOVER_MODEL, max_tokens=8, messages=[{"role": "user", "content": "x"}]),
    )
    assert BEDROCK_KEY not in log and "CANARYBR" not in log
    assert failover_key not in log
    assert CLIENT_KEY not in log
    db = b"".join(p.read_bytes() for p in gateway["data"].iterdir() if p.is_file())
    assert b"CANARYBR" not in db, "the Bedrock key is stored wrapped"
