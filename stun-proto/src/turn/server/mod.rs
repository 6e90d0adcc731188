//! The TURN server (RFC 8656 §5–§12), split like quinn's `Endpoint`/`Connection`: the
//! [`TurnServer`] endpoint owns authentication, the relay pool and the routing tables and
//! routes each datagram to one allocation (`allocation.rs`) keyed by its 5-tuple (from the
//! client side) or by its relayed address (from the peer side).
//!
//! Flow of a client datagram:
//! ```text
//! ChannelData (§12.4) ─► allocation by 5-tuple ─► live channel ─► Relay to the peer (borrowed)
//! Send indication (§10.2) ─► allocation ─► permission, peer allowed ─► Relay to the peer
//! request ─► long-term auth (401/438, RFC 8489 §9.2.4) ─► Allocate (§7.2) │ Refresh (§8.2)
//!                                                    │ CreatePermission (§9.2) │ ChannelBind (§11.2)
//!                                                    └► response queued for poll_transmit
//! ```
//! and of a peer datagram arriving on a relayed address: allocation by relayed address ─►
//! permission for the peer's IP (§9) ─► ChannelData if a channel is bound, else a Data
//! indication (§10.3, §12.5) ─► to the client over its 5-tuple.
//!
//! RFC 6062 TCP allocations (`tcp_relay.rs`): Connect, ConnectionAttempt and ConnectionBind
//! on the control connection; the caller opens and accepts the TCP connections the machine
//! asks for and relays raw bytes once a connection is bound.
//!
//! The relayed addresses come from the caller (`TurnServerConfig::relay_addresses`): it
//! owns one socket per address, sends each [`TransmitRef`] and [`Transmit`] from the socket
//! named by its `source`, and feeds what each relay socket receives to
//! [`TurnServer::handle_peer_datagram_into`].

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::hash::{BuildHasher, Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rand_core::{CryptoRng, RngCore};

use crate::attribute::{ConnectionId, ReservationToken};
use crate::builder::MessageBuilder;
use crate::credentials::CredentialError;
use crate::header::{Class, Method};
use crate::long_term::{LongTermAuth, LongTermConfig, Rejection};
use crate::message::Message;
use crate::shared_secret::SharedSecretError;
use crate::transmit::{Transmit, TransportProtocol};
use crate::turn::channel_data::is_channel_data;
use crate::turn::{DEFAULT_ALLOCATION_LIFETIME, TransmitRef};

mod allocation;
mod bandwidth;
mod hashing;
mod peer_filter;
mod relay;
mod relay_pool;
mod requests;
mod tcp_relay;

use allocation::Allocation;
pub use allocation::AllocationId;
use hashing::FoldHash;
pub use peer_filter::{IpRange, PeerClass, PeerClasses, PeerFilter, UnknownPeerClass};
pub use relay_pool::RESERVATION_LIFETIME;
use relay_pool::RelayPool;
use tcp_relay::PeerConnections;
pub use tcp_relay::{
    CONNECTION_BIND_TIMEOUT, PEER_CONNECT_TIMEOUT, PeerConnectionClose, PeerConnectionError,
    connection_bind_id, connection_tag,
};

/// The most events kept unpolled; more are counted in [`TurnServerStats::events_dropped`].
const MAX_EVENTS: usize = 4096;
/// The capacity up to which a routing table that is not empty, or a drained queue, is not
/// shrunk (see `shrink_tables` and `shrink_when_drained`): small ones keep their memory.
const MIN_TABLE_CAPACITY: usize = 64;

/// The client side of an allocation (RFC 8656 §2: the 5-tuple): transport, the client's
/// address as the server sees it, and the server address it reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FiveTuple {
    /// UDP, or TCP (a connection; TLS is the caller's layer).
    pub transport: TransportProtocol,
    /// The client's (server-reflexive) transport address.
    pub client: SocketAddr,
    /// The server's listening address the client sent to.
    pub server: SocketAddr,
}

impl Hash for FiveTuple {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Three words, not the dozen small writes the derived impl makes.
        let (client_ip, client_port) = hashing::address_words(&self.client);
        let (server_ip, server_port) = hashing::address_words(&self.server);
        let reliable = u64::from(self.transport.is_reliable());
        state.write_u64(client_ip);
        state.write_u64(server_ip ^ server_port.rotate_left(40));
        state.write_u64(client_port | reliable << 24);
    }
}

