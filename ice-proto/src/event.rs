//! What the agent tells the application (DESIGN.md, "Names the user will look for"): new
//! local candidates, gathering done, component state changes with libnice's states, new
//! selected pairs, the overall state as W3C `RTCIceConnectionState`, role changes and
//! problems worth a user's attention.

use std::net::SocketAddr;

use crate::candidate::Candidate;
pub use crate::state::{ComponentState, ConnectionState, FailureReason};
use crate::stream::StreamId;

/// A problem worth the application's attention; the agent carries on.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// A STUN server did not answer a Binding request from `base` (or answered an error).
    StunServerFailed {
        /// The stream.
        stream: StreamId,
        /// The component.
        component: u16,
        /// The base the request went from.
        base: SocketAddr,
        /// The server.
        server: SocketAddr,
    },
    /// A TURN allocation from `base` failed or expired.
    TurnServerFailed {
        /// The stream.
        stream: StreamId,
        /// The component.
        component: u16,
        /// The base the allocation was asked from.
        base: SocketAddr,
        /// The server.
        server: SocketAddr,
    },
    /// The check list is full (RFC 8445 §6.1.2.5): a pair was refused or evicted.
    PairLimitReached {
        /// The stream.
        stream: StreamId,
    },
    /// A peer-reflexive remote candidate was not learnt: the candidate table is full.
    CandidateLimitReached {
        /// The stream.
        stream: StreamId,
    },
    /// The candidate table was full when a candidate was signalled: a peer-reflexive
    /// candidate learnt from a check, none of whose pairs ever succeeded, was forgotten
    /// (the oldest such) to make room.
    PeerReflexiveCandidateEvicted {
        /// The stream.
        stream: StreamId,
        /// The forgotten candidate's address.
        address: SocketAddr,
    },
}

/// An event for the application.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A local candidate to signal to the peer (trickle it or put it in the SDP).
    NewLocalCandidate {
        /// The stream.
        stream: StreamId,
        /// The candidate.
        candidate: Candidate,
    },
    /// A stream was removed ([`Agent::handle_remove_stream`](crate::Agent::handle_remove_stream)):
    /// nothing more is sent or reported for it.
    StreamRemoved {
        /// The stream (its id is not reused).
        stream: StreamId,
    },
    /// A component has gathered all its candidates.
    ComponentGatheringDone {
        /// The stream.
        stream: StreamId,
        /// The component.
        component: u16,
    },
    /// A check came from an address no signalled candidate has: a peer-reflexive remote
    /// candidate (RFC 8445 §7.3.1.3; libnice's `new-remote-candidate`). Nothing to signal.
    NewPeerReflexiveRemoteCandidate {
        /// The stream.
        stream: StreamId,
        /// The candidate learnt.
        candidate: Candidate,
    },
    /// Every component of the stream has gathered (signal `a=end-of-candidates`).
    CandidateGatheringDone {
        /// The stream.
        stream: StreamId,
    },
    /// A component changed state.
    ComponentStateChanged {
        /// The stream.
        stream: StreamId,
        /// The component.
        component: u16,
        /// The new state.
        state: ComponentState,
        /// Why, when the new state is `Failed`.
        reason: Option<FailureReason>,
    },
    /// A component has a new selected pair (RFC 8445 §8.1.1, §8.2).
    NewSelectedPair {
        /// The stream.
        stream: StreamId,
        /// The component.
        component: u16,
        /// The local candidate.
        local: Candidate,
        /// The remote candidate.
        remote: Candidate,
    },
    /// A remote candidate's address is a host name (an mDNS `.local` name): resolve it and
    /// call [`Agent::handle_resolved_hostname`](crate::Agent::handle_resolved_hostname).
    ResolveHostname {
        /// The stream.
        stream: StreamId,
        /// The name.
        name: String,
    },
    /// The overall state changed.
    ConnectionStateChanged(ConnectionState),
    /// A role conflict (RFC 8445 §7.3.1.1, §7.2.5.1) switched the agent's role.
    RoleChanged {
        /// Whether the agent is now controlling.
        controlling: bool,
    },
    /// The peer restarted ICE (new credentials in
    /// [`Agent::handle_remote_credentials`](crate::Agent::handle_remote_credentials), RFC
    /// 8445 §9): the stream restarted too; signal its new local credentials and the
    /// candidates that follow. Data keeps flowing on the previous pair until a new one is
    /// selected.
    RemoteRestart {
        /// The stream.
        stream: StreamId,
    },
    /// Something the application should know about.
    Problem(Problem),
}
