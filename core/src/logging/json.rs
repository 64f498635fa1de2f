//! One JSON object per event, written straight into the line buffer tracing-subscriber hands
//! over: `{"timestamp":…,"level":…,<the event's fields>,"target":…}`, the shape of
//! tracing-subscriber's own JSON format with `flatten_event(true)`, without its per-event
//! serializer and per-field allocations (measured: the access log line was ~12 µs of the
//! gateway's CPU per request; docs/benchmarks.md). Spans appear by name only (`"spans"`,
//! outermost first): the services open none of their own.
//!
//! A line is built in a `String` of the thread's own and handed over in one piece: each
//! small write to tracing-subscriber's `Writer` is a dynamic call, and a line has about a
//! hundred of them. Numbers go through `itoa` and `ryu`, strings are scanned for what needs
//! escaping with a table (both as serde_json does).

use crate::rfc3339::Rfc3339;
use std::cell::RefCell;
use std::fmt::{self, Write as _};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The event formatter behind `CCP_LOG_FORMAT=json`.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonLines;

thread_local! {
    /// The line being built; kept, so a thread's lines allocate once.
    static LINE: RefCell<String> = RefCell::new(String::with_capacity(1024));
}

/// Lines longer than this do not stay in the thread's buffer (a rare huge field).
const KEEP: usize = 16 * 1024;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        LINE.with(|cell| match cell.try_borrow_mut() {
            Ok(mut line) => {
                line.clear();
                let built = build(&mut line, ctx, event).and_then(|()| writer.write_str(&line));
                if line.capacity() > KEEP {
                    *line = String::with_capacity(1024);
                }
                built
            }
            // Formatting an event inside another's formatting (tracing itself prevents it
            // today: a field's `Debug` that logs is not delivered).
            Err(_) => {
                let mut line = String::new();
                build(&mut line, ctx, event)?;
                writer.write_str(&line)
            }
        })
    }
}

fn build<S, N>(line: &mut String, ctx: &FmtContext<'_, S, N>, event: &Event<'_>) -> fmt::Result
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    // Records from the `log` crate (Pingora's) carry their real target in fields.
    let normalized = event.normalized_metadata();
    let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
    line.push_str("{\"timestamp\":\"");
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    match since_epoch.ok().and_then(Rfc3339::log) {
        Some(now) => line.push_str(now.as_str()),
        None => SystemTime.format_time(&mut Writer::new(line))?,
    }
    line.push_str("\",\"level\":\"");
    line.push_str(meta.level().as_str());
    line.push('"');
    event.record(&mut Fields { out: line });
    line.push_str(",\"target\":");
    string(line, meta.target());
    if let Some(scope) = ctx.event_scope() {
        let mut first = true;
        for span in scope.from_root() {
            line.push_str(if first { ",\"spans\":[" } else { "," });
            string(line, span.name());
            first = false;
        }
        if !first {
            line.push(']');
        }
    }
    line.push_str("}\n");
    Ok(())
}

/// Writes each field as `,"name":value`.
struct Fields<'a> {
    out: &'a mut String,
}

