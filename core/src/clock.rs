//! Wall-clock time, injectable. The gateway takes request timestamps and the budget month
//! from one [`WallClock`], so a test can move it across a month boundary and watch the real
//! gateway start a new month; everything else uses [`WallClock::system`].

use chrono::{DateTime, Utc};
use std::sync::Arc;

/// Where "now" comes from; cheap to clone.
#[derive(Clone)]
pub struct WallClock(Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>);

impl WallClock {
    /// The system clock.
    pub fn system() -> Self {
        Self(Arc::new(Utc::now))
    }

    /// Any other source of time (tests).
    pub fn new(now: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        Self(Arc::new(now))
    }

    pub fn now(&self) -> DateTime<Utc> {
        (self.0)()
    }
}

impl Default for WallClock {
    fn default() -> Self {
        Self::system()
    }
}

impl std::fmt::Debug for WallClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WallClock")
    }
}
