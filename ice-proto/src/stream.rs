//! Streams and components (RFC 8445 §2, §5): a stream (a media section) has ICE
//! credentials (§5.3), one check list (§6.1.2), and components numbered from 1 (RTP, RTCP…),
//! each with its bases (the caller's sockets), its candidates, its state and, once chosen,
//! its selected pair. The application reaches them through borrowed views keyed by
//! [`StreamId`]: [`Agent::stream`](crate::Agent::stream) and
//! [`Agent::stream_mut`](crate::Agent::stream_mut).

use std::net::SocketAddr;
use std::time::Instant;

use rand_core::{CryptoRng, RngCore};
use stun_proto::{IntegrityKey, TransportProtocol};

use crate::candidate::{Candidate, Transport};
use crate::checklist::{Checklist, PairId, PairState, PairStateKind};
use crate::error::{AgentError, CredentialError, CredentialPart, SendError};
use crate::freshness::Consent;
use crate::path::Path;
use crate::state::ComponentState;

/// A stream's id: its index in the agent, stable for the agent's lifetime (removing a
/// stream leaves the other ids valid and is never reused).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct StreamId(pub(crate) usize);

/// ICE credentials (RFC 8445 §5.3): the username fragment and password of one side.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Credentials {
    /// `ice-ufrag`: 4 to 256 ice-chars.
    pub ufrag: String,
    /// `ice-pwd`: 22 to 256 ice-chars.
    pub pwd: String,
}

/// The most bases (sockets) per component.
const MAX_BASES: usize = 32;

const ICE_CHARS: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

impl Credentials {
    /// Credentials checked against RFC 8839 §5.4 (ufrag 4–256, pwd 22–256 ice-chars).
    pub fn new(ufrag: &str, pwd: &str) -> Result<Self, AgentError> {
        CredentialError::check(CredentialPart::Ufrag, ufrag)?;
        CredentialError::check(CredentialPart::Pwd, pwd)?;
        Ok(Self {
            ufrag: ufrag.to_owned(),
            pwd: pwd.to_owned(),
        })
    }

    /// Checks both parts (the fields are public, so credentials built without
    /// [`Credentials::new`] are checked where the agent takes them) and derives the
    /// short-term key of the password (RFC 8489 §9.1.1).
    pub(crate) fn key(&self) -> Result<IntegrityKey, AgentError> {
        CredentialError::check(CredentialPart::Ufrag, &self.ufrag)?;
        CredentialError::check(CredentialPart::Pwd, &self.pwd)?;
        // ice-chars are printable ASCII, which OpaqueString (RFC 8265 §4.2) leaves as it is:
        // the key is the password's bytes.
        Ok(IntegrityKey::new(self.pwd.as_bytes()))
    }

    /// Random credentials: an 8-character ufrag (48 bits) and a 24-character password
    /// (144 bits), above the 24 and 128 bits RFC 8445 §5.3 requires.
    pub fn random<R: RngCore + CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut text = |n: usize| {
            let mut bytes = vec![0u8; n];
            rng.fill_bytes(&mut bytes);
            bytes
                .iter()
                .map(|b| char::from(ICE_CHARS[usize::from(b & 63)]))
                .collect::<String>()
        };
        let ufrag = text(8);
        let pwd = text(24);
        Self { ufrag, pwd }
    }
}

/// A local candidate with what the agent needs beside the signalled fields.
#[derive(Clone, Debug)]
pub(crate) struct LocalCandidate {
    /// The candidate as signalled.
    pub candidate: Candidate,
    /// Its transport address.
    pub addr: SocketAddr,
    /// Its base: the socket checks go from (§5.1.1).
    pub base: SocketAddr,
}

impl LocalCandidate {
    /// The transport of its base.
    pub fn transport(&self) -> TransportProtocol {
        match self.candidate.transport {
            Transport::Udp => TransportProtocol::Udp,
            Transport::Tcp => TransportProtocol::Tcp,
        }
    }

    /// Whether it is a UDP candidate.
    pub fn is_udp(&self) -> bool {
        self.candidate.transport == Transport::Udp
    }

    /// The path from its base to `remote`.
    pub fn path_to(&self, remote: SocketAddr) -> Path {
        Path {
            transport: self.transport(),
            base: self.base,
            remote,
        }
    }

    /// Whether a datagram on `path` arrived on its base.
    pub fn receives(&self, path: Path) -> bool {
        self.base == path.base && self.transport() == path.transport
    }
}

