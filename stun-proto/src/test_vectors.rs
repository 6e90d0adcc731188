//! The published test vectors: RFC 5769 §2.1–§2.4 and RFC 8489 Appendix B.1 (as corrected by
//! its verified erratum, which adds the PASSWORD-ALGORITHM attribute the text describes and
//! recomputes the HMAC). Each decodes, validates, and is rebuilt byte for byte.

use std::net::SocketAddr;

use crate::attribute::{
    DecodeAttribute, IceControlled, Nonce, PasswordAlgorithm, Priority, Realm, Software, Userhash,
    Username, XorMappedAddress,
};
use crate::{
    Class, FingerprintError, IntegrityAlgorithm, IntegrityError, IntegrityKey, Message,
    MessageBuilder, MessageType, ParseError,
};

/// Hex as the RFCs print it, spaces and line breaks allowed.
pub(crate) fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

const TID_5769: [u8; 12] = [
    0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
];
const SHORT_TERM_PASSWORD: &str = "VOkJxbRl1RmTxUk/WvJxBt";

/// RFC 5769 §2.1: Binding request with SOFTWARE, PRIORITY, ICE-CONTROLLED, USERNAME,
/// MESSAGE-INTEGRITY and FINGERPRINT. Its SOFTWARE and USERNAME are padded with spaces.
pub(crate) const SAMPLE_REQUEST: &str = "
    00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
    80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74
    00 24 00 04 6e 00 01 ff
    80 29 00 08 93 2f f9 b1 51 26 3b 36
    00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
    00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2
    80 28 00 04 e5 7a 3b cf";

/// RFC 5769 §2.2: IPv4 Binding success response.
pub(crate) const SAMPLE_IPV4_RESPONSE: &str = "
    01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
    80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
    00 20 00 08 00 01 a1 47 e1 12 a6 43
    00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7
    80 28 00 04 c0 7d 4c 96";

/// RFC 5769 §2.3: IPv6 Binding success response.
pub(crate) const SAMPLE_IPV6_RESPONSE: &str = "
    01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
    80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
    00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9
    00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41
    80 28 00 04 c8 fb 0b 4c";

/// RFC 5769 §2.4: Binding request with long-term credentials (no FINGERPRINT).
pub(crate) const SAMPLE_LONG_TERM_REQUEST: &str = "
    00 01 00 60 21 12 a4 42 78 ad 34 33 c6 ad 72 c0 29 da 41 2e
    00 06 00 12 e3 83 9e e3 83 88 e3 83 aa e3 83 83 e3 82 af e3 82 b9 00 00
    00 15 00 1c 66 2f 2f 34 39 39 6b 39 35 34 64 36 4f 4c 33 34 6f 4c 39 46 53 54 76 79 36 34 73 41
    00 14 00 0b 65 78 61 6d 70 6c 65 2e 6f 72 67 00
    00 08 00 14 f6 70 24 65 6d d6 4a 3e 02 b8 e0 71 2e 85 c9 a2 8c a8 96 66";

/// RFC 8489 Appendix B.1 with erratum 6268 applied: USERHASH, NONCE, REALM,
/// PASSWORD-ALGORITHM (SHA-256), MESSAGE-INTEGRITY-SHA256.
pub(crate) const SAMPLE_SHA256_REQUEST: &str = "
    00 01 00 90 21 12 a4 42 78 ad 34 33 c6 ad 72 c0 29 da 41 2e
    00 1e 00 20 4a 3c f3 8f ef 69 92 bd a9 52 c6 78 04 17 da 0f
                24 81 94 15 56 9e 60 b2 05 c4 6e 41 40 7f 17 04
    00 15 00 29 6f 62 4d 61 74 4a 6f 73 32 41 41 41 43 66 2f 2f 34 39 39 6b 39 35 34 64
                36 4f 4c 33 34 6f 4c 39 46 53 54 76 79 36 34 73 41 00 00 00
    00 14 00 0b 65 78 61 6d 70 6c 65 2e 6f 72 67 00
    00 1d 00 04 00 02 00 00
    00 1c 00 20 b5 c7 bf 00 5b 6c 52 a2 1c 51 c5 e8 92 f8 19 24
                13 62 96 cb 92 7c 43 14 93 09 27 8c c6 51 8e 65";

const USERNAME_B: &str = "\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}";

