//! Reads token usage from an Anthropic response as it passes through the gateway, without
//! changing or holding back a byte: the caller relays each chunk and shows the tap a view of
//! it. SSE answers carry usage in `message_start` and `message_delta` (the delta's counts win);
//! JSON answers in `usage`. A compressed body (gzip, deflate, br or zstd: Claude Code accepts
//! all four) is decoded into a private copy.
//!
//! (Over 400 lines only with its unit tests, which sit beside the code they check.)

use super::members;
use super::pricing::TokenCounts;
use crate::sse::Lines;
use memchr::memmem::{Finder, FinderRev};
use serde::Deserialize;
use std::io::Write;
use std::sync::LazyLock;

/// Usage and model as the Anthropic API reported them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportedUsage {
    pub model: Option<String>,
    pub tokens: TokenCounts,
    /// `message_stop` (SSE) or a complete JSON body was seen.
    pub complete: bool,
}

/// Largest JSON answer kept to read its usage (a 64k-token answer is about 300 KB).
const MAX_JSON: usize = 4 * 1024 * 1024;
/// Longest SSE line kept (usage lines are short; long delta lines are skipped unparsed).
const MAX_LINE: usize = 64 * 1024;
/// Marks the `data:` lines worth parsing (`"type":"message_start"` and the like) whose type
/// is not the first thing in them: searched for in the line's first bytes.
static MESSAGE_EVENT: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"message_"));
/// A JSON answer's `usage` member, searched for from the end.
static USAGE_MEMBER: LazyLock<FinderRev<'static>> = LazyLock::new(|| FinderRev::new(b"\"usage\""));

enum Decoder {
    Identity,
    Gzip(flate2::write::MultiGzDecoder<Vec<u8>>),
    Deflate(flate2::write::ZlibDecoder<Vec<u8>>),
    Brotli(Box<brotli_decompressor::DecompressorWriter<Vec<u8>>>),
    Zstd(Box<zstd::stream::write::Decoder<'static, Vec<u8>>>),
}

/// Pushes compressed bytes through a decoder and takes what came out.
fn decode_into<D: Write>(
    decoder: &mut D,
    chunk: &[u8],
    out: impl FnOnce(&mut D) -> &mut Vec<u8>,
) -> std::io::Result<Vec<u8>> {
    decoder.write_all(chunk)?;
    decoder.flush()?;
    Ok(std::mem::take(out(decoder)))
}

enum Body {
    Sse(Lines),
    Json { buf: Vec<u8>, overflow: bool },
}

pub struct UsageTap {
    decoder: Decoder,
    body: Body,
    usage: ReportedUsage,
    failed: bool,
}

impl std::fmt::Debug for UsageTap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsageTap")
            .field("usage", &self.usage)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Usage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_creation: Option<CacheCreation>,
}

#[derive(Deserialize)]
struct CacheCreation {
    ephemeral_5m_input_tokens: Option<u64>,
    ephemeral_1h_input_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct Message {
    model: Option<String>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    message: Option<Message>,
    usage: Option<Usage>,
}

impl UsageTap {
    /// A tap for a response with these headers; `None` when it cannot be read (another
    /// content type, or an encoding the gateway does not decode).
    pub fn new(content_type: &str, content_encoding: Option<&str>) -> Option<Self> {
        let decoder = match content_encoding
            .map(|e| e.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("") | Some("identity") => Decoder::Identity,
            Some("gzip" | "x-gzip") => {
                Decoder::Gzip(flate2::write::MultiGzDecoder::new(Vec::new()))
            }
            Some("deflate") => Decoder::Deflate(flate2::write::ZlibDecoder::new(Vec::new())),
            Some("br") => Decoder::Brotli(Box::new(brotli_decompressor::DecompressorWriter::new(
                Vec::new(),
                4096,
            ))),
            Some("zstd") => Decoder::Zstd(Box::new(
                zstd::stream::write::Decoder::new(Vec::new()).ok()?,
            )),
            Some(_) => return None,
        };
        let body = if content_type.starts_with("text/event-stream") {
            Body::Sse(Lines::new(MAX_LINE))
        } else if content_type.starts_with("application/json") {
            Body::Json {
                buf: Vec::new(),
                overflow: false,
            }
        } else {
            return None;
        };
        Some(Self {
            decoder,
            body,
            usage: ReportedUsage::default(),
            failed: false,
        })
    }

