//! The Binding client (RFC 8489 §3, §6.2, §18.2): sends Binding requests as client
//! transactions and reports the server-reflexive (mapped) address each answer carries —
//! XOR-MAPPED-ADDRESS from RFC 5389/8489 servers, MAPPED-ADDRESS from classic RFC 3489 ones
//! (RFC 8489 §14.1: "for backwards compatibility"), with the RFC 5780 OTHER-ADDRESS and
//! RESPONSE-ORIGIN (or RFC 3489's CHANGED-ADDRESS and SOURCE-ADDRESS) when present.
//!
//! Flow of one query:
//! ```text
//! handle_query ─► transaction (retransmits) ─► success response ─► Mapped
//!                                          ├─► error response   ─► Failed(ErrorResponse)
//!                                          ├─► ICMP error       ─► Failed(Transport)
//!                                          └─► no response      ─► Failed(Timeout)
//! ```

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand_core::RngCore;
use thiserror::Error;

use crate::attribute::{
    ChangeRequest, ChangedAddress, ErrorCode, MappedAddress, OtherAddress, Padding, ResponseOrigin,
    Software, SourceAddress, XorMappedAddress,
};
use crate::builder::MessageBuilder;
use crate::header::{Class, MessageType, TransactionId};
use crate::message::Message;
use crate::transaction::{
    self, ClientTransactions, DropReason, Request, TransactionConfig, TransactionError,
    TransactionEvent, TransportFailure,
};
use crate::transmit::{Transmit, TransportProtocol};

/// What a Binding request asks for beyond the mapped address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BindingOptions {
    /// RFC 5780 CHANGE-REQUEST: answer from the other IP and/or port. The response is then
    /// accepted from any address.
    pub change_request: Option<ChangeRequest>,
    /// RFC 5780 PADDING of this many bytes.
    pub padding: Option<u16>,
    /// Send a classic RFC 3489 request (128-bit transaction id, no magic cookie, no
    /// FINGERPRINT), as the classic NAT-type tests did.
    pub classic: bool,
}

/// What a successful Binding transaction learned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BindingResult {
    /// Where the request went.
    pub server: SocketAddr,
    /// Where the response came from.
    pub from: SocketAddr,
    /// The reflexive address: XOR-MAPPED-ADDRESS, or MAPPED-ADDRESS from a classic server.
    pub mapped: SocketAddr,
    /// RESPONSE-ORIGIN (RFC 5780) or SOURCE-ADDRESS (RFC 3489), if present.
    pub response_origin: Option<SocketAddr>,
    /// OTHER-ADDRESS (RFC 5780) or CHANGED-ADDRESS (RFC 3489): the server's alternate address,
    /// if it has one.
    pub other_address: Option<SocketAddr>,
    /// The round-trip time, when the request was not retransmitted.
    pub rtt: Option<Duration>,
}

/// Why a Binding transaction failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BindingFailure {
    /// No response (RFC 8489 §6.2.1: Rc requests and the last wait).
    #[error("no response after the last retransmission")]
    Timeout,
    /// An error response with this code (0 if it had no readable ERROR-CODE).
    #[error("error response {0}")]
    ErrorResponse(u16),
    /// A success response with neither XOR-MAPPED-ADDRESS nor MAPPED-ADDRESS readable.
    #[error("success response without a readable XOR-MAPPED-ADDRESS or MAPPED-ADDRESS")]
    NoMappedAddress,
    /// A success response with comprehension-required attributes we do not know (RFC 8489
    /// §6.3.3: the transaction fails).
    #[error("success response with unknown comprehension-required attributes")]
    UnknownAttributes,
    /// The transport failed.
    #[error("transport error: {0}")]
    Transport(TransportFailure),
}

/// What the application learns from a [`BindingClient`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BindingEvent {
    /// A query was answered.
    Mapped {
        /// The transaction.
        id: TransactionId,
        /// What the answer said.
        result: BindingResult,
    },
    /// A query failed.
    Failed {
        /// The transaction.
        id: TransactionId,
        /// Where the request went.
        server: SocketAddr,
        /// Why.
        failure: BindingFailure,
    },
}

