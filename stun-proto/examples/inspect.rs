//! Decodes STUN messages and says what is in them: `inspect [HEX…]`.
//!
//! With no argument it decodes the RFC 5769 test vectors and builds an ICE connectivity check
//! of its own; each argument is one message in hex (spaces allowed, quote them). For a message
//! with MESSAGE-INTEGRITY it tries the RFC 5769 short-term password, so the vectors verify.

use stun_proto::attribute::{AnyAttribute, IceControlling, Priority, UseCandidate, Username};
use stun_proto::{IntegrityKey, Message, MessageBuilder, MessageType};

const RFC5769_PASSWORD: &str = "VOkJxbRl1RmTxUk/WvJxBt";

const RFC5769_VECTORS: [(&str, &str); 3] = [
    (
        "RFC 5769 §2.1 sample request",
        "000100582112a442b7e7a701bc34d686fa87dfae802200105354554e207465737420636c69656e74\
         002400046e0001ff80290008932ff9b151263b36000600096576746a3a6836765920202000080014\
         9aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a280280004e57a3bcf",
    ),
    (
        "RFC 5769 §2.2 IPv4 response",
        "0101003c2112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220002000080001a147\
         e112a643000800142b91f599fd9e90c38c7489f92af9ba53f06be7d780280004c07d4c96",
    ),
    (
        "RFC 5769 §2.3 IPv6 response",
        "010100482112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220002000140002a147\
         0113a9faa5d3f179bc25f4b5bed2b9d900080014a382954e4be67bf11784c97c8292c275bfe3ed41\
         80280004c8fb0b4c",
    ),
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let key = IntegrityKey::short_term(RFC5769_PASSWORD).expect("an ASCII password");
    if args.is_empty() {
        for (name, hex) in RFC5769_VECTORS {
            inspect(name, &decode_hex(hex), &key);
        }
        let check = ice_check(&key);
        inspect("an ICE check built here", &check, &key);
    } else {
        for (i, hex) in args.iter().enumerate() {
            inspect(&format!("argument {}", i + 1), &decode_hex(hex), &key);
        }
    }
}

/// A controlling agent's connectivity check with USE-CANDIDATE (RFC 8445 §7.1).
fn ice_check(key: &IntegrityKey) -> Vec<u8> {
    let mut b = MessageBuilder::new_bytes(MessageType::BINDING_REQUEST, [0x5a; 12].into());
    b.add(&Username::new("Ab1C:dE2f").expect("short"))
        .and_then(|b| b.add(&Priority(1_853_817_087)))
        .and_then(|b| b.add(&IceControlling(0x0123_4567_89ab_cdef)))
        .and_then(|b| b.add(&UseCandidate))
        .and_then(|b| b.add_message_integrity(key))
        .and_then(|b| b.add_fingerprint())
        .expect("a small message fits");
    b.into_bytes().to_vec()
}

fn inspect(name: &str, bytes: &[u8], key: &IntegrityKey) {
    println!("== {name} ({} bytes)", bytes.len());
    match Message::parse(bytes) {
        Err(e) => println!("   not a STUN message: {e}"),
        Ok(m) => {
            let kind = if m.is_rfc3489() {
                " (classic RFC 3489)"
            } else {
                ""
            };
            println!("   {:?}{kind}, {:?}", m.message_type(), m.transaction_id());
            for raw in m.attributes() {
                match AnyAttribute::decode(raw, &m.transaction_id()) {
                    Ok(AnyAttribute::Unknown(raw)) => {
                        println!("   {}: {} bytes", raw.attribute_type, raw.value.len())
                    }
                    Ok(attribute) => println!("   {attribute:?}"),
                    Err(e) => println!("   {}: malformed: {e}", raw.attribute_type),
                }
            }
            if m.has_fingerprint() {
                println!(
                    "   FINGERPRINT: {:?}",
                    m.verify_fingerprint().map(|()| "ok")
                );
            }
            if m.has_integrity() {
                println!(
                    "   integrity with the RFC 5769 password: {:?}",
                    m.verify_integrity(key)
                );
            }
        }
    }
}

fn decode_hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .filter_map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
}
