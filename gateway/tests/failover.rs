#![allow(clippy::unwrap_used)]
//! Plan → Bedrock failover, end to end: the real gateway between a scriptable fake Anthropic
//! API and a fake Bedrock runtime that speaks the binary event-stream (frames encoded by AWS's
//! own aws-smithy-eventstream).

mod common;

use ccp_testkit::bedrock as fake;
use ccp_testkit::{RecordedRequest, Reply, ReplyBody};
use common::{BEDROCK_KEY, Harness, anthropic_error};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

const CLIENT_TOKEN: &str = "sk-ant-oat01-CANARYCTclienttoken";
const SONNET_PROFILE_PATH: &str = "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0";

fn plan_429(_: &RecordedRequest) -> Reply {
    Reply::json(
        429,
        r#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of requests has exceeded your rate limit"}}"#,
    )
    .with_header("retry-after", "17")
    .with_header("anthropic-ratelimit-requests-remaining", "0")
}

/// Streams for `/converse-stream`, JSON for `/converse`, a count for `/count-tokens`.
fn bedrock_ok(req: &RecordedRequest) -> Reply {
    if req.target.ends_with("/converse-stream") {
        fake::stream_reply(
            fake::text_stream(&["Hello ", "from ", "Bedrock"], 30, 7),
            Duration::from_millis(5),
        )
    } else if req.target.ends_with("/count-tokens") {
        Reply::json(200, r#"{"inputTokens":42}"#)
    } else {
        fake::converse_reply("Hello from Bedrock")
    }
}

fn request_body(stream: bool) -> Value {
    json!({
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 32000,
        "stream": stream,
        "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "say hi"}]}],
        "metadata": {"user_id": "{\"device_id\":\"abc\"}"},
    })
}

async fn post(h: &Harness, path: &str, body: &Value) -> reqwest::Response {
    h.client
        .post(h.url(path))
        .header("authorization", format!("Bearer {CLIENT_TOKEN}"))
        .header("x-api-key", "sk-ant-api03-CANARYXAKvalue")
        .header("cookie", "session=CANARYCOOKIE")
        .header("anthropic-version", "2023-06-01")
        .header(
            "anthropic-beta",
            "claude-code-20250219,interleaved-thinking-2025-05-14",
        )
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Parses an SSE body into (event, data) pairs.
fn sse_events(body: &[u8]) -> Vec<(String, Value)> {
    let text = std::str::from_utf8(body).unwrap();
    text.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut event = String::new();
            let mut data = Value::Null;
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event: ") {
                    event = e.to_owned();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(d).unwrap();
                }
            }
            (event, data)
        })
        .collect()
}

fn names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(e, _)| e.as_str()).collect()
}

/// Nothing the client sent to authenticate itself reaches Bedrock.
fn assert_no_client_secrets(req: &RecordedRequest) {
    let raw = [req.raw_head.as_slice(), req.body.as_slice()].concat();
    let raw = String::from_utf8_lossy(&raw);
    for canary in [
        "CANARYCT",
        "CANARYXAK",
        "CANARYCOOKIE",
        "anthropic-",
        "x-api-key",
        "cookie",
    ] {
        assert!(!raw.contains(canary), "{canary} reached Bedrock:\n{raw}");
    }
    assert_eq!(
        req.header("authorization"),
        Some(format!("Bearer {BEDROCK_KEY}").as_str())
    );
}

