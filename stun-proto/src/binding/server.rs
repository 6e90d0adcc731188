//! The Binding server (RFC 8489 §6.3, §18.2): answers Binding requests with the client's
//! reflexive address, as XOR-MAPPED-ADDRESS (RFC 8489 §14.2) or, to classic RFC 3489 clients,
//! MAPPED-ADDRESS with SOURCE-ADDRESS and CHANGED-ADDRESS (RFC 3489 §11.2).
//!
//! Flow of one datagram:
//! ```text
//! parse ─► fingerprint ─► class ─► method ─► unknown attributes ─► integrity ─► RFC 5780 ─► answer
//!  drop      drop         drop      400         420                  400/401       400/420
//! ```
//! Datagrams that fail the first checks are dropped and counted (RFC 8489 §6.3: a message
//! that is not well-formed STUN is silently discarded); requests that fail later ones get an
//! error response. Given a second address and port, the server behaves as RFC 5780 §6
//! describes: it honours CHANGE-REQUEST (§7.2) and RESPONSE-PORT (§7.5), reports
//! RESPONSE-ORIGIN (§7.3) and OTHER-ADDRESS (§7.4), and answers PADDING (§7.6).

use std::borrow::Cow;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use bytes::BytesMut;

use crate::attribute::{
    AttributeType, ChangeRequest, ChangedAddress, ErrorCode, MappedAddress, OtherAddress, Padding,
    ResponseOrigin, ResponsePort, Software, SourceAddress, UnknownAttributes, Username,
    XorMappedAddress,
};
use crate::builder::{BuildError, MessageBuilder};
use crate::credentials::IntegrityKey;
use crate::header::{Class, Method};
use crate::long_term::{LongTermAuth, Rejection};
use crate::message::{IntegrityAlgorithm, Message};
use crate::transmit::{Transmit, TransportProtocol};

/// How many unknown attributes a 420 lists at most.
const MAX_UNKNOWN: usize = 16;

/// A response to an unauthenticated request carries optional attributes (SOFTWARE) only
/// while it stays within this many times the request's size — the anti-amplification
/// factor of QUIC (RFC 9000 §8.1), applied to what RFC 8489 leaves optional.
/// `docs/hostile-input.md` lists what each response costs.
pub const AMPLIFICATION_FACTOR: usize = 3;

/// The short-term credential (RFC 8489 §9.1) a server requires when configured with one.
#[derive(Clone, Debug)]
pub struct ShortTermCredential {
    /// The USERNAME requests must carry.
    pub username: String,
    /// The key derived from the password ([`IntegrityKey::short_term`]).
    pub key: IntegrityKey,
}

/// The credentials a [`BindingServer`] requires, if any.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
#[allow(
    clippy::large_enum_variant,
    reason = "one value per server, built once; boxing the long-term state would only add a pointer to follow"
)]
pub enum Authentication {
    /// None: anyone may learn their mapped address (the usual STUN server).
    #[default]
    None,
    /// Short-term MESSAGE-INTEGRITY with this credential (RFC 8489 §9.1.3).
    ShortTerm(ShortTermCredential),
    /// The long-term credential mechanism (RFC 8489 §9.2): 401 challenges, nonces, 438.
    LongTerm(LongTermAuth),
}

/// How a [`BindingServer`] is set up.
#[derive(Clone, Debug)]
pub struct BindingServerConfig {
    /// The primary transport address (RFC 5780's A1:P1). Requests arriving on another
    /// address of a single-address server are answered from the address they arrived on.
    pub primary: SocketAddr,
    /// The alternate address, different in both IP and port (A2:P2). With it the server
    /// listens on A1:P1, A1:P2, A2:P1 and A2:P2 and behaves as RFC 5780 §6 describes.
    pub alternate: Option<SocketAddr>,
    /// SOFTWARE to put in every response; `None` for none.
    pub software: Option<String>,
    /// The credentials requests must carry. Default: none.
    pub authentication: Authentication,
    /// The most responses queued before `poll_transmit` drains them; beyond, responses are
    /// dropped and counted. Default 256.
    pub max_queued_transmits: usize,
    /// The largest PADDING the server sends back (RFC 5780 §7.6: the MTU). Default 1500.
    pub max_padding: u16,
}

impl BindingServerConfig {
    /// A server at `primary`, no alternate address, SOFTWARE set to this crate's name.
    pub fn new(primary: SocketAddr) -> Self {
        Self {
            primary,
            alternate: None,
            software: Some(concat!("stun-proto ", env!("CARGO_PKG_VERSION")).to_owned()),
            authentication: Authentication::None,
            max_queued_transmits: 256,
            max_padding: 1500,
        }
    }
}

/// Counters of what the server did with the datagrams it was given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BindingServerStats {
    /// Binding requests answered with a success response.
    pub success_responses: u64,
    /// Requests answered with an error response (400, 401, 420).
    pub error_responses: u64,
    /// Datagrams that are not well-formed STUN.
    pub dropped_malformed: u64,
    /// Messages whose FINGERPRINT does not match.
    pub dropped_bad_fingerprint: u64,
    /// Responses (not requests) sent to the server.
    pub dropped_responses: u64,
    /// Indications (Binding keepalives, RFC 8489 §6.3.2): nothing to answer.
    pub indications: u64,
    /// Datagrams that arrived on an address that is not one of the server's four.
    pub dropped_wrong_address: u64,
    /// Responses dropped because the transmit queue was full.
    pub dropped_queue_full: u64,
    /// TURN methods without the magic cookie, dropped unanswered.
    pub dropped_no_magic_cookie: u64,
}

