//! Entry points for the fuzz targets in `fuzz/` and for the corpus replay in `cargo test`.
//! Not part of the public API.

use crate::attribute::AnyAttribute;
use crate::{IntegrityKey, Message, MessageBuilder};

/// Parses `data` as a STUN message and exercises everything a receiver would: every attribute
/// decoded, integrity and fingerprint verified. Checks that the zero-copy views stay inside the
/// input and that a message's attributes can be written again by the builder.
pub fn message(data: &[u8]) {
    let Ok(message) = Message::parse(data) else {
        return;
    };
    let tid = message.transaction_id();
    let mut rebuilt = MessageBuilder::new_bytes(message.message_type(), tid);
    for raw in message.attributes() {
        assert!(
            raw.value.len() <= data.len(),
            "attribute value larger than the message"
        );
        let _ = AnyAttribute::decode(raw, &tid);
        if !matches!(
            raw.attribute_type,
            crate::AttributeType::MESSAGE_INTEGRITY
                | crate::AttributeType::MESSAGE_INTEGRITY_SHA256
                | crate::AttributeType::FINGERPRINT
        ) {
            assert!(
                rebuilt.add(&raw).is_ok(),
                "an attribute that parsed must be writable"
            );
        }
    }
    let _ = message.unknown_comprehension_required().count();
    let key = IntegrityKey::new(b"fuzz");
    let _ = message.verify_integrity(&key);
    let _ = message.verify_fingerprint();
    let _ = format!("{message:?}");
    let again = rebuilt.into_bytes();
    assert!(
        Message::parse(&again).is_ok(),
        "a rebuilt message must parse"
    );
}