#[tokio::test]
async fn plan_429_fails_over_to_a_bedrock_stream() {
    let h = Harness::start_failover(plan_429, bedrock_ok, &[]).await;
    let resp = post(&h, "/v1/messages?beta=true", &request_body(true)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    assert_eq!(resp.headers()["x-ccp-upstream"], "bedrock");
    let events = sse_events(&resp.bytes().await.unwrap());
    assert_eq!(
        names(&events),
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(
        events[0].1["message"]["model"],
        "claude-sonnet-4-5-20250929"
    );
    let text: String = events
        .iter()
        .filter_map(|(_, d)| d["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, "Hello from Bedrock");
    assert_eq!(events[6].1["delta"]["stop_reason"], "end_turn");
    assert_eq!(events[6].1["usage"]["input_tokens"], 30);
    assert_eq!(events[6].1["usage"]["output_tokens"], 7);
    assert_eq!(events[6].1["usage"]["cache_read_input_tokens"], 3);

    // Plan got the client's request with the client's credentials.
    let plan = h.upstream.last_request().unwrap();
    assert_eq!(plan.target, "/v1/messages?beta=true");
    assert_eq!(
        plan.header("authorization"),
        Some(format!("Bearer {CLIENT_TOKEN}").as_str())
    );
    // Bedrock got a Converse request built from scratch.
    let bedrock = h.bedrock().last_request().unwrap();
    assert_eq!(bedrock.method, "POST");
    assert_eq!(
        bedrock.target,
        format!("{SONNET_PROFILE_PATH}/converse-stream")
    );
    assert_no_client_secrets(&bedrock);
    let converse: Value = serde_json::from_slice(&bedrock.body).unwrap();
    assert_eq!(converse["messages"][0]["content"][0]["text"], "say hi");
    assert_eq!(converse["system"][1]["cachePoint"]["type"], "default");
    assert!(converse.get("metadata").is_none());
    assert_eq!(
        converse["additionalModelRequestFields"]["anthropic_beta"],
        json!(["interleaved-thinking-2025-05-14"])
    );
}

#[tokio::test]
async fn plan_529_fails_over_to_bedrock_json() {
    let h = Harness::start_failover(
        |_| {
            Reply::json(
                529,
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            )
        },
        bedrock_ok,
        &[],
    )
    .await;
    let resp = post(&h, "/v1/messages", &request_body(false)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let message: Value = resp.json().await.unwrap();
    assert_eq!(message["type"], "message");
    assert_eq!(message["model"], "claude-sonnet-4-5-20250929");
    assert_eq!(message["content"][0]["text"], "Hello from Bedrock");
    assert!(message["id"].as_str().unwrap().starts_with("msg_bdrk_"));
    assert_eq!(message["usage"]["input_tokens"], 11);
    let bedrock = h.bedrock().last_request().unwrap();
    assert_eq!(bedrock.target, format!("{SONNET_PROFILE_PATH}/converse"));
    assert_no_client_secrets(&bedrock);
}

#[tokio::test]
async fn refused_plan_connection_fails_over() {
    let closed = common::ClosedPort::new();
    let h =
        Harness::start_failover(plan_429, bedrock_ok, &[("plan_base_url", &closed.url())]).await;
    let resp = post(&h, "/v1/messages", &request_body(true)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-ccp-upstream"], "bedrock");
    let events = sse_events(&resp.bytes().await.unwrap());
    assert_eq!(events.last().unwrap().0, "message_stop");
    assert_eq!(h.bedrock().hits(), 1);
}

#[tokio::test]
async fn three_plan_failures_open_the_circuit_and_the_fourth_goes_direct() {
    let h = Harness::start_failover(plan_429, bedrock_ok, &[]).await;
    for i in 1..=3 {
        let resp = post(&h, "/v1/messages", &request_body(false)).await;
        assert_eq!(resp.status(), 200, "request {i}");
        assert_eq!(h.upstream.hits(), i);
    }
    for _ in 0..2 {
        let resp = post(&h, "/v1/messages", &request_body(true)).await;
        assert_eq!(resp.status(), 200);
        let events = sse_events(&resp.bytes().await.unwrap());
        assert_eq!(events.last().unwrap().0, "message_stop");
    }
    assert_eq!(
        h.upstream.hits(),
        3,
        "an open circuit sends nothing to Plan"
    );
    assert_eq!(h.bedrock().hits(), 5);
    assert_no_client_secrets(&h.bedrock().last_request().unwrap());
}

#[tokio::test]
async fn after_the_open_period_one_probe_goes_to_plan_and_closes_the_circuit() {
    let failing = Arc::new(AtomicBool::new(true));
    let plan_failing = Arc::clone(&failing);
    let probe_gate = ccp_testkit::Gate::new();
    let plan_gate = probe_gate.clone();
    let probed = AtomicBool::new(false);
    let h = Harness::start_failover(
        move |req| {
            if plan_failing.load(Ordering::SeqCst) {
                return plan_429(req);
            }
            let ok = Reply::json(200, r#"{"type":"message","content":[]}"#);
            // The probe's success is held until the test lets it go, so the other requests
            // arrive while the probe is out.
            if probed.swap(true, Ordering::SeqCst) {
                ok
            } else {
                ok.held(&plan_gate)
            }
        },
        bedrock_ok,
        &[("circuit_open_secs", "1")],
    )
    .await;
    for _ in 0..3 {
        assert_eq!(
            post(&h, "/v1/messages", &request_body(false))
                .await
                .status(),
            200
        );
    }
    assert_eq!(h.upstream.hits(), 3);
    failing.store(false, Ordering::SeqCst);
    // The rule under test: the circuit stays open for `circuit_open_secs` (1 s).
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // The first request probes Plan; while it is out, four more stay on Bedrock.
    let send = || {
        let (client, url) = (h.client.clone(), h.url("/v1/messages"));
        tokio::spawn(async move {
            let resp = client
                .post(url)
                .json(&request_body(false))
                .send()
                .await
                .unwrap();
            (
                resp.status().as_u16(),
                resp.headers().get("x-ccp-upstream").is_some(),
            )
        })
    };
    let bedrock_before = h.bedrock().hits();
    let probe = send();
    common::eventually("the probe reaches Plan", || async {
        h.upstream.hits() == 4
    })
    .await;
    let mut via_bedrock = 0;
    for _ in 0..4 {
        let (status, bedrock) = send().await.unwrap();
        assert_eq!(status, 200);
        via_bedrock += usize::from(bedrock);
    }
    probe_gate.open(1);
    assert_eq!(
        probe.await.unwrap(),
        (200, false),
        "the probe is served by Plan"
    );
    assert_eq!(h.upstream.hits(), 4, "exactly one probe");
    assert_eq!(via_bedrock, 4);
    assert_eq!(h.bedrock().hits(), bedrock_before + 4);

    // The probe succeeded: the circuit is closed and Plan serves again.
    let resp = post(&h, "/v1/messages", &request_body(false)).await;
    assert!(resp.headers().get("x-ccp-upstream").is_none());
    assert_eq!(h.upstream.hits(), 5);
}

#[tokio::test]
async fn plan_client_errors_are_relayed_and_never_counted() {
    let h = Harness::start_failover(
        |_| {
            Reply::json(400, r#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: too big"}}"#)
                .with_header("request-id", "req_plan_1")
        },
        bedrock_ok,
        &[],
    )
    .await;
    for _ in 0..5 {
        let resp = post(&h, "/v1/messages", &request_body(false)).await;
        assert_eq!(resp.status(), 400);
        assert_eq!(resp.headers()["request-id"], "req_plan_1");
        let body = resp.bytes().await.unwrap();
        assert_eq!(
            &body[..],
            br#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: too big"}}"#
        );
    }
    assert_eq!(h.upstream.hits(), 5, "five 400s did not open the circuit");
    assert_eq!(h.bedrock().hits(), 0);
}

#[tokio::test]
async fn when_bedrock_fails_too_the_client_gets_the_plan_429() {
    let h = Harness::start_failover(
        plan_429,
        |_| fake::error_reply(503, "ServiceUnavailableException", "Bedrock is down"),
        &[],
    )
    .await;
    let resp = post(&h, "/v1/messages", &request_body(true)).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "17");
    assert_eq!(
        resp.headers()["anthropic-ratelimit-requests-remaining"],
        "0"
    );
    let (kind, _) = anthropic_error(&resp.bytes().await.unwrap());
    assert_eq!(kind, "rate_limit_error");
    assert_eq!(h.bedrock().hits(), 1, "one Bedrock attempt, no loop");

    // The same when the first stream frame is an exception.
    let h = Harness::start_failover(
        plan_429,
        |_| {
            fake::stream_reply(
                vec![fake::exception("throttlingException", "Too many tokens")],
                Duration::ZERO,
            )
        },
        &[],
    )
    .await;
    let resp = post(&h, "/v1/messages", &request_body(true)).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "17");
}

#[tokio::test]
async fn a_200_kb_body_fails_over_whole() {
    let h = Harness::start_failover(plan_429, bedrock_ok, &[]).await;
    let big = "x".repeat(200 * 1024);
    let mut body = request_body(true);
    body["messages"][0]["content"][0]["text"] = json!(big);
    let resp = post(&h, "/v1/messages", &body).await;
    assert_eq!(resp.status(), 200);
    let _ = resp.bytes().await.unwrap();
    let plan = h.upstream.last_request().unwrap();
    assert!(plan.body.len() > 200 * 1024);
    let bedrock = h.bedrock().last_request().unwrap();
    let converse: Value = serde_json::from_slice(&bedrock.body).unwrap();
    assert_eq!(converse["messages"][0]["content"][0]["text"], json!(big));
}

#[tokio::test]
async fn a_gzip_body_is_decoded_before_translation() {
    use std::io::Write;
    let h = Harness::start_failover(plan_429, bedrock_ok, &[]).await;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&serde_json::to_vec(&request_body(false)).unwrap())
        .unwrap();
    let packed = gz.finish().unwrap();
    let resp = h
        .client
        .post(h.url("/v1/messages"))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(packed.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // Plan got the compressed bytes untouched; Bedrock got translated JSON.
    assert_eq!(h.upstream.last_request().unwrap().body, packed);
    let converse: Value =
        serde_json::from_slice(&h.bedrock().last_request().unwrap().body).unwrap();
    assert_eq!(converse["messages"][0]["content"][0]["text"], "say hi");
}

#[tokio::test]
async fn a_refused_thinking_signature_is_retried_once_without_thinking() {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let h = Harness::start_failover(
        plan_429,
        move |req| {
            if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                fake::error_reply(
                    400,
                    "ValidationException",
                    "messages.1.content.0: Invalid `signature` in `thinking` block",
                )
            } else {
                bedrock_ok(req)
            }
        },
        &[],
    )
    .await;
    let body = json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 32000,
        "thinking": {"type": "enabled", "budget_tokens": 4000},
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "first-party-sig"},
                {"type": "text", "text": "hello"}]},
            {"role": "user", "content": "again"}
        ]
    });
    let resp = post(&h, "/v1/messages", &body).await;
    assert_eq!(resp.status(), 200);
    let requests = h.bedrock().requests();
    assert_eq!(requests.len(), 2);
    let first: Value = serde_json::from_slice(&requests[0].body).unwrap();
    let second: Value = serde_json::from_slice(&requests[1].body).unwrap();
    assert!(first.to_string().contains("reasoningContent"));
    assert!(first["additionalModelRequestFields"]["thinking"].is_object());
    assert!(!second.to_string().contains("reasoningContent"));
    assert!(
        second["additionalModelRequestFields"]
            .get("thinking")
            .is_none()
    );
}