impl Fields<'_> {
    /// The field's `,"name":`, or `None` for the `log` bridge's own fields (already folded
    /// into the metadata above).
    fn name(&mut self, field: &Field) -> Option<&mut String> {
        let name = field.name();
        if name.starts_with("log.") {
            return None;
        }
        self.out.push(',');
        string(self.out, name);
        self.out.push(':');
        Some(self.out)
    }

    fn integer(&mut self, field: &Field, value: impl itoa::Integer) {
        if let Some(out) = self.name(field) {
            out.push_str(itoa::Buffer::new().format(value));
        }
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if let Some(out) = self.name(field) {
            string(out, value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if let Some(out) = self.name(field) {
            out.push('"');
            // Writing into a String cannot fail; a `Debug` that errs leaves what it wrote.
            let _ = write!(Escaped(out), "{value:?}");
            out.push('"');
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.integer(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.integer(field, value);
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.integer(field, value);
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.integer(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if let Some(out) = self.name(field) {
            out.push_str(if value { "true" } else { "false" });
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if let Some(out) = self.name(field) {
            // JSON has no NaN or infinity.
            if value.is_finite() {
                out.push_str(ryu::Buffer::new().format_finite(value));
            } else {
                out.push_str("null");
            }
        }
    }
}

/// A JSON string literal.
fn string(out: &mut String, s: &str) {
    out.push('"');
    escape(out, s);
    out.push('"');
}

/// Which bytes a JSON string cannot hold as they are: `"`, `\\`, the control characters and
/// DEL (kept out of log lines as well).
const fn escapes() -> [bool; 256] {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = true;
        byte += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table[0x7f] = true;
    table
}

static ESCAPES: [bool; 256] = escapes();

/// Whether any of the eight bytes of `word` needs escaping (exact for the word as a whole:
/// the classic "has a zero byte" and "has a byte below n" bit tricks).
const fn needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    const fn has_zero(v: u64) -> u64 {
        v.wrapping_sub(ONES) & !v & HIGHS
    }
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    (below_space
        | has_zero(word ^ (ONES * b'"' as u64))
        | has_zero(word ^ (ONES * b'\\' as u64))
        | has_zero(word ^ (ONES * 0x7f)))
        != 0
}

/// How many leading bytes need no escaping, checked eight at a time (a log line's strings are
/// nearly always clean: the byte-by-byte table was a third of the access line's cost).
fn clean_prefix(bytes: &[u8]) -> usize {
    let mut words = bytes.chunks_exact(8);
    let mut clean = 0;
    let clean_bytes = |bytes: &[u8]| {
        bytes
            .iter()
            .take_while(|b| !ESCAPES[usize::from(**b)])
            .count()
    };
    for word in words.by_ref() {
        if needs_escape(u64::from_le_bytes(word.try_into().unwrap_or_default())) {
            return clean + clean_bytes(word);
        }
        clean += 8;
    }
    clean + clean_bytes(words.remainder())
}

/// Appends `s` escaped for the inside of a JSON string; runs that need nothing are copied
/// whole.
fn escape(out: &mut String, s: &str) {
    let bytes = s.as_bytes();
    let clean = clean_prefix(bytes);
    if clean == bytes.len() {
        out.push_str(s);
        return;
    }
    let mut start = 0;
    for (i, &byte) in bytes.iter().enumerate().skip(clean) {
        if !ESCAPES[usize::from(byte)] {
            continue;
        }
        out.push_str(&s[start..i]);
        match byte {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 0xf)]));
            }
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

/// Escapes what a `Debug` or `Display` writes.
struct Escaped<'a>(&'a mut String);

impl fmt::Write for Escaped<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape(self.0, s);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::fmt::MakeWriter;

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Capture {
        type Writer = Capture;
        fn make_writer(&'a self) -> Capture {
            self.clone()
        }
    }

    /// The lines `emit` produced through the formatter, each parsed by serde_json.
    fn lines(emit: impl FnOnce()) -> Vec<serde_json::Map<String, Value>> {
        parsed(&raw(emit))
    }

    fn raw(emit: impl FnOnce()) -> String {
        let capture = Capture::default();
        let subscriber = tracing_subscriber::fmt()
            .event_format(JsonLines)
            .with_writer(capture.clone())
            .with_max_level(tracing::Level::TRACE)
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        let text = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
        assert!(text.ends_with('\n'), "{text}");
        text
    }

    fn parsed(text: &str) -> Vec<serde_json::Map<String, Value>> {
        text.lines()
            .map(|line| match serde_json::from_str(line) {
                Ok(Value::Object(map)) => map,
                other => panic!("not a JSON object: {line} ({other:?})"),
            })
            .collect()
    }

    #[test]
    fn every_kind_of_field_is_valid_json_with_its_value() {
        let tricky = "quote \" backslash \\ newline \n tab \t bell \u{7} del \u{7f} é 漢 🎉";
        let text = raw(|| {
            tracing::info!(
                target: "ccp::access",
                text = tricky,
                shown = %"a\"b",
                debugged = ?vec!["x", "y\n"],
                count = 42u64,
                delta = -7i64,
                big = u128::MAX,
                yes = true,
                ratio = 0.25,
                nan = f64::NAN,
                inf = f64::INFINITY,
                "done with {}", "it"
            );
        });
        let got = parsed(&text);
        assert_eq!(got.len(), 1);
        let line = &got[0];
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["target"], "ccp::access");
        assert_eq!(line["message"], "done with it");
        assert_eq!(line["text"], tricky);
        assert_eq!(line["shown"], "a\"b");
        assert_eq!(line["debugged"], r#"["x", "y\n"]"#);
        assert_eq!(line["count"], 42);
        assert_eq!(line["delta"], -7);
        // serde_json reads it back as a float; the line holds every digit.
        assert!(text.contains(&format!("\"big\":{},", u128::MAX)), "{text}");
        assert_eq!(line["yes"], true);
        assert_eq!(line["ratio"], 0.25);
        assert_eq!(line["nan"], Value::Null);
        assert_eq!(line["inf"], Value::Null);
        let stamp = line["timestamp"].as_str().unwrap();
        let parsed = chrono::DateTime::parse_from_rfc3339(stamp).unwrap();
        let age = chrono::Utc::now().signed_duration_since(parsed);
        assert!(age.num_seconds().abs() < 60, "{stamp}");
        assert!(!line.contains_key("spans"));
    }

    #[test]
    fn every_character_survives_the_escaping() {
        let all: String = (0u32..0x800).filter_map(char::from_u32).collect();
        let got = lines(|| tracing::info!(all = all.as_str(), shown = %all, "x"));
        assert_eq!(got[0]["all"], all.as_str());
        assert_eq!(got[0]["shown"], all.as_str());
    }

    proptest::proptest! {
        #[test]
        fn the_word_scan_stops_where_the_table_does(s in "[ -~\u{0}-\u{1f}\u{7f}é€]{0,40}") {
            let first = s.bytes().position(|b| ESCAPES[usize::from(b)]).unwrap_or(s.len());
            proptest::prop_assert_eq!(clean_prefix(s.as_bytes()), first);
            let mut escaped = String::new();
            escape(&mut escaped, &s);
            proptest::prop_assert!(!escaped.bytes().any(|b| b < 0x20 || b == 0x7f));
            let back: String = serde_json::from_str(&format!("\"{escaped}\"")).unwrap();
            proptest::prop_assert_eq!(back, s);
        }
    }

    /// A field whose `Debug` logs. (tracing does not deliver the inner event: its dispatcher
    /// is busy with the outer one on this thread.)
    struct Noisy;

    impl fmt::Debug for Noisy {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            tracing::warn!(inner = "yes", "from inside");
            f.write_str("noisy")
        }
    }

    #[test]
    fn a_field_that_logs_and_a_long_line_leave_the_lines_around_them_whole() {
        let got = lines(|| {
            tracing::info!(before = "a".repeat(40_000).as_str(), "long");
            tracing::info!(field = ?Noisy, "outer");
            tracing::info!(after = 1u64, "next");
        });
        let messages: Vec<&str> = got.iter().map(|l| l["message"].as_str().unwrap()).collect();
        assert_eq!(messages, ["long", "outer", "next"]);
        let outer = got.iter().find(|l| l["message"] == "outer").unwrap();
        assert_eq!(outer["field"], "noisy");
        assert_eq!(got.last().unwrap()["after"], 1);
        assert_eq!(got[0]["before"].as_str().unwrap().len(), 40_000);
    }

    #[test]
    fn log_crate_records_keep_their_target_and_drop_the_bridge_fields() {
        let got = lines(|| {
            let count = 3;
            let args = format_args!("pool {count} full");
            let record = log::Record::builder()
                .args(args)
                .level(log::Level::Warn)
                .target("pingora_core::connectors")
                .module_path(Some("pingora_core::connectors"))
                .file(Some("connectors.rs"))
                .line(Some(12))
                .build();
            tracing_log::format_trace(&record).unwrap();
        });
        assert_eq!(got.len(), 1);
        let line = &got[0];
        assert_eq!(line["target"], "pingora_core::connectors");
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["message"], "pool 3 full");
        assert!(line.keys().all(|k| !k.starts_with("log.")), "{line:?}");
    }

    #[test]
    fn events_inside_spans_name_them_outermost_first() {
        let got = lines(|| {
            let outer = tracing::info_span!("outer", id = 1);
            let _o = outer.enter();
            let inner = tracing::info_span!("in\"ner");
            let _i = inner.enter();
            tracing::warn!("inside");
        });
        let spans: Vec<&str> = got[0]["spans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(spans, ["outer", "in\"ner"]);
    }
}
