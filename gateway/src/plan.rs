//! The Plan upstream (the Anthropic API): address resolution kept off the request path, and
//! the `HttpPeer` each request is proxied to.
//!
//! `HttpPeer::new` resolves names synchronously and panics on failure, so the gateway
//! resolves the host in the background and builds peers from socket addresses.

use ccp_core::config::{Config, UpstreamUrl};
use pingora::protocols::TcpKeepalive;
use pingora::upstreams::peer::HttpPeer;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

#[derive(Debug)]
pub struct PlanUpstream {
    url: UpstreamUrl,
    host_header: String,
    addrs: RwLock<Arc<Vec<SocketAddr>>>,
    next: AtomicUsize,
    connect_timeout: Duration,
    read_timeout: Duration,
}

/// How often the Plan host is resolved again.
pub const RESOLVE_INTERVAL: Duration = Duration::from_secs(30);

impl PlanUpstream {
    pub fn new(config: &Config) -> Self {
        Self {
            host_header: config.plan_base_url.authority(),
            url: config.plan_base_url.clone(),
            addrs: RwLock::new(Arc::new(Vec::new())),
            next: AtomicUsize::new(0),
            connect_timeout: config.plan_connect_timeout,
            read_timeout: config.plan_read_timeout,
        }
    }

    /// Resolves the host again; keeps the previous addresses if resolution fails.
    pub async fn refresh(&self) -> std::io::Result<usize> {
        let found: Vec<SocketAddr> =
            tokio::net::lookup_host((self.url.host.as_str(), self.url.port))
                .await?
                .collect();
        if found.is_empty() {
            return Err(std::io::Error::other("no addresses"));
        }
        let count = found.len();
        if let Ok(mut addrs) = self.addrs.write() {
            *addrs = Arc::new(found);
        }
        Ok(count)
    }

    /// [`refresh`](Self::refresh), given up after `limit`.
    pub async fn refresh_within(&self, limit: Duration) -> std::io::Result<usize> {
        tokio::time::timeout(limit, self.refresh())
            .await
            .unwrap_or_else(|_| Err(std::io::Error::other("resolution timed out")))
    }

    /// Keeps the addresses fresh until the process ends.
    pub fn spawn_refresher(self: &Arc<Self>, runtime: &tokio::runtime::Handle) {
        let plan = Arc::clone(self);
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(RESOLVE_INTERVAL);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(err) = plan.refresh().await {
                    tracing::warn!(host = %plan.url.host, error = %err, "Plan upstream resolution failed; keeping the previous addresses");
                }
            }
        });
    }

    pub fn host_header(&self) -> &str {
        &self.host_header
    }

    pub fn base_path(&self) -> &str {
        &self.url.base_path
    }

    /// The peer for the next request (round robin over the resolved addresses).
    pub fn peer(&self) -> Option<HttpPeer> {
        let addrs = self.addrs.read().ok()?.clone();
        if addrs.is_empty() {
            return None;
        }
        let addr = addrs[self.next.fetch_add(1, Ordering::Relaxed) % addrs.len()];
        // An empty SNI would turn certificate checks off; the host is never empty here.
        let mut peer = HttpPeer::new(addr, self.url.tls, self.url.host.clone());
        let options = &mut peer.options;
        options.connection_timeout = Some(self.connect_timeout);
        options.total_connection_timeout = Some(self.connect_timeout);
        options.read_timeout = Some(self.read_timeout);
        options.write_timeout = Some(Duration::from_secs(30));
        options.idle_timeout = Some(Duration::from_secs(60));
        options.tcp_keepalive = Some(TcpKeepalive {
            idle: Duration::from_secs(30),
            interval: Duration::from_secs(10),
            count: 3,
            #[cfg(target_os = "linux")]
            user_timeout: Duration::from_secs(0),
        });
        Some(peer)
    }
}
