//! The public listener's edge rules, for a gateway that may run without a load balancer in
//! front: a request head must arrive whole within `CCP_HEADER_TIMEOUT_SECS`, and heads that
//! the strictest proxies refuse are refused here too (never forwarded).
//!
//! Pingora 0.9 times out each read of a request head, not the head as a whole: a client
//! sending one byte every few seconds holds its connection for ever. It has no hook between
//! accept and the head parse either, so the deadline sits in the one place every byte passes:
//! [`HeadGuard`] wraps the proxy app and gives it each accepted connection inside a
//! [`HeadDeadline`] stream. That stream knows where a head ends (the first empty line) and
//! when a new one starts (the first byte read after a response was written), and fails a
//! read once a head has taken longer than the limit. Pingora then drops the connection. Idle
//! keep-alive connections stay governed by Pingora's keep-alive timeout.
//!
//! The head checks ([`check_head`]) run first in `request_filter` on the raw head bytes,
//! because Pingora has by then removed a `Content-Length` sent next to `Transfer-Encoding`.
//!
//! (Over 400 lines only with its unit tests, which sit beside the code they check.)

use crate::error::GatewayError;
use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::http::RequestHeader;
use pingora::protocols::raw_connect::ProxyDigest;
use pingora::protocols::tls::{SslDigest, TlsRef};
use pingora::protocols::{
    ALPN, GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl,
    Stream, TimingDigest, UniqueID, UniqueIDType,
};
use pingora::server::ShutdownWatch;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Wraps a server app so that every accepted connection reads through a [`HeadDeadline`].
pub struct HeadGuard<A> {
    inner: Arc<A>,
    limit: Duration,
    /// Connections closed because a head took too long.
    pub timeouts: Arc<AtomicU64>,
}

impl<A> std::fmt::Debug for HeadGuard<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeadGuard")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl<A> HeadGuard<A> {
    pub fn new(inner: A, limit: Duration, timeouts: Arc<AtomicU64>) -> Self {
        Self {
            inner: Arc::new(inner),
            limit,
            timeouts,
        }
    }
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for HeadGuard<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let guarded = HeadDeadline::new(stream, self.limit, Arc::clone(&self.timeouts));
        self.inner.process_new(Box::new(guarded), shutdown).await
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading a request head that must be complete by the deadline.
    Head,
    /// The head is complete: the body, or waiting for the response to be written.
    Body,
    /// A response was written; the next byte read starts a new head.
    Idle,
}

/// A connection whose request heads have a total deadline. See the module docs.
#[derive(Debug)]
pub struct HeadDeadline {
    inner: Stream,
    limit: Duration,
    phase: Phase,
    deadline: Instant,
    timer: Pin<Box<Sleep>>,
    scanner: HeadEnd,
    timeouts: Arc<AtomicU64>,
}

/// An empty line: a line feed followed by `\r\n` (so `\r\n\r\n`) or by `\n` (bare line
/// feeds, which `check_head` then refuses). One pass over the line feeds: `memmem::find`
/// built its searcher again on every call, twice a read.
fn ends_head(window: &[u8]) -> bool {
    memchr::memchr_iter(b'\n', window)
        .any(|at| matches!(window[at + 1..], [b'\n', ..] | [b'\r', b'\n', ..]))
}

/// Finds the end of a request head in the bytes of a connection, read in any pieces.
#[derive(Debug, Default, Clone, Copy)]
struct HeadEnd {
    /// The last bytes seen, so an end split across reads is still found.
    tail: [u8; 3],
    tail_len: usize,
}

impl HeadEnd {
    /// Feeds newly read bytes; true once the head is complete.
    fn feed(&mut self, new: &[u8]) -> bool {
        let mut seam = [0u8; 6];
        let head = new.len().min(3);
        seam[..self.tail_len].copy_from_slice(&self.tail[..self.tail_len]);
        seam[self.tail_len..self.tail_len + head].copy_from_slice(&new[..head]);
        let joined = &seam[..self.tail_len + head];
        if ends_head(joined) || ends_head(new) {
            *self = Self::default();
            return true;
        }
        let source: &[u8] = if new.len() >= 3 { new } else { joined };
        let keep = source.len().min(3);
        self.tail[..keep].copy_from_slice(&source[source.len() - keep..]);
        self.tail_len = keep;
        false
    }
}