/// A remote candidate.
#[derive(Clone, Debug)]
pub(crate) struct RemoteCandidate {
    /// The candidate as signalled (or learnt, when peer-reflexive).
    pub candidate: Candidate,
    /// Its transport address.
    pub addr: SocketAddr,
    /// Learnt from a check (§7.3.1.3), not signalled: the first to go when the table is
    /// full ([`Stream::evict_learnt_candidate`]).
    pub learnt: bool,
}

/// The remote side's credentials and what derives from them.
#[derive(Clone, Debug)]
pub(crate) struct Remote {
    pub credentials: Credentials,
    /// The key to sign checks and verify their responses.
    pub key: IntegrityKey,
    /// USERNAME of our checks: `remote-ufrag:local-ufrag` (§7.2.2).
    pub username: String,
}

/// One component of a stream.
#[derive(Debug)]
pub(crate) struct Component {
    pub id: u16,
    pub state: ComponentState,
    /// The caller's sockets for this component, in preference order.
    pub bases: Vec<SocketAddr>,
    /// The caller's listening TCP sockets for ICE-TCP (RFC 6544, `tcp.rs`).
    pub tcp_bases: Vec<SocketAddr>,
    pub selected: Option<PairId>,
    /// When the first valid pair appeared (starts the nomination wait).
    pub first_valid_at: Option<Instant>,
    pub consent: Option<Consent>,
    /// The last send on the selected pair (for §11 keepalives).
    pub last_sent: Option<Instant>,
    pub gathering_done: bool,
    /// After an ICE restart, the previously selected path (base, remote address): data goes
    /// there until a new pair is selected (RFC 8445 §9).
    pub previous: Option<Path>,
    /// A check that the selected pair still works: on the controlled side after the peer
    /// nominated a lower pair, on the controlling side after the peer checked another
    /// pair (a failover either way, `network.rs`).
    pub probe: Option<Probe>,
}

/// A consent check sent to learn whether the selected pair still works.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Probe {
    /// When it was sent: a consent response after this proves the pair alive.
    pub sent: Instant,
    /// Without such a response by then, the pair is taken as failed (or the check is sent
    /// again, while `retries` is not zero).
    pub deadline: Instant,
    /// Consent checks still to send before giving up (the controlling side's probe
    /// retransmits: a lost answer must not move a working call).
    pub retries: u8,
}

/// Where a stream's gathering stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Gathering {
    /// `handle_gather` not called yet.
    NotStarted,
    /// Queries outstanding.
    Running,
    /// Every component is done.
    Done,
}

/// A stream (media section).
#[derive(Debug)]
pub(crate) struct Stream {
    /// Its id (its index in the agent).
    pub id: StreamId,
    pub local_credentials: Credentials,
    pub local_key: IntegrityKey,
    pub remote: Option<Remote>,
    pub components: Vec<Component>,
    pub local: Vec<LocalCandidate>,
    pub remote_candidates: Vec<RemoteCandidate>,
    pub checklist: Checklist,
    pub remote_end_of_candidates: bool,
    /// Remote candidates whose address is a host name (mDNS), until resolved.
    pub unresolved: Vec<Candidate>,
    pub gathering: Gathering,
    /// Peer-reflexive remote candidates learnt so far (names their foundations).
    pub prflx_count: u32,
    /// The ICE PAC timer (RFC 8863 §4).
    pub patience: Patience,
    /// Removed by [`Agent::handle_remove_stream`](crate::Agent::handle_remove_stream): an
    /// empty husk that keeps the other streams' ids (indices) valid.
    pub removed: bool,
}

/// A stream's ICE PAC timer (RFC 8863 §4): no component of the stream fails its checks
/// before it expires, even with an empty or exhausted check list — peer-reflexive candidates
/// may still arrive with the peer's checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Patience {
    /// Checks have not started: no remote credentials yet.
    NotStarted,
    /// Started when the remote credentials arrived; running until this instant.
    Until(Instant),
    /// Expired: a component whose pairs are exhausted may fail.
    Expired,
}

impl Stream {
    /// Stream `id` of `components` components, with random local credentials.
    pub fn new<R: RngCore + CryptoRng>(
        id: StreamId,
        components: u16,
        rng: &mut R,
        max_pairs: usize,
    ) -> Result<Self, AgentError> {
        let local_credentials = Credentials::random(rng);
        let local_key = local_credentials.key()?;
        let components = (1..=components)
            .map(|id| Component {
                id,
                state: ComponentState::Disconnected,
                bases: Vec::new(),
                tcp_bases: Vec::new(),
                selected: None,
                first_valid_at: None,
                consent: None,
                last_sent: None,
                gathering_done: false,
                previous: None,
                probe: None,
            })
            .collect();
        Ok(Self {
            id,
            local_credentials,
            local_key,
            remote: None,
            components,
            local: Vec::new(),
            remote_candidates: Vec::new(),
            checklist: Checklist::new(max_pairs),
            remote_end_of_candidates: false,
            unresolved: Vec::new(),
            gathering: Gathering::NotStarted,
            prflx_count: 0,
            patience: Patience::NotStarted,
            removed: false,
        })
    }

