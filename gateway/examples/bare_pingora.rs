//! Benchmark baseline: the smallest Pingora 0.9 proxy (no auth, no logging, no header work),
//! so load tests can tell Pingora's own cost from the gateway's. Not part of the product.
//!
//! `cargo run --release --example bare_pingora -- <upstream ip:port> <listen ip:port> [threads] [options]`
//!
//! By default it is tuned as the gateway is wherever a setting is Pingora-level
//! ([`Tuning::GATEWAY`], no downstream modules, the same allocator, the gateway's client and
//! peer timeouts). Options, to measure one lever at a time:
//! - `--untuned`: Pingora's defaults ([`Tuning::PINGORA_DEFAULTS`], its disabled compression
//!   module, no timeouts);
//! - `--write-buffer N`, `--read-buffer N`, `--pool N`: one setting changed;
//! - `--compression-module`: Pingora's default downstream module back;
//! - `--no-timeouts`: no client or peer timeouts, Pingora's default (what the per-operation
//!   timers cost; the baseline of the load tests until round eight in docs/benchmarks.md).

use async_trait::async_trait;
use ccp_gateway::Tuning;
use pingora::modules::http::HttpModules;
use pingora::modules::http::compression::ResponseCompressionBuilder;
use pingora::prelude::*;
use pingora::proxy::{ProxyHttp, Session, http_proxy_service};
use std::net::SocketAddr;
use std::time::Duration;

#[global_allocator]
static ALLOCATOR: ccp_gateway::Allocator = ccp_gateway::ALLOCATOR;

struct Bare {
    upstream: SocketAddr,
    with_timeouts: bool,
    compression_module: bool,
}

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();

    fn new_ctx(&self) {}

    fn init_downstream_modules(&self, modules: &mut HttpModules) {
        if self.compression_module {
            modules.add_module(ResponseCompressionBuilder::enable(0));
        }
    }

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
    let usage = "usage: bare_pingora <upstream ip:port> <listen ip:port> [threads] [--untuned] \
                 [--write-buffer N] [--read-buffer N] [--pool N] [--compression-module] [--no-timeouts]";
    let mut args = std::env::args().skip(1);
    let upstream: SocketAddr = args.next().ok_or_else(|| anyhow::anyhow!(usage))?.parse()?;
    let listen = args.next().ok_or_else(|| anyhow::anyhow!(usage))?;
    let mut threads = 2;
    let mut tuning = Tuning::GATEWAY;
    let mut compression_module = false;
    let mut with_timeouts = true;
    while let Some(arg) = args.next() {
        let mut number = || -> anyhow::Result<usize> {
            Ok(args.next().ok_or_else(|| anyhow::anyhow!(usage))?.parse()?)
        };
        match arg.as_str() {
            "--untuned" => {
                tuning = Tuning::PINGORA_DEFAULTS;
                compression_module = true;
                with_timeouts = false;
            }
            "--write-buffer" => tuning.l4_write_buffer = number()?,
            "--read-buffer" => tuning.l4_read_buffer = number()?,
            "--pool" => tuning.upstream_keepalive_pool = number()?,
            "--compression-module" => compression_module = true,
            "--no-timeouts" => with_timeouts = false,
            other if !other.starts_with("--") => threads = other.parse()?,
            _ => anyhow::bail!(usage),
        }
    }
    let mut server = Server::new_with_opt_and_conf(None, tuning.server_conf(threads));
    server.bootstrap();
    let mut service = http_proxy_service(
        &server.configuration,
        Bare {
            upstream,
            with_timeouts,
            compression_module,
        },
    );
    service.add_listener(tuning.listener(&listen, None));
    server.add_service(service);
    server.run_forever();
}
