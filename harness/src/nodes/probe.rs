//! A probe: a node that sends what it is told to (over UDP, or TCP through its host's stack)
//! and remembers what it received. For tests that pin down NAT, link and TCP behaviour
//! packet by packet, without any protocol in the way.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use stun_proto::{Transmit, TransportProtocol};

use crate::Node;

/// A datagram a [`Probe`] received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// When it arrived.
    pub at: Instant,
    /// Over which transport (over TCP: one write of the other side).
    pub transport: TransportProtocol,
    /// Who sent it (after any NAT).
    pub source: SocketAddr,
    /// The probe's address it arrived at.
    pub destination: SocketAddr,
    /// Its bytes.
    pub payload: Bytes,
}

/// See the module documentation. With `echo` set, it sends every datagram back to its source;
/// [`listening`](Probe::listening) makes it accept TCP connections on its addresses.
#[derive(Debug, Default)]
pub struct Probe {
    outbox: VecDeque<Transmit>,
    received: Vec<Received>,
    echo: bool,
    listening: bool,
}

impl Probe {
    /// A probe that only listens.
    pub fn new() -> Self {
        Self::default()
    }

    /// A probe that echoes every datagram back to where it came from.
    pub fn echo() -> Self {
        Self {
            echo: true,
            ..Self::default()
        }
    }

    /// Accepts TCP connections on every address of its host.
    pub fn listening(mut self) -> Self {
        self.listening = true;
        self
    }

    /// Queues a UDP datagram from the probe's `source` to `destination`.
    pub fn send(&mut self, source: SocketAddr, destination: SocketAddr, payload: &[u8]) {
        self.send_over(TransportProtocol::Udp, source, destination, payload);
    }

    /// Queues `payload` over `transport`: a UDP datagram, or a write on the TCP connection
    /// from `source` to `destination` (opened by the host's stack if there is none).
    pub fn send_over(
        &mut self,
        transport: TransportProtocol,
        source: SocketAddr,
        destination: SocketAddr,
        payload: &[u8],
    ) {
        let payload = Bytes::copy_from_slice(payload);
        self.outbox.push_back(Transmit {
            transport,
            source,
            destination,
            payload,
        });
    }

    /// Everything received so far, in order.
    pub fn received(&self) -> &[Received] {
        &self.received
    }

    /// Forgets what was received.
    pub fn clear(&mut self) {
        self.received.clear();
    }
}

impl Node for Probe {
    fn handle_datagram(
        &mut self,
        now: Instant,
        transport: TransportProtocol,
        source: SocketAddr,
        destination: SocketAddr,
        payload: Bytes,
    ) {
        if self.echo {
            let reply = Transmit {
                transport,
                source: destination,
                destination: source,
                payload: payload.clone(),
            };
            self.outbox.push_back(reply);
        }
        self.received.push(Received {
            at: now,
            transport,
            source,
            destination,
            payload,
        });
    }

    fn handle_timeout(&mut self, _now: Instant) {}

    fn listens(&self, _local: SocketAddr) -> bool {
        self.listening
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.outbox.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
}
