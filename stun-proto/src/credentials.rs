//! Credentials: the OpaqueString profile (RFC 8265 §4.2) that RFC 8489 applies to usernames,
//! realms and passwords, and the short-term and long-term keys of RFC 8489 §9.1.1 and §9.2.2.
//!
//! # OpaqueString, as implemented
//! ASCII strings take a fast path: printable ASCII and space pass unchanged, control characters
//! are rejected. Other strings are mapped as the profile says (non-ASCII spaces to U+0020, then
//! NFC) and rejected if they contain a control character or a default-ignorable code point
//! (e.g. U+00AD SOFT HYPHEN), the FreeformClass rules that matter for passwords. Unassigned code
//! points are not rejected: that would need a Unicode version table the profile pins.
//!
//! RFC 5389 used SASLprep instead, which also applied NFKC; the two differ only for
//! compatibility characters (RFC 5769 §2.4's password `TheMªtrⅨ` is `TheMatrIX` under SASLprep
//! and unchanged under OpaqueString). A caller talking to an RFC 5389 peer with such a
//! password derives the key with [`IntegrityKey::new`] over its own preparation.

use std::borrow::Cow;
use std::sync::OnceLock;

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use md5::Md5;
use sha2::{Digest, Sha256};
use thiserror::Error;
use unicode_normalization::UnicodeNormalization;

use crate::attribute::PasswordAlgorithm;
use crate::hmac_sha1::HmacSha1;

/// Why a credential could not be prepared.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// OpaqueString forbids the empty string.
    #[error("empty string (OpaqueString forbids it)")]
    Empty,
    /// A character the OpaqueString profile disallows.
    #[error("character {0:?} is not allowed by OpaqueString")]
    DisallowedCharacter(char),
    /// A PASSWORD-ALGORITHM this crate cannot derive a key for.
    #[error("unsupported password algorithm {0:#06x}")]
    UnsupportedAlgorithm(u16),
}

/// Applies the OpaqueString profile (RFC 8265 §4.2); borrowed when nothing changes.
pub fn opaque_string(s: &str) -> Result<Cow<'_, str>, CredentialError> {
    if s.is_empty() {
        return Err(CredentialError::Empty);
    }
    if s.is_ascii() {
        return match s.chars().find(char::is_ascii_control) {
            Some(c) => Err(CredentialError::DisallowedCharacter(c)),
            None => Ok(Cow::Borrowed(s)),
        };
    }
    let mapped: String = s
        .chars()
        .map(|c| if is_non_ascii_space(c) { ' ' } else { c })
        .nfc()
        .collect();
    match mapped
        .chars()
        .find(|&c| c.is_control() || is_default_ignorable(c))
    {
        Some(c) => Err(CredentialError::DisallowedCharacter(c)),
        None if mapped == s => Ok(Cow::Borrowed(s)),
        None => Ok(Cow::Owned(mapped)),
    }
}

/// Unicode general category Zs, less U+0020 (RFC 8264 §9.14 / RFC 8265 §4.2.1 step 2).
fn is_non_ascii_space(c: char) -> bool {
    matches!(
        c,
        '\u{00A0}' | '\u{1680}' | '\u{2000}'..='\u{200A}' | '\u{202F}' | '\u{205F}' | '\u{3000}'
    )
}

/// The Default_Ignorable_Code_Point property (Unicode DerivedCoreProperties), which
/// FreeformClass disallows (RFC 8264 §9.13).
fn is_default_ignorable(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}'..='\u{1160}' | '\u{17B4}'..='\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{FFF0}'..='\u{FFF8}' | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
}

/// A MESSAGE-INTEGRITY key with its HMAC-SHA1 states precomputed, so that checking or signing a
/// message costs only the message's own blocks: prepare once per credential, reuse for every
/// message (an ICE agent checks thousands with one key).
///
/// The HMAC-SHA256 state of MESSAGE-INTEGRITY-SHA256 (RFC 8489 §14.6) is built the first time
/// it is used, then kept: short-term ICE credentials almost never meet that attribute (ICE
/// agents sign their checks, RFC 8445 §7.2.2, with MESSAGE-INTEGRITY), so a key does not pay
/// for it up front. Behaviour is the same either way; only the first SHA-256 use costs two
/// more blocks.
///
/// Both lazy parts live on the heap, so the key itself is 72 bytes: an ICE stream keeps two
/// (local and remote) and an SFU one per session.
#[derive(Clone)]
pub struct IntegrityKey {
    sha1: HmacSha1,
    sha256: OnceLock<Box<Hmac<Sha256>>>,
    /// The key as HMAC-SHA256 reads it before padding (RFC 2104 §2: hashed first when longer
    /// than the 64-byte block), kept to build `sha256` from.
    sha256_key: Box<[u8]>,
}

/// The block size of both SHA-1 and SHA-256, the width of an HMAC key (RFC 2104 §2).
const HMAC_BLOCK: usize = 64;

impl IntegrityKey {
    /// A key from raw key bytes, used as they are.
    pub fn new(key: &[u8]) -> Self {
        let sha1 = HmacSha1::new(key);
        let sha256_key = if key.len() > HMAC_BLOCK {
            Box::from(Sha256::digest(key).as_slice())
        } else {
            Box::from(key)
        };
        Self {
            sha1,
            sha256: OnceLock::new(),
            sha256_key,
        }
    }

