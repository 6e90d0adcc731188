//! Authentication attributes (RFC 8489 §14.4–§14.7, §14.11, §14.12): USERHASH,
//! MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256, FINGERPRINT, PASSWORD-ALGORITHM(S).
//!
//! The integrity and fingerprint attributes decode here but have no [`EncodeAttribute`]
//! implementation: the [`MessageBuilder`](crate::MessageBuilder) computes them over the bytes
//! it wrote. Verification lives on [`Message`](crate::Message).

use bytes::BufMut;
use sha2::{Digest, Sha256};

use super::{
    AttributeError, AttributeType, DecodeAttribute, EncodeAttribute, ListRepr, encode_with, fixed,
};
use crate::credentials::{CredentialError, opaque_string};
use crate::header::TransactionId;
use crate::wire::{Reader, padded};

/// USERHASH: SHA-256 of `OpaqueString(username) ":" OpaqueString(realm)`, sent instead of
/// USERNAME to hide the user's name (RFC 8489 §14.4).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Userhash(pub [u8; 32]);

impl Userhash {
    /// Computes the hash for a username and realm.
    pub fn compute(username: &str, realm: &str) -> Result<Self, CredentialError> {
        let mut hash = Sha256::new();
        hash.update(opaque_string(username)?.as_bytes());
        hash.update(b":");
        hash.update(opaque_string(realm)?.as_bytes());
        Ok(Userhash(hash.finalize().into()))
    }
}

impl<'a> DecodeAttribute<'a> for Userhash {
    const TYPE: AttributeType = AttributeType::USERHASH;

    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttributeError> {
        fixed(Self::TYPE, value).map(Userhash)
    }
}

encode_with!(Userhash, |this, out, tid| len = 32; { out.copy_from_slice(&this.0) });

/// MESSAGE-INTEGRITY: HMAC-SHA1 over the message up to this attribute (RFC 8489 §14.5).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct MessageIntegrity(pub [u8; 20]);

impl<'a> DecodeAttribute<'a> for MessageIntegrity {
    const TYPE: AttributeType = AttributeType::MESSAGE_INTEGRITY;

    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttributeError> {
        fixed(Self::TYPE, value).map(MessageIntegrity)
    }
}

/// MESSAGE-INTEGRITY-SHA256: HMAC-SHA256 over the message up to this attribute, possibly
/// truncated to 16..=32 bytes in steps of 4 (RFC 8489 §14.6).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct MessageIntegritySha256<'a>(pub &'a [u8]);

impl MessageIntegritySha256<'_> {
    /// Whether `len` is a length RFC 8489 §14.6 allows.
    pub const fn is_valid_len(len: usize) -> bool {
        len >= 16 && len <= 32 && len % 4 == 0
    }
}

impl<'a> DecodeAttribute<'a> for MessageIntegritySha256<'a> {
    const TYPE: AttributeType = AttributeType::MESSAGE_INTEGRITY_SHA256;

    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttributeError> {
        if Self::is_valid_len(value.len()) {
            Ok(MessageIntegritySha256(value))
        } else {
            Err(AttributeError::BadLength {
                attribute: Self::TYPE,
                len: value.len(),
                min: 16,
                max: 32,
            })
        }
    }
}

/// FINGERPRINT: CRC-32 of the message up to this attribute, XORed with 0x5354554e
/// (RFC 8489 §14.7).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Fingerprint(pub u32);

impl<'a> DecodeAttribute<'a> for Fingerprint {
    const TYPE: AttributeType = AttributeType::FINGERPRINT;

    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttributeError> {
        fixed(Self::TYPE, value).map(|b| Fingerprint(u32::from_be_bytes(b)))
    }
}

/// A password algorithm for long-term credentials (RFC 8489 §18.5).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum PasswordAlgorithm {
    /// MD5 (0x0001): the RFC 5389 key derivation.
    Md5,
    /// SHA-256 (0x0002).
    Sha256,
    /// An algorithm this crate does not implement; its parameters are not kept.
    Unknown(u16),
}

impl PasswordAlgorithm {
    /// The algorithm number.
    pub const fn value(self) -> u16 {
        match self {
            PasswordAlgorithm::Md5 => 0x0001,
            PasswordAlgorithm::Sha256 => 0x0002,
            PasswordAlgorithm::Unknown(v) => v,
        }
    }

    /// The algorithm with this number.
    pub const fn from_value(value: u16) -> Self {
        match value {
            0x0001 => PasswordAlgorithm::Md5,
            0x0002 => PasswordAlgorithm::Sha256,
            v => PasswordAlgorithm::Unknown(v),
        }
    }

    /// Reads one algorithm entry (number, parameter length, padded parameters).
    fn read(attribute: AttributeType, r: &mut Reader<'_>) -> Result<Self, AttributeError> {
        let truncated = AttributeError::TruncatedList { attribute };
        let value = r.u16().ok_or(truncated.clone())?;
        let params_len = r.u16().ok_or(truncated.clone())?;
        // The parameters are padded to a 32-bit boundary inside the attribute.
        r.bytes(padded(usize::from(params_len))).ok_or(truncated)?;
        Ok(PasswordAlgorithm::from_value(value))
    }

    fn write(self, out: &mut &mut [u8]) {
        out.put_u16(self.value());
        out.put_u16(0); // neither MD5 nor SHA-256 takes parameters
    }
}

