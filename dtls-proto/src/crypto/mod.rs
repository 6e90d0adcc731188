//! The crypto provider boundary.
//!
//! Every primitive the handshake and the record layer use goes through [`CryptoProvider`]; the
//! protocol code never names a crypto crate. Two providers ship:
//!
//! - [`RustCrypto`] (always available): pure Rust, `p256`, `x25519-dalek`, `aes-gcm`,
//!   `chacha20poly1305`, `sha2`, `hmac`, `aes`/`chacha20` for DTLS 1.3 record-number masks and
//!   `ml-kem` for the hybrid key share. Fully reproducible from the injected RNG: ECDSA nonces
//!   are deterministic (RFC 6979).
//! - `AwsLc` (cargo feature `aws-lc`): AWS-LC through `aws-lc-rs`. Ephemeral and certificate keys
//!   still come from the injected RNG (imported as raw scalars), but AWS-LC draws ECDSA nonces,
//!   ML-KEM keys and encapsulations from its own entropy, so those differ between runs.
//!
//! Private keys cross this boundary as raw big-endian scalars drawn by the caller's RNG; that is
//! what makes key generation reproducible with either provider.

use std::fmt::Debug;

use crate::cipher_suite::NamedGroup;
pub use crate::cipher_suite::{AeadAlgorithm, HashAlgorithm};
use crate::error::CryptoError;

mod rustcrypto;
pub use rustcrypto::RustCrypto;

#[cfg(feature = "aws-lc")]
mod awslc;
#[cfg(feature = "aws-lc")]
pub use awslc::AwsLc;

/// Length of every AEAD nonce used by DTLS 1.2 suites.
pub const NONCE_LEN: usize = 12;
/// Length of every AEAD tag used by DTLS 1.2 suites.
pub const TAG_LEN: usize = 16;

/// Length of the longest digest a provider returns (SHA-384).
pub const MAX_DIGEST_LEN: usize = 48;

/// A hash or HMAC output held inline: the PRF, the transcript hash and the cookie produce
/// dozens per handshake, none of which needs the heap.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Digest {
    bytes: [u8; MAX_DIGEST_LEN],
    len: u8,
}

impl Digest {
    /// Copies a SHA-256 or SHA-384 output; anything beyond [`MAX_DIGEST_LEN`] bytes is cut off
    /// (no hash this crate uses is longer).
    pub fn new(output: &[u8]) -> Self {
        let len = output.len().min(MAX_DIGEST_LEN);
        let mut bytes = [0u8; MAX_DIGEST_LEN];
        bytes[..len].copy_from_slice(&output[..len]);
        Self {
            bytes,
            // len <= MAX_DIGEST_LEN = 48 fits a u8.
            len: len as u8,
        }
    }

    /// The digest bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl std::ops::Deref for Digest {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsRef<[u8]> for Digest {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Digest({} bytes)", self.len)
    }
}

/// A running hash.
pub trait HashContext: Send + Sync {
    /// Feeds more bytes.
    fn update(&mut self, data: &[u8]);

    /// The digest of everything fed so far; the context keeps running.
    fn digest(&self) -> Digest;
}

/// A keyed HMAC.
pub trait HmacKey: Send + Sync {
    /// The HMAC of the concatenation of `parts` (the PRF feeds `A(i) ‖ label ‖ seed` as three
    /// parts, never concatenating them).
    fn sign(&self, parts: &[&[u8]]) -> Digest;
}

impl<K: HmacKey + ?Sized> HmacKey for Box<K> {
    fn sign(&self, parts: &[&[u8]]) -> Digest {
        (**self).sign(parts)
    }
}

/// A pseudorandom key ready for HKDF-Expand (RFC 5869 §2.3).
pub trait HkdfPrk: Send + Sync {
    /// `HKDF-Expand(PRK, info, out.len())`. `out` is at most 255 hash lengths (RFC 5869 §2.3;
    /// the key schedule asks for one or two).
    fn expand(&self, info: &[u8], out: &mut [u8]);
}

/// HKDF-Expand over a keyed HMAC: `T(i) = HMAC(PRK, T(i-1) ‖ info ‖ i)`, the output being
/// `T(1) ‖ T(2) ‖ …` cut to length (RFC 5869 §2.3).
pub struct HmacExpand<K> {
    key: K,
    hash_len: usize,
}

impl<K: HmacKey> HmacExpand<K> {
    /// HKDF-Expand with `key`, an HMAC keyed with the PRK under `alg`.
    pub fn new(key: K, alg: HashAlgorithm) -> Self {
        Self {
            key,
            hash_len: alg.output_len(),
        }
    }
}

