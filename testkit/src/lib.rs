//! `ccp-testkit`: fake upstreams for tests and benchmarks.
//!
//! [`FakeUpstream`] is a small HTTP/1.1 server on `127.0.0.1:0` that records every request
//! it receives (head and body, byte for byte) and answers with whatever [`Reply`] the test's
//! responder returns: a JSON body, an SSE stream cut into delayed chunks, a connection that
//! drops mid-body. It speaks plain HTTP/1.1 (Content-Length and chunked, keep-alive) so the
//! gateway sees exactly what it would see from a real upstream.
//!
//! With the `store` feature: [`stores`] (a fresh SQLite file or PostgreSQL schema per test)
//! and [`records`] (realistic metering rows).

pub mod bedrock;
pub mod http1;
pub mod moto;
#[cfg(feature = "store")]
pub mod records;
pub mod sse;
#[cfg(feature = "store")]
pub mod stores;

use http1::{ReadError, read_request, write_reply};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::BufReader;
use tokio::net::{TcpListener, TcpStream};

/// A request as the upstream received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    /// The request target: path and query.
    pub target: String,
    /// Header names (lower-cased) and values, in arrival order, duplicates kept.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The head exactly as it arrived, for byte-level checks.
    pub raw_head: Vec<u8>,
}

impl RecordedRequest {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn has_header(&self, name: &str) -> bool {
        self.header(name).is_some()
    }
}

/// How a reply body is sent.
#[derive(Debug, Clone)]
pub enum ReplyBody {
    /// With `Content-Length`.
    Full(Vec<u8>),
    /// Chunked; each piece is sent after its delay.
    Chunked(Vec<(Duration, Vec<u8>)>),
    /// Chunked like `Chunked`, but the connection closes instead of the final empty chunk.
    ChunkedCut(Vec<(Duration, Vec<u8>)>),
    /// Announces `Content-Length: announced`, sends `sent`, then closes the connection.
    Truncated { announced: usize, sent: Vec<u8> },
    /// Accepts the request and never answers (until the connection is dropped).
    Hang,
    /// Chunked; each piece is sent only after the test opened the gate once more, so a test
    /// can prove a piece reached its client before the next one exists.
    Gated(Vec<Vec<u8>>, Gate),
    /// Waits for one opening of the gate before the status line, then sends `then`.
    Held { gate: Gate, then: Box<ReplyBody> },
}

/// A gate a test opens step by step; a fake upstream waits at it (see [`ReplyBody::Gated`]).
/// Ordering events this way replaces sleeps: the upstream goes on exactly when the test has
/// seen what it waited for.
#[derive(Debug, Clone)]
pub struct Gate(Arc<tokio::sync::Semaphore>);

impl Default for Gate {
    fn default() -> Self {
        Self::new()
    }
}

impl Gate {
    /// A closed gate.
    pub fn new() -> Self {
        Self(Arc::new(tokio::sync::Semaphore::new(0)))
    }

    /// Lets `n` more waits through.
    pub fn open(&self, n: usize) {
        self.0.add_permits(n);
    }

    /// Waits for one opening.
    pub async fn pass(&self) {
        if let Ok(permit) = self.0.acquire().await {
            permit.forget();
        }
    }
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: ReplyBody,
    /// Wait this long before sending the status line (a slow upstream).
    pub head_delay: Option<Duration>,
}

impl Reply {
    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: ReplyBody::Full(body.into()),
            head_delay: None,
        }
    }

    /// A `text/event-stream` reply sent in chunks, `gap` apart.
    pub fn sse(chunks: Vec<Vec<u8>>, gap: Duration) -> Self {
        Self {
            status: 200,
            headers: vec![
                ("content-type".into(), "text/event-stream".into()),
                ("cache-control".into(), "no-cache".into()),
            ],
            body: ReplyBody::Chunked(chunks.into_iter().map(|c| (gap, c)).collect()),
            head_delay: None,
        }
    }

    /// A `text/event-stream` reply whose pieces go out one per opening of `gate`.
    pub fn sse_gated(chunks: Vec<Vec<u8>>, gate: &Gate) -> Self {
        Self {
            body: ReplyBody::Gated(chunks, gate.clone()),
            ..Self::sse(Vec::new(), Duration::ZERO)
        }
    }

    /// The same reply, its status line sent only after one opening of `gate`.
    pub fn held(mut self, gate: &Gate) -> Self {
        self.body = ReplyBody::Held {
            gate: gate.clone(),
            then: Box::new(self.body),
        };
        self
    }

    /// The same reply, its status line sent only after `delay`.
    pub fn delayed(mut self, delay: Duration) -> Self {
        self.head_delay = Some(delay);
        self
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

type Responder = dyn Fn(&RecordedRequest) -> Reply + Send + Sync;

struct Shared {
    requests: Mutex<Vec<RecordedRequest>>,
    hits: AtomicUsize,
    /// Connections accepted (how well a proxy in front reuses its upstream connections).
    connections: Arc<AtomicUsize>,
    responder: Box<Responder>,
    record: bool,
}

/// A running fake upstream. Stops when dropped.
pub struct FakeUpstream {
    pub addr: std::net::SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for FakeUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeUpstream")
            .field("addr", &self.addr)
            .finish()
    }
}

impl FakeUpstream {
    /// Starts on `127.0.0.1:0`, recording every request.
    pub async fn start(
        responder: impl Fn(&RecordedRequest) -> Reply + Send + Sync + 'static,
    ) -> Self {
        Self::start_on("127.0.0.1:0", responder, true).await
    }

    /// Starts on `addr`; `record` off keeps memory flat under load.
    pub async fn start_on(
        addr: &str,
        responder: impl Fn(&RecordedRequest) -> Reply + Send + Sync + 'static,
        record: bool,
    ) -> Self {
        #[allow(clippy::expect_used)]
        let listener = TcpListener::bind(addr)
            .await
            .expect("bind the fake upstream");
        #[allow(clippy::expect_used)]
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared {
            requests: Mutex::new(Vec::new()),
            hits: AtomicUsize::new(0),
            connections: Arc::new(AtomicUsize::new(0)),
            responder: Box::new(responder),
            record,
        });
        let accept_shared = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                accept_shared.connections.fetch_add(1, Ordering::Relaxed);
                let shared = Arc::clone(&accept_shared);
                tokio::spawn(serve_connection(stream, shared));
            }
        });
        Self { addr, shared, task }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn hits(&self) -> usize {
        self.shared.hits.load(Ordering::SeqCst)
    }

    /// The count of connections accepted so far, live.
    pub fn connections(&self) -> Arc<AtomicUsize> {
        Arc::clone(&self.shared.connections)
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared
            .requests
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    pub fn last_request(&self) -> Option<RecordedRequest> {
        self.requests().pop()
    }

    /// Runs until the task is aborted (for the benchmark binary).
    pub async fn wait(&mut self) {
        let _ = (&mut self.task).await;
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::with_capacity(64 * 1024, read);
    loop {
        let request = match read_request(&mut reader).await {
            Ok(request) => request,
            Err(ReadError::Closed) => return,
            Err(ReadError::Malformed(_) | ReadError::Io(_)) => return,
        };
        shared.hits.fetch_add(1, Ordering::SeqCst);
        let reply = (shared.responder)(&request);
        if shared.record
            && let Ok(mut requests) = shared.requests.lock()
        {
            requests.push(request);
        }
        match write_reply(&mut write, &reply).await {
            Ok(true) => {}
            Ok(false) | Err(_) => return,
        }
    }
}
