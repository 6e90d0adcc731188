//! The SFU shape: one sans-IO endpoint answering ICE-lite (RFC 8445 §2.5) for many sessions
//! on shared local ports, as an SFU or a game server runs it — quinn's Endpoint/Connection
//! split, pion's `UDPMux`, mediasoup's and Janus's single port.
//!
//! A datagram is routed to its session by its STUN USERNAME (the local ufrag before the
//! colon, RFC 8445 §7.3) until the peer has proven a path with an authenticated check, and
//! from then on by its path (transport, local address, remote address): application data
//! (DTLS, SRTP…) on a proven path is handed back with its session; anything else is dropped
//! and counted without allocating. A lite endpoint sends no checks: it answers them
//! (§7.3.1.2), selects the path the peer nominates (USE-CANDIDATE, §7.3.1.5), and takes
//! the peer's consent checks (RFC 7675) as proof of life: without one for the consent
//! lifetime the session expires and sending on it is refused until the peer checks again.
//!
//! Flow of a session:
//! ```text
//! add_session ─► New ─authenticated check─► Connected ─no check for 30 s─► Expired
//!                  └─no check for 30 s─► Expired      ◄─authenticated check─┘
//! ```
//! Every table is bounded: sessions ([`EndpointConfig::max_sessions`]), paths per session
//! (4), queued transmits and events. Deadlines live in a heap (`expiry.rs`), so
//! [`Endpoint::poll_timeout`] reads one entry and [`Endpoint::handle_timeout`] pays
//! O(log n) per session that comes due, never a scan of every session.
//!
//! Full ICE for a session (a peer that is itself lite) is an [`Agent`](crate::Agent) of its
//! own: the endpoint serves lite sessions only.

mod expiry;
#[doc(hidden)]
pub mod fuzz;
mod session;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use foldhash::fast::FixedState;
use rand_core::{CryptoRng, RngCore};
use stun_proto::time::saturating_add;
use stun_proto::{Class, Message, Method, Transmit, TransmitRef, TransportProtocol, is_stun};

use crate::check::{DeclaredRole, ReceivedCheck, build_error, build_success, read_request};
use crate::error::{CredentialError, CredentialPart};
use crate::path::Path;
use crate::stream::Credentials;
use expiry::Expiries;
use session::Session;
pub use session::{SessionId, SessionState, SessionView};

/// The endpoint's limits and timers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointConfig {
    /// The most sessions at once. Default 1 000 000.
    pub max_sessions: usize,
    /// How long a session stays fresh after an authenticated check (RFC 7675 §5.1: 30 s),
    /// and how long a new session waits for its first. Default 30 s.
    pub consent_lifetime: Duration,
    /// The most datagrams queued for [`Endpoint::poll_transmit`]. Default 4 096.
    pub max_transmits: usize,
    /// The most events queued for [`Endpoint::poll_event`]. Default 4 096.
    pub max_events: usize,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        Self {
            max_sessions: 1_000_000,
            consent_lifetime: Duration::from_secs(30),
            max_transmits: 4_096,
            max_events: 4_096,
        }
    }
}

/// What [`Endpoint::handle_datagram`] did with a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Handled<'a> {
    /// A check answered, or a keepalive: consumed.
    Consumed,
    /// Application data (DTLS, SRTP…) on a path a session's peer proved.
    Data {
        /// The session.
        session: SessionId,
        /// The bytes, borrowed from the datagram.
        data: &'a [u8],
    },
    /// Dropped and counted, for this reason.
    Dropped(DropReason),
}

/// Why the endpoint dropped a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// Not STUN, from a path no session proved.
    UnknownSource,
    /// A check whose USERNAME names no session (or names one with another peer ufrag).
    UnknownUsername,
    /// MESSAGE-INTEGRITY or FINGERPRINT did not verify: unauthenticated, no answer.
    BadIntegrity,
    /// STUN that does not parse.
    Malformed,
    /// STUN other than a Binding request or indication (a lite endpoint sends no
    /// requests, so no response is its).
    NotACheck,
}

