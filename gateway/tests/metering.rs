#![allow(clippy::unwrap_used)]
//! Metering rows for each path, end to end: the real gateway, fake upstreams, a real SQLite
//! store. Rows are read after a graceful stop, which flushes the metering queue.

mod common;

use ccp_testkit::bedrock as fake;
use ccp_testkit::{RecordedRequest, Reply, ReplyBody};
use common::Harness;
use serde_json::json;
use std::time::Duration;

const PLAN_JSON: &str = r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-5-5","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":21,"output_tokens":5,"cache_read_input_tokens":100,"cache_creation_input_tokens":7}}"#;

fn sse_stream() -> Vec<Vec<u8>> {
    vec![
        b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_2\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-opus-5-5\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":40,\"output_tokens\":1,\"cache_read_input_tokens\":9000,\"cache_creation_input_tokens\":0}}}\n\n".to_vec(),
        b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hello\"}}\n\n".to_vec(),
        b"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":33}}\n\n".to_vec(),
        b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n".to_vec(),
    ]
}

fn plan(req: &RecordedRequest) -> Reply {
    let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
    match body["model"].as_str() {
        Some("limited") | Some("claude-sonnet-4-5") => Reply::json(
            429,
            r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#,
        ),
        Some("bad") => Reply::json(
            400,
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"bad"}}"#,
        ),
        Some("cut") => Reply {
            status: 200,
            headers: vec![("content-type".into(), "text/event-stream".into())],
            body: ReplyBody::ChunkedCut(vec![(Duration::ZERO, sse_stream()[0].clone())]),
            head_delay: None,
        },
        _ if body["stream"] == true => Reply::sse(sse_stream(), Duration::from_millis(2)),
        _ => Reply::json(200, PLAN_JSON),
    }
}

fn bedrock(req: &RecordedRequest) -> Reply {
    if req.target.ends_with("/converse-stream") {
        fake::stream_reply(fake::text_stream(&["a", "b"], 30, 7), Duration::ZERO)
    } else {
        fake::converse_reply("from bedrock")
    }
}

