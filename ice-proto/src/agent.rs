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
//! This file is the public face and the drive order; the agent owns its streams, the
//! gathering queries (`gathering.rs`) and the TURN allocations (`relay.rs`) by value, and
//! lends each stream a context for every call (`context.rs`). The rules live by RFC
//! concept as `Stream` methods: docs/architecture.md draws the parts and who owns whom.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use rand_core::{CryptoRng, RngCore};
use stun_proto::time::saturating_add;
use stun_proto::{Class, Message, Method, Transmit, TransmitRef, TransportProtocol, is_stun};

use crate::candidate::Candidate;
use crate::check::read_request;
use crate::checklist::Pair;
use crate::config::{AgentConfig, AgentStats};
use crate::connectivity::{Lane, Pacer};
use crate::context::{Ctx, Intent, Others, Role};
use crate::error::{AgentError, SendError};
use crate::event::{ConnectionState, Event};
use crate::gathering::{Gatherer, stun_failed};
use crate::handled::{DropReason, Handled, NotIceReason};
use crate::nomination::overall_state;
use crate::path::Path;
use crate::received::{addressee, answered};
use crate::relay::{FromRelay, Owner, RelayEvent, RelayRefusal, Relays};
use crate::stream::{
    Credentials, Gathering, Patience, Remote, Stream, StreamId, StreamMut, StreamView,
};
use crate::timer::{Earliest, Timer};

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
/// Application data goes out with [`handle_send`](Self::handle_send), which returns the
/// datagram.
///
/// See the crate documentation for a complete example.
#[derive(Debug)]
pub struct Agent<R> {
    config: AgentConfig,
    rng: R,
    role: Role,
    streams: Vec<Stream>,
    gatherer: Gatherer,
    relays: Relays,
    pacer: Pacer,
    /// What the stream called last asked for (`lend`), drained after each call.
    outbox: Vec<Intent>,
    transmits: VecDeque<Transmit>,
    /// The RFC 4571 frame of the last datagram sent on an ICE-TCP pair, reused.
    tcp_frame: Vec<u8>,
    events: VecDeque<Event>,
    state: ConnectionState,
    closed: bool,
    stats: AgentStats,
}