    /// Shows the tap the next chunk as it went to the client.
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.failed || chunk.is_empty() {
            return;
        }
        let decoded = match &mut self.decoder {
            Decoder::Identity => {
                self.consume_plain(chunk);
                return;
            }
            Decoder::Gzip(d) => d.write_all(chunk).map(|()| std::mem::take(d.get_mut())),
            Decoder::Deflate(d) => d.write_all(chunk).map(|()| std::mem::take(d.get_mut())),
            Decoder::Brotli(d) => decode_into(d.as_mut(), chunk, |d| d.get_mut()),
            Decoder::Zstd(d) => decode_into(d.as_mut(), chunk, |d| d.get_mut()),
        };
        match decoded {
            Ok(plain) => self.consume_plain(&plain),
            Err(_) => self.failed = true,
        }
    }

    /// Like [`feed`](Self::feed), and shows `also` each line of up to 64 KiB when the body is
    /// an uncompressed SSE stream, so another reader of its lines needs no pass of its own.
    /// Returns whether `also` saw the chunk's lines: the same answer for every chunk of a body.
    pub fn feed_lines(&mut self, chunk: &[u8], mut also: impl FnMut(&[u8])) -> bool {
        let (Decoder::Identity, Body::Sse(lines)) = (&self.decoder, &mut self.body) else {
            self.feed(chunk);
            return false;
        };
        let usage = &mut self.usage;
        lines.feed(chunk, |line| {
            read_line(usage, line);
            also(line);
        });
        true
    }

    fn consume_plain(&mut self, data: &[u8]) {
        match &mut self.body {
            Body::Json { buf, overflow } => {
                if buf.len() + data.len() > MAX_JSON {
                    *overflow = true;
                    buf.clear();
                } else if !*overflow {
                    buf.extend_from_slice(data);
                }
            }
            Body::Sse(lines) => lines.feed(data, |line| read_line(&mut self.usage, line)),
        }
    }

    /// Call at the end of the body: the usage seen, if any could be read.
    pub fn finish(mut self) -> Option<ReportedUsage> {
        if let Decoder::Gzip(d) = &mut self.decoder {
            let tail = d.try_finish().map(|()| std::mem::take(d.get_mut()));
            match tail {
                Ok(plain) => self.consume_plain(&plain),
                Err(_) => self.failed = true,
            }
        }
        if let Decoder::Deflate(d) = &mut self.decoder {
            let tail = d.try_finish().map(|()| std::mem::take(d.get_mut()));
            match tail {
                Ok(plain) => self.consume_plain(&plain),
                Err(_) => self.failed = true,
            }
        }
        if self.failed {
            return None;
        }
        match self.body {
            Body::Json { buf, overflow } => {
                if overflow {
                    return None;
                }
                let message = read_message(&buf)?;
                let mut tokens = TokenCounts::default();
                apply(&mut tokens, message.usage.as_ref()?);
                Some(ReportedUsage {
                    model: message.model,
                    tokens,
                    complete: true,
                })
            }
            Body::Sse(_) => Some(self.usage),
        }
    }
}

/// The `model` and `usage` of a JSON answer: the two members alone when `usage` is the last
/// member, as Anthropic writes it ([`super::members`]), else the whole text parsed.
fn read_message(json: &[u8]) -> Option<Message> {
    if let Some(usage) = members::last_member(json, &USAGE_MEMBER)
        && let Some(model) = members::leading_member(json, "model")
    {
        // An absent member reads as `null` does: `None`.
        return Some(Message {
            model: serde_json::from_slice(model.unwrap_or(b"null")).ok()?,
            usage: serde_json::from_slice(usage).ok()?,
        });
    }
    serde_json::from_slice(json).ok()
}

