//! Golden frames (verified with botocore's decoder) → decoder → translator → Anthropic SSE,
//! read back the way a client reads SSE.

#![allow(clippy::unwrap_used)]

use ccp_core::translate::eventstream::{EventStreamDecoder, StreamFrame};
use ccp_core::translate::stream::{StreamTranslator, StreamUsage};
use proptest::prelude::*;
use serde_json::{Value, json};

fn golden_bytes(name: &str) -> Vec<u8> {
    let frames: Vec<Value> =
        serde_json::from_str(include_str!("fixtures/bedrock/golden_frames.json")).unwrap();
    let frame = frames
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no golden frame {name}"));
    hex::decode(frame["hex"].as_str().unwrap()).unwrap()
}

/// Decodes `stream` fed in `chunk`-byte pieces and translates every frame.
fn translate(stream: &[u8], chunk: usize) -> (Vec<u8>, Option<StreamUsage>) {
    let mut decoder = EventStreamDecoder::new();
    let mut translator = StreamTranslator::new("msg_bdrk_1", "claude-sonnet-5-5");
    let mut out = Vec::new();
    for piece in stream.chunks(chunk.max(1)) {
        decoder.push(piece);
        while let Some(frame) = decoder.next_frame().unwrap() {
            translator.on_frame(&frame, &mut out);
        }
    }
    translator.finish(&mut out);
    (out, translator.usage())
}

/// A plain SSE reader: events separated by a blank line, `event:` and `data:` fields.
fn parse_sse(bytes: &[u8]) -> Vec<(String, Value)> {
    let text = std::str::from_utf8(bytes).unwrap();
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|event| {
            let mut name = String::new();
            let mut data = String::new();
            for line in event.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    name = v.to_owned();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push_str(v);
                } else {
                    panic!("unexpected SSE line {line:?}");
                }
            }
            (name, serde_json::from_str(&data).unwrap())
        })
        .collect()
}

fn full_stream() -> Vec<u8> {
    [
        "messageStart",
        "reasoning_text",
        "reasoning_signature",
        "stop0",
        "text_delta",
        "stop1",
        "tool_start",
        "tool_delta_1",
        "tool_delta_2",
        "stop2",
        "messageStop",
        "metadata",
    ]
    .iter()
    .flat_map(|n| golden_bytes(n))
    .collect()
}

#[test]
fn thinking_text_and_tool_use_translate_to_the_anthropic_event_sequence() {
    let (out, usage) = translate(&full_stream(), 4096);
    let events = parse_sse(&out);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    let data: Vec<&Value> = events.iter().map(|(_, d)| d).collect();
    assert_eq!(data[0]["message"]["id"], "msg_bdrk_1");
    assert_eq!(data[0]["message"]["model"], "claude-sonnet-5-5");
    assert_eq!(data[0]["message"]["usage"]["input_tokens"], 0);
    assert_eq!(
        data[1]["content_block"],
        json!({"type": "thinking", "thinking": "", "signature": ""})
    );
    assert_eq!(
        data[2]["delta"],
        json!({"type": "thinking_delta", "thinking": "Let me think."})
    );
    assert_eq!(
        data[3]["delta"],
        json!({"type": "signature_delta", "signature": "EqQBCkYIARgCIkA="})
    );
    assert_eq!(data[5]["index"], 1);
    assert_eq!(
        data[5]["content_block"],
        json!({"type": "text", "text": ""})
    );
    assert_eq!(
        data[6]["delta"],
        json!({"type": "text_delta", "text": "Hello"})
    );
    assert_eq!(
        data[8]["content_block"],
        json!({"type": "tool_use", "id": "tooluse_abc123", "name": "get_weather", "input": {}})
    );
    let tool_json: String = [&data[9], &data[10]]
        .iter()
        .map(|d| d["delta"]["partial_json"].as_str().unwrap())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&tool_json).unwrap(),
        json!({"city": "Paris"})
    );
    assert_eq!(
        data[12]["delta"],
        json!({"stop_reason": "tool_use", "stop_sequence": null})
    );
    assert_eq!(
        data[12]["usage"],
        json!({"input_tokens": 120, "output_tokens": 45, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 0})
    );
    assert_eq!(
        usage,
        Some(StreamUsage {
            input_tokens: 120,
            output_tokens: 45,
            cache_read_input_tokens: 100,
            cache_creation_input_tokens: 0
        })
    );
}