#[tokio::test]
async fn unmapped_models_do_not_fail_over_and_get_a_400_on_bedrock_direct() {
    let h = Harness::start_failover(plan_429, bedrock_ok, &[("model_map_refresh_secs", "1")]).await;
    let mut body = request_body(false);
    body["model"] = json!("claude-unknown-9");
    // Failover impossible: the client gets Plan's 429.
    let resp = post(&h, "/v1/messages", &body).await;
    assert_eq!(resp.status(), 429);
    for _ in 0..2 {
        post(&h, "/v1/messages", &body).await;
    }
    assert_eq!(h.upstream.hits(), 3);
    // Circuit open: Bedrock direct names the model.
    let resp = post(&h, "/v1/messages", &body).await;
    assert_eq!(resp.status(), 400);
    let (kind, message) = anthropic_error(&resp.bytes().await.unwrap());
    assert_eq!(kind, "invalid_request_error");
    assert!(message.contains("claude-unknown-9"), "{message}");
    assert_eq!(h.bedrock().hits(), 0);
    // A mapping added by an admin takes effect (the map is re-read every refresh period).
    h.store
        .upsert_model_mapping(ccp_core::store::NewModelMapping {
            anthropic_model: "claude-unknown-9".into(),
            bedrock_model_id: "global.anthropic.claude-unknown-9-v1".into(),
            max_output_tokens: Some(8000),
            enabled: true,
        })
        .await
        .unwrap();
    common::eventually("the new mapping is used", || async {
        let status = post(&h, "/v1/messages", &body).await.status();
        assert!(status == 200 || status == 400, "{status}");
        status == 200
    })
    .await;
    let bedrock = h.bedrock().last_request().unwrap();
    assert_eq!(
        bedrock.target,
        "/model/global.anthropic.claude-unknown-9-v1/converse"
    );
    let converse: Value = serde_json::from_slice(&bedrock.body).unwrap();
    assert_eq!(converse["inferenceConfig"]["maxTokens"], 8000);
}

