//! A received STUN message as a borrowed, zero-copy view (RFC 8489 §5, §14), with integrity
//! and fingerprint verification (§14.5–§14.7, §9).
//!
//! [`Message::parse`] walks the attributes once to check the framing and to note where
//! MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256 and FINGERPRINT stand; it allocates nothing.
//! Attributes after the first integrity attribute are ignored, except MESSAGE-INTEGRITY-SHA256
//! after MESSAGE-INTEGRITY and FINGERPRINT (RFC 8489 §14.5, §14.6); FINGERPRINT must be last
//! (§14.7).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fmt;

use constant_time_eq::constant_time_eq;
use thiserror::Error;

use crate::attribute::{
    AnyAttribute, AttributeError, AttributeType, DecodeAttribute, MessageIntegritySha256,
    RawAttribute,
};
use crate::credentials::IntegrityKey;
use crate::fingerprint::fingerprint;
use crate::header::{Class, HEADER_LEN, MAGIC_COOKIE, MessageType, Method, TransactionId};
use crate::wire::{Reader, padded};

/// Why bytes are not a well-formed STUN message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Fewer than the 20 bytes of a header.
    #[error("{len} bytes is shorter than the 20-byte STUN header")]
    TruncatedHeader {
        /// The input length.
        len: usize,
    },
    /// One of the two top bits of the first byte is set: not STUN (RFC 8489 §5).
    #[error("first byte {first_byte:#04x} has a top bit set: not STUN")]
    NotStun {
        /// The first byte.
        first_byte: u8,
    },
    /// The length field is not a multiple of 4 (RFC 8489 §5).
    #[error("message length {length} is not a multiple of 4")]
    LengthNotMultipleOf4 {
        /// The length field.
        length: u16,
    },
    /// The length field does not match the bytes after the header.
    #[error("message length field says {declared} bytes, {actual} follow the header")]
    LengthMismatch {
        /// The length field.
        declared: usize,
        /// The bytes after the header.
        actual: usize,
    },
    /// An attribute's value runs past the end of the message.
    #[error("{attribute} at offset {offset} declares {len} bytes, past the end of the message")]
    AttributeOverrun {
        /// The attribute's type.
        attribute: AttributeType,
        /// The offset of its header.
        offset: usize,
        /// Its declared value length.
        len: usize,
    },
    /// An attribute's value fits but its padding to 4 bytes does not (RFC 8489 §14).
    #[error("{attribute} at offset {offset} is missing its padding")]
    MissingPadding {
        /// The attribute's type.
        attribute: AttributeType,
        /// The offset of its header.
        offset: usize,
    },
    /// MESSAGE-INTEGRITY (20 bytes), MESSAGE-INTEGRITY-SHA256 (16..=32, multiple of 4) or
    /// FINGERPRINT (4 bytes) with a length its RFC forbids.
    #[error("{attribute} has a {len}-byte value")]
    BadIntegrityLength {
        /// Which of the three.
        attribute: AttributeType,
        /// The length found.
        len: usize,
    },
    /// FINGERPRINT is followed by another attribute (RFC 8489 §14.7: it must be last).
    #[error("FINGERPRINT at offset {offset} is not the last attribute")]
    FingerprintNotLast {
        /// The offset of FINGERPRINT's header.
        offset: usize,
    },
}

/// Why MESSAGE-INTEGRITY(-SHA256) did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum IntegrityError {
    /// The message carries neither integrity attribute.
    #[error("no MESSAGE-INTEGRITY or MESSAGE-INTEGRITY-SHA256")]
    Missing,
    /// The HMAC does not match: wrong key, or the message was altered.
    #[error("{0} does not match")]
    Mismatch(AttributeType),
}

/// Why FINGERPRINT did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FingerprintError {
    /// The message has no FINGERPRINT.
    #[error("no FINGERPRINT")]
    Missing,
    /// The CRC does not match the message.
    #[error("FINGERPRINT {received:#010x} does not match the computed {computed:#010x}")]
    Mismatch {
        /// The value in the message.
        received: u32,
        /// The value computed over the message.
        computed: u32,
    },
}

/// The integrity algorithm a message was verified with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntegrityAlgorithm {
    /// MESSAGE-INTEGRITY, HMAC-SHA1.
    Sha1,
    /// MESSAGE-INTEGRITY-SHA256, HMAC-SHA256 (possibly truncated).
    Sha256,
}

