//! The agent's timers: one variant per RFC clause that sets a deadline, named by
//! [`Agent::next_timer`](crate::Agent::next_timer) with the earliest deadline.

/// The agent's timers; each deadline lives in the object it belongs to (a pair, a
/// component, the gathering transactions) and [`Agent::next_timer`](crate::Agent::next_timer) names the earliest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Timer {
    /// RFC 8445 §14.2: the next check slot, Ta after the last one.
    Pacing,
    /// RFC 8489 §6.2.1 (stun-proto transactions): a gathering query retransmits or times out.
    Gathering,
    /// RFC 8445 §14.3: a check retransmits or times out (the deadline is in the pair).
    Retransmit,
    /// RFC 8445 §8.1.1: the controlling agent stops waiting for a better pair.
    Nomination,
    /// A probe of the selected pair (a consent check) retransmits or ends: the controlled
    /// agent's after the peer nominated a lower pair, the controlling agent's after the peer
    /// checked a lower pair (RFC 8445 §8.1.1 with RFC 7675 consent; see
    /// `Agent::handle_base_removed`).
    Failover,
    /// RFC 8863 §4: the ICE PAC timer expires; a check list may fail from then on.
    Patience,
    /// RFC 7675 §5.1: the next consent check.
    Consent,
    /// RFC 7675 §5.1: consent expires.
    ConsentExpiry,
    /// W3C `disconnected`: no consent response for a while, or, before any pair is
    /// selected, every check of a component failed or went unanswered for a while.
    Disconnected,
    /// RFC 8445 §11: a keepalive on the selected pair.
    Keepalive,
    /// RFC 8656 (stun-proto TURN client): a TURN request retransmits, or an allocation,
    /// permission or channel is refreshed.
    Relay,
}