    /// Empties a removed stream (`Agent::handle_remove_stream`): a husk that keeps the
    /// other streams' ids valid.
    pub fn remove(&mut self, max_pairs: usize) {
        self.removed = true;
        self.remote = None;
        self.components.clear();
        self.local.clear();
        self.remote_candidates.clear();
        self.unresolved.clear();
        self.checklist = Checklist::new(max_pairs);
        self.gathering = Gathering::Done;
        self.patience = Patience::Expired;
    }

    /// Removes `base` from `component`; whether it was there.
    pub fn remove_base(&mut self, component: u16, base: SocketAddr) -> Result<bool, AgentError> {
        let c = self
            .component_mut(component)
            .ok_or(AgentError::UnknownComponent(component))?;
        let before = c.bases.len();
        c.bases.retain(|b| *b != base);
        Ok(c.bases.len() != before)
    }

    /// The bases of all its components.
    pub fn bases(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.components.iter().flat_map(|c| c.bases.iter().copied())
    }

    /// The path application data for `component` takes now — the selected pair, before
    /// nomination the best valid pair (RFC 8445 §12.1), after a restart the previous pair
    /// until a new one is valid (§9) — with `bytes` counted on it.
    pub fn send_path(
        &mut self,
        now: Instant,
        component: u16,
        bytes: usize,
    ) -> Result<Path, SendError> {
        let c = self
            .component(component)
            .ok_or(AgentError::UnknownComponent(component))?;
        if c.state == ComponentState::Failed {
            return Err(SendError::Failed);
        }
        let previous = c.previous;
        let id = match c.selected {
            Some(id) => Some(id),
            None => self.checklist.best_valid(component).map(|p| p.id()),
        };
        let path = match id.and_then(|id| self.checklist.count_sent(id, bytes)) {
            Some(path) => path,
            None => previous.ok_or(SendError::NotConnected)?,
        };
        if let Some(c) = self.component_mut(component) {
            c.last_sent = Some(now);
        }
        Ok(path)
    }

    /// A component by id.
    pub fn component(&self, id: u16) -> Option<&Component> {
        self.components.get(usize::from(id).checked_sub(1)?)
    }

    /// A component by id, mutably.
    pub fn component_mut(&mut self, id: u16) -> Option<&mut Component> {
        self.components.get_mut(usize::from(id).checked_sub(1)?)
    }

    /// Makes room in the full remote candidate table for a signalled candidate: the oldest
    /// peer-reflexive candidate learnt from a check none of whose pairs ever succeeded is
    /// forgotten, with its pairs. A flood of checks (replayed from spoofed sources, or from
    /// a peer behind a NAT that maps every packet anew) thus never locks out a candidate the
    /// peer signals later. Returns the forgotten candidate's address.
    pub fn evict_learnt_candidate(&mut self) -> Option<SocketAddr> {
        let proven = |r: usize| {
            self.checklist.pairs().iter().any(|p| {
                p.remote() == r
                    && (p.valid() || p.state() == &PairState::Succeeded || p.rtt().is_some())
            })
        };
        let i = (0..self.remote_candidates.len())
            .find(|&i| self.remote_candidates[i].learnt && !proven(i))?;
        let gone = self.remote_candidates.remove(i);
        self.checklist.remove_remote(i);
        Some(gone.addr)
    }
}

/// A read-only view of a stream.
#[derive(Clone, Copy, Debug)]
pub struct StreamView<'a> {
    pub(crate) id: StreamId,
    pub(crate) stream: &'a Stream,
}

/// What the application can read of a candidate pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairInfo<'a> {
    /// The pair's id.
    pub id: PairId,
    /// The component.
    pub component: u16,
    /// The local candidate (of the valid pair, once the check succeeded).
    pub local: &'a Candidate,
    /// The remote candidate.
    pub remote: &'a Candidate,
    /// The pair priority (§6.1.2.3).
    pub priority: u64,
    /// The state.
    pub state: PairStateKind,
    /// In the valid list.
    pub valid: bool,
    /// Nominated.
    pub nominated: bool,
    /// The round-trip time of the last check or consent check answered at its first send
    /// (W3C `currentRoundTripTime`).
    pub rtt: Option<std::time::Duration>,
    /// Application data sent and received on the pair.
    pub traffic: crate::checklist::Traffic,
}

