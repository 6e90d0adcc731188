//! The TURN client (RFC 8656 §5–§12): one allocation on one server, its permissions and
//! channels, and the data relayed through it, over UDP datagrams or a TCP/TLS stream (with
//! [`StreamFramer`](crate::turn::StreamFramer) splitting what the caller reads).
//!
//! Flow of an allocation:
//! ```text
//! Idle ─handle_allocate─► Allocating ─401─► Allocating, signed (RFC 8489 §9.2.3)
//!                           │   ├─438─► retry with the new nonce (RFC 8489 §9.2.5)
//!                           │   ├─300─► retry at ALTERNATE-SERVER (RFC 8656 §7.4)
//!                           │   └─other error, timeout ─► Closed (AllocationFailed)
//!                           └─success─► Allocated ─refresh_at─► Refresh (§8) ─► Allocated
//!                                          │   └─expires_at without an answer ─► Closed (Expired)
//!                                          └─handle_close─► Deallocating (Refresh LIFETIME 0)
//!                                                              └─► Closed (Deallocated)
//! ```
//! While allocated, each permission (§9) is refreshed `refresh_margin` before its 300 s run
//! out, and each channel (§12) before its 600 s; data goes as ChannelData once a channel to
//! the peer is bound (§12.4), as a Send indication before that (§10.1).

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand_core::RngCore;

use crate::attribute::{
    AddressErrorCode, AddressFamily, AlternateServer, AttributeType, DecodeAttribute, ErrorCode,
    Lifetime, ReservationToken, UnknownAttributes, XorMappedAddress, XorRelayedAddress,
};
use crate::header::{Class, TransactionId};
use crate::message::Message;
use crate::transaction::{ClientTransactions, Request, TransactionEvent, TransportFailure};
use crate::transmit::Transmit;
use crate::turn::{
    CHANNEL_LIFETIME, DEFAULT_ALLOCATION_LIFETIME, DRAFT_ADDRESS_ERROR_CODE, PERMISSION_LIFETIME,
};

mod config;
mod data;
mod event;
mod peers;
mod refresh;
mod request;

pub use config::TurnClientConfig;
pub use event::{
    Allocation, IgnoredReason, Incoming, RequestFailure, SendError, TurnClientError,
    TurnClientStats, TurnEvent,
};
use peers::{Channel, Lease, Peers, Permission};
use refresh::retryable;
pub use request::{AllocationFamily, EncodeError};
use request::{Auth, RequestKind, encode_request};

/// How many times one request is re-sent after 438 Stale Nonce before it fails.
const MAX_STALE_RETRIES: u8 = 3;

/// How long to wait before retrying a refresh that timed out or could not be sent.
const REFRESH_RETRY: Duration = Duration::from_secs(5);

/// The most data transmits queued by [`TurnClient::handle_send`] and not yet polled.
const MAX_QUEUED_TRANSMITS: usize = 256;

/// A request in flight, with what it asks for (to send it again after 401 or 438).
#[derive(Clone, Copy, Debug)]
struct Pending {
    id: TransactionId,
    kind: RequestKind,
    signed: bool,
    stale_retries: u8,
}

/// What a client deadline is for. The deadlines themselves live in the objects they
/// belong to (the transactions, the allocation's lease, each permission and channel).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Timer {
    /// A request's retransmission or its last wait (RFC 8489 §6.2.1; Ti over TCP, §6.2.2).
    Retransmission,
    /// The allocation's refresh, or its expiry while the refresh is unanswered (RFC 8656 §8).
    Allocation,
    /// A permission's refresh or expiry (RFC 8656 §9: 300 s).
    Permission,
    /// A channel binding's refresh or expiry (RFC 8656 §12: 600 s).
    Channel,
}

impl Timer {
    /// Every timer, in the order of the deadline table.
    pub const ALL: [Timer; 4] = [
        Timer::Retransmission,
        Timer::Allocation,
        Timer::Permission,
        Timer::Channel,
    ];
}