/// What [`BindingClient::handle_datagram`] did with a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Handled {
    /// It answered this query; an event is queued.
    Response(TransactionId),
    /// STUN, but not an answer to an outstanding query; the reason says why.
    Dropped(DropReason),
    /// Not STUN at all: the caller's to handle.
    NotStun,
}

/// Sends Binding requests from one local address and reports mapped addresses.
///
/// # Drive loop
/// After every `handle_*` call — [`handle_query`](Self::handle_query),
/// [`handle_datagram`](Self::handle_datagram), [`handle_timeout`](Self::handle_timeout) —
/// send everything [`poll_transmit`](Self::poll_transmit) returns and act on everything
/// [`poll_event`](Self::poll_event) returns until both give `None`, then call
/// `handle_timeout` at [`poll_timeout`](Self::poll_timeout).
///
/// ```
/// use std::time::Instant;
/// use stun_proto::binding::{BindingClient, BindingEvent, BindingOptions, BindingServer, BindingServerConfig};
/// use stun_proto::transaction::TransactionConfig;
/// use stun_proto::TransportProtocol;
/// # use rand_core::SeedableRng;
///
/// # let rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
/// let (local, server_addr) = ("10.0.0.2:40000".parse()?, "192.0.2.1:3478".parse()?);
/// let mut client = BindingClient::new(local, TransportProtocol::Udp, TransactionConfig::default(), rng);
/// let mut server = BindingServer::new(BindingServerConfig::new(server_addr));
/// let now = Instant::now();
/// client.handle_query(now, server_addr, BindingOptions::default())?;
/// let request = client.poll_transmit().expect("a request");
/// server.handle_datagram(now, request.transport, request.source, request.destination, &request.payload);
/// let response = server.poll_transmit().expect("a response");
/// client.handle_datagram(now, response.transport, response.source, response.destination, &response.payload);
/// let Some(BindingEvent::Mapped { result, .. }) = client.poll_event() else { panic!() };
/// assert_eq!(result.mapped, local);
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct BindingClient<R> {
    local: SocketAddr,
    transport: TransportProtocol,
    transactions: ClientTransactions,
    /// Outstanding queries: their id and server.
    queries: Vec<(TransactionId, SocketAddr)>,
    events: VecDeque<BindingEvent>,
    software: Option<String>,
    rng: R,
}

impl<R: RngCore> BindingClient<R> {
    /// A client sending from `local` over `transport`, drawing transaction ids from `rng`.
    pub fn new(
        local: SocketAddr,
        transport: TransportProtocol,
        config: TransactionConfig,
        rng: R,
    ) -> Self {
        Self {
            local,
            transport,
            transactions: ClientTransactions::new(config),
            queries: Vec::new(),
            events: VecDeque::new(),
            software: None,
            rng,
        }
    }

    /// Sets the SOFTWARE attribute sent with every request (configuration only).
    pub fn set_software(&mut self, software: Option<String>) {
        self.software = software;
    }

    /// Sends a Binding request to `server`.
    pub fn handle_query(
        &mut self,
        now: Instant,
        server: SocketAddr,
        options: BindingOptions,
    ) -> Result<TransactionId, TransactionError> {
        let limit = self.transactions.config().max_outstanding;
        if self.queries.len() + self.events.len() >= limit {
            return Err(TransactionError::TooManyTransactions { limit });
        }
        let payload = self
            .build(&options)
            .map_err(|_| TransactionError::NotARequest)?;
        let mut request = Request::new(self.transport, self.local, server, payload);
        let changes = options
            .change_request
            .is_some_and(|c| c.change_ip || c.change_port);
        if changes {
            request = request.accept_response_from_any_address();
        }
        let id = self.transactions.handle_request(now, request)?;
        self.queries.push((id, server));
        Ok(id)
    }

