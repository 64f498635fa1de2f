//! The request body on its way through: the copy kept for a possible failover, and the
//! coalescing of small chunks before they go to Plan. Both are plain types, tested here.
//!
//! The failover copy costs no bytes: Pingora hands the body over as reference-counted
//! `Bytes`, and the tee keeps those handles. Only the Bedrock path joins them into one buffer
//! (Converse needs the whole JSON). Coalescing exists because Pingora hands over the part of
//! the body read with the header and the rest separately, and each upstream write costs a
//! syscall (and, on loopback, the receiver's TCP work).

use bytes::{Bytes, BytesMut};

/// The request body as it went to Plan, kept while a failover may need it.
#[derive(Debug, Default)]
pub struct BodyTee {
    chunks: Vec<Bytes>,
    len: u64,
    /// The end of the body has been seen.
    pub complete: bool,
    /// Failover can no longer happen: nothing is kept any more.
    released: bool,
}

impl BodyTee {
    pub fn push(&mut self, chunk: &Bytes) {
        if !chunk.is_empty() && !self.released {
            self.len += chunk.len() as u64;
            self.chunks.push(chunk.clone());
        }
    }

    /// Lets the kept body go once Plan's own answer is on its way to the client, so a
    /// stream does not hold its request body for as long as it runs. What is left is empty
    /// and shorter than any declared length, so a failover attempted after this would find
    /// the body unreadable rather than send part of it.
    pub fn release(&mut self) {
        self.chunks = Vec::new();
        self.len = 0;
        self.released = true;
    }

    /// Bytes kept so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The whole body in one buffer: no copy for a body that came in one chunk.
    pub fn joined(&self) -> Bytes {
        match self.chunks.as_slice() {
            [one] => one.clone(),
            chunks => {
                let mut all = Vec::with_capacity(usize::try_from(self.len).unwrap_or(0));
                for c in chunks {
                    all.extend_from_slice(c);
                }
                Bytes::from(all)
            }
        }
    }
}

/// Joins request-body chunks up to [`Coalescer::LIMIT`] before they are written upstream.
///
/// A join copies every byte it holds, and one copy of about 30 KB costs what one more write
/// upstream costs (docs/benchmarks.md, round eight). So only a body whose declared length
/// fits in one join is held: Pingora hands a large body over in pieces of up to 64 KiB (a
/// 150 KB one as about 3 + 60 + 64 + 22 KB), and joining the first ones under the old 64 KiB
/// limit copied 127 KB, and grew the buffer once more, to save one write (round thirteen). A
/// body of unknown length is joined up to the limit.
#[derive(Debug, Default)]
pub struct Coalescer {
    pending: BytesMut,
    /// Body bytes not seen yet, when the request said how many (`Content-Length`).
    expected: Option<usize>,
}

impl Coalescer {
    pub const LIMIT: usize = 32 * 1024;

    /// The body's declared length: it decides whether the body is held at all, and a held
    /// body's buffer is sized once, so held bytes are copied once and never again as it grows.
    pub fn expect(&mut self, body_bytes: u64) {
        self.expected = Some(usize::try_from(body_bytes).unwrap_or(usize::MAX));
    }

