//! The one small trait through which any sans-IO machine of the workspace joins a simulated
//! world: datagrams in, timeouts, transmits out, the next deadline — and, for peers, signalling
//! lines exchanged over a delayed side channel.

use std::any::Any;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use stun_proto::{Transmit, TransportProtocol};

/// A simulated node. The world drives it exactly as a real runtime would drive a sans-IO
/// machine: after every `handle_*` it drains [`poll_transmit`](Node::poll_transmit) and
/// [`poll_signal`](Node::poll_signal), then reads [`poll_timeout`](Node::poll_timeout).
pub trait Node: Any {
    /// A datagram from `source` arrived at the node's address `destination` — over TCP, one
    /// write of the other side on the connection between the two, in order.
    fn handle_datagram(
        &mut self,
        now: Instant,
        transport: TransportProtocol,
        source: SocketAddr,
        destination: SocketAddr,
        payload: Bytes,
    );

    /// Whether the node accepts TCP connections on `local` (a listening socket). A
    /// [`Transmit`] over TCP opens a connection from its source to its destination if there is
    /// none; an incoming SYN to an address nobody listens on is reset.
    fn listens(&self, local: SocketAddr) -> bool {
        let _ = local;
        false
    }

    /// The deadline the node asked for has come (or passed: late calls must be harmless).
    fn handle_timeout(&mut self, now: Instant);

    /// The next datagram to send; its `source` must be one of the node's addresses.
    fn poll_transmit(&mut self) -> Option<Transmit>;

    /// When the node next wants [`handle_timeout`](Node::handle_timeout), if ever.
    fn poll_timeout(&self) -> Option<Instant>;

    /// A signalling line from the node's signalling peer (credentials, candidates, …).
    fn handle_signal(&mut self, now: Instant, line: String) {
        let _ = (now, line);
    }

    /// The next signalling line to send to the node's signalling peer.
    fn poll_signal(&mut self) -> Option<String> {
        None
    }
}
