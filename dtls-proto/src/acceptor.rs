//! The front door of a DTLS server that answers many clients on one socket: ClientHellos from
//! sources that have no association yet (RFC 6347 §4.2.1 cookie exchange, §4.2.3 reassembly).
//!
//! ```text
//! datagram from an unknown source ──► Acceptor::handle_datagram
//!   fragments of a ClientHello   ──► held per source, bounded per source and in total
//!   complete, no valid cookie    ──► HelloVerifyRequest queued, nothing kept
//!     (offering DTLS 1.3)        ──► HelloRetryRequest with a cookie queued, nothing kept
//!   complete, valid cookie       ──► Accept::Hello ──► Dtls::accept: the association starts
//! ```
//!
//! DTLS 1.3 (RFC 9147 §5.1) replaces HelloVerifyRequest by a HelloRetryRequest carrying a
//! cookie extension. An acceptor built [`with_dtls13`](Acceptor::with_dtls13) answers a
//! ClientHello that offers 1.3 that way: it chooses the suite and group from a copy of the
//! server's preferences, so the HelloRetryRequest also asks for the key share the server
//! wants (RFC 8446 §4.1.4), and the cookie (layout in `server13.rs`) carries the hash of the
//! first ClientHello, which the server needs for its transcript (RFC 8446 §4.4.1).
//!
//! This is what quinn's endpoint does for QUIC Retry: a spoofed source never gets more than
//! the assembly of one ClientHello, and the table of those is bounded; when it is full the
//! oldest partial hello is evicted (a real client retransmits its flight). The cookie is an
//! HMAC under a secret drawn from the injected RNG over the client's address and the
//! ClientHello without its cookie, so it is checked with no state at all.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use foldhash::fast::FixedState;
use rand_core::CryptoRng;

use crate::config::DEFAULT_MAX_CLIENT_HELLO_LEN;
use crate::crypto::CryptoProvider;
use crate::demux::{PacketKind, classify};
use crate::engine::stateless_record;
use crate::fragment::{HelloAssembler, HelloFragment, Message};
use crate::handshake::hello::{ClientHello, HelloVerifyRequest};
use crate::handshake::{FragmentView, HandshakeType};
use crate::initial_hello::RetryCookie;
use crate::record::{ContentType, records};
use crate::server::{cookie, cookie_matches};
use crate::server13::{OwnedPreferences, Stateless, check_stateless, hello_offers_13};
use crate::{Config, ProtocolVersion};

/// A client as the acceptor tells it apart: our local address and its address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Route {
    local: SocketAddr,
    remote: SocketAddr,
}

/// Bound on queued HelloVerifyRequests and HelloRetryRequests.
pub const MAX_ACCEPTOR_TRANSMITS: usize = 256;

/// Limits and policy of an [`Acceptor`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AcceptorConfig {
    /// Answer a ClientHello without a valid cookie with a HelloVerifyRequest (RFC 6347
    /// §4.2.1); off, every complete ClientHello is accepted.
    pub cookies: bool,
    /// Sources whose ClientHello may be in reassembly at once.
    pub max_pending: usize,
    /// Largest ClientHello reassembled.
    pub max_client_hello_len: usize,
}

impl Default for AcceptorConfig {
    /// Cookies on, 1024 partial hellos of at most 8 KiB: at most 8 MiB held for strangers.
    fn default() -> Self {
        Self {
            cookies: true,
            max_pending: 1024,
            max_client_hello_len: DEFAULT_MAX_CLIENT_HELLO_LEN,
        }
    }
}

/// A HelloVerifyRequest or HelloRetryRequest to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptorTransmit {
    /// Our local address the ClientHello arrived on: send from there.
    pub source: SocketAddr,
    /// The client it answers.
    pub destination: SocketAddr,
    /// One DTLS record.
    pub payload: Bytes,
}

/// A ClientHello that passed the cookie check: hand it to [`Dtls::accept`](crate::Dtls::accept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedHello {
    /// Where it came from.
    pub source: SocketAddr,
    /// Our local address it arrived on.
    pub destination: SocketAddr,
    /// Sequence number of the record that completed it.
    pub record_seq: u64,
    /// The reassembled message.
    pub(crate) message: Message,
    /// Its parsed form.
    pub(crate) hello: ClientHello,
    /// DTLS 1.3: what the cookie of our HelloRetryRequest carried back.
    pub(crate) retry: Option<RetryCookie>,
}

/// What [`Acceptor::handle_datagram`] did with a datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Accept {
    /// A ClientHello with a valid cookie (or any, with cookies off): start an association.
    Hello(Box<AcceptedHello>),
    /// A fragment was stored; the rest of the ClientHello is awaited.
    Pending,
    /// A ClientHello without a valid cookie was answered with a HelloVerifyRequest.
    VerifyRequested,
    /// A DTLS 1.3 ClientHello without a valid cookie was answered with a HelloRetryRequest
    /// (RFC 9147 §5.1).
    RetryRequested,
    /// Nothing usable (counted in [`AcceptorStats`]).
    Dropped,
    /// Not DTLS by its first byte (RFC 7983); returned to the caller untouched.
    NotDtls(PacketKind),
}