/// Reads the usage in an SSE line, if it has any.
fn read_line(usage: &mut ReportedUsage, line: &[u8]) {
    let Some(data) = line.strip_prefix(b"data:") else {
        return;
    };
    let data = data.strip_prefix(b" ").unwrap_or(data);
    // Only the few events that carry usage or end the message are parsed.
    if !names_a_message_event(data) {
        return;
    }
    let Ok(event) = serde_json::from_slice::<Event>(data) else {
        return;
    };
    match event.kind.as_str() {
        "message_start" => {
            if let Some(message) = event.message {
                usage.model = message.model;
                if let Some(u) = message.usage {
                    apply(&mut usage.tokens, &u);
                }
            }
        }
        "message_delta" => {
            if let Some(u) = event.usage {
                apply(&mut usage.tokens, &u);
            }
        }
        "message_stop" => usage.complete = true,
        _ => {}
    }
}

/// Whether an event's data may be a `message_*` event. Anthropic writes the type first, where
/// it is read directly; data laid out another way is searched.
fn names_a_message_event(data: &[u8]) -> bool {
    match data.strip_prefix(br#"{"type":""#) {
        Some(kind) => kind.starts_with(b"message_"),
        None => MESSAGE_EVENT.find(&data[..data.len().min(40)]).is_some(),
    }
}