impl<'a> DecodeAttribute<'a> for PasswordAlgorithm {
    const TYPE: AttributeType = AttributeType::PASSWORD_ALGORITHM;

    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttributeError> {
        let mut r = Reader::new(value);
        let algorithm = PasswordAlgorithm::read(Self::TYPE, &mut r)?;
        if r.remaining() != 0 {
            return Err(AttributeError::BadLength {
                attribute: Self::TYPE,
                len: value.len(),
                min: 4,
                max: 4,
            });
        }
        Ok(algorithm)
    }
}

encode_with!(PasswordAlgorithm, |this, out, tid| len = 4; {
    let mut out = out;
    this.write(&mut out)
});

/// PASSWORD-ALGORITHMS: the algorithms a server offers, in its order of preference
/// (RFC 8489 §14.11).
///
/// Holds either the received bytes or a list to send; compare two with
/// [`iter`](Self::iter), or byte-for-byte through [`EncodeAttribute`].
#[derive(Clone, Copy, Debug)]
pub struct PasswordAlgorithms<'a>(ListRepr<'a, PasswordAlgorithm>);

impl<'a> PasswordAlgorithms<'a> {
    /// The attribute listing `algorithms`.
    pub const fn new(algorithms: &'a [PasswordAlgorithm]) -> Self {
        PasswordAlgorithms(ListRepr::Items(algorithms))
    }

    /// The algorithms, in order. A received list was checked when it was decoded.
    pub fn iter(&self) -> impl Iterator<Item = PasswordAlgorithm> + 'a {
        let (mut wire, items) = match self.0 {
            ListRepr::Wire(bytes) => (Reader::new(bytes), &[][..]),
            ListRepr::Items(items) => (Reader::new(&[]), items),
        };
        std::iter::from_fn(move || PasswordAlgorithm::read(Self::TYPE, &mut wire).ok())
            .chain(items.iter().copied())
    }
}

impl PartialEq for PasswordAlgorithms<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for PasswordAlgorithms<'_> {}

impl<'a> DecodeAttribute<'a> for PasswordAlgorithms<'a> {
    const TYPE: AttributeType = AttributeType::PASSWORD_ALGORITHMS;

    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttributeError> {
        let mut r = Reader::new(value);
        while r.remaining() > 0 {
            PasswordAlgorithm::read(Self::TYPE, &mut r)?;
        }
        Ok(PasswordAlgorithms(ListRepr::Wire(value)))
    }
}

impl EncodeAttribute for PasswordAlgorithms<'_> {
    fn attribute_type(&self) -> AttributeType {
        Self::TYPE
    }

    fn value_len(&self) -> usize {
        match self.0 {
            ListRepr::Wire(bytes) => bytes.len(),
            ListRepr::Items(items) => 4 * items.len(),
        }
    }

    fn encode_value(&self, mut out: &mut [u8], _: &TransactionId) {
        match self.0 {
            ListRepr::Wire(bytes) => out.copy_from_slice(bytes),
            ListRepr::Items(items) => items.iter().for_each(|a| a.write(&mut out)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userhash_matches_rfc_8489_appendix_b() {
        let hash = Userhash::compute(
            "\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}",
            "example.org",
        );
        let expected = [
            0x4a, 0x3c, 0xf3, 0x8f, 0xef, 0x69, 0x92, 0xbd, 0xa9, 0x52, 0xc6, 0x78, 0x04, 0x17,
            0xda, 0x0f, 0x24, 0x81, 0x94, 0x15, 0x56, 0x9e, 0x60, 0xb2, 0x05, 0xc4, 0x6e, 0x41,
            0x40, 0x7f, 0x17, 0x04,
        ];
        assert_eq!(hash, Ok(Userhash(expected)));
    }

    #[test]
    fn password_algorithms_skip_parameters_and_reject_truncation() {
        let tid = TransactionId::from([0; 12]);
        // MD5, then an unknown algorithm 0x0009 with 3 parameter bytes padded to 4, then SHA-256.
        let wire = [0, 1, 0, 0, 0, 9, 0, 3, 7, 7, 7, 0, 0, 2, 0, 0];
        let list = PasswordAlgorithms::decode(&wire, &tid).unwrap();
        let got: Vec<_> = list.iter().collect();
        assert_eq!(
            got,
            [
                PasswordAlgorithm::Md5,
                PasswordAlgorithm::Unknown(9),
                PasswordAlgorithm::Sha256
            ]
        );
        assert_eq!(
            PasswordAlgorithms::decode(&wire[..10], &tid),
            Err(AttributeError::TruncatedList {
                attribute: AttributeType::PASSWORD_ALGORITHMS
            })
        );
        let offered = [
            PasswordAlgorithm::Md5,
            PasswordAlgorithm::Unknown(9),
            PasswordAlgorithm::Sha256,
        ];
        assert_eq!(list, PasswordAlgorithms::new(&offered));
        assert_ne!(list, PasswordAlgorithms::new(&offered[..2]));
    }

    #[test]
    fn sha256_integrity_lengths_follow_section_14_6() {
        let valid: Vec<usize> = (0..40)
            .filter(|&n| MessageIntegritySha256::is_valid_len(n))
            .collect();
        assert_eq!(valid, [16, 20, 24, 28, 32]);
    }
}
