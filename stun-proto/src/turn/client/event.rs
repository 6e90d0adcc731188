//! What a TURN client tells its caller: the allocation it got (RFC 8656 §7.3), its events
//! (allocation, refresh §8, permissions §9, channels §11–§12, expiry), what became of a
//! received datagram (§10.4, §12.6), and why a request or a command failed.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use thiserror::Error;

use super::EncodeError;
use crate::attribute::{AddressFamily, ConnectionId, Icmp, ReservationToken};
use crate::transaction::{self, TransactionError, TransportFailure};
use crate::turn::channel_data::ChannelDataError;

/// What a successful Allocate gave (RFC 8656 §7.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allocation {
    /// The relayed transport address (XOR-RELAYED-ADDRESS): what peers send to.
    pub relayed: SocketAddr,
    /// The second relayed address of a dual-stack allocation (§7.1, ADDITIONAL-ADDRESS-FAMILY).
    pub additional_relayed: Option<SocketAddr>,
    /// The client's server-reflexive address as the server saw it (XOR-MAPPED-ADDRESS).
    pub mapped: Option<SocketAddr>,
    /// The lifetime granted.
    pub lifetime: Duration,
    /// The token naming the port reserved by EVEN-PORT with the R bit (RESERVATION-TOKEN).
    pub reservation_token: Option<ReservationToken>,
    /// The error the server gave for the additional address family, if it could not
    /// allocate it (ADDRESS-ERROR-CODE, §7.3).
    pub additional_family_error: Option<u16>,
}

/// Why a request failed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RequestFailure {
    /// The server answered with an error (ERROR-CODE; 0 if unreadable).
    #[error("error response {code} {reason:?}")]
    ErrorResponse {
        /// The code, e.g. 403, 437, 441, 486, 508.
        code: u16,
        /// The server's reason phrase.
        reason: String,
    },
    /// A 401 to a signed request: wrong username or password, or a 401 without REALM and
    /// NONCE.
    #[error("401 to a signed request: wrong username or password, or no REALM and NONCE")]
    Unauthenticated,
    /// No response (RFC 8489 §6.2).
    #[error("no response after the last retransmission")]
    Timeout,
    /// The transport failed.
    #[error("transport error: {0}")]
    Transport(TransportFailure),
    /// A response whose MESSAGE-INTEGRITY does not match our key.
    #[error("the response's MESSAGE-INTEGRITY does not match our key")]
    IntegrityMismatch,
    /// A success response without the attributes it must carry.
    #[error("success response without the attributes it must carry")]
    MalformedResponse,
    /// More ALTERNATE-SERVER redirects than [`TurnClientConfig::max_redirects`](super::TurnClientConfig::max_redirects).
    #[error("more ALTERNATE-SERVER redirects than configured")]
    TooManyRedirects,
    /// The request could not be encoded or sent again after a challenge.
    #[error("request not encoded: {0}")]
    Encode(EncodeError),
    /// The transaction table was full when the request had to be sent again.
    #[error("request not sent again: {0}")]
    Transaction(TransactionError),
}

