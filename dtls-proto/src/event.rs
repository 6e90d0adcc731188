//! What a [`Dtls`](crate::Dtls) association reports: the [`Event`]s the application must act
//! on and the [`Stats`] of what it dropped.
//!
//! The engine and both roles produce these; the connection only drains them, so the types
//! live here, below all three (`connection -> engine -> event`, never back).

use crate::certificate::Fingerprint;
use crate::cipher_suite::{CipherSuite, NamedGroup, ProtocolVersion};
use crate::error::Error;
use crate::srtp::SrtpKeyingMaterial;

/// Negotiated parameters, reported once when the handshake completes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HandshakeComplete {
    /// The protocol version negotiated.
    pub version: ProtocolVersion,
    /// The cipher suite protecting records.
    pub cipher_suite: CipherSuite,
    /// The key exchange group used.
    pub group: NamedGroup,
    /// SRTP keys (RFC 5764 §4.2) when use_srtp was negotiated.
    pub srtp: Option<SrtpKeyingMaterial>,
    /// The peer's end-entity certificate (DER), already verified.
    pub peer_certificate: Vec<u8>,
    /// Its SHA-256 fingerprint.
    pub peer_fingerprint: Fingerprint,
}

/// What the application must know.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The handshake completed; application data may flow.
    Connected(Box<HandshakeComplete>),
    /// Application data from the peer.
    ApplicationData(Vec<u8>),
    /// The peer sent close_notify; we answered with ours.
    PeerClosed,
    /// A fatal fault ended the association.
    Failed(Error),
}

/// Counters of what was dropped and why (DESIGN: bad datagrams are counted, not errors).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Records parsed from datagrams.
    pub records_received: u64,
    /// Datagrams whose framing broke (the rest of the datagram was dropped).
    pub records_malformed: u64,
    /// Records rejected by the anti-replay window (RFC 6347 §4.1.2.6).
    pub records_replayed: u64,
    /// Records that failed AEAD authentication (RFC 6347 §4.1.2.7).
    pub records_failed_authentication: u64,
    /// Records of an epoch we cannot read (or application data in epoch 0).
    pub records_unexpected_epoch: u64,
    /// Handshake fragments dropped (malformed, inconsistent, beyond the reassembly bounds).
    pub fragments_dropped: u64,
    /// Times we resent a flight (timer or peer retransmission).
    pub flight_retransmits: u64,
    /// Peer retransmissions that did not trigger a resend because one was just made.
    pub retransmits_suppressed: u64,
    /// Datagrams dropped because the transmit queue was full.
    pub transmits_dropped: u64,
    /// Application data records dropped because the event queue was full.
    pub application_data_dropped: u64,
    /// Unauthenticated alerts ignored: clear-text alerts after the handshake, and during it
    /// (believed only if the peer then stays silent for a retransmission timeout).
    pub alerts_ignored: u64,
    /// Clear-text handshake messages the handshake was not waiting for (another type or
    /// epoch, a ServerHello that does not parse): unauthenticated, dropped (RFC 6347
    /// §4.1.2.7).
    pub handshake_messages_dropped: u64,
    /// DTLS 1.3 NewSessionTickets received and ignored (acknowledged; we never resume,
    /// RFC 8446 §4.6.1).
    pub session_tickets_ignored: u64,
}
