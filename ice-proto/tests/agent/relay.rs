//! A box on the in-memory network that owns addresses of its own (a TURN server).

use std::net::SocketAddr;
use std::time::Instant;

use stun_proto::Transmit;

/// A node that is not an agent: it owns addresses and answers datagrams sent to them.
pub(crate) trait Middlebox {
    /// Whether `addr` is one of the box's addresses.
    fn owns(&self, addr: SocketAddr) -> bool;
    /// A datagram for the box; what it sends in response.
    fn handle(&mut self, now: Instant, datagram: Transmit) -> Vec<Transmit>;
    /// Its next deadline.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Its deadline came; what it sends.
    fn handle_timeout(&mut self, now: Instant) -> Vec<Transmit>;
}