/// What the application learns from a [`TurnClient`](super::TurnClient).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TurnEvent {
    /// The allocation exists: relay candidates can be advertised.
    Allocated(Allocation),
    /// The allocation could not be made; the client is closed.
    AllocationFailed(RequestFailure),
    /// The server redirected us (300 Try Alternate); requests now go to `server`. Over TCP
    /// the caller must connect there.
    Redirected {
        /// The new server.
        server: SocketAddr,
    },
    /// A Refresh succeeded: the allocation lives `lifetime` more.
    Refreshed {
        /// The lifetime granted.
        lifetime: Duration,
    },
    /// The allocation ran out without a successful refresh, or the server no longer knows
    /// it (437); the client is closed.
    Expired,
    /// The allocation was released ([`TurnClient::handle_close`](super::TurnClient::handle_close)); the client is closed.
    Deallocated,
    /// The server installed a permission for `peer` (RFC 8656 §9).
    PermissionCreated {
        /// The peer's IP address.
        peer: IpAddr,
    },
    /// A CreatePermission failed (403 for a peer the server refuses).
    PermissionFailed {
        /// The peer's IP address.
        peer: IpAddr,
        /// Why.
        failure: RequestFailure,
    },
    /// A permission ran out without a successful refresh.
    PermissionExpired {
        /// The peer's IP address.
        peer: IpAddr,
    },
    /// A channel is bound: data to and from `peer` now travels as ChannelData.
    ChannelBound {
        /// The channel number.
        channel: u16,
        /// The peer.
        peer: SocketAddr,
    },
    /// A ChannelBind failed.
    ChannelBindFailed {
        /// The channel number.
        channel: u16,
        /// The peer.
        peer: SocketAddr,
        /// Why.
        failure: RequestFailure,
    },
    /// A channel ran out without a successful refresh; data goes as indications again.
    ChannelExpired {
        /// The channel number.
        channel: u16,
        /// The peer.
        peer: SocketAddr,
    },
    /// A Connect succeeded (RFC 6062 §4.3): the server is connected to `peer`. Open a new
    /// TCP (or TLS) connection to the server and bind it with
    /// [`TurnClient::handle_connection_bind`](super::TurnClient::handle_connection_bind)
    /// within 30 s.
    PeerConnected {
        /// The peer.
        peer: SocketAddr,
        /// The connection to bind.
        connection: ConnectionId,
    },
    /// A Connect failed: 446 (a connection with the peer exists), 447 (the server could not
    /// connect), 403 (peer refused), …
    ConnectFailed {
        /// The peer.
        peer: SocketAddr,
        /// Why.
        failure: RequestFailure,
    },
    /// A peer connected to the relayed address (a ConnectionAttempt indication, RFC 6062
    /// §4.4; the server needed a permission for it): to accept, open a new connection to
    /// the server and bind it with
    /// [`TurnClient::handle_connection_bind`](super::TurnClient::handle_connection_bind)
    /// within 30 s; to refuse, do nothing.
    ConnectionAttempt {
        /// The peer.
        peer: SocketAddr,
        /// The connection to bind.
        connection: ConnectionId,
    },
    /// A ConnectionBind succeeded (RFC 6062 §4.4): the data connection from `local` now
    /// carries raw bytes to and from the peer of `connection`; give nothing more it reads
    /// to the client.
    ConnectionBound {
        /// The connection.
        connection: ConnectionId,
        /// The data connection's local address.
        local: SocketAddr,
    },
    /// A ConnectionBind failed (400 for a connection the server no longer has); close the
    /// data connection.
    ConnectionBindFailed {
        /// The connection.
        connection: ConnectionId,
        /// The data connection's local address.
        local: SocketAddr,
        /// Why.
        failure: RequestFailure,
    },
}

/// What [`TurnClient::handle_datagram`](super::TurnClient::handle_datagram) did with a datagram (or a framed message).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Handled<'a> {
    /// A TURN response, consumed; events may be queued.
    Consumed,
    /// Data from a peer, relayed by the server in a Data indication (`channel: None`) or
    /// ChannelData: borrowed from the datagram, no copy.
    Data {
        /// The peer that sent it to our relayed address.
        peer: SocketAddr,
        /// The data.
        data: &'a [u8],
        /// The channel it came on.
        channel: Option<u16>,
    },
    /// An ICMP error the server received for traffic it relayed to `peer` (RFC 8656 §11.6:
    /// a Data indication with ICMP instead of DATA), e.g. port unreachable or packet too
    /// big (with the MTU in `icmp.error_data`).
    Icmp {
        /// The peer the failed datagram was sent to.
        peer: SocketAddr,
        /// The ICMP type, code and error data.
        icmp: Icmp,
    },
    /// From the server and TURN-shaped, but unusable; the reason says why.
    Dropped(DropReason),
    /// Not for this client, returned untouched: another source; neither STUN nor
    /// ChannelData; a STUN request or indication other than Data; or a response to a
    /// transaction the client never started (a Binding answer, when the TURN server is also
    /// the STUN server on the same socket).
    NotTurn(&'a [u8]),
}