/// Where the allocation stands, each state with what is valid in it.
#[derive(Clone, Copy, Debug)]
enum State {
    /// Nothing asked yet.
    Idle,
    /// An Allocate is in flight (possibly after redirects).
    Allocating { redirects: u8 },
    /// The allocation exists; `lease` holds its refresh and expiry.
    Allocated {
        allocation: Allocation,
        lease: Lease,
    },
    /// A Refresh with LIFETIME 0 is in flight.
    Deallocating,
    /// Failed, expired or released. Terminal.
    Closed,
}

/// A TURN client: one allocation on one server.
///
/// # Drive loop
/// After every `handle_*` call — [`handle_allocate`](Self::handle_allocate),
/// [`handle_create_permission`](Self::handle_create_permission),
/// [`handle_bind_channel`](Self::handle_bind_channel), [`handle_send`](Self::handle_send),
/// [`handle_incoming`](Self::handle_incoming), [`handle_timeout`](Self::handle_timeout),
/// [`handle_close`](Self::handle_close) — send everything
/// [`poll_transmit`](Self::poll_transmit) returns (over TCP: write it to the stream) and act
/// on everything [`poll_event`](Self::poll_event) returns until both give `None`, then call
/// `handle_timeout` at [`poll_timeout`](Self::poll_timeout). Early, late or repeated
/// `handle_timeout` calls are harmless.
///
/// Everything received from the server's address goes to [`handle_incoming`], which hands
/// back what is not TURN ([`Incoming::NotTurn`]) and the peers' data ([`Incoming::Data`],
/// borrowed). [`handle_send_into`](Self::handle_send_into) encodes data into the caller's
/// buffer and allocates nothing.
///
/// ```
/// use std::time::Instant;
/// use stun_proto::TransportProtocol;
/// use stun_proto::turn::client::{TurnClient, TurnClientConfig};
/// # use rand_core::SeedableRng;
/// # let rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
///
/// let config = TurnClientConfig::new(
///     "192.168.1.2:50000".parse()?, "203.0.113.1:3478".parse()?,
///     TransportProtocol::Udp, "alice", "secret");
/// let mut client = TurnClient::new(config, rng);
/// let now = Instant::now();
/// client.handle_allocate(now)?;
/// let allocate = client.poll_transmit().expect("the first Allocate");
/// assert_eq!(allocate.destination, "203.0.113.1:3478".parse()?);
/// // ... send it; feed what the server answers to `client.handle_incoming(now, from, &bytes)`,
/// // then wait for `TurnEvent::Allocated`.
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
///
/// [`handle_incoming`]: Self::handle_incoming
#[derive(Debug)]
pub struct TurnClient<R> {
    config: TurnClientConfig,
    server: SocketAddr,
    state: State,
    auth: Option<Auth>,
    transactions: ClientTransactions,
    pending: Vec<Pending>,
    peers: Peers,
    events: VecDeque<TurnEvent>,
    transmits: VecDeque<Transmit>,
    stats: TurnClientStats,
    rng: R,
}

impl<R: RngCore> TurnClient<R> {
    /// A client set up by `config`, drawing transaction ids from `rng`.
    pub fn new(config: TurnClientConfig, rng: R) -> Self {
        Self {
            server: config.server,
            transactions: ClientTransactions::new(config.transactions.clone()),
            config,
            state: State::Idle,
            auth: None,
            pending: Vec::new(),
            peers: Peers::default(),
            events: VecDeque::new(),
            transmits: VecDeque::new(),
            stats: TurnClientStats::default(),
            rng,
        }
    }

    /// Sends the Allocate request (RFC 8656 §7.1).
    pub fn handle_allocate(&mut self, now: Instant) -> Result<(), TurnClientError> {
        if !matches!(self.state, State::Idle) {
            return Err(TurnClientError::AlreadyStarted);
        }
        self.start(now, RequestKind::Allocate, 0)?;
        self.state = State::Allocating { redirects: 0 };
        Ok(())
    }

