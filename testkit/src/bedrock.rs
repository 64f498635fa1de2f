//! A fake Amazon Bedrock runtime: Converse JSON, ConverseStream in the binary
//! `application/vnd.amazon.eventstream` framing (encoded by AWS's own
//! `aws-smithy-eventstream`, so the gateway's decoder is checked against the real format),
//! and REST-JSON errors with `x-amzn-ErrorType`.

use crate::{Reply, ReplyBody};
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use serde_json::{Value, json};
use std::time::Duration;

/// One event frame, e.g. `event("contentBlockDelta", json!({...}))`.
pub fn event(event_type: &str, payload: &Value) -> Vec<u8> {
    frame(
        &[
            (":event-type", event_type),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload,
    )
}

/// A modeled in-stream exception, e.g. `exception("throttlingException", "slow down")`.
pub fn exception(exception_type: &str, message: &str) -> Vec<u8> {
    frame(
        &[
            (":exception-type", exception_type),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        &json!({ "message": message }),
    )
}

/// A frame with string headers, encoded by aws-smithy-eventstream.
fn frame(headers: &[(&str, &str)], payload: &Value) -> Vec<u8> {
    let headers = headers
        .iter()
        .map(|(name, value)| {
            Header::new(
                name.to_string(),
                HeaderValue::String(value.to_string().into()),
            )
        })
        .collect();
    let message = Message::new_from_parts(headers, serde_json::to_vec(payload).unwrap_or_default());
    let mut out = Vec::new();
    // Encoding an in-memory message into a Vec cannot fail.
    let _ = aws_smithy_eventstream::frame::write_message_to(&message, &mut out);
    out
}

/// The frames of a streamed text answer, the text split into `pieces`.
pub fn text_stream(pieces: &[&str], input_tokens: u64, output_tokens: u64) -> Vec<Vec<u8>> {
    let mut frames = vec![event(
        "messageStart",
        &json!({"role": "assistant", "p": "abcdef"}),
    )];
    for piece in pieces {
        frames.push(event(
            "contentBlockDelta",
            &json!({"contentBlockIndex": 0, "delta": {"text": piece}}),
        ));
    }
    frames.push(event("contentBlockStop", &json!({"contentBlockIndex": 0})));
    frames.push(event("messageStop", &json!({"stopReason": "end_turn"})));
    frames.push(metadata(input_tokens, output_tokens));
    frames
}

/// A streamed tool call: a short text, then `tool` with `input_json` sent in two fragments.
pub fn tool_use_stream(text: &str, tool_id: &str, tool: &str, input_json: &str) -> Vec<Vec<u8>> {
    let (a, b) = input_json.split_at(input_json.len() / 2);
    vec![
        event("messageStart", &json!({"role": "assistant"})),
        event(
            "contentBlockDelta",
            &json!({"contentBlockIndex": 0, "delta": {"text": text}}),
        ),
        event("contentBlockStop", &json!({"contentBlockIndex": 0})),
        event(
            "contentBlockStart",
            &json!({"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": tool_id, "name": tool}}}),
        ),
        event(
            "contentBlockDelta",
            &json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": a}}}),
        ),
        event(
            "contentBlockDelta",
            &json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": b}}}),
        ),
        event("contentBlockStop", &json!({"contentBlockIndex": 1})),
        event("messageStop", &json!({"stopReason": "tool_use"})),
        metadata(20, 9),
    ]
}

pub fn metadata(input_tokens: u64, output_tokens: u64) -> Vec<u8> {
    event(
        "metadata",
        &json!({
            "usage": {"inputTokens": input_tokens, "outputTokens": output_tokens,
                      "totalTokens": input_tokens + output_tokens,
                      "cacheReadInputTokens": 3, "cacheWriteInputTokens": 2},
            "metrics": {"latencyMs": 12}
        }),
    )
}

/// A ConverseStream 200: the frames, each its own chunk, `gap` apart.
pub fn stream_reply(frames: Vec<Vec<u8>>, gap: Duration) -> Reply {
    Reply {
        status: 200,
        headers: vec![
            (
                "content-type".into(),
                "application/vnd.amazon.eventstream".into(),
            ),
            (
                "x-amzn-requestid".into(),
                "0a1b2c3d-4e5f-6789-abcd-ef0123456789".into(),
            ),
        ],
        body: ReplyBody::Chunked(frames.into_iter().map(|f| (gap, f)).collect()),
        head_delay: None,
    }
}

/// A Converse (non-streaming) 200 with one text block.
pub fn converse_reply(text: &str) -> Reply {
    Reply::json(
        200,
        serde_json::to_vec(&json!({
            "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 11, "outputTokens": 5, "totalTokens": 16,
                      "cacheReadInputTokens": 0, "cacheWriteInputTokens": 0},
            "metrics": {"latencyMs": 40}
        }))
        .unwrap_or_default(),
    )
    .with_header("x-amzn-requestid", "11111111-2222-3333-4444-555555555555")
}

/// A REST-JSON error as Bedrock sends it.
pub fn error_reply(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(
        status,
        serde_json::to_vec(&json!({ "message": message })).unwrap_or_default(),
    )
    .with_header(
        "x-amzn-errortype",
        &format!("{code}:http://internal.amazon.com/coral/com.amazon.bedrock/"),
    )
}
