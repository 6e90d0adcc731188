//! DTLS 1.3 key shares (RFC 8446 §4.2.8, §7.4): the ECDHE groups and the hybrid
//! X25519MLKEM768 (draft-ietf-tls-ecdhe-mlkem §3, code point 0x11EC) behind one shape.
//!
//! ```text
//! client: OfferedShare::generate → key_exchange in ClientHello.key_share
//! server: respond(client key_exchange) → (its key_exchange in ServerHello, shared secret)
//! client: OfferedShare::complete(server key_exchange) → the same shared secret
//! ```
//!
//! X25519MLKEM768 concatenates, ML-KEM first: the client's share is the ML-KEM-768
//! encapsulation key (1184 bytes) ‖ an X25519 public key (32), the server's the ML-KEM
//! ciphertext (1088) ‖ its X25519 public key (32), and the shared secret the ML-KEM secret
//! (32) ‖ the X25519 secret (32). A client share is accepted only if its encapsulation key
//! passes FIPS 203 §7.2's modulus check (every coefficient below q), whatever the provider.
//!
//! Randomness comes from the caller's RNG: ECDHE scalars, the ML-KEM seed `d ‖ z` and the
//! encapsulation randomness `m`. The RustCrypto provider derives everything from them; AWS-LC
//! generates ML-KEM keys and encapsulates with its own entropy (`aws-lc-rs` takes no seed),
//! so its hybrid shares are not reproducible.

use crate::cipher_suite::NamedGroup;
use crate::crypto::{
    self, CryptoProvider, EcdhKey, KemDecapsulationKey, ML_KEM_768_CIPHERTEXT_LEN,
    ML_KEM_768_ENCAPSULATION_KEY_LEN, ML_KEM_SHARED_SECRET_LEN,
};
use crate::error::CryptoError;

/// An X25519 public key or shared secret.
const X25519_LEN: usize = 32;
/// An uncompressed P-256 point (RFC 8446 §4.2.8.2: the only form allowed).
const P256_POINT_LEN: usize = 65;
/// The longest shared secret: ML-KEM's and X25519's.
pub const MAX_SHARED_SECRET_LEN: usize = ML_KEM_SHARED_SECRET_LEN + X25519_LEN;
/// ML-KEM's modulus q (FIPS 203 §2.4).
const ML_KEM_Q: u16 = 3329;
/// The encoded polynomial vector of an ML-KEM-768 encapsulation key (3 × 384 bytes; the 32
/// bytes after it are the seed ρ).
const ML_KEM_768_T_LEN: usize = 3 * 384;

/// The secret a key exchange produced, held inline.
#[derive(Clone, PartialEq, Eq)]
pub struct SharedSecret {
    bytes: [u8; MAX_SHARED_SECRET_LEN],
    len: usize,
}

impl SharedSecret {
    fn from_parts(parts: &[&[u8]]) -> Result<Self, CryptoError> {
        let mut bytes = [0u8; MAX_SHARED_SECRET_LEN];
        let mut len = 0;
        for part in parts {
            let slot = bytes
                .get_mut(len..len + part.len())
                .ok_or(CryptoError::InvalidPublicKey)?;
            slot.copy_from_slice(part);
            len += part.len();
        }
        Ok(Self { bytes, len })
    }

    /// The secret, the (EC)DHE input of the key schedule (RFC 8446 §7.1).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl std::fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedSecret({} bytes)", self.len)
    }
}

/// The client's private half of one offered key share.
pub struct OfferedShare {
    group: NamedGroup,
    private: Private,
}

enum Private {
    Ecdh(Box<dyn EcdhKey>),
    Hybrid {
        kem: Box<dyn KemDecapsulationKey>,
        x25519: Box<dyn EcdhKey>,
    },
}

impl OfferedShare {
    /// A fresh share for `group`, its randomness drawn from `rng`.
    pub fn generate(
        provider: &dyn CryptoProvider,
        group: NamedGroup,
        rng: &mut dyn rand_core::CryptoRng,
    ) -> Result<Self, CryptoError> {
        let private = match group {
            NamedGroup::X25519MlKem768 => {
                let mut seed = [0u8; 64];
                rng.fill_bytes(&mut seed);
                Private::Hybrid {
                    kem: provider.ml_kem_768_key(&seed)?,
                    x25519: crypto::generate_ecdh_key(provider, NamedGroup::X25519, rng)?,
                }
            }
            ecdhe => Private::Ecdh(crypto::generate_ecdh_key(provider, ecdhe, rng)?),
        };
        Ok(Self { group, private })
    }

    /// The group.
    pub fn group(&self) -> NamedGroup {
        self.group
    }

