//! Text attributes: USERNAME (RFC 8489 §14.3), REALM (§14.9), NONCE (§14.10), SOFTWARE
//! (§14.14) and ALTERNATE-DOMAIN (§14.16). Each is UTF-8 with a byte limit and, for REALM,
//! NONCE and SOFTWARE, fewer than 128 characters.
//!
//! USERNAME's limit is RFC 5389's (under 513 bytes) rather than RFC 8489's (under 509), so that
//! names from older peers still parse; RFC 8489 senders stay well inside it.

use bytes::BufMut;

use super::{AttributeError, AttributeType, DecodeAttribute, encode_with};
use crate::header::TransactionId;

fn validate(
    attribute: AttributeType,
    value: &[u8],
    max_bytes: usize,
    max_chars: Option<usize>,
) -> Result<&str, AttributeError> {
    if value.len() > max_bytes {
        return Err(AttributeError::BadLength {
            attribute,
            len: value.len(),
            min: 0,
            max: max_bytes,
        });
    }
    let text = std::str::from_utf8(value).map_err(|_| AttributeError::InvalidUtf8 { attribute })?;
    if let Some(max) = max_chars {
        let count = text.chars().count();
        if count > max {
            return Err(AttributeError::TooManyCharacters {
                attribute,
                count,
                max,
            });
        }
    }
    Ok(text)
}

macro_rules! text_attributes {
    ($($(#[$doc:meta])* $name:ident = $ty:ident, bytes $max_bytes:literal, chars $max_chars:expr;)*) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
        pub struct $name<'a>(&'a str);

        impl<'a> $name<'a> {
            /// The attribute from text, checked against the RFC's length limits.
            pub fn new(text: &'a str) -> Result<Self, AttributeError> {
                validate(AttributeType::$ty, text.as_bytes(), $max_bytes, $max_chars).map($name)
            }

            /// The text.
            pub const fn as_str(&self) -> &'a str {
                self.0
            }
        }

        impl<'a> DecodeAttribute<'a> for $name<'a> {
            const TYPE: AttributeType = AttributeType::$ty;

            fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttributeError> {
                validate(Self::TYPE, value, $max_bytes, $max_chars).map($name)
            }
        }

        encode_with!($name<'_>, |this, out, tid| len = this.0.len(); {
            let mut out = out;
            out.put_slice(this.0.as_bytes())
        });
    )*};
}

text_attributes! {
    /// USERNAME: the user (long-term) or `remote-ufrag:local-ufrag` (ICE short-term).
    Username = USERNAME, bytes 512, chars None;
    /// REALM: the long-term credential realm.
    Realm = REALM, bytes 763, chars Some(127);
    /// NONCE: the server's nonce, possibly starting with the RFC 8489 §9.2 nonce cookie.
    Nonce = NONCE, bytes 763, chars Some(127);
    /// SOFTWARE: a description of the sending agent.
    Software = SOFTWARE, bytes 763, chars Some(127);
    /// ALTERNATE-DOMAIN: the domain to check the ALTERNATE-SERVER's certificate against.
    AlternateDomain = ALTERNATE_DOMAIN, bytes 255, chars None;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_enforced_on_both_sides() {
        let tid = TransactionId::from([0; 12]);
        assert_eq!(
            Software::new("STUN test client").map(|s| s.as_str()),
            Ok("STUN test client")
        );
        let long = "é".repeat(128);
        assert_eq!(
            Software::new(&long),
            Err(AttributeError::TooManyCharacters {
                attribute: AttributeType::SOFTWARE,
                count: 128,
                max: 127
            })
        );
        assert_eq!(
            Realm::decode(long.as_bytes(), &tid),
            Err(AttributeError::TooManyCharacters {
                attribute: AttributeType::REALM,
                count: 128,
                max: 127
            })
        );
        assert!(matches!(
            Username::decode(&[b'a'; 513], &tid),
            Err(AttributeError::BadLength {
                len: 513,
                max: 512,
                ..
            })
        ));
        assert_eq!(
            Nonce::decode(&[0xff, 0xfe], &tid),
            Err(AttributeError::InvalidUtf8 {
                attribute: AttributeType::NONCE
            })
        );
    }
}
