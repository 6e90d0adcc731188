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
//! the peer is bound (§12.4), as a Send indication before that (§10.1). Nothing goes to a
//! peer before the server confirmed the permission (or channel) it needs: the server drops
//! what arrives first (§9), so data sent while the request is in flight is held (bounded)
//! and leaves right after the success response.
//!
//! An RFC 6062 TCP allocation ([`RelayTransport::Tcp`], `tcp.rs`) relays TCP connections
//! instead: [`TurnClient::handle_connect`] asks the server to connect to a peer
//! ([`TurnEvent::PeerConnected`] with its CONNECTION-ID), a peer that connects to the
//! relayed address is announced ([`TurnEvent::ConnectionAttempt`]), and
//! [`TurnClient::handle_connection_bind`] binds a new data connection of the caller's to
//! either ([`TurnEvent::ConnectionBound`]), after which the caller reads and writes raw
//! bytes on it.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand_core::RngCore;

use crate::attribute::AddressFamily;
use crate::header::TransactionId;
use crate::transaction::{ClientTransactions, Request, TransportFailure};
use crate::transmit::{Transmit, TransportProtocol};

mod config;
mod data;
mod event;
mod peers;
mod refresh;
mod request;
mod response;
mod tcp;

pub use config::TurnClientConfig;
use data::Held;
pub use event::{
    Allocation, DropReason, Handled, RequestFailure, SendError, TurnClientError, TurnClientStats,
    TurnEvent,
};
use peers::{Channel, Lease, Peers, Permission};
use refresh::retryable;
pub use request::{AllocationFamily, EncodeError, RelayTransport};
use request::{Auth, RequestKind, encode_request};

/// How many times one request is re-sent after 438 Stale Nonce before it fails.
const MAX_STALE_RETRIES: u8 = 3;

/// How long to wait before retrying a refresh that timed out or could not be sent.
const REFRESH_RETRY: Duration = Duration::from_secs(5);

/// The most data transmits queued by [`TurnClient::handle_send`] and not yet polled.
const MAX_QUEUED_TRANSMITS: usize = 256;

/// The most datagrams [`TurnClient::handle_send`] holds for permissions and channels not
/// yet confirmed.
const MAX_HELD: usize = 64;

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
/// [`handle_datagram`](Self::handle_datagram), [`handle_timeout`](Self::handle_timeout),
/// [`handle_transport_error`](Self::handle_transport_error),
/// [`handle_forget_peer`](Self::handle_forget_peer), [`handle_close`](Self::handle_close)
/// — send everything
/// [`poll_transmit`](Self::poll_transmit) returns (over TCP: write it to the stream) and act
/// on everything [`poll_event`](Self::poll_event) returns until both give `None`, then call
/// `handle_timeout` at [`poll_timeout`](Self::poll_timeout). Early, late or repeated
/// `handle_timeout` calls are harmless.
///
/// Everything received from the server's address goes to [`handle_datagram`], which hands
/// back what is not TURN ([`Handled::NotTurn`]) and the peers' data ([`Handled::Data`],
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
/// // ... send it; feed what the server answers to `client.handle_datagram(now, transport, from, local, &bytes)`,
/// // then wait for `TurnEvent::Allocated`.
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
///
/// [`handle_datagram`]: Self::handle_datagram
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
    /// Data waiting for its permission or channel to be confirmed (at most [`MAX_HELD`]).
    held: VecDeque<Held>,
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
            held: VecDeque::new(),
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
    /// nothing. Data for the peer may be handed to [`handle_send`](Self::handle_send) at
    /// once: it is held until the success response (the server would drop it before) and
    /// then sent, ahead of anything sent later.
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
        if self.config.relay_transport == RelayTransport::Tcp {
            return Err(TurnClientError::TcpAllocation);
        }
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

    /// Stops keeping `peer` reachable: its permission and any channel to an address of it
    /// are no longer refreshed, and the client forgets them (the server lets them lapse,
    /// RFC 8656 §9, §12). For a remote candidate gone after an ICE restart. Returns whether
    /// anything was forgotten; requests in flight for them finish without events.
    pub fn handle_forget_peer(&mut self, now: Instant, peer: IpAddr) -> bool {
        let before = self.peers.permissions.len() + self.peers.channels.len();
        self.peers.permissions.retain(|p| p.ip != peer);
        self.peers.channels.retain(|c| c.peer.ip() != peer);
        self.flush_held(now);
        before != self.peers.permissions.len() + self.peers.channels.len()
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
        self.stats.dropped_held += self.held.len() as u64;
        self.held.clear();
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

    /// The transport to the server.
    pub const fn transport(&self) -> TransportProtocol {
        self.config.transport
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

    /// Whether the first CreatePermission for `peer` is still in flight (asked for, neither
    /// confirmed nor refused yet).
    pub fn permission_requested(&self, peer: IpAddr) -> bool {
        self.peers
            .permission(peer)
            .is_some_and(|p| matches!(p.lease, Lease::Requested))
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
            kind.local().unwrap_or(self.config.local),
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

    /// Ends the client with `event`.
    fn close(&mut self, event: TurnEvent) {
        self.state = State::Closed;
        self.peers.clear();
        self.pending.clear();
        self.stats.dropped_held += self.held.len() as u64;
        self.held.clear();
        self.events.push_back(event);
    }
}

#[cfg(test)]
mod tests;
