#![allow(clippy::unwrap_used)]
//! Canary secrets through the real binary: an access key, a client token, a Bedrock key and
//! the HMAC pepper, across Plan, failover, Bedrock-direct and bad-key requests with debug
//! logging on. None of them, nor any 12-character piece of them, may appear in the
//! process's log output or anywhere in the database files.

mod common;

use ccp_testkit::bedrock as fake;
use ccp_testkit::{RecordedRequest, Reply};
use serde_json::json;
use std::process::Command;
use std::time::Duration;

const PEPPER: &str = "CANARYPEPPERpepperpepperpepper0123456789";
const CLIENT_TOKEN: &str = "sk-ant-oat01-CANARYCTclienttoken0123456789";

fn plan(req: &RecordedRequest) -> Reply {
    let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
    if body["model"] == "claude-sonnet-4-5" {
        return Reply::json(
            429,
            r#"{"type":"error","error":{"type":"rate_limit_error","message":"x"}}"#,
        );
    }
    Reply::sse(
        vec![
            b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"m\",\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}}\n\n".to_vec(),
            b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n".to_vec(),
        ],
        Duration::ZERO,
    )
}

fn bedrock(req: &RecordedRequest) -> Reply {
    if req.target.ends_with("/converse-stream") {
        fake::stream_reply(fake::text_stream(&["ok"], 3, 1), Duration::ZERO)
    } else {
        fake::converse_reply("ok")
    }
}

/// The secret and every 12-character window of it.
fn pieces(secret: &str) -> Vec<String> {
    let chars: Vec<char> = secret.chars().collect();
    let mut out = vec![secret.to_owned()];
    out.extend(chars.windows(12).map(|w| w.iter().collect::<String>()));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_canary_secret_reaches_logs_or_the_database() {
    let mut h = common::Harness::start_failover(plan, bedrock, &[("pepper", PEPPER)]).await;
    h.stop_gateway().await;
    let gateway = h
        .spawn_binary(&[
            ("CCP_PEPPER", PEPPER),
            ("CCP_LOG_FORMAT", "json"),
            ("CCP_LOG", "debug"),
            ("CCP_METRICS_ADDR", "on"),
        ])
        .await;
    let (mut child, log_path) = (gateway.child, gateway.log);
    let metrics_addr = gateway.metrics.unwrap();

    let send = |model: &'static str, stream: bool, url: String| {
        let client = h.client.clone();
        async move {
            let resp = client
                .post(url)
                .header("authorization", format!("Bearer {CLIENT_TOKEN}"))
                .header("cookie", "s=CANARYCOOKIEvalue0123")
                .json(&json!({"model": model, "max_tokens": 10, "stream": stream,
                              "messages": [{"role": "user", "content": "hi"}]}))
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let _ = resp.bytes().await;
            status
        }
    };
    let url = h.url("/v1/messages?beta=true");
    assert_eq!(send("claude-sonnet-5-5", true, url.clone()).await, 200);
    for _ in 0..4 {
        // 429 → failover; after three, Bedrock direct.
        assert_eq!(send("claude-sonnet-4-5", false, url.clone()).await, 200);
    }
    assert_eq!(send("claude-sonnet-4-5", true, url.clone()).await, 200);
    // A near-miss key (one character changed) and a plainly wrong one.
    let mut near = h.key.expose().to_owned();
    near.replace_range(10..11, if &near[10..11] == "A" { "B" } else { "A" });
    let bad = format!("http://{}/ak/{near}/v1/messages", h.addr());
    assert_eq!(send("m", false, bad).await, 404);
    let scraped = common::scrape(&h.client, &metrics_addr).await;
    assert!(scraped.contains("ccp_requests_total"), "{scraped}");

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success());
    assert_eq!(
        h.store.count_request_logs().await.unwrap(),
        6,
        "the six authenticated requests were metered"
    );

    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("\"path\":\"plan_bedrock\""),
        "the log is real: {log}"
    );
    // The interval metrics (the log sink, the default) are pushed at shutdown.
    assert!(
        log.contains("\"target\":\"ccp::metrics\"") && log.contains("BedrockCostUSD"),
        "the interval metrics line is there: {log}"
    );
    let mut everything = log.into_bytes();
    everything.extend(scraped.into_bytes());
    for entry in std::fs::read_dir(&h.config.data_dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        // The pepper file and the wrap key hold their own secrets by design.
        if path.is_file() && name.starts_with("ccp.db") {
            everything.extend(std::fs::read(&path).unwrap());
        }
    }
    let haystack = String::from_utf8_lossy(&everything);
    let secrets = [
        h.key.expose().to_owned(),
        near,
        CLIENT_TOKEN.to_owned(),
        common::BEDROCK_KEY.to_owned(),
        PEPPER.to_owned(),
        "CANARYCOOKIEvalue0123".to_owned(),
    ];
    for secret in &secrets {
        for piece in pieces(secret) {
            if let Some(at) = haystack.find(&piece) {
                let start = haystack.floor_char_boundary(at.saturating_sub(300));
                let end = haystack.ceil_char_boundary((at + 100).min(haystack.len()));
                panic!(
                    "a piece of a secret leaked: {piece}\n…{}…",
                    &haystack[start..end]
                );
            }
        }
    }
}
