//! `ccp-fake-upstream`: a fast stand-in for the Anthropic API, for load benchmarks only.
//!
//! `ccp-fake-upstream [ADDR] [MODE]` (default 127.0.0.1:9901, mode `anthropic`). Nothing is
//! recorded.
//! - `anthropic`: every POST whose body says `"stream":true` in its first 512 bytes gets a
//!   50-event Claude-like SSE stream; any other request gets a ~1 KB Messages JSON answer.
//! - `slow-stream`: as `anthropic`, but the stream is one event a second for about a minute
//!   (the scale benchmark's long-lived streams).
//! - `rate-limited`: every request gets Anthropic's 429 `rate_limit_error` (Plan failing).
//! - `bedrock`: `/converse-stream` gets a ConverseStream of 45 text deltas in the binary
//!   event-stream framing, `/converse` a Converse JSON answer.
//!
//! In every mode `GET /__fake/stats` answers `{"connections":N,"requests":M}`: the connections
//! accepted and requests served so far, so a benchmark can tell how well the proxy in front
//! reuses its upstream connections.

use ccp_testkit::{FakeUpstream, RecordedRequest, Reply, ReplyBody, bedrock, sse};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

fn message_json() -> Vec<u8> {
    let text = "The quick brown fox jumps over the lazy dog. ".repeat(18);
    format!(
        r#"{{"id":"msg_bench","type":"message","role":"assistant","model":"claude-sonnet-5-5","content":[{{"type":"text","text":"{text}"}}],"stop_reason":"end_turn","stop_sequence":null,"usage":{{"input_tokens":12000,"output_tokens":200,"cache_creation_input_tokens":0,"cache_read_input_tokens":11000}}}}"#
    )
    .into_bytes()
}

/// message_start, content_block_start, 45 deltas, content_block_stop, message_delta, message_stop.
fn stream_events() -> Vec<u8> {
    sse::messages_stream(45)
}

/// Splits the stream at event boundaries so the proxy sees one chunk per event.
fn stream_chunks(all: &[u8]) -> Vec<(Duration, Vec<u8>)> {
    sse::events(all)
        .into_iter()
        .map(|e| (Duration::ZERO, e))
        .collect()
}

type Responder = Box<dyn Fn(&RecordedRequest) -> Reply + Send + Sync>;

fn anthropic() -> Responder {
    let json = message_json();
    let chunks = stream_chunks(&stream_events());
    Box::new(move |req| {
        let head = &req.body[..req.body.len().min(512)];
        let streaming = head.windows(13).any(|w| w == b"\"stream\":true");
        if streaming {
            Reply {
                status: 200,
                headers: vec![("content-type".into(), "text/event-stream".into())],
                body: ReplyBody::Chunked(chunks.clone()),
                head_delay: None,
            }
        } else {
            Reply::json(200, json.clone()).with_header("request-id", "req_bench")
        }
    })
}

/// Streams of 61 events one second apart (a minute); JSON answers as fast as `anthropic`.
fn slow_stream() -> Responder {
    let chunks: Vec<(Duration, Vec<u8>)> = stream_chunks(&sse::messages_stream(56))
        .into_iter()
        .enumerate()
        .map(|(i, (_, event))| (Duration::from_secs(u64::from(i > 0)), event))
        .collect();
    let fast = anthropic();
    Box::new(move |req| {
        let mut reply = fast(req);
        if matches!(reply.body, ReplyBody::Chunked(_)) {
            reply.body = ReplyBody::Chunked(chunks.clone());
        }
        reply
    })
}

fn rate_limited() -> Responder {
    Box::new(|_| {
        Reply::json(
            429,
            r#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of requests has exceeded your rate limit"}}"#,
        )
        .with_header("retry-after", "30")
    })
}

fn bedrock_runtime() -> Responder {
    let pieces: Vec<String> = (0..45)
        .map(|i| format!("token {i} of the answer "))
        .collect();
    let pieces: Vec<&str> = pieces.iter().map(String::as_str).collect();
    let frames = bedrock::text_stream(&pieces, 12_000, 45);
    let stream = bedrock::stream_reply(frames, Duration::ZERO);
    let text = "The quick brown fox jumps over the lazy dog. ".repeat(18);
    let json = bedrock::converse_reply(&text);
    Box::new(move |req| {
        if req.target.ends_with("/converse-stream") {
            stream.clone()
        } else {
            json.clone()
        }
    })
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:9901".to_owned());
    let mode = args.next().unwrap_or_else(|| "anthropic".to_owned());
    let responder = match mode.as_str() {
        "anthropic" => anthropic(),
        "rate-limited" => rate_limited(),
        "slow-stream" => slow_stream(),
        "bedrock" => bedrock_runtime(),
        other => {
            eprintln!(
                "ccp-fake-upstream: unknown mode {other:?} (anthropic, slow-stream, rate-limited, bedrock)"
            );
            std::process::exit(2);
        }
    };
    // The connection count exists once the upstream does; the responder reads it from then on.
    let accepted: Arc<OnceLock<Arc<AtomicUsize>>> = Arc::default();
    let seen = Arc::clone(&accepted);
    let served = AtomicUsize::new(0);
    let mut upstream = FakeUpstream::start_on(
        &addr,
        move |req| {
            if req.target == "/__fake/stats" {
                let connections = seen.get().map_or(0, |c| c.load(Ordering::Relaxed));
                let requests = served.load(Ordering::Relaxed);
                return Reply::json(
                    200,
                    format!(r#"{{"connections":{connections},"requests":{requests}}}"#),
                );
            }
            served.fetch_add(1, Ordering::Relaxed);
            responder(req)
        },
        false,
    )
    .await;
    let _ = accepted.set(upstream.connections());
    println!("ccp-fake-upstream ({mode}) listening on {}", upstream.addr);
    upstream.wait().await;
}
