//! Request metering: one `request_logs` row per authenticated request, with the token usage
//! the answer reported (if any) in the same row, written off the request path.
//!
//! The gateway hands each finished request to [`Meter::record`], which never blocks: a
//! bounded queue feeds the [`MeterWriter`], which writes batches (multi-row inserts,
//! idempotent on the request id, one transaction a batch) every second or every 5 000 rows.
//! A full queue drops the row, counts it and warns at most once a minute. On shutdown the
//! writer drains the queue within its budget. Queued and freshly written Bedrock cost is kept
//! per user in [`pending::PendingSpend`] for budget checks.
//!
//! The records themselves ([`record`]) are plain data with no store dependency; the store
//! writes them, and the writer ([`writer`]) feeds the store.

mod members;
pub mod pending;
pub mod prices;
pub mod pricing;
pub mod record;
pub mod tap;
pub mod writer;

pub use record::{Outcome, PathTaken, Provider, RequestRecord, Upstream, UsageRecord};
pub use writer::{Meter, MeterSettings, MeterStats, MeterWriter};
