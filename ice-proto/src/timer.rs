//! The agent's timers: one variant per RFC clause that sets a deadline, named by
//! [`Agent::next_timer`](crate::Agent::next_timer) with the earliest deadline.

use std::time::Instant;

use stun_proto::time::saturating_add;

use crate::config::AgentConfig;
use crate::event::{ComponentState, ConnectionState};
use crate::stream::{Patience, Stream};

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

/// The earliest of the deadlines offered to it, and its timer.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Earliest(Option<(Timer, Instant)>);

impl Earliest {
    /// Offers `timer`'s deadline, if it has one.
    pub fn consider(&mut self, timer: Timer, at: Option<Instant>) {
        if let Some(at) = at {
            if self.0.is_none_or(|(_, b)| at < b) {
                self.0 = Some((timer, at));
            }
        }
    }

    /// The earliest deadline offered, and its timer.
    pub const fn get(self) -> Option<(Timer, Instant)> {
        self.0
    }
}

impl Stream {
    /// Offers the stream's deadlines (its check list's, its components') to `earliest`,
    /// the agent being `controlling` and in overall `state`.
    pub(crate) fn deadlines(
        &self,
        earliest: &mut Earliest,
        config: &AgentConfig,
        controlling: bool,
        state: ConnectionState,
    ) {
        earliest.consider(Timer::Retransmit, self.checklist.next_deadline());
        if let Patience::Until(at) = self.patience {
            let waiting = self
                .components
                .iter()
                .any(|c| c.selected.is_none() && c.state != ComponentState::Failed);
            if waiting {
                earliest.consider(Timer::Patience, Some(at));
            }
        }
        for c in &self.components {
            let nomination = self.nomination_deadline(c, controlling, config);
            earliest.consider(Timer::Nomination, nomination);
            if state == ConnectionState::Checking {
                // The instant its last check counts as unanswered (in the past, the state
                // would be Disconnected already).
                let hopeless = self.hopeless_since(c, config).flatten();
                earliest.consider(Timer::Disconnected, hopeless);
            }
            if c.state == ComponentState::Failed {
                continue;
            }
            if let Some(probe) = &c.probe {
                earliest.consider(Timer::Failover, Some(probe.deadline));
            }
            if let Some(consent) = &c.consent {
                earliest.consider(Timer::Consent, Some(consent.next_check_at));
                let expiry = consent.expires_at(config.consent_lifetime);
                earliest.consider(Timer::ConsentExpiry, Some(expiry));
                let stale = saturating_add(consent.last_fresh, config.disconnected_after);
                // Only from the states Disconnected is reachable from (a stale deadline in
                // the past would otherwise be a deadline nothing clears).
                let reachable = matches!(
                    state,
                    ConnectionState::Checking
                        | ConnectionState::Connected
                        | ConnectionState::Completed
                );
                if reachable {
                    earliest.consider(Timer::Disconnected, Some(stale));
                }
            } else if c.selected.is_some() && config.consent_interval.is_none() {
                let tr = config.keepalive_interval;
                let keepalive = c.last_sent.map(|t| crate::freshness::keepalive_due(t, tr));
                earliest.consider(Timer::Keepalive, keepalive);
            }
        }
    }
}