impl<K: HmacKey> HkdfPrk for HmacExpand<K> {
    fn expand(&self, info: &[u8], out: &mut [u8]) {
        let mut previous = Digest::new(&[]);
        for (i, chunk) in out.chunks_mut(self.hash_len).enumerate() {
            // RFC 5869 §2.3: at most 255 blocks; our outputs are one or two.
            let counter = u8::try_from(i + 1).unwrap_or(u8::MAX);
            previous = self.key.sign(&[&previous, info, &[counter]]);
            chunk.copy_from_slice(&previous[..chunk.len()]);
        }
    }
}

/// An imported ECDHE private key with its public share.
pub trait EcdhKey: Send + Sync {
    /// The public share (uncompressed SEC1 point for P-256, the u-coordinate for X25519).
    fn public_key(&self) -> &[u8];

    /// The shared secret with `peer_public` (the x-coordinate for P-256, RFC 8422 §5.10).
    fn agree(&self, peer_public: &[u8]) -> Result<Vec<u8>, CryptoError>;
}

/// An imported ECDSA P-256 signing key.
pub trait EcdsaSigningKey: Send + Sync {
    /// The uncompressed SEC1 public key.
    fn public_key(&self) -> &[u8];

    /// An ASN.1 DER signature over SHA-256(`message`).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError>;
}

/// A keyed AEAD ready to protect records of one direction of one epoch.
pub trait AeadKey: Send + Sync {
    /// Encrypts `in_out` in place and returns the tag (the record layer writes plaintext
    /// straight into the outgoing datagram and seals it there, with no copy).
    fn seal_detached(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; TAG_LEN], CryptoError>;

    /// Authenticates and decrypts `buf` (ciphertext then tag) in place, removing the tag.
    fn open_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut Vec<u8>,
    ) -> Result<(), CryptoError>;
}

/// Length of the ciphertext sample a record-number mask is computed from (RFC 9147 §4.2.3).
pub const SAMPLE_LEN: usize = 16;
/// Bytes of mask DTLS 1.3 uses: a unified header carries at most a 16-bit sequence number.
pub const RECORD_NUMBER_MASK_LEN: usize = 2;

/// A keyed record-number mask (RFC 9147 §4.2.3): AES-ECB of the sample for the AES-GCM suites;
/// for ChaCha20-Poly1305 the ChaCha20 keystream with the sample's first four bytes as the
/// little-endian block counter and the other twelve as the nonce. QUIC header protection
/// (RFC 9001 §5.4.3, §5.4.4) is the same computation, and its vectors test ours.
pub trait RecordNumberKey: Send + Sync {
    /// The first [`RECORD_NUMBER_MASK_LEN`] bytes of the mask for `sample`.
    fn mask(&self, sample: &[u8; SAMPLE_LEN]) -> Result<[u8; RECORD_NUMBER_MASK_LEN], CryptoError>;
}

/// ML-KEM-768 encapsulation key length (FIPS 203 §8, table 3).
pub const ML_KEM_768_ENCAPSULATION_KEY_LEN: usize = 1184;
/// ML-KEM-768 ciphertext length.
pub const ML_KEM_768_CIPHERTEXT_LEN: usize = 1088;
/// ML-KEM shared secret length.
pub const ML_KEM_SHARED_SECRET_LEN: usize = 32;

/// An ML-KEM-768 decapsulation key with its encapsulation key.
pub trait KemDecapsulationKey: Send + Sync {
    /// The encapsulation key ([`ML_KEM_768_ENCAPSULATION_KEY_LEN`] bytes).
    fn encapsulation_key(&self) -> &[u8];

    /// The shared secret in `ciphertext` (FIPS 203 §7.3; implicit rejection: a wrong but
    /// well-sized ciphertext gives an unrelated secret, not an error).
    fn decapsulate(&self, ciphertext: &[u8])
    -> Result<[u8; ML_KEM_SHARED_SECRET_LEN], CryptoError>;
}

/// What encapsulating to a peer's key gives: the ciphertext to send and the shared secret.
pub struct Encapsulated {
    /// The ciphertext ([`ML_KEM_768_CIPHERTEXT_LEN`] bytes).
    pub ciphertext: Vec<u8>,
    /// The shared secret.
    pub shared_secret: [u8; ML_KEM_SHARED_SECRET_LEN],
}

impl Debug for Encapsulated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Encapsulated { .. }")
    }
}

