//! The agent's errors: misuse of the API, refused with a reason. Received datagrams never
//! produce an error: bad, stale or unauthenticated ones are counted and dropped (or handed
//! back as not ICE's).

use std::fmt;
use std::net::SocketAddr;

use thiserror::Error;

use crate::candidate::Transport;

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
    /// A stream needs 1 to 256 components (the count asked for).
    #[error("{0} components: a stream has 1 to 256")]
    BadComponentCount(u16),
    /// Credentials outside RFC 8839 §5.4 (ufrag 4–256, pwd 22–256 ice-chars).
    #[error("bad ICE credentials: {0}")]
    BadCredentials(#[from] CredentialError),
    /// A base with a wildcard address (`0.0.0.0`, `[::]`): it cannot be announced as a
    /// host candidate (RFC 8445 §5.1.1.1 gathers from interface addresses).
    #[error(
        "base {0} is a wildcard address: bind to, or announce, a concrete interface address \
         instead (one base per interface)"
    )]
    WildcardBase(SocketAddr),
    /// Bases must be added before gathering starts.
    #[error("gathering already started")]
    GatheringStarted,
    /// The candidate's address is a host name that could not be held for resolution.
    #[error("candidate address is a host name")]
    UnresolvedHostname,
    /// A TCP candidate without an active or passive `tcptype` (RFC 6544 §4.5): nothing to
    /// pair it with (simultaneous-open is not done).
    #[error("unsupported {} candidate: a tcptype of active or passive is needed", .0.as_str())]
    UnsupportedTransport(Transport),
    /// The candidate table of the stream is full.
    #[error("too many candidates")]
    TooManyCandidates,
    /// The agent holds this many streams already (removed ones count: ids are not reused).
    #[error("too many streams: an agent holds {0}")]
    TooManyStreams(usize),
    /// The component has this many bases already.
    #[error("too many bases: a component has at most {0}")]
    TooManyBases(usize),
    /// The candidate's `ufrag` extension names other remote credentials than the current
    /// ones: a candidate of an earlier ICE generation (before a restart).
    #[error("candidate of another ICE generation (ufrag {0})")]
    StaleCandidate(String),
    /// The agent was closed.
    #[error("agent closed")]
    Closed,
}

/// Which of the two ICE credentials (RFC 8445 §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CredentialPart {
    /// The username fragment, `ice-ufrag`.
    Ufrag,
    /// The password, `ice-pwd`.
    Pwd,
}

impl CredentialPart {
    /// The SDP attribute name: `ice-ufrag` or `ice-pwd`.
    pub const fn as_str(self) -> &'static str {
        match self {
            CredentialPart::Ufrag => "ice-ufrag",
            CredentialPart::Pwd => "ice-pwd",
        }
    }

    /// The fewest characters RFC 8839 §5.4 allows (4 for the ufrag, 22 for the password:
    /// RFC 8445 §5.3's 24 and 128 bits of randomness in base64 ice-chars).
    pub const fn min_len(self) -> usize {
        match self {
            CredentialPart::Ufrag => 4,
            CredentialPart::Pwd => 22,
        }
    }

    /// The most characters RFC 8839 §5.4 allows: 256 for both.
    pub const fn max_len(self) -> usize {
        256
    }
}

impl fmt::Display for CredentialPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an ICE ufrag or password is refused (RFC 8839 §5.4: `ice-ufrag = 4*256ice-char`,
/// `ice-pwd = 22*256ice-char`, ice-char = `A-Z a-z 0-9 + /`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// Too short or too long.
    #[error(
        "{part} is {len} characters long; RFC 8839 §5.4 wants {} to {}",
        part.min_len(),
        part.max_len()
    )]
    BadLength {
        /// Which credential.
        part: CredentialPart,
        /// Its length.
        len: usize,
    },
    /// A character outside ice-char.
    #[error("{part} contains {character:?}, not an ice-char (RFC 8839 §5.4: A-Z a-z 0-9 + /)")]
    NotIceChar {
        /// Which credential.
        part: CredentialPart,
        /// The first offending character.
        character: char,
    },
}

impl CredentialError {
    /// Checks one credential against RFC 8839 §5.4.
    pub(crate) fn check(part: CredentialPart, value: &str) -> Result<(), CredentialError> {
        if let Some(character) = value
            .chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || c == '+' || c == '/'))
        {
            return Err(CredentialError::NotIceChar { part, character });
        }
        let len = value.len();
        if !(part.min_len()..=part.max_len()).contains(&len) {
            return Err(CredentialError::BadLength { part, len });
        }
        Ok(())
    }
}

/// Why [`Agent::handle_send`](crate::Agent::handle_send) refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SendError {
    /// The stream or component cannot be named (unknown, removed) or the agent is closed:
    /// the refusal every other call of the agent gives.
    #[error(transparent)]
    Agent(#[from] AgentError),
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
    /// The pair is ICE-TCP and the datagram is longer than RFC 4571's 16-bit length can
    /// say (65 535 bytes); its length is given.
    #[error("{0} bytes do not fit one RFC 4571 frame (at most 65535)")]
    TooLarge(usize),
}
