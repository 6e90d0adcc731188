//! The AWS-LC provider (`aws-lc` feature) over `aws-lc-rs`.
//!
//! Reproducibility: ECDHE and certificate private keys are imported as raw scalars drawn from the
//! injected RNG, so public keys and shared secrets are reproducible. ECDSA signing draws its
//! nonce inside AWS-LC (`aws-lc-rs` ignores the RNG argument of `EcdsaKeyPair::sign`), so
//! signatures in ServerKeyExchange, CertificateVerify and self-signed certificates differ from
//! run to run; everything that depends on them (transcripts, Finished, keys) differs too.

use aws_lc_rs::aead::quic::{self, HeaderProtectionKey};
use aws_lc_rs::aead::{
    AES_128_GCM, AES_256_GCM, Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey,
};
use aws_lc_rs::agreement::{self, ECDH_P256, PrivateKey, UnparsedPublicKey, X25519};
use aws_lc_rs::digest::{self, SHA256, SHA384};
use aws_lc_rs::kem::{Ciphertext, DecapsulationKey, EncapsulationKey, ML_KEM_768};
use aws_lc_rs::signature::{
    self, ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair,
};
use aws_lc_rs::{hkdf, hmac};

use super::{
    AeadAlgorithm, AeadKey, CryptoProvider, EcdhKey, EcdsaSigningKey, Encapsulated, HashAlgorithm,
    HashContext, HkdfPrk, HmacExpand, HmacKey, KemDecapsulationKey, ML_KEM_SHARED_SECRET_LEN,
    NONCE_LEN, RECORD_NUMBER_MASK_LEN, RecordNumberKey, SAMPLE_LEN, TAG_LEN,
};
use crate::cipher_suite::NamedGroup;
use crate::error::CryptoError;

/// The AWS-LC provider.
#[derive(Debug, Clone, Copy, Default)]
pub struct AwsLc;

fn agreement_alg(group: NamedGroup) -> Option<&'static agreement::Algorithm> {
    match group {
        NamedGroup::Secp256r1 => Some(&ECDH_P256),
        NamedGroup::X25519 => Some(&X25519),
        NamedGroup::X25519MlKem768 => None,
    }
}

