//! The server side of the long-term credential mechanism (RFC 8489 §9.2), for any STUN
//! usage that needs it (TURN above all): the 401 challenge with REALM and NONCE (§9.2.4),
//! 438 Stale Nonce, the nonce cookie with its security feature bits (§9.2: "obMatJos2" then
//! 24 bits in base64), the PASSWORD-ALGORITHMS bid-down protection (§9.2.4, §9.2.5),
//! USERHASH lookup (§9.2.4, §14.4), and MD5 and SHA-256 keys (§9.2.2).
//!
//! Nonces hold no server state: each is `cookie · features · issue time · MAC`, the MAC an
//! HMAC-SHA256 under a secret drawn from the caller's RNG over the features, the issue time
//! and the client's transport address. A server checks a nonce by recomputing its MAC, so a
//! flood of challenges costs no memory, a nonce works only for the client it was issued to,
//! and it goes stale after [`LongTermConfig::nonce_lifetime`].
//!
//! Order of the checks on a request (RFC 8489 §9.2.4):
//! ```text
//! no MESSAGE-INTEGRITY(-SHA256)                       ─► 401 + REALM, NONCE
//! no USERNAME/USERHASH, REALM or NONCE                ─► 400
//! NONCE not ours, not this client's, or too old       ─► 438 + REALM, new NONCE
//! PASSWORD-ALGORITHMS ≠ ours, or ALGORITHM not in it  ─► 400   (bid-down protection)
//! unknown user, wrong realm, HMAC mismatch            ─► 401 + REALM, NONCE
//! shared-secret username past its expiry              ─► 401 + REALM, NONCE
//! ```
//!
//! A username that is not a static user is tried against the shared secrets
//! ([`SharedSecrets`]: the "TURN REST API" scheme) when any are set.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BufMut;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use rand_core::{CryptoRng, RngCore};
use sha2::Sha256;

use crate::attribute::{
    ErrorCode, Nonce, PasswordAlgorithm, PasswordAlgorithms, Realm, Userhash, Username,
};
use crate::builder::{BuildError, EncodeBuffer, MessageBuilder};
use crate::credentials::{CredentialError, IntegrityKey};
use crate::message::{IntegrityAlgorithm, Message};
use crate::shared_secret::{SharedSecretError, SharedSecrets};

/// The RFC 8489 §9.2 nonce cookie.
pub const NONCE_COOKIE: &str = "obMatJos2";

/// Security feature bit 0 (RFC 8489 §18.1): password algorithms.
const FEATURE_PASSWORD_ALGORITHMS: u32 = 0x80_0000;
/// Security feature bit 1 (RFC 8489 §18.1): username anonymity (USERHASH).
const FEATURE_USERNAME_ANONYMITY: u32 = 0x40_0000;

/// The MAC bytes a nonce carries: 88 bits, checked online only (a guess costs a request)
/// and good for one client address and `nonce_lifetime`.
const NONCE_MAC_LEN: usize = 11;
/// The issue time and the MAC, the nonce's tail (base64, 4 characters per 3 bytes).
const NONCE_TAIL_LEN: usize = 4 + NONCE_MAC_LEN;

/// How the long-term credential mechanism is set up.
#[derive(Clone, Debug)]
pub struct LongTermConfig {
    /// The REALM.
    pub realm: String,
    /// How long a nonce stays valid after it is issued. Default 10 minutes.
    pub nonce_lifetime: Duration,
    /// The password algorithms offered, in order of preference. Non-empty sets the
    /// "password algorithms" security feature and sends PASSWORD-ALGORITHMS; empty is the
    /// RFC 5389 behaviour (MD5 keys, no algorithm negotiation). Default SHA-256, then MD5.
    pub password_algorithms: Vec<PasswordAlgorithm>,
    /// Accept USERHASH instead of USERNAME and say so with the "username anonymity"
    /// feature bit. Default on.
    pub username_anonymity: bool,
}

