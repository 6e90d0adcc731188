//! The client against a scripted server: each test reads the client's requests and answers
//! them by hand, on a virtual clock.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::*;
use crate::attribute::{
    AdditionalAddressFamily, ChannelNumber, DecodeAttribute, Lifetime, Nonce, PasswordAlgorithm,
    PasswordAlgorithms, Realm, RequestedTransport, Username,
};
use crate::attribute::{
    AddressFamily, AlternateServer, Data, DontFragment, ErrorCode, EvenPort, ReservationToken,
    XorMappedAddress, XorPeerAddress, XorRelayedAddress,
};
use crate::builder::MessageBuilder;
use crate::credentials::IntegrityKey;
use crate::header::Class;
use crate::header::{MessageType, Method};
use crate::message::Message;
use crate::test_support::{TestRng, t0, very_early, very_late};
use crate::transmit::TransportProtocol;

const LOCAL: &str = "10.0.0.2:50000";
const SERVER: &str = "192.0.2.10:3478";
const RELAYED: &str = "192.0.2.10:49152";
const MAPPED: &str = "198.51.100.2:61000";
const PEER: &str = "203.0.113.5:7000";
const REALM: &str = "example.org";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn key() -> IntegrityKey {
    IntegrityKey::long_term("alice", REALM, "secret", PasswordAlgorithm::Md5).unwrap()
}

fn config() -> TurnClientConfig {
    TurnClientConfig::new(
        addr(LOCAL),
        addr(SERVER),
        TransportProtocol::Udp,
        "alice",
        "secret",
    )
}

fn next_request(c: &mut TurnClient<TestRng>) -> Bytes {
    let t = c.poll_transmit().expect("a request");
    assert_eq!(
        (t.source, t.destination),
        (addr(LOCAL), c.server()),
        "requests go to the server"
    );
    t.payload
}

/// An answer of `class` to `request`, with attributes from `add`, signed with `key`.
fn answer(
    request: &[u8],
    class: Class,
    key: Option<&IntegrityKey>,
    add: impl FnOnce(&mut MessageBuilder<BytesMut>),
) -> Bytes {
    let request = Message::parse(request).unwrap();
    let mut b = MessageBuilder::response_to(BytesMut::new(), &request, class).unwrap();
    add(&mut b);
    if let Some(key) = key {
        b.add_message_integrity(key).unwrap();
    }
    b.add_fingerprint().unwrap();
    b.into_bytes()
}

fn error(code: u16) -> impl FnOnce(&mut MessageBuilder<BytesMut>) {
    move |b| {
        b.add(&ErrorCode::new(code).unwrap()).unwrap();
    }
}

fn challenge(nonce: &'static str) -> impl FnOnce(&mut MessageBuilder<BytesMut>) {
    move |b| {
        b.add(&ErrorCode::new(401).unwrap()).unwrap();
        b.add(&Realm::new(REALM).unwrap()).unwrap();
        b.add(&Nonce::new(nonce).unwrap()).unwrap();
    }
}

fn deliver(c: &mut TurnClient<TestRng>, now: Instant, bytes: &[u8]) {
    assert_eq!(
        c.handle_datagram(now, c.transport(), addr(SERVER), c.local(), bytes),
        Handled::Consumed
    );
}

fn events(c: &mut TurnClient<TestRng>) -> Vec<TurnEvent> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

/// Runs 401 → signed Allocate → success with a 600 s lifetime.
fn allocated(config: TurnClientConfig, now: Instant) -> TurnClient<TestRng> {
    let mut c = TurnClient::new(config, TestRng::new(1));
    c.handle_allocate(now).unwrap();
    let first = next_request(&mut c);
    deliver(
        &mut c,
        now,
        &answer(&first, Class::Error, None, challenge("n1")),
    );
    let signed = next_request(&mut c);
    let ok = answer(&signed, Class::Success, Some(&key()), |b| {
        b.add(&XorRelayedAddress(addr(RELAYED))).unwrap();
        b.add(&XorMappedAddress(addr(MAPPED))).unwrap();
        b.add(&Lifetime(600)).unwrap();
    });
    deliver(&mut c, now, &ok);
    c
}

fn nonce_of(request: &[u8]) -> String {
    let m = Message::parse(request).unwrap();
    m.get::<Nonce>().unwrap().unwrap().as_str().to_owned()
}

