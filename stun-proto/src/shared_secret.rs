//! Short-lived long-term credentials derived from a secret the TURN server shares with the
//! service that hands them out: the "TURN REST API" scheme
//! (draft-uberti-behave-turn-rest-00 §2.2), which coturn calls `use-auth-secret` /
//! `static-auth-secret` and WebRTC deployments use to give each call its own credentials.
//!
//! - USERNAME is `<expiry>:<user>` (or just `<expiry>`), the expiry a Unix time in seconds;
//! - the password is `base64(HMAC-SHA1(secret, USERNAME))` (RFC 4648 §4 with padding);
//! - the long-term key follows from it as for any user (RFC 8489 §9.2.2).
//!
//! Several secrets may be live at once so that a secret can be rotated: the web service
//! signs with the new one while the servers still accept the old. A username whose expiry has
//! passed is refused with 401 (as a wrong password is), whatever its signature.
//!
//! The Unix time is an input ([`SharedSecrets::handle_unix_time`]): the caller reads the
//! wall clock and says which monotonic instant it paired it with; later instants count
//! from there. Until it is given, every shared-secret username counts as expired.

use std::time::{Duration, Instant};

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use thiserror::Error;

/// Why a secret was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SharedSecretError {
    /// An empty secret would sign every username for anyone.
    #[error("empty shared secret")]
    Empty,
    /// More than [`MAX_SECRETS`] secrets.
    #[error("more than {MAX_SECRETS} shared secrets")]
    TooMany,
}

/// The most secrets live at once: each costs an HMAC and a key derivation per failed
/// request.
pub const MAX_SECRETS: usize = 8;

/// The shared secrets and the Unix clock of a server.
#[derive(Clone, Debug, Default)]
pub struct SharedSecrets {
    secrets: Vec<Hmac<Sha1>>,
    /// A monotonic instant and the Unix time (since the epoch) it stood for.
    clock: Option<(Instant, Duration)>,
}

impl SharedSecrets {
    /// Adds a secret (configuration only); the newest is tried first.
    pub fn add_secret(&mut self, secret: &str) -> Result<(), SharedSecretError> {
        if secret.is_empty() {
            return Err(SharedSecretError::Empty);
        }
        if self.secrets.len() >= MAX_SECRETS {
            return Err(SharedSecretError::TooMany);
        }
        // unwrap: HMAC takes keys of any length.
        let mac = <Hmac<Sha1> as KeyInit>::new_from_slice(secret.as_bytes()).expect("any length");
        self.secrets.insert(0, mac);
        Ok(())
    }

    /// Forgets every secret (to replace them on a rotation).
    pub fn clear(&mut self) {
        self.secrets.clear();
    }

    /// Whether any secret is set.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// The wall clock read `since_epoch` after the Unix epoch at the monotonic `now`.
    pub fn handle_unix_time(&mut self, now: Instant, since_epoch: Duration) {
        self.clock = Some((now, since_epoch));
    }

    /// The Unix time at `now`, if [`handle_unix_time`](Self::handle_unix_time) was called.
    pub fn unix_time(&self, now: Instant) -> Option<Duration> {
        let (at, unix) = self.clock?;
        Some(match now.checked_duration_since(at) {
            Some(later) => unix.saturating_add(later),
            None => unix.saturating_sub(at.saturating_duration_since(now)),
        })
    }

    /// The expiry a shared-secret username carries: the digits before the first `:`, or
    /// the whole username; `None` if that is not a number of seconds.
    pub fn expiry(username: &str) -> Option<u64> {
        let digits = username.split_once(':').map_or(username, |(e, _)| e);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    }

    /// Whether `username`'s expiry has passed at `now` (or the Unix time is unknown).
    pub fn is_expired(&self, now: Instant, expiry: u64) -> bool {
        self.unix_time(now)
            .is_none_or(|unix| Duration::from_secs(expiry) < unix)
    }

    /// The password each secret gives `username`, newest secret first.
    pub fn passwords<'a>(&'a self, username: &'a str) -> impl Iterator<Item = String> + 'a {
        self.secrets.iter().map(move |secret| {
            let mut mac = secret.clone();
            mac.update(username.as_bytes());
            base64(&mac.finalize().into_bytes())
        })
    }
}

/// Standard base64 with padding (RFC 4648 §4).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let bits = chunk
            .iter()
            .chain(std::iter::repeat(&0))
            .take(3)
            .fold(0u32, |acc, b| acc << 8 | u32::from(*b));
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                let index = ((bits >> shift) & 0x3F) as usize;
                out.push(char::from(ALPHABET.get(index).copied().unwrap_or(b'=')));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_base64_of_hmac_sha1_newest_secret_first() {
        // Vectors from Python's hmac and base64 modules.
        let mut secrets = SharedSecrets::default();
        secrets.add_secret("south").unwrap();
        secrets.add_secret("north").unwrap();
        let passwords: Vec<String> = secrets.passwords("1700000000:alice").collect();
        assert_eq!(
            passwords,
            [
                "Cd/49soE35ICqcJF/bCTn8Z4OyE=",
                "FJeNoC0yJtNekwCa5JT/sW/1Ls4="
            ]
        );
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn secrets_are_bounded_and_never_empty() {
        let mut secrets = SharedSecrets::default();
        assert_eq!(secrets.add_secret(""), Err(SharedSecretError::Empty));
        for i in 0..MAX_SECRETS {
            secrets.add_secret(&i.to_string()).unwrap();
        }
        assert_eq!(secrets.add_secret("x"), Err(SharedSecretError::TooMany));
        secrets.clear();
        assert!(secrets.is_empty());
    }

    #[test]
    fn expiry_is_read_from_the_username() {
        assert_eq!(
            SharedSecrets::expiry("1700000000:alice"),
            Some(1_700_000_000)
        );
        assert_eq!(SharedSecrets::expiry("1700000000"), Some(1_700_000_000));
        assert_eq!(SharedSecrets::expiry("1700000000:a:b"), Some(1_700_000_000));
        for bad in [
            "alice",
            ":alice",
            "+17:alice",
            "-1:x",
            "99999999999999999999999:x",
            "",
        ] {
            assert_eq!(SharedSecrets::expiry(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_unix_clock_is_an_input_and_unknown_time_expires_everything() {
        let t0 = crate::test_support::t0();
        let mut secrets = SharedSecrets::default();
        assert!(secrets.is_expired(t0, u64::MAX));
        secrets.handle_unix_time(t0, Duration::from_secs(1000));
        assert!(!secrets.is_expired(t0, 1000));
        assert!(secrets.is_expired(t0 + Duration::from_secs(2), 1001));
        assert!(!secrets.is_expired(t0 + Duration::from_secs(1), 1001));
        // An instant before the one the clock was given at counts backwards, saturating.
        let early = crate::time::saturating_sub(t0, Duration::from_secs(5000));
        assert!(secrets.unix_time(early) <= Some(Duration::from_secs(1000)));
    }
}
