//! Draining on SIGTERM (or the test channel) before Pingora is told to stop.

use crate::proxy::{GatewayState, Lifecycle};
use async_trait::async_trait;
use pingora::server::{ShutdownSignal, ShutdownSignalWatch};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// What ends the server.
#[derive(Debug)]
pub enum StopTrigger {
    /// SIGTERM drains, SIGINT stops at once.
    OsSignals,
    /// A test or an embedder sends on the channel to drain.
    Channel(Mutex<Option<oneshot::Receiver<()>>>),
}

pub(super) struct DrainingSignal {
    pub(super) state: Arc<GatewayState>,
    pub(super) trigger: StopTrigger,
    pub(super) grace: Duration,
}

#[async_trait]
impl ShutdownSignalWatch for DrainingSignal {
    async fn recv(&self) -> ShutdownSignal {
        match &self.trigger {
            StopTrigger::OsSignals => {
                use tokio::signal::unix::{SignalKind, signal};
                let (Ok(mut term), Ok(mut int)) = (
                    signal(SignalKind::terminate()),
                    signal(SignalKind::interrupt()),
                ) else {
                    tracing::error!("cannot install signal handlers; stop with SIGKILL");
                    return std::future::pending().await;
                };
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {
                        tracing::info!("SIGINT: stopping now");
                        return ShutdownSignal::FastShutdown;
                    }
                }
            }
            StopTrigger::Channel(rx) => {
                let rx = rx.lock().ok().and_then(|mut slot| slot.take());
                match rx {
                    Some(rx) => {
                        let _ = rx.await;
                    }
                    None => std::future::pending::<()>().await,
                }
            }
        }
        drain(&self.state.lifecycle, self.grace).await;
        ShutdownSignal::GracefulTerminate
    }
}

async fn drain(lifecycle: &Lifecycle, grace: Duration) {
    lifecycle.start_draining();
    let deadline = Instant::now() + grace;
    tracing::info!(
        in_flight = lifecycle.in_flight(),
        grace_secs = grace.as_secs(),
        "draining"
    );
    while lifecycle.in_flight() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    match lifecycle.in_flight() {
        0 => tracing::info!("drained; stopping"),
        n => tracing::warn!(
            in_flight = n,
            "grace period over; cutting the remaining requests"
        ),
    }
}
