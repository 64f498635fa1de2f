//! Benchmark baseline: the smallest Pingora 0.9 proxy (no auth, no logging, no header work),
//! so load tests can tell Pingora's own cost from the gateway's. Not part of the product.
//!
//! `cargo run --release --example bare_pingora -- <upstream ip:port> <listen ip:port> [threads]`

use async_trait::async_trait;
use pingora::prelude::*;
use pingora::proxy::{ProxyHttp, Session, http_proxy_service};
use pingora::server::configuration::ServerConf;
use std::net::SocketAddr;

struct Bare {
    upstream: SocketAddr,
}

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: bare_pingora <upstream ip:port> <listen ip:port> [threads]";
    let upstream: SocketAddr = args.next().ok_or_else(|| anyhow::anyhow!(usage))?.parse()?;
    let listen = args.next().ok_or_else(|| anyhow::anyhow!(usage))?;
    let threads = args.next().map(|t| t.parse()).transpose()?.unwrap_or(2);
    let conf = ServerConf {
        threads,
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut service = http_proxy_service(&server.configuration, Bare { upstream });
    service.add_tcp(&listen);
    server.add_service(service);
    server.run_forever();
}
