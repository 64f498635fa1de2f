"""Usage policies as the official Anthropic SDK sees them, through the real gateway binary:
a bedrock_only user whose key has no Bedrock key gets a PermissionDeniedError, and a user
whose monthly Bedrock budget is used up gets a RateLimitError at once (the gateway says
`x-should-retry: false`, so even the SDK's default retries do not loop)."""

import subprocess
import time

import anthropic
import pytest

from conftest import BEDROCK_KEY, BIN_DIR, FAILOVER_MODEL, FakeAnthropic, FakeBedrock


def user_with_key(gateway, email, *policy, bedrock_key=False):
    gateway["admin"]("user", "create", "--name", email.split("@")[0], "--email", email)
    shown = gateway["admin"]("user", "set", email, *policy)
    issued = gateway["admin"]("key", "issue", "--user", email)
    if bedrock_key:
        subprocess.run([str(BIN_DIR / "ccp-admin"), "bedrock-key", "set", "--access-key", issued["id"],
                        "--region", "us-east-1"], env=gateway["env"], input=f"{BEDROCK_KEY}\n".encode(),
                       capture_output=True, check=True)
    return shown, anthropic.Anthropic(base_url=f"{gateway['base']}/ak/{issued['key']}", api_key="sk-ant-sdk-policy")


def test_bedrock_only_without_a_bedrock_key_is_a_permission_error(gateway):
    shown, client = user_with_key(gateway, "nokey@example.com", "--routing", "bedrock_only")
    assert shown["user"]["routing"] == "bedrock_only"
    FakeAnthropic.seen.clear()
    with pytest.raises(anthropic.PermissionDeniedError) as raised:
        client.messages.create(model=FAILOVER_MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    assert raised.value.status_code == 403
    assert "no Bedrock API key" in raised.value.message
    assert FakeAnthropic.seen == [], "a bedrock_only user never reaches the Anthropic API"


def test_a_used_up_budget_is_a_rate_limit_error_the_sdk_does_not_retry(gateway):
    shown, client = user_with_key(gateway, "spent@example.com", "--routing", "bedrock_only", "--budget-usd", "0",
                                  bedrock_key=True)
    assert shown["monthly_budget_usd"] == "0.00" and shown["budget"]["state"] == "over"
    FakeBedrock.seen.clear()
    started = time.monotonic()
    with pytest.raises(anthropic.RateLimitError) as raised:
        client.messages.create(model=FAILOVER_MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    # The SDK's default is 2 retries with backoff; none happened.
    assert time.monotonic() - started < 1.5
    assert raised.value.status_code == 429
    assert raised.value.response.headers["x-should-retry"] == "false"
    assert int(raised.value.response.headers["retry-after"]) > 0
    assert "monthly Amazon Bedrock budget of $0.00" in raised.value.message
    assert FakeBedrock.seen == []
