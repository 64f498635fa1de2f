//! The Plan upstream (the Anthropic API): its addresses, kept fresh and health-checked off the
//! request path by pingora-load-balancing, and the `HttpPeer` each request is proxied to.
//!
//! Discovery resolves the Plan host again every [`RESOLVE_INTERVAL`] (a failed resolution
//! keeps the previous addresses). A TCP (and, for `https`, TLS) check runs every
//! [`HEALTH_INTERVAL`]; an address that refuses connections or fails the handshake is skipped
//! by the round robin until a check succeeds again. When no address passes, requests still go
//! to one, so the client gets the real connection error (and a failover) rather than a
//! made-up one. `HttpPeer::new` would resolve names synchronously and panic on failure, so
//! peers are built from the discovered socket addresses.

use async_trait::async_trait;
use ccp_core::config::{Config, UpstreamUrl};
use pingora::lb::discovery::ServiceDiscovery;
use pingora::lb::health_check::TcpHealthCheck;
use pingora::lb::selection::RoundRobin;
use pingora::lb::{Backend, Backends, LoadBalancer};
use pingora::protocols::TcpKeepalive;
use pingora::upstreams::peer::HttpPeer;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

/// How often the Plan host is resolved again.
pub const RESOLVE_INTERVAL: Duration = Duration::from_secs(30);
/// How often each address is checked.
pub const HEALTH_INTERVAL: Duration = Duration::from_secs(5);

/// Selection tries at most this many addresses for a healthy one.
const MAX_TRIES: usize = 64;

/// Discovery by resolving the Plan host name.
struct Dns {
    host: String,
    port: u16,
}

#[async_trait]
impl ServiceDiscovery for Dns {
    async fn discover(&self) -> pingora::Result<(BTreeSet<Backend>, HashMap<u64, bool>)> {
        let found = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(|e| {
                pingora::Error::because(
                    pingora::ErrorType::ConnectNoRoute,
                    "resolving the Plan host",
                    e,
                )
            })?;
        let backends: BTreeSet<Backend> = found
            .filter_map(|addr| Backend::new(&addr.to_string()).ok())
            .collect();
        if backends.is_empty() {
            return pingora::Error::e_explain(
                pingora::ErrorType::ConnectNoRoute,
                "the Plan host has no addresses",
            );
        }
        Ok((backends, HashMap::new()))
    }
}

pub struct PlanUpstream {
    url: UpstreamUrl,
    /// The `Host` header for Plan requests, made once (a clone shares it).
    host_header: http::HeaderValue,
    balancer: LoadBalancer<RoundRobin>,
    connect_timeout: Duration,
    read_timeout: Duration,
}

impl std::fmt::Debug for PlanUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlanUpstream")
            .field("host", &self.url.host)
            .field("port", &self.url.port)
            .finish_non_exhaustive()
    }
}

impl PlanUpstream {
    pub fn new(config: &Config) -> Self {
        let discovery = Dns {
            host: config.plan_base_url.host.clone(),
            port: config.plan_base_url.port,
        };
        Self::with_discovery(config, Box::new(discovery))
    }

    /// The Plan upstream over any discovery (tests pass a fixed list).
    pub fn with_discovery(
        config: &Config,
        discovery: Box<dyn ServiceDiscovery + Send + Sync + 'static>,
    ) -> Self {
        let url = config.plan_base_url.clone();
        let mut check = if url.tls {
            TcpHealthCheck::new_tls(&url.host)
        } else {
            TcpHealthCheck::new()
        };
        check.peer_template.options.connection_timeout = Some(config.plan_connect_timeout);
        let mut balancer = LoadBalancer::from_backends(Backends::new(discovery));
        balancer.set_health_check(check);
        Self {
            host_header: http::HeaderValue::try_from(url.authority())
                .expect("a parsed URL's authority is a valid header value"),
            url,
            balancer,
            connect_timeout: config.plan_connect_timeout,
            read_timeout: config.plan_read_timeout,
        }
    }

    /// Resolves the host again; keeps the previous addresses if resolution fails. Returns how
    /// many addresses are known.
    pub async fn refresh(&self) -> std::io::Result<usize> {
        self.balancer
            .update()
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(self.balancer.backends().get_backend().len())
    }

    /// [`refresh`](Self::refresh), given up after `limit`.
    pub async fn refresh_within(&self, limit: Duration) -> std::io::Result<usize> {
        tokio::time::timeout(limit, self.refresh())
            .await
            .unwrap_or_else(|_| Err(std::io::Error::other("resolution timed out")))
    }

