//! Upstream choice for a request: the per-key [`circuit::CircuitBreaker`] decides between the
//! Plan upstream, a single half-open probe of it, and Bedrock direct.

pub mod circuit;
