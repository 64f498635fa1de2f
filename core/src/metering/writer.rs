//! The metering writer: a bounded queue the gateway hands rows to without blocking, and the
//! task that writes them in batches.
//!
//! The writer is not woken per row: it wakes on its flush tick, or when the queue holds a
//! quarter of its capacity (or a batch, if that is less). A wake-up per row cost the gateway a
//! context switch per request (docs/benchmarks.md, "Where the gateway's CPU went").

use super::pending::PendingSpend;
use super::record::RequestRecord;
use crate::store::Store;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc, oneshot};

/// Counters for the metrics endpoint and tests.
#[derive(Debug, Default)]
pub struct MeterStats {
    pub queued: AtomicU64,
    pub dropped: AtomicU64,
    pub written: AtomicU64,
    pub write_errors: AtomicU64,
}

#[derive(Debug, Clone)]
pub struct MeterSettings {
    pub queue_capacity: usize,
    pub batch_rows: usize,
    pub flush_every: Duration,
}

impl Default for MeterSettings {
    fn default() -> Self {
        Self {
            queue_capacity: 10_000,
            // One commit per batch: on SQLite 5 000-row commits cost 22 µs of CPU a row
            // against 30–41 µs for 500-row ones (core/examples/metering_write_bench.rs).
            batch_rows: 5_000,
            flush_every: Duration::from_secs(1),
        }
    }
}

/// The request side: cheap to clone, never blocks.
#[derive(Debug, Clone)]
pub struct Meter {
    tx: mpsc::Sender<RequestRecord>,
    /// Rows queued at which the writer is woken before its tick.
    wake_at: usize,
    wake: Arc<Notify>,
    stats: Arc<MeterStats>,
    pending: Arc<PendingSpend>,
    last_warning: Arc<std::sync::Mutex<Option<Instant>>>,
}

impl Meter {
    /// A meter and the writer that must be run for rows to reach the store.
    pub fn new(store: Store, settings: MeterSettings) -> (Self, MeterWriter) {
        let capacity = settings.queue_capacity.max(1);
        let (tx, rx) = mpsc::channel(capacity);
        let stats = Arc::new(MeterStats::default());
        let pending = Arc::new(PendingSpend::default());
        let wake = Arc::new(Notify::new());
        (
            Self {
                tx,
                wake_at: settings.batch_rows.min(capacity / 4).max(1),
                wake: Arc::clone(&wake),
                stats: Arc::clone(&stats),
                pending: Arc::clone(&pending),
                last_warning: Arc::default(),
            },
            MeterWriter {
                rx,
                wake,
                store,
                settings,
                stats,
                pending,
            },
        )
    }

    pub fn stats(&self) -> &MeterStats {
        &self.stats
    }

    /// Bedrock cost metered here that the database may not show yet (budget checks).
    pub fn pending(&self) -> &Arc<PendingSpend> {
        &self.pending
    }

    /// Queues a row; when the queue is full the row is dropped and counted.
    pub fn record(&self, record: RequestRecord) {
        // Counted before it is queued: the writer may write it before `try_send` returns.
        self.pending.queued(&record);
        match self.tx.try_send(record) {
            Ok(()) => {
                self.stats.queued.fetch_add(1, Ordering::Relaxed);
                if self.tx.max_capacity() - self.tx.capacity() >= self.wake_at {
                    self.wake.notify_one();
                }
            }
            Err(err) => {
                self.pending.abandoned(&err.into_inner());
                let dropped = self.stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                let mut last = self
                    .last_warning
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                if last.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
                    *last = Some(Instant::now());
                    tracing::warn!(
                        dropped_total = dropped,
                        "metering queue full: request rows are being dropped"
                    );
                }
            }
        }
    }
}

/// The store side: batches rows and writes them.
#[derive(Debug)]
pub struct MeterWriter {
    rx: mpsc::Receiver<RequestRecord>,
    wake: Arc<Notify>,
    store: Store,
    settings: MeterSettings,
    stats: Arc<MeterStats>,
    pending: Arc<PendingSpend>,
}

impl MeterWriter {
    /// Writes until `stop` fires, then drains what is queued within `drain_budget`. While
    /// the store fails, the writer stops taking rows (the queue fills and `Meter::record`
    /// counts what it drops), so every row is either written or counted as dropped.
    pub async fn run(mut self, mut stop: oneshot::Receiver<()>, drain_budget: Duration) {
        let batch_rows = self.settings.batch_rows.max(1);
        let mut batch = Vec::with_capacity(batch_rows);
        let mut tick = tokio::time::interval(self.settings.flush_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        'running: loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.wake.notified() => {}
                _ = &mut stop => break,
            }
            // Everything queued, a batch at a time. A batch that did not write stays and
            // keeps its place: the writer takes no more rows until it does.
            loop {
                let closed = self.take(&mut batch, batch_rows);
                self.try_flush(&mut batch).await;
                if closed {
                    break 'running;
                }
                if !batch.is_empty() || self.rx.len() < batch_rows {
                    break;
                }
            }
        }
        let deadline = Instant::now() + drain_budget;
        loop {
            self.take(&mut batch, batch_rows);
            if batch.is_empty() {
                break;
            }
            self.flush_until(&mut batch, deadline).await;
            if !batch.is_empty() {
                break; // the deadline passed
            }
        }
        self.rx.close();
        let mut left = batch.len() as u64;
        for record in batch.drain(..) {
            self.pending.abandoned(&record);
        }
        while let Ok(record) = self.rx.try_recv() {
            self.pending.abandoned(&record);
            left += 1;
        }
        if left > 0 {
            self.stats.dropped.fetch_add(left, Ordering::Relaxed);
            tracing::error!(rows = left, "metering rows not written before shutdown");
        }
    }

    /// Moves queued rows into `batch` until it holds `rows`; true once the queue is closed
    /// and empty (every `Meter` is gone).
    fn take(&mut self, batch: &mut Vec<RequestRecord>, rows: usize) -> bool {
        while batch.len() < rows {
            match self.rx.try_recv() {
                Ok(record) => batch.push(record),
                Err(mpsc::error::TryRecvError::Empty) => return false,
                Err(mpsc::error::TryRecvError::Disconnected) => return true,
            }
        }
        false
    }

    async fn try_flush(&self, batch: &mut Vec<RequestRecord>) {
        self.flush_until(batch, Instant::now()).await;
    }

    /// Writes the batch, retrying (inserts are idempotent) until `deadline`.
    async fn flush_until(&self, batch: &mut Vec<RequestRecord>, deadline: Instant) {
        if batch.is_empty() {
            return;
        }
        let mut pause = Duration::from_millis(100);
        loop {
            match self.store.insert_request_records(batch).await {
                Ok(()) => {
                    self.pending.written(batch, Instant::now());
                    self.stats
                        .written
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    batch.clear();
                    return;
                }
                Err(err) => {
                    self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %err, rows = batch.len(), "metering write failed; retrying");
                    if Instant::now() + pause > deadline {
                        return;
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}
