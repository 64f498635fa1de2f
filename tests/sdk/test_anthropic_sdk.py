"""The official Anthropic Python SDK, a client nobody here wrote, used through the gateway
exactly as a user would: base_url = http://<gateway>/ak/<access key>."""

import anthropic
import pytest

from conftest import MESSAGE, TOOL_INPUT, FakeAnthropic, log_once_more

CLIENT_KEY = "sk-ant-sdk-CANARYCT-0001"


@pytest.fixture()
def client(gateway):
    FakeAnthropic.seen.clear()
    return anthropic.Anthropic(base_url=gateway["base_url"], api_key=CLIENT_KEY, max_retries=0)


def credential_seen(request):
    headers = {k.lower(): v for k, v in request["headers"].items()}
    return headers.get("x-api-key") == CLIENT_KEY or headers.get("authorization") == f"Bearer {CLIENT_KEY}"


def test_messages_create(client):
    message = client.messages.create(
        model="claude-sonnet-5-5", max_tokens=64, messages=[{"role": "user", "content": "say hi"}]
    )
    assert message.id == MESSAGE["id"]
    assert message.content[0].text == "Hello through the gateway"
    assert message.usage.input_tokens == 21
    (seen,) = FakeAnthropic.seen
    assert seen["path"] == "/v1/messages"
    assert credential_seen(seen), "the client's own credential reaches the upstream unchanged"


def test_messages_stream_with_a_tool_use_block(client):
    with client.messages.stream(
        model="claude-sonnet-5-5", max_tokens=64, messages=[{"role": "user", "content": "run echo"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello through the gateway ✓"
    assert final.stop_reason == "tool_use"
    tool = final.content[1]
    assert (tool.type, tool.name, tool.input) == ("tool_use", "Bash", TOOL_INPUT)
    assert final.usage.output_tokens == 9
    assert FakeAnthropic.seen[0]["headers"].get("x-stainless-helper-method") == "stream"


def test_messages_count_tokens(client):
    count = client.messages.count_tokens(model="claude-sonnet-5-5", messages=[{"role": "user", "content": "hi"}])
    assert count.input_tokens == 17
    assert FakeAnthropic.seen[0]["path"] == "/v1/messages/count_tokens"


def test_models_list(client):
    models = client.models.list()
    assert [m.id for m in models.data] == ["claude-sonnet-5-5"]


def test_upstream_rate_limit_reaches_the_sdk_as_a_rate_limit_error(client):
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model="rate-limited-model", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    err = caught.value
    assert err.status_code == 429
    assert err.response.headers["retry-after"] == "3"
    assert err.body["error"]["type"] == "rate_limit_error"


def test_unknown_access_key_is_a_not_found_error(gateway):
    bad = anthropic.Anthropic(
        base_url=gateway["base_url"].rsplit("/", 1)[0] + "/ccp_unknown", api_key=CLIENT_KEY, max_retries=0
    )
    FakeAnthropic.seen.clear()
    with pytest.raises(anthropic.NotFoundError) as caught:
        bad.messages.create(model="claude-sonnet-5-5", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    assert caught.value.body["error"]["type"] == "not_found_error"
    assert FakeAnthropic.seen == []


def test_gateway_logs_hold_no_secrets(gateway, client):
    log = log_once_more(
        gateway["log"],
        '"target":"ccp::access"',
        lambda: client.messages.create(model="claude-sonnet-5-5", max_tokens=8, messages=[{"role": "user", "content": "x"}]),
    )
    assert gateway["key"] not in log
    assert gateway["key"][4:16] not in log
    assert CLIENT_KEY not in log
