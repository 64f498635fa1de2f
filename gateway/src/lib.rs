//! `ccp-gateway`: the ClaudeCodeProxy data path, a Pingora proxy.
//!
//! A request to `/ak/{access key}/v1/…` is authenticated in `request_filter` (one path
//! parse, a cached digest lookup), stripped of its `/ak/{key}` prefix and hop-by-hop
//! headers, and proxied to the Plan upstream (the Anthropic API) with the client's own
//! credentials; the response is relayed byte for byte, streams included. Every error the
//! gateway writes itself is Anthropic-shaped JSON.
//!
//! Run it with [`run`] (what the binary does) or, in tests, [`RunningGateway::start`].

pub mod headers;
pub mod path;
pub mod plan;
pub mod proxy;
pub mod respond;
pub mod server;

pub use server::{RunningGateway, StopTrigger, init_tracing, prepare, run, serve};