#[test]
fn allocate_answers_the_challenge_and_reports_the_addresses() {
    let now = t0();
    let mut c = TurnClient::new(config(), TestRng::new(1));
    c.handle_allocate(now).unwrap();
    let first = next_request(&mut c);
    let m = Message::parse(&first).unwrap();
    assert_eq!(
        m.message_type(),
        MessageType::new(Method::ALLOCATE, Class::Request)
    );
    assert_eq!(
        m.get::<RequestedTransport>().unwrap().unwrap(),
        RequestedTransport::UDP
    );
    assert!(!m.has_integrity(), "the first request is unauthenticated");
    deliver(
        &mut c,
        now,
        &answer(&first, Class::Error, None, challenge("n1")),
    );

    let signed = next_request(&mut c);
    let m = Message::parse(&signed).unwrap();
    assert_eq!(m.get::<Username>().unwrap().unwrap().as_str(), "alice");
    assert_eq!(m.get::<Realm>().unwrap().unwrap().as_str(), REALM);
    assert_eq!(nonce_of(&signed), "n1");
    m.verify_integrity(&key()).unwrap();
    m.verify_fingerprint().unwrap();

    let ok = answer(&signed, Class::Success, Some(&key()), |b| {
        b.add(&XorRelayedAddress(addr(RELAYED))).unwrap();
        b.add(&XorMappedAddress(addr(MAPPED))).unwrap();
        b.add(&Lifetime(600)).unwrap();
    });
    deliver(&mut c, now, &ok);
    assert_eq!(
        events(&mut c),
        vec![TurnEvent::Allocated(Allocation {
            relayed: addr(RELAYED),
            additional_relayed: None,
            mapped: Some(addr(MAPPED)),
            lifetime: Duration::from_secs(600),
            reservation_token: None,
            additional_family_error: None,
        })]
    );
    // Refreshed 60 s before the 600 s run out.
    assert_eq!(
        c.next_timer(),
        Some((Timer::Allocation, now + Duration::from_secs(540)))
    );
}

#[test]
fn sha256_is_chosen_when_the_server_offers_it() {
    let now = t0();
    let mut c = TurnClient::new(config(), TestRng::new(1));
    c.handle_allocate(now).unwrap();
    let first = next_request(&mut c);
    let offered = [PasswordAlgorithm::Sha256, PasswordAlgorithm::Md5];
    let challenge = answer(&first, Class::Error, None, |b| {
        challenge("n1")(b);
        b.add(&PasswordAlgorithms::new(&offered)).unwrap();
    });
    deliver(&mut c, now, &challenge);
    let signed = next_request(&mut c);
    let m = Message::parse(&signed).unwrap();
    assert_eq!(
        m.get::<PasswordAlgorithm>().unwrap().unwrap(),
        PasswordAlgorithm::Sha256
    );
    let sha = IntegrityKey::long_term("alice", REALM, "secret", PasswordAlgorithm::Sha256).unwrap();
    m.verify_integrity(&sha).unwrap();
}

#[test]
fn stale_nonce_is_replaced_and_the_request_sent_again() {
    let now = t0();
    let mut c = TurnClient::new(config(), TestRng::new(1));
    c.handle_allocate(now).unwrap();
    let first = next_request(&mut c);
    deliver(
        &mut c,
        now,
        &answer(&first, Class::Error, None, challenge("n1")),
    );
    let signed = next_request(&mut c);
    let stale = answer(&signed, Class::Error, None, |b| {
        b.add(&ErrorCode::new(438).unwrap()).unwrap();
        b.add(&Realm::new(REALM).unwrap()).unwrap();
        b.add(&Nonce::new("n2").unwrap()).unwrap();
    });
    deliver(&mut c, now, &stale);
    let again = next_request(&mut c);
    assert_eq!(nonce_of(&again), "n2");
    assert_eq!(c.stats().stale_nonces, 1);
    Message::parse(&again)
        .unwrap()
        .verify_integrity(&key())
        .unwrap();
    assert!(events(&mut c).is_empty());
}

#[test]
fn a_401_to_a_signed_request_fails_with_unauthenticated() {
    let now = t0();
    let mut c = TurnClient::new(config(), TestRng::new(1));
    c.handle_allocate(now).unwrap();
    let first = next_request(&mut c);
    deliver(
        &mut c,
        now,
        &answer(&first, Class::Error, None, challenge("n1")),
    );
    let signed = next_request(&mut c);
    deliver(
        &mut c,
        now,
        &answer(&signed, Class::Error, None, challenge("n1")),
    );
    assert_eq!(
        events(&mut c),
        vec![TurnEvent::AllocationFailed(RequestFailure::Unauthenticated)]
    );
    assert!(c.is_closed());
}

#[test]
fn server_errors_fail_the_allocation_with_their_code() {
    for code in [437, 442, 486, 508] {
        let now = t0();
        let mut c = TurnClient::new(config(), TestRng::new(1));
        c.handle_allocate(now).unwrap();
        let first = next_request(&mut c);
        deliver(
            &mut c,
            now,
            &answer(&first, Class::Error, None, challenge("n1")),
        );
        let signed = next_request(&mut c);
        deliver(
            &mut c,
            now,
            &answer(&signed, Class::Error, Some(&key()), error(code)),
        );
        let [TurnEvent::AllocationFailed(RequestFailure::ErrorResponse { code: got, .. })] =
            events(&mut c)[..]
        else {
            panic!("{code}");
        };
        assert_eq!(got, code);
    }
}

