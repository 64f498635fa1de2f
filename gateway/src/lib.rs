//! `ccp-gateway`: the ClaudeCodeProxy data path, a Pingora proxy.
//!
//! A request to `/ak/{access key}/v1/…` is authenticated in `request_filter` (one path
//! parse, a cached digest lookup), stripped of its `/ak/{key}` prefix and hop-by-hop
//! headers, and proxied to the Plan upstream (the Anthropic API) with the client's own
//! credentials; the response is relayed byte for byte, streams included. Every error the
//! gateway writes itself is Anthropic-shaped JSON.
//!
//! Keys with a Bedrock key fail over: a Plan 429/5xx, refused connection or timeout before
//! any byte reached the client sends the same request to Bedrock's Converse API
//! ([`bedrock`]), and a per-key circuit breaker sends a key straight to Bedrock after
//! repeated Plan failures ([`proxy`], `ccp_core::routing`).
//!
//! Run it with [`run`] (what the binary does) or, in tests, [`RunningGateway::start`].

pub mod bedrock;
pub mod edge;
pub mod error;
pub mod headers;
pub mod metrics;
pub mod path;
pub mod plan;
pub mod proxy;
pub mod respond;
pub mod server;
pub mod sse;

/// The global allocator the gateway binary (and the bare-Pingora baseline) runs with, chosen by
/// the crate's features: jemalloc by default, as Pingora's own servers use.
#[cfg(feature = "jemalloc")]
pub type Allocator = tikv_jemallocator::Jemalloc;
#[cfg(feature = "jemalloc")]
pub const ALLOCATOR: Allocator = tikv_jemallocator::Jemalloc;
#[cfg(all(feature = "mimalloc", not(feature = "jemalloc")))]
pub type Allocator = mimalloc::MiMalloc;
#[cfg(all(feature = "mimalloc", not(feature = "jemalloc")))]
pub const ALLOCATOR: Allocator = mimalloc::MiMalloc;
#[cfg(not(any(feature = "jemalloc", feature = "mimalloc")))]
pub type Allocator = std::alloc::System;
#[cfg(not(any(feature = "jemalloc", feature = "mimalloc")))]
pub const ALLOCATOR: Allocator = std::alloc::System;

pub use server::{RunningGateway, StopTrigger, Tuning, init_tracing, prepare, run, serve};