    /// Checks every known address once.
    pub async fn check_health(&self) {
        self.balancer.backends().run_health_check(true).await;
    }

    /// Keeps the addresses fresh and checked until the process ends.
    pub fn spawn_refresher(self: &std::sync::Arc<Self>, runtime: &tokio::runtime::Handle) {
        let plan = std::sync::Arc::clone(self);
        runtime.spawn(async move {
            let every = RESOLVE_INTERVAL.as_secs() / HEALTH_INTERVAL.as_secs();
            let mut tick = tokio::time::interval(HEALTH_INTERVAL);
            for n in 0u64.. {
                tick.tick().await;
                if n > 0
                    && n.is_multiple_of(every)
                    && let Err(err) = plan.refresh().await
                {
                    tracing::warn!(host = %plan.url.host, error = %err, "Plan upstream resolution failed; keeping the previous addresses");
                }
                plan.check_health().await;
            }
        });
    }

    pub fn host_header(&self) -> &http::HeaderValue {
        &self.host_header
    }

    pub fn base_path(&self) -> &str {
        &self.url.base_path
    }

    /// The peer for the next request: round robin over the addresses that passed their last
    /// check, or over all of them when none did.
    pub fn peer(&self) -> Option<HttpPeer> {
        // One address (what the Anthropic API's name resolves to) is the answer either way:
        // the selection's health lookups and hashing cost about 1 500 instructions a request.
        let known = self.balancer.backends().get_backend();
        let backend = known
            .first()
            .filter(|_| known.len() == 1)
            .cloned()
            .or_else(|| self.balancer.select(b"", MAX_TRIES))
            .or_else(|| self.balancer.select_with(b"", MAX_TRIES, |_, _| true))?;
        // An empty SNI would turn certificate checks off; the host is never empty here.
        let mut peer = HttpPeer::new(backend, self.url.tls, self.url.host.clone());
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

#[cfg(test)]
mod tests {
    use super::*;
    use pingora::lb::discovery::Static;

    fn plan_with(addrs: &[std::net::SocketAddr]) -> PlanUpstream {
        let config = Config::from_pairs(&[("plan_base_url", "http://plan.test:1")]).unwrap();
        let backends = addrs
            .iter()
            .map(|a| Backend::new(&a.to_string()).unwrap())
            .collect();
        PlanUpstream::with_discovery(&config, Static::new(backends))
    }

    fn peer_addr(plan: &PlanUpstream) -> String {
        plan.peer().unwrap()._address.to_string()
    }

    #[tokio::test]
    async fn a_dead_address_is_skipped_once_checked_and_taken_back_when_it_recovers() {
        let live = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let live_addr = live.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((conn, _)) = live.accept().await {
                drop(conn);
            }
        });
        let dead_addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let plan = plan_with(&[live_addr, dead_addr]);
        assert_eq!(plan.refresh().await.unwrap(), 2);
        // Unchecked, both are in the rotation.
        let before: BTreeSet<String> = (0..8).map(|_| peer_addr(&plan)).collect();
        assert_eq!(before.len(), 2, "{before:?}");
        plan.check_health().await;
        for _ in 0..20 {
            assert_eq!(peer_addr(&plan), live_addr.to_string());
        }
        // The dead address comes back once it answers again.
        let revived = tokio::net::TcpListener::bind(dead_addr).await.unwrap();
        tokio::spawn(async move {
            while let Ok((conn, _)) = revived.accept().await {
                drop(conn);
            }
        });
        plan.check_health().await;
        let after: BTreeSet<String> = (0..8).map(|_| peer_addr(&plan)).collect();
        assert_eq!(after.len(), 2, "{after:?}");
    }

    #[tokio::test]
    async fn with_every_address_down_requests_still_get_one() {
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let plan = plan_with(&[dead]);
        plan.refresh().await.unwrap();
        plan.check_health().await;
        assert_eq!(
            peer_addr(&plan),
            dead.to_string(),
            "the real connect error, not none"
        );
    }

    #[tokio::test]
    async fn the_plan_host_is_resolved() {
        let config = Config::from_pairs(&[("plan_base_url", "http://127.0.0.1:9")]).unwrap();
        let plan = PlanUpstream::new(&config);
        assert!(plan.peer().is_none(), "nothing before the first resolution");
        assert_eq!(plan.refresh().await.unwrap(), 1);
        assert_eq!(peer_addr(&plan), "127.0.0.1:9");
        let nowhere = Config::from_pairs(&[("plan_base_url", "http://plan.invalid:9")]).unwrap();
        assert!(PlanUpstream::new(&nowhere).refresh().await.is_err());
    }
}
