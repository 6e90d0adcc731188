//! STUN client transactions (RFC 8489 §6.2): send a request, retransmit it over UDP on an RTO
//! that doubles (§6.2.1: Rc requests in all, then wait Rm × RTO), or send it once over TCP and
//! wait Ti (§6.2.2); match the response by transaction id and source; report the outcome.
//!
//! Flow of one transaction:
//! ```text
//! handle_request ──► AwaitingFirstSend ──(pacing slot)──► AwaitingResponse
//!                        (only with pacing)                 │  ├─ RTO expired, sends < Rc: retransmit, RTO × 2
//!                                                           │  ├─ last wait expired: Timeout
//!                                                           │  └─ response from the destination: Response
//!                                                           └─ handle_transport_error: Error
//! ```
//!
//! The starting RTO for a server comes from the [`RtoCache`] (RFC 8489 §6.2.1, RFC 6298), fed
//! by the RTT of transactions answered before any retransmission (Karn's algorithm). New
//! transactions can be paced (RFC 8445 §14: ICE's Ta) by
//! [`TransactionConfig::pacing_interval`]; the RFC 8489 §6.2 limit of ten outstanding
//! transactions per server is [`TransactionConfig::max_outstanding_per_server`].

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use thiserror::Error;

use crate::backoff::{Backoff, Expiry, Schedule};
use crate::header::{Class, TransactionId};
use crate::message::Message;
use crate::rto::RtoCache;
use crate::time::saturating_add;
use crate::transmit::{Transmit, TransportProtocol};

/// How many answered or timed-out transactions are remembered to tell a late or duplicate
/// response from an unknown one.
const RECENT: usize = 32;

/// Transaction timing and limits. The defaults are RFC 8489's.
#[derive(Clone, Debug)]
pub struct TransactionConfig {
    /// RTO for a server with no cached estimate (RFC 8489 §6.2.1: 500 ms or more). Default
    /// 500 ms.
    pub initial_rto: Duration,
    /// Lower bound of a measured RTO. Default 500 ms: RFC 6298 asks for 1 s, RFC 8489 lets
    /// STUN use its initial 500 ms.
    pub min_rto: Duration,
    /// Upper bound of any RTO, doubled or measured (RFC 6298 §2.5). Default 60 s.
    pub max_rto: Duration,
    /// Rc: requests sent in all over an unreliable transport (RFC 8489 §6.2.1). Default 7.
    pub request_count: u32,
    /// Rm: after the last request, wait Rm × the starting RTO before giving up. Default 16.
    pub last_wait_factor: u32,
    /// Ti: how long to wait for a response over a reliable transport (§6.2.2). Default
    /// 39.5 s.
    pub reliable_timeout: Duration,
    /// The most transactions outstanding at once, counting outcomes not yet polled. Default
    /// 64.
    pub max_outstanding: usize,
    /// The most transactions outstanding to one server (same IP address); RFC 8489 §6.2 says
    /// ten. `None`: no per-server limit (ICE, which paces by Ta instead).
    pub max_outstanding_per_server: Option<usize>,
    /// The least time between the first sends of two new transactions (RFC 8445 §14's Ta).
    /// `None`: a new transaction is sent at once.
    pub pacing_interval: Option<Duration>,
    /// How many servers' RTO estimates are cached. Default 32.
    pub rto_cache_size: usize,
    /// How long a cached RTO lives without a transaction (RFC 8489 §6.2.1: 10 minutes).
    pub rto_cache_lifetime: Duration,
}

impl Default for TransactionConfig {
    fn default() -> Self {
        Self {
            initial_rto: Duration::from_millis(500),
            min_rto: Duration::from_millis(500),
            max_rto: Duration::from_secs(60),
            request_count: 7,
            last_wait_factor: 16,
            reliable_timeout: Duration::from_millis(39_500),
            max_outstanding: 64,
            max_outstanding_per_server: Some(10),
            pacing_interval: None,
            rto_cache_size: 32,
            rto_cache_lifetime: Duration::from_secs(600),
        }
    }
}

impl TransactionConfig {
    /// The retransmission schedule these settings give (Rc, Rm, the RTO cap).
    pub const fn schedule(&self) -> Schedule {
        Schedule {
            request_count: self.request_count,
            last_wait_factor: self.last_wait_factor,
            max_rto: self.max_rto,
        }
    }
}

/// A request to run as a transaction: the encoded message and where it goes.
#[derive(Clone, Debug)]
pub struct Request {
    transport: TransportProtocol,
    source: SocketAddr,
    destination: SocketAddr,
    payload: Bytes,
    any_source: bool,
    any_destination: bool,
    initial_rto: Option<Duration>,
}

impl Request {
    /// A request `payload` (an encoded STUN request) sent from `source` to `destination`.
    pub fn new(
        transport: TransportProtocol,
        source: SocketAddr,
        destination: SocketAddr,
        payload: Bytes,
    ) -> Self {
        Self {
            transport,
            source,
            destination,
            payload,
            any_source: false,
            any_destination: false,
            initial_rto: None,
        }
    }

