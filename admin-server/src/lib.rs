//! `ccp-admin-server`: the ClaudeCodeProxy admin plane. Today it holds the `ccp-admin`
//! command line ([`cli`]); the salvo REST API joins it later. Both act through
//! `ccp_core::store::Store` and write an audit entry for every change.

pub mod cli;
