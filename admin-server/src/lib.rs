//! `ccp-admin-server`: the ClaudeCodeProxy admin plane. The salvo REST API ([`api`], served
//! by [`server`]) and the `ccp-admin` command line ([`cli`]) both act through [`ops`], which
//! checks input, changes the store and writes an audit entry for every change. Admin logins
//! and session tokens live in [`login`] and [`session`].

pub mod api;
pub mod cli;
pub mod login;
pub mod ops;
pub mod server;
pub mod session;
