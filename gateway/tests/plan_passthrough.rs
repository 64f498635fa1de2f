//! End to end: Claude Code traffic through the real gateway to a fake Anthropic API.

#![allow(clippy::unwrap_used)]

mod common;

use ccp_testkit::{Reply, ReplyBody};
use common::{Harness, anthropic_error, raw_exchange};
use std::time::{Duration, Instant};

const MESSAGE_JSON: &str = r#"{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-5-5","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":10,"output_tokens":2}}"#;

fn ok_json(_: &ccp_testkit::RecordedRequest) -> Reply {
    Reply::json(200, MESSAGE_JSON)
        .with_header("request-id", "req_upstream_1")
        .with_header("anthropic-ratelimit-requests-remaining", "99")
}

/// A Claude Code-like request body of about `kb` kilobytes.
fn claude_code_body(kb: usize, stream: bool) -> Vec<u8> {
    let filler = "You are Claude Code. ".repeat(kb * 1024 / 21);
    serde_json::to_vec(&serde_json::json!({
        "model": "claude-sonnet-5-5",
        "max_tokens": 32000,
        "stream": stream,
        "system": [{"type": "text", "text": filler, "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "say hi ünïcödé ✓"}]}],
        "metadata": {"user_id": "{\"device_id\":\"abc\"}"}
    }))
    .expect("body")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_request_and_response_pass_through_unchanged() {
    let h = Harness::start(ok_json).await;
    let body = claude_code_body(30, false);
    let resp = h
        .client
        .post(h.url("/v1/messages?beta=true"))
        .header("content-type", "application/json")
        .header("x-api-key", "sk-ant-client-key")
        .header("authorization", "Bearer client-oauth-token")
        .header("anthropic-version", "2023-06-01")
        .header(
            "anthropic-beta",
            "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27",
        )
        .header("x-app", "cli")
        .header("user-agent", "claude-cli/2.1.332 (external, sdk-cli)")
        .header(
            "x-claude-code-session-id",
            "04895b6e-9be4-4512-9fed-54e9b08053f8",
        )
        .header("x-stainless-retry-count", "0")
        .header("anthropic-dangerous-direct-browser-access", "true")
        .header("x-forwarded-for", "6.6.6.6")
        .body(body.clone())
        .send()
        .await
        .expect("send");

    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["request-id"], "req_upstream_1");
    assert_eq!(
        resp.headers()["anthropic-ratelimit-requests-remaining"],
        "99"
    );
    let request_id = resp.headers()["x-ccp-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(request_id.len(), 32);
    assert_eq!(resp.bytes().await.unwrap(), MESSAGE_JSON.as_bytes());

    let seen = h.upstream.last_request().expect("upstream was called");
    assert_eq!(seen.method, "POST");
    assert_eq!(
        seen.target, "/v1/messages?beta=true",
        "prefix stripped, query kept"
    );
    assert_eq!(seen.body, body, "body forwarded byte for byte");
    assert_eq!(
        seen.header("host"),
        Some(h.upstream.addr.to_string().as_str())
    );
    assert_eq!(seen.header("x-api-key"), Some("sk-ant-client-key"));
    assert_eq!(
        seen.header("authorization"),
        Some("Bearer client-oauth-token")
    );
    assert_eq!(seen.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(
        seen.header("anthropic-beta"),
        Some("claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27")
    );
    assert_eq!(seen.header("x-app"), Some("cli"));
    assert_eq!(
        seen.header("user-agent"),
        Some("claude-cli/2.1.332 (external, sdk-cli)")
    );
    assert_eq!(
        seen.header("x-claude-code-session-id"),
        Some("04895b6e-9be4-4512-9fed-54e9b08053f8")
    );
    assert_eq!(seen.header("x-stainless-retry-count"), Some("0"));
    assert_eq!(
        seen.header("anthropic-dangerous-direct-browser-access"),
        Some("true")
    );
    assert!(
        !seen.has_header("x-forwarded-for"),
        "client X-Forwarded-For is dropped"
    );
    let head = String::from_utf8_lossy(&seen.raw_head);
    assert!(
        !head.contains(h.key.expose()),
        "the access key never reaches the upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_in_many_chunks_arrive_byte_for_byte() {
    let h = Harness::start(ok_json).await;
    // ~200 KB, uploaded chunked in uneven pieces: exercises the coalescing of body chunks.
    let body = claude_code_body(200, true);
    let pieces: Vec<Vec<u8>> = body.chunks(7_919).map(<[u8]>::to_vec).collect();
    let stream = tokio_stream::iter(pieces.into_iter().map(Ok::<_, std::io::Error>));
    let resp = h
        .client
        .post(h.url("/v1/messages?beta=true"))
        .header("x-api-key", "k")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let seen = h.upstream.last_request().unwrap();
    assert_eq!(seen.body.len(), body.len());
    assert!(seen.body == body, "a 200 KB chunked body arrives unchanged");

    // And with Content-Length, in one piece.
    let resp = h
        .client
        .post(h.url("/v1/messages"))
        .header("x-api-key", "k")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(h.upstream.last_request().unwrap().body == body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_by_hop_headers_are_dropped() {
    let h = Harness::start(ok_json).await;
    let body = br#"{"model":"claude-haiku-5-5","max_tokens":5,"messages":[]}"#;
    let request = format!(
        "POST /ak/{}/v1/messages HTTP/1.1\r\nHost: gateway.example\r\nConnection: close, X-Secret-Hop\r\n\
         X-Secret-Hop: 1\r\nKeep-Alive: timeout=5\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\nTE: trailers\r\n\
         Proxy-Connection: keep-alive\r\nX-Forwarded-Host: evil.example\r\nForwarded: for=1.2.3.4\r\n\
         x-api-key: sk-ant-k\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        h.key.expose(),
        body.len()
    );
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    let resp = raw_exchange(h.addr(), &bytes, Duration::from_secs(5)).await;
    assert_eq!(resp.status, 200, "{}", resp.head);
    let seen = h.upstream.last_request().expect("forwarded");
    for gone in [
        "connection",
        "x-secret-hop",
        "keep-alive",
        "proxy-authorization",
        "te",
        "proxy-connection",
        "x-forwarded-host",
        "forwarded",
    ] {
        assert!(!seen.has_header(gone), "{gone} reached the upstream");
    }
    assert_eq!(
        seen.header("host"),
        Some(h.upstream.addr.to_string().as_str())
    );
    assert_eq!(seen.body, body);
}

fn sse_events() -> Vec<Vec<u8>> {
    let mut events = vec![
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-5-5\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":12,\"output_tokens\":1}}}\n\n".to_owned(),
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n".to_owned(),
        "event: ping\ndata: {\"type\": \"ping\"}\n\n".to_owned(),
    ];
    for word in ["Hel", "lo ", "wör", "ld ✓"] {
        events.push(format!(
            "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"{word}\"}}}}\n\n"
        ));
    }
    events.push(
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
            .to_owned(),
    );
    events.push("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":4}}\n\n".to_owned());
    events.push("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n".to_owned());
    // Cut the stream at awkward places, inside lines and inside a multi-byte character.
    let all: Vec<u8> = events.concat().into_bytes();
    let cuts = [7, 150, 151, 400, 411, 600, 700, 701, 850];
    let mut pieces = Vec::new();
    let mut start = 0;
    for cut in cuts.iter().copied().filter(|c| *c < all.len()) {
        pieces.push(all[start..cut].to_vec());
        start = cut;
    }
    pieces.push(all[start..].to_vec());
    pieces
}

/// The upstream sends each piece only after the client received every byte before it: a
/// gateway that held the stream back (buffering it, or waiting for a fuller chunk) would stall
/// here, and the generous per-chunk deadline would fail the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_stream_is_relayed_byte_for_byte_as_it_arrives() {
    let pieces = sse_events();
    let expected: Vec<u8> = pieces.concat();
    let gate = ccp_testkit::Gate::new();
    let (served, upstream_gate) = (pieces.clone(), gate.clone());
    let h = Harness::start(move |_| Reply::sse_gated(served.clone(), &upstream_gate)).await;

    let mut resp = h
        .client
        .post(h.url("/v1/messages?beta=true"))
        .header("x-api-key", "sk-ant-k")
        .header("accept", "application/json")
        .body(claude_code_body(2, true))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    // Piece `released` may go out; the next is released once all bytes up to it arrived.
    let ends: Vec<usize> = pieces
        .iter()
        .scan(0, |end, p| {
            *end += p.len();
            Some(*end)
        })
        .collect();
    let mut released = 0;
    gate.open(1);
    let mut received = Vec::new();
    loop {
        let chunk = tokio::time::timeout(Duration::from_secs(20), resp.chunk())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "piece {released} was sent by the upstream and not relayed ({} bytes in)",
                    received.len()
                )
            })
            .expect("chunk");
        let Some(chunk) = chunk else { break };
        received.extend_from_slice(&chunk);
        assert!(
            received.len() <= ends[released],
            "bytes the upstream has not sent yet"
        );
        while released + 1 < ends.len() && received.len() == ends[released] {
            released += 1;
            gate.open(1);
        }
    }
    assert_eq!(received, expected, "SSE relayed byte for byte");
    assert_eq!(
        released,
        pieces.len() - 1,
        "every piece waited for the one before"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_keys_get_one_identical_404_and_never_reach_the_upstream() {
    let h = Harness::start(ok_json).await;
    let (revoked, revoked_id) = h.issue_key(None).await;
    h.store.revoke_access_key(revoked_id).await.unwrap();
    let (expired, _) = h
        .issue_key(Some(chrono::Utc::now() - chrono::Duration::seconds(5)))
        .await;
    let valid = h.key.expose().to_owned();
    let mut typo = valid.clone().into_bytes();
    typo[10] = if typo[10] == b'x' { b'y' } else { b'x' };
    let candidates = vec![
        ccp_core::keys::AccessKey::generate().expose().to_owned(), // well-formed, unknown
        revoked.expose().to_owned(),
        expired.expose().to_owned(),
        String::from_utf8(typo).unwrap(),
        "not-a-key".to_owned(),
        "ccp_".to_owned(),
        "x".repeat(10_000),
        "ccp_%2F..%2F".to_owned(),
    ];
    let mut bodies = Vec::new();
    for key in &candidates {
        let resp = h
            .client
            .post(format!("http://{}/ak/{key}/v1/messages", h.addr()))
            .header("x-api-key", "sk-ant-k")
            .body("{}")
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 404, "key {}", &key[..key.len().min(20)]);
        bodies.push(resp.bytes().await.unwrap());
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "every bad key gets the same bytes"
    );
    let (kind, message) = anthropic_error(&bodies[0]);
    assert_eq!(kind, "not_found_error");
    assert!(!message.contains("ccp_"), "the message names no key");
    assert_eq!(h.upstream.hits(), 0, "no bad key reached the upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_paths_get_404_or_400_never_500_and_never_reach_the_upstream() {
    let h = Harness::start(ok_json).await;
    let key = h.key.expose();
    let paths = [
        "/ak//v1/messages".to_owned(),
        "/ak/".to_owned(),
        "/v1/messages".to_owned(),
        format!("/ak/{key}"),
        format!("/ak/{key}/"),
        format!("/ak/{key}/v1"),
        format!("/ak/{key}/v1//messages"),
        format!("/ak/{key}/v1/../../admin"),
        format!("/ak/{key}/v1/%2e%2e/admin"),
        format!("/ak/{key}/v1/a%2Fb"),
        format!("/ak/{key}%2Fv1/messages"),
        format!("/ak/{key}/v2/messages"),
        format!("/ak/{key}/v1/m%C3%A9ssages"),
        format!("/ak/{}/v1/messages", "k".repeat(10_000)),
    ];
    for path in &paths {
        let request = format!("GET {path} HTTP/1.1\r\nHost: g\r\nConnection: close\r\n\r\n");
        let resp = raw_exchange(h.addr(), request.as_bytes(), Duration::from_secs(5)).await;
        assert!(
            resp.status == 404 || resp.status == 400,
            "{} -> {}",
            &path[..path.len().min(60)],
            resp.status
        );
        let (kind, _) = anthropic_error(&resp.body);
        assert!(kind == "not_found_error" || kind == "invalid_request_error");
    }
    // Absolute-form targets are routed by their path alone.
    let absolute = format!(
        "GET http://evil.example/ak/{key}/v1/models HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
    );
    let resp = raw_exchange(h.addr(), absolute.as_bytes(), Duration::from_secs(5)).await;
    assert_eq!(resp.status, 200);
    let seen = h.upstream.last_request().expect("forwarded");
    assert_eq!(seen.target, "/v1/models");
    assert_eq!(
        seen.header("host"),
        Some(h.upstream.addr.to_string().as_str())
    );
    assert_eq!(
        h.upstream.hits(),
        1,
        "only the well-formed request was forwarded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_errors_are_relayed_unchanged() {
    type Case = (u16, &'static str, Vec<(&'static str, &'static str)>);
    let cases: Vec<Case> = vec![
        (
            429,
            r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#,
            vec![("retry-after", "7"), ("x-should-retry", "true")],
        ),
        (
            500,
            r#"{"type":"error","error":{"type":"api_error","message":"boom"}}"#,
            vec![],
        ),
        (
            529,
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            vec![("x-should-retry", "false")],
        ),
        (
            400,
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"bad"}}"#,
            vec![],
        ),
        (
            401,
            r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#,
            vec![],
        ),
    ];
    for (status, body, headers) in cases {
        let headers_owned: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let h = Harness::start(move |_| {
            let mut reply = Reply::json(status, body).with_header("request-id", "req_err");
            for (k, v) in &headers_owned {
                reply = reply.with_header(k, v);
            }
            reply
        })
        .await;
        let resp = h
            .client
            .post(h.url("/v1/messages"))
            .header("x-api-key", "sk-ant-k")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), status);
        assert_eq!(resp.headers()["request-id"], "req_err");
        for (k, v) in &headers {
            assert_eq!(resp.headers()[*k], *v, "{status}: header {k}");
        }
        assert_eq!(resp.bytes().await.unwrap(), body.as_bytes());
        assert_eq!(
            h.upstream.hits(),
            1,
            "relayed once, no retry or failover yet"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_tokens_models_and_api_paths_are_forwarded() {
    let h = Harness::start(|req| match req.target.as_str() {
        "/v1/messages/count_tokens?beta=true" => Reply::json(200, r#"{"input_tokens":42}"#),
        "/v1/models" => Reply::json(
            200,
            r#"{"data":[{"id":"claude-opus-5-5","type":"model"}],"has_more":false}"#,
        ),
        "/v1/models/claude-opus-5-5" => {
            Reply::json(200, r#"{"id":"claude-opus-5-5","type":"model"}"#)
        }
        _ => Reply::json(
            404,
            r#"{"type":"error","error":{"type":"not_found_error","message":"no"}}"#,
        ),
    })
    .await;
    let count = h
        .client
        .post(h.url("/v1/messages/count_tokens?beta=true"))
        .header("authorization", "Bearer tok")
        .body(r#"{"model":"claude-opus-5-5","messages":[{"role":"user","content":"hi"}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(count.status(), 200);
    assert_eq!(count.text().await.unwrap(), r#"{"input_tokens":42}"#);
    let models = h
        .client
        .get(h.url("/v1/models"))
        .header("x-api-key", "k")
        .send()
        .await
        .unwrap();
    assert_eq!(models.status(), 200);
    assert!(models.text().await.unwrap().contains("claude-opus-5-5"));
    let one = h
        .client
        .get(h.url("/v1/models/claude-opus-5-5"))
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), 200);
    let targets: Vec<String> = h
        .upstream
        .requests()
        .into_iter()
        .map(|r| format!("{} {}", r.method, r.target))
        .collect();
    assert_eq!(
        targets,
        vec![
            "POST /v1/messages/count_tokens?beta=true",
            "GET /v1/models",
            "GET /v1/models/claude-opus-5-5"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_get_413_before_they_are_read() {
    let h = Harness::start(ok_json).await;
    // Announce 32 MiB + 1 and send only a few bytes: the answer must not wait for the rest.
    let request = format!(
        "POST /ak/{}/v1/messages HTTP/1.1\r\nHost: g\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{{\"model\":",
        h.key.expose(),
        32 * 1024 * 1024 + 1
    );
    // The rest of the body never comes: an answer at all shows it was not waited for.
    let resp = raw_exchange(h.addr(), request.as_bytes(), Duration::from_secs(20)).await;
    assert_eq!(resp.status, 413);
    let (kind, _) = anthropic_error(&resp.body);
    assert_eq!(kind, "request_too_large");
    assert_eq!(h.upstream.hits(), 0);

    let bad_length = format!(
        "POST /ak/{}/v1/messages HTTP/1.1\r\nHost: g\r\nContent-Length: 1a\r\n\r\n",
        h.key.expose()
    );
    let resp = raw_exchange(h.addr(), bad_length.as_bytes(), Duration::from_secs(5)).await;
    assert_eq!(resp.status, 400);
    assert_eq!(h.upstream.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_bodies_over_the_limit_get_413() {
    let h = Harness::start_with(ok_json, &[("max_body_bytes", "65536")]).await;
    let chunk = vec![b'a'; 16 * 1024];
    let body_stream = futures_like_stream(chunk, 8);
    let resp = h
        .client
        .post(h.url("/v1/messages"))
        .header("x-api-key", "k")
        .body(reqwest::Body::wrap_stream(body_stream))
        .send()
        .await;
    match resp {
        Ok(resp) => {
            assert_eq!(resp.status(), 413);
            let (kind, _) = anthropic_error(&resp.bytes().await.unwrap());
            assert_eq!(kind, "request_too_large");
        }
        // The gateway may close before the client finished uploading; that is a refusal too.
        Err(err) => assert!(err.is_request() || err.is_body(), "{err}"),
    }
    assert!(
        h.upstream.requests().iter().all(|r| r.body.len() <= 65536),
        "upstream never got a complete oversized body"
    );
}

fn futures_like_stream(
    chunk: Vec<u8>,
    count: usize,
) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    tokio_stream::iter((0..count).map(move |_| Ok(chunk.clone())))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_requests_are_refused() {
    let h = Harness::start(ok_json).await;
    let request = format!(
        "GET /ak/{}/v1/models HTTP/1.1\r\nHost: g\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        h.key.expose()
    );
    let resp = raw_exchange(h.addr(), request.as_bytes(), Duration::from_secs(3)).await;
    assert_eq!(resp.status, 400);
    assert_eq!(h.upstream.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_key_stops_working_within_the_cache_ttl() {
    let h = Harness::start_with(ok_json, &[("key_cache_ttl_secs", "1")]).await;
    let send = || {
        h.client
            .get(h.url("/v1/models"))
            .header("x-api-key", "k")
            .send()
    };
    // The first request caches the key; the cached grant outlives the revocation until the
    // TTL ends (not before), and then the key is refused.
    let cached_at = Instant::now();
    assert_eq!(send().await.unwrap().status(), 200);
    h.store.revoke_access_key(h.key_id).await.unwrap();
    common::eventually("the revoked key is refused", || async {
        let status = send().await.unwrap().status();
        assert!(status == 200 || status == 404, "{status}");
        status == 404
    })
    .await;
    let refused_after = cached_at.elapsed();
    assert!(
        refused_after >= Duration::from_secs(1),
        "refused after {refused_after:?}, before the 1 s TTL of the cached grant"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_plan_key_is_used_only_without_a_client_credential() {
    let h = Harness::start_with(ok_json, &[("plan_api_key", "sk-ant-gateway-default")]).await;
    h.client.get(h.url("/v1/models")).send().await.unwrap();
    h.client
        .get(h.url("/v1/models"))
        .header("authorization", "Bearer own-token")
        .send()
        .await
        .unwrap();
    h.client
        .get(h.url("/v1/models"))
        .header("x-api-key", "sk-ant-own")
        .send()
        .await
        .unwrap();
    let seen = h.upstream.requests();
    assert_eq!(seen[0].header("x-api-key"), Some("sk-ant-gateway-default"));
    assert_eq!(seen[1].header("x-api-key"), None);
    assert_eq!(seen[1].header("authorization"), Some("Bearer own-token"));
    assert_eq!(seen[2].header("x-api-key"), Some("sk-ant-own"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_upstream_gets_an_anthropic_shaped_502() {
    let mut h = Harness::start(ok_json).await;
    // Point a second gateway at a port nobody listens on.
    let closed = common::ClosedPort::new();
    let mut config = ccp_core::config::Config::from_pairs(&[
        ("data_dir", &h.config.data_dir.display().to_string()),
        ("gateway_addr", "127.0.0.1:0"),
        ("plan_base_url", &closed.url()),
        ("threads", "1"),
    ])
    .unwrap();
    config.shutdown_grace = Duration::from_secs(1);
    h.stop_gateway().await;
    let gateway = tokio::task::spawn_blocking(move || ccp_gateway::RunningGateway::start(config))
        .await
        .unwrap()
        .unwrap();
    let addr = gateway.addr;
    let resp = h
        .client
        .post(format!("http://{addr}/ak/{}/v1/messages", h.key.expose()))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 502);
    assert!(resp.headers().contains_key("x-ccp-request-id"));
    let (kind, message) = anthropic_error(&resp.bytes().await.unwrap());
    assert_eq!(kind, "api_error");
    assert!(
        !message.contains("127.0.0.1"),
        "no upstream address in client errors"
    );
    tokio::task::spawn_blocking(move || gateway.shutdown())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness() {
    let h = Harness::start(ok_json).await;
    let health = h
        .client
        .get(format!("http://{}/healthz", h.addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let ready = h
        .client
        .get(format!("http://{}/readyz", h.addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    h.gateway.as_ref().unwrap().state.lifecycle.start_draining();
    let draining = h
        .client
        .get(format!("http://{}/readyz", h.addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(draining.status(), 503, "readiness fails while draining");
    assert_eq!(h.upstream.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_an_in_flight_stream() {
    let pieces = sse_events();
    let expected = pieces.concat();
    let gate = ccp_testkit::Gate::new();
    let (served, upstream_gate) = (pieces.clone(), gate.clone());
    let mut h = Harness::start(move |_| Reply::sse_gated(served.clone(), &upstream_gate)).await;
    let (addr, client) = (h.addr(), h.client.clone());
    let resp = h
        .client
        .post(h.url("/v1/messages"))
        .header("x-api-key", "k")
        .body(claude_code_body(1, true))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // Stop while the stream is held at the upstream; the drain must wait for it.
    let reader = common::read_body_in_background(resp);
    let stopped = std::sync::atomic::AtomicBool::new(false);
    let stop = async {
        h.stop_gateway().await;
        stopped.store(true, std::sync::atomic::Ordering::SeqCst);
    };
    let finish_stream = async {
        // Draining has begun when readiness fails; the listener stays open meanwhile.
        common::eventually("readiness fails while draining", || async {
            let ready = client.get(format!("http://{addr}/readyz")).send().await;
            matches!(ready, Ok(r) if r.status() == 503)
        })
        .await;
        assert!(
            !stopped.load(std::sync::atomic::Ordering::SeqCst),
            "the gateway stopped while a stream was in flight"
        );
        gate.open(pieces.len());
    };
    tokio::join!(stop, finish_stream);
    let got = reader.await.unwrap();
    assert_eq!(
        got, expected,
        "the in-flight stream completed during the drain"
    );
    assert!(
        std::net::TcpStream::connect(h.addr()).is_err(),
        "the listener is closed after the drain"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_upstream_body_is_not_passed_off_as_complete() {
    let h = Harness::start(|_| Reply {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: ReplyBody::Truncated {
            announced: 500,
            sent: br#"{"id":"msg_"#.to_vec(),
        },
        head_delay: None,
    })
    .await;
    let resp = h
        .client
        .post(h.url("/v1/messages"))
        .header("x-api-key", "k")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.bytes().await.is_err(),
        "the client sees the body cut, not a short success"
    );
}