/// Why the server dropped a datagram without answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// Not a well-formed STUN message.
    Malformed,
    /// FINGERPRINT present and wrong.
    BadFingerprint,
    /// A response, which a server never expects.
    Response,
    /// An indication: nothing to answer.
    Indication,
    /// Arrived on an address the server does not own.
    WrongAddress,
    /// The transmit queue is full.
    QueueFull,
    /// A TURN method without the magic cookie: RFC 3489 had none, so it is no STUN of any
    /// version this server answers.
    NoMagicCookie,
}

/// What [`BindingServer::handle_datagram`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Handled {
    /// Answered with a success response.
    Answered,
    /// Answered with an error response carrying this code.
    Rejected(u16),
    /// Dropped and counted.
    Dropped(DropReason),
}

/// A request the server refuses, and the error response it gets: the one place that maps
/// faults to STUN error codes.
enum Refusal {
    /// 400: malformed attribute, unsupported method, or a combination RFC 5780 forbids.
    BadRequest,
    /// 401: missing or wrong credentials.
    Unauthenticated,
    /// 420: comprehension-required attributes this server does not understand.
    UnknownAttributes([AttributeType; MAX_UNKNOWN], usize),
    /// 400, 401 or 438 from the long-term credential mechanism.
    LongTerm(Rejection),
}

impl Refusal {
    const fn code(&self) -> u16 {
        match self {
            Refusal::BadRequest => ErrorCode::BAD_REQUEST,
            Refusal::Unauthenticated => ErrorCode::UNAUTHENTICATED,
            Refusal::UnknownAttributes(..) => ErrorCode::UNKNOWN_ATTRIBUTE,
            Refusal::LongTerm(rejection) => rejection.code(),
        }
    }
}

/// A request that passed every check: what the success response needs.
struct Accepted<'a> {
    change: ChangeRequest,
    response_port: Option<u16>,
    padding: Option<u16>,
    /// The key and integrity attribute to sign the response with, as the request was.
    signer: Option<Signer<'a>>,
}

/// A key and the integrity attribute to sign with.
type Signer<'a> = (Cow<'a, IntegrityKey>, IntegrityAlgorithm);

/// A Binding server over one address, or over RFC 5780's two addresses × two ports.
///
/// # Drive loop
/// Feed every datagram received on any of the server's sockets to
/// [`handle_datagram`](Self::handle_datagram) with the local address it arrived on, then send
/// everything [`poll_transmit`](Self::poll_transmit) returns, each from the socket bound to
/// its `source`. The server has no timers and no events; [`stats`](Self::stats) counts what
/// it answered and dropped. Its memory is bounded by
/// [`BindingServerConfig::max_queued_transmits`].
///
/// ```
/// use std::time::Instant;
/// use stun_proto::binding::{BindingServer, BindingServerConfig};
/// use stun_proto::attribute::XorMappedAddress;
/// use stun_proto::{Message, MessageBuilder, MessageType, TransportProtocol};
///
/// let server_addr = "192.0.2.1:3478".parse()?;
/// let mut server = BindingServer::new(BindingServerConfig::new(server_addr));
/// let request = MessageBuilder::new_bytes(MessageType::BINDING_REQUEST, [1; 12].into()).into_bytes();
/// let client = "198.51.100.7:50000".parse()?;
/// server.handle_datagram(Instant::now(), TransportProtocol::Udp, client, server_addr, &request);
/// let reply = server.poll_transmit().expect("a response");
/// let response = Message::parse(&reply.payload)?;
/// assert_eq!(response.get::<XorMappedAddress>().transpose()?, Some(XorMappedAddress(client)));
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct BindingServer {
    config: BindingServerConfig,
    transmits: VecDeque<Transmit>,
    stats: BindingServerStats,
}

impl BindingServer {
    /// A server with this configuration.
    pub fn new(config: BindingServerConfig) -> Self {
        Self {
            transmits: VecDeque::with_capacity(config.max_queued_transmits.min(64)),
            config,
            stats: BindingServerStats::default(),
        }
    }

