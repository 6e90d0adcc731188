//! How a TURN client is set up (RFC 8656 §7.1: what an Allocate asks for; RFC 8489 §9.2:
//! the long-term credential; RFC 8489 §6.2: retransmission timing).

use std::net::SocketAddr;
use std::time::Duration;

use super::{AllocationFamily, RelayTransport};
use crate::attribute::{EvenPort, ReservationToken};
use crate::transaction::TransactionConfig;
use crate::transmit::TransportProtocol;

/// How a [`TurnClient`](super::TurnClient) is set up.
#[derive(Clone, Debug)]
pub struct TurnClientConfig {
    /// The local address (socket) requests and data are sent from.
    pub local: SocketAddr,
    /// The TURN server.
    pub server: SocketAddr,
    /// The transport to the server: UDP, or TCP (the caller frames the stream, and brings the
    /// TLS layer for TURN over TLS).
    pub transport: TransportProtocol,
    /// The long-term credential username.
    pub username: String,
    /// The long-term credential password.
    pub password: String,
    /// The LIFETIME to ask for; `None` takes the server's default (10 minutes, RFC 8656 §7.2).
    pub lifetime: Option<Duration>,
    /// The relayed address families to ask for (RFC 8656 §7.1).
    pub address_family: AllocationFamily,
    /// What the allocation relays: UDP datagrams (RFC 8656), or TCP connections (RFC 6062,
    /// over a TCP or TLS `transport` only: Connect, ConnectionAttempt, ConnectionBind).
    /// Default UDP.
    pub relay_transport: RelayTransport,
    /// Send DONT-FRAGMENT with the Allocate request and Send indications (RFC 8656 §7.1,
    /// §10.1). Cleared by the client when the server answers 420 for it, and the Allocate
    /// is sent again without it (§7.3).
    pub dont_fragment: bool,
    /// With [`AllocationFamily::Both`](super::AllocationFamily::Both), also send
    /// ADDITIONAL-ADDRESS-FAMILY under the draft number coturn 4.6 uses (0x8032), and read
    /// its ADDRESS-ERROR-CODE (0x8033): RFC 8656 servers ignore the extra attribute, coturn
    /// ignores the RFC's. Default off.
    pub coturn_dual_allocation: bool,
    /// Ask for an even relayed port, optionally reserving the next (EVEN-PORT, §7.1).
    pub even_port: Option<EvenPort>,
    /// Take the relayed address reserved by an earlier EVEN-PORT allocation
    /// (RESERVATION-TOKEN, §7.1); takes precedence over `even_port`.
    pub reservation_token: Option<ReservationToken>,
    /// SOFTWARE sent with every request.
    pub software: Option<String>,
    /// How long before expiry the allocation, a permission or a channel is refreshed.
    /// Default 60 s (halved for lifetimes shorter than two margins). Refreshing requests
    /// start with an RTO of at most 1/64 of it, so that all their retransmissions (RFC 8489
    /// §6.2.1) fit in it.
    pub refresh_margin: Duration,
    /// The most permissions kept. Default 64.
    pub max_permissions: usize,
    /// The most channels kept. Default 64 (the protocol allows 4096).
    pub max_channels: usize,
    /// The most ALTERNATE-SERVER redirects followed. Default 3.
    pub max_redirects: u8,
    /// Retransmission timing of the requests (RFC 8489 §6.2).
    pub transactions: TransactionConfig,
}

impl TurnClientConfig {
    /// A client of `server` from `local` over `transport` with long-term credentials, and
    /// the defaults for everything else.
    pub fn new(
        local: SocketAddr,
        server: SocketAddr,
        transport: TransportProtocol,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        Self {
            local,
            server,
            transport,
            username: username.into(),
            password: password.into(),
            lifetime: None,
            address_family: AllocationFamily::Ipv4,
            relay_transport: RelayTransport::Udp,
            dont_fragment: false,
            coturn_dual_allocation: false,
            even_port: None,
            reservation_token: None,
            software: None,
            refresh_margin: Duration::from_secs(60),
            max_permissions: 64,
            max_channels: 64,
            max_redirects: 3,
            transactions: TransactionConfig::default(),
        }
    }
}