/// Counters of an [`Acceptor`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AcceptorStats {
    /// Records that were not an epoch-0 handshake record, or did not parse.
    pub records_dropped: u64,
    /// Fragments dropped: not a ClientHello, over the length bound, inconsistent.
    pub fragments_dropped: u64,
    /// Complete messages that did not parse as a ClientHello.
    pub hellos_malformed: u64,
    /// Partial hellos evicted to make room for a new source.
    pub pending_evicted: u64,
    /// HelloVerifyRequests sent.
    pub verify_requests: u64,
    /// HelloRetryRequests sent (DTLS 1.3).
    pub retry_requests: u64,
    /// DTLS 1.3 ClientHellos with nothing in common with the server (suite, group, signature
    /// algorithm, SRTP profile) or that ignored our HelloRetryRequest: dropped, no state.
    pub hellos_refused: u64,
    /// HelloVerifyRequests dropped because the transmit queue was full.
    pub transmits_dropped: u64,
    /// ClientHellos accepted.
    pub accepted: u64,
}

/// Receives ClientHellos for a DTLS server before any per-client state exists.
///
/// # Drive loop
///
/// Route a datagram from a source with no association to
/// [`handle_datagram`](Self::handle_datagram); on [`Accept::Hello`] create the association
/// with [`Dtls::accept`](crate::Dtls::accept) and route that source to it from then on. After
/// each call drain [`poll_transmit`](Self::poll_transmit). The acceptor has no timers: the
/// client's retransmissions drive the exchange.
pub struct Acceptor {
    provider: &'static dyn CryptoProvider,
    cookie_secret: [u8; 32],
    config: AcceptorConfig,
    /// The server's DTLS 1.3 preferences, when it speaks 1.3.
    dtls13: Option<OwnedPreferences>,
    pending: HashMap<Route, HelloAssembler, FixedState>,
    /// Routes in `pending`, oldest first (entries of completed hellos are skipped lazily).
    order: VecDeque<Route>,
    transmits: VecDeque<AcceptorTransmit>,
    stats: AcceptorStats,
}

impl Acceptor {
    /// An acceptor whose cookie secret and table hash key come from `rng`.
    pub fn new(
        provider: &'static dyn CryptoProvider,
        rng: &mut dyn CryptoRng,
        config: AcceptorConfig,
    ) -> Self {
        let mut cookie_secret = [0u8; 32];
        rng.fill_bytes(&mut cookie_secret);
        Self {
            provider,
            cookie_secret,
            config,
            dtls13: None,
            pending: HashMap::with_hasher(FixedState::with_seed(rng.next_u64())),
            order: VecDeque::new(),
            transmits: VecDeque::new(),
            stats: AcceptorStats::default(),
        }
    }

    /// Answers DTLS 1.3 ClientHellos as the servers made from `server` with
    /// [`Dtls::accept`](crate::Dtls::accept) will: their suites, groups and SRTP profiles in
    /// their order (RFC 9147 §5.1). Without it, or if `server` does not speak DTLS 1.3, every
    /// ClientHello gets a HelloVerifyRequest.
    pub fn with_dtls13(mut self, server: &Config) -> Self {
        self.dtls13 = server
            .speaks(ProtocolVersion::Dtls13)
            .then(|| OwnedPreferences::of(server));
        self
    }

    /// Feeds a datagram from `source`, which has no association yet, received on our local
    /// address `destination` (an endpoint may listen on several): the machines' face
    /// (docs/architecture.md) but the transport, DTLS running over datagrams only. Its
    /// cookie is bound to both addresses, so it does not open another local port.
    pub fn handle_datagram(
        &mut self,
        _now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        datagram: &[u8],
    ) -> Accept {
        let route = Route {
            local: destination,
            remote: source,
        };
        match classify(datagram) {
            PacketKind::Dtls => {}
            other => return Accept::NotDtls(other),
        }
        let mut outcome = Accept::Dropped;
        for record in records(datagram) {
            let Ok(record) = record else {
                self.stats.records_dropped += 1;
                break;
            };
            if record.header.epoch != 0 || record.header.content_type != ContentType::Handshake {
                self.stats.records_dropped += 1;
                continue;
            }
            let mut rest = record.fragment;
            while !rest.is_empty() {
                let Ok((frag, tail)) = FragmentView::parse(rest) else {
                    self.stats.fragments_dropped += 1;
                    break;
                };
                rest = tail;
                match self.insert(route, &frag) {
                    HelloFragment::Complete(message) => {
                        return self.complete(route, record.header.sequence, message);
                    }
                    HelloFragment::Buffered => outcome = Accept::Pending,
                    HelloFragment::Dropped(_) => self.stats.fragments_dropped += 1,
                }
            }
        }
        outcome
    }

    /// The next HelloVerifyRequest or HelloRetryRequest to send.
    pub fn poll_transmit(&mut self) -> Option<AcceptorTransmit> {
        self.transmits.pop_front()
    }

