//! The server against hand-built requests, every error path, and its timers at exact
//! virtual times.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::*;
use crate::attribute::{
    AdditionalAddressFamily, AddressErrorCode, AddressFamily, AttributeType, ChannelNumber,
    DecodeAttribute, DontFragment, ErrorCode, EvenPort, Lifetime, Nonce, PasswordAlgorithm,
    RawAttribute, Realm, RequestedAddressFamily, RequestedTransport, ReservationToken,
    UnknownAttributes, Username, XorMappedAddress, XorRelayedAddress,
};
use crate::attribute::{Data, XorPeerAddress};
use crate::credentials::IntegrityKey;
use crate::header::MessageType;
use crate::test_support::{TestRng, t0, very_early, very_late};

const LISTEN: &str = "192.0.2.1:3478";
const CLIENT: &str = "198.51.100.7:50000";
const PEER: &str = "203.0.113.5:7000";
const REALM: &str = "example.org";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn relays() -> Vec<SocketAddr> {
    [
        "192.0.2.1:49152",
        "192.0.2.1:49153",
        "192.0.2.1:49154",
        "[2001:db8::1]:49152",
    ]
    .iter()
    .map(|s| addr(s))
    .collect()
}

fn tuple_from(client: &str) -> FiveTuple {
    FiveTuple {
        transport: TransportProtocol::Udp,
        client: addr(client),
        server: addr(LISTEN),
    }
}

fn tuple() -> FiveTuple {
    tuple_from(CLIENT)
}

fn server_with(now: Instant, f: impl FnOnce(&mut TurnServerConfig)) -> TurnServer<TestRng> {
    let mut config = TurnServerConfig::new(REALM, relays());
    f(&mut config);
    let mut server = TurnServer::new(now, config, TestRng::new(3));
    server.add_user("alice", "secret").unwrap();
    server.add_user("bob", "hunter2").unwrap();
    server
}

fn server(now: Instant) -> TurnServer<TestRng> {
    server_with(now, |_| {})
}

fn key(user: &str, password: &str) -> IntegrityKey {
    IntegrityKey::long_term(user, REALM, password, PasswordAlgorithm::Md5).unwrap()
}

/// A client's request, signed as `user` with `nonce` (or unsigned without one).
struct Req {
    method: Method,
    id: [u8; 12],
    user: (&'static str, &'static str),
    nonce: Option<String>,
}

impl Req {
    fn new(method: Method, nonce: &str) -> Self {
        Self {
            method,
            id: [1; 12],
            user: ("alice", "secret"),
            nonce: Some(nonce.to_owned()),
        }
    }

    fn build(&self, add: impl FnOnce(&mut MessageBuilder<BytesMut>)) -> Bytes {
        let message_type = MessageType::new(self.method, Class::Request);
        let mut b = MessageBuilder::new_bytes(message_type, self.id.into());
        add(&mut b);
        if let Some(nonce) = &self.nonce {
            b.add(&Username::new(self.user.0).unwrap()).unwrap();
            b.add(&Realm::new(REALM).unwrap()).unwrap();
            b.add(&Nonce::new(nonce).unwrap()).unwrap();
            b.add_message_integrity(&key(self.user.0, self.user.1))
                .unwrap();
        }
        b.add_fingerprint().unwrap();
        b.into_bytes()
    }
}

fn udp(b: &mut MessageBuilder<BytesMut>) {
    b.add(&RequestedTransport::UDP).unwrap();
}

/// Sends `request` over `tuple` and returns the response.
fn exchange(s: &mut TurnServer<TestRng>, now: Instant, tuple: FiveTuple, request: &[u8]) -> Bytes {
    assert_eq!(
        s.handle_client_datagram(now, tuple, request),
        Handled::Answered
    );
    let t = s.poll_transmit().expect("a response");
    assert_eq!((t.source, t.destination), (tuple.server, tuple.client));
    assert!(s.poll_transmit().is_none());
    t.payload
}

/// The response's error code, 0 for a success.
fn code(response: &[u8]) -> u16 {
    let m = Message::parse(response).unwrap();
    match m.class() {
        Class::Success => 0,
        _ => m.get::<ErrorCode>().unwrap().unwrap().code(),
    }
}

fn nonce(s: &mut TurnServer<TestRng>, now: Instant) -> String {
    nonce_from(s, now, tuple())
}

/// An allocation for `tuple()`; returns the nonce and the relayed address.
fn allocate(s: &mut TurnServer<TestRng>, now: Instant) -> (String, SocketAddr) {
    let nonce = nonce(s, now);
    let response = exchange(
        s,
        now,
        tuple(),
        &Req::new(Method::ALLOCATE, &nonce).build(udp),
    );
    assert_eq!(code(&response), 0);
    let m = Message::parse(&response).unwrap();
    let relayed = m.get::<XorRelayedAddress>().unwrap().unwrap().0;
    while s.poll_event().is_some() {}
    (nonce, relayed)
}

fn permit(s: &mut TurnServer<TestRng>, now: Instant, nonce: &str, peer: SocketAddr) -> u16 {
    let mut req = Req::new(Method::CREATE_PERMISSION, nonce);
    req.id = [2; 12];
    let request = req.build(|b| {
        b.add(&XorPeerAddress(peer)).unwrap();
    });
    code(&exchange(s, now, tuple(), &request))
}

fn bind(
    s: &mut TurnServer<TestRng>,
    now: Instant,
    nonce: &str,
    channel: u16,
    peer: SocketAddr,
) -> u16 {
    let mut req = Req::new(Method::CHANNEL_BIND, nonce);
    req.id = [3; 12];
    let request = req.build(|b| {
        b.add(&ChannelNumber(channel)).unwrap();
        b.add(&XorPeerAddress(peer)).unwrap();
    });
    code(&exchange(s, now, tuple(), &request))
}

fn refresh(s: &mut TurnServer<TestRng>, now: Instant, nonce: &str, lifetime: Option<u32>) -> Bytes {
    let mut req = Req::new(Method::REFRESH, nonce);
    req.id = [4; 12];
    let request = req.build(|b| {
        if let Some(l) = lifetime {
            b.add(&Lifetime(l)).unwrap();
        }
    });
    exchange(s, now, tuple(), &request)
}

#[test]
fn answers_to_bare_requests_stay_small() {
    // docs/hostile-input.md: what a spoofed 20-byte request draws from a TURN server.
    let now = t0();
    let mut s = server_with(now, |c| c.software = Some("a TURN server 1.0".into()));
    let bare = |method| {
        MessageBuilder::new_bytes(MessageType::new(method, Class::Request), [9; 12].into())
            .into_bytes()
    };
    // 401: ERROR-CODE without a reason phrase (8), REALM "example.org" (16), NONCE (40),
    // PASSWORD-ALGORITHMS (12), FINGERPRINT (8); no SOFTWARE.
    let challenge = exchange(&mut s, now, tuple(), &bare(Method::ALLOCATE));
    assert_eq!(code(&challenge), 401);
    assert_eq!(challenge.len(), 20 + 8 + 16 + 40 + 12 + 8);
    assert!(challenge.len() <= 104, "5.2 times the request");
    let m = Message::parse(&challenge).unwrap();
    assert!(!m.has(AttributeType::SOFTWARE));
    assert_eq!(m.get::<ErrorCode>().unwrap().unwrap().reason(), "");
    // Binding: XOR-MAPPED-ADDRESS and FINGERPRINT, 2 times (IPv4).
    let mapped = exchange(&mut s, now, tuple(), &bare(Method::BINDING));
    assert_eq!(mapped.len(), 20 + 12 + 8);
    // The challenge's nonce still works: a signed Allocate gets SOFTWARE back.
    let nonce = m.get::<Nonce>().unwrap().unwrap().as_str().to_owned();
    let ok = exchange(
        &mut s,
        now,
        tuple(),
        &Req::new(Method::ALLOCATE, &nonce).build(udp),
    );
    assert_eq!(code(&ok), 0);
    assert!(Message::parse(&ok).unwrap().has(AttributeType::SOFTWARE));
}