fn get<'a, A: DecodeAttribute<'a>>(m: &Message<'a>) -> A {
    m.get::<A>()
        .expect("attribute present")
        .expect("attribute decodes")
}

#[test]
fn rfc5769_sample_request_validates_and_rebuilds() {
    let bytes = hex(SAMPLE_REQUEST);
    let m = Message::parse(&bytes).unwrap();
    let key = IntegrityKey::short_term(SHORT_TERM_PASSWORD).unwrap();
    assert_eq!(m.message_type(), MessageType::BINDING_REQUEST);
    assert_eq!(m.transaction_id(), TID_5769.into());
    assert!(!m.is_rfc3489());
    assert_eq!(get::<Software>(&m).as_str(), "STUN test client");
    assert_eq!(get::<Username>(&m).as_str(), "evtj:h6vY");
    assert_eq!(get::<Priority>(&m), Priority(0x6e0001ff));
    assert_eq!(
        get::<IceControlled>(&m),
        IceControlled(0x932f_f9b1_5126_3b36)
    );
    assert_eq!(m.verify_integrity(&key), Ok(IntegrityAlgorithm::Sha1));
    assert_eq!(m.verify_fingerprint(), Ok(()));

    // The vector pads with spaces (any padding value is allowed, RFC 8489 §14).
    let mut buf = [0u8; 256];
    let mut b =
        MessageBuilder::new(&mut buf[..], MessageType::BINDING_REQUEST, TID_5769.into()).unwrap();
    b.set_padding(b' ');
    b.add(&Software::new("STUN test client").unwrap()).unwrap();
    b.add(&Priority(0x6e0001ff)).unwrap();
    b.add(&IceControlled(0x932f_f9b1_5126_3b36)).unwrap();
    b.add(&Username::new("evtj:h6vY").unwrap()).unwrap();
    b.add_message_integrity(&key).unwrap();
    b.add_fingerprint().unwrap();
    assert_eq!(b.finish(), &bytes[..]);
}

#[test]
fn rfc5769_ipv4_and_ipv6_responses_validate_and_rebuild_byte_exact() {
    let key = IntegrityKey::short_term(SHORT_TERM_PASSWORD).unwrap();
    for (vector, addr) in [
        (SAMPLE_IPV4_RESPONSE, "192.0.2.1:32853"),
        (
            SAMPLE_IPV6_RESPONSE,
            "[2001:db8:1234:5678:11:2233:4455:6677]:32853",
        ),
    ] {
        let bytes = hex(vector);
        let m = Message::parse(&bytes).unwrap();
        let addr: SocketAddr = addr.parse().unwrap();
        assert_eq!(m.message_type(), MessageType::BINDING_SUCCESS);
        assert_eq!(get::<XorMappedAddress>(&m), XorMappedAddress(addr));
        assert_eq!(get::<Software>(&m).as_str(), "test vector");
        assert_eq!(m.verify_integrity(&key), Ok(IntegrityAlgorithm::Sha1));
        assert_eq!(m.verify_fingerprint(), Ok(()));

        let mut b = MessageBuilder::new_bytes(MessageType::BINDING_SUCCESS, TID_5769.into());
        b.set_padding(b' ');
        b.add(&Software::new("test vector").unwrap()).unwrap();
        b.add(&XorMappedAddress(addr)).unwrap();
        b.add_message_integrity(&key).unwrap();
        b.add_fingerprint().unwrap();
        assert_eq!(&b.into_bytes()[..], &bytes[..], "{addr}");
    }
}

