//! The agent's errors: misuse of the API, refused with a reason. Received datagrams never
//! produce an error: bad, stale or unauthenticated ones are counted and dropped (or handed
//! back as not ICE's).

use thiserror::Error;

/// Why an agent call was refused. None is fatal: the agent is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AgentError {
    /// No stream has this id.
    #[error("unknown stream")]
    UnknownStream,
    /// The stream was removed ([`Agent::handle_remove_stream`](crate::Agent::handle_remove_stream)).
    #[error("stream removed")]
    StreamRemoved,
    /// The stream has no component with this id.
    #[error("unknown component {0}")]
    UnknownComponent(u16),
    /// A stream needs 1 to 256 components.
    #[error("a stream has 1 to 256 components")]
    BadComponentCount,
    /// Credentials outside RFC 8839 §5.4 (ufrag 4–256, pwd 22–256 ice-chars).
    #[error("bad ICE credentials")]
    BadCredentials,
    /// Bases must be added before gathering starts.
    #[error("gathering already started")]
    GatheringStarted,
    /// The candidate's address is a host name that could not be held for resolution.
    #[error("candidate address is a host name")]
    UnresolvedHostname,
    /// Only UDP candidates are checked (TCP candidates are parsed, not used yet).
    #[error("unsupported transport")]
    UnsupportedTransport,
    /// The candidate table of the stream is full.
    #[error("too many candidates")]
    TooManyCandidates,
    /// The candidate's `ufrag` extension names other remote credentials than the current
    /// ones: a candidate of an earlier ICE generation (before a restart).
    #[error("candidate of another ICE generation (ufrag {0})")]
    StaleCandidate(String),
    /// The agent was closed.
    #[error("agent closed")]
    Closed,
}

/// Why [`Agent::send`](crate::Agent::send) refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SendError {
    /// No stream has this id.
    #[error("unknown stream")]
    UnknownStream,
    /// The stream was removed ([`Agent::handle_remove_stream`](crate::Agent::handle_remove_stream)).
    #[error("stream removed")]
    StreamRemoved,
    /// The stream has no component with this id.
    #[error("unknown component {0}")]
    UnknownComponent(u16),
    /// The component has no valid pair yet.
    #[error("no valid pair")]
    NotConnected,
    /// The component failed (checks failed, or consent expired: RFC 7675 §5.1 forbids
    /// sending).
    #[error("component failed")]
    Failed,
    /// The pair is relayed and the TURN allocation refused the data (gone, or too long).
    #[error("the TURN allocation refused the data")]
    RelayRefused,
    /// The pair is relayed and the TURN server has not confirmed the permission for the
    /// peer yet (RFC 8656 §9: it would drop the data); nothing was sent.
    #[error("the TURN permission for the peer is not confirmed yet")]
    RelayPending,
    /// The agent was closed.
    #[error("agent closed")]
    Closed,
}
