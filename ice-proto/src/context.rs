//! What the agent lends a stream for one call (docs/architecture.md): the instant, the
//! configuration, the RNG, the role, the counters, a read-only look at the other streams and
//! the TURN allocations, and an outbox of intents for everything a stream does not own —
//! datagrams to send (the agent routes those from a relayed address through the
//! allocation), events for the application, and the few effects on other streams or on a
//! TURN client that RFC 8445 asks for. Stream behaviour writes nothing but the stream it is
//! called on and this outbox; the agent drains the outbox after every call.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use stun_proto::backoff::Schedule;

use crate::check::DeclaredRole;
use crate::config::{AgentConfig, AgentStats};
use crate::event::Event;
use crate::path::Path;
use crate::relay::Relays;
use crate::stream::Stream;

/// The least RTO of a check (§14.3).
const MIN_RTO: Duration = Duration::from_millis(500);

/// The agent's role (§6.1.1) and its tie-breaker (§16.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Role {
    /// Controlling now (a role conflict may switch it, §7.3.1.1).
    pub controlling: bool,
    /// The ICE-CONTROLLING/ICE-CONTROLLED value.
    pub tie_breaker: u64,
}

impl Role {
    /// The role a check declares (§7.1.3).
    pub const fn declared(self) -> DeclaredRole {
        if self.controlling {
            DeclaredRole::Controlling(self.tie_breaker)
        } else {
            DeclaredRole::Controlled(self.tie_breaker)
        }
    }
}

/// What a stream asks the agent to do for it.
#[derive(Debug)]
pub(crate) enum Intent {
    /// Send `payload` on `path` (from a base, or from a relayed address).
    Send { path: Path, payload: Bytes },
    /// Tell the application.
    Event(Event),
    /// The role switched (a conflict): every other check list re-ranks its pairs.
    RoleSwitched,
    /// A pair of this foundation succeeded: it unfreezes in every check list (§7.2.5.3.3).
    Unfreeze(u64),
    /// A relayed pair was selected: its data goes as ChannelData (RFC 8656 §12).
    BindChannel {
        relayed: SocketAddr,
        peer: SocketAddr,
    },
    /// New pairs: ask the TURN permissions of the relayed ones (RFC 8656 §9).
    PermitRelayedPairs,
}

/// The streams other than the one called, read-only.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Others<'a> {
    before: &'a [Stream],
    after: &'a [Stream],
}

impl<'a> Others<'a> {
    /// The streams around index `s`: `streams` split there, and the stream itself.
    pub fn split(streams: &'a mut [Stream], s: usize) -> Option<(&'a mut Stream, Self)> {
        let (before, rest) = streams.split_at_mut(s);
        let (stream, after) = rest.split_first_mut()?;
        Some((stream, Self { before, after }))
    }

    fn iter(self) -> impl Iterator<Item = &'a Stream> {
        self.before.iter().chain(self.after)
    }

    /// Waiting and in-progress pairs of the other check lists (§14.3 counts them all).
    pub fn pending_checks(self) -> usize {
        self.iter().map(|st| st.checklist.pending_checks()).sum()
    }

    /// Whether a pair of `foundation` succeeded in another check list (§6.1.2.6).
    pub fn foundation_succeeded(self, foundation: u64) -> bool {
        self.iter()
            .any(|st| st.checklist.foundation_succeeded(foundation))
    }
}

/// The loan: everything a stream method may read or write beyond its stream.
pub(crate) struct Ctx<'a, R> {
    pub now: Instant,
    pub config: &'a AgentConfig,
    pub rng: &'a mut R,
    pub role: &'a mut Role,
    pub stats: &'a mut AgentStats,
    pub others: Others<'a>,
    pub relays: &'a Relays,
    pub out: &'a mut Vec<Intent>,
}

impl<R> Ctx<'_, R> {
    /// Queues a datagram on `path`.
    pub fn send(&mut self, path: Path, payload: Bytes) {
        self.out.push(Intent::Send { path, payload });
    }

    /// Queues an event.
    pub fn event(&mut self, event: Event) {
        self.out.push(Intent::Event(event));
    }

    /// §14.3: RTO = max(500 ms, Ta × (Waiting + In-Progress pairs of all check lists)),
    /// `own` being those of the called stream's list.
    pub fn check_rto(&self, own: usize) -> Duration {
        let n = own.saturating_add(self.others.pending_checks());
        MIN_RTO.max(
            self.config
                .ta
                .saturating_mul(u32::try_from(n).unwrap_or(u32::MAX)),
        )
    }

    /// The retransmission schedule of a check (RFC 8489 §6.2.1 with RFC 8445's Rc and Rm).
    pub const fn check_schedule(&self) -> Schedule {
        Schedule {
            request_count: self.config.check_request_count,
            last_wait_factor: self.config.check_last_wait_factor,
            max_rto: self.config.check_max_rto,
        }
    }
}
