//! Upstream choice for a request: the per-key [`circuit::CircuitBreaker`] decides between the
//! Plan upstream, a single half-open probe of it, and Bedrock direct; [`model_map`] and
//! [`credentials`] say where and with what a Bedrock call is made.

pub mod budget;
pub mod circuit;
pub mod credentials;
pub mod model_map;