impl<R: RngCore + CryptoRng> Agent<R> {
    /// An agent with `config`, drawing its tie-breaker, credentials and transaction ids
    /// from `rng` (a cryptographically secure RNG: credentials are secrets).
    pub fn new(config: AgentConfig, mut rng: R) -> Self {
        let tie_breaker = rng.next_u64();
        let mut gathering = config.gathering.clone();
        gathering.pacing_interval = Some(config.ta);
        Self {
            role: Role {
                controlling: config.controlling && !config.lite,
                tie_breaker,
            },
            gatherer: Gatherer::new(gathering),
            relays: Relays::default(),
            pacer: Pacer::default(),
            outbox: Vec::new(),
            config,
            rng,
            streams: Vec::new(),
            transmits: VecDeque::new(),
            tcp_frame: Vec::new(),
            events: VecDeque::new(),
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
            return Err(AgentError::TooManyStreams(MAX_STREAMS));
        }
        let id = StreamId(self.streams.len());
        let stream = Stream::new(id, components, &mut self.rng, self.config.max_pairs)?;
        // Streams are few and large (a few hundred bytes each): room for exactly one more,
        // not the four a growing `Vec` would reserve.
        self.streams.reserve_exact(1);
        self.streams.push(stream);
        Ok(id)
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
    /// then a server-reflexive query per base and STUN server, paced at Ta, and a TURN
    /// allocation per base and TURN server.
    pub fn handle_gather(&mut self, now: Instant, stream: StreamId) -> Result<(), AgentError> {
        let s = self.live(stream)?;
        if self.streams[s].gathering != Gathering::NotStarted {
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
        let s = self.live(stream)?;
        let key = credentials.key()?;
        let restarted = self.streams[s]
            .remote
            .as_ref()
            .is_some_and(|r| r.credentials != credentials);
        if restarted {
            self.handle_restart(now, stream)?;
            self.push_event(Event::RemoteRestart { stream });
        }
        let st = &mut self.streams[s];
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
        let s = self.live(stream)?;
        self.lend(now, s, |st, ctx| st.add_remote_candidate(ctx, candidate))
            .unwrap_or(Err(AgentError::UnknownStream))?;
        self.drive(now);
        Ok(())
    }

    /// The caller resolved `name` (asked by [`Event::ResolveHostname`]) to `ip`, or could not
    /// (`None`): the remote candidates with that host name become IP candidates and are
    /// paired, or are dropped.
    pub fn handle_resolved_hostname(
        &mut self,
        now: Instant,
        stream: StreamId,
        name: &str,
        ip: Option<std::net::IpAddr>,
    ) -> Result<(), AgentError> {
        let s = self.live(stream)?;
        let matching = self.streams[s].take_unresolved(name);
        for mut candidate in matching.into_iter().filter(|_| ip.is_some()) {
            candidate.address = ip.map_or(candidate.address, crate::ConnectionAddress::Ip);
            // A refused one (table full, another generation) is dropped like a bad line.
            let _ = self.lend(now, s, |st, ctx| st.add_remote_candidate(ctx, candidate));
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
        let s = self.live(stream)?;
        self.streams[s].remote_end_of_candidates = true;
        self.drive(now);
        Ok(())
    }

    /// A datagram received over `transport` on local address `destination` from `source`.
    /// STUN for the agent is consumed; anything else is returned, with its component when
    /// it arrived on a base.
    pub fn handle_datagram<'a>(
        &mut self,
        now: Instant,
        transport: TransportProtocol,
        source: SocketAddr,
        destination: SocketAddr,
        payload: &'a [u8],
    ) -> Handled<'a> {
        if self.closed {
            return Handled::Dropped(DropReason::Closed);
        }
        let path = Path {
            transport,
            base: destination,
            remote: source,
        };
        let received = match self.relays.offer(now, path, payload) {
            Some(FromRelay::Handled) => {
                self.pump_relays(now);
                Handled::Consumed
            }
            // Relayed by the TURN server (over UDP, RFC 8656): as if it had arrived on the
            // relayed address from the peer.
            Some(FromRelay::Data {
                relayed,
                peer,
                data,
            }) => self.dispatch(now, Path::udp(relayed, peer), data),
            None => self.dispatch(now, path, payload),
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
        for s in 0..self.streams.len() {
            if let Some(id) = self.streams[s]
                .checklist
                .unproven_check(Path::udp(source, destination))
            {
                self.lend(now, s, |st, ctx| st.fail_pair(ctx, id));
            }
        }
        self.gatherer.handle_transport_error(now, destination);
        self.drive(now);
    }

    /// The interface of `base` went away (the caller closed the socket): the base is removed
    /// from `component`, its pairs and those of TURN allocations made from it fail at once,
    /// and the allocations are released. If the component's selected pair was on it, the
    /// agent fails over to the best remaining valid pair ([`Event::NewSelectedPair`],
    /// nominated when controlling), or goes back to checking the remaining pairs
    /// ([`ComponentState::Connecting`](crate::ComponentState::Connecting)). Returns whether the base was there. Adding a base
    /// takes effect at the next [`handle_restart`](Self::handle_restart).
    pub fn handle_base_removed(
        &mut self,
        now: Instant,
        stream: StreamId,
        component: u16,
        base: SocketAddr,
    ) -> Result<bool, AgentError> {
        let s = self.live(stream)?;
        if !self.streams[s].remove_base(component, base)? {
            return Ok(false);
        }
        // Allocations made from the base go with it.
        let owner = Owner {
            stream: s,
            component,
            base,
        };
        let mut gone = self.relays.retire(now, |o| o == owner);
        gone.push(base);
        self.lend(now, s, |st, ctx| st.lose_bases(ctx, component, &gone));
        self.drive(now);
        Ok(true)
    }

    /// Restarts ICE on `stream` (RFC 8445 §9): new random local credentials (read them with
    /// [`stream`](Self::stream) and signal them), the remote credentials and candidates
    /// forgotten, gathering started again ([`Event::NewLocalCandidate`] for every candidate,
    /// then the gathering-done events), the check list emptied. A component that had a
    /// selected pair keeps sending on it ([`handle_send`](Self::handle_send)) until a new
    /// pair is selected. TURN allocations survive, but for those of removed bases. Also the
    /// way out of a failed state.
    pub fn handle_restart(&mut self, now: Instant, stream: StreamId) -> Result<(), AgentError> {
        let s = self.live(stream)?;
        let credentials = Credentials::random(&mut self.rng);
        let key = credentials.key()?;
        self.lend(now, s, |st, ctx| st.restart(ctx, credentials, key));
        // Allocations of bases that were removed (an interface gone) are released.
        let st = &self.streams[s];
        let kept = |o: Owner| {
            st.component(o.component)
                .is_some_and(|c| c.bases.contains(&o.base))
        };
        self.relays.retire(now, |o| o.stream == s && !kept(o));
        self.gather(now, s);
        self.drive(now);
        Ok(())
    }

    /// Removes `stream` (its media section was rejected or removed from the session, RFC
    /// 8839 §4.2; a bundled m-line going away): its checks, consent checks, keepalives and
    /// STUN queries stop, its TURN allocations are released (a Refresh with lifetime 0,
    /// RFC 8656 §7.2), its candidates and pairs are dropped and its timers with them;
    /// [`Event::StreamRemoved`] follows. Datagrams for it are no longer answered or
    /// returned as its data. Other streams are untouched and keep their ids; later calls
    /// with this id return [`AgentError::StreamRemoved`].
    pub fn handle_remove_stream(
        &mut self,
        now: Instant,
        stream: StreamId,
    ) -> Result<(), AgentError> {
        let s = self.live(stream)?;
        self.gatherer.cancel_stream(now, s);
        self.relays.retire(now, |o| o.stream == s);
        // What the caller has not sent yet from the stream's own sockets goes too.
        let shared = |a: &SocketAddr| {
            let others = self.streams.iter().filter(|o| o.id != stream);
            others.flat_map(Stream::bases).any(|b| b == *a)
        };
        let own: Vec<SocketAddr> = self.streams[s].bases().filter(|a| !shared(a)).collect();
        self.transmits.retain(|t| !own.contains(&t.source));
        self.streams[s].remove(self.config.max_pairs);
        self.push_event(Event::StreamRemoved { stream });
        self.drive(now);
        Ok(())
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
        self.relays.close(now);
        self.pacer.stop();
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
    pub fn handle_send<'a>(
        &'a mut self,
        now: Instant,
        stream: StreamId,
        component: u16,
        payload: &'a [u8],
    ) -> Result<TransmitRef<'a>, SendError> {
        let s = self.live(stream)?;
        let path = self.streams[s].send_path(now, component, payload.len())?;
        match self.relays.relay_of(path.base) {
            Some(relay) => self
                .relays
                .send(now, relay, path.remote, payload)
                .map_err(|refusal| match refusal {
                    RelayRefusal::Pending => SendError::RelayPending,
                    RelayRefusal::Refused => SendError::RelayRefused,
                }),
            None if path.transport == TransportProtocol::Tcp => {
                // ICE-TCP: RFC 4571's length first, in a buffer the agent keeps.
                if !crate::tcp::frame_into(payload, &mut self.tcp_frame) {
                    return Err(SendError::TooLarge(payload.len()));
                }
                Ok(TransmitRef {
                    transport: path.transport,
                    source: path.base,
                    destination: path.remote,
                    payload: &self.tcp_frame,
                })
            }
            None => Ok(TransmitRef {
                transport: path.transport,
                source: path.base,
                destination: path.remote,
                payload,
            }),
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let transmit = self.transmits.pop_front();
        if transmit.is_none() {
            // As with the outbox: room for the one datagram of a consent round, not a burst.
            self.transmits.shrink_to(1);
        }
        transmit
            .or_else(|| self.gatherer.poll_transmit())
            .or_else(|| self.relays.poll_transmit())
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
        let mut earliest = Earliest::default();
        earliest.consider(Timer::Relay, self.relays.poll_timeout());
        if self.closed {
            return earliest.get();
        }
        earliest.consider(Timer::Gathering, self.gatherer.poll_timeout());
        earliest.consider(Timer::Pacing, self.pacer.next_check_at());
        for st in &self.streams {
            st.deadlines(
                &mut earliest,
                &self.config,
                self.role.controlling,
                self.state,
            );
        }
        earliest.get()
    }

    /// Whether the agent is controlling now (a role conflict may have switched it).
    pub const fn is_controlling(&self) -> bool {
        self.role.controlling
    }

    /// The agent's tie-breaker (§16.1 ICE-CONTROLLING/ICE-CONTROLLED value).
    pub const fn tie_breaker(&self) -> u64 {
        self.role.tie_breaker
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

    /// The index of `stream` when the agent is open and the stream exists and was not
    /// removed.
    fn live(&self, stream: StreamId) -> Result<usize, AgentError> {
        if self.closed {
            return Err(AgentError::Closed);
        }
        match self.streams.get(stream.0) {
            None => Err(AgentError::UnknownStream),
            Some(st) if st.removed => Err(AgentError::StreamRemoved),
            Some(_) => Ok(stream.0),
        }
    }

    /// Lends stream `s` what it needs for one call of `f` (docs/architecture.md), then
    /// carries out what the stream asked for; `None` for an unknown stream.
    fn lend<T>(
        &mut self,
        now: Instant,
        s: usize,
        f: impl FnOnce(&mut Stream, &mut Ctx<'_, R>) -> T,
    ) -> Option<T> {
        let (stream, others) = Others::split(&mut self.streams, s)?;
        let mut ctx = Ctx {
            now,
            config: &self.config,
            rng: &mut self.rng,
            role: &mut self.role,
            stats: &mut self.stats,
            others,
            relays: &self.relays,
            out: &mut self.outbox,
        };
        let value = f(stream, &mut ctx);
        let mut outbox = std::mem::take(&mut self.outbox);
        for intent in outbox.drain(..) {
            match intent {
                Intent::Send { path, payload } => self.push_transmit(now, path, payload),
                Intent::Event(event) => self.push_event(event),
                Intent::RoleSwitched => (self.streams.iter_mut())
                    .for_each(|st| st.checklist.set_role(self.role.controlling)),
                Intent::Unfreeze(foundation) => {
                    (self.streams.iter_mut()).for_each(|st| st.checklist.unfreeze(foundation))
                }
                Intent::BindChannel { relayed, peer } => self.relays.bind(now, relayed, peer),
                Intent::PermitRelayedPairs => self.relays.permit_pairs(now, &self.streams[s]),
            }
        }
        // The drained outbox keeps room for one intent, what the usual call of a connected
        // agent queues (a consent check, its answer); a burst's room (gathering, the checks)
        // goes back, or every connected agent would keep it (4 intents, 1,152 bytes).
        outbox.shrink_to(1);
        self.outbox = outbox;
        Some(value)
    }

    /// A datagram that arrived on `path` (its base is ours, or a relayed address).
    fn dispatch<'a>(&mut self, now: Instant, path: Path, payload: &'a [u8]) -> Handled<'a> {
        let message = is_stun(payload)
            .then(|| Message::parse(payload).ok())
            .flatten();
        let Some(message) = message else {
            let data = self
                .streams
                .iter_mut()
                .find_map(|st| st.data(path, payload));
            return data.unwrap_or(Handled::NotIce(NotIceReason::UnknownDestination));
        };
        if message.method() != Method::BINDING {
            return Handled::NotIce(NotIceReason::OtherMethod);
        }
        match message.class() {
            Class::Request => {
                let check = read_request(&message).ok();
                let owner = check.as_ref().and_then(|c| addressee(&self.streams, c));
                let (Some(check), Some(s)) = (check, owner) else {
                    self.stats.unknown_username += 1;
                    return Handled::Dropped(DropReason::UnknownUsername);
                };
                self.lend(now, s, |st, ctx| {
                    st.handle_check_request(ctx, path, &message, &check)
                })
                .unwrap_or(Handled::Consumed)
            }
            Class::Indication => Handled::Consumed,
            Class::Success | Class::Error => {
                if let Some((s, answers)) = answered(&self.streams, &message) {
                    return self
                        .lend(now, s, |st, ctx| {
                            st.handle_check_response(ctx, answers, path, &message)
                        })
                        .unwrap_or(Handled::Consumed);
                }
                if self.gatherer.handle_response(now, path, &message) {
                    Handled::Consumed
                } else {
                    Handled::NotIce(NotIceReason::UnknownTransaction)
                }
            }
        }
    }

    /// Gathers for stream `s` (§5.1.1): a host candidate per base at once, then a
    /// server-reflexive query per base and STUN server and a TURN allocation per base and
    /// TURN server (an existing allocation, after a restart, gives its candidates at once).
    fn gather(&mut self, now: Instant, s: usize) {
        let bases = self
            .lend(now, s, |st, ctx| st.start_gathering(ctx))
            .unwrap_or_default();
        for (component, index, base) in bases {
            self.lend(now, s, |st, ctx| st.add_host(ctx, component, index, base));
            if self.config.lite {
                // §2.5: a lite agent has host candidates only.
                continue;
            }
            // With `relay_only`, reflexive candidates would not be signalled: no queries.
            let servers: Vec<SocketAddr> = (self.config.stun_servers.iter().copied())
                .filter(|server| !self.config.relay_only && server.is_ipv4() == base.is_ipv4())
                .collect();
            for server in servers {
                let started = self
                    .gatherer
                    .start(now, &mut self.rng, s, component, base, server);
                if started.is_err() {
                    let problem = stun_failed(s, component, base, server);
                    self.push_event(Event::Problem(problem));
                }
            }
            let owner = Owner {
                stream: s,
                component,
                base,
            };
            let existing = self.relays.of_owner(owner);
            if existing.is_empty() {
                let refused = self.relays.start(now, &mut self.rng, &self.config, owner);
                for server in refused {
                    self.push_event(Event::Problem(owner.failed(server)));
                }
            }
            for i in existing {
                // An ICE restart keeps the allocations: their candidates again.
                self.add_relay_candidates(now, i);
            }
        }
        // ICE-TCP host candidates (RFC 6544 §4.5), after the UDP ones so that the peer
        // checks those first; a lite agent has none (it opens no connections).
        if !self.config.lite && !self.config.relay_only {
            self.lend(now, s, |st, ctx| st.add_tcp_hosts(ctx));
        }
    }

    /// Turns finished gathering queries into candidates and gathering-done events.
    fn pump_gathering(&mut self, now: Instant) {
        while let Some(found) = self.gatherer.poll_outcome() {
            if found.mapped.is_none() {
                self.push_event(Event::Problem(found.failed()));
                continue;
            }
            self.lend(now, found.stream, |st, ctx| st.add_reflexive(ctx, &found));
        }
        for s in 0..self.streams.len() {
            let (gatherer, relays) = (&self.gatherer, &self.relays);
            let pending: Vec<u16> = (self.streams[s].components.iter().map(|c| c.id))
                .filter(|&c| relays.is_pending(s, c) || gatherer.is_pending(s, c))
                .collect();
            self.lend(now, s, |st, ctx| st.update_gathering(ctx, &pending));
        }
    }

    /// Turns what became of TURN allocations into candidates and problems.
    fn pump_relays(&mut self, now: Instant) {
        while let Some(event) = self.relays.poll_event() {
            match event {
                RelayEvent::Allocated(i) => self.add_relay_candidates(now, i),
                RelayEvent::Failed { owner, server } => {
                    if self.streams.get(owner.stream).is_some_and(|st| !st.removed) {
                        self.push_event(Event::Problem(owner.failed(server)));
                    }
                }
                RelayEvent::PermissionRefused { relayed, peer } => {
                    for s in 0..self.streams.len() {
                        self.lend(now, s, |st, ctx| st.lose_relayed_peer(ctx, relayed, peer));
                    }
                }
            }
        }
    }

    /// The candidates of allocation `i` join its stream, and its relayed pairs' peers are
    /// permitted.
    fn add_relay_candidates(&mut self, now: Instant, i: usize) {
        let Some(found) = self.relays.allocation(i) else {
            return;
        };
        let s = found.owner.stream;
        self.lend(now, s, |st, ctx| st.add_relayed(ctx, &found));
        if let Some(st) = self.streams.get(s) {
            self.relays.permit_pairs(now, st);
        }
    }

    /// Everything due at `now`, in order; run by every `handle_*`.
    fn drive(&mut self, now: Instant) {
        self.relays.handle_timeout(now);
        if self.closed {
            return;
        }
        self.pump_relays(now);
        self.gatherer.handle_timeout(now);
        self.pump_gathering(now);
        for s in 0..self.streams.len() {
            self.lend(now, s, |st, ctx| st.retransmit_checks(ctx));
        }
        // Before nominating and pacing: a probe that fails over queues checks.
        for s in 0..self.streams.len() {
            self.lend(now, s, |st, ctx| st.check_probes(ctx));
        }
        for s in 0..self.streams.len() {
            self.lend(now, s, |st, ctx| st.nominate(ctx));
        }
        let controlling = self.role.controlling;
        for lane in Lane::ALL {
            // A relayed check whose peer's permission is still being asked for would only
            // wait in the TURN client: it yields its slot to a pair that can go now
            // (`Relays::awaits_permission`).
            let relays = &self.relays;
            let held = |p: &Pair| relays.awaits_permission(p.base(), p.remote_addr().ip());
            let due = (self.pacer).due(
                now,
                lane,
                &mut self.streams,
                held,
                controlling,
                &self.config,
            );
            if let Some((s, id)) = due {
                self.lend(now, s, |st, ctx| st.send_check(ctx, id));
            }
        }
        for s in 0..self.streams.len() {
            self.lend(now, s, |st, ctx| st.refresh_consent(ctx));
        }
        for s in 0..self.streams.len() {
            self.lend(now, s, |st, ctx| st.update_states(ctx));
        }
        let state = overall_state(&self.streams, &self.config, now, self.closed);
        self.set_state(state);
    }

    /// Queues a datagram (bounded); one from a relayed address goes through its allocation.
    fn push_transmit(&mut self, now: Instant, path: Path, payload: Bytes) {
        // A TCP path is always ICE-TCP (relayed candidates are UDP whatever carries them to
        // the TURN server): the stream needs RFC 4571's length first.
        let payload = if path.transport == TransportProtocol::Tcp {
            let mut framed = Vec::with_capacity(payload.len() + 2);
            if !crate::tcp::frame_into(&payload, &mut framed) {
                self.stats.dropped_transmits += 1;
                return;
            }
            Bytes::from(framed)
        } else {
            payload
        };
        match self.relays.route(now, path, payload) {
            Ok(Some(t)) if self.transmits.len() < MAX_TRANSMITS => self.transmits.push_back(t),
            // Held by the TURN client until the peer's permission is confirmed.
            Ok(None) => {}
            Ok(Some(_)) | Err(_) => self.stats.dropped_transmits += 1,
        }
    }

    /// Queues an event (bounded).
    fn push_event(&mut self, event: Event) {
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
    fn set_state(&mut self, state: ConnectionState) {
        if self.state != state {
            self.state = state;
            self.push_event(Event::ConnectionStateChanged(state));
        }
    }
}

#[cfg(test)]
mod tests;
