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
use crate::config::{AgentConfig, AgentStats};
use crate::error::{AgentError, SendError};
use crate::event::{ComponentState, ConnectionState, Event, Problem};
use crate::gathering::Gatherer;
use crate::received::{DropReason, Received};
use crate::relay::{FromRelay, Relay, RelayRefusal};
use crate::stream::{
    Component, Credentials, Gathering, Patience, Remote, RemoteCandidate, Stream, StreamId,
    StreamMut, StreamView,
};
use crate::timer::Timer;

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
        // Streams are few and large (a few hundred bytes each): room for exactly one more,
        // not the four a growing `Vec` would reserve.
        self.streams.reserve_exact(1);
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
                p.base() == source
                    && p.remote_addr() == destination
                    && !p.valid()
                    && matches!(p.state(), crate::checklist::PairState::InProgress(_))
            });
            if let Some(id) = failed.map(|p| p.id()) {
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
            None => st.checklist.best_valid(component).map(|p| p.id()),
        };
        // After a restart, the previous pair until a new one is valid (§9).
        let (base, remote) = match id.and_then(|id| st.checklist.count_sent(id, payload.len())) {
            Some(path) => path,
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
        let event = self.events.pop_front();
        if event.is_none() && self.events.capacity() > 0 {
            // Events come in bursts (gathering, selection, a state change); a connected
            // agent goes long without one, so the drained queue gives its memory back.
            self.events = VecDeque::new();
        }
        event
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
                if self.state == ConnectionState::Checking {
                    // The instant its last check counts as unanswered (in the past, the
                    // state would be Disconnected already).
                    consider(Timer::Disconnected, self.hopeless_since(st, c).flatten());
                }
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
mod tests;