/// How a [`TurnServer`] is set up.
#[derive(Clone, Debug)]
pub struct TurnServerConfig {
    /// Realm, nonce lifetime and password algorithms (RFC 8489 §9.2).
    pub long_term: LongTermConfig,
    /// The relayed addresses to hand out, one per allocation (and family); the caller owns
    /// a socket bound to each.
    pub relay_addresses: Vec<SocketAddr>,
    /// The lifetime of an allocation whose client asks for less or nothing (RFC 8656 §7.2:
    /// 10 minutes).
    pub default_lifetime: Duration,
    /// The most an allocation may ask for (RFC 8656 §7.2 suggests 1 hour).
    pub max_lifetime: Duration,
    /// The most allocations at once (beyond: 508 Insufficient Capacity, counted in
    /// [`TurnServerStats::refused_total_quota`]). Default 10,000.
    pub max_allocations: usize,
    /// The most allocations one user may hold (beyond: 486 Allocation Quota Reached,
    /// counted in [`TurnServerStats::refused_user_quota`]). Default 1,000: a deployment
    /// often serves every call under one user name, and a client that exits without a
    /// zero-lifetime Refresh holds its allocation for its whole lifetime (10 minutes).
    pub max_allocations_per_user: usize,
    /// The most permissions per allocation (beyond: 508). Default 64.
    pub max_permissions: usize,
    /// The most channels per allocation, counting those cooling down (beyond: 508).
    /// Default 64.
    pub max_channels: usize,
    /// The most bytes per second one allocation relays each way (client to peers, peers to
    /// client), with a burst of one second's worth; datagrams beyond are dropped
    /// ([`DropReason::BandwidthExceeded`]). Default none.
    pub max_bandwidth: Option<u32>,
    /// The most bytes queued for one allocation's client by
    /// [`TurnServer::handle_peer_datagram`] and not yet polled; more is dropped. Default
    /// 64 KiB.
    pub max_buffered_per_allocation: usize,
    /// The most transmits queued in all. Default 4096.
    pub max_queued_transmits: usize,
    /// Which peers may be relayed to (loopback and private ranges denied by default).
    pub peer_filter: PeerFilter,
    /// SOFTWARE sent in responses.
    pub software: Option<String>,
    /// Accept DONT-FRAGMENT (the caller then sets DF on what it relays). Default off: the
    /// server answers 420 with DONT-FRAGMENT unknown, as RFC 8656 §7.2 asks of servers that
    /// cannot.
    pub dont_fragment: bool,
    /// Accept the channel numbers RFC 5766 allowed, 0x4000–0x7FFE, and 0x7FFF, which it
    /// reserved, besides RFC 8656's 0x4000–0x4FFF (§12): the numbers coturn accepts. Default
    /// off; coturn's `turnutils_uclient` picks numbers from 0x4000–0x7FFF at random (0x7FFF
    /// once in 16,384 binds; refused, uclient gives up), so a server for such clients turns
    /// it on.
    pub rfc5766_channel_numbers: bool,
    /// Also accept ADDITIONAL-ADDRESS-FAMILY under the draft number coturn 4.6 and its
    /// `turnutils_uclient -Z` use (0x8032), answering with ADDRESS-ERROR-CODE under theirs
    /// (0x8033). Default off.
    pub coturn_dual_allocation: bool,
    /// Answer Binding requests with XOR-MAPPED-ADDRESS, without credentials, as a STUN
    /// server (RFC 8656 §4). Default on.
    pub answer_binding: bool,
    /// The first two bytes of every RESERVATION-TOKEN this server makes (the other six are
    /// random), so that a driver running several machines — one per worker thread, each
    /// with its own relay ports — can tell from a token which machine holds its reservation
    /// ([`TurnServer::foreign_reservation`]). Default none: eight random bytes.
    pub reservation_tag: Option<[u8; 2]>,
    /// Where to send clients when full: an Allocate refused for
    /// [`max_allocations`](Self::max_allocations) or for want of a relay address gets 300
    /// Try Alternate with this ALTERNATE-SERVER (RFC 8489 §10) instead of 508, counted in
    /// [`TurnServerStats::redirected`]. Default none.
    pub alternate_server: Option<SocketAddr>,
    /// Accept RFC 6062 TCP allocations (REQUESTED-TRANSPORT TCP over a TCP or TLS
    /// connection). Default on; a driver that does not open the sockets they need
    /// (listeners on relayed addresses, connections to peers) turns it off, and such
    /// Allocates get 442 Unsupported Transport Protocol.
    pub tcp_allocations: bool,
    /// The most RFC 6062 peer data connections at once, in every state (beyond: 508 to a
    /// Connect, [`PeerConnectionError::TableFull`] for an accepted one). Each allocation
    /// may have at most [`max_permissions`](Self::max_permissions). Default 4096.
    pub max_peer_connections: usize,
    /// The top byte of every CONNECTION-ID this server makes (the other three are random),
    /// so that a driver running several machines can tell from a ConnectionBind which
    /// machine holds its connection ([`connection_bind_id`], [`connection_tag`]). Default
    /// none: four random bytes.
    pub connection_tag: Option<u8>,
}