/// Why a datagram from the server was not used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// ChannelData on a channel that is not bound.
    UnknownChannel(u16),
    /// ChannelData that does not parse.
    MalformedChannelData(ChannelDataError),
    /// A Data indication without XOR-PEER-ADDRESS or DATA.
    MalformedIndication,
    /// A response to one of our transactions that was not used: a duplicate, a late
    /// answer, one from the wrong source, or a bad FINGERPRINT.
    Transaction(transaction::DropReason),
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TurnClientError {
    /// [`TurnClient::handle_allocate`](super::TurnClient::handle_allocate) was called twice.
    #[error("an allocation was already requested")]
    AlreadyStarted,
    /// The command needs an allocation, and there is none (yet, or any more).
    #[error("no allocation")]
    NotAllocated,
    /// The relayed addresses do not include the peer's address family (RFC 8656 §9.1, 443).
    #[error("no relayed address of {0:?}")]
    PeerFamilyMismatch(AddressFamily),
    /// [`TurnClientConfig::max_permissions`](super::TurnClientConfig::max_permissions) permissions exist.
    #[error("{limit} permissions: the table is full")]
    TooManyPermissions {
        /// The limit.
        limit: usize,
    },
    /// [`TurnClientConfig::max_channels`](super::TurnClientConfig::max_channels) channels exist (or all 4096 numbers are used).
    #[error("{limit} channels: the table is full")]
    TooManyChannels {
        /// The limit.
        limit: usize,
    },
    /// Channels and datagrams need a UDP allocation; this one relays TCP (RFC 6062).
    #[error("a TCP allocation relays connections, not datagrams")]
    TcpAllocation,
    /// Connect and ConnectionBind need a TCP allocation (RFC 6062) over TCP or TLS.
    #[error("not a TCP allocation")]
    NotTcpAllocation,
    /// The request could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The transaction table is full.
    #[error(transparent)]
    Transaction(#[from] TransactionError),
}

/// Why data could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SendError {
    /// No allocation (yet, or any more).
    #[error("no allocation")]
    NotAllocated,
    /// No permission was asked for the peer's IP address: call
    /// [`TurnClient::handle_create_permission`](super::TurnClient::handle_create_permission) (or bind a channel) first.
    #[error("no permission for {0}")]
    NoPermission(IpAddr),
    /// The data does not fit the caller's buffer or the message's length field.
    #[error("data of {len} bytes does not fit: {reason}")]
    TooLong {
        /// The data length.
        len: usize,
        /// What overflowed.
        reason: &'static str,
    },
    /// [`TurnClient::handle_send`](super::TurnClient::handle_send) queued this many transmits that were not polled,
    /// or holds this many datagrams for permissions and channels not yet confirmed.
    #[error("{0} transmits queued and not polled")]
    QueueFull(usize),
    /// The permission (or channel) for the peer was asked for and is not confirmed yet:
    /// what [`TurnClient::handle_send_into`](super::TurnClient::handle_send_into) would
    /// send now, the server would drop (RFC 8656 §9). [`TurnClient::handle_send`](super::TurnClient::handle_send)
    /// holds such data instead and sends it when the success response arrives.
    #[error("the permission for {0} is not confirmed yet")]
    PermissionPending(IpAddr),
    /// A TCP allocation (RFC 6062) relays connections: write to the bound data connection.
    #[error("a TCP allocation relays connections, not datagrams")]
    TcpAllocation,
}

/// Counters, for operators and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TurnClientStats {
    /// Data sent as Send indications.
    pub sent_indications: u64,
    /// Data sent as ChannelData.
    pub sent_channel_data: u64,
    /// Data received (either way).
    pub received_data: u64,
    /// Datagrams from the server that were ignored.
    pub ignored: u64,
    /// 438 Stale Nonce answers, each followed by the request sent again with the new nonce.
    pub stale_nonces: u64,
    /// Datagrams [`TurnClient::handle_send`](super::TurnClient::handle_send) held until the
    /// permission or channel they need was confirmed.
    pub held: u64,
    /// Held datagrams dropped: their permission or channel failed or was forgotten, the
    /// allocation ended, or the transmit queue was full when they could leave.
    pub dropped_held: u64,
}
