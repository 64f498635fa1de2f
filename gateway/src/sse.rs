//! Plan SSE streams: finding their end, and the error event a cut stream gets.

use bytes::Bytes;
use memchr::memmem::Finder;
use std::sync::LazyLock;

/// Watches a Plan SSE response for its end: `message_stop` or an `error` event. A stream
/// that ends without either gets an `overloaded_error` event, never a silent clean end.
#[derive(Debug, Default)]
pub struct SseWatch {
    pub complete: bool,
    /// The end of the previous chunk, so a marker split across chunks is still found.
    tail: Vec<u8>,
}

/// At a line start: JSON escapes newlines, so model text in a `data:` line cannot fake one.
const END_MARKERS: [&[u8]; 2] = [b"\nevent: message_stop", b"\nevent: error"];
/// Their searchers, built once (`memmem::find` builds one on every call, and a stream has a
/// chunk per event).
static END_FINDERS: LazyLock<[Finder<'static>; 2]> = LazyLock::new(|| END_MARKERS.map(Finder::new));
const TAIL: usize = 24;

impl SseWatch {
    pub fn observe(&mut self, chunk: &[u8]) {
        if self.complete || chunk.is_empty() {
            return;
        }
        let found = |hay: &[u8]| END_FINDERS.iter().any(|m| m.find(hay).is_some());
        if self.tail.is_empty() {
            self.complete = found(chunk);
        } else {
            let head = &chunk[..chunk.len().min(TAIL)];
            let mut seam = std::mem::take(&mut self.tail);
            seam.extend_from_slice(head);
            self.complete = found(&seam) || found(chunk);
        }
        let keep = chunk.len().min(TAIL);
        self.tail = chunk[chunk.len() - keep..].to_vec();
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