impl TurnServerConfig {
    /// A server for `realm` relaying from `relay_addresses`, with the defaults.
    pub fn new(realm: impl Into<String>, relay_addresses: Vec<SocketAddr>) -> Self {
        Self {
            long_term: LongTermConfig::new(realm),
            relay_addresses,
            default_lifetime: DEFAULT_ALLOCATION_LIFETIME,
            max_lifetime: Duration::from_secs(3600),
            max_allocations: 10_000,
            max_allocations_per_user: 1_000,
            max_permissions: 64,
            max_channels: 64,
            max_bandwidth: None,
            max_buffered_per_allocation: 64 * 1024,
            max_queued_transmits: 4096,
            peer_filter: PeerFilter::default(),
            software: None,
            dont_fragment: false,
            rfc5766_channel_numbers: false,
            answer_binding: true,
            coturn_dual_allocation: false,
            reservation_tag: None,
            alternate_server: None,
            tcp_allocations: true,
            max_peer_connections: 4096,
            connection_tag: None,
        }
    }
}

/// A relayed address reserved by EVEN-PORT's R bit (RFC 8656 §7.2), moving between two
/// machines of one driver ([`TurnServer::handle_reservation_export`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reservation {
    /// The reserved relayed address (the caller moves its socket along).
    pub address: SocketAddr,
    /// The RESERVATION-TOKEN that redeems it.
    pub token: ReservationToken,
    /// When the reservation lapses (30 s after it was made).
    pub expires_at: Instant,
}

/// What a server deadline is for. Each allocation keeps its own deadlines; the endpoint
/// orders allocations by their earliest one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Timer {
    /// Something of an allocation runs out: its lifetime (RFC 8656 §7.2, §8), a permission
    /// (§9), a channel binding or its 5-minute cooldown (§12).
    Allocation,
    /// A port reserved by EVEN-PORT is released (§7.2: about 30 s).
    Reservation,
    /// An RFC 6062 peer data connection is still connecting (§5.2: 447 after 30 s) or
    /// still waits for its ConnectionBind (§5.2, §5.3: closed after 30 s).
    PeerConnection,
}

impl Timer {
    /// Every timer, in the order of the deadline table.
    pub const ALL: [Timer; 3] = [Timer::Allocation, Timer::Reservation, Timer::PeerConnection];
}

/// Why an allocation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeleteReason {
    /// Its lifetime ran out without a refresh.
    Expired,
    /// The client sent a Refresh with LIFETIME 0.
    Deallocated,
    /// The client's TCP connection closed ([`TurnServer::handle_connection_closed`]).
    ConnectionClosed,
}