#[test]
fn an_unauthenticated_allocate_is_challenged_and_changes_nothing() {
    let now = t0();
    let mut s = server(now);
    let mut req = Req::new(Method::ALLOCATE, "");
    req.nonce = None;
    let response = exchange(&mut s, now, tuple(), &req.build(udp));
    let m = Message::parse(&response).unwrap();
    assert_eq!(code(&response), 401);
    assert_eq!(m.get::<Realm>().unwrap().unwrap().as_str(), REALM);
    assert!(m.has(Nonce::TYPE));
    // A wrong password is another 401; a forged nonce a 438.
    let nonce = nonce(&mut s, now);
    let mut wrong = Req::new(Method::ALLOCATE, &nonce);
    wrong.user = ("alice", "guess");
    assert_eq!(
        code(&exchange(&mut s, now, tuple(), &wrong.build(udp))),
        401
    );
    let forged = Req::new(
        Method::ALLOCATE,
        "obMatJos2AAAA0000000000000000000000000000",
    );
    assert_eq!(
        code(&exchange(&mut s, now, tuple(), &forged.build(udp))),
        438
    );
    assert_eq!(s.allocation_count(), 0);
    assert_eq!(s.poll_event(), None);
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn allocate_answers_with_relayed_mapped_and_lifetime() {
    let now = t0();
    let mut s = server(now);
    let nonce = nonce(&mut s, now);
    let response = exchange(
        &mut s,
        now,
        tuple(),
        &Req::new(Method::ALLOCATE, &nonce).build(udp),
    );
    let m = Message::parse(&response).unwrap();
    assert_eq!(code(&response), 0);
    m.verify_integrity(&key("alice", "secret")).unwrap();
    assert_eq!(
        m.get::<XorRelayedAddress>().unwrap().unwrap().0,
        addr("192.0.2.1:49152")
    );
    assert_eq!(
        m.get::<XorMappedAddress>().unwrap().unwrap().0,
        addr(CLIENT)
    );
    assert_eq!(m.get::<Lifetime>().unwrap().unwrap(), Lifetime(600));
    let Some(ServerEvent::AllocationCreated {
        username, relayed, ..
    }) = s.poll_event()
    else {
        panic!()
    };
    assert_eq!(
        (username.as_str(), relayed),
        ("alice", addr("192.0.2.1:49152"))
    );
    assert_eq!(s.poll_timeout(), Some(now + Duration::from_secs(600)));
    // A retransmission gets the same answer; a new Allocate on the 5-tuple is 437.
    let again = exchange(
        &mut s,
        now,
        tuple(),
        &Req::new(Method::ALLOCATE, &nonce).build(udp),
    );
    assert_eq!(again, response);
    let mut other = Req::new(Method::ALLOCATE, &nonce);
    other.id = [7; 12];
    assert_eq!(
        code(&exchange(&mut s, now, tuple(), &other.build(udp))),
        437
    );
    assert_eq!(s.allocation_count(), 1);
}

#[test]
fn allocate_lifetimes_are_clamped_to_default_and_maximum() {
    let now = t0();
    let mut s = server(now);
    let nonce = nonce(&mut s, now);
    for (asked, granted) in [(60, 600), (1200, 1200), (100_000, 3600)] {
        let mut req = Req::new(Method::ALLOCATE, &nonce);
        req.id = [asked as u8; 12];
        let client = format!("198.51.100.7:{}", 40000 + asked % 1000);
        let response = exchange(
            &mut s,
            now,
            tuple_from(&client),
            &req.build(|b| {
                udp(b);
                b.add(&Lifetime(asked)).unwrap();
            }),
        );
        // The nonce was issued to CLIENT; other 5-tuples get 438 with one of their own.
        let response = if code(&response) == 438 {
            let m = Message::parse(&response).unwrap();
            let fresh = m.get::<Nonce>().unwrap().unwrap().as_str().to_owned();
            let mut req = Req::new(Method::ALLOCATE, &fresh);
            req.id = [asked as u8 ^ 0xff; 12];
            exchange(
                &mut s,
                now,
                tuple_from(&client),
                &req.build(|b| {
                    udp(b);
                    b.add(&Lifetime(asked)).unwrap();
                }),
            )
        } else {
            response
        };
        let m = Message::parse(&response).unwrap();
        assert_eq!(
            m.get::<Lifetime>().unwrap().unwrap(),
            Lifetime(granted),
            "{asked}"
        );
    }
}

#[test]
fn allocate_error_paths() {
    let now = t0();
    let mut s = server(now);
    let nonce = nonce(&mut s, now);
    let ask = |s: &mut TurnServer<TestRng>, add: &dyn Fn(&mut MessageBuilder<BytesMut>)| {
        let response = exchange(
            s,
            now,
            tuple(),
            &Req::new(Method::ALLOCATE, &nonce).build(add),
        );
        code(&response)
    };
    assert_eq!(ask(&mut s, &|_| {}), 400, "no REQUESTED-TRANSPORT");
    assert_eq!(
        ask(&mut s, &|b| {
            b.add(&RequestedTransport::TCP).unwrap();
        }),
        400,
        "TCP over UDP (RFC 6062 §5.1)"
    );
    assert_eq!(
        ask(&mut s, &|b| {
            b.add(&RequestedTransport(132)).unwrap();
        }),
        442
    );
    assert_eq!(
        ask(&mut s, &|b| {
            udp(b);
            b.add(&ReservationToken([1; 8])).unwrap();
            b.add(&EvenPort { reserve: false }).unwrap();
        }),
        400,
        "token with EVEN-PORT"
    );
    assert_eq!(
        ask(&mut s, &|b| {
            udp(b);
            b.add(&RequestedAddressFamily(AddressFamily::Ipv6)).unwrap();
            b.add(&AdditionalAddressFamily(AddressFamily::Ipv6))
                .unwrap();
        }),
        400,
        "both family attributes"
    );
    assert_eq!(
        ask(&mut s, &|b| {
            udp(b);
            b.add(&AdditionalAddressFamily(AddressFamily::Ipv4))
                .unwrap();
        }),
        400,
        "ADDITIONAL-ADDRESS-FAMILY must be IPv6"
    );
    assert_eq!(
        ask(&mut s, &|b| {
            udp(b);
            b.add(&EvenPort { reserve: true }).unwrap();
            b.add(&AdditionalAddressFamily(AddressFamily::Ipv6))
                .unwrap();
        }),
        400,
        "a reserved port pair cannot be dual"
    );
    assert_eq!(
        ask(&mut s, &|b| {
            udp(b);
            b.add(&ReservationToken([1; 8])).unwrap();
        }),
        508,
        "unknown token"
    );
    assert_eq!(
        ask(&mut s, &|b| {
            udp(b);
            b.add(&RawAttribute {
                attribute_type: AttributeType::REQUESTED_ADDRESS_FAMILY,
                value: &[3, 0, 0, 0],
            })
            .unwrap();
        }),
        440,
        "unknown family"
    );
    // DONT-FRAGMENT is refused as unknown unless the caller can set DF.
    let response = exchange(
        &mut s,
        now,
        tuple(),
        &Req::new(Method::ALLOCATE, &nonce).build(|b| {
            udp(b);
            b.add(&DontFragment).unwrap();
        }),
    );
    assert_eq!(code(&response), 420);
    let m = Message::parse(&response).unwrap();
    let unknown: Vec<_> = m
        .get::<UnknownAttributes>()
        .unwrap()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(unknown, vec![AttributeType::DONT_FRAGMENT]);
    // An unknown comprehension-required attribute.
    assert_eq!(
        ask(&mut s, &|b| {
            udp(b);
            b.add(&RawAttribute {
                attribute_type: AttributeType::new(0x7777),
                value: &[],
            })
            .unwrap();
        }),
        420
    );
    // A method TURN does not define.
    let response = exchange(
        &mut s,
        now,
        tuple(),
        &Req::new(Method::new(0x0FF).unwrap(), &nonce).build(|_| {}),
    );
    assert_eq!(code(&response), 400);
    assert_eq!(s.allocation_count(), 0);
    assert_eq!(s.free_relay_addresses(), 4);
}

#[test]
fn dont_fragment_is_accepted_when_configured() {
    let now = t0();
    let mut s = server_with(now, |c| c.dont_fragment = true);
    let nonce = nonce(&mut s, now);
    let response = exchange(
        &mut s,
        now,
        tuple(),
        &Req::new(Method::ALLOCATE, &nonce).build(|b| {
            udp(b);
            b.add(&DontFragment).unwrap();
        }),
    );
    assert_eq!(code(&response), 0);
}

#[test]
fn address_families_ipv6_and_dual_stack() {
    let now = t0();
    let mut s = server(now);
    let nonce = nonce(&mut s, now);
    let response = exchange(
        &mut s,
        now,
        tuple(),
        &Req::new(Method::ALLOCATE, &nonce).build(|b| {
            udp(b);
            b.add(&AdditionalAddressFamily(AddressFamily::Ipv6))
                .unwrap();
        }),
    );
    let m = Message::parse(&response).unwrap();
    let tid = m.transaction_id();
    let relayed: Vec<SocketAddr> = m
        .attributes()
        .filter(|a| a.attribute_type == AttributeType::XOR_RELAYED_ADDRESS)
        .map(|a| a.decode::<XorRelayedAddress>(&tid).unwrap().0)
        .collect();
    assert_eq!(
        relayed,
        vec![addr("192.0.2.1:49152"), addr("[2001:db8::1]:49152")]
    );
    // Another dual-stack allocation finds no IPv6 address left: IPv4 only, with
    // ADDRESS-ERROR-CODE 508 for IPv6.
    let other = tuple_from("198.51.100.8:50000");
    let mut req = Req::new(Method::ALLOCATE, "");
    req.nonce = None;
    let challenge = exchange(&mut s, now, other, &req.build(udp));
    let fresh = Message::parse(&challenge)
        .unwrap()
        .get::<Nonce>()
        .unwrap()
        .unwrap()
        .as_str()
        .to_owned();
    let response = exchange(
        &mut s,
        now,
        other,
        &Req::new(Method::ALLOCATE, &fresh).build(|b| {
            udp(b);
            b.add(&AdditionalAddressFamily(AddressFamily::Ipv6))
                .unwrap();
        }),
    );
    let m = Message::parse(&response).unwrap();
    assert_eq!(code(&response), 0);
    let error = m.get::<AddressErrorCode>().unwrap().unwrap();
    assert_eq!(
        (error.family, error.error().code()),
        (AddressFamily::Ipv6, 508)
    );
    // IPv6 only, with no IPv6 left: 508; a pool without IPv6 at all: 440.
    let v4_only = vec![addr("192.0.2.1:49152")];
    let mut s = server_with(now, |c| c.relay_addresses = v4_only);
    let nonce = self::nonce(&mut s, now);
    let response = exchange(
        &mut s,
        now,
        tuple(),
        &Req::new(Method::ALLOCATE, &nonce).build(|b| {
            udp(b);
            b.add(&RequestedAddressFamily(AddressFamily::Ipv6)).unwrap();
        }),
    );
    assert_eq!(code(&response), 440);
}

#[test]
fn coturn_numbered_dual_allocation_is_understood_when_enabled() {
    let now = t0();
    let draft = |b: &mut MessageBuilder<BytesMut>| {
        udp(b);
        b.add(&RawAttribute {
            attribute_type: crate::turn::DRAFT_ADDITIONAL_ADDRESS_FAMILY,
            value: &[2, 0, 0, 0],
        })
        .unwrap();
    };
    let relayed_count = |response: &[u8]| {
        let m = Message::parse(response).unwrap();
        m.attributes()
            .filter(|a| a.attribute_type == AttributeType::XOR_RELAYED_ADDRESS)
            .count()
    };
    // Off: 0x8032 is an unknown optional attribute, IPv4 only.
    let mut s = server(now);
    let nonce = nonce(&mut s, now);
    let response = exchange(
        &mut s,
        now,
        tuple(),
        &Req::new(Method::ALLOCATE, &nonce).build(draft),
    );
    assert_eq!((code(&response), relayed_count(&response)), (0, 1));
    // On: IPv4 and IPv6.
    let mut s = server_with(now, |c| c.coturn_dual_allocation = true);
    let nonce = self::nonce(&mut s, now);
    let response = exchange(
        &mut s,
        now,
        tuple(),
        &Req::new(Method::ALLOCATE, &nonce).build(draft),
    );
    assert_eq!((code(&response), relayed_count(&response)), (0, 2));
    // Without IPv6 in the pool, the error comes back under coturn's number too.
    let mut s = server_with(now, |c| {
        c.coturn_dual_allocation = true;
        c.relay_addresses = vec![addr("192.0.2.1:49152")];
    });
    let nonce = self::nonce(&mut s, now);
    let response = exchange(
        &mut s,
        now,
        tuple(),
        &Req::new(Method::ALLOCATE, &nonce).build(draft),
    );
    let m = Message::parse(&response).unwrap();
    assert_eq!(relayed_count(&response), 1);
    assert!(!m.has(AttributeType::ADDRESS_ERROR_CODE));
    let raw = m.raw(crate::turn::DRAFT_ADDRESS_ERROR_CODE).unwrap();
    let error = AddressErrorCode::decode(raw.value, &m.transaction_id()).unwrap();
    assert_eq!(
        (error.family, error.error().code()),
        (AddressFamily::Ipv6, 440)
    );
}

#[test]
fn lifetime_zero_for_one_family_releases_only_that_address() {
    let now = t0();
    let mut s = server(now);
    let nonce = nonce(&mut s, now);
    let response = exchange(
        &mut s,
        now,
        tuple(),
        &Req::new(Method::ALLOCATE, &nonce).build(|b| {
            udp(b);
            b.add(&AdditionalAddressFamily(AddressFamily::Ipv6))
                .unwrap();
        }),
    );
    assert_eq!(code(&response), 0);
    assert_eq!(s.free_relay_addresses(), 2);
    let mut req = Req::new(Method::REFRESH, &nonce);
    req.id = [4; 12];
    let request = req.build(|b| {
        b.add(&Lifetime(0)).unwrap();
        b.add(&RequestedAddressFamily(AddressFamily::Ipv4)).unwrap();
    });
    assert_eq!(code(&exchange(&mut s, now, tuple(), &request)), 0);
    // The IPv6 half lives on; the IPv4 address is back in the pool.
    assert_eq!((s.allocation_count(), s.free_relay_addresses()), (1, 3));
    let mut out = [0u8; 64];
    assert_eq!(
        s.handle_peer_datagram_into(now, addr("192.0.2.1:49152"), addr(PEER), b"x", &mut out),
        Handled::Dropped(DropReason::NoAllocation)
    );
    assert_eq!(
        permit(&mut s, now, &nonce, addr(PEER)),
        443,
        "no IPv4 relay any more"
    );
    assert_eq!(permit(&mut s, now, &nonce, addr("[2001:db8::9]:1")), 0);
    // LIFETIME 0 for the family that is left ends the allocation.
    let mut req = Req::new(Method::REFRESH, &nonce);
    req.id = [5; 12];
    let request = req.build(|b| {
        b.add(&Lifetime(0)).unwrap();
        b.add(&RequestedAddressFamily(AddressFamily::Ipv6)).unwrap();
    });
    assert_eq!(code(&exchange(&mut s, now, tuple(), &request)), 0);
    assert_eq!((s.allocation_count(), s.free_relay_addresses()), (0, 4));
}

#[test]
fn the_families_of_a_dual_allocation_are_refreshed_apart() {
    let now = t0();
    let mut s = server_with(now, |c| {
        c.long_term.nonce_lifetime = Duration::from_secs(3600)
    });
    let nonce = nonce(&mut s, now);
    let response = exchange(
        &mut s,
        now,
        tuple(),
        &Req::new(Method::ALLOCATE, &nonce).build(|b| {
            udp(b);
            b.add(&AdditionalAddressFamily(AddressFamily::Ipv6))
                .unwrap();
        }),
    );
    assert_eq!(code(&response), 0);
    // At 100 s only the IPv6 address is refreshed, for 1200 s.
    let t100 = now + Duration::from_secs(100);
    let mut req = Req::new(Method::REFRESH, &nonce);
    req.id = [4; 12];
    let request = req.build(|b| {
        b.add(&Lifetime(1200)).unwrap();
        b.add(&RequestedAddressFamily(AddressFamily::Ipv6)).unwrap();
    });
    assert_eq!(code(&exchange(&mut s, t100, tuple(), &request)), 0);
    assert_eq!(
        s.expires_at(AllocationId(1)),
        Some(t100 + Duration::from_secs(1200))
    );
    // At 600 s the IPv4 address runs out, the allocation lives on with IPv6.
    let t600 = now + Duration::from_secs(600);
    assert_eq!(s.poll_timeout(), Some(t600));
    s.handle_timeout(t600);
    assert_eq!((s.allocation_count(), s.free_relay_addresses()), (1, 3));
    assert_eq!(permit(&mut s, t600, &nonce, addr(PEER)), 443);
    assert_eq!(permit(&mut s, t600, &nonce, addr("[2001:db8::9]:1")), 0);
    // At 1300 s the IPv6 address runs out too, and with it the allocation.
    let t1300 = t100 + Duration::from_secs(1200);
    s.handle_timeout(t1300 - Duration::from_millis(1));
    assert_eq!(s.allocation_count(), 1);
    s.handle_timeout(t1300);
    assert_eq!((s.allocation_count(), s.free_relay_addresses()), (0, 4));
}

/// A nonce for a client at `tuple`, from the 401 to its unsigned Allocate.
fn nonce_from(s: &mut TurnServer<TestRng>, now: Instant, tuple: FiveTuple) -> String {
    let mut req = Req::new(Method::ALLOCATE, "");
    req.nonce = None;
    req.id = [9; 12];
    let challenge = exchange(s, now, tuple, &req.build(udp));
    let m = Message::parse(&challenge).unwrap();
    m.get::<Nonce>().unwrap().unwrap().as_str().to_owned()
}

/// An allocation for `tuple()` with EVEN-PORT's R bit: its relayed address and the token of
/// the port reserved beside it.
fn reserve_pair(s: &mut TurnServer<TestRng>, now: Instant) -> (SocketAddr, ReservationToken) {
    let nonce = nonce(s, now);
    let response = exchange(
        s,
        now,
        tuple(),
        &Req::new(Method::ALLOCATE, &nonce).build(|b| {
            udp(b);
            b.add(&EvenPort { reserve: true }).unwrap();
        }),
    );
    let m = Message::parse(&response).unwrap();
    let relayed = m.get::<XorRelayedAddress>().unwrap().unwrap().0;
    (relayed, m.get::<ReservationToken>().unwrap().unwrap())
}

/// An Allocate redeeming `token`, signed with `nonce`.
fn redeeming(nonce: &str, token: ReservationToken) -> Bytes {
    Req::new(Method::ALLOCATE, nonce).build(|b| {
        udp(b);
        b.add(&token).unwrap();
    })
}

/// The relayed address of a success response.
fn relayed_of(response: &[u8]) -> SocketAddr {
    let m = Message::parse(response).unwrap();
    m.get::<XorRelayedAddress>().unwrap().unwrap().0
}

#[test]
fn even_port_reserves_the_next_port_for_a_token() {
    let now = t0();
    let mut s = server_with(now, |c| {
        c.relay_addresses = vec![
            addr("192.0.2.1:50001"),
            addr("192.0.2.1:50002"),
            addr("192.0.2.1:50003"),
        ]
    });
    let (relayed, token) = reserve_pair(&mut s, now);
    assert_eq!(relayed.port(), 50002);
    assert_eq!(s.free_relay_addresses(), 1);
    assert_eq!(
        s.next_timer(),
        Some((Timer::Reservation, now + RESERVATION_LIFETIME))
    );
    // Another client redeems the token for port 50003.
    let other = tuple_from("198.51.100.9:50000");
    let fresh = nonce_from(&mut s, now, other);
    let response = exchange(&mut s, now, other, &redeeming(&fresh, token));
    assert_eq!(relayed_of(&response).port(), 50003);
}

#[test]
fn a_reservation_made_by_one_machine_is_redeemed_on_another() {
    // Two machines of one driver (two workers), each with its own relay ports and tag.
    let now = t0();
    let mut a = server_with(now, |c| {
        c.relay_addresses = vec![addr("192.0.2.1:50002"), addr("192.0.2.1:50003")];
        c.reservation_tag = Some([0, 1]);
    });
    let mut b = server_with(now, |c| {
        c.relay_addresses = vec![addr("192.0.2.1:50010")];
        c.reservation_tag = Some([0, 2]);
    });
    let (_, token) = reserve_pair(&mut a, now);
    assert_eq!(token.0[..2], [0, 1], "the token names its machine");
    // The RTCP allocation, from another client port, reaches machine b.
    let rtcp = tuple_from("198.51.100.7:50001");
    let nonce_b = nonce_from(&mut b, now, rtcp);
    let redeem = redeeming(&nonce_b, token);
    assert_eq!(a.foreign_reservation(&redeem), None, "a holds it");
    assert_eq!(b.foreign_reservation(&redeem), Some(token));
    let plain = Req::new(Method::ALLOCATE, &nonce_b).build(udp);
    assert_eq!(b.foreign_reservation(&plain), None);
    assert_eq!(b.foreign_reservation(&redeem[..19]), None);
    // Handed over: a's pool loses the port, b's gains it, reserved, and b answers.
    let later = now + Duration::from_secs(1);
    assert_eq!(
        a.handle_reservation_export(later, ReservationToken([9; 8])),
        None
    );
    let reservation = a.handle_reservation_export(later, token).unwrap();
    assert_eq!(reservation.address, addr("192.0.2.1:50003"));
    assert_eq!(a.next_timer().map(|(t, _)| t), Some(Timer::Allocation));
    let mut lapsed = server(now);
    let free = lapsed.free_relay_addresses();
    assert!(!lapsed.handle_reservation_import(now + RESERVATION_LIFETIME, reservation));
    assert_eq!(
        lapsed.free_relay_addresses(),
        free + 1,
        "a lapsed one joins free"
    );
    assert!(b.handle_reservation_import(later, reservation));
    assert!(
        !b.handle_reservation_import(later, reservation),
        "already there"
    );
    assert_eq!(
        b.next_timer(),
        Some((Timer::Reservation, now + RESERVATION_LIFETIME))
    );
    assert_eq!(b.foreign_reservation(&redeem), None);
    let response = exchange(&mut b, later, rtcp, &redeem);
    assert_eq!(relayed_of(&response), addr("192.0.2.1:50003"));
    // Without the hand-over, the token is unknown there: 508.
    let mut c = server(now);
    let nonce_c = nonce(&mut c, now);
    let response = exchange(&mut c, now, tuple(), &redeeming(&nonce_c, token));
    assert_eq!(code(&response), 508);
}

#[test]
fn quotas_per_user_and_in_total() {
    let now = t0();
    let mut s = server_with(now, |c| c.max_allocations_per_user = 1);
    allocate(&mut s, now);
    let other = tuple_from("198.51.100.8:50000");
    let mut req = Req::new(Method::ALLOCATE, "");
    req.nonce = None;
    let challenge = exchange(&mut s, now, other, &req.build(udp));
    let fresh = Message::parse(&challenge)
        .unwrap()
        .get::<Nonce>()
        .unwrap()
        .unwrap()
        .as_str()
        .to_owned();
    let response = exchange(
        &mut s,
        now,
        other,
        &Req::new(Method::ALLOCATE, &fresh).build(udp),
    );
    assert_eq!(code(&response), 486);
    // Bob has his own quota, but the server's total is 1.
    let mut s2 = server_with(now, |c| c.max_allocations = 1);
    allocate(&mut s2, now);
    let mut bob = Req::new(Method::ALLOCATE, &fresh);
    bob.user = ("bob", "hunter2");
    let challenge = exchange(&mut s2, now, other, &req.build(udp));
    let fresh = Message::parse(&challenge)
        .unwrap()
        .get::<Nonce>()
        .unwrap()
        .unwrap()
        .as_str()
        .to_owned();
    bob.nonce = Some(fresh);
    assert_eq!(code(&exchange(&mut s2, now, other, &bob.build(udp))), 508);
    // The pool running dry is 508 too.
    let mut s3 = server_with(now, |c| c.relay_addresses = vec![addr("192.0.2.1:49152")]);
    allocate(&mut s3, now);
    let challenge = exchange(&mut s3, now, other, &req.build(udp));
    let fresh = Message::parse(&challenge)
        .unwrap()
        .get::<Nonce>()
        .unwrap()
        .unwrap()
        .as_str()
        .to_owned();
    bob.nonce = Some(fresh);
    assert_eq!(code(&exchange(&mut s3, now, other, &bob.build(udp))), 508);
    // What the quotas refused is counted apart from what the pool could not give.
    assert_eq!(
        (s.stats().refused_user_quota, s.stats().refused_total_quota),
        (1, 0)
    );
    assert_eq!(
        (
            s2.stats().refused_user_quota,
            s2.stats().refused_total_quota
        ),
        (0, 1)
    );
    assert_eq!(
        (
            s3.stats().refused_user_quota,
            s3.stats().refused_total_quota
        ),
        (0, 0)
    );
    // A long-running deployment under one user name: far more than 10 allocations.
    assert_eq!(
        TurnServerConfig::new(REALM, relays()).max_allocations_per_user,
        1_000
    );
}

#[test]
fn refresh_error_paths_and_lifetimes() {
    let now = t0();
    let mut s = server(now);
    let nonce = nonce(&mut s, now);
    assert_eq!(
        code(&refresh(&mut s, now, &nonce, Some(600))),
        437,
        "no allocation"
    );
    allocate(&mut s, now);
    let mut bob = Req::new(Method::REFRESH, &nonce);
    bob.user = ("bob", "hunter2");
    assert_eq!(
        code(&exchange(&mut s, now, tuple(), &bob.build(|_| {}))),
        441
    );
    let mut v6 = Req::new(Method::REFRESH, &nonce);
    v6.id = [5; 12];
    let request = v6.build(|b| {
        b.add(&RequestedAddressFamily(AddressFamily::Ipv6)).unwrap();
    });
    assert_eq!(code(&exchange(&mut s, now, tuple(), &request)), 443);
    let t1 = now + Duration::from_secs(100);
    let response = refresh(&mut s, t1, &nonce, Some(100_000));
    let m = Message::parse(&response).unwrap();
    assert_eq!(m.get::<Lifetime>().unwrap().unwrap(), Lifetime(3600));
    assert_eq!(
        s.poll_event(),
        Some(ServerEvent::AllocationRefreshed {
            id: AllocationId(1),
            lifetime: Duration::from_secs(3600)
        })
    );
    assert_eq!(
        s.expires_at(AllocationId(1)),
        Some(t1 + Duration::from_secs(3600))
    );
    // LIFETIME 0 deletes the allocation and frees its address.
    let response = refresh(&mut s, t1, &nonce, Some(0));
    assert_eq!(code(&response), 0);
    assert_eq!(
        s.poll_event(),
        Some(ServerEvent::AllocationDeleted {
            id: AllocationId(1),
            reason: DeleteReason::Deallocated
        })
    );
    assert_eq!((s.allocation_count(), s.free_relay_addresses()), (0, 4));
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn allocations_expire_at_exactly_their_lifetime() {
    let now = t0();
    let mut s = server(now);
    allocate(&mut s, now);
    let end = now + Duration::from_secs(600);
    s.handle_timeout(end - Duration::from_nanos(1));
    assert_eq!(s.allocation_count(), 1);
    s.handle_timeout(end);
    assert_eq!(s.allocation_count(), 0);
    assert_eq!(
        s.poll_event(),
        Some(ServerEvent::AllocationDeleted {
            id: AllocationId(1),
            reason: DeleteReason::Expired
        })
    );
    assert_eq!(s.free_relay_addresses(), 4);
}

#[test]
fn permission_error_paths() {
    let now = t0();
    let mut s = server(now);
    let nonce = nonce(&mut s, now);
    assert_eq!(permit(&mut s, now, &nonce, addr(PEER)), 437);
    allocate(&mut s, now);
    let mut empty = Req::new(Method::CREATE_PERMISSION, &nonce);
    empty.id = [6; 12];
    assert_eq!(
        code(&exchange(&mut s, now, tuple(), &empty.build(|_| {}))),
        400
    );
    for denied in ["127.0.0.1:9", "10.0.0.1:9", "192.168.0.1:9", "224.0.0.1:9"] {
        assert_eq!(permit(&mut s, now, &nonce, addr(denied)), 403, "{denied}");
    }
    assert_eq!(permit(&mut s, now, &nonce, addr("[2001:db8::9]:9")), 443);
    let mut bob = Req::new(Method::CREATE_PERMISSION, &nonce);
    bob.user = ("bob", "hunter2");
    let request = bob.build(|b| {
        b.add(&XorPeerAddress(addr(PEER))).unwrap();
    });
    assert_eq!(code(&exchange(&mut s, now, tuple(), &request)), 441);
    assert_eq!(s.peer_counts(now, AllocationId(1)), Some((0, 0)));
    // The table bound: 508.
    let mut s = server_with(now, |c| c.max_permissions = 1);
    let (nonce, _) = allocate(&mut s, now);
    assert_eq!(permit(&mut s, now, &nonce, addr("203.0.113.1:1")), 0);
    assert_eq!(permit(&mut s, now, &nonce, addr("203.0.113.2:1")), 508);
    assert_eq!(
        permit(&mut s, now, &nonce, addr("203.0.113.1:2")),
        0,
        "a refresh fits"
    );
}

/// A second client's Allocate (bob, from another address), after its 401.
fn second_allocate(s: &mut TurnServer<TestRng>, now: Instant) -> Bytes {
    let other = tuple_from("198.51.100.8:50000");
    let mut req = Req::new(Method::ALLOCATE, "");
    req.nonce = None;
    let challenge = exchange(s, now, other, &req.build(udp));
    let m = Message::parse(&challenge).unwrap();
    let fresh = m.get::<Nonce>().unwrap().unwrap().as_str().to_owned();
    let mut bob = Req::new(Method::ALLOCATE, &fresh);
    bob.user = ("bob", "hunter2");
    exchange(s, now, other, &bob.build(udp))
}

#[test]
fn a_full_server_redirects_to_its_alternate_with_300() {
    use crate::attribute::AlternateServer;
    let now = t0();
    let alternate = addr("192.0.2.99:3478");
    for (limit, relays) in [(1, relays()), (10, vec![addr("192.0.2.1:49152")])] {
        let mut s = server_with(now, |c| {
            c.max_allocations = limit;
            c.relay_addresses = relays;
            c.alternate_server = Some(alternate);
        });
        allocate(&mut s, now);
        let response = second_allocate(&mut s, now);
        assert_eq!(code(&response), 300);
        let m = Message::parse(&response).unwrap();
        assert_eq!(m.get::<AlternateServer>().unwrap().unwrap().0, alternate);
        let stats = s.stats();
        assert_eq!(stats.redirected, 1);
        assert_eq!(
            (stats.refused_total_quota, stats.refused_no_relay_address),
            if limit == 1 { (1, 0) } else { (0, 1) }
        );
        assert_eq!(s.allocation_count(), 1);
    }
}

#[test]
fn loopback_peers_are_allowed_when_configured() {
    let now = t0();
    let mut s = server_with(now, |c| c.peer_filter = PeerFilter::allowing_loopback());
    let (nonce, _) = allocate(&mut s, now);
    assert_eq!(permit(&mut s, now, &nonce, addr("127.0.0.1:9")), 0);
}

#[test]
fn own_relayed_and_listening_addresses_are_denied_unless_allowed() {
    let now = t0();
    let mut s = server_with(now, |c| c.peer_filter.listening = vec![addr(LISTEN)]);
    let (nonce, relayed) = allocate(&mut s, now);
    let other_relay = addr("192.0.2.1:49154");
    assert_ne!(relayed, other_relay);
    // The IP is public: a permission is fine; a channel to a relayed or listening
    // address, and a Send indication there, are not.
    assert_eq!(permit(&mut s, now, &nonce, other_relay), 0);
    assert_eq!(bind(&mut s, now, &nonce, 0x4000, other_relay), 403);
    assert_eq!(bind(&mut s, now, &nonce, 0x4000, addr(LISTEN)), 403);
    assert_eq!(
        s.handle_client_datagram(now, tuple(), &send_indication(other_relay, b"loop")),
        Handled::Dropped(DropReason::PeerDenied)
    );
    let mut s = server_with(now, |c| {
        c.peer_filter.allowed_classes.insert(PeerClass::OwnRelay);
    });
    let (nonce, _) = allocate(&mut s, now);
    assert_eq!(bind(&mut s, now, &nonce, 0x4000, other_relay), 0);
    assert_eq!(
        bind(&mut s, now, &nonce, 0x4001, addr(LISTEN)),
        0,
        "not listed"
    );
}

/// A request signed with shared-secret ("TURN REST API") credentials.
fn rest_request(user: (&'static str, &'static str), nonce: &str) -> Bytes {
    let mut req = Req::new(Method::ALLOCATE, nonce);
    req.user = user;
    req.build(udp)
}

#[test]
fn shared_secret_usernames_authenticate_until_they_expire() {
    // Passwords from Python: base64(hmac.new(secret, username, sha1).digest()).
    const USER: &str = "1700000000:carol";
    const NORTH: &str = "+7vnw9QGdV9hTZ/4Cg+GqOxH//Q=";
    const SOUTH: &str = "SqsTTbsTbsDVW7WTthhuX0MJamo=";
    let now = t0();
    let mut s = server(now);
    let nonce = nonce(&mut s, now);
    // No secret yet: the username is an unknown user.
    assert_eq!(
        code(&exchange(
            &mut s,
            now,
            tuple(),
            &rest_request((USER, NORTH), &nonce)
        )),
        401
    );
    assert_eq!(s.stats().auth.wrong_credentials, 1);
    s.add_shared_secret("north").unwrap();
    s.add_shared_secret("south").unwrap();
    // No Unix time yet: every shared-secret username counts as expired.
    assert_eq!(
        code(&exchange(
            &mut s,
            now,
            tuple(),
            &rest_request((USER, NORTH), &nonce)
        )),
        401
    );
    assert_eq!(s.stats().auth.expired, 1);
    s.handle_unix_time(now, Duration::from_secs(1_699_999_000));
    // A wrong secret's password.
    let forged = rest_request((USER, "Cd/49soE35ICqcJF/bCTn8Z4OyE="), &nonce);
    assert_eq!(code(&exchange(&mut s, now, tuple(), &forged)), 401);
    assert_eq!(s.stats().auth.wrong_credentials, 2);
    // Either live secret (a rotation): the older one, then the newer for another client.
    assert_eq!(
        code(&exchange(
            &mut s,
            now,
            tuple(),
            &rest_request((USER, NORTH), &nonce)
        )),
        0
    );
    assert_eq!(s.allocation_count(), 1);
    let later = now + Duration::from_secs(1000);
    let other = tuple_from("198.51.100.8:50000");
    let response = exchange(&mut s, later, other, &rest_request((USER, SOUTH), "x"));
    let fresh = Message::parse(&response)
        .unwrap()
        .get::<Nonce>()
        .unwrap()
        .unwrap()
        .as_str()
        .to_owned();
    assert_eq!(
        code(&exchange(
            &mut s,
            later,
            other,
            &rest_request((USER, SOUTH), &fresh)
        )),
        0
    );
    // One second past the expiry: refused, and nothing allocated.
    let expired = now + Duration::from_secs(1001);
    let third = tuple_from("198.51.100.9:50000");
    let response = exchange(&mut s, expired, third, &rest_request((USER, SOUTH), "x"));
    let fresh = Message::parse(&response)
        .unwrap()
        .get::<Nonce>()
        .unwrap()
        .unwrap()
        .as_str()
        .to_owned();
    assert_eq!(
        code(&exchange(
            &mut s,
            expired,
            third,
            &rest_request((USER, SOUTH), &fresh)
        )),
        401
    );
    assert_eq!(s.stats().auth.expired, 2);
    assert_eq!(s.allocation_count(), 2);
    assert_eq!(s.stats().auth.stale_nonces, 2);
}

#[test]
fn permissions_relay_both_ways_for_300_s() {
    let now = t0();
    let mut s = server(now);
    let (nonce, relayed) = allocate(&mut s, now);
    let peer = addr(PEER);
    let mut out = [0u8; 256];
    // Before the permission: the peer is dropped, and so is the client's Send indication.
    assert_eq!(
        s.handle_peer_datagram_into(now, relayed, peer, b"early", &mut out),
        Handled::Dropped(DropReason::NoPermission)
    );
    let send = send_indication(peer, b"hello");
    assert_eq!(
        s.handle_client_datagram(now, tuple(), &send),
        Handled::Dropped(DropReason::NoPermission)
    );
    assert_eq!(permit(&mut s, now, &nonce, peer), 0);
    assert_eq!(
        s.poll_event(),
        Some(ServerEvent::PermissionCreated {
            id: AllocationId(1),
            peer: peer.ip()
        })
    );
    assert_eq!(s.poll_timeout(), Some(now + Duration::from_secs(300)));
    assert_eq!(
        s.handle_client_datagram(now, tuple(), &send),
        Handled::Relay(TransmitRef {
            transport: TransportProtocol::Udp,
            source: relayed,
            destination: peer,
            payload: b"hello",
        })
    );
    // A peer on another port of the same IP is covered.
    let t299 = now + Duration::from_secs(299);
    let Handled::Relay(t) =
        s.handle_peer_datagram_into(t299, relayed, addr("203.0.113.5:9999"), b"back", &mut out)
    else {
        panic!()
    };
    assert_eq!((t.source, t.destination), (addr(LISTEN), addr(CLIENT)));
    let m = Message::parse(t.payload).unwrap();
    assert_eq!(
        m.message_type(),
        MessageType::new(Method::DATA, Class::Indication)
    );
    assert_eq!(
        m.get::<XorPeerAddress>().unwrap().unwrap().0,
        addr("203.0.113.5:9999")
    );
    assert_eq!(m.get::<Data>().unwrap().unwrap().0, b"back");
    let t300 = now + Duration::from_secs(300);
    s.handle_timeout(t300);
    assert_eq!(
        s.handle_peer_datagram_into(t300, relayed, peer, b"late", &mut out),
        Handled::Dropped(DropReason::NoPermission)
    );
    assert_eq!(s.peer_counts(t300, AllocationId(1)), Some((0, 0)));
    assert_eq!(s.poll_timeout(), Some(now + Duration::from_secs(600)));
}

fn send_indication(peer: SocketAddr, data: &[u8]) -> Bytes {
    let mut b = MessageBuilder::new_bytes(
        MessageType::new(Method::SEND, Class::Indication),
        [8; 12].into(),
    );
    b.add(&XorPeerAddress(peer)).unwrap();
    b.add(&Data(data)).unwrap();
    b.into_bytes()
}

#[test]
fn channel_bind_error_paths() {
    let now = t0();
    let mut s = server(now);
    let nonce = nonce(&mut s, now);
    let peer = addr(PEER);
    assert_eq!(bind(&mut s, now, &nonce, 0x4000, peer), 437);
    allocate(&mut s, now);
    assert_eq!(bind(&mut s, now, &nonce, 0x3FFF, peer), 400);
    assert_eq!(bind(&mut s, now, &nonce, 0x5000, peer), 400);
    assert_eq!(
        bind(&mut s, now, &nonce, 0x7957, peer),
        400,
        "RFC 5766's range is opt-in"
    );
    assert_eq!(bind(&mut s, now, &nonce, 0x4000, addr("127.0.0.1:1")), 403);
    assert_eq!(
        bind(&mut s, now, &nonce, 0x4000, addr("[2001:db8::2]:1")),
        443
    );
    let mut no_peer = Req::new(Method::CHANNEL_BIND, &nonce);
    no_peer.id = [6; 12];
    let request = no_peer.build(|b| {
        b.add(&ChannelNumber(0x4000)).unwrap();
    });
    assert_eq!(code(&exchange(&mut s, now, tuple(), &request)), 400);
    assert_eq!(bind(&mut s, now, &nonce, 0x4000, peer), 0);
    assert_eq!(bind(&mut s, now, &nonce, 0x4000, peer), 0, "a refresh");
    assert_eq!(
        bind(&mut s, now, &nonce, 0x4000, addr("203.0.113.6:1")),
        400
    );
    assert_eq!(bind(&mut s, now, &nonce, 0x4001, peer), 400);
    let mut s = server_with(now, |c| c.max_channels = 1);
    let (nonce, _) = allocate(&mut s, now);
    assert_eq!(bind(&mut s, now, &nonce, 0x4000, peer), 0);
    assert_eq!(
        bind(&mut s, now, &nonce, 0x4001, addr("203.0.113.6:1")),
        508
    );
}

#[test]
fn the_bandwidth_cap_drops_what_exceeds_it_each_way() {
    let now = t0();
    let mut s = server_with(now, |c| c.max_bandwidth = Some(10));
    let (nonce, relayed) = allocate(&mut s, now);
    let peer = addr(PEER);
    assert_eq!(bind(&mut s, now, &nonce, 0x4000, peer), 0);
    while s.poll_transmit().is_some() {}
    // 10 bytes a second each way: a 6-byte ChannelData payload, a 4-byte Send indication,
    // then nothing more to peers; the peers' 10 bytes still reach the client.
    let channel = b"\x40\x00\x00\x06abcdef";
    assert!(matches!(
        s.handle_client_datagram(now, tuple(), channel),
        Handled::Relay(_)
    ));
    let send = send_indication(peer, b"ghij");
    assert!(matches!(
        s.handle_client_datagram(now, tuple(), &send),
        Handled::Relay(_)
    ));
    assert_eq!(
        s.handle_client_datagram(now, tuple(), &send),
        Handled::Dropped(DropReason::BandwidthExceeded)
    );
    let mut out = [0u8; 64];
    assert!(matches!(
        s.handle_peer_datagram_into(now, relayed, peer, b"0123456789", &mut out),
        Handled::Relay(_)
    ));
    assert_eq!(
        s.handle_peer_datagram_into(now, relayed, peer, b"x", &mut out),
        Handled::Dropped(DropReason::BandwidthExceeded)
    );
    assert_eq!(s.stats().over_bandwidth, 2);
    // A second later the buckets are full again.
    let later = now + Duration::from_secs(1);
    assert!(matches!(
        s.handle_client_datagram(later, tuple(), &send),
        Handled::Relay(_)
    ));
    // Without a cap nothing is counted.
    let mut s = server(now);
    let (nonce, _) = allocate(&mut s, now);
    assert_eq!(bind(&mut s, now, &nonce, 0x4000, peer), 0);
    for _ in 0..100 {
        assert!(matches!(
            s.handle_client_datagram(now, tuple(), channel),
            Handled::Relay(_)
        ));
    }
}

#[test]
fn rfc_5766_channel_numbers_work_when_enabled() {
    let now = t0();
    let mut s = server_with(now, |c| c.rfc5766_channel_numbers = true);
    let (nonce, relayed) = allocate(&mut s, now);
    let peer = addr(PEER);
    assert_eq!(bind(&mut s, now, &nonce, 0x8000, peer), 400);
    assert_eq!(bind(&mut s, now, &nonce, 0x7957, peer), 0);
    // 0x7FFF, which RFC 5766 reserved and coturn's client picks, for another peer.
    let other = SocketAddr::new(peer.ip(), peer.port() + 1);
    assert_eq!(bind(&mut s, now, &nonce, 0x7FFF, other), 0);
    let strict = &mut server(now);
    let (strict_nonce, _) = allocate(strict, now);
    assert_eq!(bind(strict, now, &strict_nonce, 0x7FFF, peer), 400);
    assert_eq!(
        s.handle_client_datagram(now, tuple(), b"\x79\x57\x00\x01z"),
        Handled::Relay(TransmitRef {
            transport: TransportProtocol::Udp,
            source: relayed,
            destination: peer,
            payload: b"z",
        })
    );
    let mut out = [0u8; 16];
    let Handled::Relay(t) = s.handle_peer_datagram_into(now, relayed, peer, b"y", &mut out) else {
        panic!()
    };
    assert_eq!(t.payload, b"\x79\x57\x00\x01y");
}

#[test]
fn channels_relay_both_ways_for_600_s_then_cool_down_for_300_s() {
    let now = t0();
    let mut s = server_with(now, |c| {
        c.default_lifetime = Duration::from_secs(3600);
        c.long_term.nonce_lifetime = Duration::from_secs(3600);
    });
    let (nonce, relayed) = allocate(&mut s, now);
    let peer = addr(PEER);
    assert_eq!(bind(&mut s, now, &nonce, 0x4001, peer), 0);
    let events: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
    assert_eq!(
        events,
        vec![
            ServerEvent::PermissionCreated {
                id: AllocationId(1),
                peer: peer.ip()
            },
            ServerEvent::ChannelBound {
                id: AllocationId(1),
                channel: 0x4001,
                peer
            },
        ]
    );
    let data = b"\x40\x01\x00\x03abc";
    assert_eq!(
        s.handle_client_datagram(now, tuple(), data),
        Handled::Relay(TransmitRef {
            transport: TransportProtocol::Udp,
            source: relayed,
            destination: peer,
            payload: b"abc",
        })
    );
    let mut out = [0u8; 64];
    let Handled::Relay(t) = s.handle_peer_datagram_into(now, relayed, peer, b"xyz", &mut out)
    else {
        panic!()
    };
    assert_eq!(t.payload, b"\x40\x01\x00\x03xyz");
    // Unknown channel, unknown 5-tuple: dropped.
    assert_eq!(
        s.handle_client_datagram(now, tuple(), b"\x40\x02\x00\x00"),
        Handled::Dropped(DropReason::UnknownChannel)
    );
    assert_eq!(
        s.handle_client_datagram(now, tuple_from("198.51.100.99:1"), data),
        Handled::Dropped(DropReason::NoAllocation)
    );
    // Keep the permission alive past 600 s; the channel itself lapses at 600 s.
    for t in [250, 500] {
        assert_eq!(
            permit(&mut s, now + Duration::from_secs(t), &nonce, peer),
            0
        );
    }
    let t600 = now + Duration::from_secs(600);
    s.handle_timeout(t600);
    assert_eq!(
        s.handle_client_datagram(t600, tuple(), data),
        Handled::Dropped(DropReason::UnknownChannel)
    );
    let Handled::Relay(t) = s.handle_peer_datagram_into(t600, relayed, peer, b"xyz", &mut out)
    else {
        panic!()
    };
    assert!(Message::parse(t.payload).is_ok(), "a Data indication again");
    // Cooling down: the number cannot go to another peer until 900 s, the same peer can.
    let other = addr("203.0.113.6:1");
    assert_eq!(bind(&mut s, t600, &nonce, 0x4001, other), 400);
    assert_eq!(
        s.poll_timeout(),
        Some(now + Duration::from_secs(800)),
        "the permission"
    );
    let t900 = now + Duration::from_secs(900);
    assert_eq!(
        permit(&mut s, now + Duration::from_secs(750), &nonce, peer),
        0
    );
    s.handle_timeout(t900);
    assert_eq!(bind(&mut s, t900, &nonce, 0x4001, other), 0);
}

#[test]
fn icmp_errors_reach_the_client_of_a_permitted_peer() {
    use crate::attribute::Icmp;
    use crate::turn::client::{Handled, TurnClient, TurnClientConfig};
    let now = t0();
    let mut s = server(now);
    let config = TurnClientConfig::new(
        addr(CLIENT),
        addr(LISTEN),
        TransportProtocol::Udp,
        "alice",
        "secret",
    );
    let mut c = TurnClient::new(config, TestRng::new(5));
    c.handle_allocate(now).unwrap();
    let pump = |c: &mut TurnClient<TestRng>, s: &mut TurnServer<TestRng>| {
        while let Some(t) = c.poll_transmit() {
            let _ = s.handle_client_datagram(now, tuple(), &t.payload);
            while let Some(r) = s.poll_transmit() {
                let _ = c.handle_datagram(now, r.transport, r.source, r.destination, &r.payload);
            }
        }
    };
    pump(&mut c, &mut s);
    let relayed = c.allocation().unwrap().relayed;
    let unreachable = Icmp {
        icmp_type: 3,
        code: 3,
        error_data: 0,
    };
    let peer = addr(PEER);
    assert_eq!(
        s.handle_peer_icmp(now, relayed, peer, unreachable),
        Err(DropReason::NoPermission)
    );
    c.handle_create_permission(now, peer.ip()).unwrap();
    pump(&mut c, &mut s);
    assert_eq!(s.handle_peer_icmp(now, relayed, peer, unreachable), Ok(()));
    let t = s.poll_transmit().unwrap();
    let m = Message::parse(&t.payload).unwrap();
    assert!(!m.has(AttributeType::DATA));
    assert_eq!(
        c.handle_datagram(now, t.transport, t.source, t.destination, &t.payload),
        Handled::Icmp {
            peer,
            icmp: unreachable
        }
    );
    assert_eq!(
        s.handle_peer_icmp(now, addr("192.0.2.1:1"), peer, unreachable),
        Err(DropReason::NoAllocation)
    );
}

#[test]
fn buffered_data_per_allocation_is_bounded() {
    let now = t0();
    let mut s = server_with(now, |c| c.max_buffered_per_allocation = 100);
    let (nonce, relayed) = allocate(&mut s, now);
    let peer = addr(PEER);
    assert_eq!(bind(&mut s, now, &nonce, 0x4000, peer), 0);
    let data = [7u8; 40];
    assert_eq!(s.handle_peer_datagram(now, relayed, peer, &data), Ok(()));
    assert_eq!(s.handle_peer_datagram(now, relayed, peer, &data), Ok(()));
    assert_eq!(
        s.handle_peer_datagram(now, relayed, peer, &data),
        Err(DropReason::BufferFull)
    );
    let first = s.poll_transmit().unwrap();
    assert_eq!(first.payload.len(), 44);
    assert_eq!(s.handle_peer_datagram(now, relayed, peer, &data), Ok(()));
    assert_eq!(
        s.handle_peer_datagram(now, addr("192.0.2.1:1"), peer, &data),
        Err(DropReason::NoAllocation)
    );
}

#[test]
fn tcp_clients_get_padded_channel_data() {
    let now = t0();
    let mut s = server(now);
    let tcp = FiveTuple {
        transport: TransportProtocol::Tcp,
        ..tuple()
    };
    let mut req = Req::new(Method::ALLOCATE, "");
    req.nonce = None;
    let challenge = exchange(&mut s, now, tcp, &req.build(udp));
    let nonce = Message::parse(&challenge)
        .unwrap()
        .get::<Nonce>()
        .unwrap()
        .unwrap()
        .as_str()
        .to_owned();
    let response = exchange(
        &mut s,
        now,
        tcp,
        &Req::new(Method::ALLOCATE, &nonce).build(udp),
    );
    let relayed = Message::parse(&response)
        .unwrap()
        .get::<XorRelayedAddress>()
        .unwrap()
        .unwrap()
        .0;
    let mut req = Req::new(Method::CHANNEL_BIND, &nonce);
    req.id = [3; 12];
    let request = req.build(|b| {
        b.add(&ChannelNumber(0x4000)).unwrap();
        b.add(&XorPeerAddress(addr(PEER))).unwrap();
    });
    assert_eq!(code(&exchange(&mut s, now, tcp, &request)), 0);
    let mut out = [0u8; 64];
    let Handled::Relay(t) = s.handle_peer_datagram_into(now, relayed, addr(PEER), b"x", &mut out)
    else {
        panic!()
    };
    assert_eq!(t.transport, TransportProtocol::Tcp);
    assert_eq!(t.payload, b"\x40\x00\x00\x01x\0\0\0");
}

#[test]
fn a_closed_tcp_connection_deletes_its_allocation() {
    let now = t0();
    let mut s = server(now);
    allocate(&mut s, now);
    assert!(!s.handle_connection_closed(now, tuple_from("198.51.100.99:1")));
    assert!(s.handle_connection_closed(now, tuple()));
    assert_eq!(
        s.poll_event(),
        Some(ServerEvent::AllocationDeleted {
            id: AllocationId(1),
            reason: DeleteReason::ConnectionClosed
        })
    );
    assert_eq!((s.allocation_count(), s.free_relay_addresses()), (0, 4));
}

#[test]
fn binding_requests_are_answered_without_credentials_or_state() {
    let now = t0();
    let mut s = server(now);
    let mut b = MessageBuilder::new_bytes(MessageType::BINDING_REQUEST, [6; 12].into());
    b.add_fingerprint().unwrap();
    let response = exchange(&mut s, now, tuple(), &b.into_bytes());
    let m = Message::parse(&response).unwrap();
    assert_eq!(m.message_type(), MessageType::BINDING_SUCCESS);
    assert_eq!(
        m.get::<XorMappedAddress>().unwrap().unwrap().0,
        addr(CLIENT)
    );
    assert_eq!((s.allocation_count(), s.poll_timeout()), (0, None));
    let mut s = server_with(now, |c| c.answer_binding = false);
    let mut b = MessageBuilder::new_bytes(MessageType::BINDING_REQUEST, [6; 12].into());
    b.add_fingerprint().unwrap();
    assert_eq!(code(&exchange(&mut s, now, tuple(), &b.into_bytes())), 401);
}

#[test]
fn a_full_transmit_queue_drops_and_counts_answers() {
    let now = t0();
    let mut s = server_with(now, |c| c.max_queued_transmits = 2);
    let mut req = Req::new(Method::ALLOCATE, "");
    req.nonce = None;
    for i in 0..3u8 {
        req.id = [i; 12];
        assert_eq!(
            s.handle_client_datagram(now, tuple(), &req.build(udp)),
            Handled::Answered
        );
    }
    assert_eq!(s.stats().dropped, 1);
    assert!(s.poll_transmit().is_some() && s.poll_transmit().is_some());
    assert!(s.poll_transmit().is_none());
}

#[test]
fn garbage_is_counted_and_dropped() {
    let now = t0();
    let mut s = server(now);
    assert_eq!(
        s.handle_client_datagram(now, tuple(), &[0x16, 0xfe, 0xfd]),
        Handled::Dropped(DropReason::Malformed)
    );
    assert_eq!(
        s.handle_client_datagram(now, tuple(), &[0x80, 0, 0, 0]),
        Handled::NotTurn
    );
    assert_eq!(
        s.handle_client_datagram(now, tuple(), &[0x40, 0, 0, 9]),
        Handled::Dropped(DropReason::Malformed)
    );
    let binding_success =
        MessageBuilder::new_bytes(MessageType::BINDING_SUCCESS, [1; 12].into()).into_bytes();
    assert_eq!(
        s.handle_client_datagram(now, tuple(), &binding_success),
        Handled::Dropped(DropReason::Unexpected)
    );
    assert_eq!(s.stats().dropped, 3);
    assert_eq!(s.allocation_count(), 0);
    assert!(s.poll_transmit().is_none());
}

#[test]
fn a_nonce_goes_stale_after_its_lifetime() {
    let now = t0();
    let mut s = server(now);
    let (nonce, _) = allocate(&mut s, now);
    assert_eq!(
        permit(&mut s, now + Duration::from_secs(599), &nonce, addr(PEER)),
        0
    );
    let stale = refresh(&mut s, now + Duration::from_secs(601), &nonce, Some(600));
    assert_eq!(code(&stale), 438);
    let m = Message::parse(&stale).unwrap();
    assert_ne!(m.get::<Nonce>().unwrap().unwrap().as_str(), nonce);
}

#[test]
fn very_early_timestamps_do_not_panic() {
    let now = very_early();
    let mut s = server(now);
    let (nonce, relayed) = allocate(&mut s, now);
    assert_eq!(bind(&mut s, now, &nonce, 0x4000, addr(PEER)), 0);
    let mut out = [0u8; 64];
    let _ = s.handle_peer_datagram_into(now, relayed, addr(PEER), b"x", &mut out);
    s.handle_timeout(now);
    assert_eq!(s.allocation_count(), 1);
}

#[test]
fn very_late_timestamps_do_not_panic() {
    // Within a second of the last representable instant: the allocation's lifetime, the
    // nonce, permissions and channels all end at the end of time.
    let end = very_late();
    let now = end - Duration::from_millis(900);
    let mut s = server(now);
    let (nonce, relayed) = allocate(&mut s, now);
    assert_eq!(permit(&mut s, now, &nonce, addr(PEER)), 0);
    assert_eq!(bind(&mut s, now, &nonce, 0x4000, addr(PEER)), 0);
    let mut out = [0u8; 64];
    let _ = s.handle_peer_datagram_into(now, relayed, addr(PEER), b"x", &mut out);
    assert_eq!(s.poll_timeout(), Some(end));
    s.handle_timeout(end);
    s.handle_timeout(end);
    assert_eq!(s.allocation_count(), 0, "expired at the end of time");
}

#[test]
fn spurious_timeouts_change_nothing() {
    let now = t0();
    let mut s = server(now);
    let (nonce, _) = allocate(&mut s, now);
    assert_eq!(permit(&mut s, now, &nonce, addr(PEER)), 0);
    while s.poll_event().is_some() {}
    for secs in [0, 1, 299] {
        s.handle_timeout(now + Duration::from_secs(secs));
        assert_eq!(s.poll_event(), None);
        assert!(s.poll_transmit().is_none());
        assert_eq!(s.peer_counts(now, AllocationId(1)), Some((1, 0)));
    }
    // Late is fine too: everything due is done at once.
    s.handle_timeout(now + Duration::from_secs(10_000));
    assert_eq!(s.allocation_count(), 0);
}

#[test]
fn our_client_and_our_server_talk() {
    use crate::turn::client::{Handled, TurnClient, TurnClientConfig, TurnEvent};
    let now = t0();
    let mut s = server(now);
    let config = TurnClientConfig::new(
        addr(CLIENT),
        addr(LISTEN),
        TransportProtocol::Udp,
        "alice",
        "secret",
    );
    let mut c = TurnClient::new(config, TestRng::new(5));
    c.handle_allocate(now).unwrap();
    let pump = |c: &mut TurnClient<TestRng>, s: &mut TurnServer<TestRng>| {
        while let Some(t) = c.poll_transmit() {
            let _ = s.handle_client_datagram(now, tuple(), &t.payload);
            while let Some(r) = s.poll_transmit() {
                assert_eq!(
                    c.handle_datagram(now, r.transport, r.source, r.destination, &r.payload),
                    Handled::Consumed
                );
            }
        }
    };
    pump(&mut c, &mut s);
    let Some(TurnEvent::Allocated(allocation)) = c.poll_event() else {
        panic!()
    };
    assert_eq!(allocation.relayed, addr("192.0.2.1:49152"));
    assert_eq!(allocation.mapped, Some(addr(CLIENT)));
    let peer = addr(PEER);
    c.handle_bind_channel(now, peer).unwrap();
    pump(&mut c, &mut s);
    assert_eq!(
        c.poll_event(),
        Some(TurnEvent::ChannelBound {
            channel: 0x4000,
            peer
        })
    );
    let mut buf = [0u8; 64];
    let sent = c.handle_send_into(now, peer, b"ping", &mut buf).unwrap();
    let super::Handled::Relay(relay) = s.handle_client_datagram(now, tuple(), sent.payload) else {
        panic!()
    };
    assert_eq!((relay.destination, relay.payload), (peer, &b"ping"[..]));
    let mut out = [0u8; 64];
    let super::Handled::Relay(back) =
        s.handle_peer_datagram_into(now, relay.source, peer, b"pong", &mut out)
    else {
        panic!()
    };
    assert_eq!(
        c.handle_datagram(
            now,
            back.transport,
            back.source,
            back.destination,
            back.payload
        ),
        Handled::Data {
            peer,
            data: b"pong",
            channel: Some(0x4000)
        }
    );
    c.handle_close(now);
    pump(&mut c, &mut s);
    assert_eq!(c.poll_event(), Some(TurnEvent::Deallocated));
    assert_eq!(s.allocation_count(), 0);
}

/// Peer data that arrives while a ChannelBind or CreatePermission success for its client
/// waits in the queue leaves after that response, never before (RFC 8656 §9, §12: a client
/// such as libnice drops ChannelData on a channel it has not seen confirmed); with the
/// queue drained, data is relayed at once again.
#[test]
fn responses_leave_before_the_peer_data_that_depends_on_them() {
    let now = t0();
    let mut s = server(now);
    let (nonce, relayed) = allocate(&mut s, now);
    let peer = addr(PEER);
    let mut out = [0u8; 128];
    // CreatePermission answered but not polled, then the peer's first datagram.
    let mut req = Req::new(Method::CREATE_PERMISSION, &nonce);
    req.id = [2; 12];
    let request = req.build(|b| {
        b.add(&XorPeerAddress(peer)).unwrap();
    });
    assert_eq!(
        s.handle_client_datagram(now, tuple(), &request),
        Handled::Answered
    );
    assert_eq!(
        s.handle_peer_datagram_into(now, relayed, peer, b"first", &mut out),
        Handled::Queued
    );
    let response = s.poll_transmit().unwrap();
    assert_eq!(
        Message::parse(&response.payload).unwrap().class(),
        Class::Success
    );
    let data = s.poll_transmit().unwrap();
    let m = Message::parse(&data.payload).unwrap();
    assert_eq!(m.method(), Method::DATA);
    assert_eq!(m.get::<Data>().unwrap().unwrap().0, b"first");
    assert_eq!(
        (data.source, data.destination),
        (tuple().server, tuple().client)
    );
    // ChannelBind answered but not polled: the peer's datagram, as ChannelData on the new
    // channel, waits behind the success response.
    let mut req = Req::new(Method::CHANNEL_BIND, &nonce);
    req.id = [3; 12];
    let request = req.build(|b| {
        b.add(&ChannelNumber(0x4000)).unwrap();
        b.add(&XorPeerAddress(peer)).unwrap();
    });
    assert_eq!(
        s.handle_client_datagram(now, tuple(), &request),
        Handled::Answered
    );
    assert_eq!(
        s.handle_peer_datagram(now, relayed, peer, b"second"),
        Ok(())
    );
    assert_eq!(
        s.handle_peer_datagram_into(now, relayed, peer, b"third", &mut out),
        Handled::Queued
    );
    let response = s.poll_transmit().unwrap();
    let m = Message::parse(&response.payload).unwrap();
    assert_eq!(
        (m.method(), m.class()),
        (Method::CHANNEL_BIND, Class::Success)
    );
    let second = s.poll_transmit().unwrap();
    assert_eq!(&second.payload[..], b"\x40\x00\x00\x06second");
    let third = s.poll_transmit().unwrap();
    assert_eq!(&third.payload[..], b"\x40\x00\x00\x05third");
    assert!(s.poll_transmit().is_none());
    assert_eq!(s.stats().held_behind_responses, 3);
    assert_eq!(s.stats().relayed_to_clients, 3);
    // Nothing queued for the client: relayed at once, borrowed from `out`.
    let Handled::Relay(t) = s.handle_peer_datagram_into(now, relayed, peer, b"4th", &mut out)
    else {
        panic!("relayed at once")
    };
    assert_eq!(t.payload, b"\x40\x00\x00\x034th");
    // Another client's pending response does not hold this client's data back.
    let mut req = Req::new(Method::ALLOCATE, "");
    req.nonce = None;
    assert_eq!(
        s.handle_client_datagram(now, tuple_from("198.51.100.8:1"), &req.build(udp)),
        Handled::Answered
    );
    assert!(matches!(
        s.handle_peer_datagram_into(now, relayed, peer, b"5th", &mut out),
        Handled::Relay(_)
    ));
}

/// RFC 3489 had no TURN methods: a cookie-less request, indication or response of one is
/// dropped without an answer (no classic-form 438), and counted; a cookie-less Binding
/// request is still answered.
#[test]
fn turn_methods_without_the_magic_cookie_are_dropped_unanswered() {
    let now = t0();
    let mut s = server(now);
    let (nonce, _) = allocate(&mut s, now);
    for method in [
        Method::ALLOCATE,
        Method::REFRESH,
        Method::CREATE_PERMISSION,
        Method::CHANNEL_BIND,
    ] {
        let mut b = MessageBuilder::new_rfc3489(
            BytesMut::new(),
            MessageType::new(method, Class::Request),
            [7; 16],
        )
        .unwrap();
        b.add(&XorPeerAddress(addr(PEER))).unwrap();
        b.add(&Nonce::new(&nonce).unwrap()).unwrap();
        assert_eq!(
            s.handle_client_datagram(now, tuple(), &b.into_bytes()),
            Handled::Dropped(DropReason::NoMagicCookie),
            "{method:?}"
        );
    }
    for method in [Method::SEND, Method::DATA] {
        let mut b = MessageBuilder::new_rfc3489(
            BytesMut::new(),
            MessageType::new(method, Class::Indication),
            [7; 16],
        )
        .unwrap();
        b.add(&XorPeerAddress(addr(PEER))).unwrap();
        b.add(&Data(b"x")).unwrap();
        assert_eq!(
            s.handle_client_datagram(now, tuple(), &b.into_bytes()),
            Handled::Dropped(DropReason::NoMagicCookie)
        );
    }
    assert!(s.poll_transmit().is_none(), "nothing answered");
    assert_eq!(s.stats().dropped, 6);
    assert_eq!(s.stats().requests, 2, "the allocation's two requests only");
    let classic_binding =
        MessageBuilder::new_rfc3489(BytesMut::new(), MessageType::BINDING_REQUEST, [8; 16])
            .unwrap()
            .into_bytes();
    assert_eq!(
        s.handle_client_datagram(now, tuple(), &classic_binding),
        Handled::Answered
    );
}

mod tcp_relay;
