//! `ccp-admin-server`: the ClaudeCodeProxy admin plane. Today it holds the `ccp-admin`
//! command line ([`cli`]) and the admin session tokens ([`session`]); the salvo REST API
//! joins them. Both act through
//! `ccp_core::store::Store` and write an audit entry for every change.

pub mod cli;
pub mod session;
