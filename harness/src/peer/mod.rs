//! A WebRTC transport as one sans-IO machine: an ICE agent (`ice-proto`) and a DTLS endpoint
//! (`dtls-proto`) composed the way a browser composes them (RFC 8445, RFC 5764, RFC 8842).
//!
//! The flow, as erizo logs it: start → credentials and candidates out (trickle, RFC 8838) →
//! remote credentials and candidates in → the ICE component is connected → DTLS starts, the
//! role from the `setup` attributes (RFC 5763 §5) → the handshake completes, the peer's
//! certificate checked against the fingerprint from signalling (RFC 8122 §5), SRTP keys
//! exported (RFC 5764 §4.2) → a pair is selected → ready. Datagrams on the ICE socket that are
//! not STUN come back from the agent and are demultiplexed by their first byte (RFC 7983):
//! DTLS records go to the DTLS endpoint, everything else is counted and dropped. Without DTLS
//! the peer carries application data on the selected pair as is.
//!
//! Data does not wait for `ready`: RFC 8445 §12 lets an agent send and receive on a valid
//! pair before nomination, and the other side (controlling, or faster) often reaches its
//! READY first and sends each datagram once. What arrives is delivered in any state, and
//! the application may answer at once — on the best valid pair, or, if the other side's
//! check succeeded before ours did, as soon as our pair is valid (DTLS records and plain
//! datagrams wait for it, bounded). With DTLS, data needs the handshake, not the nomination.
//!
//! The peer never reads a clock or touches a socket; the simulator ([`crate::nodes::PeerNode`])
//! and the real-UDP command line (`harness peer`) drive the same machine.

pub(crate) mod dtls;
mod event;
mod json;
mod signal;

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use dtls_proto::HandshakeComplete;
use ice_proto::{
    Agent, AgentConfig, Candidate, CandidateType, ComponentState, ConnectionAddress,
    Event as IceEvent, Handled, StreamId,
};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use stun_proto::{Transmit, TransportProtocol};
use thiserror::Error;

use dtls::DtlsPhase;
pub use dtls::PeerDtlsConfig;
pub use event::{DtlsRole, Event, PeerError, PeerState};
pub use json::event_json;
pub use signal::{Setup, Signal, SignalError};

/// The one ICE component a peer uses (RTP and RTCP multiplexed, RFC 5761; data on it).
const COMPONENT: u16 = 1;
/// DTLS datagrams kept while the handshake cannot start yet (the peer's fingerprint or our
/// connectivity missing), and datagrams (DTLS or plain) kept while ICE has no pair to send
/// them on.
const MAX_PENDING_DATAGRAMS: usize = 32;
/// Events and signals queued for the application.
const MAX_QUEUE: usize = 4096;

/// A peer's configuration.
#[derive(Debug)]
pub struct PeerConfig {
    /// The ICE agent's configuration: role, STUN and TURN servers, timers.
    pub ice: AgentConfig,
    /// The sockets the caller owns (bases of component 1).
    pub bases: Vec<SocketAddr>,
    /// The caller's listening TCP sockets for ICE-TCP (RFC 6544; `ice_proto::tcp` has what
    /// the caller does with them); none: UDP only.
    pub tcp_bases: Vec<SocketAddr>,
    /// Relay only (W3C `iceTransportPolicy: "relay"`): only relayed candidates are signalled
    /// and the peer exchanges datagrams with its TURN servers only — anything else it would
    /// send is dropped and anything else arriving is ignored, like a firewall around it.
    pub relay_only: bool,
    /// DTLS over the selected pair; `None` carries data as plain datagrams.
    pub dtls: Option<PeerDtlsConfig>,
}

