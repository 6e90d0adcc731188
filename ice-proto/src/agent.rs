//! The ICE agent (RFC 8445): streams of components, local and remote candidates, one check
//! list per stream, the controlling/controlled role with its tie-breaker (§6.1.1, §16.1), and
//! the timers that drive gathering, checks, nomination and consent — as one sans-IO machine.
//!
//! Flow of a component (libnice's states):
//! ```text
//! Disconnected ─handle_gather─► Gathering ─first check─► Connecting ─valid pair─► Connected
//!     ─nominated pair (§8)─► Ready ─consent lost 30 s (RFC 7675)─► Failed
//!     (Connecting/Connected ─every pair failed after both sides' end of candidates─► Failed)
//! ```
//! This file holds the public face and the drive order; the rules live by RFC concept:
//! gathering (§5.1) in `gathering.rs` and `relay.rs`, pairing (§6.1.2.2) in `pairing.rs`,
//! the check list (§6.1.2–§6.1.4) in `checklist.rs`, checks (§7) in `connectivity.rs` and
//! `check.rs`, nomination and states (§8) in `nomination.rs`, consent and keepalives
//! (RFC 7675, §11) in `consent.rs`, received datagrams in `received.rs`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use rand_core::{CryptoRng, RngCore};
use stun_proto::time::saturating_add;
use stun_proto::{Transmit, TransmitRef, TransportProtocol};

use crate::candidate::{Candidate, CandidateType, Transport};
use crate::checklist::Checklist;
use crate::config::{AgentConfig, AgentStats, Timer};
use crate::error::{AgentError, SendError};
use crate::event::{ComponentState, ConnectionState, Event, Problem};
use crate::gathering::Gatherer;
use crate::received::{DropReason, Received};
use crate::relay::{FromRelay, Relay, RelayRefusal};
use crate::stream::{
    Component, Credentials, Gathering, Patience, Remote, RemoteCandidate, Stream, StreamId,
    StreamMut, StreamView,
};

/// The most datagrams queued for [`Agent::poll_transmit`]; beyond, new ones are dropped and
/// counted in [`AgentStats::dropped_transmits`].
const MAX_TRANSMITS: usize = 1_024;
/// The most events queued; beyond, new ones are dropped and counted in
/// [`AgentStats::dropped_events`].
const MAX_EVENTS: usize = 1_024;
/// The most streams an agent holds.
const MAX_STREAMS: usize = 64;

/// A sans-IO ICE agent (RFC 8445, RFC 8838 trickle, RFC 7675 consent).
///
/// # Drive loop
/// After any `handle_*` call — [`handle_gather`](Self::handle_gather),
/// [`handle_remote_credentials`](Self::handle_remote_credentials),
/// [`handle_remote_candidate`](Self::handle_remote_candidate),
/// [`handle_remote_end_of_candidates`](Self::handle_remote_end_of_candidates),
/// [`handle_datagram`](Self::handle_datagram), [`handle_timeout`](Self::handle_timeout),
/// [`handle_transport_error`](Self::handle_transport_error),
/// [`handle_restart`](Self::handle_restart),
/// [`handle_remove_stream`](Self::handle_remove_stream),
/// [`handle_close`](Self::handle_close) — send everything
/// [`poll_transmit`](Self::poll_transmit) returns and act on everything
/// [`poll_event`](Self::poll_event) returns until both give `None`; then read
/// [`poll_timeout`](Self::poll_timeout) and call `handle_timeout` when that instant comes.
/// Polls never advance time. Calling `handle_timeout` early, late or twice is harmless.
/// Application data goes out with [`send`](Self::send), which returns the datagram.
///
/// See the crate documentation for a complete example.
#[derive(Debug)]
pub struct Agent<R> {
    pub(crate) config: AgentConfig,
    pub(crate) rng: R,
    pub(crate) controlling: bool,
    pub(crate) tie_breaker: u64,
    pub(crate) streams: Vec<Stream>,
    pub(crate) gatherer: Gatherer,
    pub(crate) relays: Vec<Relay>,
    pub(crate) transmits: VecDeque<Transmit>,
    pub(crate) events: VecDeque<Event>,
    /// The next check slot (§14.2), `None` when nothing waits.
    pub(crate) next_check_at: Option<Instant>,
    /// When the last new check went out.
    pub(crate) last_check_at: Option<Instant>,
    /// The stream whose check list is served first at the next slot.
    pub(crate) round_robin: usize,
    pub(crate) state: ConnectionState,
    pub(crate) closed: bool,
    pub(crate) stats: AgentStats,
}

impl<R: RngCore + CryptoRng> Agent<R> {
    /// An agent with `config`, drawing its tie-breaker, credentials and transaction ids
    /// from `rng` (a cryptographically secure RNG: credentials are secrets).
    pub fn new(config: AgentConfig, mut rng: R) -> Self {
        let tie_breaker = rng.next_u64();
        let mut gathering = config.gathering.clone();
        gathering.pacing_interval = Some(config.ta);
        Self {
            controlling: config.controlling && !config.lite,
            tie_breaker,
            gatherer: Gatherer::new(gathering),
            relays: Vec::new(),
            config,
            rng,
            streams: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            next_check_at: None,
            last_check_at: None,
            round_robin: 0,
            state: ConnectionState::New,
            closed: false,
            stats: AgentStats::default(),
        }
    }