#[test]
fn try_alternate_moves_to_the_alternate_server_and_starts_over() {
    let now = t0();
    let mut c = TurnClient::new(config(), TestRng::new(1));
    c.handle_allocate(now).unwrap();
    let first = next_request(&mut c);
    let alternate = addr("192.0.2.20:3478");
    let redirect = answer(&first, Class::Error, None, |b| {
        b.add(&ErrorCode::new(300).unwrap()).unwrap();
        b.add(&AlternateServer(alternate)).unwrap();
    });
    deliver(&mut c, now, &redirect);
    assert_eq!(
        events(&mut c),
        vec![TurnEvent::Redirected { server: alternate }]
    );
    assert_eq!(c.server(), alternate);
    let again = next_request(&mut c);
    assert!(!Message::parse(&again).unwrap().has_integrity());
    // Answers from the old server are no longer ours.
    assert!(matches!(
        c.handle_datagram(
            now,
            TransportProtocol::Udp,
            addr(SERVER),
            addr(LOCAL),
            &again
        ),
        Handled::NotTurn(_)
    ));
}

#[test]
fn redirects_are_bounded() {
    let now = t0();
    let mut config = config();
    config.max_redirects = 1;
    let mut c = TurnClient::new(config, TestRng::new(1));
    c.handle_allocate(now).unwrap();
    for hop in 0..2 {
        let request = next_request(&mut c);
        let from = c.server();
        let redirect = answer(&request, Class::Error, None, |b| {
            b.add(&ErrorCode::new(300).unwrap()).unwrap();
            b.add(&AlternateServer(addr(&format!(
                "192.0.2.{}:3478",
                30 + hop
            ))))
            .unwrap();
        });
        assert_eq!(
            c.handle_datagram(now, c.transport(), from, c.local(), &redirect),
            Handled::Consumed
        );
    }
    assert_eq!(
        events(&mut c).last(),
        Some(&TurnEvent::AllocationFailed(
            RequestFailure::TooManyRedirects
        ))
    );
}

#[test]
fn allocate_asks_for_what_the_config_says() {
    let now = t0();
    let mut config = config();
    config.lifetime = Some(Duration::from_secs(1200));
    config.address_family = AllocationFamily::Both;
    config.dont_fragment = true;
    config.even_port = Some(EvenPort { reserve: true });
    let mut c = TurnClient::new(config, TestRng::new(1));
    c.handle_allocate(now).unwrap();
    let request = next_request(&mut c);
    let m = Message::parse(&request).unwrap();
    assert_eq!(m.get::<Lifetime>().unwrap().unwrap(), Lifetime(1200));
    assert_eq!(
        m.get::<AdditionalAddressFamily>().unwrap().unwrap(),
        AdditionalAddressFamily(AddressFamily::Ipv6)
    );
    assert!(m.has(DontFragment::TYPE));
    assert_eq!(
        m.get::<EvenPort>().unwrap().unwrap(),
        EvenPort { reserve: true }
    );
    // A dual-stack answer with a reservation token.
    deliver(
        &mut c,
        now,
        &answer(&request, Class::Error, None, challenge("n1")),
    );
    let signed = next_request(&mut c);
    let v6 = addr("[2001:db8::10]:49154");
    let ok = answer(&signed, Class::Success, Some(&key()), |b| {
        b.add(&XorRelayedAddress(addr(RELAYED))).unwrap();
        b.add(&XorRelayedAddress(v6)).unwrap();
        b.add(&Lifetime(1200)).unwrap();
        b.add(&ReservationToken([7; 8])).unwrap();
    });
    deliver(&mut c, now, &ok);
    let allocation = *c.allocation().unwrap();
    assert_eq!(allocation.additional_relayed, Some(v6));
    assert_eq!(allocation.reservation_token, Some(ReservationToken([7; 8])));
    // Both families can now be given permissions.
    c.handle_create_permission(now, "2001:db8::99".parse().unwrap())
        .unwrap();
}

#[test]
fn a_tcp_allocation_asks_for_tcp_without_the_udp_only_attributes() {
    // RFC 6062 §4.1: REQUESTED-TRANSPORT TCP, and no DONT-FRAGMENT, EVEN-PORT or
    // RESERVATION-TOKEN, whatever else the configuration says.
    let now = t0();
    let mut config = config();
    config.transport = TransportProtocol::Tcp;
    config.relay_transport = RelayTransport::Tcp;
    config.dont_fragment = true;
    config.even_port = Some(EvenPort { reserve: true });
    config.reservation_token = Some(ReservationToken([1; 8]));
    let mut c = TurnClient::new(config, TestRng::new(1));
    c.handle_allocate(now).unwrap();
    let request = next_request(&mut c);
    let m = Message::parse(&request).unwrap();
    assert_eq!(
        m.get::<RequestedTransport>().unwrap().unwrap(),
        RequestedTransport::TCP
    );
    assert!(!m.has(DontFragment::TYPE));
    assert!(!m.has(EvenPort::TYPE));
    assert!(!m.has(ReservationToken::TYPE));
    // A ConnectionAttempt without CONNECTION-ID is dropped, not reported.
    let message_type = MessageType::new(Method::CONNECTION_ATTEMPT, Class::Indication);
    let mut b = MessageBuilder::new_bytes(message_type, [5; 12].into());
    b.add(&XorPeerAddress(addr(PEER))).unwrap();
    let no_id = b.into_bytes();
    assert_eq!(
        c.handle_datagram(
            now,
            TransportProtocol::Tcp,
            addr(SERVER),
            addr(LOCAL),
            &no_id
        ),
        Handled::Dropped(DropReason::MalformedIndication)
    );
    assert_eq!(
        c.handle_connect(now, addr(PEER)),
        Err(TurnClientError::NotAllocated)
    );
    assert!(events(&mut c).is_empty());
}