/// What the application learns from a [`TurnServer`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerEvent {
    /// An allocation was made.
    AllocationCreated {
        /// Its id.
        id: AllocationId,
        /// Its client side.
        tuple: FiveTuple,
        /// The user it belongs to.
        username: String,
        /// The relayed address.
        relayed: SocketAddr,
        /// The second relayed address of a dual-stack allocation.
        additional_relayed: Option<SocketAddr>,
    },
    /// An allocation was refreshed.
    AllocationRefreshed {
        /// Its id.
        id: AllocationId,
        /// The new lifetime.
        lifetime: Duration,
    },
    /// An allocation ended; its relayed addresses are back in the pool.
    AllocationDeleted {
        /// Its id.
        id: AllocationId,
        /// Why.
        reason: DeleteReason,
    },
    /// A permission was installed (not refreshed).
    PermissionCreated {
        /// The allocation.
        id: AllocationId,
        /// The peer's IP address.
        peer: IpAddr,
    },
    /// A channel was bound (not refreshed).
    ChannelBound {
        /// The allocation.
        id: AllocationId,
        /// The channel number.
        channel: u16,
        /// The peer.
        peer: SocketAddr,
    },
    /// An RFC 6062 TCP allocation was made (after [`AllocationCreated`](Self::AllocationCreated)):
    /// listen for TCP connections on `relayed` and hand each one accepted to
    /// [`TurnServer::handle_peer_connection_accepted`] (§5.3). Stop listening at the
    /// allocation's [`AllocationDeleted`](Self::AllocationDeleted).
    AcceptPeerConnections {
        /// The allocation.
        id: AllocationId,
        /// Its relayed address.
        relayed: SocketAddr,
    },
    /// A Connect (RFC 6062 §5.2): open a TCP connection from `relayed` to `peer`, then call
    /// [`TurnServer::handle_peer_connected`] or [`TurnServer::handle_peer_connect_failed`]
    /// with `connection` (after 30 s without either, the machine answers 447 and closes it).
    ConnectToPeer {
        /// The CONNECTION-ID the client will bind.
        connection: ConnectionId,
        /// The allocation.
        id: AllocationId,
        /// The relayed address to connect from.
        relayed: SocketAddr,
        /// The peer to connect to.
        peer: SocketAddr,
    },
    /// A ConnectionBind succeeded (RFC 6062 §5.4): the client connection `data` carries raw
    /// bytes from now on, relayed as-is to and from the peer connection `connection`
    /// (including what the peer sent before). Send the success response
    /// ([`TurnServer::poll_transmit`]) first; frame nothing more on `data`.
    ConnectionBound {
        /// The peer data connection.
        connection: ConnectionId,
        /// The client data connection.
        data: FiveTuple,
        /// The peer.
        peer: SocketAddr,
    },
    /// An RFC 6062 peer data connection is gone: close the peer connection and, if one was
    /// bound, the client data connection `data` (§5.5), if they are still open.
    PeerConnectionClosed {
        /// The connection.
        connection: ConnectionId,
        /// Its allocation.
        id: AllocationId,
        /// The peer.
        peer: SocketAddr,
        /// The client data connection, if one was bound.
        data: Option<FiveTuple>,
        /// Why.
        reason: PeerConnectionClose,
    },
}

/// What [`TurnServer::handle_client_datagram`] and
/// [`TurnServer::handle_peer_datagram_into`] did with a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Handled<'a> {
    /// Data to send now, borrowed: from a client (a Send indication or ChannelData), the
    /// payload to send from the relay socket `source` to the peer `destination`; from a
    /// peer, the datagram for the client, encoded in the caller's buffer, to send from
    /// `source` (the server's listening address) to `destination` (the client) over
    /// `transport`.
    Relay(TransmitRef<'a>),
    /// A client's request, answered: the response is queued for
    /// [`poll_transmit`](TurnServer::poll_transmit).
    Answered,
    /// A peer's data for the client, queued for [`poll_transmit`](TurnServer::poll_transmit)
    /// behind responses the client must get first: a ChannelBind success leaves before
    /// ChannelData on its channel, a CreatePermission success before the data it lets
    /// through (RFC 8656 §9, §12).
    Queued,
    /// Dropped, for this reason (counted).
    Dropped(DropReason),
    /// From a client, neither STUN nor ChannelData: the caller's.
    NotTurn,
}

/// Why a datagram was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// No allocation for the 5-tuple or the relayed address.
    NoAllocation,
    /// No permission for the peer's IP address (RFC 8656 §9).
    NoPermission,
    /// ChannelData on a channel that is not bound.
    UnknownChannel,
    /// A Send indication to a peer the filter denies, or of the wrong family.
    PeerDenied,
    /// A malformed message (bad framing, missing attributes, bad FINGERPRINT).
    Malformed,
    /// A STUN message that is neither a request nor a Send indication.
    Unexpected,
    /// The allocation's buffered-data bound, or the transmit queue bound, was hit.
    BufferFull,
    /// The caller's buffer is too small for the message.
    BufferTooSmall,
    /// A TURN method without the magic cookie (RFC 8489 §6: RFC 3489 had no TURN methods):
    /// dropped unanswered.
    NoMagicCookie,
    /// The allocation's bandwidth cap ([`TurnServerConfig::max_bandwidth`]) was reached.
    BandwidthExceeded,
}

