//! Log lines on their way to stderr, written many at a time.
//!
//! Writing each line with its own `write` cost the gateway a system call per request (the
//! access log). Lines collect in memory instead and go out in one `write` when
//! [`FLUSH_AT`] bytes wait, when a warning or an error arrives (those are never held), every
//! [`FLUSH_EVERY`] (a small thread), and when the process stops ([`super::LogGuard`]) or
//! panics. Order is kept: lines are appended under one lock and taken out whole.

use std::io::{self, Write};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// Bytes waiting that trigger a write at once.
pub const FLUSH_AT: usize = 32 * 1024;
/// Longest an info line waits.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain bytes behind: still fine to use.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Lines waiting for `out`.
#[derive(Debug)]
pub struct LineBuffer<W> {
    pending: Mutex<Vec<u8>>,
    /// The sink, and the buffer swapped with `pending` at each flush (so neither
    /// reallocates once grown). Held while writing: flushes happen one after another.
    out: Mutex<(W, Vec<u8>)>,
}

impl<W: Write> LineBuffer<W> {
    pub fn new(out: W) -> Self {
        Self {
            pending: Mutex::new(Vec::with_capacity(FLUSH_AT * 2)),
            out: Mutex::new((out, Vec::with_capacity(FLUSH_AT * 2))),
        }
    }

    /// Queues `line`; writes everything waiting when it is `urgent` or enough waits.
    pub fn append(&self, line: &[u8], urgent: bool) -> io::Result<()> {
        let full = {
            let mut pending = lock(&self.pending);
            pending.extend_from_slice(line);
            pending.len() >= FLUSH_AT
        };
        if full || urgent { self.flush() } else { Ok(()) }
    }

    /// Writes everything waiting.
    pub fn flush(&self) -> io::Result<()> {
        self.write_out(lock(&self.out))
    }

    /// Writes everything waiting unless a write is under way (in a panic hook, where that
    /// write may be the panicking one).
    pub fn try_flush(&self) -> io::Result<()> {
        match self.out.try_lock() {
            Ok(out) => self.write_out(out),
            Err(std::sync::TryLockError::Poisoned(out)) => self.write_out(out.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => Ok(()),
        }
    }

    fn write_out(&self, mut out: MutexGuard<'_, (W, Vec<u8>)>) -> io::Result<()> {
        let (sink, batch) = &mut *out;
        batch.clear();
        std::mem::swap(&mut *lock(&self.pending), batch);
        if batch.is_empty() {
            return Ok(());
        }
        sink.write_all(batch)?;
        sink.flush()
    }
}

/// What tracing-subscriber writes each formatted event to.
#[derive(Debug)]
pub struct LineWriter<'a, W: Write> {
    buffer: &'a LineBuffer<W>,
    urgent: bool,
}

impl<W: Write> Write for LineWriter<'_, W> {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        self.buffer.append(line, self.urgent)?;
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// For the process-wide buffer (a `&'static`), which the flusher thread and the guard share.
impl<'a, 'b: 'a, W: Write + 'b> MakeWriter<'a> for &'b LineBuffer<W> {
    type Writer = LineWriter<'b, W>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            buffer: self,
            urgent: false,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        LineWriter {
            buffer: self,
            // WARN and ERROR (tracing orders levels by verbosity).
            urgent: *meta.level() <= Level::WARN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A sink that records each `write` call separately.
    #[derive(Clone, Default)]
    struct Writes(Arc<Mutex<Vec<Vec<u8>>>>);

    impl Write for Writes {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Writes {
        fn calls(&self) -> usize {
            self.0.lock().unwrap().len()
        }
        fn all(&self) -> Vec<u8> {
            self.0.lock().unwrap().concat()
        }
    }

    #[test]
    fn info_lines_wait_until_enough_bytes_then_go_in_one_write() {
        let sink = Writes::default();
        let buffer = LineBuffer::new(sink.clone());
        let line = [b'a'; 99].iter().chain(b"\n").copied().collect::<Vec<u8>>();
        let lines_to_fill = FLUSH_AT.div_ceil(line.len());
        for _ in 0..lines_to_fill - 1 {
            buffer.append(&line, false).unwrap();
        }
        assert_eq!(sink.calls(), 0, "held below {FLUSH_AT} bytes");
        buffer.append(&line, false).unwrap();
        assert_eq!(sink.calls(), 1);
        assert_eq!(sink.all().len(), lines_to_fill * line.len());
        buffer.flush().unwrap();
        assert_eq!(sink.calls(), 1, "nothing left: no empty write");
    }

    #[test]
    fn a_warning_takes_everything_before_it_out_at_once() {
        let sink = Writes::default();
        let buffer: &'static LineBuffer<Writes> =
            Box::leak(Box::new(LineBuffer::new(sink.clone())));
        let subscriber = tracing_subscriber::fmt()
            .with_writer(buffer)
            .without_time()
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("one");
            tracing::debug!("not shown");
            tracing::info!("two");
            assert_eq!(sink.calls(), 0);
            tracing::warn!("three");
            assert_eq!(sink.calls(), 1);
            tracing::info!("four");
            tracing::error!("five");
        });
        assert_eq!(sink.calls(), 2);
        let text = String::from_utf8(sink.all()).unwrap();
        let messages: Vec<&str> = text
            .lines()
            .map(|l| l.rsplit(' ').next().unwrap())
            .collect();
        assert_eq!(messages, ["one", "two", "three", "four", "five"], "{text}");
    }

    #[test]
    fn lines_from_many_threads_arrive_whole_and_each_thread_in_order() {
        let sink = Writes::default();
        let buffer = Arc::new(LineBuffer::new(sink.clone()));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let buffer = Arc::clone(&buffer);
                std::thread::spawn(move || {
                    for i in 0..5_000 {
                        let line = format!("{t} {i} {}\n", "x".repeat(i % 300));
                        buffer.append(line.as_bytes(), i % 997 == 0).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        buffer.flush().unwrap();
        let text = String::from_utf8(sink.all()).unwrap();
        let mut next = [0usize; 4];
        for line in text.lines() {
            let mut parts = line.split(' ');
            let t: usize = parts.next().unwrap().parse().unwrap();
            let i: usize = parts.next().unwrap().parse().unwrap();
            assert_eq!(parts.next().unwrap().len(), i % 300, "{line}");
            assert_eq!(i, next[t], "thread {t} out of order");
            next[t] += 1;
        }
        assert_eq!(next, [5_000; 4]);
        assert!(sink.calls() < 4 * 5_000 / 10, "{} writes", sink.calls());
    }
}