/// A received STUN message, borrowing the datagram it was parsed from.
///
/// ```
/// use stun_proto::{Message, MessageType, attribute::Software};
///
/// # let datagram = stun_proto::MessageBuilder::new_bytes(
/// #     MessageType::BINDING_REQUEST, [1; 12].into()).into_bytes();
/// let message = Message::parse(&datagram)?;
/// assert_eq!(message.message_type(), MessageType::BINDING_REQUEST);
/// let software = message.get::<Software>().transpose()?; // None: not present
/// assert!(software.is_none());
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy)]
pub struct Message<'a> {
    bytes: &'a [u8],
    message_type: MessageType,
    /// Attributes at or after this offset are ignored, except the two below.
    ignored_from: usize,
    integrity: Option<usize>,
    integrity_sha256: Option<usize>,
    fingerprint: Option<usize>,
    transaction_id: TransactionId,
}

impl<'a> Message<'a> {
    /// Parses and frames a datagram holding exactly one STUN message.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ParseError> {
        let Some((header, body)) = bytes.split_first_chunk::<HEADER_LEN>() else {
            return Err(ParseError::TruncatedHeader { len: bytes.len() });
        };
        let [t0, t1, l0, l1, _, _, _, _, ref tid @ ..] = *header;
        let message_type = MessageType::from_bits(u16::from_be_bytes([t0, t1]))
            .ok_or(ParseError::NotStun { first_byte: t0 })?;
        let length = u16::from_be_bytes([l0, l1]);
        if usize::from(length) != body.len() {
            return Err(ParseError::LengthMismatch {
                declared: length.into(),
                actual: body.len(),
            });
        }

