//! Fuzz entry points, shared by the cargo-fuzz targets in `fuzz/` and by the corpus replay
//! in `cargo test` (core/tests/fuzz_corpus.rs). Each takes arbitrary bytes, must never
//! panic, and checks the invariants that hold for any input.

use crate::translate::eventstream::{EventStreamDecoder, StreamFrame};
use crate::translate::request::{TranslateOptions, anthropic_to_converse};
use crate::translate::response::converse_to_anthropic;
use crate::translate::stream::StreamTranslator;
use bytes::Bytes;

/// Decoding `data` whole and split at a data-chosen point gives the same frames.
pub fn eventstream_decoder(data: &[u8]) {
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let whole = decode_all(&[data]);
    let parts = decode_all(&[&data[..split], &data[split..]]);
    assert_eq!(whole, parts, "a split changed the decoded frames");
}

fn decode_all(chunks: &[&[u8]]) -> Vec<Result<StreamFrame, String>> {
    let mut decoder = EventStreamDecoder::new();
    let mut out = Vec::new();
    for chunk in chunks {
        decoder.push(chunk);
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => out.push(Ok(frame)),
                Ok(None) => break,
                Err(e) => {
                    out.push(Err(e.to_string()));
                    return out;
                }
            }
        }
    }
    out
}

const EVENT_TYPES: [&str; 7] = [
    "messageStart",
    "contentBlockStart",
    "contentBlockDelta",
    "contentBlockStop",
    "messageStop",
    "metadata",
    "unknownEvent",
];

/// `data` is a sequence of records split on `0xFF`: the first byte picks the event (or an
/// exception), the rest is the payload. Whatever arrives, the output is well-formed SSE
/// whose last event is `message_stop` or `error`, and every `data:` line is JSON.
pub fn stream_translator(data: &[u8]) {
    let mut translator = StreamTranslator::new("msg_fuzz", "claude-fuzz");
    let mut out = Vec::new();
    for record in data.split(|b| *b == 0xFF) {
        let Some((&selector, payload)) = record.split_first() else {
            continue;
        };
        let payload = Bytes::copy_from_slice(payload);
        let frame = match usize::from(selector) % (EVENT_TYPES.len() + 1) {
            i if i < EVENT_TYPES.len() => StreamFrame::Event {
                event_type: EVENT_TYPES[i].to_owned(),
                payload,
            },
            _ => StreamFrame::Exception {
                exception_type: "throttlingException".to_owned(),
                payload,
            },
        };
        translator.on_frame(&frame, &mut out);
    }
    translator.finish(&mut out);
    let text = std::str::from_utf8(&out).expect("SSE output is UTF-8");
    assert!(text.ends_with("\n\n"), "SSE output ends with a blank line");
    let mut last_event = "";
    for block in text.split_terminator("\n\n") {
        let mut lines = block.split('\n');
        let event = lines
            .next()
            .and_then(|l| l.strip_prefix("event: "))
            .expect("each block starts with an event line");
        let data_line = lines
            .next()
            .and_then(|l| l.strip_prefix("data: "))
            .expect("then a data line");
        assert!(lines.next().is_none(), "two lines per event");
        let value: serde_json::Value =
            serde_json::from_str(data_line).expect("data is one JSON document");
        assert_eq!(value["type"], event, "data.type matches the event name");
        last_event = event;
    }
    assert!(
        matches!(last_event, "message_stop" | "error"),
        "the stream ends with message_stop or error, not {last_event:?}"
    );
}

/// Any JSON request either translates to a JSON object or is refused with a message; the
/// retry shape (thinking stripped) holds no reasoning block.
pub fn request_translator(data: &[u8]) {
    let Ok(request) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    for strip_thinking in [false, true] {
        let options = TranslateOptions {
            max_output_tokens: 64_000,
            betas: &["interleaved-thinking-2025-05-14", "claude-code-20250219"],
            prompt_caching: true,
            strip_thinking,
        };
        if let Ok(converse) = anthropic_to_converse(&request, &options) {
            assert!(converse.is_object());
            let text = converse.to_string();
            if strip_thinking {
                assert!(!text.contains("\"reasoningContent\""), "{text}");
            }
            assert!(
                cache_points(&converse) <= 4,
                "at most 4 cache points: {text}"
            );
        }
    }
}

/// Cache-point blocks where Converse puts them: `system`, each message's `content`, and
/// `toolConfig.tools` (user data elsewhere may use the same word).
fn cache_points(converse: &serde_json::Value) -> usize {
    let count = |blocks: Option<&serde_json::Value>| {
        blocks.and_then(serde_json::Value::as_array).map_or(0, |b| {
            b.iter().filter(|x| x.get("cachePoint").is_some()).count()
        })
    };
    let messages = converse
        .get("messages")
        .and_then(serde_json::Value::as_array)
        .map_or(0, |m| m.iter().map(|m| count(m.get("content"))).sum());
    count(converse.get("system"))
        + messages
        + count(converse.get("toolConfig").and_then(|t| t.get("tools")))
}

/// Any bytes either map to an Anthropic message or are refused.
pub fn response_translator(data: &[u8]) {
    if let Ok(message) = converse_to_anthropic(data, "msg_fuzz", "claude-fuzz") {
        assert_eq!(message["type"], "message");
        assert!(message["content"].is_array());
    }
}