    /// Rewrites the chunk `request_body_filter` got: the same chunk when nothing is held back
    /// and it may go now (no copy), an empty chunk while holding back (Pingora writes
    /// nothing for it; `None` would mean "end of body"), or everything held once the limit or
    /// the end of the body is reached.
    pub fn coalesce(&mut self, body: &mut Option<Bytes>, end_of_stream: bool) {
        let arriving = body.as_ref().map_or(0, Bytes::len);
        let release = end_of_stream || self.pending.len() + arriving >= Self::LIMIT;
        let still_to_come = self.expected.map(|left| left.saturating_sub(arriving));
        self.expected = still_to_come;
        let too_long_to_join = still_to_come.is_some_and(|rest| arriving + rest > Self::LIMIT);
        if self.pending.is_empty() && (release || too_long_to_join) {
            return;
        }
        if let Some(chunk) = body.take() {
            if self.pending.is_empty() {
                let rest = still_to_come.unwrap_or(0).min(Self::LIMIT);
                self.pending.reserve(chunk.len() + rest);
            }
            self.pending.extend_from_slice(&chunk);
        }
        *body = Some(if release {
            // Taken, not split: a split would leave the coalescer sharing the buffer, which
            // then lived as long as the request (a minute-long stream held its whole body).
            std::mem::take(&mut self.pending).freeze()
        } else {
            Bytes::new()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_one_chunk_body_is_never_copied() {
        let chunk = Bytes::from(vec![7u8; 100_000]);
        let mut tee = BodyTee::default();
        tee.push(&chunk);
        tee.push(&Bytes::new());
        assert_eq!(tee.joined().as_ptr(), chunk.as_ptr());
        let mut c = Coalescer::default();
        let mut body = Some(chunk.clone());
        c.coalesce(&mut body, true);
        assert_eq!(body.unwrap().as_ptr(), chunk.as_ptr());
    }

    #[test]
    fn a_released_tee_keeps_nothing_more() {
        let chunk = Bytes::from(vec![7u8; 1_000]);
        let mut tee = BodyTee::default();
        tee.push(&chunk);
        tee.release();
        tee.push(&chunk);
        assert!(tee.is_empty());
        assert!(tee.joined().is_empty());
        assert!(chunk.is_unique(), "the tee holds no share of the chunk");
    }

    #[test]
    fn with_the_length_declared_held_bytes_are_copied_once() {
        let mut c = Coalescer::default();
        c.expect(30_000);
        let mut first = Some(Bytes::from(vec![1u8; 1_000]));
        c.coalesce(&mut first, false);
        assert!(first.unwrap().is_empty(), "held back");
        let buffer = c.pending.as_ptr();
        assert!(c.pending.capacity() >= 30_000);
        let mut second = Some(Bytes::from(vec![2u8; 29_000]));
        c.coalesce(&mut second, true);
        let out = second.unwrap();
        assert_eq!(out.as_ptr(), buffer, "the first buffer, not a grown copy");
        assert_eq!(out.len(), 30_000);
        assert_eq!(&out[999..1_001], &[1, 2]);
        assert!(
            out.is_unique(),
            "the coalescer keeps no share of what it released"
        );
        assert_eq!(c.pending.capacity(), 0);
    }

    /// Feeds `sizes` as chunks of a body of declared length; returns the chunks written and
    /// whether each one is a chunk that came in (not a copy).
    fn declared(sizes: &[usize]) -> Vec<(usize, bool)> {
        let mut c = Coalescer::default();
        c.expect(sizes.iter().sum::<usize>() as u64);
        let mut out = Vec::new();
        for (i, size) in sizes.iter().enumerate() {
            let chunk = Bytes::from(vec![7u8; *size]);
            let mut body = Some(chunk.clone());
            c.coalesce(&mut body, i + 1 == sizes.len());
            let written = body.expect("never None");
            if !written.is_empty() {
                out.push((written.len(), written.as_ptr() == chunk.as_ptr()));
            }
        }
        out
    }

    #[test]
    fn a_short_body_is_joined_and_a_long_one_goes_as_it_came() {
        // A 30 KB request as Pingora hands it over: the piece read with the header, the rest.
        assert_eq!(declared(&[3_000, 27_000]), [(30_000, false)]);
        // 150 KB: nothing held, nothing copied.
        assert_eq!(
            declared(&[3_000, 60_000, 65_536, 22_000]),
            [
                (3_000, true),
                (60_000, true),
                (65_536, true),
                (22_000, true)
            ]
        );
        // Small pieces of a long body go as they come too, as through bare Pingora, until
        // what is left fits in one join.
        let mut pieces = vec![(1_000, true); 8];
        pieces.push((32_000, false));
        assert_eq!(declared(&[1_000; 40]), pieces);
    }

    proptest! {
        #[test]
        fn coalescing_keeps_every_byte_in_order_and_writes_less(
            sizes in prop::collection::vec(0usize..30_000, 1..12)
        ) {
            let mut c = Coalescer::default();
            let mut tee = BodyTee::default();
            let (mut sent, mut writes, mut expected) = (Vec::new(), 0, Vec::new());
            for (i, size) in sizes.iter().enumerate() {
                let chunk = Bytes::from(vec![(i % 251) as u8; *size]);
                expected.extend_from_slice(&chunk);
                tee.push(&chunk);
                let mut body = Some(chunk);
                c.coalesce(&mut body, i + 1 == sizes.len());
                let out = body.expect("never None: that would end the body");
                if !out.is_empty() {
                    writes += 1;
                    // Joining never builds more than the limit plus one chunk.
                    prop_assert!(out.len() < Coalescer::LIMIT + 30_000);
                }
                sent.extend_from_slice(&out);
            }
            prop_assert_eq!(&sent, &expected);
            let joined = tee.joined();
            prop_assert_eq!(joined.as_ref(), expected.as_slice());
            prop_assert_eq!(tee.len(), expected.len() as u64);
            let total: usize = sizes.iter().sum();
            prop_assert!(writes <= sizes.len());
            // Every write but the last carries at least the limit.
            if sizes.iter().all(|s| *s < Coalescer::LIMIT) {
                prop_assert!(writes <= total / Coalescer::LIMIT + 1, "{} writes for {} bytes", writes, total);
            }
        }
    }
}