    /// Adds a stream of `components` components (1 to 256) with random local credentials.
    /// Ids are never reused: a removed stream still counts towards the 64 an agent holds.
    pub fn add_stream(&mut self, components: u16) -> Result<StreamId, AgentError> {
        if !(1..=256).contains(&components) {
            return Err(AgentError::BadComponentCount(components));
        }
        if self.streams.len() >= MAX_STREAMS {
            return Err(AgentError::TooManyCandidates);
        }
        let local_credentials = Credentials::random(&mut self.rng);
        let local_key = local_credentials.key()?;
        let components = (1..=components)
            .map(|id| Component {
                id,
                state: ComponentState::Disconnected,
                bases: Vec::new(),
                selected: None,
                first_valid_at: None,
                consent: None,
                last_sent: None,
                gathering_done: false,
                previous: None,
                probe: None,
            })
            .collect();
        self.streams.push(Stream {
            local_credentials,
            local_key,
            remote: None,
            components,
            local: Vec::new(),
            remote_candidates: Vec::new(),
            checklist: Checklist::new(self.config.max_pairs),
            remote_end_of_candidates: false,
            unresolved: Vec::new(),
            gathering: Gathering::NotStarted,
            prflx_count: 0,
            patience: Patience::NotStarted,
            removed: false,
        });
        Ok(StreamId(self.streams.len() - 1))
    }

    /// Sets the STUN servers used by later gathering (configuration only).
    pub fn set_stun_servers(&mut self, servers: Vec<SocketAddr>) {
        self.config.stun_servers = servers;
    }

