//! Plan SSE streams: finding their end, and the error event a cut stream gets.

use bytes::Bytes;
use ccp_core::metering::tap::UsageTap;
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

fn is_end_marker(line: &[u8]) -> bool {
    line.len() <= MARKER_LINE && END_MARKERS.iter().any(|m| line.starts_with(m))
}

impl Default for SseWatch {
    fn default() -> Self {
        Self {
            complete: false,
            lines: Lines::new(MARKER_LINE),
        }
    }
}

/// Shows a Plan answer's chunk to whichever of its readers the response has: the usage tap and
/// the end watch. When the tap reads the body line by line (an uncompressed stream), the watch
/// looks at the same lines, so a chunk is split into lines once, not twice.
pub fn read_chunk(tap: Option<&mut UsageTap>, watch: Option<&mut SseWatch>, chunk: &[u8]) {
    match (tap, watch) {
        (Some(tap), Some(watch)) => {
            if !tap.feed_lines(chunk, |line| watch.look(line)) {
                watch.observe(chunk);
            }
        }
        (Some(tap), None) => tap.feed(chunk),
        (None, Some(watch)) => watch.observe(chunk),
        (None, None) => {}
    }
}

impl SseWatch {
    /// Reads the next chunk's lines itself.
    pub fn observe(&mut self, chunk: &[u8]) {
        if self.complete || chunk.is_empty() {
            return;
        }
        let mut ended = false;
        self.lines.feed(chunk, |line| ended |= is_end_marker(line));
        self.complete = ended;
    }

    /// Looks at one whole line (without its line end) of a body another reader splits. A
    /// body is read either this way or by [`observe`](Self::observe), never both.
    pub fn look(&mut self, line: &[u8]) {
        self.complete |= is_end_marker(line);
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

    /// Reads `stream` cut at `cut` through a tap and a watch sharing one pass, and through a
    /// watch alone: whether each saw the end.
    fn ends_seen(stream: &[u8], cut: usize) -> (bool, bool) {
        let mut tap = UsageTap::new("text/event-stream", None).expect("tap");
        let (mut shared, mut alone) = (SseWatch::default(), SseWatch::default());
        for piece in [&stream[..cut], &stream[cut..]] {
            read_chunk(Some(&mut tap), Some(&mut shared), piece);
            read_chunk(None, Some(&mut alone), piece);
        }
        (shared.complete, alone.complete)
    }

    #[test]
    fn the_watch_reads_a_compressed_body_itself() {
        // The tap decodes gzip into a copy of its own and shares no lines, so the watch is
        // shown the chunk as it came.
        let mut tap = UsageTap::new("text/event-stream", Some("gzip")).expect("tap");
        let mut watch = SseWatch::default();
        read_chunk(Some(&mut tap), Some(&mut watch), b"event: message_stop\n");
        assert!(watch.complete, "the watch saw the chunk as it came");
        assert!(!tap.feed_lines(b"", |_| unreachable!("no lines from a compressed body")));
    }

    proptest! {
        #[test]
        fn a_watch_sharing_the_taps_lines_sees_what_it_sees_alone(
            cut in 0usize..200,
            ending in prop::sample::select(vec!["event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
                                               "event: error\r\ndata: {\"type\":\"error\"}\r\n\r\n",
                                               "event: message_st", ""]),
        ) {
            let stream = format!("event: message_start\ndata: {{\"type\":\"message_start\"}}\n\n\
                                  event: content_block_delta\ndata: {{\"delta\":{{\"text\":\"event: error\"}}}}\n\n{ending}");
            let cut = cut.min(stream.len());
            let (shared, alone) = ends_seen(stream.as_bytes(), cut);
            prop_assert_eq!(shared, alone);
            prop_assert_eq!(shared, ending.len() > 20);
        }

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