    /// Asks the server to let `peer` send to the relayed address (CreatePermission, RFC 8656
    /// §9.1); kept alive until the allocation ends. Asking again for a known peer does
    /// nothing. Data may be sent to the peer at once, but the server drops what arrives
    /// before the permission is installed: wait for [`TurnEvent::PermissionCreated`] where
    /// the first packets matter.
    pub fn handle_create_permission(
        &mut self,
        now: Instant,
        peer: IpAddr,
    ) -> Result<(), TurnClientError> {
        self.check_peer(peer)?;
        if self.peers.permission(peer).is_some() {
            return Ok(());
        }
        let limit = self.config.max_permissions;
        if self.peers.permissions.len() >= limit {
            return Err(TurnClientError::TooManyPermissions { limit });
        }
        self.start(now, RequestKind::CreatePermission { ip: peer }, 0)?;
        self.peers.permissions.push(Permission {
            ip: peer,
            lease: Lease::Requested,
        });
        Ok(())
    }

    /// Binds a channel to `peer` (ChannelBind, RFC 8656 §11.1) and returns its number; the
    /// binding, and the permission it installs, are kept alive until the allocation ends.
    /// Binding a peer that has a channel returns that channel.
    pub fn handle_bind_channel(
        &mut self,
        now: Instant,
        peer: SocketAddr,
    ) -> Result<u16, TurnClientError> {
        self.check_peer(peer.ip())?;
        if let Some(channel) = self.peers.channel_for_peer(peer) {
            return Ok(channel.number);
        }
        let limit = self.config.max_channels;
        let number = self
            .peers
            .free_channel_number()
            .filter(|_| self.peers.channels.len() < limit)
            .ok_or(TurnClientError::TooManyChannels { limit })?;
        self.start(
            now,
            RequestKind::ChannelBind {
                channel: number,
                peer,
            },
            0,
        )?;
        self.peers.channels.push(Channel {
            number,
            peer,
            lease: Lease::Requested,
        });
        Ok(number)
    }