/// What the application must know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndpointEvent {
    /// A session's peer proved its first path (or its first since consent expired): data
    /// may flow.
    Connected {
        /// The session.
        session: SessionId,
        /// The path.
        path: Path,
    },
    /// The peer nominated a path (USE-CANDIDATE): data goes there from now on.
    Nominated {
        /// The session.
        session: SessionId,
        /// The path.
        path: Path,
    },
    /// No authenticated check for the consent lifetime (RFC 7675 §5.1): sending is refused.
    Expired {
        /// The session.
        session: SessionId,
    },
}

/// Why an endpoint call was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// No session has this id (never, or removed).
    #[error("unknown session")]
    UnknownSession,
    /// The endpoint holds this many sessions already.
    #[error("too many sessions: the endpoint holds {0}")]
    TooManySessions(usize),
    /// The peer's ufrag is not a valid one.
    #[error("bad remote ufrag: {0}")]
    BadRemoteUfrag(CredentialError),
    /// The session has no proven path, or its consent expired (RFC 7675 §5.1).
    #[error("the session has no live path")]
    NotConnected,
}

/// The counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointStats {
    /// Checks answered with a success.
    pub checks_answered: u64,
    /// Checks refused with an error response (400, 487).
    pub checks_refused: u64,
    /// Application datagrams handed back.
    pub data_received: u64,
    /// Datagrams dropped, by reason: not STUN from an unknown path.
    pub unknown_source: u64,
    /// … a check for no session.
    pub unknown_username: u64,
    /// … a check or keepalive that failed authentication.
    pub bad_integrity: u64,
    /// … malformed or not a check.
    pub malformed: u64,
    /// Transmits dropped because the queue was full.
    pub dropped_transmits: u64,
    /// Events dropped because the queue was full.
    pub dropped_events: u64,
}

/// A slot of the session table: its generation names which session holds it.
#[derive(Debug)]
struct Slot {
    generation: u32,
    session: Option<Session>,
}

/// A sans-IO ICE-lite endpoint for many sessions on shared local ports (see the module
/// documentation).
///
/// # Drive loop
/// As every machine of the crate: after each `handle_*` call, send everything
/// [`poll_transmit`](Self::poll_transmit) returns, act on every
/// [`poll_event`](Self::poll_event), then call [`handle_timeout`](Self::handle_timeout)
/// at [`poll_timeout`](Self::poll_timeout).
///
/// ```
/// use std::time::Instant;
/// use ice_proto::endpoint::{Endpoint, EndpointConfig, Handled};
/// use ice_proto::TransportProtocol;
/// use rand_chacha::ChaCha20Rng;
/// use rand_core::SeedableRng;
///
/// let mut sfu = Endpoint::new(EndpointConfig::default(), ChaCha20Rng::seed_from_u64(1));
/// let now = Instant::now();
/// // The peer's ufrag from its offer; our credentials go into the answer (with a=ice-lite).
/// let session = sfu.add_session(now, "Br0wsr").unwrap();
/// let ours = sfu.session(session).unwrap().local_credentials().clone();
/// assert_eq!(ours.ufrag.len(), 8);
/// // Every datagram of the shared socket goes in; unknown ones cost a lookup.
/// let (port, peer) = ("192.0.2.1:3478".parse().unwrap(), "198.51.100.7:5000".parse().unwrap());
/// let handled = sfu.handle_datagram(now, TransportProtocol::Udp, peer, port, b"\x17\xfe\xfd");
/// assert!(matches!(handled, Handled::Dropped(_)));
/// ```
#[derive(Debug)]
pub struct Endpoint<R> {
    config: EndpointConfig,
    rng: R,
    slots: Vec<Slot>,
    /// Free slots, reused last-freed first.
    free: Vec<u32>,
    sessions: usize,
    by_ufrag: HashMap<Box<str>, SessionId, FixedState>,
    by_path: HashMap<Path, SessionId, FixedState>,
    expiries: Expiries,
    transmits: VecDeque<Transmit>,
    events: VecDeque<EndpointEvent>,
    stats: EndpointStats,
}