    /// A read-only view of a stream; `None` for an unknown or removed one.
    pub fn stream(&self, id: StreamId) -> Option<StreamView<'_>> {
        self.streams
            .get(id.0)
            .filter(|st| !st.removed)
            .map(|stream| StreamView { id, stream })
    }

    /// A mutable view of a stream, to add its bases or set its credentials; `None` for an
    /// unknown or removed one.
    pub fn stream_mut(&mut self, id: StreamId) -> Option<StreamMut<'_>> {
        self.streams
            .get_mut(id.0)
            .filter(|st| !st.removed)
            .map(|stream| StreamMut { stream })
    }

    /// Starts gathering for `stream` (RFC 8445 §5.1.1): a host candidate per base at once,
    /// then a server-reflexive query per base and STUN server, paced at Ta.
    pub fn handle_gather(&mut self, now: Instant, stream: StreamId) -> Result<(), AgentError> {
        self.check_open()?;
        self.live(stream)?;
        let s = stream.0;
        let st = self.streams.get_mut(s).ok_or(AgentError::UnknownStream)?;
        if st.gathering != Gathering::NotStarted {
            return Err(AgentError::GatheringStarted);
        }
        self.gather(now, s);
        self.drive(now);
        Ok(())
    }

    /// The peer's credentials for `stream` (from its `a=ice-ufrag` and `a=ice-pwd`). Checks
    /// start with them, and so does the ICE PAC timer (RFC 8863 §4,
    /// [`AgentConfig::patience`]). Credentials other than the ones the stream has mean the
    /// peer restarted ICE (RFC 8445 §9, RFC 8839 §4.4.1.1.2): the stream restarts too, as
    /// with [`handle_restart`](Self::handle_restart), and [`Event::RemoteRestart`] asks the
    /// application to signal the stream's new credentials and candidates.
    pub fn handle_remote_credentials(
        &mut self,
        now: Instant,
        stream: StreamId,
        credentials: Credentials,
    ) -> Result<(), AgentError> {
        self.check_open()?;
        self.live(stream)?;
        let st = self
            .streams
            .get(stream.0)
            .ok_or(AgentError::UnknownStream)?;
        let key = credentials.key()?;
        let restarted = st
            .remote
            .as_ref()
            .is_some_and(|r| r.credentials != credentials);
        if restarted {
            self.handle_restart(now, stream)?;
            self.push_event(Event::RemoteRestart { stream });
        }
        let st = self
            .streams
            .get_mut(stream.0)
            .ok_or(AgentError::UnknownStream)?;
        let username = format!("{}:{}", credentials.ufrag, st.local_credentials.ufrag);
        st.remote = Some(Remote {
            credentials,
            key,
            username,
        });
        if st.patience == Patience::NotStarted {
            st.patience = Patience::Until(saturating_add(now, self.config.patience));
        }
        self.drive(now);
        Ok(())
    }

    /// A remote candidate for `stream` (signalled or trickled, RFC 8838). It is paired with
    /// the local candidates of its component (§6.1.2.2). A peer-reflexive candidate learnt
    /// at the same address takes the signalled type, priority and foundation.
    pub fn handle_remote_candidate(
        &mut self,
        now: Instant,
        stream: StreamId,
        candidate: Candidate,
    ) -> Result<(), AgentError> {
        self.check_open()?;
        self.live(stream)?;
        let s = stream.0;
        let max = self.config.max_candidates;
        let st = self.streams.get_mut(s).ok_or(AgentError::UnknownStream)?;
        if st.component(candidate.component).is_none() {
            return Err(AgentError::UnknownComponent(candidate.component));
        }
        if candidate.transport != Transport::Udp {
            return Err(AgentError::UnsupportedTransport(candidate.transport));
        }
        // Browsers tag trickled candidates with the ufrag they belong to (`ufrag KDyD`): one of
        // another generation is refused, as W3C addIceCandidate does.
        if let (Some(ufrag), Some(remote)) = (candidate.extension("ufrag"), &st.remote) {
            if ufrag != remote.credentials.ufrag {
                return Err(AgentError::StaleCandidate(ufrag.to_owned()));
            }
        }
        let Some(addr) = candidate.addr() else {
            // A host name (mDNS `.local`): kept until the caller resolves it.
            return self.hold_unresolved(s, candidate);
        };
        let known = st
            .remote_candidates
            .iter()
            .position(|r| r.addr == addr && r.candidate.component == candidate.component);
        match known {
            Some(i) => {
                let r = &mut st.remote_candidates[i];
                if r.candidate.kind == CandidateType::PeerReflexive {
                    // The peer-reflexive candidate learnt from a check is the signalled one:
                    // it takes its type, foundation and priority, and its pairs re-rank.
                    let priority = candidate.priority;
                    r.candidate = candidate;
                    r.learnt = false;
                    st.checklist
                        .update_remote_priority(i, priority, self.controlling);
                }
            }
            None => {
                if st.remote_candidates.len() >= max {
                    // Full: a signalled candidate displaces a learnt one that never worked
                    // (learnt ones displace nothing: each would start checks to its
                    // source, and a flood of them would aim those at any address).
                    let address = st
                        .evict_learnt_candidate()
                        .ok_or(AgentError::TooManyCandidates)?;
                    self.push_event(Event::Problem(Problem::PeerReflexiveCandidateEvicted {
                        stream,
                        address,
                    }));
                }
                let st = self.streams.get_mut(s).ok_or(AgentError::UnknownStream)?;
                st.remote_candidates.push(RemoteCandidate {
                    candidate,
                    addr,
                    learnt: false,
                });
                let remote = st.remote_candidates.len() - 1;
                self.pair_remote(now, s, remote);
            }
        }
        self.drive(now);
        Ok(())
    }

    /// The peer has signalled all its candidates for `stream` (`a=end-of-candidates`, RFC
    /// 8838 §13): from now on a component whose pairs all failed fails.
    pub fn handle_remote_end_of_candidates(
        &mut self,
        now: Instant,
        stream: StreamId,
    ) -> Result<(), AgentError> {
        self.check_open()?;
        self.live(stream)?;
        let st = self
            .streams
            .get_mut(stream.0)
            .ok_or(AgentError::UnknownStream)?;
        st.remote_end_of_candidates = true;
        self.drive(now);
        Ok(())
    }

    /// A datagram received on local address `destination` from `source`. STUN for the agent
    /// is consumed; anything else is returned, with its component when it arrived on a base.
    pub fn handle_datagram<'a>(
        &mut self,
        now: Instant,
        transport: TransportProtocol,
        source: SocketAddr,
        destination: SocketAddr,
        payload: &'a [u8],
    ) -> Received<'a> {
        let _ = transport;
        if self.closed {
            return Received::Dropped(DropReason::Closed);
        }
        let received = match self.offer_to_relay(now, source, destination, payload) {
            Some(FromRelay::Handled) => {
                self.pump_relays(now);
                Received::Stun
            }
            Some(FromRelay::Data {
                relayed,
                peer,
                data,
            }) => self.dispatch(now, peer, relayed, data),
            None => self.dispatch(now, source, destination, payload),
        };
        self.drive(now);
        received
    }

    /// The transport reported `destination` unreachable from `source` (an ICMP error, RFC
    /// 8445 §7.2.5.2.2): a check in flight on that path fails at once — unless its pair is
    /// valid already, since the error is unauthenticated — and so do gathering queries to
    /// that server.
    pub fn handle_transport_error(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
    ) {
        if self.closed {
            return;
        }
        // The error is unauthenticated: it fails checks of pairs not yet valid, never a
        // pair an authenticated answer made valid (consent, RFC 7675, watches those).
        for s in 0..self.streams.len() {
            // One pair per path in a check list (§6.1.2.4).
            let failed = self.streams[s].checklist.pairs().iter().find(|p| {
                p.base == source
                    && p.remote_addr == destination
                    && !p.valid
                    && matches!(p.state, crate::pair::PairState::InProgress(_))
            });
            if let Some(id) = failed.map(|p| p.id) {
                self.fail_pair(now, s, id);
            }
        }
        self.gatherer.handle_transport_error(now, destination);
        self.drive(now);
    }

    /// Time has reached [`poll_timeout`](Self::poll_timeout) (early, late or repeated calls
    /// are harmless): retransmits, paces checks, nominates, checks consent.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.drive(now);
    }

    /// Closes the agent: no more checks, consent or data; the state becomes Closed.
    pub fn handle_close(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.transmits.clear();
        for r in &mut self.relays {
            r.client.handle_close(now);
        }
        self.next_check_at = None;
        self.set_state(ConnectionState::Closed);
    }

    /// Sends application data on `component`'s selected pair — or, before nomination, on its
    /// best valid pair (RFC 8445 §12.1) — and returns the datagram to put on the wire at once.
    ///
    /// Nothing is allocated: on a direct pair the datagram borrows `payload`; on a relayed
    /// pair it is framed for the TURN server (ChannelData once a channel is bound, a Send
    /// indication before, RFC 8656 §11–§12) in a buffer the agent keeps and reuses, which
    /// grows only to the largest datagram. Send it before the next call on the agent, or keep
    /// an owned copy with [`Transmit::from`].
    pub fn send<'a>(
        &'a mut self,
        now: Instant,
        stream: StreamId,
        component: u16,
        payload: &'a [u8],
    ) -> Result<TransmitRef<'a>, SendError> {
        if self.closed {
            return Err(SendError::Closed);
        }
        if self.live(stream) == Err(AgentError::StreamRemoved) {
            return Err(SendError::StreamRemoved);
        }
        let st = self
            .streams
            .get_mut(stream.0)
            .ok_or(SendError::UnknownStream)?;
        let c = st
            .component(component)
            .ok_or(SendError::UnknownComponent(component))?;
        if c.state == ComponentState::Failed {
            return Err(SendError::Failed);
        }
        let previous = c.previous;
        let id = match c.selected {
            Some(id) => Some(id),
            None => st.checklist.best_valid(component).map(|p| p.id),
        };
        let pair = id.and_then(|id| st.checklist.get_mut(id));
        // After a restart, the previous pair until a new one is valid (§9).
        let (base, remote) = match pair {
            Some(p) => {
                p.traffic.packets_sent += 1;
                p.traffic.bytes_sent += payload.len() as u64;
                (p.base, p.remote_addr)
            }
            None => previous.ok_or(SendError::NotConnected)?,
        };
        if let Some(c) = st.component_mut(component) {
            c.last_sent = Some(now);
        }
        match self.relay_of(base) {
            Some(relay) => self
                .relay_send(now, relay, remote, payload)
                .map_err(|refusal| match refusal {
                    RelayRefusal::Pending => SendError::RelayPending,
                    RelayRefusal::Refused => SendError::RelayRefused,
                }),
            None => Ok(TransmitRef {
                transport: TransportProtocol::Udp,
                source: base,
                destination: remote,
                payload,
            }),
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits
            .pop_front()
            .or_else(|| self.gatherer.poll_transmit())
            .or_else(|| {
                self.relays
                    .iter_mut()
                    .find_map(|r| r.client.poll_transmit())
            })
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called; `None` when
    /// nothing is scheduled.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_timer().map(|(_, at)| at)
    }

    /// The earliest timer and its deadline.
    pub fn next_timer(&self) -> Option<(Timer, Instant)> {
        let mut best: Option<(Timer, Instant)> = None;
        let mut consider = |timer, at: Option<Instant>| {
            if let Some(at) = at {
                if best.is_none_or(|(_, b)| at < b) {
                    best = Some((timer, at));
                }
            }
        };
        for r in &self.relays {
            consider(Timer::Relay, r.client.poll_timeout());
        }
        if self.closed {
            return best;
        }
        consider(Timer::Gathering, self.gatherer.poll_timeout());
        consider(Timer::Pacing, self.next_check_at);
        for st in &self.streams {
            consider(Timer::Retransmit, st.checklist.next_deadline());
            if let Patience::Until(at) = st.patience {
                let waiting = st
                    .components
                    .iter()
                    .any(|c| c.selected.is_none() && c.state != ComponentState::Failed);
                if waiting {
                    consider(Timer::Patience, Some(at));
                }
            }
            for c in &st.components {
                consider(Timer::Nomination, self.nomination_deadline(st, c));
                if c.state == ComponentState::Failed {
                    continue;
                }
                if let Some(probe) = &c.probe {
                    consider(Timer::Failover, Some(probe.deadline));
                }
                if let Some(consent) = &c.consent {
                    consider(Timer::Consent, Some(consent.next_check_at));
                    let life = self.config.consent_lifetime;
                    consider(Timer::ConsentExpiry, Some(consent.expires_at(life)));
                    let stale = saturating_add(consent.last_fresh, self.config.disconnected_after);
                    // Only from the states Disconnected is reachable from (a stale deadline
                    // in the past would otherwise be a deadline nothing clears).
                    let reachable = matches!(
                        self.state,
                        ConnectionState::Checking
                            | ConnectionState::Connected
                            | ConnectionState::Completed
                    );
                    if reachable {
                        consider(Timer::Disconnected, Some(stale));
                    }
                } else if c.selected.is_some() && self.config.consent_interval.is_none() {
                    let tr = self.config.keepalive_interval;
                    consider(
                        Timer::Keepalive,
                        c.last_sent.map(|t| crate::consent::keepalive_due(t, tr)),
                    );
                }
            }
        }
        best
    }

    /// Whether the agent is controlling now (a role conflict may have switched it).
    pub const fn is_controlling(&self) -> bool {
        self.controlling
    }

    /// The agent's tie-breaker (§16.1 ICE-CONTROLLING/ICE-CONTROLLED value).
    pub const fn tie_breaker(&self) -> u64 {
        self.tie_breaker
    }

    /// The overall state (W3C `RTCIceConnectionState`).
    pub const fn state(&self) -> ConnectionState {
        self.state
    }

    /// The counters.
    pub const fn stats(&self) -> &AgentStats {
        &self.stats
    }

    /// The configuration.
    pub const fn config(&self) -> &AgentConfig {
        &self.config
    }

    /// How many streams the agent has (removed ones not counted).
    pub fn stream_count(&self) -> usize {
        self.streams.iter().filter(|st| !st.removed).count()
    }

    pub(crate) fn check_open(&self) -> Result<(), AgentError> {
        if self.closed {
            Err(AgentError::Closed)
        } else {
            Ok(())
        }
    }

    /// The index of `stream` when it exists and was not removed.
    pub(crate) fn live(&self, stream: StreamId) -> Result<usize, AgentError> {
        match self.streams.get(stream.0) {
            None => Err(AgentError::UnknownStream),
            Some(st) if st.removed => Err(AgentError::StreamRemoved),
            Some(_) => Ok(stream.0),
        }
    }

    /// Everything due at `now`, in order; run by every `handle_*`.
    pub(crate) fn drive(&mut self, now: Instant) {
        for r in &mut self.relays {
            if r.client.poll_timeout().is_some_and(|t| t <= now) {
                r.client.handle_timeout(now);
            }
        }
        if self.closed {
            return;
        }
        self.pump_relays(now);
        self.gatherer.handle_timeout(now);
        self.pump_gathering();
        self.retransmit_checks(now);
        // Before nominating and pacing: a probe that fails over queues checks.
        self.check_probes(now);
        self.nominate(now);
        self.pace_checks(now);
        self.refresh_consent(now);
        self.update_states(now);
    }

    /// Queues a datagram (bounded); one from a relayed address goes through its allocation.
    pub(crate) fn push_transmit(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        payload: Bytes,
    ) {
        let (mut source, mut destination, mut payload) = (source, destination, payload);
        // Through a TURN server over TCP, the datagram travels on that connection.
        let mut transport = TransportProtocol::Udp;
        if let Some(relay) = self.relay_of(source) {
            match self
                .relay_send(now, relay, destination, &payload)
                .map(Transmit::from)
            {
                Ok(t) => {
                    (transport, source, destination, payload) =
                        (t.transport, t.source, t.destination, t.payload);
                }
                // A first check to the peer: it leaves from the TURN client right after
                // the CreatePermission success (RFC 8656 §9), not one retransmission later.
                Err(RelayRefusal::Pending)
                    if self.relay_hold(now, relay, destination, &payload) =>
                {
                    return;
                }
                Err(_) => {
                    self.stats.dropped_transmits += 1;
                    return;
                }
            }
        }
        if self.transmits.len() >= MAX_TRANSMITS {
            self.stats.dropped_transmits += 1;
            return;
        }
        self.transmits.push_back(Transmit {
            transport,
            source,
            destination,
            payload,
        });
    }

    /// Queues an event (bounded).
    pub(crate) fn push_event(&mut self, event: Event) {
        #[cfg(feature = "tracing")]
        crate::trace::event(
            self.streams
                .first()
                .map_or("-", |s| s.local_credentials.ufrag.as_str()),
            &event,
        );
        if self.events.len() >= MAX_EVENTS {
            self.stats.dropped_events += 1;
            return;
        }
        self.events.push_back(event);
    }

    /// Changes the overall state, with an event.
    pub(crate) fn set_state(&mut self, state: ConnectionState) {
        if self.state != state {
            self.state = state;
            self.push_event(Event::ConnectionStateChanged(state));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{t0, very_early, very_late};
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    use std::time::Duration;

    type TestAgent = Agent<ChaCha20Rng>;

    fn agent(controlling: bool, seed: u64, base: &str) -> (TestAgent, StreamId) {
        let config = AgentConfig {
            controlling,
            ..AgentConfig::default()
        };
        let mut a = Agent::new(config, ChaCha20Rng::seed_from_u64(seed));
        let s = a.add_stream(1).unwrap();
        a.stream_mut(s)
            .unwrap()
            .add_base(1, base.parse().unwrap())
            .unwrap();
        (a, s)
    }

    /// Hands `x`'s candidates and datagrams to `y`; whether anything moved.
    fn exchange(now: Instant, x: &mut TestAgent, y: &mut TestAgent, sy: StreamId) -> bool {
        let mut moved = false;
        while let Some(e) = x.poll_event() {
            moved = true;
            if let Event::NewLocalCandidate { candidate, .. } = e {
                y.handle_remote_candidate(now, sy, candidate).unwrap();
            }
        }
        while let Some(t) = x.poll_transmit() {
            moved = true;
            y.handle_datagram(now, t.transport, t.source, t.destination, &t.payload);
        }
        moved
    }

    /// Wires two agents with zero latency, starting at `start`; returns when both complete.
    fn connect(start: Instant) -> (TestAgent, TestAgent, Instant) {
        let (mut a, sa) = agent(true, 1, "192.0.2.1:5000");
        let (mut b, sb) = agent(false, 2, "198.51.100.2:6000");
        let ca = a.stream(sa).unwrap().local_credentials().clone();
        let cb = b.stream(sb).unwrap().local_credentials().clone();
        a.handle_remote_credentials(start, sa, cb).unwrap();
        b.handle_remote_credentials(start, sb, ca).unwrap();
        a.handle_gather(start, sa).unwrap();
        b.handle_gather(start, sb).unwrap();
        let mut now = start;
        for _ in 0..10_000 {
            let mut moved = true;
            while moved {
                moved = false;
                moved |= exchange(now, &mut a, &mut b, sb);
                moved |= exchange(now, &mut b, &mut a, sa);
            }
            if a.state() == ConnectionState::Completed && b.state() == ConnectionState::Completed {
                return (a, b, now);
            }
            let next = [a.poll_timeout(), b.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
                .expect("something is scheduled");
            assert!(
                next >= now,
                "deadlines are never in the past of the last call"
            );
            now = next;
            a.handle_timeout(now);
            b.handle_timeout(now);
        }
        panic!("did not complete");
    }

    #[test]
    fn very_early_timestamps_are_harmless() {
        let start = very_early();
        let (mut a, _, now) = connect(start);
        assert_eq!(now - start, Duration::from_millis(50));
        // Time going backwards (a caller's bug) panics nothing either.
        a.handle_timeout(start);
        let _ = a.handle_datagram(
            start,
            TransportProtocol::Udp,
            "198.51.100.2:6000".parse().unwrap(),
            "192.0.2.1:5000".parse().unwrap(),
            b"data",
        );
        assert_eq!(a.state(), ConnectionState::Completed);
    }

    #[test]
    fn very_late_timestamps_are_harmless() {
        // Remote credentials within a second of the last representable instant used to
        // panic (the ICE PAC timer, RFC 8863 §4, is 39.5 s).
        let end = very_late();
        let start = end - Duration::from_millis(900);
        let (mut a, mut b, now) = connect(start);
        assert_eq!(now - start, Duration::from_millis(50));
        // Consent, keepalives and every other deadline fall due at the end of time, not
        // past it; driving both agents there stays bounded and panics nothing.
        let (sa, sb) = (StreamId(0), StreamId(0));
        let mut now = now;
        for _ in 0..50 {
            exchange(now, &mut a, &mut b, sb);
            exchange(now, &mut b, &mut a, sa);
            let next = [a.poll_timeout(), b.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            let Some(next) = next else { break };
            assert!(next >= now && next <= end);
            now = next;
            a.handle_timeout(now);
            b.handle_timeout(now);
        }
        assert_eq!(now, end);
        let _ = a.send(end, sa, 1, b"at the end of time");
        a.handle_restart(end, sa).unwrap();
        let fresh = b.stream(sb).unwrap().local_credentials().clone();
        a.handle_remote_credentials(end, sa, fresh).unwrap();
        a.handle_timeout(end);
        a.handle_close(end);
        assert_eq!(a.state(), ConnectionState::Closed);
    }

    #[test]
    fn timers_name_what_is_due() {
        let start = t0();
        let (a, b, now) = connect(start);
        // Completed: consent checks come next, 4–6 s after selection.
        for x in [&a, &b] {
            let (timer, at) = x.next_timer().unwrap();
            assert_eq!(timer, Timer::Consent);
            let wait = at - now;
            assert!(wait >= Duration::from_secs(4) && wait <= Duration::from_secs(6));
        }
    }

    #[test]
    fn api_misuse_is_refused_with_typed_errors() {
        let now = t0();
        let (mut a, s) = agent(true, 3, "192.0.2.1:5000");
        assert_eq!(a.add_stream(0), Err(AgentError::BadComponentCount(0)));
        assert_eq!(
            a.handle_gather(now, StreamId(9)),
            Err(AgentError::UnknownStream)
        );
        let mut c: Candidate = "candidate:1 2 udp 1 192.0.2.9 9 typ host".parse().unwrap();
        assert_eq!(
            a.handle_remote_candidate(now, s, c.clone()),
            Err(AgentError::UnknownComponent(2))
        );
        c.component = 1;
        c.transport = Transport::Tcp;
        assert_eq!(
            a.handle_remote_candidate(now, s, c.clone()),
            Err(AgentError::UnsupportedTransport(Transport::Tcp))
        );
        // A host name waits for the caller to resolve it.
        let mdns: Candidate = "candidate:1 1 udp 1 x.local 9 typ host".parse().unwrap();
        assert_eq!(a.handle_remote_candidate(now, s, mdns), Ok(()));
        assert!(std::iter::from_fn(|| a.poll_event()).any(|e| e
            == Event::ResolveHostname {
                stream: s,
                name: "x.local".into()
            }));
        a.handle_gather(now, s).unwrap();
        assert_eq!(a.handle_gather(now, s), Err(AgentError::GatheringStarted));
        // A base added after gathering waits for the next restart.
        let late: SocketAddr = "192.0.2.1:5001".parse().unwrap();
        assert_eq!(a.stream_mut(s).unwrap().add_base(1, late), Ok(()));
        assert!(
            !a.stream(s)
                .unwrap()
                .local_candidates()
                .any(|c| c.addr() == Some(late))
        );
        assert_eq!(
            a.stream_mut(s).unwrap().add_base(7, late),
            Err(AgentError::UnknownComponent(7))
        );
        assert_eq!(a.send(now, s, 1, b"x"), Err(SendError::NotConnected));
        assert_eq!(a.send(now, s, 3, b"x"), Err(SendError::UnknownComponent(3)));
        a.handle_close(now);
        assert_eq!(a.state(), ConnectionState::Closed);
        assert_eq!(a.send(now, s, 1, b"x"), Err(SendError::Closed));
        assert_eq!(a.poll_timeout(), None);
    }

    #[test]
    fn host_candidates_come_from_the_bases_with_rfc_priorities() {
        let now = t0();
        let config = AgentConfig::default();
        let mut a = Agent::new(config, ChaCha20Rng::seed_from_u64(4));
        let s = a.add_stream(2).unwrap();
        let mut view = a.stream_mut(s).unwrap();
        view.add_base(1, "[2001:db8::1]:5000".parse().unwrap())
            .unwrap();
        view.add_base(1, "192.0.2.1:5000".parse().unwrap()).unwrap();
        view.add_base(2, "192.0.2.1:5001".parse().unwrap()).unwrap();
        a.handle_gather(now, s).unwrap();
        let mut candidates = Vec::new();
        let mut done = Vec::new();
        while let Some(e) = a.poll_event() {
            match e {
                Event::NewLocalCandidate { candidate, .. } => candidates.push(candidate),
                Event::ComponentGatheringDone { component, .. } => done.push(component),
                Event::CandidateGatheringDone { .. } => done.push(0),
                _ => {}
            }
        }
        let lines: Vec<String> = candidates.iter().map(ToString::to_string).collect();
        let prio: Vec<u32> = candidates.iter().map(|c| c.priority).collect();
        // 126 << 24 | 65535 << 8 | 255 for the IPv6 base; the IPv4 base of component 1 is
        // its second (local preference 32767 − 2 × 1), that of component 2 its first.
        assert_eq!(prio, [2_130_706_431, 2_122_317_311, 2_122_317_822]);
        assert!(
            lines[0].ends_with("2001:db8::1 5000 typ host"),
            "{}",
            lines[0]
        );
        // Same type, base IP and transport: the two IPv4 candidates share a foundation.
        assert_eq!(candidates[1].foundation, candidates[2].foundation);
        assert_ne!(candidates[0].foundation, candidates[1].foundation);
        assert_eq!(done, [1, 2, 0], "no STUN server: gathering is done at once");
        assert_eq!(a.poll_transmit(), None);
    }

    #[test]
    fn tie_breaker_and_credentials_come_from_the_rng() {
        let (a, s) = agent(true, 5, "192.0.2.1:5000");
        let (b, t) = agent(true, 5, "192.0.2.1:5000");
        let (c, _) = agent(true, 6, "192.0.2.1:5000");
        assert_eq!(a.tie_breaker(), b.tie_breaker());
        assert_ne!(a.tie_breaker(), c.tie_breaker());
        assert_eq!(
            a.stream(s).unwrap().local_credentials(),
            b.stream(t).unwrap().local_credentials()
        );
    }

    /// Hands everything `x` has to `y` at `t` (streams were created in the same order on
    /// both sides, so ids match); whether anything moved. Each datagram goes to `log` with
    /// its time and sender `from`.
    fn pass(
        t: Instant,
        from: usize,
        x: &mut TestAgent,
        y: &mut TestAgent,
        log: &mut Vec<(Instant, usize, Transmit)>,
    ) -> bool {
        let mut moved = false;
        while let Some(e) = x.poll_event() {
            moved = true;
            if let Event::NewLocalCandidate { stream, candidate } = e {
                y.handle_remote_candidate(t, stream, candidate).unwrap();
            }
        }
        while let Some(d) = x.poll_transmit() {
            moved = true;
            y.handle_datagram(t, d.transport, d.source, d.destination, &d.payload);
            log.push((t, from, d));
        }
        moved
    }

    /// Two agents with two one-component streams each (ports 5000 and 5002 on both sides),
    /// credentials exchanged and gathering started at `now`.
    fn two_stream_agents(now: Instant) -> (TestAgent, TestAgent) {
        let mut agents = Vec::new();
        for (controlling, seed, ip) in [(true, 11, [192, 0, 2, 1]), (false, 12, [198, 51, 100, 2])]
        {
            let config = AgentConfig {
                controlling,
                ..AgentConfig::default()
            };
            let mut a: TestAgent = Agent::new(config, ChaCha20Rng::seed_from_u64(seed));
            for port in [5000u16, 5002] {
                let s = a.add_stream(1).unwrap();
                a.stream_mut(s)
                    .unwrap()
                    .add_base(1, (ip, port).into())
                    .unwrap();
            }
            agents.push(a);
        }
        let (mut a, mut b) = (agents.remove(0), agents.remove(0));
        for s in [StreamId(0), StreamId(1)] {
            let ca = a.stream(s).unwrap().local_credentials().clone();
            let cb = b.stream(s).unwrap().local_credentials().clone();
            assert_ne!(
                ca.ufrag,
                a.stream(StreamId(1 - s.0))
                    .unwrap()
                    .local_credentials()
                    .ufrag
            );
            a.handle_remote_credentials(now, s, cb).unwrap();
            b.handle_remote_credentials(now, s, ca).unwrap();
            a.handle_gather(now, s).unwrap();
            b.handle_gather(now, s).unwrap();
        }
        (a, b)
    }

    /// Runs two agents with zero latency from `t` until `done` holds or the next deadline
    /// passes `limit`; returns the time reached. Every datagram either sent goes to `log`
    /// with its time and sender (0 for `a`).
    fn run(
        mut t: Instant,
        limit: Instant,
        a: &mut TestAgent,
        b: &mut TestAgent,
        log: &mut Vec<(Instant, usize, Transmit)>,
        done: impl Fn(&TestAgent, &TestAgent) -> bool,
    ) -> Instant {
        loop {
            while pass(t, 0, a, b, log) | pass(t, 1, b, a, log) {}
            if done(a, b) {
                return t;
            }
            let Some(next) = [a.poll_timeout(), b.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
            else {
                return t;
            };
            if next > limit {
                return limit;
            }
            assert!(next >= t, "deadlines never go back");
            t = next;
            a.handle_timeout(t);
            b.handle_timeout(t);
        }
    }

    #[test]
    fn two_streams_connect_independently() {
        let now = t0();
        let (mut a, mut b) = two_stream_agents(now);
        let mut t = now;
        let mut log = Vec::new();
        while a.state() != ConnectionState::Completed || b.state() != ConnectionState::Completed {
            while pass(t, 0, &mut a, &mut b, &mut log) | pass(t, 1, &mut b, &mut a, &mut log) {}
            let next = [a.poll_timeout(), b.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
                .unwrap();
            assert!(next - now < Duration::from_secs(5), "completes quickly");
            t = next;
            a.handle_timeout(t);
            b.handle_timeout(t);
        }
        for (s, port) in [(StreamId(0), 5000), (StreamId(1), 5002)] {
            let pa = a.stream(s).unwrap().selected_pair(1).unwrap();
            let pb = b.stream(s).unwrap().selected_pair(1).unwrap();
            assert_eq!(pa.local.addr().unwrap().port(), port);
            assert_eq!(pa.remote.addr().unwrap().port(), port);
            assert_eq!(pb.remote.addr(), pa.local.addr());
        }
        // Per stream, A sent its first check and its nomination: four in all.
        assert_eq!(a.stats().checks_sent, 4);
    }

    /// Removing one of two connected streams at 10 s (on both sides, as after an offer
    /// that drops its m-line): nothing more is sent for it, the other keeps its selected
    /// pair, consent and data; the removed id is refused with a typed error. Started at the
    /// earliest instant, with a spurious timeout at the removal instant.
    #[test]
    fn a_removed_stream_stops_and_the_other_carries_on() {
        let start = very_early();
        let (mut a, mut b) = two_stream_agents(start);
        let mut log = Vec::new();
        let both = |x: &TestAgent, y: &TestAgent| {
            x.state() == ConnectionState::Completed && y.state() == ConnectionState::Completed
        };
        let done = run(
            start,
            start + Duration::from_secs(5),
            &mut a,
            &mut b,
            &mut log,
            both,
        );
        // Four checks paced at Ta over both streams (zero latency): 150 ms.
        assert_eq!(done - start, Duration::from_millis(150));
        let ten = start + Duration::from_secs(10);
        let t = run(done, ten, &mut a, &mut b, &mut log, |_, _| false);
        assert_eq!(t, ten);
        let kept = |x: &TestAgent| {
            let p = x.stream(StreamId(1)).unwrap().selected_pair(1).unwrap();
            (p.id, p.local.addr().unwrap(), p.remote.addr().unwrap())
        };
        let (a_kept, b_kept) = (kept(&a), kept(&b));
        let (s0, s1) = (StreamId(0), StreamId(1));
        a.handle_remove_stream(ten, s0).unwrap();
        b.handle_remove_stream(ten, s0).unwrap();
        a.handle_timeout(ten);
        b.handle_timeout(ten);
        for x in [&mut a, &mut b] {
            let events: Vec<Event> = std::iter::from_fn(|| x.poll_event()).collect();
            assert_eq!(events, [Event::StreamRemoved { stream: s0 }]);
            assert!(x.stream(s0).is_none() && x.stream_mut(s0).is_none());
            assert_eq!(x.stream_count(), 1);
            assert_eq!(
                x.handle_remove_stream(ten, s0),
                Err(AgentError::StreamRemoved)
            );
            assert_eq!(x.handle_gather(ten, s0), Err(AgentError::StreamRemoved));
            assert_eq!(x.handle_restart(ten, s0), Err(AgentError::StreamRemoved));
            assert_eq!(
                x.handle_remote_end_of_candidates(ten, s0),
                Err(AgentError::StreamRemoved)
            );
            let c: Candidate = "candidate:1 1 udp 1 203.0.113.9 9 typ host"
                .parse()
                .unwrap();
            assert_eq!(
                x.handle_remote_candidate(ten, s0, c),
                Err(AgentError::StreamRemoved)
            );
            let base = "192.0.2.1:5000".parse().unwrap();
            assert_eq!(
                x.handle_base_removed(ten, s0, 1, base),
                Err(AgentError::StreamRemoved)
            );
            assert_eq!(x.send(ten, s0, 1, b"x"), Err(SendError::StreamRemoved));
            assert_eq!(
                x.handle_remove_stream(ten, StreamId(7)),
                Err(AgentError::UnknownStream)
            );
            assert_eq!(x.state(), ConnectionState::Completed);
        }
        // A datagram for the removed stream's socket is not its data any more.
        let stray = b.handle_datagram(
            ten,
            TransportProtocol::Udp,
            "192.0.2.1:5000".parse().unwrap(),
            "198.51.100.2:5000".parse().unwrap(),
            b"late RTP",
        );
        assert_eq!(
            stray,
            Received::NotIce(crate::NotIceReason::UnknownDestination)
        );
        let before = log.len();
        let end = ten + Duration::from_secs(60);
        let t = run(ten, end, &mut a, &mut b, &mut log, |_, _| false);
        assert_eq!(t, end);
        let after = &log[before..];
        assert!(
            after.iter().all(|(_, _, d)| d.source.port() == 5002),
            "nothing is sent for the removed stream"
        );
        // Stream 1's consent checks went on every 4–6 s, both ways: 10–15 per side.
        for from in [0, 1] {
            let n = after.iter().filter(|(_, f, _)| *f == from).count();
            assert!((20..=30).contains(&n), "{n} consent requests and answers");
        }
        assert_eq!((kept(&a), kept(&b)), (a_kept, b_kept));
        assert!(both(&a, &b));
        let d = a.send(end, s1, 1, b"still flowing").unwrap();
        let r = b.handle_datagram(end, d.transport, d.source, d.destination, d.payload);
        assert!(matches!(r, Received::Data { stream, data: b"still flowing", .. } if stream == s1));
        // Spurious and time-travelling timeouts change nothing.
        a.handle_timeout(start);
        a.handle_timeout(end);
        assert_eq!(a.poll_transmit(), None);
        assert_eq!(kept(&a), a_kept);
    }

    #[test]
    fn candidates_of_another_generation_are_refused() {
        let now = t0();
        let (mut a, s) = agent(true, 21, "192.0.2.1:5000");
        let remote = Credentials::new("KDyD", "0123456789012345678901").unwrap();
        a.handle_remote_credentials(now, s, remote).unwrap();
        let line = "candidate:1 1 udp 1 203.0.113.9 9 typ host generation 0 ufrag KDyD";
        a.handle_remote_candidate(now, s, line.parse().unwrap())
            .unwrap();
        let old = "candidate:2 1 udp 1 203.0.113.9 10 typ host generation 0 ufrag OLD1";
        assert_eq!(
            a.handle_remote_candidate(now, s, old.parse().unwrap()),
            Err(AgentError::StaleCandidate("OLD1".into()))
        );
        assert_eq!(a.stream(s).unwrap().remote_candidates().count(), 1);
    }
}