    /// Offers a datagram received over `transport` from `source` on local address
    /// `destination` (an answer counts only on the address and transport its query left
    /// from).
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        transport: TransportProtocol,
        source: SocketAddr,
        destination: SocketAddr,
        datagram: &[u8],
    ) -> Handled {
        let Ok(message) = Message::parse(datagram) else {
            return Handled::NotStun;
        };
        if message.has_fingerprint() && message.verify_fingerprint().is_err() {
            return Handled::Dropped(DropReason::BadFingerprint);
        }
        let answer =
            (self.transactions).handle_response(now, transport, source, destination, &message);
        let handled = match answer {
            transaction::Handled::Response(id) => Handled::Response(id),
            transaction::Handled::Dropped(reason) => Handled::Dropped(reason),
        };
        self.pump();
        handled
    }

    /// Retransmits and times out queries whose time has come.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.transactions.handle_timeout(now);
        self.pump();
    }

    /// The transport reported an error for datagrams to `server` — an ICMP destination or
    /// port unreachable for UDP, a lost TCP connection: every query outstanding to it fails
    /// at once with [`BindingFailure::Transport`] (RFC 8489 §6.2: an ICMP error ends the
    /// transaction), instead of after Rc retransmissions and the last wait (39.5 s with the
    /// default RTO). Queries to other servers go on.
    pub fn handle_transport_error(
        &mut self,
        now: Instant,
        server: SocketAddr,
        failure: TransportFailure,
    ) {
        self.transactions
            .handle_transport_error(now, server, failure);
        self.pump();
    }

    /// Abandons a query without an event; returns whether it was outstanding.
    pub fn handle_cancel(&mut self, now: Instant, id: TransactionId) -> bool {
        self.queries.retain(|(q, _)| *q != id);
        self.transactions.handle_cancel(now, id)
    }

    /// The next request to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transactions.poll_transmit()
    }

    /// The next outcome.
    pub fn poll_event(&mut self) -> Option<BindingEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.transactions.poll_timeout()
    }

    /// The local address requests are sent from.
    pub const fn local(&self) -> SocketAddr {
        self.local
    }

    /// The transactions underneath (RTO estimates, counters).
    pub const fn transactions(&self) -> &ClientTransactions {
        &self.transactions
    }

    /// How many queries are outstanding.
    pub fn outstanding(&self) -> usize {
        self.queries.len()
    }

    fn build(&mut self, options: &BindingOptions) -> Result<Bytes, crate::BuildError> {
        let mut b = if options.classic {
            let mut id = [0; 16];
            self.rng.fill_bytes(&mut id);
            MessageBuilder::new_rfc3489(bytes::BytesMut::new(), MessageType::BINDING_REQUEST, id)?
        } else {
            let id = TransactionId::random(&mut self.rng);
            MessageBuilder::new_bytes(MessageType::BINDING_REQUEST, id)
        };
        if let Some(change) = options.change_request {
            b.add(&change)?;
        }
        if let Some(len) = options.padding {
            b.add(&Padding { len })?;
        }
        if let Some(software) = self.software.as_deref() {
            if let Ok(software) = Software::new(software) {
                b.add(&software)?;
            }
        }
        if !options.classic {
            b.add_fingerprint()?;
        }
        Ok(b.into_bytes())
    }

    /// Turns transaction outcomes into Binding events.
    fn pump(&mut self) {
        while let Some(event) = self.transactions.poll_event() {
            let (id, outcome) = match event {
                TransactionEvent::Response {
                    id,
                    class,
                    from,
                    rtt,
                    message,
                } => (id, Self::interpret(class, from, rtt, &message)),
                TransactionEvent::Timeout { id, .. } => (id, Err(BindingFailure::Timeout)),
                TransactionEvent::Error { id, failure, .. } => {
                    (id, Err(BindingFailure::Transport(failure)))
                }
            };
            let Some(index) = self.queries.iter().position(|(q, _)| *q == id) else {
                continue;
            };
            let (_, server) = self.queries.swap_remove(index);
            self.events.push_back(match outcome {
                Ok(partial) => BindingEvent::Mapped {
                    id,
                    result: BindingResult { server, ..partial },
                },
                Err(failure) => BindingEvent::Failed {
                    id,
                    server,
                    failure,
                },
            });
        }
    }

    /// Reads a response (RFC 8489 §6.3.3 for success, §6.3.4 for errors).
    fn interpret(
        class: Class,
        from: SocketAddr,
        rtt: Option<Duration>,
        bytes: &[u8],
    ) -> Result<BindingResult, BindingFailure> {
        let Ok(m) = Message::parse(bytes) else {
            return Err(BindingFailure::NoMappedAddress);
        };
        if class == Class::Error {
            let code = m.get::<ErrorCode<'_>>().and_then(Result::ok);
            return Err(BindingFailure::ErrorResponse(code.map_or(0, |c| c.code())));
        }
        if m.unknown_comprehension_required().next().is_some() {
            return Err(BindingFailure::UnknownAttributes);
        }
        let xor = m
            .get::<XorMappedAddress>()
            .and_then(Result::ok)
            .map(|a| a.0);
        let plain = || m.get::<MappedAddress>().and_then(Result::ok).map(|a| a.0);
        let mapped = xor.or_else(plain).ok_or(BindingFailure::NoMappedAddress)?;
        let origin = m.get::<ResponseOrigin>().and_then(Result::ok).map(|a| a.0);
        let source = || m.get::<SourceAddress>().and_then(Result::ok).map(|a| a.0);
        let other = m.get::<OtherAddress>().and_then(Result::ok).map(|a| a.0);
        let changed = || m.get::<ChangedAddress>().and_then(Result::ok).map(|a| a.0);
        Ok(BindingResult {
            server: from,
            from,
            mapped,
            response_origin: origin.or_else(source),
            other_address: other.or_else(changed),
            rtt,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribute::{AttributeType, RawAttribute};
    use crate::binding::{BindingServer, BindingServerConfig};
    use crate::test_support::{TestRng, t0, very_early, very_late};

    const LOCAL: &str = "10.0.0.2:40000";
    const SERVER: &str = "192.0.2.1:3478";
    const ALTERNATE: &str = "192.0.2.2:3479";

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn client() -> BindingClient<TestRng> {
        BindingClient::new(
            addr(LOCAL),
            TransportProtocol::Udp,
            TransactionConfig::default(),
            TestRng::new(7),
        )
    }

    /// Passes the client's request through `server` and the answer back.
    fn exchange(
        c: &mut BindingClient<TestRng>,
        server: &mut BindingServer,
        now: Instant,
    ) -> Option<BindingEvent> {
        let request = c.poll_transmit().unwrap();
        server.handle_datagram(
            now,
            request.transport,
            request.source,
            request.destination,
            &request.payload,
        );
        let response = server.poll_transmit().unwrap();
        assert_eq!(response.destination, addr(LOCAL));
        c.handle_datagram(
            now,
            response.transport,
            response.source,
            response.destination,
            &response.payload,
        );
        c.poll_event()
    }

    #[test]
    fn learns_the_mapped_address_and_the_rfc_5780_addresses() {
        let mut config = BindingServerConfig::new(addr(SERVER));
        config.alternate = Some(addr(ALTERNATE));
        let mut server = BindingServer::new(config);
        let mut c = client();
        let now = t0();
        let id = c
            .handle_query(now, addr(SERVER), BindingOptions::default())
            .unwrap();
        let event = exchange(&mut c, &mut server, now + Duration::from_millis(30));
        let expected = BindingResult {
            server: addr(SERVER),
            from: addr(SERVER),
            mapped: addr(LOCAL),
            response_origin: Some(addr(SERVER)),
            other_address: Some(addr(ALTERNATE)),
            rtt: Some(Duration::from_millis(30)),
        };
        assert_eq!(
            event,
            Some(BindingEvent::Mapped {
                id,
                result: expected
            })
        );
        assert_eq!(c.outstanding(), 0);
        assert_eq!(c.poll_timeout(), None);

        // A CHANGE-REQUEST is answered from the other address, and accepted from there.
        let change = ChangeRequest {
            change_ip: true,
            change_port: true,
        };
        let options = BindingOptions {
            change_request: Some(change),
            ..BindingOptions::default()
        };
        c.handle_query(now, addr(SERVER), options).unwrap();
        let Some(BindingEvent::Mapped { result, .. }) = exchange(&mut c, &mut server, now) else {
            panic!("no answer to the change request");
        };
        assert_eq!(result.from, addr(ALTERNATE));
        assert_eq!(result.response_origin, Some(addr(ALTERNATE)));
    }

    #[test]
    fn an_icmp_error_fails_the_queries_to_that_server_at_once() {
        let mut c = client();
        let now = t0();
        let first = c
            .handle_query(now, addr(SERVER), BindingOptions::default())
            .unwrap();
        let second = c
            .handle_query(now, addr(SERVER), BindingOptions::default())
            .unwrap();
        let other = c
            .handle_query(now, addr(ALTERNATE), BindingOptions::default())
            .unwrap();
        let soon = now + Duration::from_millis(20);
        c.handle_transport_error(soon, addr(SERVER), TransportFailure::Unreachable);
        let mut failed: Vec<_> = std::iter::from_fn(|| c.poll_event()).collect();
        failed.sort_by_key(|e| match e {
            BindingEvent::Failed { id, .. } | BindingEvent::Mapped { id, .. } => *id == second,
        });
        let failure = BindingFailure::Transport(TransportFailure::Unreachable);
        assert_eq!(
            failed,
            [first, second].map(|id| BindingEvent::Failed {
                id,
                server: addr(SERVER),
                failure
            })
        );
        assert_eq!(
            failure.to_string(),
            "transport error: destination unreachable"
        );
        // The query to the other server is still outstanding and retransmitted.
        assert_eq!(c.outstanding(), 1);
        while c.poll_transmit().is_some() {}
        c.handle_timeout(c.poll_timeout().unwrap());
        let retransmitted = c.poll_transmit().unwrap();
        assert_eq!(retransmitted.destination, addr(ALTERNATE));
        assert!(c.handle_cancel(soon, other));
    }

    #[test]
    fn works_with_classic_rfc_3489_servers() {
        let mut c = client();
        let now = t0();
        // A classic server reads the cookie as part of its 128-bit id and echoes it, with
        // MAPPED-ADDRESS and CHANGED-ADDRESS only.
        c.handle_query(now, addr(SERVER), BindingOptions::default())
            .unwrap();
        let request = c.poll_transmit().unwrap();
        let parsed = Message::parse(&request.payload).unwrap();
        let mut b =
            MessageBuilder::response_to(bytes::BytesMut::new(), &parsed, Class::Success).unwrap();
        b.add(&MappedAddress(addr("203.0.113.9:6000"))).unwrap();
        b.add(&SourceAddress(addr(SERVER))).unwrap();
        b.add(&ChangedAddress(addr(ALTERNATE))).unwrap();
        c.handle_datagram(
            now,
            TransportProtocol::Udp,
            addr(SERVER),
            addr(LOCAL),
            &b.into_bytes(),
        );
        let Some(BindingEvent::Mapped { result, .. }) = c.poll_event() else {
            panic!("no mapped address");
        };
        assert_eq!(result.mapped, addr("203.0.113.9:6000"));
        assert_eq!(result.other_address, Some(addr(ALTERNATE)));
        assert_eq!(result.response_origin, Some(addr(SERVER)));

        // And it can speak RFC 3489 itself: no cookie, no FINGERPRINT.
        let options = BindingOptions {
            classic: true,
            ..BindingOptions::default()
        };
        c.handle_query(now, addr(SERVER), options).unwrap();
        let mut config = BindingServerConfig::new(addr(SERVER));
        config.alternate = Some(addr(ALTERNATE));
        let mut server = BindingServer::new(config);
        let request = c.poll_transmit().unwrap();
        let parsed = Message::parse(&request.payload).unwrap();
        assert!(parsed.is_rfc3489());
        assert!(!parsed.has_fingerprint());
        server.handle_datagram(
            now,
            request.transport,
            request.source,
            request.destination,
            &request.payload,
        );
        let response = server.poll_transmit().unwrap();
        c.handle_datagram(
            now,
            response.transport,
            response.source,
            response.destination,
            &response.payload,
        );
        let Some(BindingEvent::Mapped { result, .. }) = c.poll_event() else {
            panic!("no mapped address");
        };
        assert_eq!(result.mapped, addr(LOCAL));
        assert_eq!(result.other_address, Some(addr(ALTERNATE)));
    }

    #[test]
    fn error_responses_timeouts_and_unknown_attributes_fail_the_query() {
        let now = t0();
        // 420: a single-address server cannot change its address.
        let mut server = BindingServer::new(BindingServerConfig::new(addr(SERVER)));
        let mut c = client();
        let options = BindingOptions {
            change_request: Some(ChangeRequest {
                change_ip: true,
                change_port: false,
            }),
            ..BindingOptions::default()
        };
        c.handle_query(now, addr(SERVER), options).unwrap();
        assert!(matches!(
            exchange(&mut c, &mut server, now),
            Some(BindingEvent::Failed {
                failure: BindingFailure::ErrorResponse(420),
                ..
            })
        ));

        // A success response with an unknown comprehension-required attribute.
        c.handle_query(now, addr(SERVER), BindingOptions::default())
            .unwrap();
        let request = c.poll_transmit().unwrap();
        let parsed = Message::parse(&request.payload).unwrap();
        let mut b =
            MessageBuilder::response_to(bytes::BytesMut::new(), &parsed, Class::Success).unwrap();
        b.add(&XorMappedAddress(addr(LOCAL))).unwrap();
        b.add(&RawAttribute {
            attribute_type: AttributeType::new(0x7777),
            value: &[],
        })
        .unwrap();
        c.handle_datagram(
            now,
            TransportProtocol::Udp,
            addr(SERVER),
            addr(LOCAL),
            &b.into_bytes(),
        );
        assert!(matches!(
            c.poll_event(),
            Some(BindingEvent::Failed {
                failure: BindingFailure::UnknownAttributes,
                ..
            })
        ));

        // No answer at all: a timeout at 39.5 s.
        let id = c
            .handle_query(now, addr(SERVER), BindingOptions::default())
            .unwrap();
        while let Some(at) = c.poll_timeout() {
            c.handle_timeout(at);
            while c.poll_transmit().is_some() {}
        }
        assert_eq!(
            c.poll_event(),
            Some(BindingEvent::Failed {
                id,
                server: addr(SERVER),
                failure: BindingFailure::Timeout
            })
        );
    }

    #[test]
    fn other_traffic_is_handed_back() {
        let mut c = client();
        let now = t0();
        assert_eq!(
            c.handle_datagram(
                now,
                TransportProtocol::Udp,
                addr(SERVER),
                addr(LOCAL),
                &[0x16, 0xfe, 0xfd, 0, 0]
            ),
            Handled::NotStun
        );
        c.handle_query(now, addr(SERVER), BindingOptions::default())
            .unwrap();
        let request = c.poll_transmit().unwrap();
        let mut server = BindingServer::new(BindingServerConfig::new(addr(SERVER)));
        server.handle_datagram(
            now,
            request.transport,
            request.source,
            request.destination,
            &request.payload,
        );
        let mut response = server.poll_transmit().unwrap().payload.to_vec();
        let last = response.len() - 1;
        response[last] ^= 0xff;
        assert_eq!(
            c.handle_datagram(
                now,
                TransportProtocol::Udp,
                addr(SERVER),
                addr(LOCAL),
                &response
            ),
            Handled::Dropped(DropReason::BadFingerprint)
        );
        assert_eq!(
            c.handle_datagram(
                now,
                TransportProtocol::Udp,
                addr(SERVER),
                addr(LOCAL),
                &request.payload
            ),
            Handled::Dropped(DropReason::NotAResponse)
        );
        assert_eq!(c.poll_event(), None);
        assert_eq!(c.outstanding(), 1);
    }

    #[test]
    fn very_early_timestamps_are_harmless() {
        let mut c = client();
        let start = very_early();
        c.handle_timeout(start);
        c.handle_query(start, addr(SERVER), BindingOptions::default())
            .unwrap();
        let mut server = BindingServer::new(BindingServerConfig::new(addr(SERVER)));
        assert!(matches!(
            exchange(&mut c, &mut server, start),
            Some(BindingEvent::Mapped { .. })
        ));
    }

    #[test]
    fn very_late_timestamps_are_harmless() {
        // Half a second before the last instant the platform represents: every deadline
        // (RTO 500 ms and up) lies past it, and is due at the end of time instead.
        let end = very_late();
        let start = end.checked_sub(Duration::from_millis(500)).unwrap();
        let mut c = client();
        c.handle_query(start, addr(SERVER), BindingOptions::default())
            .unwrap();
        let mut server = BindingServer::new(BindingServerConfig::new(addr(SERVER)));
        assert!(matches!(
            exchange(&mut c, &mut server, start),
            Some(BindingEvent::Mapped { .. })
        ));
        // A query nobody answers is retransmitted and fails, all at the end of time.
        c.handle_query(start, addr(SERVER), BindingOptions::default())
            .unwrap();
        let mut sends = usize::from(c.poll_transmit().is_some());
        let mut failed = false;
        while let Some(at) = c.poll_timeout() {
            assert!(at >= start && at <= end);
            c.handle_timeout(at);
            while c.poll_transmit().is_some() {
                sends += 1;
            }
            while let Some(e) = c.poll_event() {
                failed |= matches!(e, BindingEvent::Failed { .. });
            }
            assert!(sends <= 8, "a bounded number of sends");
        }
        assert!(failed);
        assert_eq!(sends, 7, "RFC 8489 Rc = 7 sends");
    }

    #[test]
    fn requests_carry_a_fingerprint_and_fresh_random_ids() {
        let mut c = client();
        let now = t0();
        let mut ids = vec![];
        for _ in 0..3 {
            let id = c
                .handle_query(now, addr(SERVER), BindingOptions::default())
                .unwrap();
            let request = c.poll_transmit().unwrap();
            let m = Message::parse(&request.payload).unwrap();
            assert_eq!(m.message_type(), MessageType::BINDING_REQUEST);
            assert_eq!(m.transaction_id(), id);
            assert!(!m.is_rfc3489());
            m.verify_fingerprint().unwrap();
            assert_eq!(
                (request.source, request.destination),
                (addr(LOCAL), addr(SERVER))
            );
            ids.push(id);
        }
        ids.dedup();
        assert_eq!(ids.len(), 3, "every transaction has its own id");
        // The ids come from the injected RNG: the same seed gives the same ids.
        let mut again = client();
        let first = again
            .handle_query(now, addr(SERVER), BindingOptions::default())
            .unwrap();
        assert_eq!(first, ids[0]);
    }

    #[test]
    fn the_client_fuzz_entry_point_survives_noise_and_time() {
        let mut rng = TestRng::new(11);
        for round in 0..50 {
            let mut input = vec![0u8; 64 + 32 * round];
            rand_core::RngCore::fill_bytes(&mut rng, &mut input);
            crate::fuzzing::stun_clients(&input);
        }
        // Queries, then long silences: every query times out and nothing spins.
        crate::fuzzing::stun_clients(&[64, 65, 71, 72, 63, 63, 63, 63, 63, 63, 63, 63]);
    }
}