impl LongTermConfig {
    /// RFC 8489 defaults for `realm`.
    pub fn new(realm: impl Into<String>) -> Self {
        Self {
            realm: realm.into(),
            nonce_lifetime: Duration::from_secs(600),
            password_algorithms: vec![PasswordAlgorithm::Sha256, PasswordAlgorithm::Md5],
            username_anonymity: true,
        }
    }
}

/// A user's keys, derived once when the user is added.
#[derive(Clone, Debug)]
struct UserKeys {
    md5: IntegrityKey,
    sha256: IntegrityKey,
}

/// A request that passed the long-term credential checks.
#[derive(Clone, Debug)]
pub struct Authenticated<'a> {
    /// The user.
    pub username: &'a str,
    /// The key the request was verified with; sign the response with it. Borrowed for a
    /// static user, derived for a shared-secret one.
    pub key: Cow<'a, IntegrityKey>,
    /// The integrity attribute the request used; the response uses the same.
    pub integrity: IntegrityAlgorithm,
}

impl Authenticated<'_> {
    /// Adds MESSAGE-INTEGRITY or MESSAGE-INTEGRITY-SHA256, as the request had, to a response.
    pub fn sign<B: EncodeBuffer>(&self, b: &mut MessageBuilder<B>) -> Result<(), BuildError> {
        match self.integrity {
            IntegrityAlgorithm::Sha1 => b.add_message_integrity(&self.key)?,
            IntegrityAlgorithm::Sha256 => b.add_message_integrity_sha256(&self.key)?,
        };
        Ok(())
    }
}

/// Why a request is refused, which decides the error response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// 401 with REALM and NONCE: no integrity yet (the first request of every client).
    Challenge,
    /// 400: USERNAME/USERHASH, REALM or NONCE missing or unreadable, or a PASSWORD-ALGORITHMS
    /// bid-down attempt.
    BadRequest,
    /// 438 with REALM and a new NONCE: the nonce is not ours, not this client's, or expired.
    StaleNonce,
    /// 401 with REALM and NONCE: unknown user, wrong realm or wrong password.
    WrongCredentials,
    /// 401 with REALM and NONCE: a shared-secret username whose expiry has passed.
    Expired,
}

impl Rejection {
    /// The STUN error code.
    pub const fn code(self) -> u16 {
        match self {
            Rejection::Challenge | Rejection::WrongCredentials | Rejection::Expired => {
                ErrorCode::UNAUTHENTICATED
            }
            Rejection::BadRequest => ErrorCode::BAD_REQUEST,
            Rejection::StaleNonce => ErrorCode::STALE_NONCE,
        }
    }

    /// Whether the error response carries REALM and a NONCE.
    pub const fn is_challenge(self) -> bool {
        !matches!(self, Rejection::BadRequest)
    }
}

/// The long-term credential checks of a STUN server, with stateless nonces.
///
/// Not a state machine: a helper a server machine calls for each request,
/// [`authenticate`](Self::authenticate), then, on a refusal,
/// [`write_rejection`](Self::write_rejection) into its error response, or, on success,
/// [`Authenticated::sign`] on its success response.
#[derive(Clone, Debug)]
pub struct LongTermAuth {
    config: LongTermConfig,
    features: u32,
    secret: Hmac<Sha256>,
    epoch: Instant,
    users: HashMap<String, UserKeys>,
    userhashes: HashMap<[u8; 32], String>,
    shared: SharedSecrets,
}

impl LongTermAuth {
    /// Sets up the mechanism at `now`, drawing the nonce secret from `rng`.
    pub fn new<R: RngCore + CryptoRng>(now: Instant, config: LongTermConfig, rng: &mut R) -> Self {
        let mut secret = [0u8; 32];
        rng.fill_bytes(&mut secret);
        let mut features = 0;
        if !config.password_algorithms.is_empty() {
            features |= FEATURE_PASSWORD_ALGORITHMS;
        }
        if config.username_anonymity {
            features |= FEATURE_USERNAME_ANONYMITY;
        }
        // unwrap: HMAC takes keys of any length.
        let secret = <Hmac<Sha256> as KeyInit>::new_from_slice(&secret).expect("any key length");
        Self {
            config,
            features,
            secret,
            epoch: now,
            users: HashMap::new(),
            userhashes: HashMap::new(),
            shared: SharedSecrets::default(),
        }
    }