impl<R: RngCore + CryptoRng> Endpoint<R> {
    /// An endpoint with `config`, drawing credentials and its table keys from `rng` (a
    /// cryptographically secure RNG: credentials are secrets; the keyed hash keeps a
    /// flood of chosen sources from aiming at collisions).
    pub fn new(config: EndpointConfig, mut rng: R) -> Self {
        let by_ufrag = HashMap::with_hasher(FixedState::with_seed(rng.next_u64()));
        let by_path = HashMap::with_hasher(FixedState::with_seed(rng.next_u64()));
        Self {
            config,
            rng,
            slots: Vec::new(),
            free: Vec::new(),
            sessions: 0,
            by_ufrag,
            by_path,
            expiries: Expiries::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: EndpointStats::default(),
        }
    }

    /// A new session for the peer whose ufrag (from its offer) is `remote_ufrag`, with
    /// random local credentials to signal (read them with [`session`](Self::session)). It
    /// expires unless the peer checks within the consent lifetime.
    pub fn add_session(
        &mut self,
        now: Instant,
        remote_ufrag: &str,
    ) -> Result<SessionId, EndpointError> {
        CredentialError::check(CredentialPart::Ufrag, remote_ufrag)
            .map_err(EndpointError::BadRemoteUfrag)?;
        if self.sessions >= self.config.max_sessions {
            return Err(EndpointError::TooManySessions(self.config.max_sessions));
        }
        let (local, key) = self.fresh_credentials();
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                let i = u32::try_from(self.slots.len())
                    .map_err(|_| EndpointError::TooManySessions(self.slots.len()))?;
                self.slots.push(Slot {
                    generation: 0,
                    session: None,
                });
                i
            }
        };
        let slot = &mut self.slots[index as usize];
        let id = SessionId::new(index, slot.generation);
        let fresh_until = saturating_add(now, self.config.consent_lifetime);
        self.by_ufrag.insert(local.ufrag.as_str().into(), id);
        slot.session = Some(Session {
            local,
            key,
            remote_ufrag: remote_ufrag.into(),
            paths: Vec::new(),
            nominated: None,
            state: SessionState::New,
            fresh_until,
        });
        self.sessions += 1;
        self.expiries.push(fresh_until, id);
        Ok(id)
    }

    /// Restarts ICE on `session` (RFC 8445 §9) with the peer's new ufrag: new local
    /// credentials (to signal again); the proven paths are forgotten but the nominated one,
    /// which carries data until the peer proves a path with the new credentials.
    pub fn restart_session(
        &mut self,
        session: SessionId,
        remote_ufrag: &str,
    ) -> Result<(), EndpointError> {
        CredentialError::check(CredentialPart::Ufrag, remote_ufrag)
            .map_err(EndpointError::BadRemoteUfrag)?;
        self.get(session)?;
        let (local, key) = self.fresh_credentials();
        let s = self.get_mut(session)?;
        let old = std::mem::replace(&mut s.local, local);
        s.key = key;
        s.remote_ufrag = remote_ufrag.into();
        let kept = s.nominated;
        let gone: Vec<Path> = (s.paths.iter().map(|p| p.path))
            .filter(|p| Some(*p) != kept)
            .collect();
        s.paths.retain(|p| Some(p.path) == kept);
        let ufrag = s.local.ufrag.as_str().into();
        self.by_ufrag.remove(old.ufrag.as_str());
        self.by_ufrag.insert(ufrag, session);
        for path in gone {
            self.by_path.remove(&path);
        }
        Ok(())
    }

    /// Removes `session`: its ufrag and paths route nothing any more, and its id never
    /// names another session.
    pub fn remove_session(&mut self, session: SessionId) -> Result<(), EndpointError> {
        self.get(session)?;
        let slot = &mut self.slots[session.index()];
        let Some(s) = slot.session.take() else {
            return Err(EndpointError::UnknownSession);
        };
        slot.generation = slot.generation.wrapping_add(1);
        self.by_ufrag.remove(s.local.ufrag.as_str());
        for p in &s.paths {
            self.by_path.remove(&p.path);
        }
        self.free.push(session.index() as u32);
        self.sessions -= 1;
        Ok(())
    }

    /// A read-only view of a session.
    pub fn session(&self, session: SessionId) -> Option<SessionView<'_>> {
        let s = self.get(session).ok()?;
        Some(SessionView {
            id: session,
            session: s,
        })
    }

    /// How many sessions the endpoint holds.
    pub const fn session_count(&self) -> usize {
        self.sessions
    }

    /// A datagram received over `transport` from `source` on the endpoint's local address
    /// `destination`: a check is answered, data on a proven path is returned with its
    /// session, anything else is dropped and counted.
    pub fn handle_datagram<'a>(
        &mut self,
        now: Instant,
        transport: TransportProtocol,
        source: SocketAddr,
        destination: SocketAddr,
        bytes: &'a [u8],
    ) -> Handled<'a> {
        let path = Path {
            transport,
            base: destination,
            remote: source,
        };
        if !is_stun(bytes) {
            return match self.by_path.get(&path) {
                Some(&session) => {
                    self.stats.data_received += 1;
                    Handled::Data {
                        session,
                        data: bytes,
                    }
                }
                None => self.drop(DropReason::UnknownSource),
            };
        }
        let Ok(message) = Message::parse(bytes) else {
            return self.drop(DropReason::Malformed);
        };
        match (message.method(), message.class()) {
            (Method::BINDING, Class::Request) => self.answer(now, path, &message),
            // A keepalive (RFC 8445 §11): nothing to answer.
            (Method::BINDING, Class::Indication) => Handled::Consumed,
            _ => self.drop(DropReason::NotACheck),
        }
    }

    /// Application data for `session`, on the path its peer nominated (or, before, the one
    /// it checked last): the datagram to send at once, borrowing `bytes`.
    pub fn handle_send<'a>(
        &self,
        session: SessionId,
        bytes: &'a [u8],
    ) -> Result<TransmitRef<'a>, EndpointError> {
        let s = self.get(session)?;
        let path = (s.send_path())
            .filter(|_| s.state == SessionState::Connected)
            .ok_or(EndpointError::NotConnected)?;
        Ok(TransmitRef {
            transport: path.transport,
            source: path.base,
            destination: path.remote,
            payload: bytes,
        })
    }

    /// Time has reached [`poll_timeout`](Self::poll_timeout): sessions whose consent ran out
    /// expire.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((at, id)) = self.expiries.pop_due(now) {
            let Ok(s) = self.get_mut(id) else {
                // Removed: its entry goes with it.
                continue;
            };
            if s.fresh_until > at {
                // Refreshed since: watch the later deadline instead.
                let later = s.fresh_until;
                self.expiries.push(later, id);
                continue;
            }
            s.state = SessionState::Expired;
            self.event(EndpointEvent::Expired { session: id });
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<EndpointEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.expiries.next()
    }

    /// The counters.
    pub const fn stats(&self) -> &EndpointStats {
        &self.stats
    }

    /// A Binding request: a check of a session's peer (RFC 8445 §7.3, as a lite agent).
    fn answer<'a>(&mut self, now: Instant, path: Path, message: &Message<'_>) -> Handled<'a> {
        let Ok(check) = read_request(message) else {
            return self.drop(DropReason::UnknownUsername);
        };
        let Some(&id) = self.by_ufrag.get(check.local_ufrag) else {
            return self.drop(DropReason::UnknownUsername);
        };
        let lifetime = self.config.consent_lifetime;
        let Ok(s) = self.get_mut(id) else {
            return self.drop(DropReason::UnknownUsername);
        };
        if *check.remote_ufrag != *s.remote_ufrag {
            return self.drop(DropReason::UnknownUsername);
        }
        if message.verify_integrity(&s.key).is_err() {
            // RFC 8489 §9.1.4 would allow a 401; a public port answers nothing it cannot
            // authenticate (no reflection towards a spoofed source).
            return self.drop(DropReason::BadIntegrity);
        }
        if let Some(code) = refusal(&check) {
            // 400: no PRIORITY; 487: the peer claims to be controlled as well, and a lite
            // endpoint is always controlled (§6.1.1, §7.3.1.1).
            let answer = build_error(message, code, Some(&s.key));
            self.stats.checks_refused += 1;
            if let Ok(answer) = answer {
                self.transmit(path, answer);
            }
            return Handled::Consumed;
        }
        let answer = build_success(message, path.remote, &s.key);
        let was = s.state;
        s.state = SessionState::Connected;
        s.fresh_until = saturating_add(now, lifetime);
        let displaced = s.prove(now, path);
        let nominate = check.use_candidate && s.nominated != Some(path);
        if nominate {
            s.nominated = Some(path);
        }
        if was == SessionState::Expired {
            // An expired session left the heap: it is watched again.
            self.expiries.push(saturating_add(now, lifetime), id);
        }
        if was != SessionState::Connected {
            self.event(EndpointEvent::Connected { session: id, path });
        }
        if nominate {
            self.event(EndpointEvent::Nominated { session: id, path });
        }
        if let Some(gone) = displaced {
            self.by_path.remove(&gone);
        }
        if let Some(previous) = self.by_path.insert(path, id) {
            if previous != id {
                // The path was another session's (its peer moved on): no longer.
                self.forget_path(previous, path);
            }
        }
        self.stats.checks_answered += 1;
        if let Ok(answer) = answer {
            self.transmit(path, answer);
        }
        Handled::Consumed
    }

    /// Local credentials with a ufrag no session has.
    fn fresh_credentials(&mut self) -> (Credentials, stun_proto::IntegrityKey) {
        loop {
            let local = Credentials::random(&mut self.rng);
            if self.by_ufrag.contains_key(local.ufrag.as_str()) {
                continue;
            }
            // Random credentials are valid ice-chars of valid lengths: the key exists.
            let key = stun_proto::IntegrityKey::new(local.pwd.as_bytes());
            return (local, key);
        }
    }

    fn forget_path(&mut self, session: SessionId, path: Path) {
        if let Ok(s) = self.get_mut(session) {
            s.paths.retain(|p| p.path != path);
            if s.nominated == Some(path) {
                s.nominated = None;
            }
        }
    }

    fn get(&self, id: SessionId) -> Result<&Session, EndpointError> {
        (self.slots.get(id.index()))
            .filter(|slot| SessionId::new(id.index() as u32, slot.generation) == id)
            .and_then(|slot| slot.session.as_ref())
            .ok_or(EndpointError::UnknownSession)
    }

    fn get_mut(&mut self, id: SessionId) -> Result<&mut Session, EndpointError> {
        (self.slots.get_mut(id.index()))
            .filter(|slot| SessionId::new(id.index() as u32, slot.generation) == id)
            .and_then(|slot| slot.session.as_mut())
            .ok_or(EndpointError::UnknownSession)
    }

    fn drop<'a>(&mut self, reason: DropReason) -> Handled<'a> {
        let counter = match reason {
            DropReason::UnknownSource => &mut self.stats.unknown_source,
            DropReason::UnknownUsername => &mut self.stats.unknown_username,
            DropReason::BadIntegrity => &mut self.stats.bad_integrity,
            DropReason::Malformed | DropReason::NotACheck => &mut self.stats.malformed,
        };
        *counter += 1;
        Handled::Dropped(reason)
    }

    fn transmit(&mut self, path: Path, payload: bytes::Bytes) {
        if self.transmits.len() >= self.config.max_transmits {
            self.stats.dropped_transmits += 1;
            return;
        }
        self.transmits.push_back(Transmit {
            transport: path.transport,
            source: path.base,
            destination: path.remote,
            payload,
        });
    }

    fn event(&mut self, event: EndpointEvent) {
        if self.events.len() >= self.config.max_events {
            self.stats.dropped_events += 1;
            return;
        }
        self.events.push_back(event);
    }
}

/// The error code a check gets instead of a success, if any: 400 without PRIORITY
/// (§7.3.1.1 needs it), 487 from a peer that claims the controlled role too.
fn refusal(check: &ReceivedCheck<'_>) -> Option<u16> {
    if check.priority.is_none() {
        return Some(400);
    }
    matches!(check.role, Some(DeclaredRole::Controlled(_))).then_some(487)
}

#[cfg(test)]
mod tests;
