//! The listening address, bound before Pingora starts.

use anyhow::Context;
use pingora::listeners::TcpSocketOptions;
use std::net::SocketAddr;

/// The address the gateway listens on, checked before Pingora starts (Pingora panics on a
/// bind failure inside its runtime).
///
/// Port 0 asks the kernel for a free port, as tests and side-by-side benchmarks do. Pingora
/// binds from an address string and cannot report the port it got, so the port is bound here
/// first with `SO_REUSEPORT` and that socket is held (bound, never listening, so it takes no
/// connections) while Pingora binds the same port with the same option: no other program can
/// take the port in between, and the real address is known before the first request.
#[derive(Debug)]
pub struct ListenAddr {
    addr: SocketAddr,
    reservation: Option<socket2::Socket>,
}

impl ListenAddr {
    pub fn bind(requested: SocketAddr) -> anyhow::Result<Self> {
        let context = || format!("cannot listen on {requested} (CCP_GATEWAY_ADDR)");
        if requested.port() != 0 {
            std::net::TcpListener::bind(requested).with_context(context)?;
            return Ok(Self {
                addr: requested,
                reservation: None,
            });
        }
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(requested),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )
        .with_context(context)?;
        socket.set_reuse_port(true).with_context(context)?;
        socket.bind(&requested.into()).with_context(context)?;
        let addr = socket
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .with_context(context)?;
        Ok(Self {
            addr,
            reservation: Some(socket),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(super) fn socket_options(&self) -> Option<TcpSocketOptions> {
        self.reservation.as_ref().map(|_| {
            let mut options = TcpSocketOptions::default();
            options.so_reuseport = Some(true);
            options
        })
    }
}