#[tokio::test]
async fn count_tokens_on_bedrock_direct_counts_or_estimates() {
    let counting = Arc::new(AtomicBool::new(true));
    let bedrock_counting = Arc::clone(&counting);
    let h = Harness::start_failover(
        plan_429,
        move |req| {
            if req.target.ends_with("/count-tokens") && !bedrock_counting.load(Ordering::SeqCst) {
                fake::error_reply(
                    400,
                    "ValidationException",
                    "CountTokens is not supported for this model",
                )
            } else {
                bedrock_ok(req)
            }
        },
        &[],
    )
    .await;
    let body = json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "count me"}]});
    for _ in 0..3 {
        post(&h, "/v1/messages/count_tokens", &body).await;
    }
    let resp = post(&h, "/v1/messages/count_tokens", &body).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("x-ccp-token-estimate").is_none());
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"input_tokens": 42})
    );
    let req = h.bedrock().last_request().unwrap();
    assert_eq!(req.target, format!("{SONNET_PROFILE_PATH}/count-tokens"));
    let sent: Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(
        sent["input"]["converse"]["messages"][0]["content"][0]["text"],
        "count me"
    );

    counting.store(false, Ordering::SeqCst);
    let resp = post(&h, "/v1/messages/count_tokens", &body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-ccp-token-estimate"], "true");
    assert!(
        resp.json::<Value>().await.unwrap()["input_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[tokio::test]
async fn a_ciphertext_copied_to_another_key_does_not_decrypt() {
    let h = Harness::start_failover(plan_429, bedrock_ok, &[]).await;
    let (other_key, other_id) = h.issue_key(None).await;
    let stolen = h.store.bedrock_key(h.key_id).await.unwrap().unwrap();
    h.store
        .set_bedrock_key(ccp_core::store::NewBedrockKey {
            access_key_id: other_id,
            ciphertext: stolen.ciphertext,
            wrapper: "local",
            region: "us-east-1".into(),
            last4: stolen.last4,
        })
        .await
        .unwrap();
    let resp = h
        .client
        .post(format!(
            "http://{}/ak/{}/v1/messages",
            h.addr(),
            other_key.expose()
        ))
        .json(&request_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        429,
        "no failover with a key that does not open"
    );
    assert_eq!(h.bedrock().hits(), 0);
}

#[tokio::test]
async fn a_bedrock_stream_cut_midway_ends_with_an_error_event() {
    let h = Harness::start_failover(
        plan_429,
        |_| {
            let mut frames = fake::text_stream(&["partial "], 5, 1);
            frames.truncate(2); // messageStart and one delta, then the connection closes
            let body: Vec<u8> = frames.concat();
            Reply {
                status: 200,
                headers: vec![(
                    "content-type".into(),
                    "application/vnd.amazon.eventstream".into(),
                )],
                body: ReplyBody::Truncated {
                    announced: body.len() + 500,
                    sent: body,
                },
                head_delay: None,
            }
        },
        &[],
    )
    .await;
    let resp = post(&h, "/v1/messages", &request_body(true)).await;
    assert_eq!(resp.status(), 200);
    let events = sse_events(&resp.bytes().await.unwrap());
    let (last, data) = events.last().unwrap();
    assert_eq!(last, "error", "{events:?}");
    assert_eq!(data["error"]["type"], "overloaded_error");
    assert!(!names(&events).contains(&"message_stop"));
}

#[tokio::test]
async fn keys_without_a_bedrock_key_never_fail_over() {
    let h = Harness::start_failover(plan_429, bedrock_ok, &[]).await;
    let (plain_key, _) = h.issue_key(None).await;
    for _ in 0..4 {
        let resp = h
            .client
            .post(format!(
                "http://{}/ak/{}/v1/messages",
                h.addr(),
                plain_key.expose()
            ))
            .json(&request_body(false))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 429);
        assert_eq!(
            &resp.bytes().await.unwrap()[..],
            br#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of requests has exceeded your rate limit"}}"#
        );
    }
    assert_eq!(h.upstream.hits(), 4);
    assert_eq!(h.bedrock().hits(), 0);
}

#[tokio::test]
async fn a_cut_plan_stream_ends_with_an_error_event() {
    let message_start = b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}}\n\n".to_vec();
    let delta = b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}\n\n".to_vec();
    // (a) A clean chunked end without message_stop; (b) a connection reset mid-body.
    let clean_end = {
        let (a, b) = (message_start.clone(), delta.clone());
        move |_: &RecordedRequest| Reply::sse(vec![a.clone(), b.clone()], Duration::from_millis(5))
    };
    let reset = move |_: &RecordedRequest| Reply {
        status: 200,
        headers: vec![("content-type".into(), "text/event-stream".into())],
        body: ReplyBody::ChunkedCut(vec![
            (Duration::ZERO, message_start.clone()),
            (Duration::from_millis(5), delta.clone()),
        ]),
        head_delay: None,
    };
    for h in [
        Harness::start_failover(clean_end, bedrock_ok, &[]).await,
        Harness::start_failover(reset, bedrock_ok, &[]).await,
    ] {
        let mut resp = post(&h, "/v1/messages", &request_body(true)).await;
        assert_eq!(resp.status(), 200);
        // A reset stream's body ends without its final chunk: read what arrived.
        let mut body = Vec::new();
        while let Ok(Some(chunk)) = resp.chunk().await {
            body.extend_from_slice(&chunk);
        }
        let events = sse_events(&body);
        assert_eq!(
            names(&events)[..2],
            ["message_start", "content_block_delta"]
        );
        assert_eq!(events.last().unwrap().0, "error", "{events:?}");
        assert_eq!(
            events.last().unwrap().1["error"]["type"],
            "overloaded_error"
        );
        assert_eq!(h.bedrock().hits(), 0, "no failover after bytes went out");
    }
}