impl<'a> StreamView<'a> {
    /// The stream's id.
    pub const fn id(&self) -> StreamId {
        self.id
    }

    /// The local credentials to signal (`a=ice-ufrag`, `a=ice-pwd`).
    pub fn local_credentials(&self) -> &'a Credentials {
        &self.stream.local_credentials
    }

    /// The remote credentials, once known.
    pub fn remote_credentials(&self) -> Option<&'a Credentials> {
        self.stream.remote.as_ref().map(|r| &r.credentials)
    }

    /// How many components the stream has.
    pub fn component_count(&self) -> u16 {
        self.stream.components.len() as u16
    }

    /// The local candidates gathered or learnt (peer-reflexive ones included).
    pub fn local_candidates(&self) -> impl Iterator<Item = &'a Candidate> + 'a {
        self.stream.local.iter().map(|l| &l.candidate)
    }

    /// The remote candidates signalled or learnt.
    pub fn remote_candidates(&self) -> impl Iterator<Item = &'a Candidate> + 'a {
        self.stream.remote_candidates.iter().map(|r| &r.candidate)
    }

    /// A component's state, `None` for an unknown component.
    pub fn component_state(&self, component: u16) -> Option<ComponentState> {
        self.stream.component(component).map(|c| c.state)
    }

    /// The check list's pairs, highest priority first.
    pub fn pairs(&self) -> impl Iterator<Item = PairInfo<'a>> + 'a {
        let stream = self.stream;
        stream.checklist.pairs().iter().filter_map(move |p| {
            let local = stream.local.get(p.valid_local().unwrap_or(p.local()))?;
            let remote = stream.remote_candidates.get(p.remote())?;
            Some(PairInfo {
                id: p.id(),
                component: p.component(),
                local: &local.candidate,
                remote: &remote.candidate,
                priority: p.priority(),
                state: p.state().public(),
                valid: p.valid(),
                nominated: p.nominated(),
                rtt: p.rtt(),
                traffic: p.traffic(),
            })
        })
    }

    /// The selected pair of `component` (§8.1.1, §8.2): local and remote candidates.
    pub fn selected_pair(&self, component: u16) -> Option<PairInfo<'a>> {
        let id = self.stream.component(component)?.selected?;
        self.pairs().find(|p| p.id == id)
    }

    /// The state of the check list.
    pub fn checklist_state(&self) -> crate::ChecklistState {
        self.stream.checklist.state
    }

    /// Pairs refused or evicted because the check list was full (§6.1.2.5).
    pub fn dropped_pairs(&self) -> u64 {
        self.stream.checklist.dropped
    }
}

/// A mutable view of a stream: configuration only (the caller's sockets, credentials).
#[derive(Debug)]
pub struct StreamMut<'a> {
    pub(crate) stream: &'a mut Stream,
}

