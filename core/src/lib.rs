//! `ccp-core`: the domain of ClaudeCodeProxy, shared by the gateway and the admin plane.
//!
//! It owns everything that is not HTTP plumbing:
//! - [`config`]: settings from `CCP_*` environment variables and an optional TOML file,
//!   validated once into a [`config::Config`];
//! - [`secret`] and [`keys`]: redacting secret types, the access-key format, its peppered
//!   HMAC digest and the display mask;
//! - [`store`]: one repository interface over PostgreSQL (production) and SQLite (embedded
//!   default), with the migrations for both;
//! - [`auth`]: the access-key authenticator with its positive and negative caches;
//! - [`routing`]: the per-key circuit breaker that chooses Plan, a probe, or Bedrock direct,
//!   the model map and the decrypted Bedrock-key cache;
//! - [`crypto`]: wrapping of stored Bedrock keys (AWS KMS, or a local AES-256-GCM key);
//! - [`translate`]: Anthropic Messages ⇄ Bedrock Converse, streams included;
//! - [`password`]: argon2id hashing of admin passwords;
//! - [`telemetry`]: interval metrics and their sinks (CloudWatch, the log);
//! - [`api_error`]: the Anthropic-shaped error body every client-facing error uses.
//!
//! A binary loads a [`config::Config`], opens a [`store::Store`], loads the
//! [`keys::Pepper`] and builds an [`auth::KeyAuthenticator`] from them.

pub mod api_error;
pub mod auth;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod domain;
#[doc(hidden)]
pub mod fuzzing;
pub mod keys;
pub mod logging;
pub mod metering;
pub mod money;
pub mod password;
pub mod rfc3339;
pub mod routing;
pub mod secret;
pub mod sse;
pub mod store;
pub mod telemetry;
pub mod translate;
