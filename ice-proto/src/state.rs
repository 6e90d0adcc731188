//! The states the agent reports: a component's, with libnice's names, the overall one as W3C
//! `RTCIceConnectionState`, and why a component failed. Plain values that the streams hold
//! and the events carry.

use thiserror::Error;

/// The state of a component, with libnice's names (`NiceComponentState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ComponentState {
    /// Nothing started.
    Disconnected,
    /// Gathering candidates.
    Gathering,
    /// Connectivity checks are running.
    Connecting,
    /// At least one valid pair: data can flow (on the best valid pair until one is selected).
    Connected,
    /// A pair is selected (nominated) for the component.
    Ready,
    /// No pair can work: checks failed, or consent expired (RFC 7675).
    Failed,
}

/// The agent's overall state, as W3C `RTCIceConnectionState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnectionState {
    /// No component is checking yet.
    New,
    /// Some component is checking and none has failed.
    Checking,
    /// Every component has a usable pair; checks may continue.
    Connected,
    /// Every component has a selected pair.
    Completed,
    /// Some selected pair has had no consent response for a while (not yet expired).
    Disconnected,
    /// Some component failed.
    Failed,
    /// The agent was closed.
    Closed,
}

/// Why a component failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Error)]
#[non_exhaustive]
pub enum FailureReason {
    /// Every pair failed after local gathering and the remote end-of-candidates.
    #[error("every candidate pair failed its checks")]
    ChecksFailed,
    /// RFC 7675: no consent response for the consent lifetime (30 s).
    #[error("consent expired: no answer to consent checks for 30 s (RFC 7675 §5.1)")]
    ConsentExpired,
}
