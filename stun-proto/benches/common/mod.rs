//! The message both codec benchmarks measure, and its parts.

use stun_proto::attribute::{IceControlling, Priority, UseCandidate, Username};
use stun_proto::{IntegrityKey, MessageBuilder, MessageType};

/// The ICE password the message is signed with.
pub const PASSWORD: &str = "YH7YiUfoWJ8LkPVVN4bE6bHK";

/// A controlling agent's connectivity check with USE-CANDIDATE (RFC 8445 §7.1), written into
/// `buf`; returns its length.
pub fn ice_request(buf: &mut [u8], key: &IntegrityKey) -> usize {
    let mut b = MessageBuilder::new(buf, MessageType::BINDING_REQUEST, [0x6b; 12].into()).unwrap();
    b.add(&Username::new("Ab1C:dE2f").unwrap()).unwrap();
    b.add(&Priority(1_853_817_087)).unwrap();
    b.add(&IceControlling(0x0123_4567_89ab_cdef)).unwrap();
    b.add(&UseCandidate).unwrap();
    b.add_message_integrity(key).unwrap();
    b.add_fingerprint().unwrap();
    b.len()
}
