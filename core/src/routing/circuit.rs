//! The per-access-key circuit breaker, a pure state machine with an injected clock.
//!
//! - **Closed**: requests go to Plan. A Plan failure (429, 5xx, connect error, timeout) is
//!   remembered; failures older than `window` are forgotten; a success forgets them all.
//!   `threshold` remembered failures open the circuit.
//! - **Open** until `open_for` has passed: requests go to Bedrock direct.
//! - **Half-open**: exactly one request probes Plan while the others keep going to Bedrock.
//!   Its success closes the circuit, its failure opens it again. A probe dropped without an
//!   outcome (client gone) lets the next request probe.
//!
//! Bedrock outcomes never reach the breaker. Keys without a Bedrock key never use it. The
//! state is per process; on PostgreSQL the gateway shares it through the database and
//! [`CircuitBreaker::adopt`]s what other instances decided (`gateway/src/proxy/circuits.rs`).
//!
//! (Over 400 lines only with its unit tests, which sit beside the code they check.)

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where time comes from; tests inject a manual clock.
pub trait Clock: Send + Sync {
    fn now(&self) -> Instant;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    pub threshold: usize,
    pub window: Duration,
    pub open_for: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            threshold: 3,
            window: Duration::from_secs(60),
            open_for: Duration::from_secs(30 * 60),
        }
    }
}

/// The route the breaker chose for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Circuit closed: try Plan (and fail over if it fails).
    Plan,
    /// Circuit half-open and this request is the one probe of Plan.
    Probe,
    /// Circuit open, or another request is probing: Bedrock direct.
    BedrockDirect,
}

/// How a Plan attempt ended, as far as the breaker cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanOutcome {
    Success,
    /// 429, 5xx (529 included), connect failure or no response in time.
    Failure,
}

/// A state change worth a metric or a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Opened,
    Reopened,
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Closed { failures: Vec<Instant> },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// What another instance decided for a key, as this one should apply it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adopted {
    /// Closed, nothing remembered.
    Closed,
    /// Open (or being probed elsewhere) for this much longer; then this instance may ask to
    /// probe.
    OpenFor(Duration),
}

/// The state of one key.
#[derive(Debug, Clone)]
struct KeyCircuit {
    state: State,
}

impl KeyCircuit {
    fn new() -> Self {
        Self {
            state: State::Closed {
                failures: Vec::new(),
            },
        }
    }

    fn route(&mut self, now: Instant) -> Route {
        match &mut self.state {
            State::Closed { .. } => Route::Plan,
            State::Open { until } if now < *until => Route::BedrockDirect,
            State::Open { .. } | State::HalfOpen { probing: false } => {
                self.state = State::HalfOpen { probing: true };
                Route::Probe
            }
            State::HalfOpen { probing: true } => Route::BedrockDirect,
        }
    }

    fn record(
        &mut self,
        route: Route,
        outcome: PlanOutcome,
        now: Instant,
        s: &BreakerSettings,
    ) -> Option<Transition> {
        match (route, &mut self.state, outcome) {
            (Route::Probe, State::HalfOpen { .. }, PlanOutcome::Success) => {
                self.state = State::Closed {
                    failures: Vec::new(),
                };
                Some(Transition::Closed)
            }
            (Route::Probe, State::HalfOpen { .. }, PlanOutcome::Failure) => {
                self.state = State::Open {
                    until: now + s.open_for,
                };
                Some(Transition::Reopened)
            }
            (Route::Plan, State::Closed { failures }, PlanOutcome::Success) => {
                failures.clear();
                None
            }
            (Route::Plan, State::Closed { failures }, PlanOutcome::Failure) => {
                failures.retain(|at| now.saturating_duration_since(*at) < s.window);
                failures.push(now);
                if failures.len() >= s.threshold {
                    self.state = State::Open {
                        until: now + s.open_for,
                    };
                    Some(Transition::Opened)
                } else {
                    None
                }
            }
            // A Plan request that started before the circuit opened, or anything routed to
            // Bedrock: the state already reflects more recent knowledge.
            _ => None,
        }
    }