#[test]
fn rfc5769_long_term_request_validates_and_rebuilds_byte_exact() {
    let bytes = hex(SAMPLE_LONG_TERM_REQUEST);
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(get::<Username>(&m).as_str(), USERNAME_B);
    assert_eq!(get::<Nonce>(&m).as_str(), "f//499k954d6OL34oL9FSTvy64sA");
    assert_eq!(get::<Realm>(&m).as_str(), "example.org");
    assert_eq!(m.verify_fingerprint(), Err(FingerprintError::Missing));
    // The RFC's password is SASLprep("TheMªtrⅨ") = "TheMatrIX"; OpaqueString keeps "TheMªtrⅨ",
    // so the prepared form is what we pass (see the credentials module).
    let key = IntegrityKey::long_term(
        USERNAME_B,
        "example.org",
        "TheMatrIX",
        PasswordAlgorithm::Md5,
    )
    .unwrap();
    assert_eq!(m.verify_integrity(&key), Ok(IntegrityAlgorithm::Sha1));
    let wrong = IntegrityKey::long_term(
        USERNAME_B,
        "example.org",
        "thematrix",
        PasswordAlgorithm::Md5,
    )
    .unwrap();
    assert_eq!(
        m.verify_integrity(&wrong),
        Err(IntegrityError::Mismatch(
            crate::AttributeType::MESSAGE_INTEGRITY
        ))
    );

    let mut b = MessageBuilder::new_bytes(MessageType::BINDING_REQUEST, m.transaction_id());
    b.add(&Username::new(USERNAME_B).unwrap()).unwrap();
    b.add(&Nonce::new("f//499k954d6OL34oL9FSTvy64sA").unwrap())
        .unwrap();
    b.add(&Realm::new("example.org").unwrap()).unwrap();
    b.add_message_integrity(&key).unwrap();
    assert_eq!(&b.into_bytes()[..], &bytes[..]);
}

#[test]
fn rfc8489_b1_sha256_request_validates_and_rebuilds_byte_exact() {
    let bytes = hex(SAMPLE_SHA256_REQUEST);
    let m = Message::parse(&bytes).unwrap();
    let userhash = Userhash::compute(USERNAME_B, "example.org").unwrap();
    assert_eq!(get::<Userhash>(&m), userhash);
    assert_eq!(
        get::<Nonce>(&m).as_str(),
        "obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA"
    );
    assert_eq!(get::<PasswordAlgorithm>(&m), PasswordAlgorithm::Sha256);
    let key = IntegrityKey::long_term(
        USERNAME_B,
        "example.org",
        "TheMatrIX",
        PasswordAlgorithm::Sha256,
    )
    .unwrap();
    assert_eq!(m.verify_integrity(&key), Ok(IntegrityAlgorithm::Sha256));

    let mut b = MessageBuilder::new_bytes(MessageType::BINDING_REQUEST, m.transaction_id());
    b.add(&userhash).unwrap();
    b.add(&Nonce::new("obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA").unwrap())
        .unwrap();
    b.add(&Realm::new("example.org").unwrap()).unwrap();
    b.add(&PasswordAlgorithm::Sha256).unwrap();
    b.add_message_integrity_sha256(&key).unwrap();
    assert_eq!(&b.into_bytes()[..], &bytes[..]);
}

#[test]
fn malformed_input_gets_a_specific_error() {
    let good = hex(SAMPLE_REQUEST);
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = good.clone();
        f(&mut b);
        Message::parse(&b).map(|_| ())
    };
    assert_eq!(
        Message::parse(&good[..19]).map(|_| ()),
        Err(ParseError::TruncatedHeader { len: 19 })
    );
    assert_eq!(
        with(&|b| b[0] |= 0x80),
        Err(ParseError::NotStun { first_byte: 0x80 })
    );
    let mut stub = good[..20].to_vec();
    stub.extend_from_slice(&[0, 0]);
    stub[3] = 2;
    assert_eq!(
        Message::parse(&stub).map(|_| ()),
        Err(ParseError::LengthNotMultipleOf4 { length: 2 })
    );
    assert_eq!(
        with(&|b| b.truncate(100)),
        Err(ParseError::LengthMismatch {
            declared: 88,
            actual: 80
        })
    );
    // SOFTWARE claims 0x40 bytes: past the end.
    assert_eq!(
        with(&|b| b[23] = 0x70),
        Err(ParseError::AttributeOverrun {
            attribute: crate::AttributeType::SOFTWARE,
            offset: 20,
            len: 0x70
        })
    );
    // FINGERPRINT replaced by a one-byte SOFTWARE without its padding.
    let mut cut = hex(SAMPLE_REQUEST);
    cut.truncate(cut.len() - 8);
    cut.extend_from_slice(&[0x80, 0x22, 0x00, 0x01, b'x']);
    cut[3] = (cut.len() - 20) as u8;
    assert_eq!(
        Message::parse(&cut).map(|_| ()),
        Err(ParseError::MissingPadding {
            attribute: crate::AttributeType::SOFTWARE,
            offset: 100
        })
    );
    // MESSAGE-INTEGRITY of 16 bytes: shrink it and fix the length field.
    let mut short_mi = good[..76].to_vec();
    short_mi.extend_from_slice(&[0x00, 0x08, 0x00, 0x10]);
    short_mi.extend_from_slice(&[0; 16]);
    short_mi[3] = (short_mi.len() - 20) as u8;
    assert_eq!(
        Message::parse(&short_mi).map(|_| ()),
        Err(ParseError::BadIntegrityLength {
            attribute: crate::AttributeType::MESSAGE_INTEGRITY,
            len: 16
        })
    );
    // An attribute after FINGERPRINT.
    let mut after_fp = good.clone();
    after_fp.extend_from_slice(&[0x80, 0x22, 0x00, 0x00]);
    after_fp[3] += 4;
    assert_eq!(
        Message::parse(&after_fp).map(|_| ()),
        Err(ParseError::FingerprintNotLast { offset: 100 })
    );
    // A flipped bit in a verified message: FINGERPRINT catches it, and so does the HMAC.
    let mut flipped = good.clone();
    flipped[30] ^= 0x01;
    let m = Message::parse(&flipped).unwrap();
    assert!(matches!(
        m.verify_fingerprint(),
        Err(FingerprintError::Mismatch { .. })
    ));
    let key = IntegrityKey::short_term(SHORT_TERM_PASSWORD).unwrap();
    assert!(m.verify_integrity(&key).is_err());
}