impl HeadDeadline {
    pub fn new(inner: Stream, limit: Duration, timeouts: Arc<AtomicU64>) -> Self {
        let deadline = Instant::now() + limit;
        Self {
            inner,
            limit,
            phase: Phase::Head,
            deadline,
            timer: Box::pin(tokio::time::sleep_until(deadline)),
            scanner: HeadEnd::default(),
            timeouts,
        }
    }

    /// A new head starts. Its deadline is noted but the timer is left where it is: it fires at
    /// an earlier head's deadline at the latest, and is moved on only then
    /// ([`HeadDeadline::timed_out`]). Moving it here took the timer wheel's lock on every
    /// request of a keep-alive connection; now it happens once per `limit` at most.
    fn start_head(&mut self) {
        self.phase = Phase::Head;
        self.deadline = Instant::now() + self.limit;
        self.scanner = HeadEnd::default();
    }

    /// Polls the timer for the head being read: true once this head's own deadline passed.
    /// A timer still set to an earlier head's deadline is moved to this one's and polled again.
    fn timed_out(&mut self, cx: &mut Context<'_>) -> bool {
        while self.timer.as_mut().poll(cx).is_ready() {
            if self.timer.deadline() >= self.deadline {
                return true;
            }
            self.timer.as_mut().reset(self.deadline);
        }
        false
    }

    fn expired(&mut self) -> io::Error {
        self.timeouts.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            limit_secs = self.limit.as_secs(),
            "request head too slow; closing the connection"
        );
        io::Error::new(io::ErrorKind::TimedOut, "request head not complete in time")
    }
}

impl AsyncRead for HeadDeadline {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.phase == Phase::Head && Instant::now() >= this.deadline {
            return Poll::Ready(Err(this.expired()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let new = &buf.filled()[before..];
                if !new.is_empty() {
                    if this.phase == Phase::Idle {
                        this.start_head();
                    }
                    if this.phase == Phase::Head && this.scanner.feed(new) {
                        this.phase = Phase::Body;
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                if this.phase == Phase::Head && this.timed_out(cx) {
                    return Poll::Ready(Err(this.expired()));
                }
                Poll::Pending
            }
            other => other,
        }
    }
}

impl AsyncWrite for HeadDeadline {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            self.phase = Phase::Idle;
        }
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            self.phase = Phase::Idle;
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

// Everything else is the accepted stream's own.
#[async_trait]
impl Shutdown for HeadDeadline {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await;
    }
}

impl UniqueID for HeadDeadline {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for HeadDeadline {
    fn get_ssl(&self) -> Option<&TlsRef> {
        self.inner.get_ssl()
    }

    fn get_ssl_digest(&self) -> Option<Arc<SslDigest>> {
        self.inner.get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for HeadDeadline {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }

    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }

    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for HeadDeadline {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_proxy_digest()
    }

    fn set_proxy_digest(&mut self, digest: ProxyDigest) {
        self.inner.set_proxy_digest(digest);
    }
}

impl GetSocketDigest for HeadDeadline {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }

    fn set_socket_digest(&mut self, digest: SocketDigest) {
        self.inner.set_socket_digest(digest);
    }
}

#[async_trait]
impl Peek for HeadDeadline {
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}

/// Whether a raw head names `name` as a header (at a line start, any case, then `:`).
fn has_header(raw: &[u8], name: &[u8]) -> bool {
    raw.split(|b| *b == b'\n').skip(1).any(|line| {
        line.len() > name.len()
            && line[..name.len()].eq_ignore_ascii_case(name)
            && line[name.len()..]
                .iter()
                .find(|b| **b != b' ' && **b != b'\t')
                == Some(&b':')
    })
}

/// The head checks: the answer for a head the strictest proxies refuse, or `None`.
/// `raw` is the head as received (request line and headers).
pub fn check_head(raw: &[u8], req: &RequestHeader) -> Option<GatewayError> {
    let bare_lf = memchr::memchr_iter(b'\n', raw).any(|i| i == 0 || raw[i - 1] != b'\r');
    if bare_lf {
        return Some(GatewayError::BareLineFeed);
    }
    // Pingora keeps `Transfer-Encoding` and drops a `Content-Length` sent with it, so the raw
    // head is only read for the length when the request is chunked (not on the common path).
    if req.headers.contains_key(http::header::TRANSFER_ENCODING)
        && has_header(raw, b"content-length")
    {
        return Some(GatewayError::AmbiguousFraming);
    }
    let may_have_body = !matches!(req.method.as_str(), "GET" | "HEAD" | "OPTIONS" | "DELETE");
    if req.version == http::Version::HTTP_10
        && may_have_body
        && !req.headers.contains_key(http::header::CONTENT_LENGTH)
    {
        return Some(GatewayError::LengthRequired);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(method: &str, version: http::Version, cl: bool) -> RequestHeader {
        let mut req = RequestHeader::build(method, b"/ak/x/v1/messages", None).unwrap();
        req.set_version(version);
        if cl {
            req.insert_header("content-length", "2").unwrap();
        }
        req
    }

    #[test]
    fn heads_the_strictest_proxies_refuse() {
        let post11 = header("POST", http::Version::HTTP_11, true);
        let ok = b"POST /ak/x/v1/messages HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n";
        assert_eq!(check_head(ok, &post11), None);
        let lf = b"POST /ak/x/v1/messages HTTP/1.1\nHost: a\r\nContent-Length: 2\r\n\r\n";
        assert_eq!(check_head(lf, &post11), Some(GatewayError::BareLineFeed));
        let lf_end = b"POST /ak/x/v1/messages HTTP/1.1\r\nHost: a\r\n\n";
        assert_eq!(
            check_head(lf_end, &post11),
            Some(GatewayError::BareLineFeed)
        );
        // As Pingora hands it over: `Transfer-Encoding` kept, `Content-Length` removed.
        let mut chunked = header("POST", http::Version::HTTP_11, false);
        chunked
            .insert_header("transfer-encoding", "chunked")
            .unwrap();
        for both in [
            &b"POST / HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\nCONTENT-LENGTH : 2\r\n\r\n",
        ] {
            assert_eq!(
                check_head(both, &chunked),
                Some(GatewayError::AmbiguousFraming)
            );
        }
        // A header whose name only starts the same is not the header.
        let similar =
            b"POST / HTTP/1.1\r\nContent-Length-X: 2\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(check_head(similar, &chunked), None);
        let post10 = header("POST", http::Version::HTTP_10, false);
        let raw10 = b"POST / HTTP/1.0\r\nHost: a\r\n\r\n";
        assert_eq!(
            check_head(raw10, &post10),
            Some(GatewayError::LengthRequired)
        );
        let get10 = header("GET", http::Version::HTTP_10, false);
        assert_eq!(check_head(b"GET / HTTP/1.0\r\n\r\n", &get10), None);
        let post10_cl = header("POST", http::Version::HTTP_10, true);
        assert_eq!(check_head(raw10, &post10_cl), None);
    }

    #[test]
    fn the_end_of_a_head_is_found_across_any_split() {
        let heads: [&[u8]; 3] = [
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi",
            b"GET / HTTP/1.1\nHost: a\n\n",
            b"GET / HTTP/1.1\r\nHost: a\n\r\n",
        ];
        for head in heads {
            for first in 0..head.len() {
                for second in first..head.len() {
                    let mut end = HeadEnd::default();
                    let pieces = [&head[..first], &head[first..second], &head[second..]];
                    let found = pieces.iter().filter(|p| !p.is_empty()).any(|p| end.feed(p));
                    assert!(found, "{first}/{second}");
                }
            }
        }
        // One byte at a time, a head without its final empty line never ends.
        let mut end = HeadEnd::default();
        for b in b"POST / HTTP/1.1\r\nHost: a\r\nX: 1\r\n" {
            assert!(!end.feed(&[*b]));
        }
        assert!(end.feed(b"\r\n"));
    }
}