#[test]
fn output_does_not_depend_on_how_the_bytes_were_split() {
    let stream = full_stream();
    let (whole, _) = translate(&stream, stream.len());
    for chunk in [1, 2, 3, 7, 13, 64, 148, 1000] {
        assert_eq!(translate(&stream, chunk).0, whole, "chunk size {chunk}");
    }
}

#[test]
fn redacted_thinking_is_sent_whole_at_block_start() {
    let stream: Vec<u8> = [
        "messageStart",
        "redacted_reasoning",
        "stop0",
        "messageStop",
        "metadata",
    ]
    .iter()
    .flat_map(|n| golden_bytes(n))
    .collect();
    let events = parse_sse(&translate(&stream, 50).0);
    assert_eq!(events[1].0, "content_block_start");
    assert_eq!(
        events[1].1["content_block"],
        json!({"type": "redacted_thinking", "data": "AAECAw=="})
    );
    assert_eq!(events[2].0, "content_block_stop");
}

#[test]
fn in_stream_exceptions_become_error_events() {
    for (name, expected) in [
        ("throttling_exception", "rate_limit_error"),
        ("model_stream_error", "api_error"),
    ] {
        let stream: Vec<u8> = ["messageStart", "text_delta", name]
            .iter()
            .flat_map(|n| golden_bytes(n))
            .collect();
        let events = parse_sse(&translate(&stream, 4096).0);
        let (last_name, last) = events.last().unwrap();
        assert_eq!(last_name, "error");
        assert_eq!(last["error"]["type"], expected, "{name}");
        assert!(!events.iter().any(|(n, _)| n == "message_stop"));
    }
}

#[test]
fn a_cut_stream_ends_with_an_error_event_not_a_clean_stop() {
    let stream: Vec<u8> = ["messageStart", "text_delta"]
        .iter()
        .flat_map(|n| golden_bytes(n))
        .collect();
    let events = parse_sse(&translate(&stream, 4096).0);
    assert_eq!(events.last().unwrap().0, "error");
    assert_eq!(
        events.last().unwrap().1["error"]["type"],
        "overloaded_error"
    );
}

#[test]
fn message_stop_without_metadata_still_closes_the_message() {
    let stream: Vec<u8> = ["messageStart", "text_delta", "stop1", "messageStop"]
        .iter()
        .flat_map(|n| golden_bytes(n))
        .collect();
    let events = parse_sse(&translate(&stream, 4096).0);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(&names[names.len() - 2..], ["message_delta", "message_stop"]);
    assert_eq!(events[events.len() - 2].1["usage"]["output_tokens"], 0);
}

fn text_event(text: &str) -> StreamFrame {
    StreamFrame::Event {
        event_type: "contentBlockDelta".into(),
        payload: serde_json::to_vec(&json!({"contentBlockIndex": 0, "delta": {"text": text}}))
            .unwrap()
            .into(),
    }
}

proptest! {
    /// Model text can hold anything, `\n\nevent: message_stop\n\n` included; the client must read
    /// back exactly that text and no extra event.
    #[test]
    fn model_text_cannot_inject_events(text in "(\\PC|\n|\r|\n\nevent: message_stop\n\ndata: \\{\\}\n\n){0,40}") {
        let mut translator = StreamTranslator::new("msg_x", "m");
        let mut out = Vec::new();
        translator.on_frame(&StreamFrame::Event { event_type: "messageStart".into(), payload: br#"{"role":"assistant"}"#.to_vec().into() }, &mut out);
        translator.on_frame(&text_event(&text), &mut out);
        translator.on_frame(&StreamFrame::Event { event_type: "messageStop".into(), payload: br#"{"stopReason":"end_turn"}"#.to_vec().into() }, &mut out);
        translator.finish(&mut out);
        let events = parse_sse(&out);
        let stops = events.iter().filter(|(n, _)| n == "message_stop").count();
        prop_assert_eq!(stops, 1);
        let got: String = events
            .iter()
            .filter(|(n, _)| n == "content_block_delta")
            .map(|(_, d)| d["delta"]["text"].as_str().unwrap().to_owned())
            .collect();
        prop_assert_eq!(got, text);
    }
}
