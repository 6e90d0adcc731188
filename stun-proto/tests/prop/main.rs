//! Property tests for the STUN codec: every attribute round-trips through the builder and the
//! parser; arbitrary bytes never panic the parser; a protected message with any one bit
//! flipped fails its integrity or fingerprint check.

use std::net::{IpAddr, SocketAddr};

use proptest::prelude::*;
use stun_proto::attribute::*;
use stun_proto::{
    Class, EncodeBuffer, IntegrityKey, Message, MessageBuilder, MessageType, Method, TransactionId,
};

fn socket_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        any::<([u8; 4], u16)>().prop_map(|(ip, port)| SocketAddr::new(IpAddr::from(ip), port)),
        any::<([u8; 16], u16)>().prop_map(|(ip, port)| SocketAddr::new(IpAddr::from(ip), port)),
    ]
}

fn text(max_chars: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 0..=max_chars).prop_map(|c| c.into_iter().collect())
}

fn family() -> impl Strategy<Value = AddressFamily> {
    prop_oneof![Just(AddressFamily::Ipv4), Just(AddressFamily::Ipv6)]
}

fn message_type() -> impl Strategy<Value = MessageType> {
    let class = prop_oneof![
        Just(Class::Request),
        Just(Class::Indication),
        Just(Class::Success),
        Just(Class::Error)
    ];
    (0..=0x0FFFu16, class).prop_map(|(m, c)| MessageType::new(Method::new(m).unwrap(), c))
}

/// Builds a message holding `attr`, parses it, and decodes the attribute back.
fn round_trip<A>(attr: &A, check: impl FnOnce(A))
where
    A: EncodeAttribute + for<'a> DecodeAttribute<'a>,
{
    let tid = TransactionId::from([0x42; 12]);
    let mut buf = [0u8; 2048];
    let mut b = MessageBuilder::new(&mut buf[..], MessageType::BINDING_REQUEST, tid).unwrap();
    b.add(attr).unwrap();
    let bytes = b.finish();
    let message = Message::parse(bytes).unwrap();
    check(message.get::<A>().unwrap().unwrap());
}

/// The same for attributes that borrow from the message.
macro_rules! round_trip_borrowed {
    ($attr:expr, $ty:ty) => {{
        let attr = $attr;
        let tid = TransactionId::from([0x42; 12]);
        let mut buf = [0u8; 2048];
        let mut b = MessageBuilder::new(&mut buf[..], MessageType::BINDING_REQUEST, tid).unwrap();
        b.add(&attr).unwrap();
        let bytes = b.finish();
        let message = Message::parse(bytes).unwrap();
        let decoded = message.get::<$ty>().unwrap().unwrap();
        prop_assert_eq!(decoded, attr);
    }};
}