    /// Appends the share's `key_exchange` bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match &self.private {
            Private::Ecdh(key) => out.extend_from_slice(key.public_key()),
            Private::Hybrid { kem, x25519 } => {
                out.extend_from_slice(kem.encapsulation_key());
                out.extend_from_slice(x25519.public_key());
            }
        }
    }

    /// The shared secret with the server's `key_exchange`.
    pub fn complete(&self, server_share: &[u8]) -> Result<SharedSecret, CryptoError> {
        match &self.private {
            Private::Ecdh(key) => {
                check_ecdhe_share(self.group, server_share)?;
                SharedSecret::from_parts(&[&key.agree(server_share)?])
            }
            Private::Hybrid { kem, x25519 } => {
                if server_share.len() != ML_KEM_768_CIPHERTEXT_LEN + X25519_LEN {
                    return Err(CryptoError::InvalidPublicKey);
                }
                let (ciphertext, x25519_share) = server_share.split_at(ML_KEM_768_CIPHERTEXT_LEN);
                let kem_secret = kem.decapsulate(ciphertext)?;
                let ecdh_secret = x25519.agree(x25519_share)?;
                SharedSecret::from_parts(&[&kem_secret, &ecdh_secret])
            }
        }
    }
}

impl std::fmt::Debug for OfferedShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OfferedShare({:?})", self.group)
    }
}

/// The server's side: its `key_exchange` for the client's `client_share` of `group`, and the
/// shared secret.
pub fn respond(
    provider: &dyn CryptoProvider,
    group: NamedGroup,
    client_share: &[u8],
    rng: &mut dyn rand_core::CryptoRng,
) -> Result<(Vec<u8>, SharedSecret), CryptoError> {
    match group {
        NamedGroup::X25519MlKem768 => {
            if client_share.len() != ML_KEM_768_ENCAPSULATION_KEY_LEN + X25519_LEN {
                return Err(CryptoError::InvalidPublicKey);
            }
            let (encapsulation_key, x25519_share) =
                client_share.split_at(ML_KEM_768_ENCAPSULATION_KEY_LEN);
            if !ml_kem_768_key_is_reduced(encapsulation_key) {
                return Err(CryptoError::InvalidPublicKey);
            }
            let mut m = [0u8; 32];
            rng.fill_bytes(&mut m);
            let encapsulated = provider.ml_kem_768_encapsulate(encapsulation_key, &m)?;
            let x25519 = crypto::generate_ecdh_key(provider, NamedGroup::X25519, rng)?;
            let ecdh_secret = x25519.agree(x25519_share)?;
            let mut share = encapsulated.ciphertext;
            share.extend_from_slice(x25519.public_key());
            let secret = SharedSecret::from_parts(&[&encapsulated.shared_secret, &ecdh_secret])?;
            Ok((share, secret))
        }
        ecdhe => {
            check_ecdhe_share(ecdhe, client_share)?;
            let key = crypto::generate_ecdh_key(provider, ecdhe, rng)?;
            let secret = SharedSecret::from_parts(&[&key.agree(client_share)?])?;
            Ok((key.public_key().to_vec(), secret))
        }
    }
}

/// RFC 8446 §4.2.8.2: P-256 shares are uncompressed points; X25519 shares 32 bytes.
fn check_ecdhe_share(group: NamedGroup, share: &[u8]) -> Result<(), CryptoError> {
    let ok = match group {
        NamedGroup::Secp256r1 => share.len() == P256_POINT_LEN && share.first() == Some(&4),
        NamedGroup::X25519 => share.len() == X25519_LEN,
        NamedGroup::X25519MlKem768 => false,
    };
    if ok {
        Ok(())
    } else {
        Err(CryptoError::InvalidPublicKey)
    }
}

