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
//!   timers cost; the baseline of the load tests until round eight in docs/benchmarks.md);
//! - `--meter DIR` (or `--meter postgres://…`): every request also leaves the gateway's metering
//!   row, written by the gateway's own metering writer to a SQLite database in `DIR` (or to that
//!   PostgreSQL database): Pingora's floor with metering on, beside Pingora alone, which the
//!   targets of docs/benchmarks.md measure the gateway against.

use async_trait::async_trait;
use ccp_core::metering::pricing::TokenCounts;
use ccp_core::metering::{
    Meter, MeterSettings, Outcome, PathTaken, Provider, RequestRecord, Upstream, UsageRecord,
};
use ccp_gateway::Tuning;
use pingora::modules::http::HttpModules;
use pingora::modules::http::compression::ResponseCompressionBuilder;
use pingora::prelude::*;
use pingora::proxy::{ProxyHttp, Session, http_proxy_service};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOCATOR: ccp_gateway::Allocator = ccp_gateway::ALLOCATOR;

struct Bare {
    upstream: SocketAddr,
    with_timeouts: bool,
    compression_module: bool,
    meter: Option<Metering>,
}

/// `--meter`: the queue to the gateway's metering writer, and the ids every row carries.
struct Metering {
    meter: Meter,
    key_id: uuid::Uuid,
    user_id: uuid::Uuid,
    /// The writer runs while this is held: to the end of the process.
    _writing: tokio::sync::oneshot::Sender<()>,
}

/// When a metered request started.
struct Started {
    at: chrono::DateTime<chrono::Utc>,
    instant: Instant,
}

impl Metering {
    /// The row the gateway leaves for a Plan request answered in full, with the usage the fake
    /// upstream reports (the gateway reads it from the answer; here it is a constant).
    fn record(&self, session: &Session, started: &Started) {
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let elapsed_ms = started.instant.elapsed().as_secs_f64() * 1e3;
        let model = "claude-sonnet-4-5";
        self.meter.record(RequestRecord {
            request_id: uuid::Uuid::now_v7().simple().to_string(),
            access_key_id: self.key_id,
            user_id: self.user_id,
            model: Some(model.to_owned()),
            stream: false,
            route: PathTaken::Plan,
            upstream: Upstream::Plan,
            status,
            error_type: None,
            plan_status: None,
            failover_skip: None,
            routing: Some(ccp_core::domain::Routing::PlanFirst),
            outcome: Outcome::Complete,
            auth_ms: Some(0.01),
            plan_ttfb_ms: Some(elapsed_ms),
            bedrock_ttfb_ms: None,
            total_ms: elapsed_ms,
            request_bytes: session.body_bytes_read() as u64,
            response_bytes: session.body_bytes_sent() as u64,
            started_at: started.at,
            finished_at: chrono::Utc::now(),
            usage: Some(UsageRecord {
                model: model.to_owned(),
                provider: Provider::Plan,
                tokens: TokenCounts {
                    input: 12,
                    output: 345,
                    cache_read: 6_789,
                    cache_write_5m: 0,
                    cache_write_1h: 0,
                },
                cost_micro_usd: 0,
            }),
        });
    }
}

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = Option<Started>;

    fn new_ctx(&self) -> Option<Started> {
        self.meter.as_ref().map(|_| Started {
            at: chrono::Utc::now(),
            instant: Instant::now(),
        })
    }

    fn init_downstream_modules(&self, modules: &mut HttpModules) {
        if self.compression_module {
            modules.add_module(ResponseCompressionBuilder::enable(0));
        }
    }

    async fn early_request_filter(
        &self,
        session: &mut Session,
        _ctx: &mut Self::CTX,
    ) -> Result<()> {
        if self.with_timeouts {
            session.set_read_timeout(Some(Duration::from_secs(60)));
            session.set_write_timeout(Some(Duration::from_secs(60)));
        }
        Ok(())
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut Self::CTX,
    ) -> Result<Box<HttpPeer>> {
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

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut Self::CTX) {
        if let (Some(metering), Some(started)) = (&self.meter, ctx.as_ref()) {
            metering.record(session, started);
        }
    }
}

/// Opens (and migrates) `database`, a PostgreSQL URL or a directory for a SQLite file, and
/// starts the gateway's metering writer on a background runtime of one thread, as the gateway
/// does.
fn start_metering(database: &str) -> anyhow::Result<(Metering, tokio::runtime::Runtime)> {
    use ccp_core::store::{Store, StoreOptions};
    let url = if database.starts_with("postgres") {
        database.to_owned()
    } else {
        std::fs::create_dir_all(database)?;
        format!("sqlite://{database}/bare.db")
    };
    let background = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("bare-background")
        .enable_all()
        .build()?;
    let store = background.block_on(async {
        let options = StoreOptions {
            max_connections: 1,
            acquire_timeout: Duration::from_secs(5),
        };
        let store = Store::connect(&url, &options).await?;
        store.migrate().await?;
        anyhow::Ok(store)
    })?;
    let (meter, writer) = Meter::new(store, MeterSettings::default());
    // The writer stops with the process; a benchmark baseline needs no drain.
    let (writing, stopped) = tokio::sync::oneshot::channel();
    background.spawn(writer.run(stopped, Duration::ZERO));
    let metering = Metering {
        meter,
        key_id: uuid::Uuid::now_v7(),
        user_id: uuid::Uuid::now_v7(),
        _writing: writing,
    };
    Ok((metering, background))
}

fn main() -> anyhow::Result<()> {
    let usage = "usage: bare_pingora <upstream ip:port> <listen ip:port> [threads] [--untuned] \
                 [--write-buffer N] [--read-buffer N] [--pool N] [--compression-module] [--no-timeouts] [--meter DIR|URL]";
    let mut args = std::env::args().skip(1);
    let upstream: SocketAddr = args.next().ok_or_else(|| anyhow::anyhow!(usage))?.parse()?;
    let listen = args.next().ok_or_else(|| anyhow::anyhow!(usage))?;
    let mut threads = 2;
    let mut tuning = Tuning::GATEWAY;
    let mut compression_module = false;
    let mut with_timeouts = true;
    let mut meter_db = None;
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
            "--meter" => meter_db = Some(args.next().ok_or_else(|| anyhow::anyhow!(usage))?),
            other if !other.starts_with("--") => threads = other.parse()?,
            _ => anyhow::bail!(usage),
        }
    }
    let (meter, _background) = match meter_db {
        Some(database) => {
            let (metering, runtime) = start_metering(&database)?;
            (Some(metering), Some(runtime))
        }
        None => (None, None),
    };
    let mut server = Server::new_with_opt_and_conf(None, tuning.server_conf(threads));
    server.bootstrap();
    let mut service = http_proxy_service(
        &server.configuration,
        Bare {
            upstream,
            with_timeouts,
            compression_module,
            meter,
        },
    );
    service.add_listener(tuning.listener(&listen, None));
    server.add_service(service);
    server.run_forever();
}
