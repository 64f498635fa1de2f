//! Start-up and shutdown: open the store, load the pepper, resolve the Plan host, run the
//! Pingora server, and drain on SIGTERM.
//!
//! Shutdown: on SIGTERM `/readyz` turns 503 (the load balancer stops sending), responses
//! close their connections, and the process waits for in-flight requests (streams included)
//! for up to `shutdown_grace`, then stops. SIGINT stops at once.//!
//! `listen.rs` binds the listening address (port 0 included), `shutdown.rs` drains, and
//! `embedded.rs` runs a gateway on its own thread for tests and embedding.

mod changes;
mod embedded;
mod listen;
mod shutdown;
mod tuning;

pub use embedded::RunningGateway;
pub use listen::ListenAddr;
use shutdown::DrainingSignal;
pub use shutdown::StopTrigger;
pub use tuning::Tuning;

use crate::bedrock::Bedrock;
use crate::edge::HeadGuard;
use crate::plan::PlanUpstream;
use crate::proxy::{Gateway, GatewayState, Lifecycle};
use anyhow::Context;
use ccp_core::auth::{AuthCacheSettings, KeyAuthenticator};
use ccp_core::clock::WallClock;
use ccp_core::config::{Config, LogFormat};
use ccp_core::metering::prices::{self, Prices, Reload};
use ccp_core::metering::{Meter, MeterSettings, MeterWriter};
use ccp_core::routing::budget::{BudgetSettings, BudgetTracker};
use ccp_core::routing::circuit::CircuitBreaker;
use ccp_core::routing::credentials::CredentialCache;
use ccp_core::routing::model_map::ModelMap;
use ccp_core::store::{Store, StoreOptions};
use pingora::proxy::http_proxy;
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server};
use pingora::services::listening::Service;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Everything built before the proxy starts.
#[derive(Debug)]
pub struct Prepared {
    pub state: Arc<GatewayState>,
    /// Owns the store's start-up connections, the DNS refresher and the metering writer;
    /// lives as long as the server.
    background: tokio::runtime::Runtime,
    meter_stop: oneshot::Sender<()>,
    meter_task: tokio::task::JoinHandle<()>,
    /// The interval-metrics pusher (CloudWatch or the log), when one is configured.
    sink_task: Option<(oneshot::Sender<()>, tokio::task::JoinHandle<()>)>,
    /// Where the Prometheus scrape endpoint listens (the kernel's choice for port 0).
    pub metrics_addr: Option<SocketAddr>,
}

/// How long the metering writer may take to write what is queued at shutdown.
pub const METER_DRAIN_BUDGET: Duration = Duration::from_secs(15);

/// How long the last interval-metrics push may take at shutdown.
const SINK_DRAIN_BUDGET: Duration = Duration::from_secs(12);

/// Connects and migrates the store, loads the pepper and resolves the Plan host. `clock`
/// stamps requests and tells the budget month (tests move it; the binary uses the system's).
pub fn prepare(config: &Config, clock: WallClock) -> anyhow::Result<Prepared> {
    // Two TLS stacks share rustls (Pingora's and the AWS SDK's pull in different crypto
    // back ends), so the process default must be chosen explicitly. Already set: fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let background = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("ccp-background")
        .enable_all()
        .build()
        .context("cannot start the background runtime")?;
    let (state, writer) = background.block_on(build_state(config, clock))?;
    state.plan.spawn_refresher(background.handle());
    background.spawn(watch_prices(Arc::clone(&state)));
    background.spawn(changes::follow_changes(Arc::clone(&state)));
    let (meter_stop, stopped) = oneshot::channel();
    let meter_task = background.spawn(writer.run(stopped, METER_DRAIN_BUDGET));
    let metrics_addr = config
        .metrics_addr
        .and_then(|addr| spawn_metrics(&background, addr, Arc::clone(&state)));
    let sink = background
        .block_on(ccp_core::telemetry::sink_for(&config.metrics_sink))
        .context("cannot set up the metrics sink")?;
    let sink_task = sink.map(|sink| {
        tracing::info!(
            sink = sink.name(),
            interval_secs = config.metrics_interval.as_secs(),
            "interval metrics"
        );
        let (stop, stopped) = oneshot::channel();
        let state = Arc::clone(&state);
        let every = config.metrics_interval;
        let task = background.spawn(async move {
            crate::metrics::publish_intervals(&state.metrics, sink.as_ref(), every, stopped).await;
        });
        (stop, task)
    });
    Ok(Prepared {
        state,
        background,
        meter_stop,
        meter_task,
        sink_task,
        metrics_addr,
    })
}