#[test]
fn a_420_for_dont_fragment_retries_without_it() {
    let now = t0();
    let mut config = config();
    config.dont_fragment = true;
    let mut c = TurnClient::new(config, TestRng::new(1));
    c.handle_allocate(now).unwrap();
    let first = next_request(&mut c);
    deliver(
        &mut c,
        now,
        &answer(&first, Class::Error, None, challenge("n1")),
    );
    let signed = next_request(&mut c);
    assert!(Message::parse(&signed).unwrap().has(DontFragment::TYPE));
    let refused = answer(&signed, Class::Error, Some(&key()), |b| {
        b.add(&ErrorCode::new(420).unwrap()).unwrap();
        b.add(&crate::attribute::UnknownAttributes::new(&[
            DontFragment::TYPE,
        ]))
        .unwrap();
    });
    deliver(&mut c, now, &refused);
    let again = next_request(&mut c);
    let m = Message::parse(&again).unwrap();
    assert!(!m.has(DontFragment::TYPE));
    m.verify_integrity(&key()).unwrap();
    assert!(events(&mut c).is_empty());
}

#[test]
fn coturn_dual_allocation_sends_and_reads_the_draft_numbers() {
    let now = t0();
    let mut config = config();
    config.address_family = AllocationFamily::Both;
    config.coturn_dual_allocation = true;
    let mut c = TurnClient::new(config, TestRng::new(1));
    c.handle_allocate(now).unwrap();
    let request = next_request(&mut c);
    let m = Message::parse(&request).unwrap();
    assert!(m.has(AdditionalAddressFamily::TYPE));
    assert_eq!(
        m.raw(crate::turn::DRAFT_ADDITIONAL_ADDRESS_FAMILY)
            .unwrap()
            .value,
        [2, 0, 0, 0]
    );
    deliver(
        &mut c,
        now,
        &answer(&request, Class::Error, None, challenge("n1")),
    );
    let signed = next_request(&mut c);
    let ok = answer(&signed, Class::Success, Some(&key()), |b| {
        b.add(&XorRelayedAddress(addr(RELAYED))).unwrap();
        // ADDRESS-ERROR-CODE 508 for IPv6, as coturn numbers it.
        b.add(&crate::attribute::RawAttribute {
            attribute_type: crate::turn::DRAFT_ADDRESS_ERROR_CODE,
            value: &[2, 0, 5, 8],
        })
        .unwrap();
    });
    deliver(&mut c, now, &ok);
    assert_eq!(c.allocation().unwrap().additional_family_error, Some(508));
}

#[test]
fn reservation_token_replaces_even_port() {
    let now = t0();
    let mut config = config();
    config.even_port = Some(EvenPort { reserve: false });
    config.reservation_token = Some(ReservationToken([9; 8]));
    let mut c = TurnClient::new(config, TestRng::new(1));
    c.handle_allocate(now).unwrap();
    let m_bytes = next_request(&mut c);
    let m = Message::parse(&m_bytes).unwrap();
    assert_eq!(
        m.get::<ReservationToken>().unwrap().unwrap(),
        ReservationToken([9; 8])
    );
    assert!(!m.has(EvenPort::TYPE));
}

#[test]
fn refresh_runs_at_540_s_and_extends_the_allocation() {
    let now = t0();
    let mut c = allocated(config(), now);
    events(&mut c);
    let t1 = now + Duration::from_secs(540);
    c.handle_timeout(t1 - Duration::from_millis(1));
    assert!(c.poll_transmit().is_none(), "not before its time");
    c.handle_timeout(t1);
    let refresh = next_request(&mut c);
    let m = Message::parse(&refresh).unwrap();
    assert_eq!(m.method(), Method::REFRESH);
    assert_eq!(m.get::<Lifetime>().unwrap().unwrap(), Lifetime(600));
    assert_eq!(nonce_of(&refresh), "n1");
    let ok = answer(&refresh, Class::Success, Some(&key()), |b| {
        b.add(&Lifetime(600)).unwrap();
    });
    deliver(&mut c, t1, &ok);
    assert_eq!(
        events(&mut c),
        vec![TurnEvent::Refreshed {
            lifetime: Duration::from_secs(600)
        }]
    );
    assert_eq!(c.poll_timeout(), Some(t1 + Duration::from_secs(540)));
}

