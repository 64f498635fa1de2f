//! Translation throughput: Anthropic → Converse request bodies of Claude Code size, and
//! ConverseStream → SSE. Run with `cargo bench -p ccp-core --bench translate`.

use ccp_core::translate::eventstream::EventStreamDecoder;
use ccp_core::translate::request::{TranslateOptions, anthropic_to_converse};
use ccp_core::translate::stream::StreamTranslator;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};
use std::hint::black_box;

/// A Claude Code-shaped request of about `kb` kilobytes: system blocks, tools, and a long
/// conversation of text, tool calls and tool results.
fn claude_code_request(kb: usize) -> Vec<u8> {
    let tools: Vec<Value> = (0..12)
        .map(|i| json!({"name": format!("Tool{i}"), "description": "Executes a command. ".repeat(60),
                        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}))
        .collect();
    let mut messages = vec![
        json!({"role": "user", "content": [{"type": "text", "text": "Fix the failing test."}]}),
    ];
    let mut turn = 0;
    let mut body = json!({});
    loop {
        messages.push(json!({"role": "assistant", "content": [
            {"type": "text", "text": "Let me look. ".repeat(20)},
            {"type": "tool_use", "id": format!("toolu_{turn:04}"), "name": "Tool1", "input": {"command": "cat src/lib.rs"}}
        ]}));
        messages.push(json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": format!("toolu_{turn:04}"), "content": "fn main() {}\n".repeat(80)}
        ]}));
        turn += 1;
        body = json!({
            "model": "claude-sonnet-4-5", "max_tokens": 32000, "stream": true,
            "thinking": {"type": "enabled", "budget_tokens": 31999},
            "system": [{"type": "text", "text": "You are Claude Code. ".repeat(350), "cache_control": {"type": "ephemeral"}}],
            "tools": tools, "messages": messages,
        });
        if body.to_string().len() >= kb * 1024 {
            break;
        }
    }
    serde_json::to_vec(&body).unwrap_or_default()
}

fn request_translation(c: &mut Criterion) {
    let options = TranslateOptions {
        max_output_tokens: 64_000,
        betas: &["interleaved-thinking-2025-05-14"],
        prompt_caching: true,
        strip_thinking: false,
    };
    let mut group = c.benchmark_group("anthropic_to_converse");
    for kb in [50, 150, 500] {
        let raw = claude_code_request(kb);
        group.throughput(Throughput::Bytes(raw.len() as u64));
        // Parse + translate + serialise: what the Bedrock leg does per request.
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("{kb}KB")),
            &raw,
            |b, raw| {
                b.iter(|| {
                    let parsed: Value = serde_json::from_slice(black_box(raw)).unwrap_or_default();
                    let converse = anthropic_to_converse(&parsed, &options).unwrap_or_default();
                    serde_json::to_vec(&converse).unwrap_or_default()
                })
            },
        );
    }
    // The split of the 150 KB case: parsing alone, and parsing plus translating.
    let raw = claude_code_request(150);
    group.throughput(Throughput::Bytes(raw.len() as u64));
    group.bench_function("150KB_parse_only", |b| {
        b.iter(|| serde_json::from_slice::<Value>(black_box(&raw)).unwrap_or_default())
    });
    group.bench_function("150KB_parse_translate", |b| {
        b.iter(|| {
            let parsed: Value = serde_json::from_slice(black_box(&raw)).unwrap_or_default();
            anthropic_to_converse(&parsed, &options).unwrap_or_default()
        })
    });
    group.finish();
}

/// An event-stream body of `deltas` text deltas, encoded with AWS's own encoder.
fn converse_stream(deltas: usize) -> Vec<u8> {
    use aws_smithy_eventstream::frame::write_message_to;
    use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
    let frame = |event: &str, payload: Value| {
        let message = Message::new(payload.to_string().into_bytes())
            .add_header(Header::new(
                ":event-type",
                HeaderValue::String(event.to_owned().into()),
            ))
            .add_header(Header::new(
                ":content-type",
                HeaderValue::String("application/json".into()),
            ))
            .add_header(Header::new(
                ":message-type",
                HeaderValue::String("event".into()),
            ));
        let mut out = Vec::new();
        let _ = write_message_to(&message, &mut out);
        out
    };
    let mut body = frame("messageStart", json!({"role": "assistant"}));
    for i in 0..deltas {
        body.extend(frame("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"text": format!("token {i} of a longer answer, ")}, "p": "abcdefghijklmnop"})));
    }
    body.extend(frame("contentBlockStop", json!({"contentBlockIndex": 0})));
    body.extend(frame("messageStop", json!({"stopReason": "end_turn"})));
    body.extend(frame(
        "metadata",
        json!({"usage": {"inputTokens": 100, "outputTokens": 2000, "totalTokens": 2100}}),
    ));
    body
}

fn stream_translation(c: &mut Criterion) {
    let body = converse_stream(2000);
    let mut group = c.benchmark_group("converse_stream_to_sse");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("2000_deltas_in_16KB_reads", |b| {
        b.iter(|| {
            let mut decoder = EventStreamDecoder::new();
            let mut translator = StreamTranslator::new("msg_bench", "claude-sonnet-4-5");
            let mut out = Vec::with_capacity(body.len() * 2);
            for chunk in black_box(&body).chunks(16 * 1024) {
                decoder.push(chunk);
                while let Ok(Some(frame)) = decoder.next_frame() {
                    translator.on_frame(&frame, &mut out);
                }
            }
            translator.finish(&mut out);
            out.len()
        })
    });
    group.finish();
}

criterion_group!(benches, request_translation, stream_translation);
criterion_main!(benches);