/// Counters, for operators and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TurnServerStats {
    /// Requests answered (success or error).
    pub requests: u64,
    /// Error responses sent.
    pub errors: u64,
    /// Data relayed from clients to peers.
    pub relayed_to_peers: u64,
    /// Data relayed from peers to clients.
    pub relayed_to_clients: u64,
    /// Data from peers queued behind responses its client must get first (a ChannelBind
    /// success before ChannelData on that channel, RFC 8656 §12) instead of relayed at once.
    pub held_behind_responses: u64,
    /// Allocate requests refused with 486 Allocation Quota Reached: the user held
    /// [`TurnServerConfig::max_allocations_per_user`] allocations.
    pub refused_user_quota: u64,
    /// Allocate requests refused with 508 Insufficient Capacity because
    /// [`TurnServerConfig::max_allocations`] existed.
    pub refused_total_quota: u64,
    /// Allocate requests refused because every relay address of the family was in use (508,
    /// or 300 with an alternate server).
    pub refused_no_relay_address: u64,
    /// Datagrams dropped for an allocation's bandwidth cap (also in `dropped`).
    pub over_bandwidth: u64,
    /// Allocate requests answered 300 Try Alternate
    /// ([`TurnServerConfig::alternate_server`]).
    pub redirected: u64,
    /// Datagrams dropped, and responses not queued because the transmit queue was full.
    pub dropped: u64,
    /// Events dropped because 4096 were unpolled.
    pub events_dropped: u64,
    /// Requests refused by the long-term credential checks, by reason.
    pub auth: AuthStats,
}

/// Requests refused by the long-term credential checks (RFC 8489 §9.2.4), by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuthStats {
    /// 401 to a request without integrity: the first request of every client, no fault.
    pub challenges: u64,
    /// 400: credentials attributes missing or a PASSWORD-ALGORITHMS bid-down.
    pub bad_requests: u64,
    /// 438: a nonce not ours, another client's, or too old.
    pub stale_nonces: u64,
    /// 401: unknown user, wrong realm or wrong password (or shared secret).
    pub wrong_credentials: u64,
    /// 401: a shared-secret username past its expiry.
    pub expired: u64,
}

impl AuthStats {
    fn count(&mut self, rejection: Rejection) {
        let counter = match rejection {
            Rejection::Challenge => &mut self.challenges,
            Rejection::BadRequest => &mut self.bad_requests,
            Rejection::StaleNonce => &mut self.stale_nonces,
            Rejection::Expired => &mut self.expired,
            _ => &mut self.wrong_credentials,
        };
        *counter += 1;
    }
}

/// A TURN server endpoint: every allocation, routed by 5-tuple and relayed address.
///
/// # Drive loop
/// After every `handle_*` call — [`handle_client_datagram`](Self::handle_client_datagram),
/// [`handle_peer_datagram_into`](Self::handle_peer_datagram_into) (or
/// [`handle_peer_datagram`](Self::handle_peer_datagram)),
/// [`handle_peer_icmp`](Self::handle_peer_icmp),
/// [`handle_connection_closed`](Self::handle_connection_closed),
/// [`handle_timeout`](Self::handle_timeout) — send the [`TransmitRef`] it returned, if any,
/// then everything [`poll_transmit`](Self::poll_transmit) returns, act on everything
/// [`poll_event`](Self::poll_event) returns, and call `handle_timeout` at
/// [`poll_timeout`](Self::poll_timeout). Early, late or repeated `handle_timeout` calls are
/// harmless. Unauthenticated requests change nothing but the counters.
///
/// ```
/// use std::time::Instant;
/// use stun_proto::TransportProtocol;
/// use stun_proto::turn::server::{FiveTuple, Handled, TurnServer, TurnServerConfig};
/// # use rand_core::SeedableRng;
/// # let rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
///
/// let relays = vec!["203.0.113.1:49152".parse()?, "203.0.113.1:49153".parse()?];
/// let mut server = TurnServer::new(Instant::now(), TurnServerConfig::new("example.org", relays), rng);
/// server.add_user("alice", "secret")?;
/// // For each datagram on the listening socket:
/// let tuple = FiveTuple {
///     transport: TransportProtocol::Udp,
///     client: "198.51.100.7:50000".parse()?,
///     server: "203.0.113.1:3478".parse()?,
/// };
/// # let datagram = [0u8; 4];
/// match server.handle_client_datagram(Instant::now(), tuple, &datagram) {
///     Handled::Relay(t) => { /* send t.payload from the relay socket t.source to t.destination */ }
///     _ => {}
/// }
/// while let Some(t) = server.poll_transmit() { /* send t from t.source to t.destination */ }
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct TurnServer<R> {
    config: TurnServerConfig,
    auth: LongTermAuth,
    pool: RelayPool,
    allocations: HashMap<AllocationId, Allocation, FoldHash>,
    by_tuple: HashMap<FiveTuple, AllocationId, FoldHash>,
    by_relay: HashMap<SocketAddr, AllocationId, FoldHash>,
    per_user: HashMap<String, usize>,
    timers: BTreeSet<(Instant, AllocationId)>,
    peer_connections: PeerConnections,
    next_id: u64,
    transmits: VecDeque<(Transmit, Option<AllocationId>)>,
    events: VecDeque<ServerEvent>,
    stats: TurnServerStats,
    scratch: Vec<u8>,
    rng: R,
}

