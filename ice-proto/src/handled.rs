//! What the agent did with a received datagram (DESIGN.md's one vocabulary): consumed, handed
//! back as data with its stream, component and pair, dropped with a reason, or not the
//! agent's at all.

use std::net::SocketAddr;

use crate::checklist::PairId;
use crate::stream::StreamId;

/// What [`Agent::handle_datagram`](crate::Agent::handle_datagram) did with a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Handled<'a> {
    /// A STUN message for the agent (a check, a response, a keepalive): consumed.
    Consumed,
    /// Application data (DTLS, RTP…) that arrived on a component's socket.
    Data {
        /// The stream.
        stream: StreamId,
        /// The component.
        component: u16,
        /// The pair it arrived on, when it matches a checked pair.
        pair: Option<PairId>,
        /// Where it came from.
        source: SocketAddr,
        /// The bytes (borrowed from the datagram).
        data: &'a [u8],
    },
    /// The agent's, but unusable: counted and dropped.
    Dropped(DropReason),
    /// Not the agent's: hand it to another machine (a TURN client, a STUN server…).
    NotIce(NotIceReason),
}

/// Why a datagram for the agent was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// MESSAGE-INTEGRITY or FINGERPRINT did not verify.
    BadIntegrity,
    /// A check whose USERNAME names no stream of ours, or is malformed.
    UnknownUsername,
    /// The agent is closed.
    Closed,
}

/// Why a datagram is not the agent's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotIceReason {
    /// It arrived on an address that is no base of the agent.
    UnknownDestination,
    /// A STUN method other than Binding (TURN, for instance).
    OtherMethod,
    /// A Binding response to no transaction of the agent.
    UnknownTransaction,
}
