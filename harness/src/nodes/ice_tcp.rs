//! The sockets a runtime keeps for ICE-TCP (RFC 6544), as `ice_proto::tcp` asks of its
//! caller: a listening socket at the TCP base (the passive candidate), connections to the
//! peer's passive candidates opened from ports the "system" picks (the active candidate's),
//! and an RFC 4571 framer per connection. The agent only ever sees the TCP base as its
//! address; this layer maps each active connection's own port to it and back.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use ice_proto::tcp::Framer;
use stun_proto::{Transmit, TransportProtocol};

/// The first port active connections are opened from (the ephemeral range).
const FIRST_EPHEMERAL: u16 = 49_152;
/// The most connections kept; beyond it new ones are not opened (their checks time out).
const MAX_CONNECTIONS: usize = 256;

/// See the module documentation.
#[derive(Debug)]
pub struct IceTcpSockets {
    base: SocketAddr,
    next_port: u16,
    /// Remote address → the local address of the connection we opened to it.
    active: BTreeMap<SocketAddr, SocketAddr>,
    /// (local, remote) → the framer of that connection's incoming stream.
    framers: BTreeMap<(SocketAddr, SocketAddr), Framer>,
}

impl IceTcpSockets {
    /// Sockets for the TCP base `base` (listening there).
    pub fn new(base: SocketAddr) -> Self {
        Self {
            base,
            next_port: FIRST_EPHEMERAL,
            active: BTreeMap::new(),
            framers: BTreeMap::new(),
        }
    }

    /// The listening address.
    pub const fn base(&self) -> SocketAddr {
        self.base
    }

    /// Where the agent's transmit goes: an ICE-TCP one (from the TCP base) on the connection
    /// the peer opened to us if there is one, else on one we open from a port of our own.
    /// Anything else passes as it is. `None`: no room for another connection.
    pub fn outgoing(&mut self, mut t: Transmit) -> Option<Transmit> {
        if t.transport != TransportProtocol::Tcp || t.source != self.base {
            return Some(t);
        }
        if self.framers.contains_key(&(self.base, t.destination)) {
            // Accepted on the listening socket: answer on that connection.
            return Some(t);
        }
        let local = match self.active.get(&t.destination) {
            Some(local) => *local,
            None => {
                if self.active.len() >= MAX_CONNECTIONS {
                    return None;
                }
                let local = SocketAddr::new(self.base.ip(), self.next_port);
                self.next_port = self.next_port.checked_add(1).unwrap_or(FIRST_EPHEMERAL);
                self.active.insert(t.destination, local);
                local
            }
        };
        t.source = local;
        Some(t)
    }

    /// What arrived over TCP at `destination` from `source`: for an ICE-TCP connection, the
    /// whole frames it completed, to hand to the agent as arriving at the TCP base; `None`
    /// for another connection (a TURN server's).
    pub fn incoming(
        &mut self,
        source: SocketAddr,
        destination: SocketAddr,
        bytes: &[u8],
    ) -> Option<Vec<Vec<u8>>> {
        let ours = destination == self.base || self.active.get(&source) == Some(&destination);
        if !ours {
            return None;
        }
        if !self.framers.contains_key(&(destination, source))
            && self.framers.len() >= MAX_CONNECTIONS
        {
            return Some(Vec::new());
        }
        let framer = self.framers.entry((destination, source)).or_default();
        framer.push(bytes);
        Some(std::iter::from_fn(|| framer.next_frame()).collect())
    }
}