    /// Accepts the response from any address, not only the destination: for RFC 5780
    /// CHANGE-REQUEST, whose answer comes from the server's other address or port.
    pub fn accept_response_from_any_address(mut self) -> Self {
        self.any_source = true;
        self
    }

    /// Accepts the response on any local address, not only the one the request left
    /// from: for RFC 5780 RESPONSE-PORT, whose answer goes to another port of ours.
    pub fn accept_response_on_any_local_address(mut self) -> Self {
        self.any_destination = true;
        self
    }

    /// Starts this transaction with `rto` instead of the server's cached or initial RTO:
    /// ICE computes its own (RFC 8445 §14.3: RTO = max(500 ms, N × Ta)).
    pub fn with_initial_rto(mut self, rto: Duration) -> Self {
        self.initial_rto = Some(rto);
        self
    }

    /// Where the request goes.
    pub const fn destination(&self) -> SocketAddr {
        self.destination
    }
}

/// Why a transaction could not start.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TransactionError {
    /// [`TransactionConfig::max_outstanding`] transactions (or unpolled outcomes) exist.
    #[error("{limit} transactions outstanding: the table is full")]
    TooManyTransactions {
        /// The limit.
        limit: usize,
    },
    /// [`TransactionConfig::max_outstanding_per_server`] transactions to this server exist.
    #[error("{limit} transactions to {server} outstanding")]
    TooManyToServer {
        /// The server's address.
        server: IpAddr,
        /// The limit.
        limit: usize,
    },
    /// The payload does not parse as a STUN request.
    #[error("payload is not a STUN request")]
    NotARequest,
    /// A transaction with this id is already outstanding.
    #[error("transaction {0:?} is already outstanding")]
    DuplicateTransactionId(TransactionId),
}

/// Why the transport failed a transaction, as the caller reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TransportFailure {
    /// An ICMP destination/port unreachable (RFC 8489 §6.2: the transaction fails).
    #[error("destination unreachable")]
    Unreachable,
    /// The TCP connection the request went over closed before the response.
    #[error("connection lost")]
    ConnectionLost,
}

/// What the application learns about its transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransactionEvent {
    /// A success or error response arrived: the transaction is over.
    Response {
        /// The transaction.
        id: TransactionId,
        /// Success or Error.
        class: Class,
        /// Where the response came from.
        from: SocketAddr,
        /// The round-trip time, when the request was not retransmitted (Karn).
        rtt: Option<Duration>,
        /// The response's bytes, to parse with [`Message::parse`].
        message: Bytes,
    },
    /// No response within Rc sends and the last wait (UDP) or Ti (TCP).
    Timeout {
        /// The transaction.
        id: TransactionId,
        /// Where the request went.
        destination: SocketAddr,
    },
    /// The transport reported a failure ([`ClientTransactions::handle_transport_error`]).
    Error {
        /// The transaction.
        id: TransactionId,
        /// Where the request went.
        destination: SocketAddr,
        /// What failed.
        failure: TransportFailure,
    },
}

/// What [`ClientTransactions::handle_response`] did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Handled {
    /// It answered this transaction; a [`TransactionEvent::Response`] is queued.
    Response(TransactionId),
    /// It was not used, for this reason.
    Dropped(DropReason),
}

/// Why a received message did not complete a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// Not a success or error response.
    NotAResponse,
    /// No transaction has this id: not ours (hand it to someone else) or forged.
    UnknownTransaction,
    /// The transaction exists but the response came from another address than the request
    /// went to.
    WrongSource,
    /// The transaction exists but the response arrived on another local address or over
    /// another transport than the request left from.
    WrongDestination,
    /// A second response to a transaction already answered.
    Duplicate,
    /// A response to a transaction that had already timed out or failed.
    Late,
    /// The message's FINGERPRINT does not match (RFC 8489 §7.3: discard it).
    BadFingerprint,
}

/// Counters, for operators and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransactionStats {
    /// Transactions started.
    pub started: u64,
    /// Retransmissions sent.
    pub retransmissions: u64,
    /// Transactions answered.
    pub responses: u64,
    /// Transactions timed out.
    pub timeouts: u64,
    /// Responses ignored as duplicates or late.
    pub duplicates_or_late: u64,
    /// Responses ignored: from another address than the request went to, or arriving on
    /// another local address or transport than it left from.
    pub wrong_source: u64,
    /// Responses matching no transaction.
    pub unknown: u64,
}

/// One outstanding transaction.
#[derive(Debug)]
struct Transaction {
    key: [u8; 16],
    id: TransactionId,
    request: Request,
    state: State,
}

/// Where a transaction stands.
#[derive(Debug)]
enum State {
    /// Paced: waits for its first send slot (RFC 8445 §14).
    AwaitingFirstSend,
    /// Sent at least once (RFC 8489 §6.2.1), on this schedule.
    AwaitingResponse(Backoff),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Answered,
    Abandoned,
}