proptest! {
    #[test]
    fn address_attributes_round_trip(addr in socket_addr()) {
        round_trip(&MappedAddress(addr), |a| assert_eq!(a.0, addr));
        round_trip(&XorMappedAddress(addr), |a| assert_eq!(a.0, addr));
        round_trip(&XorPeerAddress(addr), |a| assert_eq!(a.0, addr));
        round_trip(&XorRelayedAddress(addr), |a| assert_eq!(a.0, addr));
        round_trip(&AlternateServer(addr), |a| assert_eq!(a.0, addr));
        round_trip(&ResponseOrigin(addr), |a| assert_eq!(a.0, addr));
        round_trip(&OtherAddress(addr), |a| assert_eq!(a.0, addr));
        round_trip(&ResponseAddress(addr), |a| assert_eq!(a.0, addr));
        round_trip(&SourceAddress(addr), |a| assert_eq!(a.0, addr));
        round_trip(&ChangedAddress(addr), |a| assert_eq!(a.0, addr));
        round_trip(&ReflectedFrom(addr), |a| assert_eq!(a.0, addr));
    }

    #[test]
    fn text_attributes_round_trip(s in text(127)) {
        if let Ok(a) = Username::new(&s) { round_trip_borrowed!(a, Username<'_>); }
        if let Ok(a) = Realm::new(&s) { round_trip_borrowed!(a, Realm<'_>); }
        if let Ok(a) = Nonce::new(&s) { round_trip_borrowed!(a, Nonce<'_>); }
        if let Ok(a) = Software::new(&s) { round_trip_borrowed!(a, Software<'_>); }
        if let Ok(a) = AlternateDomain::new(&s) { round_trip_borrowed!(a, AlternateDomain<'_>); }
    }

    #[test]
    fn error_attributes_round_trip(code in 300u16..700, reason in text(127), fam in family()) {
        if let Ok(e) = ErrorCode::with_reason(code, &reason) {
            round_trip_borrowed!(e, ErrorCode<'_>);
            round_trip_borrowed!(AddressErrorCode::new(fam, e), AddressErrorCode<'_>);
        }
    }

    #[test]
    fn list_attributes_round_trip(
        types in proptest::collection::vec(any::<u16>(), 0..20),
        algs in proptest::collection::vec(any::<u16>(), 0..20),
    ) {
        let types: Vec<_> = types.into_iter().map(AttributeType::new).collect();
        round_trip_borrowed!(UnknownAttributes::new(&types), UnknownAttributes<'_>);
        let algs: Vec<_> = algs.into_iter().map(PasswordAlgorithm::from_value).collect();
        round_trip_borrowed!(PasswordAlgorithms::new(&algs), PasswordAlgorithms<'_>);
        if let Some(&first) = algs.first() {
            round_trip(&first, |a| assert_eq!(a, first));
        }
    }

    #[test]
    fn value_attributes_round_trip(
        n32 in any::<u32>(), n64 in any::<u64>(), n16 in any::<u16>(), b in any::<bool>(),
        token in any::<[u8; 8]>(), hash in any::<[u8; 32]>(), fam in family(),
        data in proptest::collection::vec(any::<u8>(), 0..600),
        icmp_type in 0u8..128, icmp_code in 0u16..512,
    ) {
        round_trip(&Priority(n32), |a| assert_eq!(a.0, n32));
        round_trip(&IceControlled(n64), |a| assert_eq!(a.0, n64));
        round_trip(&IceControlling(n64), |a| assert_eq!(a.0, n64));
        round_trip(&UseCandidate, |_| ());
        round_trip(&DontFragment, |_| ());
        round_trip(&Lifetime(n32), |a| assert_eq!(a.0, n32));
        round_trip(&ConnectionId(n32), |a| assert_eq!(a.0, n32));
        round_trip(&ChannelNumber(n16), |a| assert_eq!(a.0, n16));
        round_trip(&ResponsePort(n16), |a| assert_eq!(a.0, n16));
        round_trip(&EvenPort { reserve: b }, |a| assert_eq!(a.reserve, b));
        round_trip(&ChangeRequest { change_ip: b, change_port: !b }, |a| {
            assert_eq!((a.change_ip, a.change_port), (b, !b))
        });
        round_trip(&RequestedTransport(n16 as u8), |a| assert_eq!(a.0, n16 as u8));
        round_trip(&RequestedAddressFamily(fam), |a| assert_eq!(a.0, fam));
        round_trip(&AdditionalAddressFamily(fam), |a| assert_eq!(a.0, fam));
        round_trip(&ReservationToken(token), |a| assert_eq!(a.0, token));
        round_trip(&Userhash(hash), |a| assert_eq!(a.0, hash));
        round_trip(&Padding { len: data.len() as u16 }, |a| assert_eq!(usize::from(a.len), data.len()));
        let icmp = Icmp { icmp_type, code: icmp_code, error_data: n32 };
        round_trip(&icmp, |a| assert_eq!(a, icmp));
        round_trip_borrowed!(Data(&data), Data<'_>);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_parser(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        stun_proto::fuzzing::message(&bytes);
    }

    #[test]
    fn stun_shaped_bytes_never_panic_the_parser(
        ty in message_type(),
        body in proptest::collection::vec(any::<u8>(), 0..150),
    ) {
        // A valid header over random attribute soup reaches deeper than random bytes do.
        let len = body.len() & !3;
        let mut bytes = Vec::with_capacity(20 + len);
        bytes.extend_from_slice(&ty.to_bits().to_be_bytes());
        bytes.extend_from_slice(&(len as u16).to_be_bytes());
        bytes.extend_from_slice(&stun_proto::MAGIC_COOKIE.to_be_bytes());
        bytes.extend_from_slice(&[7; 12]);
        bytes.extend_from_slice(&body[..len]);
        stun_proto::fuzzing::message(&bytes);
    }

    #[test]
    fn any_flipped_bit_fails_integrity_or_fingerprint(
        ty in message_type(),
        tid in any::<[u8; 12]>(),
        software in "[a-z ]{0,40}",
        priority in any::<u32>(),
        addr in socket_addr(),
        sha256 in any::<bool>(),
        bit in any::<prop::sample::Index>(),
    ) {
        let key = IntegrityKey::short_term("a-password").unwrap();
        let mut b = MessageBuilder::new_bytes(ty, tid.into());
        b.add(&Software::new(&software).unwrap()).unwrap();
        b.add(&Priority(priority)).unwrap();
        b.add(&XorMappedAddress(addr)).unwrap();
        if sha256 {
            b.add_message_integrity_sha256(&key).unwrap();
        } else {
            b.add_message_integrity(&key).unwrap();
        }
        b.add_fingerprint().unwrap();
        let good = b.into_bytes();
        let m = Message::parse(&good).unwrap();
        prop_assert!(m.verify_integrity(&key).is_ok());
        prop_assert!(m.verify_fingerprint().is_ok());

        let bit = bit.index(good.len() * 8);
        let mut bad = good.to_vec();
        bad[bit / 8] ^= 1 << (bit % 8);
        // Either the framing breaks, or a check catches the change.
        if let Ok(m) = Message::parse(&bad) {
            prop_assert!(m.verify_fingerprint().is_err() || m.verify_integrity(&key).is_err());
        }
    }

    #[test]
    fn bytes_buffer_and_slice_builders_agree(ty in message_type(), addr in socket_addr(), pad in any::<u8>()) {
        let tid = TransactionId::from([1; 12]);
        let mut owned = MessageBuilder::new_bytes(ty, tid);
        owned.set_padding(pad);
        owned.add(&XorMappedAddress(addr)).unwrap().add(&Software::new("x").unwrap()).unwrap();
        owned.add_fingerprint().unwrap();
        let mut buf = [0u8; 128];
        let mut fixed = MessageBuilder::new(&mut buf[..], ty, tid).unwrap();
        fixed.set_padding(pad);
        fixed.add(&XorMappedAddress(addr)).unwrap().add(&Software::new("x").unwrap()).unwrap();
        fixed.add_fingerprint().unwrap();
        prop_assert_eq!(&owned.into_bytes()[..], fixed.finish());
    }
}

#[test]
fn encode_buffers_are_usable_generically() {
    fn build<B: EncodeBuffer>(buf: B) -> usize {
        let mut b =
            MessageBuilder::new(buf, MessageType::BINDING_INDICATION, [3; 12].into()).unwrap();
        b.add_fingerprint().unwrap();
        b.len()
    }
    assert_eq!(build(bytes::BytesMut::new()), 28);
    assert_eq!(build(&mut [0u8; 28][..]), 28);
}