    /// Adds (or replaces) a user, deriving their MD5 and SHA-256 keys and USERHASH now.
    pub fn add_user(&mut self, username: &str, password: &str) -> Result<(), CredentialError> {
        let realm = &self.config.realm;
        let keys = UserKeys {
            md5: IntegrityKey::long_term(username, realm, password, PasswordAlgorithm::Md5)?,
            sha256: IntegrityKey::long_term(username, realm, password, PasswordAlgorithm::Sha256)?,
        };
        let hash = Userhash::compute(username, realm)?;
        self.userhashes.insert(hash.0, username.to_owned());
        self.users.insert(username.to_owned(), keys);
        Ok(())
    }

    /// Removes a user; returns whether they existed.
    pub fn remove_user(&mut self, username: &str) -> bool {
        self.userhashes.retain(|_, name| name != username);
        self.users.remove(username).is_some()
    }

    /// Adds a shared secret ([`SharedSecrets::add_secret`]).
    pub fn add_shared_secret(&mut self, secret: &str) -> Result<(), SharedSecretError> {
        self.shared.add_secret(secret)
    }

    /// Forgets every shared secret.
    pub fn clear_shared_secrets(&mut self) {
        self.shared.clear();
    }

    /// The wall clock read `since_epoch` after the Unix epoch at `now`, for the expiry of
    /// shared-secret usernames ([`SharedSecrets::handle_unix_time`]).
    pub fn handle_unix_time(&mut self, now: Instant, since_epoch: Duration) {
        self.shared.handle_unix_time(now, since_epoch);
    }

    /// The realm.
    pub fn realm(&self) -> &str {
        &self.config.realm
    }

    /// A fresh nonce for `client` at `now`.
    pub fn nonce(&self, now: Instant, client: SocketAddr) -> String {
        let issued = self.seconds(now);
        let mut tail = [0u8; NONCE_TAIL_LEN];
        tail[..4].copy_from_slice(&issued.to_be_bytes());
        tail[4..].copy_from_slice(&self.nonce_mac(self.features, issued, client));
        let mut nonce = String::with_capacity(NONCE_COOKIE.len() + 4 + NONCE_TAIL_LEN / 3 * 4);
        nonce.push_str(NONCE_COOKIE);
        push_base64_24(&mut nonce, self.features);
        for chunk in tail.chunks(3) {
            push_base64_24(
                &mut nonce,
                chunk.iter().fold(0, |acc, b| acc << 8 | u32::from(*b)),
            );
        }
        nonce
    }