/// The client side of STUN transactions, for any number of servers.
///
/// # Drive loop
/// After every `handle_*` call — [`handle_request`](Self::handle_request),
/// [`handle_response`](Self::handle_response), [`handle_timeout`](Self::handle_timeout),
/// [`handle_transport_error`](Self::handle_transport_error) — send everything
/// [`poll_transmit`](Self::poll_transmit) returns and act on everything
/// [`poll_event`](Self::poll_event) returns, until both give `None`; then arm a timer for
/// [`poll_timeout`](Self::poll_timeout) and call `handle_timeout` when it fires. Calling
/// `handle_timeout` early, late or twice is harmless.
///
/// ```
/// use std::time::{Duration, Instant};
/// use stun_proto::transaction::{ClientTransactions, Request, TransactionConfig, TransactionEvent};
/// use stun_proto::{MessageBuilder, MessageType, TransactionId, TransportProtocol};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let now = Instant::now();
/// let mut client = ClientTransactions::new(TransactionConfig::default());
/// let request = MessageBuilder::new_bytes(MessageType::BINDING_REQUEST, [9; 12].into());
/// let server = "192.0.2.1:3478".parse()?;
/// let local = "0.0.0.0:40000".parse()?;
/// client.handle_request(now, Request::new(TransportProtocol::Udp, local, server, request.into_bytes()))?;
/// let first = client.poll_transmit().expect("sent at once");
/// assert_eq!(first.destination, server);
/// // No answer: the first retransmission is due one RTO (500 ms) later.
/// assert_eq!(client.poll_timeout(), Some(now + Duration::from_millis(500)));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ClientTransactions {
    config: TransactionConfig,
    transactions: Vec<Transaction>,
    to_send: VecDeque<[u8; 16]>,
    events: VecDeque<TransactionEvent>,
    recent: VecDeque<([u8; 16], Outcome)>,
    rto_cache: RtoCache,
    last_first_send: Option<Instant>,
    stats: TransactionStats,
}

impl ClientTransactions {
    /// An empty transaction table.
    pub fn new(config: TransactionConfig) -> Self {
        let rto_cache = RtoCache::new(config.rto_cache_size, config.rto_cache_lifetime);
        Self {
            transactions: Vec::new(),
            to_send: VecDeque::new(),
            events: VecDeque::new(),
            // Grown as transactions end (bounded by `RECENT`): an agent that never asks a
            // STUN server anything keeps no room for answers.
            recent: VecDeque::new(),
            rto_cache,
            last_first_send: None,
            stats: TransactionStats::default(),
            config,
        }
    }

    /// Starts a transaction for `request`, whose payload is an encoded STUN request (RFC 8489
    /// or classic RFC 3489). It is sent at once, or at its pacing slot.
    pub fn handle_request(
        &mut self,
        now: Instant,
        request: Request,
    ) -> Result<TransactionId, TransactionError> {
        let message =
            Message::parse(&request.payload).map_err(|_| TransactionError::NotARequest)?;
        if message.class() != Class::Request {
            return Err(TransactionError::NotARequest);
        }
        let (key, id) = (message.rfc3489_transaction_id(), message.transaction_id());
        if self.transactions.iter().any(|t| t.key == key) {
            return Err(TransactionError::DuplicateTransactionId(id));
        }
        let limit = self.config.max_outstanding;
        if self.transactions.len() + self.events.len() >= limit {
            return Err(TransactionError::TooManyTransactions { limit });
        }
        let server = request.destination.ip();
        if let Some(limit) = self.config.max_outstanding_per_server {
            let count = self
                .transactions
                .iter()
                .filter(|t| t.request.destination.ip() == server)
                .count();
            if count >= limit {
                return Err(TransactionError::TooManyToServer { server, limit });
            }
        }
        self.recent.retain(|(k, _)| *k != key);
        self.stats.started += 1;
        self.transactions.push(Transaction {
            key,
            id,
            request,
            state: State::AwaitingFirstSend,
        });
        self.send_paced(now);
        Ok(id)
    }

    /// Offers a message received over `transport` from `source` on local address
    /// `destination` to the transactions: it answers one only if it arrived where that
    /// request left from, from where it went (unless the request accepts any source).
    pub fn handle_response(
        &mut self,
        now: Instant,
        transport: TransportProtocol,
        source: SocketAddr,
        destination: SocketAddr,
        message: &Message<'_>,
    ) -> Handled {
        let class = message.class();
        if !class.is_response() {
            return Handled::Dropped(DropReason::NotAResponse);
        }
        let key = message.rfc3489_transaction_id();
        let found = self
            .transactions
            .iter()
            .position(|t| t.key == key && matches!(t.state, State::AwaitingResponse(_)));
        let Some(index) = found else {
            let reason = match self.recent.iter().find(|(k, _)| *k == key) {
                Some((_, Outcome::Answered)) => DropReason::Duplicate,
                Some((_, Outcome::Abandoned)) => DropReason::Late,
                None => DropReason::UnknownTransaction,
            };
            match reason {
                DropReason::UnknownTransaction => self.stats.unknown += 1,
                _ => self.stats.duplicates_or_late += 1,
            }
            return Handled::Dropped(reason);
        };
        let t = &self.transactions[index];
        let elsewhere = !t.request.any_destination && t.request.source != destination;
        if t.request.transport != transport || elsewhere {
            self.stats.wrong_source += 1;
            return Handled::Dropped(DropReason::WrongDestination);
        }
        if !t.request.any_source && source != t.request.destination {
            self.stats.wrong_source += 1;
            return Handled::Dropped(DropReason::WrongSource);
        }
        let t = self.transactions.swap_remove(index);
        let State::AwaitingResponse(flight) = t.state else {
            return Handled::Dropped(DropReason::UnknownTransaction);
        };
        let server = t.request.destination.ip();
        let rtt = flight.rtt(now);
        let (min, max) = (self.config.min_rto, self.config.max_rto);
        match rtt {
            Some(rtt) => self.rto_cache.sample(now, server, rtt, min, max),
            // One doubling per answered transaction at most: an answer after several
            // retransmissions is as likely a run of losses as a slow server, and starting
            // the next transaction at the fully backed-off RTO (16 s after five sends)
            // would stall it at the first lost datagram. A slow server still gets its
            // larger RTO, one transaction at a time.
            None => {
                let backed_off = flight.rto().min(flight.initial_rto().saturating_mul(2));
                self.rto_cache.back_off(now, server, backed_off, max);
            }
        }
        self.stats.responses += 1;
        self.remember(key, Outcome::Answered);
        self.events.push_back(TransactionEvent::Response {
            id: t.id,
            class,
            from: source,
            rtt,
            message: Bytes::copy_from_slice(message.as_bytes()),
        });
        Handled::Response(t.id)
    }

