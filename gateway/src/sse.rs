//! Plan SSE streams: finding their end, and the error event a cut stream gets.

use bytes::Bytes;
use ccp_core::sse::Lines;

/// Watches a Plan SSE response for its end: `message_stop` or an `error` event. A stream
/// that ends without either gets an `overloaded_error` event, never a silent clean end.
#[derive(Debug)]
pub struct SseWatch {
    pub complete: bool,
    /// Only lines as short as an end marker are looked at; a line split across chunks is
    /// joined first.
    lines: Lines,
}

/// Line starts that end a stream. JSON escapes newlines, so model text in a `data:` line
/// cannot fake one.
const END_MARKERS: [&[u8]; 2] = [b"event: message_stop", b"event: error"];
/// The longest line looked at: a marker with room for trailing blanks.
const MARKER_LINE: usize = 32;

impl Default for SseWatch {
    fn default() -> Self {
        Self {
            complete: false,
            lines: Lines::new(MARKER_LINE),
        }
    }
}

impl SseWatch {
    pub fn observe(&mut self, chunk: &[u8]) {
        if self.complete || chunk.is_empty() {
            return;
        }
        let mut ended = false;
        self.lines.feed(chunk, |line| {
            ended |= END_MARKERS.iter().any(|m| line.starts_with(m));
        });
        self.complete = ended;
    }

    /// The SSE error event for a cut stream.
    pub fn cut_event() -> Bytes {
        let mut out = Vec::new();
        ccp_core::translate::stream::sse_error(
            &mut out,
            "overloaded_error",
            "The upstream stream ended before the message was complete. Retry the request.",
        );
        Bytes::from(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_error_event_ends_the_stream_even_as_its_first_line() {
        let mut w = SseWatch::default();
        w.observe(b"event: error\r\ndata: {\"type\":\"error\"}\r\n\r\n");
        assert!(w.complete);
        let mut w = SseWatch::default();
        w.observe(b"event: message_delta\ndata: {}\n\nevent: message_st");
        assert!(!w.complete, "a marker not yet whole");
        w.observe(b"op\n");
        assert!(w.complete);
    }

    proptest! {
        #[test]
        fn end_markers_are_found_across_any_split(split in 0usize..60, error in any::<bool>()) {
            let stream: &[u8] = if error {
                b"event: ping\ndata: {}\n\nevent: error\ndata: {}\n\n"
            } else {
                b"event: ping\ndata: {}\n\nevent: message_stop\ndata: {}\n\n"
            };
            let split = split.min(stream.len());
            let mut w = SseWatch::default();
            w.observe(&stream[..split]);
            w.observe(&stream[split..]);
            prop_assert!(w.complete);
            let mut cut = SseWatch::default();
            cut.observe(&stream[..stream.len() / 3]);
            prop_assert!(!cut.complete);
            // Model text quoting the marker does not count.
            let mut fake = SseWatch::default();
            fake.observe(br#"event: content_block_delta
data: {"delta":{"text":"\n\nevent: message_stop\n\n"}}

"#);
            prop_assert!(!fake.complete);
        }
    }
}