    /// Checks a request from `client` (RFC 8489 §9.2.4).
    pub fn authenticate<'a>(
        &'a self,
        now: Instant,
        client: SocketAddr,
        request: &Message<'a>,
    ) -> Result<Authenticated<'a>, Rejection> {
        if !request.has_integrity() {
            return Err(Rejection::Challenge);
        }
        let username = request.get::<Username<'_>>().and_then(Result::ok);
        let userhash = request
            .get::<Userhash>()
            .and_then(Result::ok)
            .filter(|_| self.config.username_anonymity);
        let realm = request.get::<Realm<'_>>().and_then(Result::ok);
        let nonce = request.get::<Nonce<'_>>().and_then(Result::ok);
        let (Some(realm), Some(nonce)) = (realm, nonce) else {
            return Err(Rejection::BadRequest);
        };
        let user = match (username, userhash) {
            (Some(u), _) => u.as_str(),
            (None, Some(hash)) => match self.userhashes.get(&hash.0) {
                Some(name) => name.as_str(),
                None => return Err(Rejection::WrongCredentials),
            },
            (None, None) => return Err(Rejection::BadRequest),
        };
        if !self.nonce_is_valid(now, client, nonce.as_str()) {
            return Err(Rejection::StaleNonce);
        }
        let algorithm = self.password_algorithm(request)?;
        if realm.as_str() != self.config.realm {
            return Err(Rejection::WrongCredentials);
        }
        if let Some((username, keys)) = self.users.get_key_value(user) {
            let key = match algorithm {
                PasswordAlgorithm::Sha256 => &keys.sha256,
                _ => &keys.md5,
            };
            let integrity = request
                .verify_integrity(key)
                .map_err(|_| Rejection::WrongCredentials)?;
            return Ok(Authenticated {
                username,
                key: Cow::Borrowed(key),
                integrity,
            });
        }
        let Some(expiry) = SharedSecrets::expiry(user).filter(|_| !self.shared.is_empty()) else {
            return Err(Rejection::WrongCredentials);
        };
        if self.shared.is_expired(now, expiry) {
            return Err(Rejection::Expired);
        }
        for password in self.shared.passwords(user) {
            let Ok(key) = IntegrityKey::long_term(user, &self.config.realm, &password, algorithm)
            else {
                continue;
            };
            if let Ok(integrity) = request.verify_integrity(&key) {
                return Ok(Authenticated {
                    username: user,
                    key: Cow::Owned(key),
                    integrity,
                });
            }
        }
        Err(Rejection::WrongCredentials)
    }

    /// Adds ERROR-CODE (without a reason phrase) and, for a challenge, REALM, a fresh NONCE
    /// and PASSWORD-ALGORITHMS to an error response being built for `client`.
    pub fn write_rejection<B: EncodeBuffer>(
        &self,
        now: Instant,
        client: SocketAddr,
        rejection: Rejection,
        b: &mut MessageBuilder<B>,
    ) -> Result<(), BuildError> {
        // No reason phrase (RFC 8489 §14.8: it is for diagnostics): the answer to an
        // unauthenticated request stays small (docs/hostile-input.md).
        if let Ok(code) = ErrorCode::with_reason(rejection.code(), "") {
            b.add(&code)?;
        }
        if !rejection.is_challenge() {
            return Ok(());
        }
        if let Ok(realm) = Realm::new(&self.config.realm) {
            b.add(&realm)?;
        }
        let nonce = self.nonce(now, client);
        if let Ok(nonce) = Nonce::new(&nonce) {
            b.add(&nonce)?;
        }
        if !self.config.password_algorithms.is_empty() {
            b.add(&PasswordAlgorithms::new(&self.config.password_algorithms))?;
        }
        Ok(())
    }

    /// RFC 8489 §9.2.4's PASSWORD-ALGORITHMS checks: with the feature on, either neither
    /// attribute (MD5) or both, the list exactly ours and the choice in it.
    fn password_algorithm(&self, request: &Message<'_>) -> Result<PasswordAlgorithm, Rejection> {
        let offered = &self.config.password_algorithms;
        let list = request.get::<PasswordAlgorithms<'_>>();
        let chosen = request.get::<PasswordAlgorithm>();
        if offered.is_empty() {
            return Ok(PasswordAlgorithm::Md5);
        }
        match (list, chosen) {
            (None, None) if offered.contains(&PasswordAlgorithm::Md5) => Ok(PasswordAlgorithm::Md5),
            (Some(Ok(list)), Some(Ok(chosen)))
                if list.iter().eq(offered.iter().copied()) && offered.contains(&chosen) =>
            {
                Ok(chosen)
            }
            _ => Err(Rejection::BadRequest),
        }
    }

    /// Whether `nonce` is one we issued to `client` within the nonce lifetime.
    fn nonce_is_valid(&self, now: Instant, client: SocketAddr, nonce: &str) -> bool {
        let Some(rest) = nonce.strip_prefix(NONCE_COOKIE) else {
            return false;
        };
        let (Some(features), Some(encoded)) = (rest.get(..4), rest.get(4..)) else {
            return false;
        };
        let mut expected = String::with_capacity(4);
        push_base64_24(&mut expected, self.features);
        let mut tail = [0u8; NONCE_TAIL_LEN];
        if encoded.len() != NONCE_TAIL_LEN / 3 * 4 {
            return false;
        }
        for (chunk, out) in encoded.as_bytes().chunks(4).zip(tail.chunks_mut(3)) {
            let Some(bits) = read_base64_24(chunk) else {
                return false;
            };
            for (i, byte) in out.iter_mut().enumerate() {
                *byte = (bits >> (16 - 8 * i)) as u8;
            }
        }
        let [a, b, c, d, ref mac_bytes @ ..] = tail;
        let issued = u32::from_be_bytes([a, b, c, d]);
        let computed = self.nonce_mac(self.features, issued, client);
        let now = self.seconds(now);
        let age = now.checked_sub(issued);
        features == expected
            && constant_time_eq(&computed, mac_bytes)
            && age.is_some_and(|age| u64::from(age) <= self.config.nonce_lifetime.as_secs())
    }

    fn nonce_mac(&self, features: u32, issued: u32, client: SocketAddr) -> [u8; NONCE_MAC_LEN] {
        let mut input = [0u8; 4 + 4 + 16 + 2];
        let mut w = &mut input[..];
        w.put_u32(features);
        w.put_u32(issued);
        match client.ip() {
            std::net::IpAddr::V4(ip) => w.put_slice(&ip.to_ipv6_mapped().octets()),
            std::net::IpAddr::V6(ip) => w.put_slice(&ip.octets()),
        }
        w.put_u16(client.port());
        let mut mac = self.secret.clone();
        mac.update(&input);
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; NONCE_MAC_LEN];
        out.copy_from_slice(&full[..NONCE_MAC_LEN]);
        out
    }

    /// Whole seconds since the mechanism was set up.
    fn seconds(&self, now: Instant) -> u32 {
        let secs = now.saturating_duration_since(self.epoch).as_secs();
        u32::try_from(secs).unwrap_or(u32::MAX)
    }
}

