//! Server-sent event bodies read line by line as their chunks pass through.

/// Splits a body into lines as it arrives in chunks, for readers that look at some lines and
/// let the rest go by. A line that arrives whole is handed over where it lies in the chunk;
/// only a line split across chunks is copied, into a buffer kept for the next one (up to
/// [`KEPT_CAPACITY`]: a longer line's buffer is let go once read, so a long stream does not
/// hold it). Lines longer than the limit are dropped whole, so the buffer never holds more
/// than the limit.
///
/// A stream has a chunk per event: copying every line into a fresh `Vec` and searching each
/// chunk with `memmem` cost about 2 000 instructions an event (docs/benchmarks.md, round
/// thirteen).
#[derive(Debug)]
pub struct Lines {
    /// The start of a line whose end has not arrived yet.
    partial: Vec<u8>,
    /// The line under way is over the limit: dropped up to its end.
    skipping: bool,
    limit: usize,
}

/// The most a [`Lines`] buffer keeps for the next split line.
pub const KEPT_CAPACITY: usize = 4096;

impl Lines {
    /// Lines of up to `limit` bytes (counted without the `\n`, with a `\r` before it) are
    /// handed over.
    pub const fn new(limit: usize) -> Self {
        Self {
            partial: Vec::new(),
            skipping: false,
            limit,
        }
    }

    /// Hands each line that `chunk` completes to `each`, without its `\n` or `\r\n`. The
    /// last line is handed over only once its line end arrives.
    pub fn feed(&mut self, chunk: &[u8], mut each: impl FnMut(&[u8])) {
        let mut rest = chunk;
        while let Some(eol) = memchr::memchr(b'\n', rest) {
            let end = &rest[..eol];
            rest = &rest[eol + 1..];
            if std::mem::take(&mut self.skipping) {
                continue;
            }
            if self.partial.is_empty() {
                if end.len() <= self.limit {
                    each(without_cr(end));
                }
            } else {
                if self.partial.len() + end.len() <= self.limit {
                    self.partial.extend_from_slice(end);
                    each(without_cr(&self.partial));
                }
                self.forget_partial();
            }
        }
        if rest.is_empty() || self.skipping {
            return;
        }
        if self.partial.len() + rest.len() > self.limit {
            self.skipping = true;
            self.forget_partial();
        } else {
            self.partial.extend_from_slice(rest);
        }
    }

    /// Empties the buffer, keeping at most [`KEPT_CAPACITY`] of it.
    fn forget_partial(&mut self) {
        if self.partial.capacity() > KEPT_CAPACITY {
            self.partial = Vec::new();
        } else {
            self.partial.clear();
        }
    }
}

fn without_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The complete lines of `body` of up to `limit` bytes (counted with a `\r` that ends
    /// them), split in one piece the plain way.
    fn split_whole(body: &[u8], limit: usize) -> Vec<Vec<u8>> {
        let mut parts: Vec<&[u8]> = body.split(|b| *b == b'\n').collect();
        parts.pop(); // after the last `\n`: not a complete line
        parts
            .into_iter()
            .filter(|p| p.len() <= limit)
            .map(|p| without_cr(p).to_vec())
            .collect()
    }

    proptest! {
        #[test]
        fn lines_come_out_the_same_however_the_body_is_cut(
            body in prop::collection::vec(prop::sample::select(b"ab\r\n".to_vec()), 0..300),
            cuts in prop::collection::vec(0usize..300, 0..8),
            limit in 0usize..40,
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(body.len())).collect();
            cuts.sort_unstable();
            let mut lines = Lines::new(limit);
            let mut seen = Vec::new();
            let mut start = 0;
            for cut in cuts.into_iter().chain([body.len()]) {
                lines.feed(&body[start..cut], |l| seen.push(l.to_vec()));
                start = cut;
            }
            prop_assert_eq!(seen, split_whole(&body, limit));
            prop_assert!(lines.partial.capacity() <= (2 * limit).max(8));
            prop_assert!(lines.partial.capacity() <= KEPT_CAPACITY || !lines.partial.is_empty());
        }
    }

    #[test]
    fn a_whole_line_is_not_copied_and_a_long_one_is_dropped() {
        let mut lines = Lines::new(9); // "event: x\r"
        let chunk = b"event: x\r\ndata: much too long\nok\n".to_vec();
        let mut seen = Vec::new();
        lines.feed(&chunk, |l| seen.push((l.as_ptr(), l.to_vec())));
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0], (chunk.as_ptr(), b"event: x".to_vec()));
        assert_eq!(seen[1].1, b"ok");
        assert_eq!(lines.partial.capacity(), 0, "nothing was held");

        // A long line split across chunks is read whole, and its buffer is not kept.
        let mut lines = Lines::new(64 * 1024);
        let long = vec![b'x'; 3 * KEPT_CAPACITY];
        let mut seen = 0;
        lines.feed(&long, |_| unreachable!("no line end yet"));
        lines.feed(b"\nshort", |l| seen = l.len());
        assert_eq!(seen, long.len());
        assert!(lines.partial.capacity() <= KEPT_CAPACITY);
        assert_eq!(lines.partial, b"short");
    }
}