#[test]
fn an_unanswered_refresh_expires_the_allocation_at_600_s() {
    let now = t0();
    let mut c = allocated(config(), now);
    events(&mut c);
    let mut t = now;
    while let Some(deadline) = c.poll_timeout() {
        t = deadline;
        c.handle_timeout(t);
        while c.poll_transmit().is_some() {}
        if c.is_closed() {
            break;
        }
    }
    assert_eq!(t, now + Duration::from_secs(600));
    assert_eq!(events(&mut c), vec![TurnEvent::Expired]);
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn a_437_to_a_refresh_means_the_allocation_is_gone() {
    let now = t0();
    let mut c = allocated(config(), now);
    events(&mut c);
    let t1 = now + Duration::from_secs(540);
    c.handle_timeout(t1);
    let refresh = next_request(&mut c);
    deliver(
        &mut c,
        t1,
        &answer(&refresh, Class::Error, Some(&key()), error(437)),
    );
    assert_eq!(events(&mut c), vec![TurnEvent::Expired]);
}

#[test]
fn permissions_are_created_and_refreshed_at_240_s() {
    let now = t0();
    let mut c = allocated(config(), now);
    events(&mut c);
    let peer: IpAddr = "203.0.113.5".parse().unwrap();
    c.handle_create_permission(now, peer).unwrap();
    let request = next_request(&mut c);
    let m = Message::parse(&request).unwrap();
    assert_eq!(m.method(), Method::CREATE_PERMISSION);
    assert_eq!(
        m.get::<XorPeerAddress>().unwrap().unwrap().0.ip(),
        peer,
        "the peer's IP; the port does not matter"
    );
    deliver(
        &mut c,
        now,
        &answer(&request, Class::Success, Some(&key()), |_| {}),
    );
    assert_eq!(events(&mut c), vec![TurnEvent::PermissionCreated { peer }]);
    assert!(c.has_permission(peer));
    assert_eq!(
        c.next_timer(),
        Some((Timer::Permission, now + Duration::from_secs(240)))
    );
    c.handle_timeout(now + Duration::from_secs(240));
    let refresh = next_request(&mut c);
    assert_eq!(
        Message::parse(&refresh).unwrap().method(),
        Method::CREATE_PERMISSION
    );
    deliver(
        &mut c,
        now + Duration::from_secs(240),
        &answer(&refresh, Class::Success, Some(&key()), |_| {}),
    );
    assert!(
        events(&mut c).is_empty(),
        "a refresh is not a new permission"
    );
    assert_eq!(c.poll_timeout(), Some(now + Duration::from_secs(480)));
}

#[test]
fn a_forbidden_peer_fails_its_permission() {
    let now = t0();
    let mut c = allocated(config(), now);
    events(&mut c);
    let peer: IpAddr = "203.0.113.5".parse().unwrap();
    c.handle_create_permission(now, peer).unwrap();
    let request = next_request(&mut c);
    deliver(
        &mut c,
        now,
        &answer(&request, Class::Error, Some(&key()), error(403)),
    );
    let [
        TurnEvent::PermissionFailed {
            failure: RequestFailure::ErrorResponse { code: 403, .. },
            ..
        },
    ] = events(&mut c)[..]
    else {
        panic!()
    };
    assert_eq!(
        c.handle_send(now, addr(PEER), b"x"),
        Err(SendError::NoPermission(peer))
    );
}

#[test]
fn data_goes_as_indications_then_as_channel_data_once_bound() {
    let now = t0();
    let mut c = allocated(config(), now);
    events(&mut c);
    let peer = addr(PEER);
    assert_eq!(
        c.handle_send(now, peer, b"x"),
        Err(SendError::NoPermission(peer.ip()))
    );
    c.handle_create_permission(now, peer.ip()).unwrap();
    let request = next_request(&mut c);
    deliver(
        &mut c,
        now,
        &answer(&request, Class::Success, Some(&key()), |_| {}),
    );
    events(&mut c);

    let mut buf = [0u8; 128];
    let sent = c.handle_send_into(now, peer, b"hello", &mut buf).unwrap();
    assert_eq!(sent.destination, addr(SERVER));
    let m = Message::parse(sent.payload).unwrap();
    assert_eq!(
        m.message_type(),
        MessageType::new(Method::SEND, Class::Indication)
    );
    assert_eq!(m.get::<XorPeerAddress>().unwrap().unwrap().0, peer);
    assert_eq!(m.get::<Data>().unwrap().unwrap().0, b"hello");

    let channel = c.handle_bind_channel(now, peer).unwrap();
    assert_eq!(channel, 0x4000);
    let bind = next_request(&mut c);
    let m = Message::parse(&bind).unwrap();
    assert_eq!(
        m.get::<ChannelNumber>().unwrap().unwrap(),
        ChannelNumber(0x4000)
    );
    // Until the server confirms, data still goes as an indication.
    let sent = c.handle_send_into(now, peer, b"hello", &mut buf).unwrap();
    assert!(Message::parse(sent.payload).is_ok());
    deliver(
        &mut c,
        now,
        &answer(&bind, Class::Success, Some(&key()), |_| {}),
    );
    assert_eq!(
        events(&mut c),
        vec![TurnEvent::ChannelBound {
            channel: 0x4000,
            peer
        }]
    );
    let sent = c.handle_send_into(now, peer, b"hello", &mut buf).unwrap();
    assert_eq!(sent.payload, b"\x40\x00\x00\x05hello");
    assert_eq!(c.channel(peer), Some(0x4000));
    assert_eq!(c.stats().sent_channel_data, 1);
    assert_eq!(c.stats().sent_indications, 2);
    // The queued form sends the same bytes.
    c.handle_send(now, peer, b"hello").unwrap();
    assert_eq!(
        &c.poll_transmit().unwrap().payload[..],
        b"\x40\x00\x00\x05hello"
    );
}

#[test]
fn channels_are_refreshed_at_540_s_and_their_permission_at_240_s() {
    let now = t0();
    let mut c = allocated(config(), now);
    events(&mut c);
    let peer = addr(PEER);
    c.handle_bind_channel(now, peer).unwrap();
    let bind = next_request(&mut c);
    deliver(
        &mut c,
        now,
        &answer(&bind, Class::Success, Some(&key()), |_| {}),
    );
    events(&mut c);
    // The permission the binding installed needs its own refresh, at 240 s.
    assert_eq!(c.poll_timeout(), Some(now + Duration::from_secs(240)));
    let mut methods = Vec::new();
    while let Some(t) = c.poll_timeout() {
        if t > now + Duration::from_secs(540) {
            break;
        }
        c.handle_timeout(t);
        while let Some(request) = c.poll_transmit() {
            let m = Message::parse(&request.payload).unwrap();
            methods.push((t.duration_since(now).as_secs(), m.method()));
            let ok = answer(&request.payload, Class::Success, Some(&key()), |b| {
                if m.method() == Method::REFRESH {
                    b.add(&Lifetime(600)).unwrap();
                }
            });
            deliver(&mut c, t, &ok);
        }
    }
    assert_eq!(
        methods,
        vec![
            (240, Method::CREATE_PERMISSION),
            (480, Method::CREATE_PERMISSION),
            (540, Method::REFRESH),
            (540, Method::CHANNEL_BIND),
        ]
    );
}

#[test]
fn a_forgotten_peer_is_no_longer_refreshed() {
    let now = t0();
    let mut c = allocated(config(), now);
    events(&mut c);
    let peer = addr(PEER);
    c.handle_bind_channel(now, peer).unwrap();
    let bind = next_request(&mut c);
    deliver(
        &mut c,
        now,
        &answer(&bind, Class::Success, Some(&key()), |_| {}),
    );
    events(&mut c);
    assert!(c.handle_forget_peer(now, peer.ip()));
    assert!(!c.handle_forget_peer(now, peer.ip()));
    assert_eq!(c.channel(peer), None);
    assert_eq!(
        c.handle_send(now, peer, b"x"),
        Err(SendError::NoPermission(peer.ip()))
    );
    // Only the allocation's own refresh is left.
    assert_eq!(
        c.next_timer(),
        Some((Timer::Allocation, now + Duration::from_secs(540)))
    );
    // An answer to a request in flight for it changes nothing.
    c.handle_create_permission(now, peer.ip()).unwrap();
    let request = next_request(&mut c);
    c.handle_forget_peer(now, peer.ip());
    deliver(
        &mut c,
        now,
        &answer(&request, Class::Success, Some(&key()), |_| {}),
    );
    assert!(events(&mut c).is_empty());
    assert!(!c.has_permission(peer.ip()));
}

#[test]
fn over_tcp_channel_data_is_padded() {
    let now = t0();
    let mut config = config();
    config.transport = TransportProtocol::Tcp;
    let mut c = allocated(config, now);
    let peer = addr(PEER);
    c.handle_bind_channel(now, peer).unwrap();
    let bind = next_request(&mut c);
    deliver(
        &mut c,
        now,
        &answer(&bind, Class::Success, Some(&key()), |_| {}),
    );
    let mut buf = [0u8; 64];
    let sent = c.handle_send_into(now, peer, b"hello", &mut buf).unwrap();
    assert_eq!(sent.transport, TransportProtocol::Tcp);
    assert_eq!(sent.payload, b"\x40\x00\x00\x05hello\0\0\0");
}

#[test]
fn a_lost_tcp_connection_ends_the_allocation() {
    let now = t0();
    let mut config = config();
    config.transport = TransportProtocol::Tcp;
    let mut c = allocated(config, now);
    events(&mut c);
    c.handle_create_permission(now, addr(PEER).ip()).unwrap();
    c.handle_transport_error(now, TransportFailure::ConnectionLost);
    let events = events(&mut c);
    assert_eq!(events.last(), Some(&TurnEvent::Expired), "{events:?}");
    assert!(c.is_closed());
    assert_eq!(c.poll_timeout(), None);
    // Over UDP an ICMP error fails the requests in flight, not the allocation.
    let mut c = allocated(self::config(), now);
    let _ = c.poll_event();
    c.handle_create_permission(now, addr(PEER).ip()).unwrap();
    c.handle_transport_error(now, TransportFailure::Unreachable);
    assert!(matches!(
        c.poll_event(),
        Some(TurnEvent::PermissionFailed {
            failure: RequestFailure::Transport(TransportFailure::Unreachable),
            ..
        })
    ));
    assert!(c.allocation().is_some());
}

#[test]
fn incoming_data_indications_and_channel_data_are_handed_back_borrowed() {
    let now = t0();
    let mut c = allocated(config(), now);
    let peer = addr(PEER);
    let mut b = MessageBuilder::new_bytes(
        MessageType::new(Method::DATA, Class::Indication),
        [5; 12].into(),
    );
    b.add(&XorPeerAddress(peer)).unwrap();
    b.add(&Data(b"from peer")).unwrap();
    let indication = b.into_bytes();
    assert_eq!(
        c.handle_datagram(
            now,
            TransportProtocol::Udp,
            addr(SERVER),
            addr(LOCAL),
            &indication
        ),
        Handled::Data {
            peer,
            data: b"from peer",
            channel: None
        }
    );
    let channel_data = b"\x40\x00\x00\x02hi";
    assert_eq!(
        c.handle_datagram(
            now,
            TransportProtocol::Udp,
            addr(SERVER),
            addr(LOCAL),
            channel_data
        ),
        Handled::Dropped(DropReason::UnknownChannel(0x4000))
    );
    c.handle_bind_channel(now, peer).unwrap();
    let bind = next_request(&mut c);
    deliver(
        &mut c,
        now,
        &answer(&bind, Class::Success, Some(&key()), |_| {}),
    );
    assert_eq!(
        c.handle_datagram(
            now,
            TransportProtocol::Udp,
            addr(SERVER),
            addr(LOCAL),
            channel_data
        ),
        Handled::Data {
            peer,
            data: b"hi",
            channel: Some(0x4000)
        }
    );
    // Not from the server, or not TURN: the caller's.
    assert_eq!(
        c.handle_datagram(now, c.transport(), peer, c.local(), channel_data),
        Handled::NotTurn(channel_data)
    );
    let dtls = [22u8, 254, 253, 0];
    assert_eq!(
        c.handle_datagram(
            now,
            TransportProtocol::Udp,
            addr(SERVER),
            addr(LOCAL),
            &dtls
        ),
        Handled::NotTurn(&dtls)
    );
    // A Binding answer from the same server, to a query someone else sent: not ours either.
    let mut b = MessageBuilder::new_bytes(MessageType::BINDING_SUCCESS, [6; 12].into());
    b.add(&XorMappedAddress(addr(MAPPED))).unwrap();
    b.add_fingerprint().unwrap();
    let binding = b.into_bytes();
    assert_eq!(
        c.handle_datagram(
            now,
            TransportProtocol::Udp,
            addr(SERVER),
            addr(LOCAL),
            &binding
        ),
        Handled::NotTurn(&binding)
    );
    let request =
        MessageBuilder::new_bytes(MessageType::BINDING_REQUEST, [7; 12].into()).into_bytes();
    assert_eq!(
        c.handle_datagram(
            now,
            TransportProtocol::Udp,
            addr(SERVER),
            addr(LOCAL),
            &request
        ),
        Handled::NotTurn(&request)
    );
    assert_eq!(c.stats().received_data, 2);
}

#[test]
fn a_success_with_a_wrong_integrity_fails_the_request() {
    let now = t0();
    let mut c = TurnClient::new(config(), TestRng::new(1));
    c.handle_allocate(now).unwrap();
    let first = next_request(&mut c);
    deliver(
        &mut c,
        now,
        &answer(&first, Class::Error, None, challenge("n1")),
    );
    let signed = next_request(&mut c);
    let forged = IntegrityKey::new(b"not the key");
    let ok = answer(&signed, Class::Success, Some(&forged), |b| {
        b.add(&XorRelayedAddress(addr(RELAYED))).unwrap();
    });
    deliver(&mut c, now, &ok);
    assert_eq!(
        events(&mut c),
        vec![TurnEvent::AllocationFailed(
            RequestFailure::IntegrityMismatch
        )]
    );
}

#[test]
fn close_deallocates_with_lifetime_zero() {
    let now = t0();
    let mut c = allocated(config(), now);
    events(&mut c);
    c.handle_close(now);
    let refresh = next_request(&mut c);
    let m = Message::parse(&refresh).unwrap();
    assert_eq!(m.method(), Method::REFRESH);
    assert_eq!(m.get::<Lifetime>().unwrap().unwrap(), Lifetime(0));
    deliver(
        &mut c,
        now,
        &answer(&refresh, Class::Success, Some(&key()), |_| {}),
    );
    assert_eq!(events(&mut c), vec![TurnEvent::Deallocated]);
    assert!(c.is_closed());
    assert_eq!(
        c.handle_send(now, addr(PEER), b"x"),
        Err(SendError::NotAllocated)
    );
}

#[test]
fn commands_before_the_allocation_are_refused() {
    let now = t0();
    let mut c = TurnClient::new(config(), TestRng::new(1));
    assert_eq!(
        c.handle_create_permission(now, addr(PEER).ip()),
        Err(TurnClientError::NotAllocated)
    );
    c.handle_allocate(now).unwrap();
    assert_eq!(c.handle_allocate(now), Err(TurnClientError::AlreadyStarted));
    let mut c = allocated(config(), now);
    assert_eq!(
        c.handle_create_permission(now, "2001:db8::1".parse().unwrap()),
        Err(TurnClientError::PeerFamilyMismatch(AddressFamily::Ipv6))
    );
}

#[test]
fn an_unanswered_allocate_times_out_over_udp_after_39_5_s() {
    let now = t0();
    let mut c = TurnClient::new(config(), TestRng::new(1));
    c.handle_allocate(now).unwrap();
    let mut sends = 0;
    while let Some(t) = c.poll_timeout() {
        while c.poll_transmit().is_some() {
            sends += 1;
        }
        c.handle_timeout(t);
    }
    assert_eq!(sends, 7);
    assert_eq!(
        events(&mut c),
        vec![TurnEvent::AllocationFailed(RequestFailure::Timeout)]
    );
}

#[test]
fn very_early_timestamps_do_not_panic() {
    let now = very_early();
    let mut c = allocated(config(), now);
    c.handle_create_permission(now, addr(PEER).ip()).unwrap();
    c.handle_timeout(now);
    c.handle_close(now);
    assert!(c.poll_timeout().is_some());
}

#[test]
fn very_late_timestamps_do_not_panic() {
    let end = very_late();
    let now = end - Duration::from_millis(900);
    let mut c = allocated(config(), now);
    c.handle_create_permission(now, addr(PEER).ip()).unwrap();
    let mut steps = 0;
    while let Some(at) = c.poll_timeout() {
        assert!(at >= now && at <= end);
        c.handle_timeout(at);
        while c.poll_transmit().is_some() {}
        while c.poll_event().is_some() {}
        steps += 1;
        if at == end {
            break;
        }
        assert!(steps < 100);
    }
    c.handle_timeout(end);
    c.handle_close(end);
}

#[test]
fn spurious_timeouts_change_nothing() {
    let now = t0();
    let mut c = allocated(config(), now);
    events(&mut c);
    for s in [0, 1, 100, 239, 539] {
        c.handle_timeout(now + Duration::from_secs(s));
        assert!(c.poll_transmit().is_none(), "at {s} s");
        assert!(c.poll_event().is_none());
    }
    assert_eq!(c.poll_timeout(), Some(now + Duration::from_secs(540)));
}

/// Nothing goes to a peer before its permission (or channel) is confirmed (RFC 8656 §9: the
/// server drops it): data sent while the request is in flight is held, in order and
/// bounded, and leaves right after the success response — as a Send indication after
/// CreatePermission, as ChannelData after ChannelBind; it is dropped and counted when the
/// request fails.
#[test]
fn data_waits_for_its_permission_and_leaves_right_after_the_success() {
    let now = t0();
    let mut c = allocated(config(), now);
    events(&mut c);
    let peer = addr(PEER);
    c.handle_create_permission(now, peer.ip()).unwrap();
    let request = next_request(&mut c);
    c.handle_send(now, peer, b"first check").unwrap();
    c.handle_send(now, peer, b"second").unwrap();
    let mut buf = [0u8; 128];
    assert_eq!(
        c.handle_send_into(now, peer, b"x", &mut buf),
        Err(SendError::PermissionPending(peer.ip()))
    );
    assert_eq!(c.poll_transmit(), None, "nothing before the permission");
    let later = now + Duration::from_millis(30);
    deliver(
        &mut c,
        later,
        &answer(&request, Class::Success, Some(&key()), |_| {}),
    );
    for expected in [&b"first check"[..], b"second"] {
        let t = c
            .poll_transmit()
            .expect("held data, right after the success");
        assert_eq!((t.source, t.destination), (addr(LOCAL), addr(SERVER)));
        let m = Message::parse(&t.payload).unwrap();
        assert_eq!(m.method(), Method::SEND);
        assert_eq!(m.get::<XorPeerAddress>().unwrap().unwrap().0, peer);
        assert_eq!(m.get::<Data>().unwrap().unwrap().0, expected);
    }
    assert_eq!(c.poll_transmit(), None);
    assert_eq!((c.stats().held, c.stats().sent_indications), (2, 2));

    // A channel asked for without a permission: held until the binding, then ChannelData.
    let other = addr("203.0.113.6:9");
    let channel = c.handle_bind_channel(later, other).unwrap();
    let bind = next_request(&mut c);
    c.handle_send(later, other, b"via channel").unwrap();
    assert_eq!(c.poll_transmit(), None);
    deliver(
        &mut c,
        later,
        &answer(&bind, Class::Success, Some(&key()), |_| {}),
    );
    let t = c.poll_transmit().unwrap();
    let mut expected = channel.to_be_bytes().to_vec();
    expected.extend_from_slice(b"\x00\x0bvia channel");
    assert_eq!(&t.payload[..], &expected[..]);

    // A refused permission drops what waited for it.
    let refused = addr("203.0.113.7:1");
    c.handle_create_permission(later, refused.ip()).unwrap();
    let request = next_request(&mut c);
    c.handle_send(later, refused, b"lost").unwrap();
    deliver(
        &mut c,
        later,
        &answer(&request, Class::Error, Some(&key()), error(403)),
    );
    assert_eq!(c.poll_transmit(), None);
    assert_eq!(c.stats().dropped_held, 1);

    // At most 64 datagrams wait.
    let busy = addr("203.0.113.8:1");
    c.handle_create_permission(later, busy.ip()).unwrap();
    next_request(&mut c);
    for _ in 0..64 {
        c.handle_send(later, busy, b"x").unwrap();
    }
    assert_eq!(
        c.handle_send(later, busy, b"x"),
        Err(SendError::QueueFull(64))
    );
    // Closing drops them, counted.
    c.handle_close(later);
    assert_eq!(c.stats().dropped_held, 65);
}