    /// Counters.
    pub fn stats(&self) -> AcceptorStats {
        self.stats
    }

    /// Sources with a ClientHello in reassembly.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Bytes held for ClientHellos in reassembly (at most `max_pending ×
    /// max_client_hello_len`).
    pub fn buffered_len(&self) -> usize {
        self.pending
            .values()
            .map(HelloAssembler::buffered_len)
            .sum()
    }

    fn insert(&mut self, route: Route, frag: &FragmentView<'_>) -> HelloFragment {
        if let Some(assembler) = self.pending.get_mut(&route) {
            let outcome = assembler.insert(frag);
            if matches!(outcome, HelloFragment::Complete(_)) {
                self.pending.remove(&route);
            }
            return outcome;
        }
        let mut assembler = HelloAssembler::new(self.config.max_client_hello_len);
        let outcome = assembler.insert(frag);
        if outcome == HelloFragment::Buffered {
            self.make_room();
            if self.config.max_pending > 0 {
                self.pending.insert(route, assembler);
                self.order.push_back(route);
            }
        }
        outcome
    }

    /// Evicts the oldest partial hellos until one more fits.
    fn make_room(&mut self) {
        while self.pending.len() >= self.config.max_pending {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if self.pending.remove(&oldest).is_some() {
                self.stats.pending_evicted += 1;
            }
        }
        // Entries of hellos completed since are stale: keep the queue within twice the table.
        if self.order.len() > self.config.max_pending.saturating_mul(2) {
            let pending = &self.pending;
            self.order.retain(|s| pending.contains_key(s));
        }
    }

    fn complete(&mut self, route: Route, record_seq: u64, message: Message) -> Accept {
        let Ok(hello) = ClientHello::parse(&message.body) else {
            self.stats.hellos_malformed += 1;
            return Accept::Dropped;
        };
        let bound_to = [address_bytes(route.remote), address_bytes(route.local)].concat();
        let mut retry = None;
        match &self.dtls13 {
            Some(preferences) if self.config.cookies && hello_offers_13(&hello) => {
                match check_stateless(
                    self.provider,
                    &self.cookie_secret,
                    preferences.borrow(),
                    &bound_to,
                    &hello,
                    &message.body,
                ) {
                    Ok(Stateless::Verified(cookie)) => retry = Some(cookie),
                    Ok(Stateless::Retry(hrr)) => {
                        let sent = self.send_stateless(
                            route,
                            record_seq,
                            HandshakeType::ServerHello,
                            message.seq,
                            &hrr,
                        );
                        self.stats.retry_requests += u64::from(sent);
                        return Accept::RetryRequested;
                    }
                    Err(_) => {
                        self.stats.hellos_refused += 1;
                        return Accept::Dropped;
                    }
                }
            }
            // A 1.3 hello without cookies: the server chooses, and asks for another share
            // with a HelloRetryRequest of its own if it must.
            Some(_) if hello_offers_13(&hello) => {}
            _ if self.config.cookies => {
                let expected = cookie(self.provider, &self.cookie_secret, &bound_to, &hello);
                if !cookie_matches(&hello, &expected) {
                    let mut body = Vec::new();
                    HelloVerifyRequest::new(expected.to_vec()).encode(&mut body);
                    let sent = self.send_stateless(
                        route,
                        record_seq,
                        HandshakeType::HelloVerifyRequest,
                        message.seq,
                        &body,
                    );
                    self.stats.verify_requests += u64::from(sent);
                    return Accept::VerifyRequested;
                }
            }
            _ => {}
        }
        self.stats.accepted += 1;
        Accept::Hello(Box::new(AcceptedHello {
            source: route.remote,
            destination: route.local,
            record_seq,
            message,
            hello,
            retry,
        }))
    }

    /// Queues one clear-text handshake record for `route`; false when the queue is full.
    fn send_stateless(
        &mut self,
        route: Route,
        record_seq: u64,
        msg_type: HandshakeType,
        message_seq: u16,
        body: &[u8],
    ) -> bool {
        if self.transmits.len() >= MAX_ACCEPTOR_TRANSMITS {
            self.stats.transmits_dropped += 1;
            return false;
        }
        let payload = stateless_record(record_seq, msg_type, message_seq, body);
        self.transmits.push_back(AcceptorTransmit {
            source: route.local,
            destination: route.remote,
            payload: Bytes::from(payload),
        });
        true
    }
}

impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acceptor")
            .field("config", &self.config)
            .field("pending", &self.pending.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// The address a cookie is bound to: IP and port, family-tagged.
fn address_bytes(address: SocketAddr) -> Vec<u8> {
    let mut out = Vec::with_capacity(19);
    match address {
        SocketAddr::V4(a) => {
            out.push(4);
            out.extend_from_slice(&a.ip().octets());
        }
        SocketAddr::V6(a) => {
            out.push(6);
            out.extend_from_slice(&a.ip().octets());
        }
    }
    out.extend_from_slice(&address.port().to_be_bytes());
    out
}
