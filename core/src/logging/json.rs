//! One JSON object per event, written straight into the line buffer tracing-subscriber hands
//! over: `{"timestamp":…,"level":…,<the event's fields>,"target":…}`, the shape of
//! tracing-subscriber's own JSON format with `flatten_event(true)`, without its per-event
//! serializer and per-field allocations (measured: the access log line was ~12 µs of the
//! gateway's CPU per request; docs/benchmarks.md). Spans appear by name only (`"spans"`,
//! outermost first): the services open none of their own.

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
        // Records from the `log` crate (Pingora's) carry their real target in fields.
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        writer.write_str("{\"timestamp\":\"")?;
        SystemTime.format_time(&mut writer)?;
        write!(writer, "\",\"level\":\"{}\"", meta.level())?;
        let mut fields = Fields {
            out: &mut writer,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writer.write_str(",\"target\":")?;
        string(&mut writer, meta.target())?;
        if let Some(scope) = ctx.event_scope() {
            let mut first = true;
            for span in scope.from_root() {
                writer.write_str(if first { ",\"spans\":[" } else { "," })?;
                string(&mut writer, span.name())?;
                first = false;
            }
            if !first {
                writer.write_str("]")?;
            }
        }
        writer.write_str("}\n")
    }
}

/// Writes each field as `,"name":value`; the first error stops the rest.
struct Fields<'a, 'w> {
    out: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        // The `log` bridge's own fields: already folded into the metadata above.
        if self.result.is_err() || field.name().starts_with("log.") {
            return;
        }
        self.result = (|| {
            self.out.write_char(',')?;
            string(self.out, field.name())?;
            self.out.write_char(':')?;
            value(self.out)
        })();
    }
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, |w| string(w, value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, |w| {
            w.write_char('"')?;
            write!(Escaped(w), "{value:?}")?;
            w.write_char('"')
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |w| write!(w, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |w| write!(w, "{value}"));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.field(field, |w| write!(w, "{value}"));
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.field(field, |w| write!(w, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, |w| w.write_str(if value { "true" } else { "false" }));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity.
        self.field(field, |w| {
            if value.is_finite() {
                write!(w, "{value}")
            } else {
                w.write_str("null")
            }
        });
    }
}

/// A JSON string literal.
fn string(w: &mut Writer<'_>, s: &str) -> fmt::Result {
    w.write_char('"')?;
    Escaped(w).write_str(s)?;
    w.write_char('"')
}

/// Escapes what it is given for the inside of a JSON string: quote, backslash and the
/// control characters; everything else is copied in runs.
struct Escaped<'a, 'w>(&'a mut Writer<'w>);

impl fmt::Write for Escaped<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut start = 0;
        for (i, byte) in s.bytes().enumerate() {
            let escape = match byte {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..=0x1f | 0x7f => "",
                _ => continue,
            };
            self.0.write_str(&s[start..i])?;
            if escape.is_empty() {
                write!(self.0, "\\u{byte:04x}")?;
            } else {
                self.0.write_str(escape)?;
            }
            start = i + 1;
        }
        self.0.write_str(&s[start..])
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
