//! A gateway on its own thread, for tests and embedding.

use super::{ListenAddr, StopTrigger, prepare, serve};
use crate::proxy::GatewayState;
use ccp_core::clock::WallClock;
use ccp_core::config::Config;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// A gateway running on its own thread, for tests and embedding.
#[derive(Debug)]
pub struct RunningGateway {
    pub addr: SocketAddr,
    /// The scrape endpoint's address, when metrics are served.
    pub metrics_addr: Option<SocketAddr>,
    pub state: Arc<GatewayState>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl RunningGateway {
    /// Starts the gateway and waits (bounded) until it accepts connections. With port 0 in
    /// `gateway_addr`, [`RunningGateway::addr`] is the port the kernel chose.
    pub fn start(config: Config) -> anyhow::Result<Self> {
        Self::start_with_clock(config, WallClock::system())
    }

    /// [`RunningGateway::start`] with another clock for request timestamps and the budget
    /// month (tests cross a month boundary with it).
    pub fn start_with_clock(config: Config, clock: WallClock) -> anyhow::Result<Self> {
        let listen = ListenAddr::bind(config.gateway_addr)?;
        let addr = listen.addr();
        let prepared = prepare(&config, clock)?;
        let state = Arc::clone(&prepared.state);
        let metrics_addr = prepared.metrics_addr;
        let (stop, rx) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("ccp-gateway".into())
            .spawn(move || {
                serve(
                    &config,
                    prepared,
                    listen,
                    StopTrigger::Channel(Mutex::new(Some(rx))),
                )
            })?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err() {
            if thread.is_finished() || Instant::now() > deadline {
                let outcome = thread.join();
                anyhow::bail!("gateway did not start: {outcome:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(Self {
            addr,
            metrics_addr,
            state,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Drains (as on SIGTERM) and waits for the server thread to end.
    pub fn shutdown(mut self) -> anyhow::Result<()> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| anyhow::anyhow!("gateway thread panicked"))?,
            None => Ok(()),
        }
    }
}

impl Drop for RunningGateway {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}