async fn build_state(
    config: &Config,
    clock: WallClock,
) -> anyhow::Result<(Arc<GatewayState>, MeterWriter)> {
    let store = Store::open(
        config,
        &StoreOptions {
            max_connections: config.db_max_connections,
            acquire_timeout: config.db_acquire_timeout,
        },
    )
    .await?;
    let pepper = config
        .load_pepper()
        .context("cannot load the access-key pepper")?;
    let auth = KeyAuthenticator::new(
        store.clone(),
        pepper,
        &AuthCacheSettings {
            ttl: config.key_cache_ttl,
            negative_ttl: config.key_negative_cache_ttl,
            ..AuthCacheSettings::default()
        },
    );
    let wrapper = ccp_core::crypto::wrapper_for(&config.key_wrapper)
        .await
        .context("cannot set up the Bedrock key wrapper")?;
    let credentials = CredentialCache::new(store.clone(), wrapper, config.bedrock_key_cache_ttl);
    let models = ModelMap::new(store.clone(), config.model_map_refresh);
    models.warn_if_defaults_unmapped().await;
    let bedrock = Bedrock::new(config, credentials, models)
        .context("cannot build the Bedrock HTTP client")?;
    // The metering writer gets its own connection, so it can never starve key lookups. One
    // (it writes one batch at a time): one statement cache for its multi-row inserts and one
    // warm page cache, not one of each per pooled connection (docs/benchmarks.md).
    let meter_store = Store::connect(
        config.database_url.expose(),
        &StoreOptions {
            max_connections: 1,
            acquire_timeout: Duration::from_secs(5),
        },
    )
    .await
    .context("cannot open the database for the metering writer")?;
    let (meter, writer) = Meter::new(meter_store, MeterSettings::default());
    let plan = Arc::new(PlanUpstream::new(config));
    match plan.refresh().await {
        Ok(n) => {
            tracing::info!(host = %config.plan_base_url.host, addresses = n, "Plan upstream resolved")
        }
        Err(err) => {
            tracing::warn!(host = %config.plan_base_url.host, error = %err, "Plan upstream not resolved yet; retrying in the background")
        }
    }
    let budgets = BudgetTracker::with_clock(
        store.clone(),
        Arc::clone(meter.pending()),
        BudgetSettings::default(),
        clock.clone(),
    );
    let state = Arc::new(GatewayState {
        auth,
        store,
        plan,
        plan_api_key: config.plan_api_key.clone(),
        max_body_bytes: config.max_body_bytes,
        client_read_timeout: config.client_read_timeout,
        lifecycle: Arc::new(Lifecycle::default()),
        bedrock,
        breaker: CircuitBreaker::new(config.circuit),
        instance: uuid::Uuid::new_v4(),
        budgets,
        meter,
        prices: Prices::load(config.pricing_file.clone())
            .context("cannot load the price file (CCP_PRICING_FILE)")?,
        metrics: crate::metrics::Metrics::new(),
        clock,
        metering: config.metering,
    });
    Ok((state, writer))
}

/// Reloads the price file on SIGHUP and when its modification time changes; a file that
/// does not load leaves the prices in force, and says why.
async fn watch_prices(state: Arc<GatewayState>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = signal(SignalKind::hangup()).ok();
    let mut tick = tokio::time::interval(prices::CHECK_EVERY);
    tick.tick().await;
    loop {
        let asked = tokio::select! {
            _ = tick.tick() => false,
            Some(()) = async {
                match hangup.as_mut() {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                }
            } => true,
        };
        let reloaded = if asked {
            state.prices.reload()
        } else {
            state.prices.reload_if_changed()
        };
        match reloaded {
            Ok(Reload::Reloaded) => tracing::info!(on_sighup = asked, "prices reloaded"),
            Ok(Reload::Unchanged) => {}
            Err(err) => {
                tracing::warn!(error = %err, "the price file did not load; the prices in force stay")
            }
        }
    }
}