    /// Retransmits requests, refreshes the allocation, permissions and channels whose time
    /// has come, and expires what ran out.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.transactions.handle_timeout(now);
        self.pump(now);
        self.refresh_allocation(now);
        if matches!(self.state, State::Allocated { .. }) {
            self.refresh_permissions(now);
            self.refresh_channels(now);
        }
    }

    /// The transport to the server failed (ICMP unreachable, TCP connection lost): the
    /// requests in flight fail with [`RequestFailure::Transport`]. Over TCP a lost
    /// connection also ends the allocation, which lives as long as its connection (servers,
    /// ours and coturn, delete it): [`TurnEvent::Expired`] if there was one.
    pub fn handle_transport_error(&mut self, now: Instant, failure: TransportFailure) {
        self.transactions
            .handle_transport_error(now, self.server, failure);
        self.pump(now);
        let connection_gone = self.config.transport.is_reliable()
            && failure == TransportFailure::ConnectionLost
            && matches!(self.state, State::Allocated { .. });
        if connection_gone {
            for p in std::mem::take(&mut self.pending) {
                self.transactions.handle_cancel(now, p.id);
            }
            self.close(TurnEvent::Expired);
        }
    }

    /// Releases the allocation (a Refresh with LIFETIME 0, RFC 8656 §8); a
    /// [`TurnEvent::Deallocated`] follows. Before the allocation exists, just stops.
    pub fn handle_close(&mut self, now: Instant) {
        for p in std::mem::take(&mut self.pending) {
            self.transactions.handle_cancel(now, p.id);
        }
        self.peers.clear();
        match self.state {
            State::Allocated { .. } => {
                if self
                    .start(now, RequestKind::Refresh { lifetime: 0 }, 0)
                    .is_ok()
                {
                    self.state = State::Deallocating;
                } else {
                    self.close(TurnEvent::Deallocated);
                }
            }
            State::Idle | State::Allocating { .. } => self.state = State::Closed,
            State::Deallocating | State::Closed => {}
        }
    }

    /// The next datagram to send: requests first, then data queued by
    /// [`handle_send`](Self::handle_send).
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transactions
            .poll_transmit()
            .or_else(|| self.transmits.pop_front())
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<TurnEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_timer().map(|(_, at)| at)
    }

    /// The earliest deadline and what it is for.
    pub fn next_timer(&self) -> Option<(Timer, Instant)> {
        let deadlines = self.timers();
        Timer::ALL
            .into_iter()
            .zip(deadlines)
            .filter_map(|(timer, at)| Some((timer, at?)))
            .min_by_key(|(_, at)| *at)
    }

    /// The allocation, while it exists.
    pub fn allocation(&self) -> Option<&Allocation> {
        match &self.state {
            State::Allocated { allocation, .. } => Some(allocation),
            _ => None,
        }
    }

    /// The server requests go to (the configured one, or where a 300 sent us).
    pub const fn server(&self) -> SocketAddr {
        self.server
    }

    /// The local address.
    pub const fn local(&self) -> SocketAddr {
        self.config.local
    }

    /// Whether the client is finished: failed, expired or deallocated.
    pub const fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Whether the server holds a permission for `peer`.
    pub fn has_permission(&self, peer: IpAddr) -> bool {
        self.peers
            .permission(peer)
            .is_some_and(|p| p.lease.is_installed())
    }

    /// The channel bound to `peer`, once the server confirmed it.
    pub fn channel(&self, peer: SocketAddr) -> Option<u16> {
        self.peers
            .channel_for_peer(peer)
            .filter(|c| c.lease.is_installed())
            .map(|c| c.number)
    }

    /// How many requests are in flight.
    pub fn outstanding_requests(&self) -> usize {
        self.pending.len()
    }

    /// Counters.
    pub const fn stats(&self) -> &TurnClientStats {
        &self.stats
    }

    /// Refuses peers outside the relayed families.
    fn check_peer(&self, peer: IpAddr) -> Result<(), TurnClientError> {
        let State::Allocated { allocation, .. } = &self.state else {
            return Err(TurnClientError::NotAllocated);
        };
        let family = AddressFamily::of(&peer);
        let relayed = [Some(allocation.relayed), allocation.additional_relayed];
        if relayed
            .into_iter()
            .flatten()
            .any(|r| AddressFamily::of(&r.ip()) == family)
        {
            Ok(())
        } else {
            Err(TurnClientError::PeerFamilyMismatch(family))
        }
    }

    /// The deadline of each [`Timer`], in [`Timer::ALL`] order.
    fn timers(&self) -> [Option<Instant>; Timer::ALL.len()] {
        let allocated = matches!(self.state, State::Allocated { .. });
        let allocation = match self.state {
            State::Allocated { lease, .. } => lease.deadline(),
            _ => None,
        };
        let (permissions, channels) = if allocated {
            self.peers.next_deadlines()
        } else {
            (None, None)
        };
        [
            self.transactions.poll_timeout(),
            allocation,
            permissions,
            channels,
        ]
    }

    /// Encodes and sends a request, and remembers it.
    fn start(
        &mut self,
        now: Instant,
        kind: RequestKind,
        stale_retries: u8,
    ) -> Result<(), TurnClientError> {
        let (id, payload) = encode_request(&self.config, self.auth.as_ref(), kind, &mut self.rng)?;
        let mut request = Request::new(
            self.config.transport,
            self.config.local,
            self.server,
            payload,
        );
        if kind.keeps_alive() {
            // A refresh must be able to retransmit Rc times (7 sends over 63 RTOs, RFC 8489
            // §6.2.1) before what it refreshes runs out: cap the starting RTO, which the
            // RTO cache may have backed off to seconds after earlier losses.
            let cap = self.config.refresh_margin / 64;
            let cached = self.transactions.rto(now, self.server.ip());
            request = request.with_initial_rto(cached.min(cap).max(Duration::from_millis(100)));
        }
        self.transactions.handle_request(now, request)?;
        self.pending.push(Pending {
            id,
            kind,
            signed: self.auth.is_some(),
            stale_retries,
        });
        Ok(())
    }

    /// Sends a request again after a challenge; a failure to do so fails it.
    fn retry(&mut self, now: Instant, p: Pending, stale_retries: u8) {
        if let Err(e) = self.start(now, p.kind, stale_retries) {
            let failure = match e {
                TurnClientError::Encode(e) => RequestFailure::Encode(e),
                TurnClientError::Transaction(e) => RequestFailure::Transaction(e),
                _ => RequestFailure::MalformedResponse,
            };
            self.fail(now, p.kind, failure);
        }
    }

    /// Turns transaction outcomes into TURN state changes.
    fn pump(&mut self, now: Instant) {
        while let Some(event) = self.transactions.poll_event() {
            let (id, outcome) = match event {
                TransactionEvent::Response { id, message, .. } => (id, Ok(message)),
                TransactionEvent::Timeout { id, .. } => (id, Err(RequestFailure::Timeout)),
                TransactionEvent::Error { id, failure, .. } => {
                    (id, Err(RequestFailure::Transport(failure)))
                }
            };
            let Some(index) = self.pending.iter().position(|p| p.id == id) else {
                continue;
            };
            let p = self.pending.swap_remove(index);
            match outcome {
                Ok(bytes) => match Message::parse(&bytes) {
                    Ok(message) => self.on_response(now, p, &message),
                    Err(_) => self.fail(now, p.kind, RequestFailure::MalformedResponse),
                },
                Err(failure) => self.fail(now, p.kind, failure),
            }
        }
    }

    fn on_response(&mut self, now: Instant, p: Pending, message: &Message<'_>) {
        if message.class() == Class::Error {
            return self.on_error_response(now, p, message);
        }
        if let Some(auth) = &self.auth {
            if message.verify_integrity(auth.key()).is_err() {
                return self.fail(now, p.kind, RequestFailure::IntegrityMismatch);
            }
        }
        match p.kind {
            RequestKind::Allocate => self.on_allocated(now, message),
            RequestKind::Refresh { lifetime: 0 } => self.close(TurnEvent::Deallocated),
            RequestKind::Refresh { .. } => {
                let lifetime = granted_lifetime(message);
                let margin = self.margin(lifetime);
                if let State::Allocated { lease, .. } = &mut self.state {
                    *lease = Lease::installed(now, lifetime, margin);
                    self.events.push_back(TurnEvent::Refreshed { lifetime });
                }
            }
            RequestKind::CreatePermission { ip } => {
                let margin = self.margin(PERMISSION_LIFETIME);
                if let Some(permission) = self.peers.permission_mut(ip) {
                    let first = !permission.lease.is_installed();
                    permission.lease = Lease::installed(now, PERMISSION_LIFETIME, margin);
                    if first {
                        self.events
                            .push_back(TurnEvent::PermissionCreated { peer: ip });
                    }
                }
            }
            RequestKind::ChannelBind { channel, peer } => {
                let margin = self.margin(CHANNEL_LIFETIME);
                let Some(c) = self.peers.channel_mut(channel) else {
                    return;
                };
                let first = !c.lease.is_installed();
                c.lease = Lease::installed(now, CHANNEL_LIFETIME, margin);
                // The binding installed a permission too (§11.2); keep it alive ourselves,
                // since it lasts 300 s and the channel 600 s.
                let permission_margin = self.margin(PERMISSION_LIFETIME);
                let permission_lease =
                    Lease::installed(now, PERMISSION_LIFETIME, permission_margin);
                if let Some(p) = self.peers.permission_mut(peer.ip()) {
                    p.lease = permission_lease;
                } else if self.peers.permissions.len() < self.config.max_permissions {
                    self.peers.permissions.push(Permission {
                        ip: peer.ip(),
                        lease: permission_lease,
                    });
                }
                if first {
                    self.events
                        .push_back(TurnEvent::ChannelBound { channel, peer });
                }
            }
        }
    }

    fn on_error_response(&mut self, now: Instant, p: Pending, message: &Message<'_>) {
        let error = message.get::<ErrorCode<'_>>().and_then(Result::ok);
        let code = error.map_or(0, |e| e.code());
        match code {
            ErrorCode::UNAUTHENTICATED if !p.signed => {
                match Auth::from_challenge(&self.config, message) {
                    Some(Ok(auth)) => {
                        self.auth = Some(auth);
                        self.retry(now, p, p.stale_retries);
                    }
                    Some(Err(e)) => self.fail(now, p.kind, RequestFailure::Encode(e)),
                    None => self.fail(now, p.kind, RequestFailure::Unauthenticated),
                }
            }
            ErrorCode::UNAUTHENTICATED => self.fail(now, p.kind, RequestFailure::Unauthenticated),
            ErrorCode::STALE_NONCE if p.stale_retries < MAX_STALE_RETRIES => {
                self.stats.stale_nonces += 1;
                let updated = match &mut self.auth {
                    Some(auth) => auth.update_nonce(&self.config, message),
                    None => match Auth::from_challenge(&self.config, message) {
                        Some(Ok(auth)) => {
                            self.auth = Some(auth);
                            Ok(true)
                        }
                        Some(Err(e)) => Err(e),
                        None => Ok(false),
                    },
                };
                match updated {
                    Ok(true) => self.retry(now, p, p.stale_retries + 1),
                    Ok(false) => self.fail(now, p.kind, RequestFailure::MalformedResponse),
                    Err(e) => self.fail(now, p.kind, RequestFailure::Encode(e)),
                }
            }
            ErrorCode::UNKNOWN_ATTRIBUTE
                if p.kind == RequestKind::Allocate
                    && self.config.dont_fragment
                    && refuses_dont_fragment(message) =>
            {
                // RFC 8656 §7.3: the server cannot set DF; ask again without it.
                self.config.dont_fragment = false;
                self.retry(now, p, p.stale_retries);
            }
            ErrorCode::TRY_ALTERNATE if p.kind == RequestKind::Allocate => {
                self.redirect(now, p, message)
            }
            _ => {
                let reason = error.map(|e| e.reason().to_owned()).unwrap_or_default();
                self.fail(now, p.kind, RequestFailure::ErrorResponse { code, reason });
            }
        }
    }

    /// Follows a 300 Try Alternate to ALTERNATE-SERVER (RFC 8656 §7.4, RFC 8489 §10).
    fn redirect(&mut self, now: Instant, p: Pending, message: &Message<'_>) {
        let State::Allocating { redirects } = self.state else {
            return;
        };
        let Some(Ok(AlternateServer(server))) = message.get::<AlternateServer>() else {
            return self.fail(now, p.kind, RequestFailure::MalformedResponse);
        };
        if redirects >= self.config.max_redirects {
            return self.fail(now, p.kind, RequestFailure::TooManyRedirects);
        }
        self.server = server;
        // The realm and nonce belonged to the other server.
        self.auth = None;
        self.state = State::Allocating {
            redirects: redirects + 1,
        };
        self.events.push_back(TurnEvent::Redirected { server });
        self.retry(now, p, 0);
    }

    fn on_allocated(&mut self, now: Instant, message: &Message<'_>) {
        let tid = message.transaction_id();
        let mut relayed = message
            .attributes()
            .filter(|a| a.attribute_type == AttributeType::XOR_RELAYED_ADDRESS)
            .filter_map(|a| a.decode::<XorRelayedAddress>(&tid).ok());
        let Some(XorRelayedAddress(first)) = relayed.next() else {
            return self.fail(
                now,
                RequestKind::Allocate,
                RequestFailure::MalformedResponse,
            );
        };
        let additional_relayed = relayed.next().map(|a| a.0);
        let lifetime = granted_lifetime(message);
        let allocation = Allocation {
            relayed: first,
            additional_relayed,
            mapped: message
                .get::<XorMappedAddress>()
                .and_then(Result::ok)
                .map(|a| a.0),
            lifetime,
            reservation_token: message.get::<ReservationToken>().and_then(Result::ok),
            additional_family_error: address_error(message),
        };
        let lease = Lease::installed(now, lifetime, self.margin(lifetime));
        self.state = State::Allocated { allocation, lease };
        self.events.push_back(TurnEvent::Allocated(allocation));
    }

    fn fail(&mut self, now: Instant, kind: RequestKind, failure: RequestFailure) {
        match kind {
            RequestKind::Allocate => self.close(TurnEvent::AllocationFailed(failure)),
            RequestKind::Refresh { lifetime: 0 } => self.close(TurnEvent::Deallocated),
            RequestKind::Refresh { .. } => {
                let gone = matches!(&failure, RequestFailure::ErrorResponse { code, .. }
                    if *code == ErrorCode::ALLOCATION_MISMATCH);
                if gone {
                    return self.close(TurnEvent::Expired);
                }
                // Try again shortly, until the allocation runs out.
                if let State::Allocated { lease, .. } = &mut self.state {
                    if let Lease::Refreshing { expires_at } = *lease {
                        *lease = Lease::Installed {
                            refresh_at: (now + REFRESH_RETRY).min(expires_at),
                            expires_at,
                        };
                    }
                }
            }
            RequestKind::CreatePermission { ip } => {
                let Some(index) = self.peers.permissions.iter().position(|p| p.ip == ip) else {
                    return;
                };
                let permission = &mut self.peers.permissions[index];
                match (permission.lease, retryable(&failure)) {
                    (Lease::Refreshing { expires_at }, true) => {
                        permission.lease = Lease::Installed {
                            refresh_at: (now + REFRESH_RETRY).min(expires_at),
                            expires_at,
                        };
                    }
                    _ => {
                        self.peers.permissions.swap_remove(index);
                        self.events
                            .push_back(TurnEvent::PermissionFailed { peer: ip, failure });
                    }
                }
            }
            RequestKind::ChannelBind { channel, peer } => {
                let Some(index) = self.peers.channels.iter().position(|c| c.number == channel)
                else {
                    return;
                };
                let c = &mut self.peers.channels[index];
                match (c.lease, retryable(&failure)) {
                    (Lease::Refreshing { expires_at }, true) => {
                        c.lease = Lease::Installed {
                            refresh_at: (now + REFRESH_RETRY).min(expires_at),
                            expires_at,
                        };
                    }
                    _ => {
                        self.peers.channels.swap_remove(index);
                        self.events.push_back(TurnEvent::ChannelBindFailed {
                            channel,
                            peer,
                            failure,
                        });
                    }
                }
            }
        }
    }

    /// Ends the client with `event`.
    fn close(&mut self, event: TurnEvent) {
        self.state = State::Closed;
        self.peers.clear();
        self.pending.clear();
        self.events.push_back(event);
    }
}