async fn send(h: &Harness, model: &str, stream: bool) -> String {
    let resp = h
        .client
        .post(h.url("/v1/messages"))
        .header("x-api-key", "sk-ant-api03-CANARYmeter")
        .json(&json!({"model": model, "max_tokens": 100, "stream": stream,
                      "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    let id = resp.headers()["x-ccp-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let _ = resp.bytes().await;
    id
}

#[tokio::test]
async fn every_path_leaves_one_row_with_its_usage() {
    let mut h = Harness::start_failover(plan, bedrock, &[]).await;
    let plan_json = send(&h, "claude-sonnet-5-5", false).await;
    let plan_sse = send(&h, "claude-opus-5-5", true).await;
    let plan_error = send(&h, "bad", false).await;
    let cut = send(&h, "cut", true).await;
    let failover = send(&h, "claude-sonnet-4-5", true).await;
    let _ = send(&h, "claude-sonnet-4-5", false).await;
    let _ = send(&h, "claude-sonnet-4-5", false).await;
    let direct = send(&h, "claude-sonnet-4-5", false).await; // the circuit is open now
    h.stop_gateway().await;

    let row = h.store.request_log(&plan_json).await.unwrap().unwrap();
    assert_eq!(
        (row.route.as_str(), row.upstream.as_deref(), row.status),
        ("plan", Some("plan"), 200)
    );
    assert_eq!(row.outcome, "complete");
    assert_eq!(row.model.as_deref(), Some("claude-sonnet-5-5"));
    assert!(!row.stream);
    assert_eq!(row.provider.as_deref(), Some("plan"));
    assert_eq!((row.input_tokens, row.output_tokens), (Some(21), Some(5)));
    assert_eq!(
        (row.cache_read_tokens, row.cache_write_tokens),
        (Some(100), Some(7))
    );
    assert_eq!(
        row.cost_micro_usd,
        Some(0),
        "Plan traffic is not billed through the gateway"
    );
    assert_eq!(row.response_bytes as usize, PLAN_JSON.len());

    let row = h.store.request_log(&plan_sse).await.unwrap().unwrap();
    assert!(row.stream);
    assert_eq!(row.model.as_deref(), Some("claude-opus-5-5"));
    assert_eq!(
        (row.input_tokens, row.output_tokens, row.cache_read_tokens),
        (Some(40), Some(33), Some(9000))
    );

    let row = h.store.request_log(&plan_error).await.unwrap().unwrap();
    assert_eq!((row.status, row.outcome.as_str()), (400, "error"));
    assert_eq!(row.provider, None);

    let row = h.store.request_log(&cut).await.unwrap().unwrap();
    assert_eq!(row.outcome, "partial");
    assert_eq!(
        row.input_tokens,
        Some(40),
        "the tokens seen before the cut are kept"
    );

    let row = h.store.request_log(&failover).await.unwrap().unwrap();
    assert_eq!(
        (row.route.as_str(), row.upstream.as_deref(), row.plan_status),
        ("plan_bedrock", Some("bedrock"), Some(429))
    );
    assert_eq!(row.provider.as_deref(), Some("bedrock"));
    assert_eq!(
        row.usage_model.as_deref(),
        Some("us.anthropic.claude-sonnet-4-5-20250929-v1:0")
    );
    // 30 input, 7 output, 3 cache read, 2 cache write on us. Sonnet 4.5:
    // 30×3300 + 7×16500 + 3×330 + 2×4125 = 99000 + 115500 + 990 + 8250 = 223 740 nano → 224 µUSD.
    assert_eq!(row.cost_micro_usd, Some(224));

    let row = h.store.request_log(&direct).await.unwrap().unwrap();
    assert_eq!((row.route.as_str(), row.plan_status), ("bedrock", None));
    // Converse JSON: 11 input, 5 output: 11×3300 + 5×16500 = 36300 + 82500 = 118 800 nano → 119 µUSD.
    assert_eq!(row.cost_micro_usd, Some(119));

    let totals = h
        .store
        .usage_totals(chrono::DateTime::UNIX_EPOCH, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(totals.requests, 8);
    assert_eq!(totals.failovers, 3);
    assert_eq!(totals.bedrock_direct, 1);
}

#[tokio::test]
async fn a_client_that_leaves_mid_stream_is_recorded_as_such() {
    let slow = |_: &RecordedRequest| {
        let events = sse_stream();
        Reply {
            status: 200,
            headers: vec![("content-type".into(), "text/event-stream".into())],
            body: ReplyBody::Chunked(vec![
                (Duration::ZERO, events[0].clone()),
                (Duration::from_millis(600), events[1].clone()),
                (Duration::from_millis(600), events[2].clone()),
                (Duration::ZERO, events[3].clone()),
            ]),
            head_delay: None,
        }
    };
    let mut h = Harness::start(slow).await;
    let resp = h
        .client
        .post(h.url("/v1/messages"))
        .json(&json!({"model": "m", "stream": true}))
        .send()
        .await
        .unwrap();
    let id = resp.headers()["x-ccp-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    drop(resp);
    // The gateway notices when it next writes; the row is written once it has.
    common::eventually("the request's row is written", || async {
        h.store.request_log(&id).await.unwrap().is_some()
    })
    .await;
    h.stop_gateway().await;
    let row = h.store.request_log(&id).await.unwrap().unwrap();
    assert_eq!(row.outcome, "client_disconnect");
}

#[tokio::test]
async fn prometheus_metrics_count_paths_tokens_and_cost() {
    let h = Harness::start_failover(plan, bedrock, &[("metrics_addr", "127.0.0.1:0")]).await;
    let addr = h.metrics_addr();
    send(&h, "claude-sonnet-5-5", false).await;
    send(&h, "claude-sonnet-4-5", true).await; // Plan 429 → Bedrock
    // A request is counted when it ends, just after its last byte left: the client can have
    // the whole answer a moment before that.
    common::eventually("both requests have ended", || async {
        common::scrape(&h.client, &addr)
            .await
            .contains("ccp_in_flight_requests 0")
    })
    .await;
    let text = common::scrape(&h.client, &addr).await;
    for line in [
        r#"ccp_requests_total{route="plan",upstream="plan",outcome="complete"} 1"#,
        r#"ccp_requests_total{route="plan_bedrock",upstream="bedrock",outcome="complete"} 1"#,
        r#"ccp_tokens_total{provider="plan",kind="input"} 21"#,
        r#"ccp_tokens_total{provider="bedrock",kind="output"} 7"#,
        "ccp_bedrock_cost_micro_usd_total 224",
        "ccp_meter_rows_dropped_total 0",
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
    assert!(text.contains("ccp_request_duration_seconds_bucket"));
    assert!(text.contains("ccp_process_resident_memory_bytes"));
    assert!(!text.contains(h.key.expose()), "no key in metrics");
    let other = h
        .client
        .get(format!("http://{addr}/other"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
}

/// The binary's environment for a CloudWatch sink at `endpoint`, pushing every second, with
/// static test credentials (and the instance-metadata lookup off: no traffic leaves the host).
fn cloudwatch_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("CCP_METRICS_SINK", "cloudwatch".into()),
        ("CCP_CLOUDWATCH_ENDPOINT", endpoint.into()),
        ("CCP_CLOUDWATCH_NAMESPACE", "CCP/E2E".into()),
        ("CCP_METRICS_INTERVAL_SECS", "1".into()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ]
}

async fn sigterm_and_wait(mut child: std::process::Child) -> std::process::ExitStatus {
    common::sigterm(&child);
    tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap()
}

async fn cloudwatch_sum(
    cw: &aws_sdk_cloudwatch::Client,
    name: &str,
    dims: &[(&str, &str)],
    stat: aws_sdk_cloudwatch::types::Statistic,
) -> f64 {
    ccp_testkit::moto::cloudwatch_statistic(cw, "CCP/E2E", name, dims, stat)
        .await
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_pushes_interval_metrics_to_cloudwatch() {
    use aws_sdk_cloudwatch::types::Statistic;
    let Some(moto) = ccp_testkit::moto::start("the CloudWatch end-to-end test") else {
        return;
    };
    let mut h = Harness::start_failover(plan, bedrock, &[]).await;
    h.stop_gateway().await;
    let mut env = cloudwatch_env(&moto.url);
    env.push(("CCP_CIRCUIT_FAILURE_THRESHOLD", "2".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let child = h.spawn_binary(&env).await.child;

    for _ in 0..3 {
        send(&h, "claude-sonnet-5-5", false).await;
    }
    // Two Plan 429s fail over and open the circuit (threshold 2); the third goes direct.
    for _ in 0..3 {
        send(&h, "claude-sonnet-4-5", false).await;
    }
    // These land in the interval pushes; the last request only in the push at shutdown.
    let cw = ccp_testkit::moto::cloudwatch_client(&moto.url);
    common::eventually("an interval push reaches CloudWatch", || async {
        let dims = [
            ("Route", "bedrock"),
            ("Upstream", "bedrock"),
            ("Outcome", "complete"),
        ];
        cloudwatch_sum(&cw, "Requests", &dims, Statistic::Sum).await >= 1.0
    })
    .await;
    send(&h, "bad", false).await;
    let exit = sigterm_and_wait(child).await;
    assert!(exit.success(), "{exit:?}");

    let requests = |route, upstream, outcome| {
        let cw = cw.clone();
        async move {
            cloudwatch_sum(
                &cw,
                "Requests",
                &[
                    ("Route", route),
                    ("Upstream", upstream),
                    ("Outcome", outcome),
                ],
                Statistic::Sum,
            )
            .await
        }
    };
    assert_eq!(requests("plan", "plan", "complete").await, 3.0);
    assert_eq!(requests("plan_bedrock", "bedrock", "complete").await, 2.0);
    assert_eq!(requests("bedrock", "bedrock", "complete").await, 1.0);
    // "bad" has no Bedrock mapping: with the circuit open, the gateway refuses it itself.
    assert_eq!(requests("bedrock", "gateway", "error").await, 1.0);
    assert_eq!(
        cloudwatch_sum(&cw, "Failovers", &[], Statistic::Sum).await,
        2.0
    );
    assert_eq!(
        cloudwatch_sum(&cw, "CircuitOpens", &[], Statistic::Sum).await,
        1.0
    );
    assert_eq!(
        cloudwatch_sum(&cw, "Latency", &[("Route", "plan")], Statistic::SampleCount).await,
        3.0
    );
    // Three Converse answers of 11 input and 5 output tokens (the fake's usage) on us. Sonnet
    // 4.5: 11×3300 + 5×16500 = 118 800 nano-USD → 119 µUSD each.
    assert_eq!(
        cloudwatch_sum(&cw, "BedrockTokens", &[("Kind", "input")], Statistic::Sum).await,
        33.0
    );
    assert_eq!(
        cloudwatch_sum(&cw, "BedrockTokens", &[("Kind", "output")], Statistic::Sum).await,
        15.0
    );
    let cost = cloudwatch_sum(&cw, "BedrockCostUSD", &[], Statistic::Sum).await;
    assert!((cost - 3.0 * 119e-6).abs() < 1e-9, "cost {cost}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cloudwatch_that_hangs_or_refuses_never_holds_up_a_request() {
    // An endpoint that accepts connections and never answers; the test keeps them.
    let hung = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hung_url = format!("http://{}", hung.local_addr().unwrap());
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let holding = std::sync::Arc::clone(&held);
    let holder = tokio::spawn(async move {
        while let Ok((conn, _)) = hung.accept().await {
            holding.lock().unwrap().push(conn);
        }
    });

    let mut h = Harness::start_failover(plan, bedrock, &[]).await;
    h.stop_gateway().await;
    let env = cloudwatch_env(&hung_url);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let child = h.spawn_binary(&env).await.child;
    send(&h, "claude-sonnet-5-5", false).await;
    common::eventually("a push is stuck on the hung endpoint", || async {
        !held.lock().unwrap().is_empty()
    })
    .await;
    for model in ["claude-sonnet-5-5", "claude-sonnet-4-5"] {
        for _ in 0..5 {
            let resp = h
                .client
                .post(h.url("/v1/messages"))
                .header("x-api-key", "sk-ant-api03-CANARYmeter")
                .json(&json!({"model": model, "max_tokens": 100,
                              "messages": [{"role": "user", "content": "hi"}]}))
                .send()
                .await
                .expect("served while CloudWatch hangs");
            assert_eq!(resp.status(), 200);
        }
    }
    // Every request was served while that push was still waiting on its connection: had the
    // requests waited for it, the push would have given up (closing the connection) first.
    let first = held.lock().unwrap().remove(0);
    let mut buf = vec![0u8; 64 * 1024];
    let still_open = loop {
        match first.try_read(&mut buf) {
            Ok(0) => break false,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break true,
            Err(_) => break false,
        }
    };
    assert!(
        still_open,
        "the push had already given up: requests waited for it"
    );
    // Shutdown still ends: the stuck push gives up at its 10 s operation timeout.
    let exit = sigterm_and_wait(child).await;
    assert!(exit.success(), "{exit:?}");
    holder.abort();

    // A refusing endpoint: the pushes fail, are counted, and requests go on.
    let closed = common::ClosedPort::new();
    let refused = closed.url();
    let mut env = cloudwatch_env(&refused);
    env.push(("CCP_METRICS_ADDR", "on".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let gateway = h.spawn_binary(&env).await;
    let (child, metrics_addr) = (gateway.child, gateway.metrics.unwrap());
    common::eventually("a failed push is counted", || async {
        send(&h, "claude-sonnet-5-5", false).await;
        let text = common::scrape(&h.client, &metrics_addr).await;
        assert!(
            text.contains("ccp_metrics_publish_failures_total"),
            "{text}"
        );
        !text.contains("ccp_metrics_publish_failures_total 0")
    })
    .await;
    let exit = sigterm_and_wait(child).await;
    assert!(exit.success(), "{exit:?}");
}