/// Serves Prometheus metrics on `addr` and returns the bound address. A busy port is logged,
/// not fatal (the data path matters more than its metrics): then `None`.
fn spawn_metrics(
    background: &tokio::runtime::Runtime,
    addr: SocketAddr,
    state: Arc<GatewayState>,
) -> Option<SocketAddr> {
    let listener = std::net::TcpListener::bind(addr).and_then(|l| {
        l.set_nonblocking(true)?;
        Ok(l)
    });
    let listener = match listener {
        Ok(l) => l,
        Err(err) => {
            tracing::error!(%addr, error = %err, "cannot serve metrics (CCP_METRICS_ADDR)");
            return None;
        }
    };
    let addr = listener.local_addr().unwrap_or(addr);
    background.spawn(async move {
        match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => {
                tracing::info!(%addr, "metrics listening");
                crate::metrics::serve(listener, move || {
                    state.metrics.render(
                        state.meter.stats(),
                        state.bedrock.credentials.stats(),
                        &state.budgets.db_failures,
                        state.lifecycle.in_flight(),
                        state.breaker.open_keys().len(),
                    )
                })
                .await;
            }
            Err(err) => tracing::error!(%addr, error = %err, "cannot serve metrics"),
        }
    });
    Some(addr)
}

/// Runs the gateway until the trigger fires and the drain completes.
pub fn serve(
    config: &Config,
    prepared: Prepared,
    listen: ListenAddr,
    trigger: StopTrigger,
) -> anyhow::Result<()> {
    let tuning = Tuning::GATEWAY;
    let conf = ServerConf {
        // Draining happens in `DrainingSignal` before Pingora is told to stop.
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(5),
        ..tuning.server_conf(config.threads)
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let proxy = http_proxy(
        &server.configuration,
        Gateway::new(Arc::clone(&prepared.state)),
    );
    let guarded = HeadGuard::new(
        proxy,
        config.header_timeout,
        Arc::clone(&prepared.state.metrics.header_timeouts),
    );
    let mut service = Service::new("ClaudeCodeProxy gateway".to_owned(), guarded);
    service.add_listener(tuning.listener(&listen.addr().to_string(), listen.socket_options()));
    server.add_service(service);
    tracing::info!(addr = %listen.addr(), plan = %config.plan_base_url.host, "gateway listening");
    server.run(RunArgs {
        shutdown_signal: Box::new(DrainingSignal {
            state: Arc::clone(&prepared.state),
            trigger,
            grace: config.shutdown_grace,
        }),
    });
    // Every request has finished: write what the metering queue still holds.
    let Prepared {
        background,
        meter_stop,
        meter_task,
        sink_task,
        ..
    } = prepared;
    let _ = meter_stop.send(());
    let sink_flushed = sink_task.map(|(stop, task)| {
        let _ = stop.send(());
        background.spawn(async move { tokio::time::timeout(SINK_DRAIN_BUDGET, task).await })
    });
    let flushed = background.block_on(async {
        tokio::time::timeout(METER_DRAIN_BUDGET + Duration::from_secs(1), meter_task).await
    });
    if flushed.is_err() {
        tracing::error!("the metering writer did not finish in time");
    }
    if let Some(pushed) = sink_flushed
        && !matches!(background.block_on(pushed), Ok(Ok(_)))
    {
        tracing::warn!("the last interval metrics were not pushed in time");
    }
    drop(background);
    Ok(())
}

/// Prepares and serves until SIGTERM or SIGINT: what the `ccp-gateway` binary runs.
pub fn run(config: Config) -> anyhow::Result<()> {
    let listen = ListenAddr::bind(config.gateway_addr)?;
    let prepared = prepare(&config, WallClock::system())?;
    serve(&config, prepared, listen, StopTrigger::OsSignals)
}

/// Third-party crates whose debug output prints request headers or URIs (Pingora logs
/// whole request headers, credentials included, at debug): capped at `info` whatever
/// `CCP_LOG` says.
const CAPPED_TARGETS: &[&str] = &[
    "pingora",
    "pingora_core",
    "pingora_proxy",
    "pingora_pool",
    "hyper",
    "hyper_util",
    "h2",
    "reqwest",
    "rustls",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http_client",
    "aws_config",
    "aws_sdk_kms",
    "aws_sdk_cloudwatch",
    "sqlx",
];

/// Installs the tracing subscriber (Pingora's own `log` records included). Keep the guard
/// until the process ends: it writes the last buffered lines.
pub fn init_tracing(format: LogFormat) -> ccp_core::logging::LogGuard {
    ccp_core::logging::init(format, CAPPED_TARGETS)
}