    fn abandon_probe(&mut self) {
        if self.state == (State::HalfOpen { probing: true }) {
            self.state = State::HalfOpen { probing: false };
        }
    }

    /// Closed with nothing remembered: the same as no entry at all.
    fn is_idle(&self) -> bool {
        matches!(&self.state, State::Closed { failures } if failures.is_empty())
    }
}

/// Circuit breakers for all keys. Only keys with recent failures or an open circuit hold an
/// entry, so memory follows trouble, not traffic.
#[derive(Debug)]
pub struct CircuitBreaker<K, C = SystemClock> {
    settings: BreakerSettings,
    clock: C,
    keys: Mutex<HashMap<K, KeyCircuit>>,
    /// The version of the shared state last adopted per key: a read that raced a newer
    /// notification must not undo it.
    adopted: Mutex<HashMap<K, i64>>,
}

impl<K: Eq + Hash + Clone> CircuitBreaker<K, SystemClock> {
    pub fn new(settings: BreakerSettings) -> Self {
        Self::with_clock(settings, SystemClock)
    }
}

impl<K: Eq + Hash + Clone, C: Clock> CircuitBreaker<K, C> {
    pub fn with_clock(settings: BreakerSettings, clock: C) -> Self {
        Self {
            settings,
            clock,
            keys: Mutex::new(HashMap::new()),
            adopted: Mutex::new(HashMap::new()),
        }
    }

    pub fn settings(&self) -> &BreakerSettings {
        &self.settings
    }

    /// Chooses the route for a new request of `key`.
    pub fn route(&self, key: &K) -> Route {
        let now = self.clock.now();
        let mut keys = self
            .keys
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match keys.get_mut(key) {
            Some(circuit) => circuit.route(now),
            None => Route::Plan,
        }
    }

    /// Records how a Plan attempt on `route` ended.
    pub fn record(&self, key: &K, route: Route, outcome: PlanOutcome) -> Option<Transition> {
        if route == Route::BedrockDirect {
            return None;
        }
        let now = self.clock.now();
        let mut keys = self
            .keys
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if outcome == PlanOutcome::Success && route == Route::Plan && !keys.contains_key(key) {
            return None; // the common case: nothing to forget
        }
        let circuit = keys.entry(key.clone()).or_insert_with(KeyCircuit::new);
        let transition = circuit.record(route, outcome, now, &self.settings);
        if circuit.is_idle() {
            keys.remove(key);
        }
        transition
    }

    /// The probe request ended without a Plan outcome (e.g. the client went away).
    pub fn abandon_probe(&self, key: &K) {
        let mut keys = self
            .keys
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(circuit) = keys.get_mut(key) {
            circuit.abandon_probe();
        }
    }

    /// Applies what another instance decided for `key`, as of `version` of the shared state
    /// (it only grows); an older version than one already adopted is ignored. Returns whether
    /// it was applied.
    pub fn adopt(&self, key: &K, adopted: Adopted, version: i64) -> bool {
        let mut versions = self
            .adopted
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match versions.get(key) {
            Some(seen) if *seen > version => return false,
            _ => {
                versions.insert(key.clone(), version);
            }
        }
        let now = self.clock.now();
        let mut keys = self
            .keys
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match adopted {
            Adopted::Closed => {
                keys.remove(key);
            }
            Adopted::OpenFor(left) => {
                keys.insert(
                    key.clone(),
                    KeyCircuit {
                        state: State::Open { until: now + left },
                    },
                );
            }
        }
        true
    }

    /// Whether `key` has failures remembered or a circuit not closed.
    pub fn is_tracked(&self, key: &K) -> bool {
        self.keys
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .contains_key(key)
    }