    /// Handles a datagram from `source` that arrived on the server's address `destination`.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        transport: TransportProtocol,
        source: SocketAddr,
        destination: SocketAddr,
        datagram: &[u8],
    ) -> Handled {
        let Ok(request) = Message::parse(datagram) else {
            return self.drop(DropReason::Malformed);
        };
        if request.has_fingerprint() && request.verify_fingerprint().is_err() {
            return self.drop(DropReason::BadFingerprint);
        }
        if request.is_rfc3489() && request.method().is_turn() {
            return self.drop(DropReason::NoMagicCookie);
        }
        match request.class() {
            Class::Request => {}
            Class::Indication => return self.drop(DropReason::Indication),
            Class::Success | Class::Error => return self.drop(DropReason::Response),
        }
        let Some(local) = self.local_index(destination) else {
            return self.drop(DropReason::WrongAddress);
        };
        let outcome = self.check(now, source, &request, transport);
        let built = match &outcome {
            Ok(accepted) => self.success(&request, transport, source, destination, local, accepted),
            Err(refusal) => self.error(now, &request, transport, source, destination, refusal),
        };
        let outcome = outcome.map(|_| ()).map_err(|refusal| refusal.code());
        let Ok(transmit) = built else {
            // Only an over-long message can fail to build; PADDING is capped well below.
            return self.drop(DropReason::Malformed);
        };
        if self.transmits.len() >= self.config.max_queued_transmits {
            return self.drop(DropReason::QueueFull);
        }
        self.transmits.push_back(transmit);
        match outcome {
            Ok(_) => {
                self.stats.success_responses += 1;
                Handled::Answered
            }
            Err(code) => {
                self.stats.error_responses += 1;
                Handled::Rejected(code)
            }
        }
    }

    /// The next response to send, from the socket bound to its `source`.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The counters.
    pub const fn stats(&self) -> &BindingServerStats {
        &self.stats
    }

    /// How many responses wait in the transmit queue.
    pub fn queued_transmits(&self) -> usize {
        self.transmits.len()
    }

    /// The configuration.
    pub const fn config(&self) -> &BindingServerConfig {
        &self.config
    }

    /// Every transport address the server answers from: one, or RFC 5780's four.
    pub fn local_addresses(&self) -> Vec<SocketAddr> {
        let p = self.config.primary;
        match self.config.alternate {
            None => vec![p],
            Some(a) => vec![
                p,
                SocketAddr::new(p.ip(), a.port()),
                SocketAddr::new(a.ip(), p.port()),
                a,
            ],
        }
    }

    /// Which of the four addresses `destination` is, as (IP is the alternate's, port is the
    /// alternate's); `None` if it is none of them. A single-address server takes anything.
    fn local_index(&self, destination: SocketAddr) -> Option<(bool, bool)> {
        let Some(alternate) = self.config.alternate else {
            return Some((false, false));
        };
        let primary = self.config.primary;
        let ip = if destination.ip() == primary.ip() {
            false
        } else if destination.ip() == alternate.ip() {
            true
        } else {
            return None;
        };
        let port = if destination.port() == primary.port() {
            false
        } else if destination.port() == alternate.port() {
            true
        } else {
            return None;
        };
        Some((ip, port))
    }

    /// RFC 8489 §6.3.1 and §9.1.3, then RFC 5780 §6.1's checks.
    fn check(
        &self,
        now: Instant,
        client: SocketAddr,
        request: &Message<'_>,
        transport: TransportProtocol,
    ) -> Result<Accepted<'_>, Refusal> {
        if request.method() != Method::BINDING {
            return Err(Refusal::BadRequest);
        }
        let mut unknown = [AttributeType::new(0); MAX_UNKNOWN];
        let mut count = 0;
        for (slot, t) in unknown
            .iter_mut()
            .zip(request.unknown_comprehension_required())
        {
            *slot = t;
            count += 1;
        }
        if count > 0 {
            return Err(Refusal::UnknownAttributes(unknown, count));
        }
        let signer = match &self.config.authentication {
            Authentication::None => None,
            Authentication::ShortTerm(credential) => {
                let algorithm = Self::authenticate(request, credential)?;
                Some((Cow::Borrowed(&credential.key), algorithm))
            }
            Authentication::LongTerm(auth) => {
                let ok = auth
                    .authenticate(now, client, request)
                    .map_err(Refusal::LongTerm)?;
                // Owned: a shared-secret user's key is derived per request, and the
                // request's bytes do not live as long as the server.
                Some((Cow::Owned(ok.key.into_owned()), ok.integrity))
            }
        };
        let bad = |_| Refusal::BadRequest;
        let change = request.get::<ChangeRequest>().transpose().map_err(bad)?;
        let response_port = request.get::<ResponsePort>().transpose().map_err(bad)?;
        let padding = request.get::<Padding>().transpose().map_err(bad)?;
        let change = change.unwrap_or_default();
        if transport.is_reliable() {
            // Over TCP the answer goes back on the connection: nothing to change or redirect.
            return Ok(Accepted {
                change: ChangeRequest::default(),
                response_port: None,
                padding: None,
                signer,
            });
        }
        if (change.change_ip || change.change_port) && self.config.alternate.is_none() {
            // RFC 5780 §6.1: a server without an alternate address does not know how to
            // honour CHANGE-REQUEST, as a classic server would say with 420.
            let mut unknown = [AttributeType::new(0); MAX_UNKNOWN];
            unknown[0] = AttributeType::CHANGE_REQUEST;
            return Err(Refusal::UnknownAttributes(unknown, 1));
        }
        if padding.is_some() && response_port.is_some() {
            // RFC 5780 §6.1: PADDING with RESPONSE-PORT is a 400.
            return Err(Refusal::BadRequest);
        }
        Ok(Accepted {
            change,
            response_port: response_port.map(|p| p.0),
            padding: padding.map(|p| p.len),
            signer,
        })
    }

    /// RFC 8489 §9.1.3: USERNAME and MESSAGE-INTEGRITY(-SHA256) must both be there (else
    /// 400), the USERNAME must be ours and the HMAC right (else 401).
    fn authenticate(
        request: &Message<'_>,
        credential: &ShortTermCredential,
    ) -> Result<IntegrityAlgorithm, Refusal> {
        let username = request.get::<Username>();
        if !request.has_integrity() || username.is_none() {
            return Err(Refusal::BadRequest);
        }
        match username {
            Some(Ok(u)) if u.as_str() == credential.username => {}
            _ => return Err(Refusal::Unauthenticated),
        }
        request
            .verify_integrity(&credential.key)
            .map_err(|_| Refusal::Unauthenticated)
    }

    /// The success response: where it goes, where from, and its attributes.
    fn success(
        &self,
        request: &Message<'_>,
        transport: TransportProtocol,
        client: SocketAddr,
        destination: SocketAddr,
        (on_alt_ip, on_alt_port): (bool, bool),
        accepted: &Accepted,
    ) -> Result<Transmit, BuildError> {
        let origin = match self.config.alternate {
            None => destination,
            Some(alternate) => {
                let primary = self.config.primary;
                let alt_ip = on_alt_ip != accepted.change.change_ip;
                let alt_port = on_alt_port != accepted.change.change_port;
                SocketAddr::new(
                    if alt_ip { alternate.ip() } else { primary.ip() },
                    if alt_port {
                        alternate.port()
                    } else {
                        primary.port()
                    },
                )
            }
        };
        // OTHER-ADDRESS / CHANGED-ADDRESS: the address that differs from the one the request
        // arrived on in both IP and port (RFC 5780 §7.4).
        let other = self.config.alternate.map(|alternate| {
            let primary = self.config.primary;
            let ip: IpAddr = if on_alt_ip {
                primary.ip()
            } else {
                alternate.ip()
            };
            let port = if on_alt_port {
                primary.port()
            } else {
                alternate.port()
            };
            SocketAddr::new(ip, port)
        });
        let to = match accepted.response_port {
            Some(port) => SocketAddr::new(client.ip(), port),
            None => client,
        };
        let mut b = MessageBuilder::response_to(BytesMut::new(), request, Class::Success)?;
        if request.is_rfc3489() {
            b.add(&MappedAddress(client))?;
            b.add(&SourceAddress(origin))?;
            if let Some(other) = other {
                b.add(&ChangedAddress(other))?;
            }
        } else {
            b.add(&XorMappedAddress(client))?;
            b.add(&ResponseOrigin(origin))?;
            if let Some(other) = other {
                b.add(&OtherAddress(other))?;
            }
        }
        if let Some(len) = accepted.padding {
            // RFC 5780 §7.6 asks for the MTU; echoing the request's own PADDING size (capped)
            // keeps the server from amplifying: the client chose the size it wants tested.
            let len = len.min(self.config.max_padding) & !3;
            b.add(&Padding { len })?;
        }
        let signer = accepted.signer.as_ref().map(|(key, a)| (key.as_ref(), *a));
        self.finish(b, request, signer, transport, origin, to)
    }

    /// An error response, from the address the request arrived on back to its source.
    fn error(
        &self,
        now: Instant,
        request: &Message<'_>,
        transport: TransportProtocol,
        client: SocketAddr,
        destination: SocketAddr,
        refusal: &Refusal,
    ) -> Result<Transmit, BuildError> {
        let mut b = MessageBuilder::response_to(BytesMut::new(), request, Class::Error)?;
        match (refusal, &self.config.authentication) {
            (Refusal::LongTerm(rejection), Authentication::LongTerm(auth)) => {
                auth.write_rejection(now, client, *rejection, &mut b)?;
            }
            // Every code the server uses is in 300..=699, so this always adds the attribute.
            _ => {
                if let Ok(code) = ErrorCode::new(refusal.code()) {
                    b.add(&code)?;
                }
            }
        }
        if let Refusal::UnknownAttributes(types, count) = refusal {
            let listed = types.get(..*count).unwrap_or_default();
            b.add(&UnknownAttributes::new(listed))?;
        }
        self.finish(b, request, None, transport, destination, client)
    }

    /// Adds SOFTWARE, MESSAGE-INTEGRITY(-SHA256) as the request had it, and FINGERPRINT
    /// (not to classic clients, whose header has no cookie for it to mean anything).
    fn finish(
        &self,
        mut b: MessageBuilder<BytesMut>,
        request: &Message<'_>,
        signer: Option<(&IntegrityKey, IntegrityAlgorithm)>,
        transport: TransportProtocol,
        source: SocketAddr,
        destination: SocketAddr,
    ) -> Result<Transmit, BuildError> {
        if let Some(software) = self.config.software.as_deref() {
            // SOFTWARE is optional (RFC 8489 §14.14): to an unauthenticated request, only
            // within the amplification budget (with room left for FINGERPRINT).
            let len = b.len() + 4 + software.len().next_multiple_of(4) + 8;
            let budget = AMPLIFICATION_FACTOR.saturating_mul(request.as_bytes().len());
            if signer.is_some() || len <= budget {
                if let Ok(software) = Software::new(software) {
                    b.add(&software)?;
                }
            }
        }
        if let Some((key, algorithm)) = signer {
            match algorithm {
                IntegrityAlgorithm::Sha1 => b.add_message_integrity(key)?,
                IntegrityAlgorithm::Sha256 => b.add_message_integrity_sha256(key)?,
            };
        }
        if !request.is_rfc3489() {
            b.add_fingerprint()?;
        }
        Ok(Transmit {
            transport,
            source,
            destination,
            payload: b.into_bytes(),
        })
    }

    fn drop(&mut self, reason: DropReason) -> Handled {
        let s = &mut self.stats;
        match reason {
            DropReason::Malformed => s.dropped_malformed += 1,
            DropReason::BadFingerprint => s.dropped_bad_fingerprint += 1,
            DropReason::Response => s.dropped_responses += 1,
            DropReason::Indication => s.indications += 1,
            DropReason::WrongAddress => s.dropped_wrong_address += 1,
            DropReason::QueueFull => s.dropped_queue_full += 1,
            DropReason::NoMagicCookie => s.dropped_no_magic_cookie += 1,
        }
        Handled::Dropped(reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribute::{DecodeAttribute, EncodeAttribute, RawAttribute};
    use crate::header::{MessageType, TransactionId};
    use crate::test_support::{t0, very_early, very_late};

    const A1P1: &str = "192.0.2.1:3478";
    const A2P2: &str = "192.0.2.2:3479";
    const CLIENT: &str = "198.51.100.7:50000";

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn rfc5780() -> BindingServer {
        let mut config = BindingServerConfig::new(addr(A1P1));
        config.alternate = Some(addr(A2P2));
        BindingServer::new(config)
    }

    fn request(attrs: &[&dyn EncodeAttribute]) -> Vec<u8> {
        let mut b = MessageBuilder::new_bytes(MessageType::BINDING_REQUEST, [3; 12].into());
        for a in attrs {
            b.add(*a).unwrap();
        }
        b.into_bytes().to_vec()
    }

    fn ask(server: &mut BindingServer, on: &str, datagram: &[u8]) -> (Handled, Transmit) {
        let handled = server.handle_datagram(
            t0(),
            TransportProtocol::Udp,
            addr(CLIENT),
            addr(on),
            datagram,
        );
        (handled, server.poll_transmit().expect("an answer"))
    }

    fn get<'a, A: DecodeAttribute<'a>>(m: &Message<'a>) -> Option<A> {
        m.get::<A>().map(|r| r.unwrap())
    }

    fn error_code(m: &Message<'_>) -> u16 {
        get::<ErrorCode<'_>>(m).unwrap().code()
    }

    #[test]
    fn answers_xor_mapped_address_response_origin_software_and_fingerprint() {
        let mut server = BindingServer::new(BindingServerConfig::new(addr(A1P1)));
        let (handled, t) = ask(&mut server, A1P1, &request(&[]));
        assert_eq!(handled, Handled::Answered);
        assert_eq!((t.source, t.destination), (addr(A1P1), addr(CLIENT)));
        let m = Message::parse(&t.payload).unwrap();
        assert_eq!(m.message_type(), MessageType::BINDING_SUCCESS);
        assert_eq!(m.transaction_id(), TransactionId::from([3; 12]));
        assert_eq!(get(&m), Some(XorMappedAddress(addr(CLIENT))));
        assert_eq!(get(&m), Some(ResponseOrigin(addr(A1P1))));
        assert!(!m.has(AttributeType::MAPPED_ADDRESS));
        assert!(!m.has(AttributeType::OTHER_ADDRESS), "no alternate address");
        // A bare 20-byte request gets no SOFTWARE: it would take the answer past three
        // times the request's size.
        assert!(!m.has(AttributeType::SOFTWARE));
        m.verify_fingerprint().unwrap();
        // A request of a size that allows it (here, with its own SOFTWARE) gets SOFTWARE.
        let client = Software::new("a client").unwrap();
        let (_, t) = ask(&mut server, A1P1, &request(&[&client]));
        let m = Message::parse(&t.payload).unwrap();
        assert!(
            get::<Software<'_>>(&m)
                .unwrap()
                .as_str()
                .starts_with("stun-proto")
        );
        m.verify_fingerprint().unwrap();
        assert_eq!(server.stats().success_responses, 2);
    }

    #[test]
    fn classic_rfc_3489_clients_get_mapped_source_and_changed_address() {
        let mut server = rfc5780();
        let id = [0x42; 16];
        let mut buf = [0u8; 28];
        let mut b =
            MessageBuilder::new_rfc3489(&mut buf[..], MessageType::BINDING_REQUEST, id).unwrap();
        b.add(&ChangeRequest::default()).unwrap();
        let (_, t) = ask(&mut server, A1P1, b.finish());
        let m = Message::parse(&t.payload).unwrap();
        assert!(m.is_rfc3489());
        assert_eq!(m.rfc3489_transaction_id(), id);
        assert_eq!(get(&m), Some(MappedAddress(addr(CLIENT))));
        assert_eq!(get(&m), Some(SourceAddress(addr(A1P1))));
        assert_eq!(get(&m), Some(ChangedAddress(addr(A2P2))));
        assert!(!m.has(AttributeType::XOR_MAPPED_ADDRESS));
        assert!(!m.has_fingerprint());
    }

    #[test]
    fn change_request_picks_the_response_origin_among_the_four_addresses() {
        let a1p2 = "192.0.2.1:3479";
        let a2p1 = "192.0.2.2:3478";
        let cases = [
            (A1P1, false, false, A1P1, A2P2),
            (A1P1, true, false, a2p1, A2P2),
            (A1P1, false, true, a1p2, A2P2),
            (A1P1, true, true, A2P2, A2P2),
            (A2P2, true, true, A1P1, A1P1),
            (a2p1, false, true, A2P2, a1p2),
            (a1p2, true, false, A2P2, a2p1),
        ];
        for (on, change_ip, change_port, from, other) in cases {
            let mut server = rfc5780();
            let change = ChangeRequest {
                change_ip,
                change_port,
            };
            let (_, t) = ask(&mut server, on, &request(&[&change]));
            assert_eq!(t.source, addr(from), "{on} {change:?}");
            let m = Message::parse(&t.payload).unwrap();
            assert_eq!(get(&m), Some(ResponseOrigin(addr(from))));
            assert_eq!(get(&m), Some(OtherAddress(addr(other))), "{on}");
            assert_eq!(get(&m), Some(XorMappedAddress(addr(CLIENT))));
        }
        assert_eq!(rfc5780().local_addresses().len(), 4);
    }

    #[test]
    fn response_port_and_padding_follow_rfc_5780() {
        let mut server = rfc5780();
        let (_, t) = ask(&mut server, A1P1, &request(&[&ResponsePort(40000)]));
        assert_eq!(t.destination, "198.51.100.7:40000".parse().unwrap());
        let m = Message::parse(&t.payload).unwrap();
        assert_eq!(get(&m), Some(XorMappedAddress(addr(CLIENT))));

        let (_, t) = ask(&mut server, A1P1, &request(&[&Padding { len: 600 }]));
        let m = Message::parse(&t.payload).unwrap();
        assert_eq!(get(&m), Some(Padding { len: 600 }));
        let (_, t) = ask(&mut server, A1P1, &request(&[&Padding { len: 9000 }]));
        let m = Message::parse(&t.payload).unwrap();
        assert_eq!(get(&m), Some(Padding { len: 1500 }), "capped at the MTU");

        let both = request(&[&Padding { len: 8 }, &ResponsePort(40000)]);
        let (handled, t) = ask(&mut server, A1P1, &both);
        assert_eq!(handled, Handled::Rejected(400));
        assert_eq!(t.destination, addr(CLIENT));
        assert_eq!(error_code(&Message::parse(&t.payload).unwrap()), 400);
    }

    #[test]
    fn change_request_without_an_alternate_address_is_a_420() {
        let mut server = BindingServer::new(BindingServerConfig::new(addr(A1P1)));
        let change = ChangeRequest {
            change_ip: true,
            change_port: false,
        };
        let (handled, t) = ask(&mut server, A1P1, &request(&[&change]));
        assert_eq!(handled, Handled::Rejected(420));
        let m = Message::parse(&t.payload).unwrap();
        let listed: Vec<_> = get::<UnknownAttributes<'_>>(&m).unwrap().iter().collect();
        assert_eq!(listed, [AttributeType::CHANGE_REQUEST]);
        // A CHANGE-REQUEST asking for nothing is fine.
        let (handled, _) = ask(&mut server, A1P1, &request(&[&ChangeRequest::default()]));
        assert_eq!(handled, Handled::Answered);
    }

    #[test]
    fn unknown_comprehension_required_attributes_get_420_with_their_list() {
        let mut server = BindingServer::new(BindingServerConfig::new(addr(A1P1)));
        let unknown = RawAttribute {
            attribute_type: AttributeType::new(0x7123),
            value: &[1, 2, 3, 4],
        };
        let optional = RawAttribute {
            attribute_type: AttributeType::new(0xC123),
            value: &[1],
        };
        let (handled, _) = ask(&mut server, A1P1, &request(&[&optional]));
        assert_eq!(handled, Handled::Answered, "optional ones are ignored");
        let (handled, t) = ask(&mut server, A1P1, &request(&[&optional, &unknown]));
        assert_eq!(handled, Handled::Rejected(420));
        let m = Message::parse(&t.payload).unwrap();
        assert_eq!(m.message_type(), MessageType::BINDING_ERROR);
        assert_eq!(error_code(&m), 420);
        let listed: Vec<_> = get::<UnknownAttributes<'_>>(&m).unwrap().iter().collect();
        assert_eq!(listed, [AttributeType::new(0x7123)]);
        m.verify_fingerprint().unwrap();
        assert_eq!(server.stats().error_responses, 1);
    }

    #[test]
    fn malformed_attributes_and_other_methods_get_400() {
        let mut server = rfc5780();
        let bad_change = RawAttribute {
            attribute_type: AttributeType::CHANGE_REQUEST,
            value: &[0, 4],
        };
        let (handled, _) = ask(&mut server, A1P1, &request(&[&bad_change]));
        assert_eq!(handled, Handled::Rejected(400));
        let allocate = MessageBuilder::new_bytes(
            MessageType::new(Method::ALLOCATE, Class::Request),
            [1; 12].into(),
        )
        .into_bytes();
        let (handled, t) = ask(&mut server, A1P1, &allocate);
        assert_eq!(handled, Handled::Rejected(400));
        let m = Message::parse(&t.payload).unwrap();
        assert_eq!(
            m.message_type(),
            MessageType::new(Method::ALLOCATE, Class::Error)
        );
        // Without the magic cookie a TURN method is no STUN at all (RFC 3489 had none):
        // dropped, not answered in the classic form.
        let classic = MessageBuilder::new_rfc3489(
            bytes::BytesMut::new(),
            MessageType::new(Method::CREATE_PERMISSION, Class::Request),
            [2; 16],
        )
        .unwrap()
        .into_bytes();
        let handled = server.handle_datagram(
            t0(),
            TransportProtocol::Udp,
            addr(CLIENT),
            addr(A1P1),
            &classic,
        );
        assert_eq!(handled, Handled::Dropped(DropReason::NoMagicCookie));
        assert_eq!(server.stats().dropped_no_magic_cookie, 1);
        assert!(server.poll_transmit().is_none());
    }

    #[test]
    fn bad_datagrams_are_dropped_and_counted() {
        let mut server = rfc5780();
        let now = t0();
        let udp = TransportProtocol::Udp;
        let client = addr(CLIENT);
        let mut fingerprinted =
            MessageBuilder::new_bytes(MessageType::BINDING_REQUEST, [1; 12].into());
        fingerprinted.add_fingerprint().unwrap();
        let mut bad_fingerprint = fingerprinted.into_bytes().to_vec();
        bad_fingerprint[27] ^= 1;
        let response =
            MessageBuilder::new_bytes(MessageType::BINDING_SUCCESS, [1; 12].into()).into_bytes();
        let indication =
            MessageBuilder::new_bytes(MessageType::BINDING_INDICATION, [1; 12].into()).into_bytes();
        let cases: [(&[u8], &str, DropReason); 6] = [
            (b"GET / HTTP/1.1\r\n\r\n", A1P1, DropReason::Malformed),
            (&[0u8; 19], A1P1, DropReason::Malformed),
            (&bad_fingerprint, A1P1, DropReason::BadFingerprint),
            (&response, A1P1, DropReason::Response),
            (&indication, A1P1, DropReason::Indication),
            (&request(&[]), "203.0.113.1:3478", DropReason::WrongAddress),
        ];
        for (datagram, on, reason) in cases {
            let handled = server.handle_datagram(now, udp, client, addr(on), datagram);
            assert_eq!(handled, Handled::Dropped(reason));
        }
        assert_eq!(server.poll_transmit(), None);
        let s = server.stats();
        assert_eq!(
            (
                s.dropped_malformed,
                s.dropped_bad_fingerprint,
                s.dropped_responses,
                s.indications,
                s.dropped_wrong_address
            ),
            (2, 1, 1, 1, 1)
        );
    }

    #[test]
    fn short_term_integrity_paths_400_401_and_signed_success() {
        let key = IntegrityKey::short_term("secret").unwrap();
        let mut config = BindingServerConfig::new(addr(A1P1));
        config.authentication = Authentication::ShortTerm(ShortTermCredential {
            username: "alice".into(),
            key: key.clone(),
        });
        let mut server = BindingServer::new(config);
        let signed = |user: &str, key: &IntegrityKey, sha256: bool| {
            let mut b = MessageBuilder::new_bytes(MessageType::BINDING_REQUEST, [5; 12].into());
            b.add(&Username::new(user).unwrap()).unwrap();
            if sha256 {
                b.add_message_integrity_sha256(key).unwrap();
            } else {
                b.add_message_integrity(key).unwrap();
            }
            b.into_bytes().to_vec()
        };
        let (handled, _) = ask(&mut server, A1P1, &request(&[]));
        assert_eq!(handled, Handled::Rejected(400), "no integrity");
        let (handled, _) = ask(
            &mut server,
            A1P1,
            &request(&[&Username::new("alice").unwrap()]),
        );
        assert_eq!(handled, Handled::Rejected(400), "username only");
        let (handled, t) = ask(&mut server, A1P1, &signed("bob", &key, false));
        assert_eq!(handled, Handled::Rejected(401), "unknown user");
        let m = Message::parse(&t.payload).unwrap();
        assert!(!m.has_integrity(), "a 401 is not signed");
        let wrong = IntegrityKey::short_term("guess").unwrap();
        let (handled, _) = ask(&mut server, A1P1, &signed("alice", &wrong, false));
        assert_eq!(handled, Handled::Rejected(401), "wrong password");
        for sha256 in [false, true] {
            let (handled, t) = ask(&mut server, A1P1, &signed("alice", &key, sha256));
            assert_eq!(handled, Handled::Answered);
            let m = Message::parse(&t.payload).unwrap();
            let algorithm = m.verify_integrity(&key).unwrap();
            assert_eq!(algorithm == IntegrityAlgorithm::Sha256, sha256);
            m.verify_fingerprint().unwrap();
        }
    }

    #[test]
    fn a_flood_of_malformed_requests_leaves_memory_flat_and_every_drop_counted() {
        let mut config = BindingServerConfig::new(addr(A1P1));
        config.max_queued_transmits = 32;
        let mut server = BindingServer::new(config);
        let now = t0();
        let udp = TransportProtocol::Udp;
        let valid = request(&[]);
        let mut garbage = valid.clone();
        for i in 0..100_000u32 {
            // Alternate framing faults: bad length field, bad first byte, truncation.
            garbage[3] = (i % 251) as u8 | 1;
            let datagram = match i % 3 {
                0 => &garbage[..],
                1 => &[0xff; 24][..],
                _ => &valid[..(i % 20) as usize],
            };
            let handled = server.handle_datagram(now, udp, addr(CLIENT), addr(A1P1), datagram);
            assert_eq!(handled, Handled::Dropped(DropReason::Malformed));
        }
        // Valid requests nobody drains: the queue stops at its bound, the rest are counted.
        for _ in 0..100 {
            server.handle_datagram(now, udp, addr(CLIENT), addr(A1P1), &valid);
        }
        assert_eq!(server.queued_transmits(), 32);
        let s = *server.stats();
        assert_eq!(s.dropped_malformed, 100_000);
        assert_eq!(s.success_responses, 32);
        assert_eq!(s.dropped_queue_full, 68);
        assert!(
            server.transmits.capacity() <= 64,
            "queue never grew past its bound"
        );
    }

    #[test]
    fn very_early_timestamps_are_harmless() {
        let mut server = rfc5780();
        let handled = server.handle_datagram(
            very_early(),
            TransportProtocol::Tcp,
            addr(CLIENT),
            addr(A1P1),
            &request(&[&ChangeRequest {
                change_ip: true,
                change_port: true,
            }]),
        );
        assert_eq!(handled, Handled::Answered);
        let t = server.poll_transmit().unwrap();
        assert_eq!(
            t.source,
            addr(A1P1),
            "over TCP the answer stays on the connection"
        );
        assert_eq!(t.transport, TransportProtocol::Tcp);
    }

    #[test]
    fn very_late_timestamps_are_harmless() {
        let mut server = rfc5780();
        for now in [
            very_late(),
            very_late() - std::time::Duration::from_millis(1),
        ] {
            let handled = server.handle_datagram(
                now,
                TransportProtocol::Udp,
                addr(CLIENT),
                addr(A1P1),
                &request(&[&ChangeRequest {
                    change_ip: true,
                    change_port: true,
                }]),
            );
            assert_eq!(handled, Handled::Answered);
            assert_eq!(server.poll_transmit().unwrap().source, addr(A2P2));
        }
    }

    #[test]
    fn the_fuzz_entry_point_accepts_mixed_input() {
        let mut input = vec![];
        let valid = request(&[&ChangeRequest {
            change_ip: true,
            change_port: true,
        }]);
        for (i, datagram) in [&valid[..], b"junk", &valid[..7], &[0; 20]]
            .iter()
            .enumerate()
        {
            input.push(i as u8);
            input.extend_from_slice(&(datagram.len() as u16).to_be_bytes());
            input.extend_from_slice(datagram);
        }
        for cut in 0..input.len() {
            crate::fuzzing::binding_server(&input[..cut]);
        }
        let mut seed = crate::test_support::TestRng::new(3);
        let mut noise = vec![0u8; 4096];
        rand_core::RngCore::fill_bytes(&mut seed, &mut noise);
        crate::fuzzing::binding_server(&noise);
    }

    #[test]
    fn answers_to_bare_requests_stay_within_the_documented_factors() {
        // docs/hostile-input.md: what a spoofed 20-byte Binding request draws.
        let bare = request(&[]);
        assert_eq!(bare.len(), 20);
        let size = |config: BindingServerConfig, client: &str| {
            let on = config.primary;
            let mut server = BindingServer::new(config);
            let handled =
                server.handle_datagram(t0(), TransportProtocol::Udp, addr(client), on, &bare);
            assert!(matches!(handled, Handled::Answered | Handled::Rejected(_)));
            server.poll_transmit().unwrap().payload.len()
        };
        let v6 = |primary: &str, alternate: Option<&str>| {
            let mut c = BindingServerConfig::new(addr(primary));
            c.alternate = alternate.map(addr);
            c
        };
        let (v6_client, v6_primary, v6_alternate) = (
            "[2001:db8::7]:50000",
            "[2001:db8::1]:3478",
            "[2001:db8::2]:3479",
        );
        // XOR-MAPPED-ADDRESS, RESPONSE-ORIGIN, (OTHER-ADDRESS,) FINGERPRINT; no SOFTWARE.
        assert_eq!(size(BindingServerConfig::new(addr(A1P1)), CLIENT), 52); // 2.6×
        assert_eq!(size(v6(v6_primary, None), v6_client), 76); // 3.8×
        let mut rfc5780 = BindingServerConfig::new(addr(A1P1));
        rfc5780.alternate = Some(addr(A2P2));
        assert_eq!(size(rfc5780, CLIENT), 64); // 3.2×
        assert_eq!(size(v6(v6_primary, Some(v6_alternate)), v6_client), 100); // 5.0×
        // The long-term 401: ERROR-CODE without a reason phrase, REALM, NONCE,
        // PASSWORD-ALGORITHMS, FINGERPRINT: 5.2×.
        let auth = crate::long_term::LongTermAuth::new(
            t0(),
            crate::long_term::LongTermConfig::new("example.org"),
            &mut crate::test_support::TestRng::new(8),
        );
        let mut long_term = BindingServerConfig::new(addr(A1P1));
        long_term.authentication = Authentication::LongTerm(auth);
        assert_eq!(size(long_term, CLIENT), 20 + 8 + 16 + 40 + 12 + 8);
    }

    #[test]
    fn long_term_credentials_challenge_401_then_accept_and_438_when_stale() {
        use crate::attribute::{Nonce, PasswordAlgorithm, Realm};
        use crate::long_term::{LongTermAuth, LongTermConfig};

        let start = t0();
        let mut config = LongTermConfig::new("example.org");
        config.password_algorithms.clear(); // RFC 5389 style: MD5, no negotiation
        let mut auth = LongTermAuth::new(start, config, &mut crate::test_support::TestRng::new(8));
        auth.add_user("alice", "wonderland").unwrap();
        let mut server_config = BindingServerConfig::new(addr(A1P1));
        server_config.authentication = Authentication::LongTerm(auth);
        let mut server = BindingServer::new(server_config);
        let udp = TransportProtocol::Udp;

        // The first request: 401 with REALM and NONCE.
        server.handle_datagram(start, udp, addr(CLIENT), addr(A1P1), &request(&[]));
        let challenge = server.poll_transmit().unwrap();
        let m = Message::parse(&challenge.payload).unwrap();
        assert_eq!(error_code(&m), 401);
        let realm = get::<Realm<'_>>(&m).unwrap().as_str().to_owned();
        let nonce = get::<Nonce<'_>>(&m).unwrap().as_str().to_owned();
        assert_eq!(realm, "example.org");

        let key =
            IntegrityKey::long_term("alice", &realm, "wonderland", PasswordAlgorithm::Md5).unwrap();
        let signed = |nonce: &str| {
            let mut b = MessageBuilder::new_bytes(MessageType::BINDING_REQUEST, [6; 12].into());
            b.add(&Username::new("alice").unwrap()).unwrap();
            b.add(&Realm::new(&realm).unwrap()).unwrap();
            b.add(&Nonce::new(nonce).unwrap()).unwrap();
            b.add_message_integrity(&key).unwrap();
            b.add_fingerprint().unwrap();
            b.into_bytes()
        };
        let handled = server.handle_datagram(start, udp, addr(CLIENT), addr(A1P1), &signed(&nonce));
        assert_eq!(handled, Handled::Answered);
        let t = server.poll_transmit().unwrap();
        let m = Message::parse(&t.payload).unwrap();
        assert_eq!(m.verify_integrity(&key), Ok(IntegrityAlgorithm::Sha1));
        assert_eq!(get(&m), Some(XorMappedAddress(addr(CLIENT))));

        // Eleven minutes later the nonce is stale: 438 with a fresh one.
        let later = start + std::time::Duration::from_secs(660);
        let handled = server.handle_datagram(later, udp, addr(CLIENT), addr(A1P1), &signed(&nonce));
        assert_eq!(handled, Handled::Rejected(438));
        let t = server.poll_transmit().unwrap();
        let m = Message::parse(&t.payload).unwrap();
        let fresh = get::<Nonce<'_>>(&m).unwrap().as_str().to_owned();
        assert_ne!(fresh, nonce);
        let handled = server.handle_datagram(later, udp, addr(CLIENT), addr(A1P1), &signed(&fresh));
        assert_eq!(handled, Handled::Answered);
    }
}
