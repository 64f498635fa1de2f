//! Benchmark baseline: the smallest Pingora 0.9 proxy (no auth, no logging, no header work),
//! so load tests can tell Pingora's own cost from the gateway's. Not part of the product.
//!
//! `cargo run --release --example bare_pingora -- <upstream ip:port> <listen ip:port> [threads] [--with-timeouts]`
//!
//! `--with-timeouts` sets the same peer and client timeouts as ccp-gateway, to measure what
//! per-operation timers cost.

use async_trait::async_trait;
use pingora::prelude::*;
use pingora::proxy::{ProxyHttp, Session, http_proxy_service};
use pingora::server::configuration::ServerConf;
use std::net::SocketAddr;
use std::time::Duration;

struct Bare {
    upstream: SocketAddr,
    with_timeouts: bool,
}

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn early_request_filter(&self, session: &mut Session, _ctx: &mut ()) -> Result<()> {
        if self.with_timeouts {
            session.set_read_timeout(Some(Duration::from_secs(60)));
            session.set_write_timeout(Some(Duration::from_secs(60)));
        }
        Ok(())
    }

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        let mut peer = HttpPeer::new(self.upstream, false, String::new());
        if self.with_timeouts {
            peer.options.connection_timeout = Some(Duration::from_secs(10));
            peer.options.total_connection_timeout = Some(Duration::from_secs(10));
            peer.options.read_timeout = Some(Duration::from_secs(600));
            peer.options.write_timeout = Some(Duration::from_secs(30));
            peer.options.idle_timeout = Some(Duration::from_secs(60));
        }
        Ok(Box::new(peer))
    }
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: bare_pingora <upstream ip:port> <listen ip:port> [threads]";
    let upstream: SocketAddr = args.next().ok_or_else(|| anyhow::anyhow!(usage))?.parse()?;
    let listen = args.next().ok_or_else(|| anyhow::anyhow!(usage))?;
    let rest: Vec<String> = args.collect();
    let with_timeouts = rest.iter().any(|a| a == "--with-timeouts");
    let threads = rest
        .iter()
        .find(|a| !a.starts_with("--"))
        .map(|t| t.parse())
        .transpose()?
        .unwrap_or(2);
    let conf = ServerConf {
        threads,
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut service = http_proxy_service(
        &server.configuration,
        Bare {
            upstream,
            with_timeouts,
        },
    );
    service.add_tcp(&listen);
    server.add_service(service);
    server.run_forever();
}
