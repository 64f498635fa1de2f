//! Follows the changes the admin server and the other gateways announce (PostgreSQL
//! `LISTEN`): drops the cache entries an admin change touches, so a revoked key or a
//! deactivated user is refused on every gateway within moments instead of after the cache
//! TTL, and applies circuit changes to this gateway's breaker.
//!
//! When the listening connection drops, the loop reconnects (every second while the database
//! does not answer) and then drops every cached entry, since notifications sent in the gap
//! are lost; until it is back, the TTLs bound how stale a cache can be. Both are counted:
//! `ccp_change_listener_lost_total`, `ccp_changes_applied_total{kind}`. Circuits not closed
//! are also re-read from the database every 30 s (or every open period, if shorter), so a
//! circuit change whose notification was lost still arrives.

use crate::proxy::GatewayState;
use crate::proxy::circuits;
use ccp_core::store::{Change, ListenEvent};
use std::sync::Arc;
use std::time::Duration;

const RETRY_EVERY: Duration = Duration::from_secs(1);

/// Runs for the life of the process. Loads the shared circuit states first; on SQLite
/// (one gateway, nothing to listen to) that is all.
pub async fn follow_changes(state: Arc<GatewayState>) {
    let mut listener = loop {
        match state.store.listen_for_changes().await {
            Ok(Some(listener)) => break listener,
            Ok(None) => {
                circuits::load_all(&state).await;
                return;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for admin changes yet; caches rely on their TTL meanwhile");
                tokio::time::sleep(RETRY_EVERY).await;
            }
        }
    };
    // Listening first, then loading: a change made in between is both loaded and announced.
    circuits::load_all(&state).await;
    tokio::spawn(reconcile_circuits(Arc::clone(&state)));
    tracing::info!("listening for admin changes");
    loop {
        match listener.next().await {
            Ok(ListenEvent::Changed(change)) => apply(&state, change).await,
            Ok(ListenEvent::Lost) => {
                state.metrics.count_listener_lost();
                tracing::warn!("lost the change-listening connection; reconnecting");
            }
            Ok(ListenEvent::Resync) => {
                forget_everything(&state);
                circuits::load_all(&state).await;
                state.metrics.count_change("resync");
                tracing::info!("listening for admin changes again; caches dropped");
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for admin changes; retrying");
                tokio::time::sleep(RETRY_EVERY).await;
            }
        }
    }
}

/// How often a gateway with circuits not closed re-reads them from the database (at most;
/// more often when the open period is shorter): a notification lost on the way (its
/// announcement failed, or came while this listener was reconnecting) then costs this long
/// at most, instead of leaving the key on Bedrock until its next request here.
const RECONCILE_EVERY: Duration = Duration::from_secs(30);

async fn reconcile_circuits(state: Arc<GatewayState>) {
    let period = RECONCILE_EVERY
        .min(state.breaker.settings().open_for)
        .max(Duration::from_secs(1));
    let mut every = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if !state.breaker.open_keys().is_empty() {
            circuits::load_all(&state).await;
        }
    }
}

/// Drops what `change` makes stale. (Budget figures are re-read every 2 s anyway; the
/// budget itself travels with the user's grant.)
pub async fn apply(state: &GatewayState, change: Change) {
    match change {
        Change::AccessKey(id) => {
            state.auth.forget_key(id);
            state.bedrock.credentials.invalidate(id).await;
        }
        Change::User(id) => {
            state.auth.forget_user(id);
            state.budgets.forget(id);
        }
        Change::ModelMap => state.bedrock.models.forget(),
        Change::Circuit(id) => circuits::refresh(state, id).await,
    }
    state.metrics.count_change(change.kind());
}

fn forget_everything(state: &GatewayState) {
    state.auth.forget_all();
    state.bedrock.credentials.forget_all();
    state.bedrock.models.forget();
}
