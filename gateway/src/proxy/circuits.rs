//! The circuit breaker shared by every gateway on the database (`circuit_states`).
//!
//! The request path asks only the in-memory breaker. What crosses gateways goes through the
//! database off the request path: Plan failures while the circuit is closed (the one that
//! reaches the threshold opens it for all), the claim of the half-open probe (one gateway
//! wins it; the others keep their requests on Bedrock), and the probe's result. Each change
//! is announced (`Change::Circuit`) and every gateway adopts the row
//! ([`CircuitBreaker::adopt`](ccp_core::routing::circuit::CircuitBreaker::adopt)). When
//! the database cannot answer, the local breaker decides alone, as a single instance would;
//! a probe's result, its announcement and the read a notification asks for are tried again
//! for a few seconds first, since losing one would strand the other gateways on Bedrock.

use super::GatewayState;
use ccp_core::routing::circuit::{Adopted, PlanOutcome, Route};
use ccp_core::store::{Change, CircuitRecord, ProbeClaim, StoreResult};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// How long a probe claim holds: another gateway may probe once it lapses (the prober died,
/// or Plan has not answered the probe).
pub const PROBE_LEASE: Duration = Duration::from_secs(60);

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

/// For a request the local breaker chose as the half-open probe: whether this gateway may
/// send it. `Route::Probe` if so; else where the shared state says the request goes.
pub async fn claim_probe(state: &GatewayState, key: Uuid) -> Route {
    let claim = state
        .store
        .claim_circuit_probe(key, state.instance, now(), PROBE_LEASE)
        .await;
    match claim {
        Ok(ProbeClaim::Mine | ProbeClaim::NoRecord) => Route::Probe,
        Ok(ProbeClaim::NotMine(record)) => {
            adopt(state, &record);
            match record.adopted(now().timestamp_millis()) {
                Adopted::Closed => Route::Plan,
                Adopted::OpenFor(_) => Route::BedrockDirect,
            }
        }
        Err(err) => {
            tracing::warn!(%key, error = %err, "cannot claim the circuit probe in the database; probing on this gateway's state");
            Route::Probe
        }
    }
}

/// Shares how a Plan attempt on `route` ended (the local breaker has been told already;
/// `had_failures`: it remembered failures of this key before). Runs in the background.
pub fn share_plan_outcome(
    state: &Arc<GatewayState>,
    key: Uuid,
    route: Route,
    outcome: PlanOutcome,
    had_failures: bool,
) {
    let success = outcome == PlanOutcome::Success;
    match (route, success) {
        (Route::Plan, false) | (Route::Probe, _) => {}
        (Route::Plan, true) if had_failures => {}
        _ => return,
    }
    let state = Arc::clone(state);
    tokio::spawn(async move {
        let store = &state.store;
        let settings = state.breaker.settings();
        let announce = match route {
            // Lost, this would leave the other gateways on Bedrock until their lease lapses.
            Route::Probe => persist(key, || {
                store.record_circuit_probe(key, success, now(), settings.open_for)
            })
            .await
            .map(|()| true),
            _ if success => store
                .clear_circuit_failures(key, now())
                .await
                .map(|()| false),
            _ => match store.record_circuit_failure(key, now(), settings).await {
                Ok((record, opened)) => {
                    // Opened here or already by another gateway: this one follows now.
                    if record.adopted(now().timestamp_millis()) != Adopted::Closed {
                        adopt(&state, &record);
                    }
                    Ok(opened)
                }
                Err(err) => Err(err),
            },
        };
        match announce {
            Ok(true) => {
                if let Err(err) = persist(key, || store.announce(Change::Circuit(key))).await {
                    tracing::warn!(%key, error = %err, "cannot announce a circuit change; other gateways see it when they reload");
                }
            }
            Ok(false) => {}
            Err(err) => {
                tracing::warn!(%key, error = %err, "cannot share a circuit outcome; this gateway's breaker decides alone");
            }
        }
    });
}

/// Pauses between the attempts of a shared-state write or read that must not be lost to a
/// database that is busy for a moment (a pool timeout, a dropped connection).
const RETRY_PAUSES: [Duration; 3] = [
    Duration::from_millis(200),
    Duration::from_secs(1),
    Duration::from_secs(3),
];

/// Runs `op` until it succeeds or the pauses run out. (Off the request path only.)
async fn persist<T, F, Fut>(key: Uuid, mut op: F) -> StoreResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = StoreResult<T>>,
{
    let mut pauses = RETRY_PAUSES.iter();
    loop {
        match op().await {
            Ok(done) => return Ok(done),
            Err(err) => match pauses.next() {
                Some(pause) => {
                    tracing::info!(%key, error = %err, "the shared circuit state did not answer; trying again");
                    tokio::time::sleep(*pause).await;
                }
                None => return Err(err),
            },
        }
    }
}

/// Applies a row unless this gateway already adopted a newer version of it (the row's write
/// count): a read that raced a notification must not undo what the notification brought.
fn adopt(state: &GatewayState, record: &CircuitRecord) {
    state.breaker.adopt(
        &record.access_key_id,
        record.adopted(now().timestamp_millis()),
        record.writes,
    );
}

/// Applies one key's shared state (after a notification).
pub async fn refresh(state: &GatewayState, key: Uuid) {
    match persist(key, || state.store.circuit(key)).await {
        Ok(Some(record)) => adopt(state, &record),
        // Never written (its opening never reached the database): closed, version 0.
        Ok(None) => {
            state.breaker.adopt(&key, Adopted::Closed, 0);
        }
        Err(err) => tracing::warn!(%key, error = %err, "cannot read a circuit's shared state"),
    }
}

/// Applies every shared circuit that is not closed, and closes local circuits the database
/// holds closed (at start-up, after the change listener reconnected, and every so often
/// while circuits are open: `server/changes.rs`).
pub async fn load_all(state: &GatewayState) {
    let records = match state.store.circuits_not_closed().await {
        Ok(records) => records,
        Err(err) => {
            tracing::warn!(error = %err, "cannot load the shared circuit states");
            return;
        }
    };
    let shared: HashSet<Uuid> = records.iter().map(|r| r.access_key_id).collect();
    for key in state.breaker.open_keys() {
        if !shared.contains(&key) {
            refresh(state, key).await;
        }
    }
    // A probe this gateway has out settles the key itself when it answers.
    for record in records
        .iter()
        .filter(|r| r.probe_owner != Some(state.instance))
    {
        adopt(state, record);
    }
    if !records.is_empty() {
        tracing::info!(open = records.len(), "shared circuit states loaded");
    }
}