impl CryptoProvider for AwsLc {
    fn name(&self) -> &'static str {
        "aws-lc"
    }

    fn hash(&self, alg: HashAlgorithm, parts: &[&[u8]]) -> super::Digest {
        let mut ctx = digest::Context::new(match alg {
            HashAlgorithm::Sha256 => &SHA256,
            HashAlgorithm::Sha384 => &SHA384,
        });
        parts.iter().for_each(|p| ctx.update(p));
        super::Digest::new(ctx.finish().as_ref())
    }

    fn hash_context(&self, alg: HashAlgorithm) -> Box<dyn HashContext> {
        Box::new(LcHash(digest::Context::new(match alg {
            HashAlgorithm::Sha256 => &SHA256,
            HashAlgorithm::Sha384 => &SHA384,
        })))
    }

    fn hmac_key(&self, alg: HashAlgorithm, key: &[u8]) -> Box<dyn HmacKey> {
        Box::new(LcHmac::new(alg, key))
    }

    /// Keyed on the stack: no box for a key used once (HKDF-Extract, cookies).
    fn hmac(&self, alg: HashAlgorithm, key: &[u8], parts: &[&[u8]]) -> super::Digest {
        LcHmac::new(alg, key).sign(parts)
    }

    /// AWS-LC's HKDF-Expand: one call into C per label, which costs less than one HMAC
    /// through `aws-lc-rs` (issue 18, docs/performance.md).
    fn hkdf_prk(&self, alg: HashAlgorithm, prk: &[u8]) -> Box<dyn HkdfPrk> {
        Box::new(LcHkdfPrk {
            alg,
            prk: hkdf::Prk::new_less_safe(
                match alg {
                    HashAlgorithm::Sha256 => hkdf::HKDF_SHA256,
                    HashAlgorithm::Sha384 => hkdf::HKDF_SHA384,
                },
                prk,
            ),
            bytes: super::Digest::new(prk),
        })
    }

    fn ecdh_key(&self, group: NamedGroup, private: &[u8]) -> Result<Box<dyn EcdhKey>, CryptoError> {
        // X25519MLKEM768 is a KEM, not an ECDH group: `key_share.rs` combines its parts.
        let alg = agreement_alg(group).ok_or(CryptoError::Unsupported)?;
        let key = PrivateKey::from_private_key(alg, private)
            .map_err(|_| CryptoError::InvalidPrivateKey)?;
        let public = key
            .compute_public_key()
            .map_err(|_| CryptoError::InvalidPrivateKey)?
            .as_ref()
            .to_vec();
        Ok(Box::new(LcEcdh { alg, key, public }))
    }

    fn ecdsa_p256_signing_key(
        &self,
        private: &[u8],
    ) -> Result<Box<dyn EcdsaSigningKey>, CryptoError> {
        // Derive the public point once, then import the pair (AWS-LC checks they match).
        let public = PrivateKey::from_private_key(&ECDH_P256, private)
            .map_err(|_| CryptoError::InvalidPrivateKey)?
            .compute_public_key()
            .map_err(|_| CryptoError::InvalidPrivateKey)?
            .as_ref()
            .to_vec();
        let pair = EcdsaKeyPair::from_private_key_and_public_key(
            &ECDSA_P256_SHA256_ASN1_SIGNING,
            private,
            &public,
        )
        .map_err(|_| CryptoError::InvalidPrivateKey)?;
        Ok(Box::new(LcSigner { pair, public }))
    }

    fn ecdsa_p256_sha256_verify(
        &self,
        public: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        signature::UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, public)
            .verify(message, signature)
            .map_err(|_| CryptoError::BadSignature)
    }

    fn aead_key(&self, alg: AeadAlgorithm, key: &[u8]) -> Result<Box<dyn AeadKey>, CryptoError> {
        let unbound = UnboundKey::new(
            match alg {
                AeadAlgorithm::Aes128Gcm => &AES_128_GCM,
                AeadAlgorithm::Aes256Gcm => &AES_256_GCM,
                AeadAlgorithm::ChaCha20Poly1305 => &CHACHA20_POLY1305,
            },
            key,
        )
        .map_err(|_| CryptoError::InvalidKeyLength)?;
        Ok(Box::new(LcKey(LessSafeKey::new(unbound))))
    }

    /// AWS-LC generates the key pair from its own entropy: `aws-lc-rs` takes no seed, so
    /// `seed` is unused and the key is not reproducible.
    fn ml_kem_768_key(
        &self,
        _seed: &[u8; 64],
    ) -> Result<Box<dyn KemDecapsulationKey>, CryptoError> {
        let dk = DecapsulationKey::generate(&ML_KEM_768).map_err(|_| CryptoError::Unsupported)?;
        let encapsulation_key = dk
            .encapsulation_key()
            .and_then(|ek| ek.key_bytes().map(|b| b.as_ref().to_vec()))
            .map_err(|_| CryptoError::Unsupported)?;
        Ok(Box::new(LcKem {
            dk,
            encapsulation_key,
        }))
    }

    /// AWS-LC draws `m` itself (`randomness` is unused): not reproducible.
    fn ml_kem_768_encapsulate(
        &self,
        encapsulation_key: &[u8],
        _randomness: &[u8; 32],
    ) -> Result<Encapsulated, CryptoError> {
        let ek = EncapsulationKey::new(&ML_KEM_768, encapsulation_key)
            .map_err(|_| CryptoError::InvalidPublicKey)?;
        let (ciphertext, shared) = ek
            .encapsulate()
            .map_err(|_| CryptoError::InvalidPublicKey)?;
        let mut shared_secret = [0u8; ML_KEM_SHARED_SECRET_LEN];
        shared_secret.copy_from_slice(shared.as_ref());
        Ok(Encapsulated {
            ciphertext: ciphertext.as_ref().to_vec(),
            shared_secret,
        })
    }

    fn record_number_key(
        &self,
        alg: AeadAlgorithm,
        key: &[u8],
    ) -> Result<Box<dyn RecordNumberKey>, CryptoError> {
        // QUIC header protection is the same mask (RFC 9001 §5.4.3, §5.4.4; RFC 9147 §4.2.3).
        let key = HeaderProtectionKey::new(
            match alg {
                AeadAlgorithm::Aes128Gcm => &quic::AES_128,
                AeadAlgorithm::Aes256Gcm => &quic::AES_256,
                AeadAlgorithm::ChaCha20Poly1305 => &quic::CHACHA20,
            },
            key,
        )
        .map_err(|_| CryptoError::InvalidKeyLength)?;
        Ok(Box::new(LcMask(key)))
    }
}

struct LcKem {
    dk: DecapsulationKey,
    encapsulation_key: Vec<u8>,
}

impl KemDecapsulationKey for LcKem {
    fn encapsulation_key(&self) -> &[u8] {
        &self.encapsulation_key
    }

    fn decapsulate(
        &self,
        ciphertext: &[u8],
    ) -> Result<[u8; ML_KEM_SHARED_SECRET_LEN], CryptoError> {
        let shared = self
            .dk
            .decapsulate(Ciphertext::from(ciphertext))
            .map_err(|_| CryptoError::InvalidPublicKey)?;
        let mut out = [0u8; ML_KEM_SHARED_SECRET_LEN];
        out.copy_from_slice(shared.as_ref());
        Ok(out)
    }
}