        let mut message = Message {
            bytes,
            message_type,
            ignored_from: bytes.len(),
            integrity: None,
            integrity_sha256: None,
            fingerprint: None,
            transaction_id: TransactionId::from(*tid),
        };
        let mut rest = body;
        let mut offset = HEADER_LEN;
        while let Some((&[t0, t1, l0, l1], after)) = rest.split_first_chunk::<4>() {
            let attribute = AttributeType::new(u16::from_be_bytes([t0, t1]));
            let len = usize::from(u16::from_be_bytes([l0, l1]));
            // One test on the way of a well-formed attribute; which fault it is, only after.
            let Some(next) = after.get(padded(len)..) else {
                return Err(if after.len() < len {
                    ParseError::AttributeOverrun {
                        attribute,
                        offset,
                        len,
                    }
                } else {
                    ParseError::MissingPadding { attribute, offset }
                });
            };
            if matches!(
                attribute,
                AttributeType::MESSAGE_INTEGRITY
                    | AttributeType::MESSAGE_INTEGRITY_SHA256
                    | AttributeType::FINGERPRINT
            ) {
                message.note_special(attribute, offset, len, next.len())?;
            }
            rest = next;
            offset += 4 + padded(len);
        }
        // Every padded attribute is a multiple of 4 long, so a body that is not leaves a stub
        // too short for an attribute header, or an attribute without its padding.
        if !rest.is_empty() {
            return Err(ParseError::LengthNotMultipleOf4 { length });
        }
        Ok(message)
    }

    /// Records where the integrity and fingerprint attributes stand, checking their lengths.
    fn note_special(
        &mut self,
        attribute: AttributeType,
        offset: usize,
        len: usize,
        remaining: usize,
    ) -> Result<(), ParseError> {
        let bad_len = ParseError::BadIntegrityLength { attribute, len };
        let counts = offset < self.ignored_from;
        match attribute {
            AttributeType::MESSAGE_INTEGRITY if counts => {
                if len != 20 {
                    return Err(bad_len);
                }
                self.integrity = Some(offset);
                self.ignored_from = offset + 4 + len;
            }
            AttributeType::MESSAGE_INTEGRITY_SHA256
                if counts || (self.integrity.is_some() && self.integrity_sha256.is_none()) =>
            {
                if !MessageIntegritySha256::is_valid_len(len) {
                    return Err(bad_len);
                }
                self.integrity_sha256 = Some(offset);
                self.ignored_from = self.ignored_from.min(offset + 4 + len);
            }
            AttributeType::FINGERPRINT => {
                if len != 4 {
                    return Err(bad_len);
                }
                if remaining != 0 {
                    return Err(ParseError::FingerprintNotLast { offset });
                }
                self.fingerprint = Some(offset);
                self.ignored_from = self.ignored_from.min(offset);
            }
            _ => {}
        }
        Ok(())
    }

    /// The message type.
    pub const fn message_type(&self) -> MessageType {
        self.message_type
    }

    /// The method.
    pub const fn method(&self) -> Method {
        self.message_type.method()
    }

    /// The class.
    pub const fn class(&self) -> Class {
        self.message_type.class()
    }

    /// The 96-bit transaction id (for an RFC 3489 message, the last 96 of its 128 bits).
    pub const fn transaction_id(&self) -> TransactionId {
        self.transaction_id
    }

    /// Whether this is a classic RFC 3489 message: no magic cookie, a 128-bit transaction id.
    pub fn is_rfc3489(&self) -> bool {
        self.cookie_field() != MAGIC_COOKIE
    }

    /// The whole 128-bit transaction id of an RFC 3489 message (bytes 4..20 of the header).
    pub fn rfc3489_transaction_id(&self) -> [u8; 16] {
        let id = self
            .bytes
            .get(4..HEADER_LEN)
            .and_then(|s| <[u8; 16]>::try_from(s).ok());
        id.unwrap_or_default()
    }

    pub(crate) fn cookie_field(&self) -> u32 {
        let cookie = self
            .bytes
            .get(4..8)
            .and_then(|s| <[u8; 4]>::try_from(s).ok());
        u32::from_be_bytes(cookie.unwrap_or_default())
    }

    /// The whole message.
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The attributes that count, in order, with their unpadded values: those before the first
    /// integrity attribute, then MESSAGE-INTEGRITY-SHA256 and FINGERPRINT where they stand.
    pub fn attributes(&self) -> Attributes<'a> {
        Attributes {
            rest: self.bytes.get(HEADER_LEN..).unwrap_or_default(),
            offset: HEADER_LEN,
            ignored_from: self.ignored_from,
            integrity_sha256: self.integrity_sha256,
            fingerprint: self.fingerprint,
        }
    }

    /// The first attribute of type `attribute_type`, raw.
    // Inlined into every lookup: the wanted type becomes a constant and the call and its
    // returned `Option` go (an ICE check's four lookups: 30 -> 26 ns, benches/codec_ratio).
    #[inline(always)]
    pub fn raw(&self, attribute_type: AttributeType) -> Option<RawAttribute<'a>> {
        // A tight walk over the framing `parse` checked; only a type match pays for the
        // "does it count" test.
        let wanted = attribute_type.value();
        let mut offset = HEADER_LEN;
        while let Some((&[t0, t1, l0, l1], rest)) = self
            .bytes
            .get(offset..)
            .and_then(<[u8]>::split_first_chunk::<4>)
        {
            let len = usize::from(u16::from_be_bytes([l0, l1]));
            if u16::from_be_bytes([t0, t1]) == wanted && self.counts(offset) {
                return Some(RawAttribute {
                    attribute_type,
                    value: rest.get(..len)?,
                });
            }
            offset += 4 + padded(len);
        }
        None
    }

    /// Whether the attribute at `offset` counts (see [`Message::attributes`]).
    fn counts(&self, offset: usize) -> bool {
        offset < self.ignored_from
            || Some(offset) == self.integrity_sha256
            || Some(offset) == self.fingerprint
    }

    /// Whether an attribute of this type is present.
    pub fn has(&self, attribute_type: AttributeType) -> bool {
        self.raw(attribute_type).is_some()
    }

    /// The first attribute of type `A::TYPE`, decoded: `None` if absent.
    pub fn get<A: DecodeAttribute<'a>>(&self) -> Option<Result<A, AttributeError>> {
        self.raw(A::TYPE)
            .map(|raw| A::decode(raw.value, &self.transaction_id))
    }

    /// The comprehension-required attributes this crate does not know: a server answers 420
    /// listing them (RFC 8489 §6.3.1).
    pub fn unknown_comprehension_required(&self) -> impl Iterator<Item = AttributeType> + 'a {
        self.attributes()
            .map(|a| a.attribute_type)
            .filter(|t| t.is_comprehension_required() && !t.is_known())
    }

    /// Whether the message carries MESSAGE-INTEGRITY or MESSAGE-INTEGRITY-SHA256.
    pub const fn has_integrity(&self) -> bool {
        self.integrity.is_some() || self.integrity_sha256.is_some()
    }

    /// Verifies MESSAGE-INTEGRITY-SHA256 if present, else MESSAGE-INTEGRITY (RFC 8489 §9.1.4,
    /// §9.2.4). The comparison is constant-time.
    pub fn verify_integrity(
        &self,
        key: &IntegrityKey,
    ) -> Result<IntegrityAlgorithm, IntegrityError> {
        let (offset, attribute) = match (self.integrity_sha256, self.integrity) {
            (Some(offset), _) => (offset, AttributeType::MESSAGE_INTEGRITY_SHA256),
            (None, Some(offset)) => (offset, AttributeType::MESSAGE_INTEGRITY),
            (None, None) => return Err(IntegrityError::Missing),
        };
        let mut r = Reader::new(self.bytes.get(offset + 2..).unwrap_or_default());
        let value_len = usize::from(r.u16().unwrap_or(0));
        let received = r.bytes(value_len).unwrap_or_default();
        // The MAC covers the message up to the attribute, with the header's length field
        // counting up to the attribute's end (RFC 8489 §14.5).
        let covered = self.bytes.get(..offset).unwrap_or_default();
        let covered_len = (offset + 4 + value_len - HEADER_LEN) as u16;
        let matches = if attribute == AttributeType::MESSAGE_INTEGRITY {
            constant_time_eq(&key.sha1_tag(covered, covered_len), received)
        } else {
            let computed = key.sha256_tag(covered, covered_len);
            let computed = computed.get(..received.len()).unwrap_or_default();
            !received.is_empty() && constant_time_eq(computed, received)
        };
        match (matches, attribute) {
            (true, AttributeType::MESSAGE_INTEGRITY) => Ok(IntegrityAlgorithm::Sha1),
            (true, _) => Ok(IntegrityAlgorithm::Sha256),
            (false, _) => Err(IntegrityError::Mismatch(attribute)),
        }
    }

    /// Whether the message ends with FINGERPRINT.
    pub const fn has_fingerprint(&self) -> bool {
        self.fingerprint.is_some()
    }

    /// Verifies FINGERPRINT (RFC 8489 §14.7).
    pub fn verify_fingerprint(&self) -> Result<(), FingerprintError> {
        let offset = self.fingerprint.ok_or(FingerprintError::Missing)?;
        let covered = self.bytes.get(..offset).unwrap_or_default();
        let received = self
            .bytes
            .get(offset + 4..)
            .and_then(|v| <[u8; 4]>::try_from(v).ok());
        let received = u32::from_be_bytes(received.unwrap_or_default());
        let computed = fingerprint(covered);
        if received == computed {
            Ok(())
        } else {
            Err(FingerprintError::Mismatch { received, computed })
        }
    }
}