/// Appends the 24 low bits of `bits` as four base64 characters (RFC 4648 §4).
fn push_base64_24(out: &mut String, bits: u32) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for shift in [18, 12, 6, 0] {
        let index = ((bits >> shift) & 0x3F) as usize;
        out.push(char::from(ALPHABET[index]));
    }
}

/// Reads four base64 characters (RFC 4648 §4) as 24 bits.
fn read_base64_24(chars: &[u8]) -> Option<u32> {
    if chars.len() != 4 {
        return None;
    }
    chars.iter().try_fold(0u32, |acc, c| {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        Some(acc << 6 | u32::from(value))
    })
}

/// Compares two MACs without an early exit.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};

    use super::*;
    use crate::attribute::{DecodeAttribute, EncodeAttribute};
    use crate::header::{Class, MessageType, Method};
    use crate::test_support::{TestRng, t0, very_early};

    const CLIENT: &str = "198.51.100.7:50000";
    const REALM: &str = "example.org";

    fn client() -> SocketAddr {
        CLIENT.parse().unwrap()
    }

    fn auth(now: Instant) -> LongTermAuth {
        let mut a = LongTermAuth::new(now, LongTermConfig::new(REALM), &mut TestRng::new(9));
        a.add_user("alice", "wonderland").unwrap();
        a
    }

    /// How the client identifies itself.
    enum Who<'a> {
        Name(&'a str),
        Hash(Userhash),
    }

    /// A request as a client builds it after a 401: identity, REALM, NONCE, the algorithm
    /// attributes given, MESSAGE-INTEGRITY(-SHA256) with `key`.
    fn request(
        who: Who<'_>,
        realm: &str,
        nonce: &str,
        extra: &[&dyn EncodeAttribute],
        key: &IntegrityKey,
        sha256: bool,
    ) -> Bytes {
        let mut b = MessageBuilder::new_bytes(
            MessageType::new(Method::ALLOCATE, Class::Request),
            [4; 12].into(),
        );
        match who {
            Who::Name(name) => b.add(&Username::new(name).unwrap()).unwrap(),
            Who::Hash(hash) => b.add(&hash).unwrap(),
        };
        b.add(&Realm::new(realm).unwrap()).unwrap();
        b.add(&Nonce::new(nonce).unwrap()).unwrap();
        for a in extra {
            b.add(*a).unwrap();
        }
        if sha256 {
            b.add_message_integrity_sha256(key).unwrap();
        } else {
            b.add_message_integrity(key).unwrap();
        }
        b.into_bytes()
    }

    fn key(algorithm: PasswordAlgorithm) -> IntegrityKey {
        IntegrityKey::long_term("alice", REALM, "wonderland", algorithm).unwrap()
    }

    fn check(
        a: &LongTermAuth,
        now: Instant,
        bytes: &[u8],
    ) -> Result<IntegrityAlgorithm, Rejection> {
        let m = Message::parse(bytes).unwrap();
        a.authenticate(now, client(), &m).map(|ok| ok.integrity)
    }

    const BOTH: [PasswordAlgorithm; 2] = [PasswordAlgorithm::Sha256, PasswordAlgorithm::Md5];

    #[test]
    fn the_first_request_gets_a_401_with_realm_nonce_cookie_and_algorithms() {
        let now = t0();
        let a = auth(now);
        let bare =
            MessageBuilder::new_bytes(MessageType::BINDING_REQUEST, [1; 12].into()).into_bytes();
        let rejection = check(&a, now, &bare).unwrap_err();
        assert_eq!((rejection, rejection.code()), (Rejection::Challenge, 401));

        let mut b = MessageBuilder::response_to(
            BytesMut::new(),
            &Message::parse(&bare).unwrap(),
            Class::Error,
        )
        .unwrap();
        a.write_rejection(now, client(), rejection, &mut b).unwrap();
        let response = b.into_bytes();
        let m = Message::parse(&response).unwrap();
        let tid = m.transaction_id();
        let get = |t| m.raw(t).unwrap().value;
        assert_eq!(
            ErrorCode::decode(get(ErrorCode::TYPE), &tid)
                .unwrap()
                .code(),
            401
        );
        assert_eq!(
            Realm::decode(get(Realm::TYPE), &tid).unwrap().as_str(),
            REALM
        );
        let nonce = Nonce::decode(get(Nonce::TYPE), &tid).unwrap().as_str();
        // Cookie, then features "wAAA": bits 0 and 1 (password algorithms, anonymity).
        assert!(nonce.starts_with("obMatJos2wAAA"), "{nonce}");
        assert!(nonce.len() <= 127);
        let offered = PasswordAlgorithms::decode(get(PasswordAlgorithms::TYPE), &tid).unwrap();
        assert_eq!(offered, PasswordAlgorithms::new(&BOTH));
        assert!(!m.has_integrity(), "a challenge is not signed");
    }

    #[test]
    fn sha256_and_md5_keys_and_both_integrity_attributes_authenticate() {
        let now = t0();
        let a = auth(now);
        let nonce = a.nonce(now, client());
        let list = PasswordAlgorithms::new(&BOTH);
        let sha = PasswordAlgorithm::Sha256;
        let r = request(
            Who::Name("alice"),
            REALM,
            &nonce,
            &[&list, &sha],
            &key(sha),
            true,
        );
        assert_eq!(check(&a, now, &r), Ok(IntegrityAlgorithm::Sha256));
        // No algorithm attributes at all: MD5, as RFC 5389 clients do.
        let md5 = key(PasswordAlgorithm::Md5);
        let r = request(Who::Name("alice"), REALM, &nonce, &[], &md5, false);
        assert_eq!(check(&a, now, &r), Ok(IntegrityAlgorithm::Sha1));

        // The response is signed with the same key and attribute.
        let m = Message::parse(&r).unwrap();
        let ok = a.authenticate(now, client(), &m).unwrap();
        assert_eq!(ok.username, "alice");
        let mut b = MessageBuilder::response_to(BytesMut::new(), &m, Class::Success).unwrap();
        ok.sign(&mut b).unwrap();
        let response = b.into_bytes();
        let signed = Message::parse(&response).unwrap();
        assert_eq!(signed.verify_integrity(&md5), Ok(IntegrityAlgorithm::Sha1));
    }

    #[test]
    fn password_algorithms_bid_down_attempts_get_400() {
        let now = t0();
        let a = auth(now);
        let nonce = a.nonce(now, client());
        let md5 = PasswordAlgorithm::Md5;
        let k = key(md5);
        let only_md5 = [md5];
        let stripped = PasswordAlgorithms::new(&only_md5);
        let reordered = [PasswordAlgorithm::Md5, PasswordAlgorithm::Sha256];
        let reordered = PasswordAlgorithms::new(&reordered);
        let full = PasswordAlgorithms::new(&BOTH);
        let unknown = PasswordAlgorithm::Unknown(9);
        let cases: [&[&dyn EncodeAttribute]; 5] = [
            &[&stripped, &md5],  // an attacker removed SHA-256 from the list
            &[&reordered, &md5], // or reordered it
            &[&full, &unknown],  // a choice not offered
            &[&full],            // the list without a choice
            &[&md5],             // a choice without the list
        ];
        for extra in cases {
            let r = request(Who::Name("alice"), REALM, &nonce, extra, &k, false);
            assert_eq!(check(&a, now, &r), Err(Rejection::BadRequest));
        }
        let r = request(Who::Name("alice"), REALM, &nonce, &[&full, &md5], &k, false);
        assert_eq!(check(&a, now, &r), Ok(IntegrityAlgorithm::Sha1));
    }

    #[test]
    fn stale_forged_and_foreign_nonces_get_438() {
        let now = t0();
        let a = auth(now);
        let k = key(PasswordAlgorithm::Md5);
        let nonce = a.nonce(now, client());
        let at = |n: &str, when| {
            check(
                &a,
                when,
                &request(Who::Name("alice"), REALM, n, &[], &k, false),
            )
        };
        assert!(at(&nonce, now + Duration::from_secs(600)).is_ok());
        assert_eq!(
            at(&nonce, now + Duration::from_secs(601)),
            Err(Rejection::StaleNonce)
        );
        let mut forged = nonce.clone().into_bytes();
        let last = forged.len() - 1;
        forged[last] = if forged[last] == b'0' { b'1' } else { b'0' };
        let forged = String::from_utf8(forged).unwrap();
        assert_eq!(at(&forged, now), Err(Rejection::StaleNonce));
        assert_eq!(at("obMatJos2wAAAnonsense", now), Err(Rejection::StaleNonce));
        assert_eq!(at("plain-rfc5389-nonce", now), Err(Rejection::StaleNonce));
        let other = a.nonce(now, "198.51.100.7:50001".parse().unwrap());
        assert_eq!(
            at(&other, now),
            Err(Rejection::StaleNonce),
            "another client's nonce"
        );

        // The 438 carries a fresh nonce that works.
        let stale = request(Who::Name("alice"), REALM, &forged, &[], &k, false);
        let m = Message::parse(&stale).unwrap();
        let mut b = MessageBuilder::response_to(BytesMut::new(), &m, Class::Error).unwrap();
        let later = now + Duration::from_secs(900);
        a.write_rejection(later, client(), Rejection::StaleNonce, &mut b)
            .unwrap();
        let response = b.into_bytes();
        let m = Message::parse(&response).unwrap();
        assert_eq!(m.get::<ErrorCode<'_>>().unwrap().unwrap().code(), 438);
        let fresh = m.get::<Nonce<'_>>().unwrap().unwrap();
        assert!(at(fresh.as_str(), later).is_ok());
    }

    #[test]
    fn wrong_users_realms_and_passwords_get_401_missing_attributes_400() {
        let now = t0();
        let a = auth(now);
        let nonce = a.nonce(now, client());
        let k = key(PasswordAlgorithm::Md5);
        let wrong =
            IntegrityKey::long_term("alice", REALM, "guess", PasswordAlgorithm::Md5).unwrap();
        let r = request(Who::Name("bob"), REALM, &nonce, &[], &k, false);
        assert_eq!(check(&a, now, &r), Err(Rejection::WrongCredentials));
        let r = request(Who::Name("alice"), "other.org", &nonce, &[], &k, false);
        assert_eq!(check(&a, now, &r), Err(Rejection::WrongCredentials));
        let r = request(Who::Name("alice"), REALM, &nonce, &[], &wrong, false);
        assert_eq!(check(&a, now, &r), Err(Rejection::WrongCredentials));
        // MESSAGE-INTEGRITY without REALM and NONCE.
        let mut b = MessageBuilder::new_bytes(MessageType::BINDING_REQUEST, [1; 12].into());
        b.add(&Username::new("alice").unwrap()).unwrap();
        b.add_message_integrity(&k).unwrap();
        assert_eq!(check(&a, now, &b.into_bytes()), Err(Rejection::BadRequest));
        assert_eq!(Rejection::BadRequest.code(), 400);
        assert!(!Rejection::BadRequest.is_challenge());
    }

    #[test]
    fn userhash_finds_the_user_when_anonymity_is_on() {
        let now = t0();
        let mut a = auth(now);
        let nonce = a.nonce(now, client());
        let k = key(PasswordAlgorithm::Md5);
        let hash = Userhash::compute("alice", REALM).unwrap();
        let r = request(Who::Hash(hash), REALM, &nonce, &[], &k, false);
        assert_eq!(check(&a, now, &r), Ok(IntegrityAlgorithm::Sha1));
        let stranger = Userhash::compute("mallory", REALM).unwrap();
        let r2 = request(Who::Hash(stranger), REALM, &nonce, &[], &k, false);
        assert_eq!(check(&a, now, &r2), Err(Rejection::WrongCredentials));
        assert!(a.remove_user("alice"));
        assert_eq!(check(&a, now, &r), Err(Rejection::WrongCredentials));

        // With anonymity off, a USERHASH is no identity at all, and the feature bit is clear.
        let mut config = LongTermConfig::new(REALM);
        config.username_anonymity = false;
        let mut plain = LongTermAuth::new(now, config, &mut TestRng::new(1));
        plain.add_user("alice", "wonderland").unwrap();
        let nonce = plain.nonce(now, client());
        assert!(nonce.starts_with("obMatJos2gAAA"), "{nonce}");
        let r = request(Who::Hash(hash), REALM, &nonce, &[], &k, false);
        assert_eq!(check(&plain, now, &r), Err(Rejection::BadRequest));
    }

    #[test]
    fn rfc_5389_mode_offers_no_algorithms() {
        let now = t0();
        let mut config = LongTermConfig::new(REALM);
        config.password_algorithms.clear();
        config.username_anonymity = false;
        let mut a = LongTermAuth::new(now, config, &mut TestRng::new(2));
        a.add_user("alice", "wonderland").unwrap();
        let nonce = a.nonce(now, client());
        assert!(nonce.starts_with("obMatJos2AAAA"), "{nonce}");
        let r = request(
            Who::Name("alice"),
            REALM,
            &nonce,
            &[],
            &key(PasswordAlgorithm::Md5),
            false,
        );
        assert_eq!(check(&a, now, &r), Ok(IntegrityAlgorithm::Sha1));
    }

    #[test]
    fn nonces_depend_on_the_secret_and_very_early_timestamps_are_harmless() {
        let start = very_early();
        let a = auth(start);
        let b = LongTermAuth::new(start, LongTermConfig::new(REALM), &mut TestRng::new(10));
        assert_ne!(a.nonce(start, client()), b.nonce(start, client()));
        let k = key(PasswordAlgorithm::Md5);
        let nonce = a.nonce(start, client());
        let r = request(Who::Name("alice"), REALM, &nonce, &[], &k, false);
        assert!(check(&a, start, &r).is_ok());
        // A `now` before the helper's creation (a caller's clock mix-up) is not a panic: it
        // counts as the creation instant.
        let later = auth(t0());
        let nonce = later.nonce(start, client());
        let r = request(Who::Name("alice"), REALM, &nonce, &[], &k, false);
        assert!(check(&later, start, &r).is_ok());
    }
}
