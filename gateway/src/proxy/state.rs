//! State shared by every request, and the drain bookkeeping for graceful shutdown.

use crate::bedrock::Bedrock;
use crate::plan::PlanUpstream;
use ccp_core::auth::KeyAuthenticator;
use ccp_core::metering::Meter;
use ccp_core::routing::circuit::CircuitBreaker;
use ccp_core::secret::SecretString;
use ccp_core::store::Store;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// State shared by every request.
#[derive(Debug)]
pub struct GatewayState {
    pub auth: KeyAuthenticator,
    pub store: Store,
    pub plan: Arc<PlanUpstream>,
    pub plan_api_key: Option<SecretString>,
    pub max_body_bytes: u64,
    pub client_read_timeout: Duration,
    pub lifecycle: Arc<Lifecycle>,
    pub bedrock: Bedrock,
    /// Per access key; only keys with a Bedrock key use it. Shared with the other gateways
    /// through the database (`circuits.rs`).
    pub breaker: CircuitBreaker<uuid::Uuid>,
    /// This process among the gateways (claims the circuit probe under it).
    pub instance: uuid::Uuid,
    pub meter: Meter,
    /// Monthly Bedrock budgets; reads the rollups and `meter`'s pending spend.
    pub budgets: ccp_core::routing::budget::BudgetTracker,
    /// The price table in force (reloaded on SIGHUP or when the file changes).
    pub prices: ccp_core::metering::prices::Prices,
    pub metrics: crate::metrics::Metrics,
    /// Request timestamps and the budget month (the system clock but in tests).
    pub clock: ccp_core::clock::WallClock,
    /// `CCP_METERING`: off only to measure what metering costs.
    pub metering: bool,
}

/// Drain bookkeeping for graceful shutdown.
#[derive(Debug, Default)]
pub struct Lifecycle {
    draining: AtomicBool,
    in_flight: AtomicUsize,
}

impl Lifecycle {
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }
}

/// Counts a request as in flight from context creation to context drop.
#[derive(Debug)]
pub struct InFlight(Arc<Lifecycle>);

impl Lifecycle {
    /// Counts one more request in flight until the guard drops.
    pub fn enter(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(Arc::clone(self))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}
