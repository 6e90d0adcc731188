//! What a [`Peer`](super::Peer) tells its application: the lifecycle of a WebRTC transport
//! (initial → started → gathered → ready → finished, or failed with the fault), every ICE
//! agent event for logs, the DTLS handshake's start and completion with the SRTP keys, and
//! application data.

use std::fmt;

use dtls_proto::HandshakeComplete;
use ice_proto::FailureReason;
use thiserror::Error;

use super::signal::Setup;

/// The lifecycle state of a peer, in the order a transport goes through them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerState {
    /// Created; nothing sent.
    Initial,
    /// Started: credentials signalled, gathering.
    Started,
    /// Every local candidate gathered and signalled (the local description is complete).
    Gathered,
    /// ICE selected a pair and, with DTLS, the handshake completed (SRTP keys exported):
    /// application data flows. (Ready may come before Gathered when a slow server is still
    /// being asked; Gathered is then not reported.)
    Ready,
    /// Closed by us or by the peer (DTLS close_notify).
    Finished,
    /// ICE or DTLS failed for good.
    Failed(PeerError),
}

impl PeerState {
    /// The state's name: initial, started, gathered, ready, finished or failed.
    pub const fn name(&self) -> &'static str {
        match self {
            PeerState::Initial => "initial",
            PeerState::Started => "started",
            PeerState::Gathered => "gathered",
            PeerState::Ready => "ready",
            PeerState::Finished => "finished",
            PeerState::Failed(_) => "failed",
        }
    }

    /// Finished or failed: nothing more will happen.
    pub const fn is_terminal(&self) -> bool {
        matches!(self, PeerState::Finished | PeerState::Failed(_))
    }
}

impl fmt::Display for PeerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerState::Failed(e) => write!(f, "failed: {e}"),
            other => f.write_str(other.name()),
        }
    }
}

/// Why a peer failed: the detail a user needs to act.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PeerError {
    /// ICE found no working pair, or consent expired on the selected one.
    #[error(
        "ICE failed: {}",
        match .0 {
            FailureReason::ChecksFailed => "every candidate pair failed its checks (check the other side's candidates, the NATs, and the TURN server)",
            FailureReason::ConsentExpired => "the peer stopped answering consent checks (RFC 7675)",
            _ => "the component failed",
        }
    )]
    Ice(FailureReason),
    /// Both sides signalled the same non-`actpass` DTLS role.
    #[error(
        "DTLS setup conflict: we are {local}, the peer is {remote}; one side must be active and the other passive"
    )]
    SetupConflict {
        /// Our `setup`.
        local: Setup,
        /// The peer's `setup`.
        remote: Setup,
    },
    /// The DTLS handshake or association failed; a wrong certificate fingerprint shows as
    /// `FingerprintMismatch` with both values.
    #[error("DTLS failed: {0}")]
    Dtls(#[source] dtls_proto::Error),
}

/// The DTLS role a peer took.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DtlsRole {
    /// It sends the ClientHello (`setup:active`).
    Client,
    /// It answers it (`setup:passive`).
    Server,
}

impl DtlsRole {
    /// "client" or "server".
    pub const fn as_str(self) -> &'static str {
        match self {
            DtlsRole::Client => "client",
            DtlsRole::Server => "server",
        }
    }
}

/// An event for the peer's application.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The lifecycle moved on.
    StateChanged(PeerState),
    /// An event of the ICE agent, as it came (for logs; the peer acted on it already).
    Ice(Box<ice_proto::Event>),
    /// The ICE component is connected and both fingerprints are known: the handshake starts
    /// ("DTLSRTP Start" in erizo's log).
    DtlsStarted {
        /// Our role.
        role: DtlsRole,
    },
    /// The handshake completed: the peer's certificate matched the signalled fingerprint;
    /// the SRTP keying material (RFC 5764 §4.2) is in `srtp`.
    DtlsConnected(Box<HandshakeComplete>),
    /// Application data from the peer (over DTLS when DTLS is on).
    Data(Vec<u8>),
}