impl<R: RngCore + CryptoRng> TurnServer<R> {
    /// A server set up at `now` by `config`; nonce secrets, reservation tokens and
    /// indication transaction ids come from `rng`.
    pub fn new(now: Instant, config: TurnServerConfig, mut rng: R) -> Self {
        let auth = LongTermAuth::new(now, config.long_term.clone(), &mut rng);
        let hash = hashing::seeded(&mut rng);
        Self {
            pool: RelayPool::new(&config.relay_addresses),
            auth,
            config,
            allocations: HashMap::with_hasher(hash.clone()),
            by_tuple: HashMap::with_hasher(hash.clone()),
            by_relay: HashMap::with_hasher(hash.clone()),
            per_user: HashMap::new(),
            timers: BTreeSet::new(),
            peer_connections: PeerConnections::default(),
            next_id: 1,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: TurnServerStats::default(),
            scratch: Vec::new(),
            rng,
        }
    }

    /// Adds (or replaces) a long-term credential user (configuration only).
    pub fn add_user(&mut self, username: &str, password: &str) -> Result<(), CredentialError> {
        self.auth.add_user(username, password)
    }

    /// Adds a shared secret for "TURN REST API" usernames (`<unix-expiry>:<user>`, password
    /// `base64(HMAC-SHA1(secret, username))`; see [`crate::shared_secret`]); several may be
    /// live for a rotation, the newest tried first (configuration only).
    pub fn add_shared_secret(&mut self, secret: &str) -> Result<(), SharedSecretError> {
        self.auth.add_shared_secret(secret)
    }

    /// The wall clock read `since_epoch` after the Unix epoch at `now`: shared-secret
    /// usernames expire by it. Call it once at start and again now and then (the monotonic
    /// clock and the wall clock drift apart); until then every such username is refused.
    pub fn handle_unix_time(&mut self, now: Instant, since_epoch: Duration) {
        self.auth.handle_unix_time(now, since_epoch);
    }

    /// Removes a user; their allocations live on until they expire.
    pub fn remove_user(&mut self, username: &str) -> bool {
        self.auth.remove_user(username)
    }

