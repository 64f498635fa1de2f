//! ConverseStream events → the Anthropic SSE stream Claude Code expects.
//!
//! Feed it each [`StreamFrame`] as the decoder produces it; it appends SSE bytes to `out`.
//! Events are serialised with serde from typed values, never by pasting upstream strings into
//! `data:` lines, so model text cannot start a new event. Mapping (reference §5.3):
//! text and thinking blocks get a synthesised `content_block_start` at their first delta;
//! the stop reason from `messageStop` is held until `metadata` brings the usage, then goes out
//! in `message_delta` before `message_stop`; exceptions become an SSE `error` event.
//!
//! (Over 400 lines: one state machine over one stream; its events, their serde shapes and the
//! transitions read best side by side.)

use super::eventstream::StreamFrame;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::borrow::Cow;
use std::collections::HashMap;

/// Token counts as Anthropic reports them (from Converse `usage`, streamed or not).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StreamUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_input_tokens: u64,
    pub cache_creation_input_tokens: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockKind {
    Text,
    Thinking,
    ToolUse,
    /// Redacted thinking arrives as data; Anthropic sends it whole in `content_block_start`.
    Redacted,
}

#[derive(Debug)]
struct Block {
    index: u32,
    kind: BlockKind,
    redacted: String,
}

/// Translates one ConverseStream response.
#[derive(Debug)]
pub struct StreamTranslator {
    message_id: String,
    model: String,
    started: bool,
    finished: bool,
    next_index: u32,
    /// Converse block index → the block as the client sees it.
    blocks: HashMap<u32, Block>,
    stop: Option<(&'static str, Option<String>)>,
    usage: Option<StreamUsage>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockStart {
    content_block_index: u32,
    start: Option<Start>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Start {
    tool_use: Option<ToolUseStart>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolUseStart {
    tool_use_id: String,
    name: String,
}

// Delta strings borrow from the frame payload unless they hold JSON escapes.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockDelta<'a> {
    content_block_index: u32,
    #[serde(borrow)]
    delta: Option<Delta<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Delta<'a> {
    #[serde(borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow)]
    reasoning_content: Option<ReasoningDelta<'a>>,
    #[serde(borrow)]
    tool_use: Option<ToolUseDelta<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReasoningDelta<'a> {
    #[serde(borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow)]
    signature: Option<Cow<'a, str>>,
    #[serde(borrow)]
    redacted_content: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ToolUseDelta<'a> {
    #[serde(borrow)]
    input: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockStop {
    content_block_index: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageStop {
    stop_reason: String,
    additional_model_response_fields: Option<Value>,
}

#[derive(Deserialize)]
struct Metadata {
    usage: Option<ConverseUsage>,
}

/// Converse `usage`, in both the streaming `metadata` event and the JSON response.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConverseUsage {
    input_tokens: u64,
    output_tokens: u64,
    #[serde(default)]
    cache_read_input_tokens: u64,
    #[serde(default)]
    cache_write_input_tokens: u64,
}

impl From<ConverseUsage> for StreamUsage {
    fn from(u: ConverseUsage) -> Self {
        // Converse's input count already excludes cache tokens, as Anthropic's does.
        StreamUsage {
            input_tokens: u.input_tokens,
            output_tokens: u.output_tokens,
            cache_read_input_tokens: u.cache_read_input_tokens,
            cache_creation_input_tokens: u.cache_write_input_tokens,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExceptionBody {
    #[serde(alias = "Message")]
    message: Option<String>,
    original_status_code: Option<u16>,
}

/// Converse `stopReason` → Anthropic `stop_reason` (reference §4.1).
pub fn map_stop_reason(converse: &str) -> &'static str {
    match converse {
        "end_turn" => "end_turn",
        "tool_use" => "tool_use",
        "max_tokens" => "max_tokens",
        "stop_sequence" => "stop_sequence",
        "model_context_window_exceeded" => "model_context_window_exceeded",
        "guardrail_intervened" | "content_filtered" => "refusal",
        _ => "end_turn",
    }
}

/// An in-stream Bedrock exception → Anthropic error type (reference §4.2).
pub fn map_stream_exception(exception_type: &str, original_status: Option<u16>) -> &'static str {
    match exception_type {
        "throttlingException" => "rate_limit_error",
        "serviceUnavailableException" => "overloaded_error",
        "validationException" => "invalid_request_error",
        "modelStreamErrorException" => match original_status {
            Some(429) => "rate_limit_error",
            Some(503 | 529) => "overloaded_error",
            _ => "api_error",
        },
        _ => "api_error",
    }
}

fn sse<T: Serialize + ?Sized>(out: &mut Vec<u8>, event: &str, data: &T) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(event.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    // serde_json escapes control characters, so the data stays on one line. Writing into a
    // Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, data);
    out.extend_from_slice(b"\n\n");
}

/// `content_block_delta`, the event of nearly every frame, serialised without building a
/// JSON tree.
#[derive(Serialize)]
struct DeltaEvent<'a> {
    #[serde(rename = "type")]
    ty: &'static str,
    index: u32,
    delta: DeltaBody<'a>,
}

// The variant names are Anthropic's wire names (`text_delta`, …), hence the shared suffix.
#[allow(clippy::enum_variant_names)]
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum DeltaBody<'a> {
    TextDelta { text: &'a str },
    ThinkingDelta { thinking: &'a str },
    SignatureDelta { signature: &'a str },
    InputJsonDelta { partial_json: &'a str },
}

fn write_delta(out: &mut Vec<u8>, index: u32, body: DeltaBody<'_>) {
    sse(
        out,
        "content_block_delta",
        &DeltaEvent {
            ty: "content_block_delta",
            index,
            delta: body,
        },
    );
}

/// Writes an Anthropic SSE `error` event.
pub fn sse_error(out: &mut Vec<u8>, error_type: &str, message: &str) {
    sse(
        out,
        "error",
        &json!({"type": "error", "error": {"type": error_type, "message": message}}),
    );
}

impl StreamTranslator {
    /// `model` is the name the client asked for, echoed back as Anthropic does.
    pub fn new(message_id: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            message_id: message_id.into(),
            model: model.into(),
            started: false,
            finished: false,
            next_index: 0,
            blocks: HashMap::new(),
            stop: None,
            usage: None,
        }
    }

    /// Usage from `metadata`, once it has arrived.
    pub fn usage(&self) -> Option<StreamUsage> {
        self.usage
    }

    /// Whether `message_stop` or an `error` event has been written.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    pub fn on_frame(&mut self, frame: &StreamFrame, out: &mut Vec<u8>) {
        if self.finished {
            return;
        }
        match frame {
            StreamFrame::Event {
                event_type,
                payload,
            } => self.on_event(event_type, payload, out),
            StreamFrame::Exception {
                exception_type,
                payload,
            } => {
                let body: Option<ExceptionBody> = serde_json::from_slice(payload).ok();
                let status = body.as_ref().and_then(|b| b.original_status_code);
                let message = body
                    .and_then(|b| b.message)
                    .unwrap_or_else(|| "Upstream model error.".to_owned());
                sse_error(out, map_stream_exception(exception_type, status), &message);
                self.finished = true;
            }
            StreamFrame::Error { .. } => {
                sse_error(out, "api_error", "The upstream stream failed.");
                self.finished = true;
            }
        }
    }

    /// Call at the end of the upstream body. A stream cut before `messageStop` gets an error
    /// event: a silent clean end would look like a complete answer.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.finished {
            return;
        }
        if self.stop.is_some() {
            self.emit_message_end(StreamUsage::default(), out);
        } else {
            sse_error(
                out,
                "overloaded_error",
                "The upstream stream ended before the message was complete.",
            );
            self.finished = true;
        }
    }

    fn on_event(&mut self, event_type: &str, payload: &[u8], out: &mut Vec<u8>) {
        match event_type {
            "messageStart" => self.ensure_started(out),
            "contentBlockStart" => {
                let Ok(start) = serde_json::from_slice::<BlockStart>(payload) else {
                    return;
                };
                if let Some(tool) = start.start.and_then(|s| s.tool_use) {
                    self.ensure_started(out);
                    let index = self.open(start.content_block_index, BlockKind::ToolUse);
                    sse(
                        out,
                        "content_block_start",
                        &json!({
                            "type": "content_block_start", "index": index,
                            "content_block": {"type": "tool_use", "id": tool.tool_use_id, "name": tool.name, "input": {}}
                        }),
                    );
                }
            }
            "contentBlockDelta" => {
                let Ok(d) = serde_json::from_slice::<BlockDelta>(payload) else {
                    return;
                };
                let Some(delta) = d.delta else { return };
                self.ensure_started(out);
                self.on_delta(d.content_block_index, delta, out);
            }
            "contentBlockStop" => {
                let Ok(stop) = serde_json::from_slice::<BlockStop>(payload) else {
                    return;
                };
                self.close(stop.content_block_index, out);
            }
            "messageStop" => {
                let Ok(stop) = serde_json::from_slice::<MessageStop>(payload) else {
                    return;
                };
                self.ensure_started(out);
                let open: Vec<u32> = self.blocks.keys().copied().collect();
                for block in open {
                    self.close(block, out);
                }
                let sequence = stop
                    .additional_model_response_fields
                    .as_ref()
                    .and_then(|f| f.get("stop_sequence"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                self.stop = Some((map_stop_reason(&stop.stop_reason), sequence));
            }
            "metadata" => {
                let usage = serde_json::from_slice::<Metadata>(payload)
                    .ok()
                    .and_then(|m| m.usage)
                    .map(StreamUsage::from)
                    .unwrap_or_default();
                self.usage = Some(usage);
                if self.stop.is_some() {
                    self.emit_message_end(usage, out);
                }
            }
            _ => {}
        }
    }

    fn on_delta(&mut self, converse_index: u32, delta: Delta<'_>, out: &mut Vec<u8>) {
        if let Some(text) = delta.text {
            let index = self.open_with_start(converse_index, BlockKind::Text, out);
            write_delta(out, index, DeltaBody::TextDelta { text: &text });
        } else if let Some(reasoning) = delta.reasoning_content {
            if let Some(data) = reasoning.redacted_content {
                self.open(converse_index, BlockKind::Redacted);
                if let Some(block) = self.blocks.get_mut(&converse_index) {
                    block.redacted.push_str(&data);
                }
                return;
            }
            let index = self.open_with_start(converse_index, BlockKind::Thinking, out);
            if let Some(thinking) = reasoning.text {
                write_delta(
                    out,
                    index,
                    DeltaBody::ThinkingDelta {
                        thinking: &thinking,
                    },
                );
            }
            if let Some(signature) = reasoning.signature {
                write_delta(
                    out,
                    index,
                    DeltaBody::SignatureDelta {
                        signature: &signature,
                    },
                );
            }
        } else if let Some(tool) = delta.tool_use
            && let Some(block) = self
                .blocks
                .get(&converse_index)
                .filter(|b| b.kind == BlockKind::ToolUse)
        {
            write_delta(
                out,
                block.index,
                DeltaBody::InputJsonDelta {
                    partial_json: &tool.input,
                },
            );
        }
        // Citations, tool results and images are not produced for Claude Code's requests.
    }

    fn ensure_started(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        sse(
            out,
            "message_start",
            &json!({
                "type": "message_start",
                "message": {
                    "id": self.message_id, "type": "message", "role": "assistant", "model": self.model,
                    "content": [], "stop_reason": null, "stop_sequence": null,
                    // Bedrock reports usage only at the end; the full figures go in message_delta.
                    "usage": {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
                }
            }),
        );
    }

    /// The client-side index of a Converse block, allocating one (without any event) if new.
    fn open(&mut self, converse_index: u32, kind: BlockKind) -> u32 {
        let next = &mut self.next_index;
        self.blocks
            .entry(converse_index)
            .or_insert_with(|| {
                let index = *next;
                *next += 1;
                Block {
                    index,
                    kind,
                    redacted: String::new(),
                }
            })
            .index
    }

    /// Like [`Self::open`], writing the synthesised `content_block_start` for a new block.
    fn open_with_start(&mut self, converse_index: u32, kind: BlockKind, out: &mut Vec<u8>) -> u32 {
        if let Some(block) = self.blocks.get(&converse_index) {
            return block.index;
        }
        let index = self.open(converse_index, kind);
        let content_block = match kind {
            BlockKind::Thinking => json!({"type": "thinking", "thinking": "", "signature": ""}),
            _ => json!({"type": "text", "text": ""}),
        };
        sse(
            out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": content_block}),
        );
        index
    }

    fn close(&mut self, converse_index: u32, out: &mut Vec<u8>) {
        let Some(block) = self.blocks.remove(&converse_index) else {
            return;
        };
        if block.kind == BlockKind::Redacted {
            sse(
                out,
                "content_block_start",
                &json!({
                    "type": "content_block_start", "index": block.index,
                    "content_block": {"type": "redacted_thinking", "data": block.redacted}
                }),
            );
        }
        sse(
            out,
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": block.index}),
        );
    }

    fn emit_message_end(&mut self, usage: StreamUsage, out: &mut Vec<u8>) {
        let (stop_reason, stop_sequence) = self.stop.take().unwrap_or(("end_turn", None));
        sse(
            out,
            "message_delta",
            &json!({
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                "usage": {
                    "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
                    "cache_read_input_tokens": usage.cache_read_input_tokens,
                    "cache_creation_input_tokens": usage.cache_creation_input_tokens
                }
            }),
        );
        sse(out, "message_stop", &json!({"type": "message_stop"}));
        self.finished = true;
    }
}