    /// Retransmits, times out and sends paced requests whose time has come.
    pub fn handle_timeout(&mut self, now: Instant) {
        let schedule = self.config.schedule();
        let mut index = 0;
        while let Some(t) = self.transactions.get_mut(index) {
            let State::AwaitingResponse(flight) = &mut t.state else {
                index += 1;
                continue;
            };
            if !flight.is_due(now) {
                index += 1;
                continue;
            }
            // Over a reliable transport the one send's wait is over: a timeout (§6.2.2).
            let reliable = t.request.transport.is_reliable();
            if !reliable && flight.on_expired(now, &schedule) == Expiry::Retransmit {
                self.stats.retransmissions += 1;
                if !self.to_send.contains(&t.key) {
                    self.to_send.push_back(t.key);
                }
                index += 1;
                continue;
            }
            let t = self.transactions.swap_remove(index);
            self.stats.timeouts += 1;
            self.remember(t.key, Outcome::Abandoned);
            self.events.push_back(TransactionEvent::Timeout {
                id: t.id,
                destination: t.request.destination,
            });
        }
        self.send_paced(now);
    }

    /// Fails every transaction to `destination`: the transport reported it unreachable or
    /// the connection lost.
    pub fn handle_transport_error(
        &mut self,
        now: Instant,
        destination: SocketAddr,
        failure: TransportFailure,
    ) {
        let _ = now;
        let mut index = 0;
        while let Some(t) = self.transactions.get(index) {
            if t.request.destination != destination {
                index += 1;
                continue;
            }
            let t = self.transactions.swap_remove(index);
            self.remember(t.key, Outcome::Abandoned);
            self.events.push_back(TransactionEvent::Error {
                id: t.id,
                destination,
                failure,
            });
        }
    }

    /// Abandons a transaction without an event; a later response counts as late. Returns
    /// whether it existed.
    pub fn handle_cancel(&mut self, now: Instant, id: TransactionId) -> bool {
        let _ = now;
        let Some(index) = self.transactions.iter().position(|t| t.id == id) else {
            return false;
        };
        let t = self.transactions.swap_remove(index);
        self.remember(t.key, Outcome::Abandoned);
        true
    }

    /// Changes the pacing interval (Ta) for first sends from now on (configuration only;
    /// the next slot is computed from the last first send).
    pub fn set_pacing_interval(&mut self, interval: Option<Duration>) {
        self.config.pacing_interval = interval;
    }