/// FIPS 203 §7.2 input check: every 12-bit coefficient of the encoded vector is below q.
fn ml_kem_768_key_is_reduced(encapsulation_key: &[u8]) -> bool {
    encapsulation_key.get(..ML_KEM_768_T_LEN).is_some_and(|t| {
        t.chunks_exact(3).all(|c| {
            let (b0, b1, b2) = (u16::from(c[0]), u16::from(c[1]), u16::from(c[2]));
            let first = b0 | ((b1 & 0x0f) << 8);
            let second = (b1 >> 4) | (b2 << 4);
            first < ML_KEM_Q && second < ML_KEM_Q
        })
    })
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;
    use crate::crypto::providers;

    const GROUPS: [NamedGroup; 3] = [
        NamedGroup::X25519MlKem768,
        NamedGroup::X25519,
        NamedGroup::Secp256r1,
    ];

    #[test]
    fn both_sides_derive_the_same_secret_across_providers() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        for client in providers() {
            for server in providers() {
                for group in GROUPS {
                    let offer = OfferedShare::generate(client, group, &mut rng).unwrap();
                    let mut share = Vec::new();
                    offer.encode(&mut share);
                    let (answer, server_secret) = respond(server, group, &share, &mut rng).unwrap();
                    let client_secret = offer.complete(&answer).unwrap();
                    assert_eq!(client_secret, server_secret, "{group:?}");
                    let (share_len, answer_len, secret_len) = match group {
                        NamedGroup::X25519MlKem768 => (1216, 1120, 64),
                        NamedGroup::X25519 => (32, 32, 32),
                        NamedGroup::Secp256r1 => (65, 65, 32),
                    };
                    assert_eq!(
                        (share.len(), answer.len(), client_secret.as_bytes().len()),
                        (share_len, answer_len, secret_len),
                        "{} -> {} {group:?}",
                        client.name(),
                        server.name()
                    );
                }
            }
        }
    }

    #[test]
    fn the_hybrid_secret_is_ml_kem_then_x25519() {
        let p = providers()[0];
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let offer = OfferedShare::generate(p, NamedGroup::X25519MlKem768, &mut rng).unwrap();
        let mut share = Vec::new();
        offer.encode(&mut share);
        let (answer, secret) = respond(p, NamedGroup::X25519MlKem768, &share, &mut rng).unwrap();
        let Private::Hybrid { kem, x25519 } = &offer.private else {
            panic!("not hybrid");
        };
        assert_eq!(&share[..1184], kem.encapsulation_key());
        assert_eq!(&share[1184..], x25519.public_key());
        let kem_secret = kem.decapsulate(&answer[..1088]).unwrap();
        let ecdh_secret = x25519.agree(&answer[1088..]).unwrap();
        assert_eq!(&secret.as_bytes()[..32], &kem_secret[..]);
        assert_eq!(&secret.as_bytes()[32..], &ecdh_secret[..]);
    }

    #[test]
    fn malformed_shares_are_refused() {
        let p = providers()[0];
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        for group in GROUPS {
            let offer = OfferedShare::generate(p, group, &mut rng).unwrap();
            let mut share = Vec::new();
            offer.encode(&mut share);
            for bad in [&share[1..], &[share.clone(), vec![0]].concat()[..], &[]] {
                assert_eq!(
                    respond(p, group, bad, &mut rng).unwrap_err(),
                    CryptoError::InvalidPublicKey,
                    "{group:?} share of {} bytes",
                    bad.len()
                );
                assert!(offer.complete(bad).is_err(), "{group:?}");
            }
        }
        // A compressed P-256 point is a valid point but not allowed in TLS 1.3.
        let offer = OfferedShare::generate(p, NamedGroup::Secp256r1, &mut rng).unwrap();
        let mut share = Vec::new();
        offer.encode(&mut share);
        let mut compressed = vec![2 + (share[64] & 1)];
        compressed.extend_from_slice(&share[1..33]);
        assert!(respond(p, NamedGroup::Secp256r1, &compressed, &mut rng).is_err());
        // An encapsulation key with a coefficient equal to q fails the modulus check.
        let offer = OfferedShare::generate(p, NamedGroup::X25519MlKem768, &mut rng).unwrap();
        let mut share = Vec::new();
        offer.encode(&mut share);
        share[0] = 0x01; // first coefficient = 0xd01 = 3329 = q
        share[1] = (share[1] & 0xf0) | 0x0d;
        assert!(!ml_kem_768_key_is_reduced(&share[..1184]));
        assert_eq!(
            respond(p, NamedGroup::X25519MlKem768, &share, &mut rng).unwrap_err(),
            CryptoError::InvalidPublicKey
        );
    }

    #[test]
    fn rustcrypto_shares_are_reproducible_from_the_seed() {
        let p = providers()[0];
        let share = |seed| {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let offer = OfferedShare::generate(p, NamedGroup::X25519MlKem768, &mut rng).unwrap();
            let mut out = Vec::new();
            offer.encode(&mut out);
            let (answer, secret) = respond(p, NamedGroup::X25519MlKem768, &out, &mut rng).unwrap();
            (out, answer, secret)
        };
        assert_eq!(share(7), share(7));
        assert_ne!(share(7).0, share(8).0);
    }

    /// The X25519MLKEM768 share in Chromium 156's captured ClientHello.
    fn chromium_hybrid_share() -> Vec<u8> {
        let body = crate::handshake::hello::tests::chromium156_client_hello_body();
        let hello = crate::handshake::hello::ClientHello::parse(&body).unwrap();
        match hello.extensions.key_share {
            Some(crate::extensions::KeyShare::Offered(shares)) => shares
                .into_iter()
                .find(|s| s.group == NamedGroup::X25519MlKem768.id())
                .map(|s| s.key_exchange)
                .unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn chromium_s_hybrid_share_is_answered_by_both_providers() {
        let share = chromium_hybrid_share();
        assert_eq!(share.len(), 1216);
        assert!(ml_kem_768_key_is_reduced(&share[..1184]));
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        for p in providers() {
            let (answer, secret) = respond(p, NamedGroup::X25519MlKem768, &share, &mut rng)
                .unwrap_or_else(|e| panic!("{}: {e}", p.name()));
            assert_eq!(answer.len(), 1120);
            assert_eq!(secret.as_bytes().len(), 64);
        }
    }
}