    /// The short-term credential key: `OpaqueString(password)` (RFC 8489 §9.1.1). ICE uses it
    /// with the remote (or, for responses, local) ICE password.
    pub fn short_term(password: &str) -> Result<Self, CredentialError> {
        Ok(Self::new(opaque_string(password)?.as_bytes()))
    }

    /// The long-term credential key (RFC 8489 §9.2.2):
    /// `H(username ":" OpaqueString(realm) ":" OpaqueString(password))` with H = MD5 or SHA-256.
    /// The username goes through OpaqueString too, as §14.3 requires of senders.
    pub fn long_term(
        username: &str,
        realm: &str,
        password: &str,
        algorithm: PasswordAlgorithm,
    ) -> Result<Self, CredentialError> {
        let parts = [
            opaque_string(username)?,
            opaque_string(realm)?,
            opaque_string(password)?,
        ];
        let joined = parts.join(":");
        match algorithm {
            PasswordAlgorithm::Md5 => Ok(Self::new(&Md5::digest(joined.as_bytes()))),
            PasswordAlgorithm::Sha256 => Ok(Self::new(&Sha256::digest(joined.as_bytes()))),
            PasswordAlgorithm::Unknown(v) => Err(CredentialError::UnsupportedAlgorithm(v)),
        }
    }

    /// Whether the HMAC-SHA256 state has been built (by a first MESSAGE-INTEGRITY-SHA256).
    #[cfg(test)]
    fn has_sha256(&self) -> bool {
        self.sha256.get().is_some()
    }

    /// The MESSAGE-INTEGRITY tag (HMAC-SHA1, RFC 8489 §14.5) over `covered`, the message up to
    /// the attribute, read as if its header's length field held `length` (the length up to
    /// the attribute's end).
    pub(crate) fn sha1_tag(&self, covered: &[u8], length: u16) -> [u8; 20] {
        self.sha1.tag_with_length(covered, length)
    }

    /// The MESSAGE-INTEGRITY-SHA256 tag (HMAC-SHA256, RFC 8489 §14.6, before any truncation),
    /// over the same input as [`IntegrityKey::sha1_tag`].
    pub(crate) fn sha256_tag(&self, covered: &[u8], length: u16) -> [u8; 32] {
        let keyed = self.sha256.get_or_init(|| {
            // unwrap: HMAC takes keys of any length; `new_from_slice` cannot fail for it.
            Box::new(
                <Hmac<Sha256> as KeyInit>::new_from_slice(&self.sha256_key)
                    .expect("HMAC takes any key length"),
            )
        });
        let mut mac = Hmac::<Sha256>::clone(keyed);
        match covered.split_first_chunk::<4>() {
            Some((&[t0, t1, _, _], rest)) => {
                let [l0, l1] = length.to_be_bytes();
                mac.update(&[t0, t1, l0, l1]);
                mac.update(rest);
            }
            None => mac.update(covered),
        }
        mac.finalize().into_bytes().into()
    }
}

impl std::fmt::Debug for IntegrityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IntegrityKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_passes_unchanged_and_borrowed() {
        assert!(matches!(
            opaque_string("VOkJxbRl1RmTxUk/WvJxBt"),
            Ok(Cow::Borrowed(_))
        ));
        assert_eq!(opaque_string("a b").as_deref(), Ok("a b"));
        assert_eq!(
            opaque_string("a\tb"),
            Err(CredentialError::DisallowedCharacter('\t'))
        );
        assert_eq!(opaque_string(""), Err(CredentialError::Empty));
    }

    #[test]
    fn non_ascii_is_space_mapped_and_nfc_normalised() {
        // U+00A0 NO-BREAK SPACE becomes a space; e + combining acute composes to é.
        assert_eq!(opaque_string("a\u{00A0}b").as_deref(), Ok("a b"));
        assert_eq!(opaque_string("e\u{0301}").as_deref(), Ok("\u{00E9}"));
        // Compatibility characters stay (NFC, not NFKC).
        assert_eq!(opaque_string("TheMªtrⅨ").as_deref(), Ok("TheMªtrⅨ"));
        // RFC 8489 B.1's password holds a SOFT HYPHEN, which FreeformClass disallows.
        assert_eq!(
            opaque_string("The\u{00AD}M\u{00AA}tr\u{2168}"),
            Err(CredentialError::DisallowedCharacter('\u{00AD}'))
        );
    }

    #[test]
    fn the_sha256_state_is_built_on_first_use_and_matches_an_eager_one() {
        for password in ["short", &"long".repeat(20)] {
            let key = IntegrityKey::short_term(password).unwrap();
            assert!(
                !key.has_sha256(),
                "a short-term key starts with HMAC-SHA1 only"
            );
            let covered = [7u8; 100];
            let tag = key.sha256_tag(&covered, 0x1234);
            assert!(key.has_sha256());
            let mut eager = <Hmac<Sha256> as KeyInit>::new_from_slice(password.as_bytes()).unwrap();
            eager.update(&[7, 7, 0x12, 0x34]);
            eager.update(&covered[4..]);
            assert_eq!(tag, <[u8; 32]>::from(eager.finalize().into_bytes()));
            assert_eq!(
                key.sha256_tag(&covered, 0x1234),
                tag,
                "the kept state gives the same tag"
            );
        }
    }

    #[test]
    fn unknown_password_algorithms_have_no_key() {
        assert_eq!(
            IntegrityKey::long_term("u", "r", "p", PasswordAlgorithm::Unknown(7)).err(),
            Some(CredentialError::UnsupportedAlgorithm(7))
        );
    }
}