    /// The next request (first send or retransmission) to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        while let Some(key) = self.to_send.pop_front() {
            if let Some(t) = self.transactions.iter().find(|t| t.key == key) {
                let r = &t.request;
                return Some(Transmit {
                    transport: r.transport,
                    source: r.source,
                    destination: r.destination,
                    payload: r.payload.clone(),
                });
            }
        }
        None
    }

    /// The next outcome.
    pub fn poll_event(&mut self) -> Option<TransactionEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let retransmit = self
            .transactions
            .iter()
            .filter_map(|t| match &t.state {
                State::AwaitingResponse(f) => Some(f.next_at()),
                State::AwaitingFirstSend => None,
            })
            .min();
        let paced = self
            .transactions
            .iter()
            .any(|t| matches!(t.state, State::AwaitingFirstSend))
            .then(|| self.next_first_send_at())
            .flatten();
        match (retransmit, paced) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// How many transactions are outstanding (sent or waiting for their pacing slot).
    pub fn outstanding(&self) -> usize {
        self.transactions.len()
    }

    /// Whether the transaction `id` is outstanding.
    pub fn is_outstanding(&self, id: TransactionId) -> bool {
        self.transactions.iter().any(|t| t.id == id)
    }

    /// The RTO the next transaction to `server` would start with.
    pub fn rto(&self, now: Instant, server: IpAddr) -> Duration {
        self.rto_cache
            .rto(now, server)
            .unwrap_or(self.config.initial_rto)
    }

    /// The counters.
    pub const fn stats(&self) -> &TransactionStats {
        &self.stats
    }

    /// The configuration.
    pub const fn config(&self) -> &TransactionConfig {
        &self.config
    }

    /// When the next paced first send may go; `None` when one may go now or pacing is off.
    fn next_first_send_at(&self) -> Option<Instant> {
        let interval = self.config.pacing_interval?;
        self.last_first_send
            .map(|last| saturating_add(last, interval))
    }

    /// First-sends the oldest paced transactions whose slot has come.
    fn send_paced(&mut self, now: Instant) {
        loop {
            if self.next_first_send_at().is_some_and(|at| at > now) {
                return;
            }
            let Some(t) = self
                .transactions
                .iter_mut()
                .find(|t| matches!(t.state, State::AwaitingFirstSend))
            else {
                return;
            };
            let server = t.request.destination.ip();
            let rto = t.request.initial_rto.unwrap_or_else(|| {
                self.rto_cache
                    .rto(now, server)
                    .unwrap_or(self.config.initial_rto)
            });
            t.state = State::AwaitingResponse(if t.request.transport.is_reliable() {
                Backoff::once(now, self.config.reliable_timeout)
            } else {
                Backoff::start(now, rto, &self.config.schedule())
            });
            let key = t.key;
            self.to_send.push_back(key);
            self.rto_cache.touch(now, server);
            self.last_first_send = Some(now);
        }
    }

    fn remember(&mut self, key: [u8; 16], outcome: Outcome) {
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back((key, outcome));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::MessageBuilder;
    use crate::header::MessageType;
    use crate::test_support::{t0, very_early, very_late};

    const SERVER: &str = "192.0.2.1:3478";
    const LOCAL: &str = "10.0.0.2:40000";

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn request_bytes(tid: u8) -> Bytes {
        MessageBuilder::new_bytes(MessageType::BINDING_REQUEST, [tid; 12].into()).into_bytes()
    }

    fn udp(tid: u8) -> Request {
        Request::new(
            TransportProtocol::Udp,
            LOCAL.parse().unwrap(),
            SERVER.parse().unwrap(),
            request_bytes(tid),
        )
    }

    fn response(tid: u8) -> Bytes {
        MessageBuilder::new_bytes(MessageType::BINDING_SUCCESS, [tid; 12].into()).into_bytes()
    }

    fn answer(c: &mut ClientTransactions, now: Instant, from: &str, tid: u8) -> Handled {
        let bytes = response(tid);
        let message = Message::parse(&bytes).unwrap();
        let udp = TransportProtocol::Udp;
        c.handle_response(
            now,
            udp,
            from.parse().unwrap(),
            LOCAL.parse().unwrap(),
            &message,
        )
    }

    fn drain(c: &mut ClientTransactions) -> usize {
        std::iter::from_fn(|| c.poll_transmit()).count()
    }

    #[test]
    fn udp_retransmits_at_rfc_8489_times_then_times_out_at_39_5_s() {
        let start = t0();
        let mut c = ClientTransactions::new(TransactionConfig::default());
        c.handle_request(start, udp(1)).unwrap();
        assert_eq!(drain(&mut c), 1, "first send at once");
        // RFC 8489 §6.2.1: with RTO 500 ms, sends at 0, 500, 1500, 3500, 7500, 15500,
        // 31500 ms, and failure at 39500 ms.
        for at in [500, 1500, 3500, 7500, 15500, 31500] {
            assert_eq!(c.poll_timeout(), Some(start + ms(at)));
            c.handle_timeout(start + ms(at) - Duration::from_nanos(1));
            assert_eq!(drain(&mut c), 0, "nothing before {at} ms");
            c.handle_timeout(start + ms(at));
            assert_eq!(drain(&mut c), 1, "retransmission at {at} ms");
            assert_eq!(c.poll_event(), None);
        }
        assert_eq!(c.poll_timeout(), Some(start + ms(39_500)));
        c.handle_timeout(start + ms(39_499));
        assert_eq!(c.poll_event(), None);
        c.handle_timeout(start + ms(39_500));
        assert_eq!(drain(&mut c), 0);
        assert_eq!(
            c.poll_event(),
            Some(TransactionEvent::Timeout {
                id: [1; 12].into(),
                destination: SERVER.parse().unwrap()
            })
        );
        assert_eq!(c.poll_timeout(), None);
        assert_eq!(c.stats().retransmissions, 6);
        assert_eq!(c.stats().timeouts, 1);
    }

    #[test]
    fn rc_rm_and_initial_rto_are_configurable() {
        let start = t0();
        let config = TransactionConfig {
            initial_rto: ms(100),
            request_count: 3,
            last_wait_factor: 2,
            ..TransactionConfig::default()
        };
        let mut c = ClientTransactions::new(config);
        c.handle_request(start, udp(1)).unwrap();
        let mut times = vec![];
        while c.poll_event().is_none() {
            let now = c.poll_timeout().unwrap();
            c.handle_timeout(now);
            times.push((now - start, drain(&mut c)));
        }
        // Retransmits at 100 and 300 ms; gives up 2 × 100 ms after the last.
        assert_eq!(times, [(ms(100), 1), (ms(300), 1), (ms(500), 0)]);
    }

    #[test]
    fn reliable_transport_sends_once_and_waits_ti() {
        let start = t0();
        let mut c = ClientTransactions::new(TransactionConfig::default());
        let r = Request::new(
            TransportProtocol::Tcp,
            LOCAL.parse().unwrap(),
            SERVER.parse().unwrap(),
            request_bytes(2),
        );
        c.handle_request(start, r).unwrap();
        assert_eq!(drain(&mut c), 1);
        assert_eq!(c.poll_timeout(), Some(start + ms(39_500)));
        c.handle_timeout(start + ms(39_500));
        assert_eq!(drain(&mut c), 0, "no retransmission over TCP");
        assert!(matches!(
            c.poll_event(),
            Some(TransactionEvent::Timeout { .. })
        ));
    }

    #[test]
    fn responses_match_by_id_and_source_duplicates_and_late_ones_are_ignored() {
        let start = t0();
        let mut c = ClientTransactions::new(TransactionConfig::default());
        c.handle_request(start, udp(1)).unwrap();
        c.handle_request(start, udp(2)).unwrap();
        assert_eq!(drain(&mut c), 2);
        let t = start + ms(40);
        assert_eq!(
            answer(&mut c, t, "192.0.2.9:3478", 1),
            Handled::Dropped(DropReason::WrongSource)
        );
        assert_eq!(
            answer(&mut c, t, SERVER, 7),
            Handled::Dropped(DropReason::UnknownTransaction)
        );
        assert_eq!(
            answer(&mut c, t, SERVER, 1),
            Handled::Response([1; 12].into())
        );
        match c.poll_event() {
            Some(TransactionEvent::Response {
                id,
                class,
                rtt,
                message,
                ..
            }) => {
                assert_eq!(id, [1; 12].into());
                assert_eq!(class, Class::Success);
                assert_eq!(rtt, Some(ms(40)));
                assert_eq!(message, response(1));
            }
            other => panic!("expected a response, got {other:?}"),
        }
        assert_eq!(
            answer(&mut c, t, SERVER, 1),
            Handled::Dropped(DropReason::Duplicate)
        );
        // Transaction 2 times out; its answer then is late.
        c.handle_timeout(start + ms(39_500));
        for _ in 0..6 {
            let at = c.poll_timeout().unwrap();
            c.handle_timeout(at);
        }
        assert!(matches!(
            c.poll_event(),
            Some(TransactionEvent::Timeout { .. })
        ));
        assert_eq!(
            answer(&mut c, start + ms(40_000), SERVER, 2),
            Handled::Dropped(DropReason::Late)
        );
        assert_eq!(c.poll_event(), None);
        let s = c.stats();
        assert_eq!((s.wrong_source, s.unknown, s.duplicates_or_late), (1, 1, 2));
    }

    #[test]
    fn any_source_is_accepted_when_asked_for() {
        let start = t0();
        let mut c = ClientTransactions::new(TransactionConfig::default());
        c.handle_request(start, udp(1).accept_response_from_any_address())
            .unwrap();
        assert_eq!(
            answer(&mut c, start, "192.0.2.2:3479", 1),
            Handled::Response([1; 12].into())
        );
    }

    /// An answer counts only where its request left from: on the same local address and
    /// transport (or, when asked, on any local address: RFC 5780 RESPONSE-PORT).
    #[test]
    fn an_answer_arriving_elsewhere_than_its_request_left_from_is_dropped() {
        let start = t0();
        let (server, other): (SocketAddr, SocketAddr) =
            (SERVER.parse().unwrap(), "10.0.0.2:40001".parse().unwrap());
        let bytes = response(1);
        let m = Message::parse(&bytes).unwrap();
        let mut c = ClientTransactions::new(TransactionConfig::default());
        c.handle_request(start, udp(1)).unwrap();
        let tcp = TransportProtocol::Tcp;
        let local = LOCAL.parse().unwrap();
        assert_eq!(
            c.handle_response(start, TransportProtocol::Udp, server, other, &m),
            Handled::Dropped(DropReason::WrongDestination)
        );
        assert_eq!(
            c.handle_response(start, tcp, server, local, &m),
            Handled::Dropped(DropReason::WrongDestination)
        );
        assert_eq!(
            answer(&mut c, start, SERVER, 1),
            Handled::Response([1; 12].into())
        );
        let mut c = ClientTransactions::new(TransactionConfig::default());
        c.handle_request(start, udp(1).accept_response_on_any_local_address())
            .unwrap();
        assert_eq!(
            c.handle_response(start, TransportProtocol::Udp, server, other, &m),
            Handled::Response([1; 12].into())
        );
    }

    #[test]
    fn measured_rtt_sets_the_next_rto_and_retransmitted_answers_back_it_off() {
        let start = t0();
        let server: IpAddr = "192.0.2.1".parse().unwrap();
        let mut c = ClientTransactions::new(TransactionConfig::default());
        c.handle_request(start, udp(1)).unwrap();
        answer(&mut c, start + ms(400), SERVER, 1);
        // RFC 6298 §2.2: SRTT = 400, RTTVAR = 200, RTO = 400 + 4·200 = 1200 ms.
        assert_eq!(c.rto(start + ms(400), server), ms(1200));
        let next = start + ms(1000);
        c.handle_request(next, udp(2)).unwrap();
        assert_eq!(c.poll_timeout(), Some(next + ms(1200)));
        // Answered after a retransmission: Karn's algorithm takes no sample, and the
        // backed-off RTO (2400 ms) stays for the next transaction.
        c.handle_timeout(next + ms(1200));
        answer(&mut c, next + ms(1300), SERVER, 2);
        assert_eq!(c.rto(next + ms(1300), server), ms(2400));
        // Answered after three retransmissions (RTO 2.4 → 4.8 → 9.6 s): still one doubling.
        let third = next + ms(2000);
        c.handle_request(third, udp(3)).unwrap();
        let mut sent = third;
        for gap in [2400, 4800, 9600] {
            let due = c.poll_timeout().unwrap();
            assert_eq!(
                due,
                sent + ms(gap),
                "the backoff doubles within the transaction"
            );
            c.handle_timeout(due);
            sent = due;
        }
        let answered = sent + ms(100);
        answer(&mut c, answered, SERVER, 3);
        assert_eq!(
            c.rto(answered, server),
            ms(4800),
            "2.4 s doubled once, not 19.2 s"
        );
        // Ten minutes of silence: the cached value is stale.
        let later = answered + Duration::from_secs(601);
        assert_eq!(c.rto(later, server), ms(500));
    }

    #[test]
    fn a_request_may_bring_its_own_rto() {
        let start = t0();
        let mut c = ClientTransactions::new(TransactionConfig::default());
        c.handle_request(start, udp(1).with_initial_rto(ms(1500)))
            .unwrap();
        assert_eq!(c.poll_timeout(), Some(start + ms(1500)));
        c.handle_timeout(start + ms(1500));
        assert_eq!(
            c.poll_timeout(),
            Some(start + ms(4500)),
            "then doubling from it"
        );
    }

    #[test]
    fn outstanding_transactions_are_bounded() {
        let start = t0();
        let config = TransactionConfig {
            max_outstanding: 3,
            ..TransactionConfig::default()
        };
        let mut c = ClientTransactions::new(config);
        for tid in 1..=3 {
            c.handle_request(start, udp(tid)).unwrap();
        }
        assert_eq!(
            c.handle_request(start, udp(4)),
            Err(TransactionError::TooManyTransactions { limit: 3 })
        );
        assert_eq!(
            c.handle_request(start, udp(1)),
            Err(TransactionError::DuplicateTransactionId([1; 12].into()))
        );
        // An answered transaction frees its slot only once its event is polled.
        answer(&mut c, start, SERVER, 1);
        assert!(c.handle_request(start, udp(4)).is_err());
        assert!(c.poll_event().is_some());
        assert!(c.handle_request(start, udp(4)).is_ok());

        let mut c = ClientTransactions::new(TransactionConfig::default());
        for tid in 1..=10 {
            c.handle_request(start, udp(tid)).unwrap();
        }
        assert_eq!(
            c.handle_request(start, udp(11)),
            Err(TransactionError::TooManyToServer {
                server: "192.0.2.1".parse().unwrap(),
                limit: 10
            })
        );
        let response = response(1);
        assert_eq!(
            c.handle_request(
                start,
                Request::new(
                    TransportProtocol::Udp,
                    LOCAL.parse().unwrap(),
                    SERVER.parse().unwrap(),
                    response
                )
            ),
            Err(TransactionError::NotARequest)
        );
    }

    #[test]
    fn pacing_spaces_first_sends_by_ta() {
        let start = t0();
        let config = TransactionConfig {
            pacing_interval: Some(ms(50)),
            ..TransactionConfig::default()
        };
        let mut c = ClientTransactions::new(config);
        for tid in 1..=3 {
            c.handle_request(start, udp(tid)).unwrap();
        }
        assert_eq!(c.poll_transmit().map(|t| t.payload), Some(request_bytes(1)));
        assert_eq!(c.poll_transmit(), None);
        assert_eq!(c.poll_timeout(), Some(start + ms(50)));
        c.handle_timeout(start + ms(50));
        assert_eq!(c.poll_transmit().map(|t| t.payload), Some(request_bytes(2)));
        assert_eq!(c.poll_timeout(), Some(start + ms(100)));
        c.handle_timeout(start + ms(100));
        assert_eq!(c.poll_transmit().map(|t| t.payload), Some(request_bytes(3)));
        // Then the first one's retransmission at 500 ms.
        assert_eq!(c.poll_timeout(), Some(start + ms(500)));
        // Ta can change on the fly: the next new transaction waits 20 ms, not 50.
        c.set_pacing_interval(Some(ms(20)));
        c.handle_request(start + ms(100), udp(4)).unwrap();
        c.handle_request(start + ms(100), udp(5)).unwrap();
        assert_eq!(c.poll_timeout(), Some(start + ms(120)));
        c.set_pacing_interval(None);
        c.handle_timeout(start + ms(101));
        assert_eq!(
            std::iter::from_fn(|| c.poll_transmit()).count(),
            2,
            "both at once"
        );
        // A response to a request not yet sent is not accepted.
        let mut c = ClientTransactions::new(TransactionConfig {
            pacing_interval: Some(ms(50)),
            ..TransactionConfig::default()
        });
        c.handle_request(start, udp(1)).unwrap();
        c.handle_request(start, udp(2)).unwrap();
        assert_eq!(
            answer(&mut c, start, SERVER, 2),
            Handled::Dropped(DropReason::UnknownTransaction)
        );
    }

    #[test]
    fn transport_errors_and_cancel_end_transactions() {
        let start = t0();
        let mut c = ClientTransactions::new(TransactionConfig::default());
        c.handle_request(start, udp(1)).unwrap();
        c.handle_request(start, udp(2)).unwrap();
        assert!(c.handle_cancel(start, [2; 12].into()));
        assert!(!c.handle_cancel(start, [2; 12].into()));
        c.handle_transport_error(
            start,
            SERVER.parse().unwrap(),
            TransportFailure::Unreachable,
        );
        assert_eq!(
            c.poll_event(),
            Some(TransactionEvent::Error {
                id: [1; 12].into(),
                destination: SERVER.parse().unwrap(),
                failure: TransportFailure::Unreachable
            })
        );
        assert_eq!(c.outstanding(), 0);
        assert_eq!(c.poll_timeout(), None);
        assert_eq!(
            answer(&mut c, start, SERVER, 2),
            Handled::Dropped(DropReason::Late)
        );
    }

    #[test]
    fn classic_rfc_3489_requests_match_on_all_128_bits() {
        let start = t0();
        let mut c = ClientTransactions::new(TransactionConfig::default());
        let mut buf = [0u8; 20];
        let id = [7u8; 16];
        let request = MessageBuilder::new_rfc3489(&mut buf[..], MessageType::BINDING_REQUEST, id)
            .unwrap()
            .finish()
            .to_vec();
        let r = Request::new(
            TransportProtocol::Udp,
            LOCAL.parse().unwrap(),
            SERVER.parse().unwrap(),
            request.into(),
        );
        c.handle_request(start, r).unwrap();
        let mut other = id;
        other[0] = 8;
        for (tid, expect) in [(other, false), (id, true)] {
            let mut buf = [0u8; 20];
            let bytes =
                MessageBuilder::new_rfc3489(&mut buf[..], MessageType::BINDING_SUCCESS, tid)
                    .unwrap()
                    .finish();
            let m = Message::parse(bytes).unwrap();
            let (udp, local) = (TransportProtocol::Udp, LOCAL.parse().unwrap());
            let handled = c.handle_response(start, udp, SERVER.parse().unwrap(), local, &m);
            assert_eq!(matches!(handled, Handled::Response(_)), expect);
        }
    }

    #[test]
    fn very_early_timestamps_and_spurious_timeouts_are_harmless() {
        let start = very_early();
        let mut c = ClientTransactions::new(TransactionConfig {
            pacing_interval: Some(ms(20)),
            ..TransactionConfig::default()
        });
        c.handle_timeout(start);
        c.handle_request(start, udp(1)).unwrap();
        c.handle_request(start, udp(2)).unwrap();
        c.handle_timeout(start);
        c.handle_timeout(start);
        assert_eq!(drain(&mut c), 1);
        answer(&mut c, start, SERVER, 1);
        assert_eq!(c.rto(start, "192.0.2.1".parse().unwrap()), ms(500));
        let mut events = 0;
        while let Some(at) = c.poll_timeout() {
            c.handle_timeout(at);
            c.handle_timeout(at);
            drain(&mut c);
            while c.poll_event().is_some() {
                events += 1;
            }
        }
        assert_eq!(events, 2, "one response, one timeout");
    }

    #[test]
    fn very_late_timestamps_are_harmless() {
        // A second before the end of representable time: retransmissions, pacing and the
        // final wait all fall due at the last instant instead of past it.
        let end = very_late();
        let start = end - Duration::from_secs(1);
        let mut c = ClientTransactions::new(TransactionConfig {
            pacing_interval: Some(ms(20)),
            ..TransactionConfig::default()
        });
        c.handle_request(start, udp(1)).unwrap();
        c.handle_request(start, udp(2)).unwrap();
        c.handle_request(start, udp(3)).unwrap();
        assert_eq!(drain(&mut c), 1);
        answer(&mut c, start, SERVER, 1);
        let mut events = 0;
        let mut sends = 1;
        while let Some(at) = c.poll_timeout() {
            assert!(at > start && at <= end);
            c.handle_timeout(at);
            sends += drain(&mut c);
            while c.poll_event().is_some() {
                events += 1;
            }
            assert!(sends <= 32, "bounded");
        }
        assert_eq!(events, 3, "one response, two timeouts");
        assert_eq!(
            sends,
            1 + 2 * 7,
            "every send of RFC 8489's schedule still goes"
        );
        assert_eq!(c.poll_timeout(), None);
    }
}