impl StreamMut<'_> {
    /// Adds a local socket (a base, RFC 8445 §5.1.1.1) to `component`; the agent never binds
    /// or enumerates interfaces. Bases added before
    /// [`handle_gather`](crate::Agent::handle_gather) are gathered from; a base added later
    /// (a new network interface) is gathered from at the next
    /// [`handle_restart`](crate::Agent::handle_restart): once end-of-candidates is signalled,
    /// new candidates need an ICE restart (RFC 8838 §13). At most 32 bases per component.
    ///
    /// A wildcard address (`0.0.0.0`, `[::]`) is refused with [`AgentError::WildcardBase`]:
    /// a host candidate is the address of an interface (RFC 8445 §5.1.1.1), and the peer
    /// cannot send to a wildcard; bind one socket per interface address, or hand that
    /// address here while the socket stays bound to the wildcard.
    pub fn add_base(&mut self, component: u16, base: SocketAddr) -> Result<(), AgentError> {
        self.push_base(component, base, |c| &mut c.bases)
    }

    /// Adds a TCP base for ICE-TCP (RFC 6544) to `component`: the address the caller's
    /// listening TCP socket is bound to. Gathering offers a passive host candidate there and
    /// an active one (port 9) whose connections the caller opens; [`crate::tcp`] has the
    /// contract. Wildcards are refused as for [`add_base`](Self::add_base); at most 32 per
    /// component.
    pub fn add_tcp_base(&mut self, component: u16, base: SocketAddr) -> Result<(), AgentError> {
        self.push_base(component, base, |c| &mut c.tcp_bases)
    }

    /// Adds `base` to the list `list` picks of `component`, unless it is there already.
    fn push_base(
        &mut self,
        component: u16,
        base: SocketAddr,
        list: impl FnOnce(&mut Component) -> &mut Vec<SocketAddr>,
    ) -> Result<(), AgentError> {
        if base.ip().is_unspecified() {
            return Err(AgentError::WildcardBase(base));
        }
        let c = self
            .stream
            .component_mut(component)
            .ok_or(AgentError::UnknownComponent(component))?;
        let bases = list(c);
        if !bases.contains(&base) {
            if bases.len() >= MAX_BASES {
                return Err(AgentError::TooManyBases(MAX_BASES));
            }
            bases.push(base);
        }
        Ok(())
    }

    /// Removes a base (an interface that went away); its candidates go at the next
    /// [`handle_restart`](crate::Agent::handle_restart). Returns whether it was there.
    pub fn remove_base(&mut self, component: u16, base: SocketAddr) -> bool {
        self.stream.remove_base(component, base).unwrap_or(false)
    }

    /// Replaces the random local credentials (e.g. to reuse ones already signalled), before
    /// any check.
    pub fn set_local_credentials(&mut self, credentials: Credentials) -> Result<(), AgentError> {
        let key = credentials.key()?;
        self.stream.local_key = key;
        if let Some(remote) = &mut self.stream.remote {
            remote.username = format!("{}:{}", remote.credentials.ufrag, credentials.ufrag);
        }
        self.stream.local_credentials = credentials;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(u8);
    impl RngCore for Fixed {
        fn next_u32(&mut self) -> u32 {
            u32::from(self.0)
        }
        fn next_u64(&mut self) -> u64 {
            u64::from(self.0)
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for b in dest {
                *b = self.0;
                self.0 = self.0.wrapping_add(1);
            }
        }
    }
    impl CryptoRng for Fixed {}

    #[test]
    fn wildcard_bases_are_refused_with_what_to_do() {
        let mut stream = Stream::new(StreamId(0), 1, &mut Fixed(0), 100).unwrap();
        let mut view = StreamMut {
            stream: &mut stream,
        };
        for wildcard in ["0.0.0.0:5000", "[::]:5000"] {
            let wildcard: SocketAddr = wildcard.parse().unwrap();
            let refused = view.add_base(1, wildcard).unwrap_err();
            assert_eq!(refused, AgentError::WildcardBase(wildcard));
            assert!(refused.to_string().contains("concrete interface address"));
        }
        assert_eq!(view.add_base(1, "192.0.2.1:5000".parse().unwrap()), Ok(()));
        assert_eq!(
            view.add_base(1, "[2001:db8::1]:5000".parse().unwrap()),
            Ok(())
        );
    }

    #[test]
    fn random_credentials_are_valid_ice_chars() {
        let c = Credentials::random(&mut Fixed(0));
        assert_eq!(c.ufrag, "ABCDEFGH");
        assert_eq!(c.pwd.len(), 24);
        assert_eq!(Credentials::new(&c.ufrag, &c.pwd), Ok(c));
    }

    #[test]
    fn credentials_are_checked_and_the_error_says_which_part_and_why() {
        let short_ufrag = Credentials::new("abc", "0123456789012345678901").unwrap_err();
        assert_eq!(
            short_ufrag,
            AgentError::BadCredentials(CredentialError::BadLength {
                part: CredentialPart::Ufrag,
                len: 3
            })
        );
        assert_eq!(
            short_ufrag.to_string(),
            "bad ICE credentials: ice-ufrag is 3 characters long; RFC 8839 §5.4 wants 4 to 256"
        );
        let short_pwd = Credentials::new("abcd", "012345678901234567890").unwrap_err();
        assert_eq!(
            short_pwd.to_string(),
            "bad ICE credentials: ice-pwd is 21 characters long; RFC 8839 §5.4 wants 22 to 256"
        );
        let colon = Credentials::new("ab:d", "0123456789012345678901").unwrap_err();
        assert_eq!(
            colon.to_string(),
            "bad ICE credentials: ice-ufrag contains ':', not an ice-char \
             (RFC 8839 §5.4: A-Z a-z 0-9 + /)"
        );
        assert!(Credentials::new("abcd", "0123456789012345678901").is_ok());
        // Built by hand, they are checked where the agent takes them.
        let by_hand = Credentials {
            ufrag: "abcd".into(),
            pwd: "x".repeat(257),
        };
        assert_eq!(
            by_hand.key().err(),
            Some(AgentError::BadCredentials(CredentialError::BadLength {
                part: CredentialPart::Pwd,
                len: 257
            }))
        );
    }
}