struct LcMask(HeaderProtectionKey);

impl RecordNumberKey for LcMask {
    fn mask(&self, sample: &[u8; SAMPLE_LEN]) -> Result<[u8; RECORD_NUMBER_MASK_LEN], CryptoError> {
        let mask = self
            .0
            .new_mask(sample)
            .map_err(|_| CryptoError::RecordNumberMaskFailed)?;
        let mut out = [0u8; RECORD_NUMBER_MASK_LEN];
        out.copy_from_slice(&mask[..RECORD_NUMBER_MASK_LEN]);
        Ok(out)
    }
}

struct LcHash(digest::Context);

impl HashContext for LcHash {
    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    fn digest(&self) -> super::Digest {
        super::Digest::new(self.0.clone().finish().as_ref())
    }
}

/// A PRK for AWS-LC's HKDF-Expand, with its bytes for the HMAC path should AWS-LC refuse.
struct LcHkdfPrk {
    alg: HashAlgorithm,
    prk: hkdf::Prk,
    bytes: super::Digest,
}

/// An HKDF output length for `aws-lc-rs`.
struct OkmLen(usize);

impl hkdf::KeyType for OkmLen {
    fn len(&self) -> usize {
        self.0
    }
}

impl HkdfPrk for LcHkdfPrk {
    fn expand(&self, info: &[u8], out: &mut [u8]) {
        let info = [info];
        let filled = self
            .prk
            .expand(&info, OkmLen(out.len()))
            .and_then(|okm| okm.fill(out));
        if filled.is_err() {
            // AWS-LC refuses outputs longer than 255 hash lengths, which the key schedule
            // never asks for; the HMAC construction gives the same bytes where both work.
            HmacExpand::new(LcHmac::new(self.alg, &self.bytes), self.alg).expand(info[0], out);
        }
    }
}

struct LcHmac(hmac::Key);

impl LcHmac {
    fn new(alg: HashAlgorithm, key: &[u8]) -> Self {
        Self(hmac::Key::new(
            match alg {
                HashAlgorithm::Sha256 => hmac::HMAC_SHA256,
                HashAlgorithm::Sha384 => hmac::HMAC_SHA384,
            },
            key,
        ))
    }
}

impl HmacKey for LcHmac {
    fn sign(&self, parts: &[&[u8]]) -> super::Digest {
        let mut ctx = hmac::Context::with_key(&self.0);
        parts.iter().for_each(|p| ctx.update(p));
        super::Digest::new(ctx.sign().as_ref())
    }
}

struct LcEcdh {
    alg: &'static agreement::Algorithm,
    key: PrivateKey,
    public: Vec<u8>,
}

impl EcdhKey for LcEcdh {
    fn public_key(&self) -> &[u8] {
        &self.public
    }

    fn agree(&self, peer_public: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let shared = agreement::agree(
            &self.key,
            UnparsedPublicKey::new(self.alg, peer_public),
            CryptoError::InvalidPublicKey,
            |s| Ok(s.to_vec()),
        )?;
        if shared.iter().all(|b| *b == 0) {
            return Err(CryptoError::DegenerateSharedSecret);
        }
        Ok(shared)
    }
}

struct LcSigner {
    pair: EcdsaKeyPair,
    public: Vec<u8>,
}

impl EcdsaSigningKey for LcSigner {
    fn public_key(&self) -> &[u8] {
        &self.public
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        debug_assert_eq!(self.pair.public_key().as_ref(), &self.public[..]);
        // aws-lc-rs ignores this argument; the nonce comes from AWS-LC's own DRBG.
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let sig = self
            .pair
            .sign(&rng, message)
            .map_err(|_| CryptoError::SigningFailed)?;
        Ok(sig.as_ref().to_vec())
    }
}

/// An AWS-LC AEAD behind [`AeadKey`].
struct LcKey(LessSafeKey);

impl AeadKey for LcKey {
    fn seal_detached(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; TAG_LEN], CryptoError> {
        let tag = self
            .0
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(aad),
                in_out,
            )
            .map_err(|_| CryptoError::AeadSealFailed)?;
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    fn open_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        let len = self
            .0
            .open_in_place(Nonce::assume_unique_for_key(*nonce), Aad::from(aad), buf)
            .map_err(|_| CryptoError::AeadOpenFailed)?
            .len();
        debug_assert_eq!(len + TAG_LEN, buf.len());
        buf.truncate(len);
        Ok(())
    }
}