/// Why an application command was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PeerSendError {
    /// Not started, finished or failed; with DTLS, also before the handshake completed.
    #[error("the peer is not ready (state {0})")]
    NotReady(&'static str),
    /// This many datagrams already wait for ICE's first valid pair.
    #[error("{0} datagrams already wait for a valid pair")]
    QueueFull(usize),
    /// ICE refused the datagram.
    #[error("ICE: {0}")]
    Ice(#[from] ice_proto::SendError),
    /// DTLS refused the data.
    #[error("DTLS: {0}")]
    Dtls(#[from] dtls_proto::SendError),
}

/// Why a peer could not be built.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PeerConfigError {
    /// The agent refused the stream or a base.
    #[error("ICE: {0}")]
    Ice(#[from] ice_proto::AgentError),
}

/// See the module documentation.
///
/// # Drive loop
/// Call [`handle_start`](Self::handle_start) once, then feed signals, datagrams and timeouts.
/// After every `handle_*`, drain [`poll_transmit`](Self::poll_transmit) (put each on the wire
/// from its `source` to its `destination`), [`poll_signal`](Self::poll_signal) (send each to the
/// other peer) and [`poll_event`](Self::poll_event) until `None`, then call
/// [`handle_timeout`](Self::handle_timeout) at [`poll_timeout`](Self::poll_timeout).
pub struct Peer {
    agent: Agent<ChaCha20Rng>,
    stream: StreamId,
    relay_only: bool,
    /// The TURN servers: the only remote endpoints of a relay-only peer.
    turn_servers: Vec<SocketAddr>,
    dtls_rng: ChaCha20Rng,
    dtls: DtlsPhase,
    state: PeerState,
    component_connected: bool,
    selected: bool,
    dtls_role: Option<DtlsRole>,
    /// The completed handshake: its parameters and SRTP keys.
    handshake: Option<Box<HandshakeComplete>>,
    transmits: VecDeque<Transmit>,
    /// Datagrams (DTLS records, or plain data without DTLS) waiting for a pair to send them
    /// on.
    unsent: VecDeque<Vec<u8>>,
    signals: VecDeque<Signal>,
    events: VecDeque<Event>,
    /// Datagrams dropped: not DTLS with DTLS on, outside relay-only's allowed endpoints, or
    /// DTLS datagrams beyond the bound of those waiting for a pair.
    dropped: u64,
    /// Host addresses signalled as `.local` names (draft-ietf-mmusic-mdns-ice-candidates).
    concealed: Vec<(IpAddr, String)>,
    /// Our first local ufrag, the id of the span every input runs in (see [`Self::span`]).
    id: String,
}

impl Peer {
    /// A peer drawing the agent's and the DTLS endpoint's randomness from `rng` (a CSPRNG
    /// seeded from the OS in production: ICE passwords and DTLS keys come from it).
    pub fn new(config: PeerConfig, mut rng: ChaCha20Rng) -> Result<Self, PeerConfigError> {
        let mut ice = config.ice;
        if config.relay_only {
            // The agent pairs and checks relayed candidates only: host pairs that the filter
            // below would drop never hold up nomination (they stayed "in progress" above the
            // relayed pair until the nomination wait ran out: 1.1 s to selection instead of
            // 0.1 s against libnice through a TURN server).
            ice.relay_only = true;
            ice.stun_servers.clear();
        }
        let turn_servers = ice.turn_servers.iter().map(|t| t.server).collect();
        let agent_rng = child_rng(&mut rng);
        let dtls_rng = child_rng(&mut rng);
        let mut agent = Agent::new(ice, agent_rng);
        let stream = agent.add_stream(1)?;
        if let Some(mut s) = agent.stream_mut(stream) {
            for base in &config.bases {
                s.add_base(COMPONENT, *base)?;
            }
            for base in &config.tcp_bases {
                s.add_tcp_base(COMPONENT, *base)?;
            }
        }
        // The peer's id in diagnostics: its first local ufrag (a restart does not rename it).
        let ufrag = agent
            .stream(stream)
            .map(|s| s.local_credentials().ufrag.clone())
            .unwrap_or_default();
        let dtls = match config.dtls {
            Some(config) => DtlsPhase::AwaitStart {
                config,
                remote: None,
                early: VecDeque::new(),
            },
            None => DtlsPhase::Off,
        };
        Ok(Self {
            agent,
            stream,
            relay_only: config.relay_only,
            turn_servers,
            dtls_rng,
            dtls,
            state: PeerState::Initial,
            component_connected: false,
            selected: false,
            dtls_role: None,
            handshake: None,
            transmits: VecDeque::new(),
            unsent: VecDeque::new(),
            signals: VecDeque::new(),
            events: VecDeque::new(),
            dropped: 0,
            concealed: Vec::new(),
            id: ufrag.to_string(),
        })
    }

    /// Signals host candidates on `ip` with the host name `name` (a `.local` name the caller
    /// answers mDNS queries for, e.g. with `ice_proto::MdnsResponder`) instead of the address,
    /// and hides `ip` where it would appear as the related address of a reflexive or relayed
    /// candidate, as browsers do (draft-ietf-mmusic-mdns-ice-candidates §3.1.1). Configuration:
    /// call before [`handle_start`](Self::handle_start).
    pub fn set_concealed_host(&mut self, ip: IpAddr, name: String) {
        self.concealed.push((ip, name));
    }

    /// Starts: signals our credentials (and fingerprint), starts gathering.
    pub fn handle_start(&mut self, now: Instant) {
        let _in_span = self.span().entered();
        if self.state != PeerState::Initial {
            return;
        }
        if let Some(view) = self.agent.stream(self.stream) {
            let credentials = view.local_credentials().clone();
            self.push_signal(Signal::Credentials(credentials));
        }
        if let DtlsPhase::AwaitStart { config, .. } = &self.dtls {
            let signal = Signal::Dtls {
                fingerprint: config.certificate.fingerprint(),
                setup: config.setup,
            };
            self.push_signal(signal);
        }
        self.set_state(PeerState::Started);
        // A fresh stream with its bases always gathers.
        let _ = self.agent.handle_gather(now, self.stream);
        self.drive(now);
    }

    /// A signal from the other peer. `DataDone` is the application's and ignored here.
    ///
    /// Credentials other than the ones the peer has mean the other side restarted ICE
    /// (RFC 8445 §9, RFC 8839 §4.4.1.1.2): our stream restarts too, and our new credentials
    /// are signalled ahead of the new candidates.
    pub fn handle_signal(&mut self, now: Instant, signal: Signal) {
        let _in_span = self.span().entered();
        if self.state.is_terminal() {
            return;
        }
        // The agent refuses input it cannot use (a candidate of an unsupported transport); a
        // signalling peer ignores such lines too.
        match signal {
            Signal::Credentials(c) => {
                let before = self.local_credentials();
                let _ = self.agent.handle_remote_credentials(now, self.stream, c);
                let after = self.local_credentials();
                if let Some(credentials) = after.filter(|a| before.as_ref() != Some(a)) {
                    // Before `drive` turns the restart's candidates into signals.
                    self.push_signal(Signal::Credentials(credentials));
                }
            }
            Signal::Candidate(c) => {
                let _ = self.agent.handle_remote_candidate(now, self.stream, c);
            }
            Signal::EndOfCandidates => {
                let _ = self.agent.handle_remote_end_of_candidates(now, self.stream);
            }
            Signal::Dtls { fingerprint, setup } => {
                if let DtlsPhase::AwaitStart { remote, .. } = &mut self.dtls {
                    *remote = Some((fingerprint, setup));
                }
            }
            Signal::DataDone => {}
        }
        self.drive(now);
    }

    /// A datagram that arrived on one of our bases.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        transport: TransportProtocol,
        source: SocketAddr,
        destination: SocketAddr,
        payload: &[u8],
    ) {
        let _in_span = self.span().entered();
        if self.relay_only && !self.turn_servers.contains(&source) {
            self.dropped += 1;
            return;
        }
        let data = match self
            .agent
            .handle_datagram(now, transport, source, destination, payload)
        {
            Handled::Data { data, .. } => Some(data.to_vec()),
            _ => None,
        };
        if let Some(data) = data {
            self.handle_data(now, data);
        }
        self.drive(now);
    }

    /// The answer to an `Event::Ice(ResolveHostname)`: `name` (a remote candidate's `.local`
    /// host name) is `ip`, or could not be resolved (`None`, its candidates are dropped).
    pub fn handle_resolved_hostname(&mut self, now: Instant, name: &str, ip: Option<IpAddr>) {
        let _in_span = self.span().entered();
        // Unknown names and a closed agent: nothing waits for this answer.
        let _ = self
            .agent
            .handle_resolved_hostname(now, self.stream, name, ip);
        self.drive(now);
    }

    /// Time reached [`poll_timeout`](Self::poll_timeout); early or late calls are harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        let _in_span = self.span().entered();
        self.agent.handle_timeout(now);
        if let DtlsPhase::Running(dtls) = &mut self.dtls {
            dtls.handle_timeout(now);
        }
        self.drive(now);
    }

    /// Sends application data to the peer: over DTLS when DTLS is on, as a datagram on the
    /// selected pair (before nomination, the best valid pair, RFC 8445 §12) otherwise.
    ///
    /// It does not wait for [`PeerState::Ready`]: data from the other side may come first
    /// and ask for an answer. Without DTLS, data is taken once the peer started; until ICE
    /// has a valid pair it waits (up to 32 datagrams) and leaves on the first one. With DTLS,
    /// data is taken once the handshake completed. Refused before the start, after a
    /// terminal state, and when 32 datagrams already wait.
    pub fn handle_send(&mut self, now: Instant, data: &[u8]) -> Result<(), PeerSendError> {
        let _in_span = self.span().entered();
        if self.state == PeerState::Initial || self.state.is_terminal() {
            return Err(PeerSendError::NotReady(self.state.name()));
        }
        match &mut self.dtls {
            DtlsPhase::Running(dtls) if self.handshake.is_some() => dtls.handle_send(now, data)?,
            DtlsPhase::Off if self.unsent.is_empty() => {
                match self.agent.handle_send(now, self.stream, COMPONENT, data) {
                    Ok(t) => self.transmits.push_back(Transmit::from(t)),
                    Err(e) if waits_for_pair(&e) => self.unsent.push_back(data.to_vec()),
                    Err(e) => return Err(e.into()),
                }
            }
            DtlsPhase::Off if self.unsent.len() < MAX_PENDING_DATAGRAMS => {
                self.unsent.push_back(data.to_vec());
            }
            DtlsPhase::Off => return Err(PeerSendError::QueueFull(self.unsent.len())),
            _ => return Err(PeerSendError::NotReady(self.state.name())),
        }
        self.drive(now);
        Ok(())
    }

    /// Closes: DTLS close_notify to the peer, then the agent stops. The state becomes
    /// Finished (unless it already failed).
    pub fn handle_close(&mut self, now: Instant) {
        let _in_span = self.span().entered();
        if self.state.is_terminal() {
            return;
        }
        if let DtlsPhase::Running(dtls) = &mut self.dtls {
            dtls.handle_close(now);
        }
        self.drive(now);
        self.finish(now, PeerState::Finished);
    }

    /// The next datagram to put on the wire.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        loop {
            let t = self
                .agent
                .poll_transmit()
                .or_else(|| self.transmits.pop_front())?;
            if self.relay_only && !self.turn_servers.contains(&t.destination) {
                self.dropped += 1;
                continue;
            }
            return Some(t);
        }
    }

    /// The next signal for the other peer.
    pub fn poll_signal(&mut self) -> Option<Signal> {
        self.signals.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout); `None` when nothing is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let dtls = match &self.dtls {
            DtlsPhase::Running(d) => d.poll_timeout(),
            _ => None,
        };
        [self.agent.poll_timeout(), dtls]
            .into_iter()
            .flatten()
            .min()
    }

    /// Our ICE credentials now (new ones after a restart).
    /// The span every input runs in, named by our first local ufrag: the records of the agent
    /// and of the DTLS endpoint (feature `tracing` of the protocol crates) carry it. Made per
    /// input, so that it nests in whatever span the caller is in (the simulator's virtual
    /// time, `sim{t=…}`).
    fn span(&self) -> tracing::Span {
        tracing::info_span!("peer", id = %self.id)
    }

    fn local_credentials(&self) -> Option<ice_proto::Credentials> {
        let view = self.agent.stream(self.stream)?;
        Some(view.local_credentials().clone())
    }

    /// The lifecycle state.
    pub const fn state(&self) -> &PeerState {
        &self.state
    }

    /// The ICE agent, for inspection (selected pair, statistics).
    pub const fn agent(&self) -> &Agent<ChaCha20Rng> {
        &self.agent
    }

    /// The stream the peer uses.
    pub const fn stream(&self) -> StreamId {
        self.stream
    }

    /// The selected pair and the application datagrams (DTLS, data) received on it so far:
    /// what the other side sent along the path this side sends on.
    pub fn selected_received(&self) -> Option<(ice_proto::PairId, u64)> {
        let view = self.agent.stream(self.stream)?;
        let pair = view.selected_pair(COMPONENT)?;
        Some((pair.id, pair.traffic.packets_received))
    }

    /// The selected pair's candidate types (local, remote), once there is one.
    pub fn selected_types(&self) -> Option<(CandidateType, CandidateType)> {
        let view = self.agent.stream(self.stream)?;
        let pair = view.selected_pair(COMPONENT)?;
        Some((pair.local.kind, pair.remote.kind))
    }

    /// Whether the DTLS handshake has completed (false without DTLS).
    pub const fn is_dtls_done(&self) -> bool {
        self.handshake.is_some()
    }

    /// Our DTLS role, once the handshake started.
    pub const fn dtls_role(&self) -> Option<DtlsRole> {
        self.dtls_role
    }

    /// The completed handshake: suite, group, the verified peer certificate and the SRTP
    /// keying material — `srtp.local(role == Client)` protects what we send,
    /// `srtp.remote(…)` what we receive (RFC 5764 §4.2).
    pub fn handshake(&self) -> Option<&HandshakeComplete> {
        self.handshake.as_deref()
    }

    /// The DTLS endpoint's counters (records dropped and why, retransmissions), while it
    /// runs.
    pub fn dtls_stats(&self) -> Option<dtls_proto::Stats> {
        match &self.dtls {
            DtlsPhase::Running(d) => Some(d.stats()),
            _ => None,
        }
    }

    /// Datagrams dropped by the demultiplexer, the relay-only filter, or a full queue of DTLS
    /// datagrams waiting for a pair.
    pub const fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Acts on everything the children produced until nothing moves.
    fn drive(&mut self, now: Instant) {
        loop {
            let mut moved = false;
            while let Some(e) = self.agent.poll_event() {
                moved = true;
                self.on_ice_event(now, e);
            }
            moved |= self.maybe_start_dtls(now);
            if let DtlsPhase::Running(dtls) = &mut self.dtls {
                while let Some(t) = dtls.poll_transmit() {
                    moved = true;
                    if self.unsent.len() < MAX_PENDING_DATAGRAMS {
                        self.unsent.push_back(t.payload.to_vec());
                    } else {
                        // DTLS retransmits its flight; the bound is counted, not grown.
                        self.dropped += 1;
                    }
                }
            }
            moved |= self.flush_unsent(now);
            let mut dtls_events = Vec::new();
            if let DtlsPhase::Running(dtls) = &mut self.dtls {
                while let Some(e) = dtls.poll_event() {
                    dtls_events.push(e);
                }
            }
            for e in dtls_events {
                moved = true;
                self.on_dtls_event(now, e);
            }
            self.update_ready();
            if !moved {
                return;
            }
        }
    }

    fn on_ice_event(&mut self, now: Instant, e: IceEvent) {
        match &e {
            IceEvent::NewLocalCandidate { candidate, .. }
                if !self.relay_only || candidate.kind == CandidateType::Relayed =>
            {
                let signalled = self.conceal(candidate.clone());
                self.push_signal(Signal::Candidate(signalled));
            }
            IceEvent::CandidateGatheringDone { .. } => {
                self.push_signal(Signal::EndOfCandidates);
                self.push_event(Event::Ice(Box::new(e)));
                if self.state == PeerState::Started {
                    self.set_state(PeerState::Gathered);
                }
                return;
            }
            IceEvent::ComponentStateChanged { state, reason, .. } => match state {
                ComponentState::Connected | ComponentState::Ready => {
                    self.component_connected = true;
                }
                ComponentState::Failed => {
                    let reason = reason.unwrap_or(ice_proto::FailureReason::ChecksFailed);
                    self.push_event(Event::Ice(Box::new(e)));
                    self.finish(now, PeerState::Failed(PeerError::Ice(reason)));
                    return;
                }
                _ => {}
            },
            IceEvent::NewSelectedPair { .. } => self.selected = true,
            _ => {}
        }
        self.push_event(Event::Ice(Box::new(e)));
    }

    /// The candidate as signalled: concealed host addresses replaced by their names, and
    /// removed from related addresses (0.0.0.0 port 0, as browsers write it).
    fn conceal(&self, mut candidate: Candidate) -> Candidate {
        let name_of = |address: &ConnectionAddress| match address {
            ConnectionAddress::Ip(ip) => self.concealed.iter().find(|(c, _)| c == ip),
            _ => None,
        };
        if candidate.kind == CandidateType::Host {
            if let Some((_, name)) = name_of(&candidate.address) {
                candidate.address = ConnectionAddress::Fqdn(name.clone());
            }
        } else if let Some((related, _)) = &candidate.related {
            if let Some((ip, _)) = name_of(related) {
                let unspecified = if ip.is_ipv4() {
                    IpAddr::from([0, 0, 0, 0])
                } else {
                    IpAddr::from([0u16; 8])
                };
                candidate.related = Some((ConnectionAddress::Ip(unspecified), 0));
            }
        }
        candidate
    }

    fn update_ready(&mut self) {
        let dtls_ok = matches!(self.dtls, DtlsPhase::Off) || self.handshake.is_some();
        let before = matches!(self.state, PeerState::Started | PeerState::Gathered);
        if before && self.selected && dtls_ok {
            self.set_state(PeerState::Ready);
        }
    }

    /// Enters a terminal state: the agent stops, DTLS with it.
    fn finish(&mut self, now: Instant, state: PeerState) {
        if self.state.is_terminal() {
            return;
        }
        // What DTLS queued (a close_notify, a fatal alert) goes out before ICE stops, and
        // before what stopping sends: the zero-lifetime TURN Refresh that deletes the relay a
        // close_notify leaves through (the server dropped it, and Chromium never saw our
        // close through a relay-to-relay call). `poll_transmit` serves the agent's queue
        // first, so everything leaves through `transmits`, in order.
        while let Some(t) = self.agent.poll_transmit() {
            self.transmits.push_back(t);
        }
        if let DtlsPhase::Running(dtls) = &mut self.dtls {
            while let Some(t) = dtls.poll_transmit() {
                if let Ok(t) = self
                    .agent
                    .handle_send(now, self.stream, COMPONENT, &t.payload)
                {
                    self.transmits.push_back(Transmit::from(t));
                }
            }
        }
        if !matches!(self.dtls, DtlsPhase::Off) {
            self.dtls = DtlsPhase::Done;
        }
        self.agent.handle_close(now);
        while let Some(t) = self.agent.poll_transmit() {
            self.transmits.push_back(t);
        }
        while let Some(e) = self.agent.poll_event() {
            self.push_event(Event::Ice(Box::new(e)));
        }
        self.set_state(state);
    }

    fn set_state(&mut self, state: PeerState) {
        self.state = state.clone();
        self.push_event(Event::StateChanged(state));
    }

    fn push_event(&mut self, e: Event) {
        if self.events.len() < MAX_QUEUE {
            self.events.push_back(e);
        }
    }

    fn push_signal(&mut self, s: Signal) {
        if self.signals.len() < MAX_QUEUE {
            self.signals.push_back(s);
        }
    }
}

/// Whether the agent refused a datagram only because no pair can carry it yet: no valid
/// pair, or a relayed one whose TURN permission is not confirmed.
fn waits_for_pair(e: &ice_proto::SendError) -> bool {
    matches!(
        e,
        ice_proto::SendError::NotConnected | ice_proto::SendError::RelayPending
    )
}

/// A child RNG seeded with 256 bits drawn from `rng` (ICE passwords and DTLS keys come from
/// the children: a 64-bit seed would cap their strength at 64 bits).
fn child_rng(rng: &mut ChaCha20Rng) -> ChaCha20Rng {
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    ChaCha20Rng::from_seed(seed)
}
