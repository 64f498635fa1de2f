//! The admin server process: configuration, the store, the session keys, the API on
//! `CCP_ADMIN_ADDR`, a sweeper that revokes rotated keys whose grace has ended, the raw-row
//! retention (`CCP_REQUEST_LOG_RETENTION_DAYS`), and a graceful stop on SIGTERM or Ctrl-C.

use crate::api::{AdminApi, service};
use crate::login::LoginService;
use crate::ops::AdminOps;
use crate::session::SessionKeys;
use anyhow::Context;
use ccp_core::config::Config;
use ccp_core::store::{Store, StoreOptions};
use salvo::conn::TcpListener;
use salvo::prelude::*;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// How often rotated keys past their grace period are marked revoked.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// How often raw rows past the retention horizon are looked for.
const RETENTION_EVERY: Duration = Duration::from_secs(600);
/// Request rows deleted per transaction, and the pause between transactions.
const RETENTION_BATCH: i64 = 5_000;
const RETENTION_PAUSE: Duration = Duration::from_millis(200);

/// Deletes raw request rows older than `days`, in small transactions with pauses, so the
/// metering writer and the reports are never held up for long. The rollups stay.
pub async fn apply_retention(store: &Store, days: u32) -> Result<u64, ccp_core::store::StoreError> {
    let cutoff = chrono::Utc::now() - chrono::Duration::days(i64::from(days));
    let mut total = 0;
    loop {
        let deleted = store
            .delete_request_rows_before(cutoff, RETENTION_BATCH)
            .await?;
        total += deleted;
        if deleted < RETENTION_BATCH as u64 {
            return Ok(total);
        }
        tokio::time::sleep(RETENTION_PAUSE).await;
    }
}

pub fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("ccp-admin-server: {err}");
            return ExitCode::FAILURE;
        }
    };
    let _log = ccp_core::logging::init(config.log_format, &["sqlx", "hyper", "salvo_core"]);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(config.threads.min(4))
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("ccp-admin-server: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let chain: Vec<String> = err.chain().map(|e| e.to_string()).collect();
            tracing::error!("ccp-admin-server stopped: {}", chain.join(": "));
            ExitCode::FAILURE
        }
    }
}

/// Builds the API state from a configuration.
pub async fn build(config: &Config) -> anyhow::Result<Arc<AdminApi>> {
    let store = Store::open(config, &StoreOptions::default()).await?;
    let ops = AdminOps::from_config(config, store.clone()).await?;
    let secret = config
        .load_session_secret()
        .context("cannot load the session secret (CCP_SESSION_SECRET)")?;
    let keys =
        SessionKeys::new(&secret, config.session_ttl).context("cannot set up session tokens")?;
    Ok(Arc::new(AdminApi {
        ops,
        login: LoginService::new(store, Arc::new(keys)),
        bootstrap_secret: config.bootstrap_secret.clone(),
        trust_forwarded_for: config.admin_trust_forwarded_for,
    }))
}

async fn run(config: Config) -> anyhow::Result<()> {
    let api = build(&config).await?;
    let store = api.ops.store.clone();
    let acceptor = TcpListener::new(config.admin_addr)
        .try_bind()
        .await
        .with_context(|| format!("cannot listen on {} (CCP_ADMIN_ADDR)", config.admin_addr))?;
    tracing::info!(addr = %config.admin_addr, "admin API listening");
    if store.count_admins().await? == 0 {
        tracing::warn!(
            "no admin exists yet: create one with `ccp-admin admin create --username <name>` \
             (password on standard input){}",
            if config.bootstrap_secret.is_some() {
                " or POST /admin/auth/bootstrap with CCP_BOOTSTRAP_SECRET"
            } else {
                ""
            }
        );
    }
    let sweeper = tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        loop {
            tick.tick().await;
            match store.revoke_lapsed_rotations(chrono::Utc::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(keys = n, "rotated keys past their grace period revoked"),
                Err(err) => tracing::warn!(error = %err, "cannot revoke lapsed rotated keys"),
            }
            let forgotten = chrono::Utc::now() - crate::login::FAILURE_WINDOW;
            if let Err(err) = store.delete_login_failures_before(forgotten).await {
                tracing::warn!(error = %err, "cannot delete old login failure counts");
            }
        }
    });
    let retention = config.request_log_retention_days.map(|days| {
        let store = api.ops.store.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RETENTION_EVERY);
            loop {
                tick.tick().await;
                match apply_retention(&store, days).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(rows = n, days, "request rows past retention deleted"),
                    Err(err) => tracing::warn!(error = %err, "cannot apply request-row retention"),
                }
            }
        })
    });
    let server = Server::new(acceptor);
    let handle = server.handle();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("stopping: finishing requests in flight");
        handle.stop_graceful(Duration::from_secs(10));
    });
    server
        .serve(service(api, config.console_origin.as_deref()))
        .await;
    sweeper.abort();
    if let Some(retention) = retention {
        retention.abort();
    }
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
