//! The STUN Binding server of `stun-proto` as a node: RFC 5780 when given an alternate address.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use stun_proto::binding::{BindingServer, BindingServerConfig};
use stun_proto::{Transmit, TransportProtocol};

use crate::Node;

/// A STUN server node.
#[derive(Debug)]
pub struct StunServer {
    server: BindingServer,
}

impl StunServer {
    /// A server answering at `primary`, and with `alternate` (another IP and port) as an
    /// RFC 5780 server on all four address/port combinations.
    pub fn new(primary: SocketAddr, alternate: Option<SocketAddr>) -> Self {
        let config = BindingServerConfig {
            alternate,
            ..BindingServerConfig::new(primary)
        };
        Self {
            server: BindingServer::new(config),
        }
    }

    /// The machine, for its counters.
    pub const fn server(&self) -> &BindingServer {
        &self.server
    }
}

impl Node for StunServer {
    fn handle_datagram(
        &mut self,
        now: Instant,
        transport: TransportProtocol,
        source: SocketAddr,
        destination: SocketAddr,
        payload: Bytes,
    ) {
        self.server
            .handle_datagram(now, transport, source, destination, &payload);
    }

    fn handle_timeout(&mut self, _now: Instant) {}

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.server.poll_transmit()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
}