/// The primitives DTLS 1.2 and 1.3 need.
///
/// Implementations must not draw randomness of their own for key generation: private keys are
/// handed in as raw scalars. Where a backend cannot avoid internal randomness (ECDSA nonces in
/// AWS-LC) the implementation documents it.
pub trait CryptoProvider: Debug + Send + Sync {
    /// A short name for logs, benches and test names.
    fn name(&self) -> &'static str;

    /// Hashes the concatenation of `parts`.
    fn hash(&self, alg: HashAlgorithm, parts: &[&[u8]]) -> Digest;

    /// A running hash (the handshake transcript is hashed as it grows).
    fn hash_context(&self, alg: HashAlgorithm) -> Box<dyn HashContext>;

    /// Keys an HMAC once for several messages (the PRF uses one key for all its rounds).
    fn hmac_key(&self, alg: HashAlgorithm, key: &[u8]) -> Box<dyn HmacKey>;

    /// HMAC of the concatenation of `parts` under `key`.
    fn hmac(&self, alg: HashAlgorithm, key: &[u8], parts: &[&[u8]]) -> Digest {
        self.hmac_key(alg, key).sign(parts)
    }

    /// A pseudorandom key for HKDF-Expand (RFC 5869 §2.3), for the DTLS 1.3 key schedule,
    /// which expands several labels from each secret. By default HKDF-Expand over
    /// [`Self::hmac_key`], keyed once; a backend whose own HKDF is cheaper per call (AWS-LC's
    /// is one call into C where its HMAC is several) provides it instead.
    fn hkdf_prk(&self, alg: HashAlgorithm, prk: &[u8]) -> Box<dyn HkdfPrk> {
        Box::new(HmacExpand::new(self.hmac_key(alg, prk), alg))
    }

    /// Imports an ECDHE private scalar (drawn by the caller from the injected RNG) and derives
    /// its public share. Fails when the scalar is not valid for the group.
    fn ecdh_key(&self, group: NamedGroup, private: &[u8]) -> Result<Box<dyn EcdhKey>, CryptoError>;

    /// Imports an ECDSA P-256 private scalar for signing with SHA-256.
    fn ecdsa_p256_signing_key(
        &self,
        private: &[u8],
    ) -> Result<Box<dyn EcdsaSigningKey>, CryptoError>;

    /// Verifies an ASN.1 DER ECDSA P-256 signature over SHA-256(`message`).
    fn ecdsa_p256_sha256_verify(
        &self,
        public: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError>;

    /// Keys an AEAD.
    fn aead_key(&self, alg: AeadAlgorithm, key: &[u8]) -> Result<Box<dyn AeadKey>, CryptoError>;

    /// An ML-KEM-768 key pair from the 64-byte seed `d ‖ z` (FIPS 203 §7.1) the caller drew
    /// from the injected RNG. A provider that cannot derive keys from a seed uses its own
    /// entropy and says so.
    fn ml_kem_768_key(&self, seed: &[u8; 64]) -> Result<Box<dyn KemDecapsulationKey>, CryptoError>;

    /// Encapsulates to an ML-KEM-768 `encapsulation_key` with the 32 bytes of randomness `m`
    /// (FIPS 203 §7.2) the caller drew from the injected RNG (same caveat).
    fn ml_kem_768_encapsulate(
        &self,
        encapsulation_key: &[u8],
        randomness: &[u8; 32],
    ) -> Result<Encapsulated, CryptoError>;

    /// Keys the record-number mask that goes with AEAD `alg` (RFC 9147 §4.2.3); `key` is the
    /// epoch's `sn_key`, as long as the AEAD key.
    fn record_number_key(
        &self,
        alg: AeadAlgorithm,
        key: &[u8],
    ) -> Result<Box<dyn RecordNumberKey>, CryptoError>;
}

/// Every provider compiled into this build, for tests and benches that run against each.
pub fn providers() -> Vec<&'static dyn CryptoProvider> {
    vec![
        &RustCrypto,
        #[cfg(feature = "aws-lc")]
        &AwsLc,
    ]
}

/// Draws a private scalar for `group` from `rng` and imports it.
///
/// P-256 scalars outside `[1, n)` are redrawn (the chance is about 2^-32 per draw); after 16
/// refusals the provider is considered broken.
pub fn generate_ecdh_key(
    provider: &dyn CryptoProvider,
    group: NamedGroup,
    rng: &mut dyn rand_core::CryptoRng,
) -> Result<Box<dyn EcdhKey>, CryptoError> {
    retry_scalar(rng, |private| provider.ecdh_key(group, private)).map(|(_, key)| key)
}