#[test]
fn attributes_after_message_integrity_are_ignored_except_sha256_and_fingerprint() {
    let key = IntegrityKey::new(b"key");
    let mut buf = [0u8; 256];
    let mut b =
        MessageBuilder::new(&mut buf[..], MessageType::BINDING_REQUEST, [1; 12].into()).unwrap();
    b.add(&Priority(5)).unwrap();
    b.add_message_integrity(&key).unwrap();
    b.add_message_integrity_sha256_truncated(&key, 16).unwrap();
    b.add_fingerprint().unwrap();
    let len = b.len();
    // Splice a SOFTWARE between MESSAGE-INTEGRITY and MESSAGE-INTEGRITY-SHA256 by hand: a
    // receiver must not see it.
    let mut spliced = buf[..52].to_vec(); // header + PRIORITY + MESSAGE-INTEGRITY
    spliced.extend_from_slice(&[0x80, 0x22, 0x00, 0x04, b'e', b'v', b'i', b'l']);
    spliced.extend_from_slice(&buf[52..len]);
    spliced[3] += 8;
    let m = Message::parse(&spliced).unwrap();
    let seen: Vec<_> = m.attributes().map(|a| a.attribute_type).collect();
    use crate::AttributeType as T;
    assert_eq!(
        seen,
        [
            T::PRIORITY,
            T::MESSAGE_INTEGRITY,
            T::MESSAGE_INTEGRITY_SHA256,
            T::FINGERPRINT
        ]
    );
    assert!(!m.has(T::SOFTWARE));
    // MESSAGE-INTEGRITY-SHA256 is preferred; it covers the spliced bytes, so it fails, while
    // the fingerprint (recomputed below) would not save it.
    assert_eq!(
        m.verify_integrity(&key),
        Err(IntegrityError::Mismatch(T::MESSAGE_INTEGRITY_SHA256))
    );
}

#[test]
fn builder_enforces_attribute_order_and_buffer_size() {
    use crate::{AttributeType as T, BuildError};
    let key = IntegrityKey::new(b"k");
    let mut small = [0u8; 24];
    let mut b =
        MessageBuilder::new(&mut small[..], MessageType::BINDING_REQUEST, [0; 12].into()).unwrap();
    assert_eq!(
        b.add(&Priority(1)).err(),
        Some(BuildError::BufferTooSmall {
            needed: 28,
            capacity: 24
        })
    );

    let mut b = MessageBuilder::new_bytes(MessageType::BINDING_REQUEST, [0; 12].into());
    b.add_message_integrity(&key).unwrap();
    assert_eq!(
        b.add(&Priority(1)).err(),
        Some(BuildError::Misordered {
            attribute: T::PRIORITY,
            after: T::MESSAGE_INTEGRITY
        })
    );
    assert_eq!(
        b.add_message_integrity(&key).err(),
        Some(BuildError::Misordered {
            attribute: T::MESSAGE_INTEGRITY,
            after: T::MESSAGE_INTEGRITY
        })
    );
    assert_eq!(
        b.add_message_integrity_sha256_truncated(&key, 18).err(),
        Some(BuildError::BadIntegrityLength(18))
    );
    b.add_fingerprint().unwrap();
    assert_eq!(
        b.add_fingerprint().err(),
        Some(BuildError::Misordered {
            attribute: T::FINGERPRINT,
            after: T::FINGERPRINT
        })
    );
    let data = vec![0u8; 70_000];
    let mut b = MessageBuilder::new_bytes(MessageType::BINDING_REQUEST, [0; 12].into());
    assert!(matches!(
        b.add(&crate::attribute::Data(&data)),
        Err(BuildError::MessageTooLong { .. })
    ));
}