    /// Offers a datagram (or, over TCP, one frame from the
    /// [`StreamFramer`](crate::turn::StreamFramer)) a client sent over `tuple`.
    pub fn handle_client_datagram<'a>(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        datagram: &'a [u8],
    ) -> Handled<'a> {
        if is_channel_data(datagram) {
            return self.relay_channel_data(now, tuple, datagram);
        }
        let Ok(message) = Message::parse(datagram) else {
            return match datagram.first() {
                Some(b) if b >> 6 == 0 => self.drop(DropReason::Malformed),
                _ => Handled::NotTurn,
            };
        };
        if message.has_fingerprint() && message.verify_fingerprint().is_err() {
            return self.drop(DropReason::Malformed);
        }
        if message.is_rfc3489() && message.method().is_turn() {
            // RFC 3489 had no TURN methods: without the magic cookie this is no TURN message
            // of any version, and an answer in the classic form would only invite more.
            return self.drop(DropReason::NoMagicCookie);
        }
        match (message.class(), message.method()) {
            (Class::Request, _) => {
                self.handle_request(now, tuple, &message);
                Handled::Answered
            }
            (Class::Indication, Method::SEND) => self.relay_send_indication(now, tuple, &message),
            _ => self.drop(DropReason::Unexpected),
        }
    }

    /// The client's TCP (or TLS) connection over `tuple` closed: its allocation, if any, is
    /// deleted at once (RFC 8656 §3.1: the allocation lives as long as the connection), with
    /// [`ServerEvent::AllocationDeleted`]; if it was an RFC 6062 client data connection, its
    /// peer connection goes with it ([`ServerEvent::PeerConnectionClosed`]). Returns
    /// whether there was either.
    pub fn handle_connection_closed(&mut self, now: Instant, tuple: FiveTuple) -> bool {
        let _ = now;
        match self.by_tuple.get(&tuple).copied() {
            Some(id) => {
                self.delete(id, DeleteReason::ConnectionClosed);
                true
            }
            None => self.data_connection_closed(tuple),
        }
    }

    /// Expires allocations, permissions, channels and port reservations whose time has
    /// come.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.pool.expire(now);
        self.expire_peer_connections(now);
        while let Some(&(at, id)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.remove(&(at, id));
            let Some(allocation) = self.allocations.get_mut(&id) else {
                continue;
            };
            allocation.scheduled = None;
            if allocation.expiry() <= now {
                self.delete(id, DeleteReason::Expired);
            } else {
                // One family of a dual allocation may run out before the other (§8.2).
                if let Some(released) = allocation.take_expired_family(now) {
                    self.by_relay.remove(&released);
                    self.pool.release(released);
                }
                if let Some(allocation) = self.allocations.get_mut(&id) {
                    allocation.expire(now);
                }
                self.reschedule(now, id);
            }
        }
    }

    /// The next response or queued relay datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let (transmit, id) = self.transmits.pop_front()?;
        shrink_when_drained(&mut self.transmits);
        if let Some(a) = id.and_then(|id| self.allocations.get_mut(&id)) {
            a.queued_bytes = a.queued_bytes.saturating_sub(transmit.payload.len());
        }
        Some(transmit)
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        let event = self.events.pop_front()?;
        shrink_when_drained(&mut self.events);
        Some(event)
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_timer().map(|(_, at)| at)
    }

    /// The earliest deadline and what it is for.
    pub fn next_timer(&self) -> Option<(Timer, Instant)> {
        let deadlines = [
            self.timers.first().map(|(at, _)| *at),
            self.pool.next_deadline(),
            self.peer_connections.next_deadline(),
        ];
        Timer::ALL
            .into_iter()
            .zip(deadlines)
            .filter_map(|(timer, at)| Some((timer, at?)))
            .min_by_key(|(_, at)| *at)
    }

    /// How many allocations exist.
    pub fn allocation_count(&self) -> usize {
        self.allocations.len()
    }

    /// The allocation reached by `tuple`, if any.
    pub fn allocation_by_tuple(&self, tuple: &FiveTuple) -> Option<AllocationId> {
        self.by_tuple.get(tuple).copied()
    }

    /// When allocation `id` expires, unless refreshed.
    pub fn expires_at(&self, id: AllocationId) -> Option<Instant> {
        self.allocations.get(&id).map(|a| a.expiry())
    }

    /// Installed permissions and live channels of allocation `id` at `now`.
    pub fn peer_counts(&self, now: Instant, id: AllocationId) -> Option<(usize, usize)> {
        self.allocations.get(&id).map(|a| a.counts(now))
    }

    /// The RESERVATION-TOKEN of `datagram` if it is an Allocate request naming a
    /// reservation this server does not hold (it answers such a request with 508). A driver
    /// running several machines looks here before [`handle_client_datagram`]: a client's
    /// second allocation (RTCP's, redeeming the token RTP's got) may reach another machine
    /// than its first, and the machine that made the token
    /// ([`TurnServerConfig::reservation_tag`]) can hand the reservation over
    /// ([`handle_reservation_export`](Self::handle_reservation_export),
    /// [`handle_reservation_import`](Self::handle_reservation_import)) before this one is
    /// given the request.
    ///
    /// [`handle_client_datagram`]: Self::handle_client_datagram
    pub fn foreign_reservation(&self, datagram: &[u8]) -> Option<ReservationToken> {
        // Allocate requests only (type 0x0003): nothing else is parsed.
        if datagram.get(..2) != Some(&[0x00, 0x03]) {
            return None;
        }
        let token = Message::parse(datagram)
            .ok()?
            .get::<ReservationToken>()?
            .ok()?;
        (!self.pool.holds(token)).then_some(token)
    }

    /// Gives up the live reservation under `token`: its address leaves this server's pool,
    /// for the caller to move (with its socket) to the machine that asked
    /// ([`foreign_reservation`](Self::foreign_reservation)). `None` if no live reservation
    /// has that token.
    pub fn handle_reservation_export(
        &mut self,
        now: Instant,
        token: ReservationToken,
    ) -> Option<Reservation> {
        let (address, expires_at) = self.pool.export(now, token)?;
        Some(Reservation {
            address,
            token,
            expires_at,
        })
    }

    /// Adopts a reservation another machine gave up: its address joins this server's pool,
    /// reserved under its token until it expires (an Allocate redeeming the token now gets
    /// it), or free if that time has come (the caller's socket for it stays of use). Whether
    /// the reservation is live here; false too, and nothing changes, if the address is in
    /// the pool already.
    pub fn handle_reservation_import(&mut self, now: Instant, reservation: Reservation) -> bool {
        let live = reservation.expires_at > now;
        let reserved = live.then_some((reservation.token, reservation.expires_at));
        self.pool.import(reservation.address, reserved) && live
    }

    /// Relay addresses not in use or reserved.
    pub fn free_relay_addresses(&self) -> usize {
        self.pool.free()
    }

    /// Counters.
    pub const fn stats(&self) -> &TurnServerStats {
        &self.stats
    }

    /// The configuration.
    pub const fn config(&self) -> &TurnServerConfig {
        &self.config
    }

    /// Whether the filter lets data go to `peer`, one of our relayed addresses counting as
    /// [`PeerClass::OwnRelay`].
    fn is_peer_allowed(&self, peer: SocketAddr) -> bool {
        let is_relay = self.pool.contains(peer);
        self.config.peer_filter.is_allowed_peer(peer, is_relay)
    }

    fn drop<'a>(&mut self, reason: DropReason) -> Handled<'a> {
        self.stats.dropped += 1;
        if reason == DropReason::BandwidthExceeded {
            self.stats.over_bandwidth += 1;
        }
        Handled::Dropped(reason)
    }

    /// Queues a transmit within the queue bound and the allocation's buffered-data bound.
    fn enqueue(&mut self, transmit: Transmit, id: Option<AllocationId>) -> bool {
        if self.transmits.len() >= self.config.max_queued_transmits {
            return false;
        }
        if let Some(a) = id.and_then(|id| self.allocations.get_mut(&id)) {
            let len = transmit.payload.len();
            if a.queued_bytes + len > self.config.max_buffered_per_allocation {
                return false;
            }
            a.queued_bytes += len;
        }
        self.transmits.push_back((transmit, id));
        true
    }

    fn push_event(&mut self, event: ServerEvent) {
        if self.events.len() >= MAX_EVENTS {
            self.stats.events_dropped += 1;
        } else {
            self.events.push_back(event);
        }
    }

    /// Puts allocation `id` under its earliest deadline.
    fn reschedule(&mut self, now: Instant, id: AllocationId) {
        let Some(allocation) = self.allocations.get_mut(&id) else {
            return;
        };
        if let Some(old) = allocation.scheduled.take() {
            self.timers.remove(&(old, id));
        }
        let at = allocation.next_deadline(now);
        allocation.scheduled = Some(at);
        self.timers.insert((at, id));
    }

    /// Removes allocation `id` and gives its addresses back.
    fn delete(&mut self, id: AllocationId, reason: DeleteReason) {
        let Some(allocation) = self.allocations.remove(&id) else {
            return;
        };
        #[cfg(feature = "tracing")]
        tracing::info!(
            target: "turn",
            allocation = id.0,
            client = %allocation.tuple.client,
            "allocation deleted: {reason:?}"
        );
        if let Some(at) = allocation.scheduled {
            self.timers.remove(&(at, id));
        }
        if allocation.tcp {
            self.close_peer_connections_of(id);
        }
        self.by_tuple.remove(&allocation.tuple);
        for relayed in allocation.relayed_addresses() {
            self.by_relay.remove(&relayed);
            self.pool.release(relayed);
        }
        if let Some(count) = self.per_user.get_mut(&allocation.username) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_user.remove(&allocation.username);
            }
        }
        self.shrink_tables();
        self.push_event(ServerEvent::AllocationDeleted { id, reason });
    }

    /// Gives back what a burst of allocations made the tables grow, once one is at most a
    /// quarter full: a hash table keeps its capacity when emptied, so a server that once
    /// held 100,000 allocations would hold their tables' memory for good (the soak in
    /// `tests/soak`). The quarter between growing and shrinking keeps the rehashing, O(len)
    /// each time, to O(1) per deletion on average.
    fn shrink_tables(&mut self) {
        fn shrink<K: Eq + Hash, V, S: BuildHasher>(table: &mut HashMap<K, V, S>) {
            let len = table.len();
            // An empty table is given back whole; a small one keeps its memory.
            let kept = match len {
                0 => 0,
                len => MIN_TABLE_CAPACITY.max(len.saturating_mul(4)),
            };
            if table.capacity() > kept {
                table.shrink_to(len.saturating_mul(2));
            }
        }
        shrink(&mut self.allocations);
        shrink(&mut self.by_tuple);
        shrink(&mut self.by_relay);
        shrink(&mut self.per_user);
    }
}

/// Gives back what a burst made a bounded queue grow to (4,096 events, some 750 KiB, after
/// a mass expiry), once it is drained.
fn shrink_when_drained<T>(queue: &mut VecDeque<T>) {
    if queue.is_empty() && queue.capacity() > MIN_TABLE_CAPACITY {
        queue.shrink_to(0);
    }
}

/// A response under construction.
type Response = MessageBuilder<BytesMut>;

#[cfg(test)]
mod tests;
