//! The outgoing datagram every machine of this crate (and of ICE and TURN above it) hands to
//! its caller: which transport, from which local address, to which remote address, and the
//! bytes (DESIGN.md, "The sans-IO contract"; RFC 8489 §6.2 for the transport distinction).

use std::net::SocketAddr;

use bytes::Bytes;

/// The transport a STUN message travels over. Retransmission rules differ: over UDP the
/// client retransmits (RFC 8489 §6.2.1); over TCP or TLS it sends once and waits Ti
/// (§6.2.2).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum TransportProtocol {
    /// UDP: unreliable, retransmitted on RTO.
    Udp,
    /// TCP (or TLS over TCP): reliable, sent once.
    Tcp,
}

impl TransportProtocol {
    /// Whether the transport delivers reliably (no STUN-level retransmissions).
    pub const fn is_reliable(self) -> bool {
        matches!(self, TransportProtocol::Tcp)
    }

    /// The lowercase name (`udp`, `tcp`), as SDP and logs write it.
    pub const fn as_str(self) -> &'static str {
        match self {
            TransportProtocol::Udp => "udp",
            TransportProtocol::Tcp => "tcp",
        }
    }
}

impl std::fmt::Display for TransportProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A datagram (or, over TCP, a framed message) a machine wants sent.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Transmit {
    /// The transport to send it over.
    pub transport: TransportProtocol,
    /// The local address to send it from (a server with several addresses picks the socket
    /// by this field).
    pub source: SocketAddr,
    /// The remote address to send it to.
    pub destination: SocketAddr,
    /// The bytes. Cloning a `Transmit` shares them.
    pub payload: Bytes,
}

/// A datagram to send at once, borrowing its bytes from the input or from a buffer: what the
/// hot paths (TURN relaying, ICE application data) return instead of an owned [`Transmit`],
/// so that sending a packet allocates nothing. Send it before the next call on the machine
/// that returned it; [`Transmit::from`] copies it when it must wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransmitRef<'a> {
    /// The transport to send it over.
    pub transport: TransportProtocol,
    /// The local address (socket) to send it from.
    pub source: SocketAddr,
    /// Where to send it.
    pub destination: SocketAddr,
    /// The bytes.
    pub payload: &'a [u8],
}

impl From<TransmitRef<'_>> for Transmit {
    /// An owned copy (one allocation, for the payload).
    fn from(t: TransmitRef<'_>) -> Self {
        Self {
            transport: t.transport,
            source: t.source,
            destination: t.destination,
            payload: Bytes::copy_from_slice(t.payload),
        }
    }
}
