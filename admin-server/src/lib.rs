//! `ccp-admin-server`: the ClaudeCodeProxy admin plane. Today it holds the `ccp-admin`
//! command line ([`cli`]), the admin session tokens ([`session`]) and the login and
//! session checks ([`login`]); the salvo REST API
//! joins them. Both act through
//! `ccp_core::store::Store` and write an audit entry for every change.

pub mod api;
pub mod cli;
pub mod login;
pub mod session;