#[test]
fn classic_rfc3489_messages_are_read_and_answered_in_kind() {
    // A classic Binding request: no cookie, a 128-bit id, a CHANGE-REQUEST.
    let id = [9u8; 16];
    let mut b =
        MessageBuilder::new_rfc3489(bytes::BytesMut::new(), MessageType::BINDING_REQUEST, id)
            .unwrap();
    b.add(&crate::attribute::ChangeRequest {
        change_ip: true,
        change_port: false,
    })
    .unwrap();
    let request = b.into_bytes();
    let m = Message::parse(&request).unwrap();
    assert!(m.is_rfc3489());
    assert_eq!(m.rfc3489_transaction_id(), id);

    let mapped: SocketAddr = "198.51.100.7:4000".parse().unwrap();
    let mut out = [0u8; 64];
    let mut b = MessageBuilder::response_to(&mut out[..], &m, Class::Success).unwrap();
    b.add(&crate::attribute::MappedAddress(mapped)).unwrap();
    let answer = Message::parse(b.finish()).unwrap();
    assert!(answer.is_rfc3489());
    assert_eq!(answer.rfc3489_transaction_id(), id);
    assert_eq!(answer.message_type(), MessageType::BINDING_SUCCESS);
    assert_eq!(get::<crate::attribute::MappedAddress>(&answer).0, mapped);
}

#[test]
fn unknown_comprehension_required_attributes_are_reported() {
    let mut b = MessageBuilder::new_bytes(MessageType::BINDING_REQUEST, [0; 12].into());
    let odd = crate::RawAttribute {
        attribute_type: crate::AttributeType::new(0x7001),
        value: b"x",
    };
    let optional = crate::RawAttribute {
        attribute_type: crate::AttributeType::new(0xC001),
        value: b"y",
    };
    b.add(&odd)
        .unwrap()
        .add(&optional)
        .unwrap()
        .add(&Priority(1))
        .unwrap();
    let bytes = b.into_bytes();
    let m = Message::parse(&bytes).unwrap();
    let unknown: Vec<_> = m.unknown_comprehension_required().collect();
    assert_eq!(unknown, [crate::AttributeType::new(0x7001)]);
    // Unknown attributes stay readable as type + value.
    assert_eq!(
        m.raw(crate::AttributeType::new(0xC001)).map(|a| a.value),
        Some(&b"y"[..])
    );
}

#[test]
fn lookups_find_the_first_attribute_of_a_type_among_many() {
    // Twenty attributes: the first and the last are found, and the first of two with the
    // same type wins.
    let mut b = MessageBuilder::new_bytes(MessageType::BINDING_REQUEST, [0; 12].into());
    for i in 0..20u16 {
        let value = u32::from(i).to_be_bytes();
        let raw = crate::RawAttribute {
            attribute_type: crate::AttributeType::new(0x8100 + i),
            value: &value,
        };
        b.add(&raw).unwrap();
    }
    b.add(&Priority(1)).unwrap().add(&Priority(2)).unwrap();
    let bytes = b.into_bytes();
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(
        m.raw(crate::AttributeType::new(0x8100)).map(|a| a.value),
        Some(&[0, 0, 0, 0][..])
    );
    assert_eq!(
        m.raw(crate::AttributeType::new(0x8113)).map(|a| a.value),
        Some(&[0, 0, 0, 19][..])
    );
    assert_eq!(get::<Priority>(&m), Priority(1));
    assert!(m.raw(crate::AttributeType::new(0x8114)).is_none());
    assert_eq!(m.attributes().count(), 22);
}