    /// Keys whose circuit is not closed (open, or half-open).
    pub fn open_keys(&self) -> Vec<K> {
        let keys = self
            .keys
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        keys.iter()
            .filter(|(_, c)| !matches!(c.state, State::Closed { .. }))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Keys with state, for tests and metrics.
    pub fn tracked_keys(&self) -> usize {
        self.keys.lock().map_or(0, |k| k.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A clock that moves only when told to.
    #[derive(Debug, Clone)]
    struct ManualClock {
        start: Instant,
        offset_ms: Arc<AtomicU64>,
    }

    impl ManualClock {
        fn new() -> Self {
            Self {
                start: Instant::now(),
                offset_ms: Arc::new(AtomicU64::new(0)),
            }
        }
        fn advance(&self, d: Duration) {
            self.offset_ms
                .fetch_add(d.as_millis() as u64, Ordering::SeqCst);
        }
    }

    impl Clock for ManualClock {
        fn now(&self) -> Instant {
            self.start + Duration::from_millis(self.offset_ms.load(Ordering::SeqCst))
        }
    }

    fn breaker() -> (CircuitBreaker<u32, ManualClock>, ManualClock) {
        let clock = ManualClock::new();
        (
            CircuitBreaker::with_clock(BreakerSettings::default(), clock.clone()),
            clock,
        )
    }

    fn fail(b: &CircuitBreaker<u32, ManualClock>, key: u32) -> (Route, Option<Transition>) {
        let route = b.route(&key);
        let t = if route == Route::BedrockDirect {
            None
        } else {
            b.record(&key, route, PlanOutcome::Failure)
        };
        (route, t)
    }

    #[test]
    fn three_failures_within_a_minute_open_the_circuit() {
        let (b, clock) = breaker();
        assert_eq!(fail(&b, 1), (Route::Plan, None));
        clock.advance(Duration::from_secs(20));
        assert_eq!(fail(&b, 1), (Route::Plan, None));
        clock.advance(Duration::from_secs(20));
        assert_eq!(fail(&b, 1), (Route::Plan, Some(Transition::Opened)));
        assert_eq!(b.route(&1), Route::BedrockDirect);
        assert_eq!(b.route(&2), Route::Plan, "other keys are unaffected");
    }

    #[test]
    fn adopted_state_routes_like_local_state() {
        let (b, clock) = breaker();
        assert!(b.adopt(&4, Adopted::OpenFor(Duration::from_secs(10)), 3));
        assert_eq!(b.open_keys(), vec![4]);
        assert_eq!(b.route(&4), Route::BedrockDirect);
        clock.advance(Duration::from_secs(10));
        assert_eq!(b.route(&4), Route::Probe, "then this instance may probe");
        assert_eq!(b.route(&4), Route::BedrockDirect, "one probe at a time");
        assert!(
            !b.adopt(&4, Adopted::Closed, 2),
            "an older version never undoes a newer one"
        );
        assert_eq!(b.route(&4), Route::BedrockDirect);
        assert!(b.adopt(&4, Adopted::Closed, 4));
        assert!(!b.is_tracked(&4));
        assert_eq!(b.route(&4), Route::Plan);
        fail(&b, 5);
        assert!(b.is_tracked(&5));
        assert!(b.open_keys().is_empty(), "failures alone leave it closed");
    }

    #[test]
    fn a_success_resets_and_old_failures_expire() {
        let (b, clock) = breaker();
        fail(&b, 1);
        fail(&b, 1);
        let r = b.route(&1);
        b.record(&1, r, PlanOutcome::Success);
        assert_eq!(b.tracked_keys(), 0, "a success forgets everything");
        fail(&b, 1);
        assert_eq!(fail(&b, 1), (Route::Plan, None));
        clock.advance(Duration::from_secs(61));
        fail(&b, 1);
        assert_eq!(
            b.route(&1),
            Route::Plan,
            "F,F then F 61 s later does not trip"
        );
    }

    #[test]
    fn half_open_lets_exactly_one_probe_through() {
        let (b, clock) = breaker();
        for _ in 0..3 {
            fail(&b, 7);
        }
        clock.advance(Duration::from_secs(30 * 60 - 1));
        assert_eq!(b.route(&7), Route::BedrockDirect);
        clock.advance(Duration::from_secs(1));
        assert_eq!(b.route(&7), Route::Probe);
        assert_eq!(
            b.route(&7),
            Route::BedrockDirect,
            "others keep going to Bedrock during the probe"
        );
        assert_eq!(
            b.record(&7, Route::Probe, PlanOutcome::Failure),
            Some(Transition::Reopened)
        );
        assert_eq!(b.route(&7), Route::BedrockDirect);
        clock.advance(Duration::from_secs(30 * 60));
        assert_eq!(b.route(&7), Route::Probe);
        assert_eq!(
            b.record(&7, Route::Probe, PlanOutcome::Success),
            Some(Transition::Closed)
        );
        assert_eq!(b.route(&7), Route::Plan);
        assert_eq!(b.tracked_keys(), 0);
    }

    #[test]
    fn an_abandoned_probe_lets_the_next_request_probe() {
        let (b, clock) = breaker();
        for _ in 0..3 {
            fail(&b, 3);
        }
        clock.advance(Duration::from_secs(30 * 60));
        assert_eq!(b.route(&3), Route::Probe);
        b.abandon_probe(&3);
        assert_eq!(b.route(&3), Route::Probe);
    }

    #[test]
    fn bedrock_outcomes_and_late_plan_results_change_nothing() {
        let (b, _clock) = breaker();
        let early = b.route(&5); // a Plan request in flight while the circuit trips
        for _ in 0..3 {
            fail(&b, 5);
        }
        assert_eq!(
            b.record(&5, Route::BedrockDirect, PlanOutcome::Success),
            None
        );
        assert_eq!(b.record(&5, early, PlanOutcome::Success), None);
        assert_eq!(
            b.route(&5),
            Route::BedrockDirect,
            "a late success does not close an open circuit"
        );
    }

    #[test]
    fn concurrent_failures_trip_exactly_once() {
        for _ in 0..200 {
            let b = Arc::new(CircuitBreaker::<u32>::new(BreakerSettings::default()));
            let barrier = Arc::new(std::sync::Barrier::new(64));
            let handles: Vec<_> = (0..64)
                .map(|_| {
                    let (b, barrier) = (Arc::clone(&b), Arc::clone(&barrier));
                    std::thread::spawn(move || {
                        let route = b.route(&9);
                        barrier.wait();
                        b.record(&9, route, PlanOutcome::Failure)
                    })
                })
                .collect();
            let opened = handles
                .into_iter()
                .filter_map(|h| h.join().unwrap())
                .filter(|t| *t == Transition::Opened)
                .count();
            assert_eq!(opened, 1);
            assert_eq!(b.route(&9), Route::BedrockDirect);
        }
    }

    /// A deliberately different formulation, for model-based testing: one request at a time,
    /// a list of failure times and an "open until" instant, no explicit half-open state.
    fn reference(events: &[(u64, bool)], s: &BreakerSettings) -> Vec<Route> {
        let (mut t, mut fails, mut open_until): (u64, Vec<u64>, Option<u64>) = (0, vec![], None);
        let window = s.window.as_millis() as u64;
        let open_for = s.open_for.as_millis() as u64;
        let mut routes = vec![];
        for &(dt, ok) in events {
            t += dt;
            if let Some(until) = open_until {
                if t < until {
                    routes.push(Route::BedrockDirect);
                } else {
                    routes.push(Route::Probe);
                    open_until = if ok { None } else { Some(t + open_for) };
                    fails.clear();
                }
                continue;
            }
            routes.push(Route::Plan);
            if ok {
                fails.clear();
            } else {
                fails.retain(|f| t - f < window);
                fails.push(t);
                if fails.len() >= s.threshold {
                    open_until = Some(t + open_for);
                    fails.clear();
                }
            }
        }
        routes
    }

    proptest! {
        #[test]
        fn agrees_with_the_reference_model(events in prop::collection::vec((0u64..40_000, any::<bool>()), 1..200)) {
            let settings = BreakerSettings { threshold: 3, window: Duration::from_secs(60), open_for: Duration::from_secs(120) };
            let clock = ManualClock::new();
            let b = CircuitBreaker::<u32, ManualClock>::with_clock(settings, clock.clone());
            let mut routes = vec![];
            for &(dt, ok) in &events {
                clock.advance(Duration::from_millis(dt));
                let route = b.route(&1);
                let outcome = if ok { PlanOutcome::Success } else { PlanOutcome::Failure };
                b.record(&1, route, outcome);
                routes.push(route);
            }
            prop_assert_eq!(routes, reference(&events, &settings));
        }
    }
}
