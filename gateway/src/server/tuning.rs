//! The Pingora-level settings the gateway runs with. The bare-Pingora benchmark baseline
//! (`gateway/examples/bare_pingora.rs`) uses the same ones, so the two are compared tuned the
//! same way; each was measured alone (docs/benchmarks.md, "Levers").

use pingora::listeners::{L4BufferSettings, ListenerConfig, TcpSocketOptions};
use pingora::server::configuration::ServerConf;

/// Pingora-level settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// The client connection's write buffer. Pingora's default (1 460 bytes, one segment)
    /// makes a response header its own `send()` whenever the body does not fit beside it.
    pub l4_write_buffer: usize,
    /// The client connection's read buffer (Pingora's default: 64 KiB, allocated per
    /// connection and touched as far as a request fills it).
    pub l4_read_buffer: usize,
    /// Idle upstream connections kept for reuse, over all upstreams. Above the client
    /// concurrency, so a burst does not evict and reopen them.
    pub upstream_keepalive_pool: usize,
}

impl Tuning {
    /// What the gateway runs with.
    pub const GATEWAY: Tuning = Tuning {
        l4_write_buffer: 16 * 1024,
        l4_read_buffer: pingora::listeners::DEFAULT_L4_READ_BUFFER_SIZE,
        upstream_keepalive_pool: 1024,
    };

    /// Pingora 0.9's own defaults, for comparison.
    pub const PINGORA_DEFAULTS: Tuning = Tuning {
        l4_write_buffer: pingora::listeners::DEFAULT_L4_WRITE_BUFFER_SIZE,
        l4_read_buffer: pingora::listeners::DEFAULT_L4_READ_BUFFER_SIZE,
        upstream_keepalive_pool: 128,
    };

    /// The listening endpoint on `addr` with these buffers.
    pub fn listener(&self, addr: &str, socket: Option<TcpSocketOptions>) -> ListenerConfig {
        let endpoint = ListenerConfig::tcp(addr).l4_buffer(L4BufferSettings::new(
            self.l4_read_buffer,
            self.l4_write_buffer,
        ));
        match socket {
            Some(options) => endpoint.tcp_socket_options(options),
            None => endpoint,
        }
    }

    /// Pingora's server settings for `threads` worker threads.
    pub fn server_conf(&self, threads: usize) -> ServerConf {
        ServerConf {
            threads,
            // Work stealing on: with one runtime per thread, upstream connections were reused
            // less (measured: about 1 new upstream connection per 6 requests).
            work_stealing: true,
            upstream_keepalive_pool_size: self.upstream_keepalive_pool,
            ..ServerConf::default()
        }
    }
}