impl fmt::Debug for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tid = self.transaction_id();
        let attributes: Vec<_> = self
            .attributes()
            .map(|raw| AnyAttribute::decode(raw, &tid))
            .collect();
        f.debug_struct("Message")
            .field("type", &self.message_type)
            .field("transaction_id", &tid)
            .field("rfc3489", &self.is_rfc3489())
            .field("attributes", &attributes)
            .finish()
    }
}

/// An iterator over a message's attributes that count; see [`Message::attributes`].
#[derive(Clone, Debug)]
pub struct Attributes<'a> {
    /// The bytes from `offset` on; the framing was checked by [`Message::parse`].
    rest: &'a [u8],
    offset: usize,
    ignored_from: usize,
    integrity_sha256: Option<usize>,
    fingerprint: Option<usize>,
}

impl<'a> Iterator for Attributes<'a> {
    type Item = RawAttribute<'a>;

    fn next(&mut self) -> Option<RawAttribute<'a>> {
        loop {
            let (&[t0, t1, l0, l1], rest) = self.rest.split_first_chunk::<4>()?;
            let len = usize::from(u16::from_be_bytes([l0, l1]));
            let value = rest.get(..len)?;
            let offset = self.offset;
            self.rest = rest.get(padded(len)..).unwrap_or_default();
            self.offset += 4 + padded(len);
            if offset < self.ignored_from
                || Some(offset) == self.integrity_sha256
                || Some(offset) == self.fingerprint
            {
                let attribute_type = AttributeType::new(u16::from_be_bytes([t0, t1]));
                return Some(RawAttribute {
                    attribute_type,
                    value,
                });
            }
        }
    }
}