/// Later reports win field by field (`message_delta` carries cumulative counts).
fn apply(tokens: &mut TokenCounts, u: &Usage) {
    if let Some(n) = u.input_tokens {
        tokens.input = n;
    }
    if let Some(n) = u.output_tokens {
        tokens.output = n;
    }
    if let Some(n) = u.cache_read_input_tokens {
        tokens.cache_read = n;
    }
    match &u.cache_creation {
        Some(c) => {
            tokens.cache_write_5m = c.ephemeral_5m_input_tokens.unwrap_or(0);
            tokens.cache_write_1h = c.ephemeral_1h_input_tokens.unwrap_or(0);
        }
        None => {
            if let Some(n) = u.cache_creation_input_tokens {
                tokens.cache_write_5m = n;
                tokens.cache_write_1h = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const STREAM: &str = concat!(
        "event: message_start\n",
        "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-5-5\",\"content\":[],\"usage\":{\"input_tokens\":12,\"output_tokens\":1,\"cache_creation_input_tokens\":2000,\"cache_read_input_tokens\":30000,\"cache_creation\":{\"ephemeral_5m_input_tokens\":1500,\"ephemeral_1h_input_tokens\":500}}}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"\\n\\nevent: message_delta\\ndata: {\\\"type\\\":\\\"message_delta\\\",\\\"usage\\\":{\\\"output_tokens\\\":999}}\"}}\n\n",
        "event: message_delta\n",
        "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":850}}\n\n",
        "event: message_stop\n",
        "data: {\"type\":\"message_stop\"}\n\n",
    );

    fn expected() -> ReportedUsage {
        ReportedUsage {
            model: Some("claude-sonnet-5-5".into()),
            tokens: TokenCounts {
                input: 12,
                output: 850,
                cache_read: 30_000,
                cache_write_5m: 1_500,
                cache_write_1h: 500,
            },
            complete: true,
        }
    }

    /// Any JSON value, its strings and names full of the bytes that matter to a scanner.
    fn any_json() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::Value;
        let text = "[a-z\"\\\\{}\\[\\]:, \n\u{e9}\u{1F600}]{0,12}";
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            (-1e9f64..1e9).prop_map(Value::from),
            text.prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 40, 6, move |inner| {
            let name = prop_oneof![Just("usage".to_string()), Just("model".to_string()), text];
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((name, inner), 0..6)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
    }

    /// A Messages-like answer's members, in any order: others (never named `model` or
    /// `usage`, which serde would refuse twice), and a `model` and a `usage` that are right,
    /// wrong or missing.
    fn any_answer() -> impl Strategy<Value = Vec<(String, serde_json::Value)>> {
        use serde_json::{Value, json};
        let usage = prop_oneof![
            3 => (any::<u32>(), any::<u32>(), any::<u16>()).prop_map(|(i, o, c)| {
                Some(json!({"input_tokens": i, "output_tokens": o,
                    "cache_creation": {"ephemeral_5m_input_tokens": c}, "other": [i]}))
            }),
            1 => any_json().prop_map(Some),
            1 => Just(None),
        ];
        let model = prop_oneof![
            3 => "[a-z0-9-]{1,20}".prop_map(|m| Some(Value::String(m))),
            1 => any_json().prop_map(Some),
            1 => Just(None),
        ];
        let others = prop::collection::vec(
            (
                "[a-z_\"\\\\]{1,8}".prop_filter("", |k| k != "model" && k != "usage"),
                any_json(),
            ),
            0..5,
        );
        (
            others,
            model,
            usage,
            any::<prop::sample::Index>(),
            any::<prop::sample::Index>(),
        )
            .prop_map(|(mut members, model, usage, model_at, usage_at)| {
                if let Some(m) = model {
                    let at = model_at.index(members.len() + 1);
                    members.insert(at, ("model".into(), m));
                }
                if let Some(u) = usage {
                    // Last, as Anthropic writes it, in two answers of three.
                    let at = usage_at.index(members.len() + 1 + members.len() / 2);
                    members.insert(at.min(members.len()), ("usage".into(), u));
                }
                members
            })
    }

    /// Members written out in their order, compact or spaced out.
    fn write_answer(members: &[(String, serde_json::Value)], spaced: bool) -> Vec<u8> {
        let (colon, comma) = if spaced {
            (" :\n ", " ,\n\t")
        } else {
            (":", ",")
        };
        let written: Vec<String> = members
            .iter()
            .map(|(k, v)| format!("{}{colon}{v}", serde_json::Value::from(k.as_str())))
            .collect();
        let text = format!("{{{}}}", written.join(comma));
        if spaced { format!(" {text}\n") } else { text }.into_bytes()
    }

    /// What a message reads as, for comparing two ways of reading it.
    fn seen(message: Option<Message>) -> Option<(Option<String>, Option<TokenCounts>)> {
        message.map(|m| {
            let tokens = m.usage.map(|u| {
                let mut t = TokenCounts::default();
                apply(&mut t, &u);
                t
            });
            (m.model, tokens)
        })
    }

    #[test]
    fn json_answers_laid_out_otherwise_are_parsed_whole() {
        // `usage` not last: the whole text is parsed.
        let json = br#"{"usage":{"input_tokens":5},"model":"m","x":1}"#;
        assert!(members::last_member(json, &USAGE_MEMBER).is_none());
        let read = seen(read_message(json)).unwrap();
        assert_eq!(read.0.as_deref(), Some("m"));
        assert_eq!(read.1.unwrap().input, 5);
        // Not an object: serde reads a struct from an array too.
        let read = seen(read_message(br#"["m",{"input_tokens":5}]"#)).unwrap();
        assert_eq!(read.0.as_deref(), Some("m"));
        // A duplicate `usage` not last: serde refuses it, and so does the tap.
        assert!(read_message(br#"{"usage":{},"usage":{},"x":1}"#).is_none());
    }

    proptest! {
        #[test]
        fn json_members_read_as_the_whole_parse_reads_them(
            answer in any_answer(),
            spaced in any::<bool>(),
        ) {
            let json = write_answer(&answer, spaced);
            let whole = seen(serde_json::from_slice(&json).ok());
            prop_assert_eq!(seen(read_message(&json)), whole);
            // An answer with `usage` last is read by its members, not parsed whole (unless
            // the name recurs inside the value, where the last occurrence is not the member).
            if answer
                .last()
                .is_some_and(|(name, v)| name == "usage" && !v.to_string().contains("\"usage\""))
            {
                prop_assert!(members::last_member(&json, &USAGE_MEMBER).is_some());
                prop_assert!(members::leading_member(&json, "model").is_some());
            }
        }

        #[test]
        fn sse_usage_is_the_same_at_any_split(a in 0usize..2000, b in 0usize..2000) {
            let bytes = STREAM.as_bytes();
            let (a, b) = (a.min(bytes.len()), b.min(bytes.len()));
            let (a, b) = (a.min(b), a.max(b));
            let mut tap = UsageTap::new("text/event-stream", None).unwrap();
            for part in [&bytes[..a], &bytes[a..b], &bytes[b..]] {
                tap.feed(part);
            }
            prop_assert_eq!(tap.finish().unwrap(), expected());
        }
    }

    #[test]
    fn message_events_are_found_in_any_layout() {
        assert!(names_a_message_event(
            br#"{"type":"message_delta","usage":{}}"#
        ));
        assert!(!names_a_message_event(
            br#"{"type":"content_block_delta","delta":{"text":"message_start"}}"#
        ));
        assert!(names_a_message_event(br#"{ "type": "message_stop" }"#));
        // Written another way, the stream still reads the same.
        let spaced = STREAM.replace("data: {\"type\":", "data:{ \"type\" : ");
        let mut tap = UsageTap::new("text/event-stream", None).unwrap();
        tap.feed(spaced.as_bytes());
        assert_eq!(tap.finish().unwrap(), expected());
    }

    #[test]
    fn gzip_json_and_unknown_encodings() {
        let json = br#"{"id":"msg_1","model":"claude-opus-5-5","usage":{"input_tokens":5,"output_tokens":7,"cache_read_input_tokens":1,"cache_creation_input_tokens":3}}"#;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(json).unwrap();
        let packed = gz.finish().unwrap();
        let mut tap = UsageTap::new("application/json", Some("gzip")).unwrap();
        for piece in packed.chunks(7) {
            tap.feed(piece);
        }
        let usage = tap.finish().unwrap();
        assert_eq!(usage.model.as_deref(), Some("claude-opus-5-5"));
        assert_eq!(
            usage.tokens,
            TokenCounts {
                input: 5,
                output: 7,
                cache_read: 1,
                cache_write_5m: 3,
                cache_write_1h: 0
            }
        );
        assert!(UsageTap::new("application/json", Some("compress")).is_none());
        assert!(UsageTap::new("text/html", None).is_none());
        // A cut stream reports what it saw, marked incomplete.
        let mut tap = UsageTap::new("text/event-stream", None).unwrap();
        tap.feed(&STREAM.as_bytes()[..STREAM.len() / 2]);
        let partial = tap.finish().unwrap();
        assert!(!partial.complete);
        assert_eq!(partial.tokens.input, 12);
    }

    /// Brotli and zstd, as Claude Code's `Accept-Encoding: gzip, deflate, br, zstd` allows,
    /// fed in small pieces, for a JSON answer and an SSE stream.
    #[test]
    fn brotli_and_zstd_bodies_are_read() {
        let json: &[u8] = br#"{"id":"msg_1","model":"claude-opus-5-5","usage":{"input_tokens":5,"output_tokens":7,"cache_read_input_tokens":1,"cache_creation_input_tokens":3}}"#;
        let brotli = |plain: &[u8]| {
            let mut out = Vec::new();
            {
                let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
                w.write_all(plain).unwrap();
            }
            out
        };
        let zstd = |plain: &[u8]| zstd::stream::encode_all(plain, 3).unwrap();
        for (encoding, pack) in [
            ("br", &brotli as &dyn Fn(&[u8]) -> Vec<u8>),
            ("zstd", &zstd),
        ] {
            let mut tap = UsageTap::new("application/json", Some(encoding)).unwrap();
            for piece in pack(json).chunks(5) {
                tap.feed(piece);
            }
            let usage = tap.finish().unwrap();
            assert_eq!(
                usage.model.as_deref(),
                Some("claude-opus-5-5"),
                "{encoding}"
            );
            assert_eq!(usage.tokens.output, 7, "{encoding}");

            let mut tap = UsageTap::new("text/event-stream", Some(encoding)).unwrap();
            for piece in pack(STREAM.as_bytes()).chunks(11) {
                tap.feed(piece);
            }
            assert_eq!(tap.finish().unwrap(), expected(), "{encoding}");
        }
    }
}