/// Draws a P-256 ECDSA private scalar from `rng`; returns it with the imported key.
pub fn generate_signing_key(
    provider: &dyn CryptoProvider,
    rng: &mut dyn rand_core::CryptoRng,
) -> Result<(Vec<u8>, Box<dyn EcdsaSigningKey>), CryptoError> {
    retry_scalar(rng, |private| provider.ecdsa_p256_signing_key(private))
        .map(|(private, key)| (private.to_vec(), key))
}

/// Draws 32-byte scalars until `import` takes one (at most 16 draws).
fn retry_scalar<T>(
    rng: &mut dyn rand_core::CryptoRng,
    mut import: impl FnMut(&[u8]) -> Result<T, CryptoError>,
) -> Result<([u8; 32], T), CryptoError> {
    for _ in 0..16 {
        let mut private = [0u8; 32];
        rng.fill_bytes(&mut private);
        match import(&private) {
            Ok(key) => return Ok((private, key)),
            Err(CryptoError::InvalidPrivateKey) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(CryptoError::InvalidPrivateKey)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn every_provider_hkdf_expand_is_hkdf_over_its_hmac() {
        // RFC 5869 §2.3 by its definition, from one PRK, for short, two-block and the longest
        // outputs (255 blocks), and one beyond it, which each provider must still fill.
        for p in providers() {
            for alg in [HashAlgorithm::Sha256, HashAlgorithm::Sha384] {
                let secret = [0x0bu8; 48];
                let secret = &secret[..alg.output_len()];
                let prk = p.hkdf_prk(alg, secret);
                let reference = HmacExpand::new(p.hmac_key(alg, secret), alg);
                for len in [
                    12,
                    16,
                    48,
                    60,
                    255 * alg.output_len(),
                    255 * alg.output_len() + 1,
                ] {
                    let (mut ours, mut theirs) = (vec![0u8; len], vec![0u8; len]);
                    prk.expand(b"info", &mut ours);
                    reference.expand(b"info", &mut theirs);
                    assert_eq!(ours, theirs, "{} {alg:?} {len}", p.name());
                    assert!(ours.iter().any(|b| *b != 0));
                }
            }
        }
    }

    #[test]
    fn record_number_masks_match_the_quic_header_protection_vectors() {
        // RFC 9001 Appendix A.2 (AES-128, client Initial) and A.5 (ChaCha20): the same mask
        // function as RFC 9147 §4.2.3; DTLS uses the first two of QUIC's five bytes.
        let cases = [
            (
                AeadAlgorithm::Aes128Gcm,
                "9f50449e04a0e810283a1e9933adedd2",
                "d1b1c98dd7689fb8ec11d242b123dc9b",
                [0x43, 0x7b],
            ),
            (
                AeadAlgorithm::ChaCha20Poly1305,
                "25a282b9e82f06f21f488917a4fc8f1b73573685608597d0efcb076b0ab7a7a4",
                "5e5cd55c41f69080575d7999c25a5bfb",
                [0xae, 0xfe],
            ),
        ];
        for p in providers() {
            for (alg, key, sample, mask) in cases {
                let key = p.record_number_key(alg, &hex(key)).unwrap();
                let sample: [u8; SAMPLE_LEN] = hex(sample).try_into().unwrap();
                assert_eq!(key.mask(&sample).unwrap(), mask, "{} {alg:?}", p.name());
            }
        }
    }

    #[test]
    fn record_number_masks_agree_across_providers_and_reject_bad_keys() {
        for alg in [
            AeadAlgorithm::Aes128Gcm,
            AeadAlgorithm::Aes256Gcm,
            AeadAlgorithm::ChaCha20Poly1305,
        ] {
            let key: Vec<u8> = (0..alg.key_len() as u8).collect();
            // The last sample puts the ChaCha20 block counter at its end, 2^32-1.
            let samples = [[0u8; SAMPLE_LEN], [0x5a; SAMPLE_LEN], [0xff; SAMPLE_LEN]];
            let masks: Vec<Vec<_>> = providers()
                .into_iter()
                .map(|p| {
                    assert_eq!(
                        p.record_number_key(alg, &key[1..]).err(),
                        Some(CryptoError::InvalidKeyLength),
                        "{}",
                        p.name()
                    );
                    let k = p.record_number_key(alg, &key).unwrap();
                    samples.iter().map(|s| k.mask(s).unwrap()).collect()
                })
                .collect();
            assert!(masks.windows(2).all(|w| w[0] == w[1]), "{alg:?}: {masks:?}");
            assert_ne!(
                masks[0][0], masks[0][1],
                "{alg:?}: the mask depends on the sample"
            );
        }
    }
}