#[tokio::test]
async fn a_plan_that_never_answers_fails_over_after_the_read_timeout() {
    let h = Harness::start_failover(
        |_| Reply {
            status: 200,
            headers: vec![],
            body: ReplyBody::Hang,
            head_delay: None,
        },
        bedrock_ok,
        &[("plan_read_timeout_secs", "1")],
    )
    .await;
    let started = std::time::Instant::now();
    let resp = post(&h, "/v1/messages", &request_body(true)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-ccp-upstream"], "bedrock");
    let events = sse_events(&resp.bytes().await.unwrap());
    assert_eq!(events.last().unwrap().0, "message_stop");
    // The rule: Plan was given its full read timeout (a lower bound; no speed is checked).
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
}

#[tokio::test]
async fn the_connection_after_a_cut_plan_stream_still_works() {
    let start = b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"m\",\"usage\":{\"input_tokens\":1}}}\n\n".to_vec();
    let h = Harness::start_failover(
        move |req: &RecordedRequest| {
            if req.body.windows(3).any(|w| w == b"cut") {
                Reply {
                    status: 200,
                    headers: vec![("content-type".into(), "text/event-stream".into())],
                    body: ReplyBody::ChunkedCut(vec![(Duration::ZERO, start.clone())]),
                    head_delay: None,
                }
            } else {
                Reply::json(200, r#"{"type":"message"}"#)
            }
        },
        bedrock_ok,
        &[],
    )
    .await;
    // One pooled connection: the second request reuses it unless the gateway said close.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    for _ in 0..20 {
        let mut cut = client
            .post(h.url("/v1/messages"))
            .body(r#"{"model":"cut","stream":true}"#)
            .send()
            .await
            .unwrap();
        let mut body = Vec::new();
        while let Ok(Some(chunk)) = cut.chunk().await {
            body.extend_from_slice(&chunk);
        }
        assert!(String::from_utf8_lossy(&body).contains("event: error"));
        let next = client
            .post(h.url("/v1/messages"))
            .body(r#"{"model":"ok"}"#)
            .send()
            .await
            .expect("the next request on the pool is served");
        assert_eq!(next.status(), 200);
    }
}

#[tokio::test]
async fn claude_codes_default_model_is_a_visible_missed_failover_until_its_family_has_a_default() {
    let h = Harness::start_failover(
        plan_429,
        bedrock_ok,
        &[
            ("model_map_refresh_secs", "1"),
            ("metrics_addr", "127.0.0.1:0"),
        ],
    )
    .await;
    let mut body = request_body(false);
    body["model"] = json!("claude-opus-5-5");

    let resp = post(&h, "/v1/messages", &body).await;
    assert_eq!(resp.status(), 429, "no mapping: Plan's answer is relayed");
    let row = common::logged(&h, &resp).await;
    assert_eq!(row.failover_skip.as_deref(), Some("unmapped_model"));
    assert_eq!(row.model.as_deref(), Some("claude-opus-5-5"));
    let metrics = common::scrape(&h.client, &h.metrics_addr()).await;
    assert!(
        metrics.contains(
            r#"ccp_failover_skipped_total{reason="unmapped_model",model="claude-opus-5-5"} 1"#
        ),
        "{metrics}"
    );
    // What the admin API and `ccp-admin model-map unmapped` list.
    let unmapped = ccp_admin_server::ops::unmapped_models(&h.store, 7)
        .await
        .unwrap();
    assert_eq!(unmapped.len(), 1, "{unmapped:?}");
    assert_eq!(unmapped[0].model, "claude-opus-5-5");
    assert_eq!((unmapped[0].requests, unmapped[0].missed_failovers), (1, 1));
    assert_eq!(unmapped[0].family, Some("opus"));

    // The admin sets the opus family default; the same request now fails over to it.
    h.store
        .upsert_model_mapping(ccp_core::store::NewModelMapping {
            anthropic_model: "family:opus".into(),
            bedrock_model_id: "global.anthropic.claude-opus-4-7".into(),
            max_output_tokens: None,
            enabled: true,
        })
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let resp = loop {
        let resp = post(&h, "/v1/messages", &body).await;
        // 429 relayed, or 400 on Bedrock direct once the circuit opened, until the map reloads.
        let status = resp.status().as_u16();
        assert!([200, 400, 429].contains(&status), "{status}");
        if status == 200 {
            break resp;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the family default is never used"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(resp.headers()["x-ccp-upstream"], "bedrock");
    assert_eq!(
        resp.headers()["x-ccp-bedrock-model"],
        "global.anthropic.claude-opus-4-7"
    );
    assert_eq!(
        h.bedrock().last_request().unwrap().target,
        "/model/global.anthropic.claude-opus-4-7/converse"
    );
    let row = common::logged(&h, &resp).await;
    assert_eq!(row.failover_skip, None);
    assert_eq!(
        row.model.as_deref(),
        Some("claude-opus-5-5"),
        "what was asked"
    );
    assert_eq!(
        row.usage_model.as_deref(),
        Some("global.anthropic.claude-opus-4-7"),
        "what was called (and priced)"
    );
    let message: Value = resp.json().await.unwrap();
    assert_eq!(message["model"], "claude-opus-5-5");
    assert!(
        ccp_admin_server::ops::unmapped_models(&h.store, 7)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn an_unresolvable_plan_host_is_a_502_that_names_it_and_fails_over() {
    // `.invalid` never resolves (RFC 6761).
    let h = Harness::start_failover(
        plan_429,
        bedrock_ok,
        &[
            ("plan_base_url", "http://plan.invalid:8080"),
            ("metrics_addr", "127.0.0.1:0"),
        ],
    )
    .await;
    // A key without a Bedrock key: an Anthropic-shaped 502 that says why.
    let (plain, _) = h.issue_key(None).await;
    let resp = h
        .client
        .post(format!(
            "http://{}/ak/{}/v1/messages",
            h.addr(),
            plain.expose()
        ))
        .json(&request_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 502);
    let (kind, message) = anthropic_error(&resp.bytes().await.unwrap());
    assert_eq!(kind, "api_error");
    assert!(message.contains("did not resolve"), "{message}");
    // The key with a Bedrock key fails over, and the failures count for the breaker.
    for i in 1..=4 {
        let resp = post(&h, "/v1/messages", &request_body(false)).await;
        assert_eq!(resp.status(), 200, "request {i}");
        assert_eq!(resp.headers()["x-ccp-upstream"], "bedrock");
    }
    assert_eq!(h.bedrock().hits(), 4);
    let metrics = common::scrape(&h.client, &h.metrics_addr()).await;
    assert!(
        metrics.contains(r#"ccp_circuit_transitions_total{transition="opened"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"ccp_gateway_errors_total{error="plan_unreachable"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_history_bedrock_would_refuse_is_repaired_and_counted() {
    let h = Harness::start_failover(plan_429, bedrock_ok, &[("metrics_addr", "127.0.0.1:0")]).await;
    // Thinking on, but the tool turn ran without thinking (it was toggled on since).
    let body = json!({
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 32000,
        "thinking": {"type": "enabled", "budget_tokens": 8000},
        "tools": [{"name": "Bash", "input_schema": {"type": "object"}}],
        "messages": [
            {"role": "user", "content": "list the files"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Listing."},
                {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}},
            ]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "a.txt"}]},
        ],
    });
    let resp = post(&h, "/v1/messages", &body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-ccp-upstream"], "bedrock");
    let sent: Value = serde_json::from_slice(&h.bedrock().last_request().unwrap().body).unwrap();
    assert!(
        sent["additionalModelRequestFields"]
            .get("thinking")
            .is_none(),
        "{sent}"
    );
    // Counted when the request is logged, which may come after the client has the answer.
    let addr = h.metrics_addr();
    common::eventually("the repair is counted", || async {
        common::scrape(&h.client, &addr)
            .await
            .contains(r#"ccp_conversation_repairs_total{repair="thinking_off_for_tool_turn"} 1"#)
    })
    .await;
}