/// ADDRESS-ERROR-CODE's code, under RFC 8656's number or the draft's (coturn).
fn address_error(message: &Message<'_>) -> Option<u16> {
    let tid = message.transaction_id();
    let draft = || {
        let raw = message.raw(DRAFT_ADDRESS_ERROR_CODE)?;
        <AddressErrorCode<'_> as DecodeAttribute<'_>>::decode(raw.value, &tid).ok()
    };
    message
        .get::<AddressErrorCode<'_>>()
        .and_then(Result::ok)
        .or_else(draft)
        .map(|e| e.error().code())
}

/// Whether a 420 lists DONT-FRAGMENT among the attributes the server does not understand.
fn refuses_dont_fragment(message: &Message<'_>) -> bool {
    message
        .get::<UnknownAttributes<'_>>()
        .and_then(Result::ok)
        .is_some_and(|u| u.iter().any(|t| t == AttributeType::DONT_FRAGMENT))
}

/// The LIFETIME a success response grants; the RFC default if it has none.
fn granted_lifetime(message: &Message<'_>) -> Duration {
    message
        .get::<Lifetime>()
        .and_then(Result::ok)
        .map_or(DEFAULT_ALLOCATION_LIFETIME, Lifetime::as_duration)
}

#[cfg(test)]
mod tests;
