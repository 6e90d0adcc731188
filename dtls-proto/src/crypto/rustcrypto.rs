//! The pure-Rust provider over the RustCrypto crates.
//!
//! Reproducibility: everything is a function of the inputs. Key scalars come from the caller
//! (drawn from the injected RNG) and ECDSA uses RFC 6979 deterministic nonces.

use aes::cipher::consts::U10;
use aes::cipher::{BlockEncrypt, KeyIvInit, StreamCipherCore, StreamCipherSeekCore};
use aes_gcm::aead::consts::{U12, U16};
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes128Gcm, Aes256Gcm};
use chacha20poly1305::ChaCha20Poly1305;
use hmac::{Hmac, Mac};
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use sha2::{Digest, Sha256, Sha384};

use ml_kem::kem::Decapsulate;
use ml_kem::{EncapsulateDeterministic, EncodedSizeUser, KemCore, MlKem768};

use super::{
    AeadAlgorithm, AeadKey, CryptoProvider, EcdhKey, EcdsaSigningKey, Encapsulated, HashAlgorithm,
    HashContext, HkdfPrk, HmacExpand, HmacKey, KemDecapsulationKey, ML_KEM_SHARED_SECRET_LEN,
    NONCE_LEN, RECORD_NUMBER_MASK_LEN, RecordNumberKey, SAMPLE_LEN, TAG_LEN,
};
use crate::cipher_suite::NamedGroup;
use crate::error::CryptoError;

/// The RustCrypto provider (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct RustCrypto;

fn p256_secret(private: &[u8]) -> Result<p256::SecretKey, CryptoError> {
    p256::SecretKey::from_slice(private).map_err(|_| CryptoError::InvalidPrivateKey)
}

fn x25519_secret(private: &[u8]) -> Result<x25519_dalek::StaticSecret, CryptoError> {
    let bytes: [u8; 32] = private
        .try_into()
        .map_err(|_| CryptoError::InvalidPrivateKey)?;
    Ok(x25519_dalek::StaticSecret::from(bytes))
}

impl CryptoProvider for RustCrypto {
    fn name(&self) -> &'static str {
        "rustcrypto"
    }

    fn hash(&self, alg: HashAlgorithm, parts: &[&[u8]]) -> super::Digest {
        match alg {
            HashAlgorithm::Sha256 => {
                let mut h = Sha256::new();
                parts.iter().for_each(|p| h.update(p));
                super::Digest::new(&h.finalize())
            }
            HashAlgorithm::Sha384 => {
                let mut h = Sha384::new();
                parts.iter().for_each(|p| h.update(p));
                super::Digest::new(&h.finalize())
            }
        }
    }

    fn hash_context(&self, alg: HashAlgorithm) -> Box<dyn HashContext> {
        match alg {
            HashAlgorithm::Sha256 => Box::new(RcHash::Sha256(Sha256::new())),
            HashAlgorithm::Sha384 => Box::new(RcHash::Sha384(Sha384::new())),
        }
    }

    fn hmac_key(&self, alg: HashAlgorithm, key: &[u8]) -> Box<dyn HmacKey> {
        Box::new(RcHmac::new(alg, key))
    }

    /// Keyed on the stack: no box for a key used once (HKDF-Extract, cookies).
    fn hmac(&self, alg: HashAlgorithm, key: &[u8], parts: &[&[u8]]) -> super::Digest {
        RcHmac::new(alg, key).sign(parts)
    }

    /// HKDF-Expand over the HMAC keyed once, in one box.
    fn hkdf_prk(&self, alg: HashAlgorithm, prk: &[u8]) -> Box<dyn HkdfPrk> {
        Box::new(HmacExpand::new(RcHmac::new(alg, prk), alg))
    }

    fn ecdh_key(&self, group: NamedGroup, private: &[u8]) -> Result<Box<dyn EcdhKey>, CryptoError> {
        Ok(match group {
            NamedGroup::Secp256r1 => {
                let secret = p256_secret(private)?;
                let public = secret
                    .public_key()
                    .to_encoded_point(false)
                    .as_bytes()
                    .to_vec();
                Box::new(P256Ecdh { secret, public })
            }
            // A KEM, not an ECDH group: `key_share.rs` combines its parts.
            NamedGroup::X25519MlKem768 => return Err(CryptoError::Unsupported),
            NamedGroup::X25519 => {
                let secret = x25519_secret(private)?;
                let public = x25519_dalek::PublicKey::from(&secret).as_bytes().to_vec();
                Box::new(X25519Ecdh { secret, public })
            }
        })
    }

    fn ecdsa_p256_signing_key(
        &self,
        private: &[u8],
    ) -> Result<Box<dyn EcdsaSigningKey>, CryptoError> {
        let key = SigningKey::from_slice(private).map_err(|_| CryptoError::InvalidPrivateKey)?;
        let public = key
            .verifying_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec();
        Ok(Box::new(P256Signer { key, public }))
    }

    fn ecdsa_p256_sha256_verify(
        &self,
        public: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        let key =
            VerifyingKey::from_sec1_bytes(public).map_err(|_| CryptoError::InvalidPublicKey)?;
        let sig = Signature::from_der(signature).map_err(|_| CryptoError::BadSignature)?;
        key.verify(message, &sig)
            .map_err(|_| CryptoError::BadSignature)
    }

    fn aead_key(&self, alg: AeadAlgorithm, key: &[u8]) -> Result<Box<dyn AeadKey>, CryptoError> {
        if key.len() != alg.key_len() {
            return Err(CryptoError::InvalidKeyLength);
        }
        let bad = |_| CryptoError::InvalidKeyLength;
        Ok(match alg {
            AeadAlgorithm::Aes128Gcm => Box::new(Rc(Aes128Gcm::new_from_slice(key).map_err(bad)?)),
            AeadAlgorithm::Aes256Gcm => Box::new(Rc(Aes256Gcm::new_from_slice(key).map_err(bad)?)),
            AeadAlgorithm::ChaCha20Poly1305 => {
                Box::new(Rc(ChaCha20Poly1305::new_from_slice(key).map_err(bad)?))
            }
        })
    }

    fn ml_kem_768_key(&self, seed: &[u8; 64]) -> Result<Box<dyn KemDecapsulationKey>, CryptoError> {
        let (d, z) = seed.split_at(32);
        let (dk, ek) = MlKem768::generate_deterministic(
            &ml_kem::B32::try_from(d).map_err(|_| CryptoError::InvalidPrivateKey)?,
            &ml_kem::B32::try_from(z).map_err(|_| CryptoError::InvalidPrivateKey)?,
        );
        Ok(Box::new(MlKemKey {
            encapsulation_key: ek.as_bytes().to_vec(),
            dk,
        }))
    }

    fn ml_kem_768_encapsulate(
        &self,
        encapsulation_key: &[u8],
        randomness: &[u8; 32],
    ) -> Result<Encapsulated, CryptoError> {
        let encoded =
            ml_kem::Encoded::<<MlKem768 as KemCore>::EncapsulationKey>::try_from(encapsulation_key)
                .map_err(|_| CryptoError::InvalidPublicKey)?;
        let ek = <MlKem768 as KemCore>::EncapsulationKey::from_bytes(&encoded);
        let (ciphertext, shared) = ek
            .encapsulate_deterministic(&ml_kem::B32::from(*randomness))
            .map_err(|()| CryptoError::InvalidPublicKey)?;
        let mut shared_secret = [0u8; ML_KEM_SHARED_SECRET_LEN];
        shared_secret.copy_from_slice(&shared);
        Ok(Encapsulated {
            ciphertext: ciphertext.to_vec(),
            shared_secret,
        })
    }

    fn record_number_key(
        &self,
        alg: AeadAlgorithm,
        key: &[u8],
    ) -> Result<Box<dyn RecordNumberKey>, CryptoError> {
        if key.len() != alg.key_len() {
            return Err(CryptoError::InvalidKeyLength);
        }
        let bad = |_| CryptoError::InvalidKeyLength;
        Ok(match alg {
            AeadAlgorithm::Aes128Gcm => {
                Box::new(AesMask(aes::Aes128::new_from_slice(key).map_err(bad)?))
            }
            AeadAlgorithm::Aes256Gcm => {
                Box::new(AesMask(aes::Aes256::new_from_slice(key).map_err(bad)?))
            }
            AeadAlgorithm::ChaCha20Poly1305 => Box::new(ChaChaMask(
                key.try_into().map_err(|_| CryptoError::InvalidKeyLength)?,
            )),
        })
    }
}

/// An ML-KEM-768 key pair.
struct MlKemKey {
    encapsulation_key: Vec<u8>,
    dk: <MlKem768 as KemCore>::DecapsulationKey,
}

impl KemDecapsulationKey for MlKemKey {
    fn encapsulation_key(&self) -> &[u8] {
        &self.encapsulation_key
    }

    fn decapsulate(
        &self,
        ciphertext: &[u8],
    ) -> Result<[u8; ML_KEM_SHARED_SECRET_LEN], CryptoError> {
        let ct = ml_kem::Ciphertext::<MlKem768>::try_from(ciphertext)
            .map_err(|_| CryptoError::InvalidPublicKey)?;
        let shared = self
            .dk
            .decapsulate(&ct)
            .map_err(|()| CryptoError::InvalidPublicKey)?;
        let mut out = [0u8; ML_KEM_SHARED_SECRET_LEN];
        out.copy_from_slice(&shared);
        Ok(out)
    }
}

/// AES-ECB of the sample (RFC 9147 §4.2.3), with AES-128 or AES-256.
struct AesMask<C>(C);

impl<C: BlockEncrypt<BlockSize = U16> + Send + Sync> RecordNumberKey for AesMask<C> {
    fn mask(&self, sample: &[u8; SAMPLE_LEN]) -> Result<[u8; RECORD_NUMBER_MASK_LEN], CryptoError> {
        let mut block = GenericArray::clone_from_slice(sample);
        self.0.encrypt_block(&mut block);
        let mut out = [0u8; RECORD_NUMBER_MASK_LEN];
        out.copy_from_slice(&block[..RECORD_NUMBER_MASK_LEN]);
        Ok(out)
    }
}

/// The ChaCha20 keystream at block `sample[0..4]` (little-endian) under nonce `sample[4..16]`
/// (RFC 9147 §4.2.3, as RFC 9001 §5.4.4).
struct ChaChaMask([u8; 32]);

impl RecordNumberKey for ChaChaMask {
    fn mask(&self, sample: &[u8; SAMPLE_LEN]) -> Result<[u8; RECORD_NUMBER_MASK_LEN], CryptoError> {
        let (counter, nonce) = sample.split_at(4);
        let mut counter_bytes = [0u8; 4];
        counter_bytes.copy_from_slice(counter);
        // The block function itself: the stream wrapper refuses the last block (counter
        // 2^32-1), which a sample starting with ff ff ff ff asks for.
        let mut core = chacha20::ChaChaCore::<U10>::new(
            GenericArray::from_slice(&self.0),
            GenericArray::from_slice(nonce),
        );
        core.set_block_pos(u32::from_le_bytes(counter_bytes));
        let mut block = GenericArray::default();
        core.write_keystream_block(&mut block);
        let mut out = [0u8; RECORD_NUMBER_MASK_LEN];
        out.copy_from_slice(&block[..RECORD_NUMBER_MASK_LEN]);
        Ok(out)
    }
}

enum RcHash {
    Sha256(Sha256),
    Sha384(Sha384),
}

impl HashContext for RcHash {
    fn update(&mut self, data: &[u8]) {
        match self {
            Self::Sha256(h) => h.update(data),
            Self::Sha384(h) => h.update(data),
        }
    }

    fn digest(&self) -> super::Digest {
        match self {
            Self::Sha256(h) => super::Digest::new(&h.clone().finalize()),
            Self::Sha384(h) => super::Digest::new(&h.clone().finalize()),
        }
    }
}

enum RcHmac {
    Sha256(Hmac<Sha256>),
    Sha384(Hmac<Sha384>),
}

impl RcHmac {
    fn new(alg: HashAlgorithm, key: &[u8]) -> Self {
        match alg {
            HashAlgorithm::Sha256 => Self::Sha256(
                // unwrap: HMAC accepts keys of any length (RFC 2104 §2), this cannot fail.
                <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length"),
            ),
            HashAlgorithm::Sha384 => Self::Sha384(
                // unwrap: HMAC accepts keys of any length (RFC 2104 §2), this cannot fail.
                <Hmac<Sha384> as Mac>::new_from_slice(key).expect("HMAC takes any key length"),
            ),
        }
    }
}

impl HmacKey for RcHmac {
    fn sign(&self, parts: &[&[u8]]) -> super::Digest {
        match self {
            Self::Sha256(keyed) => {
                let mut m = keyed.clone();
                parts.iter().for_each(|p| m.update(p));
                super::Digest::new(&m.finalize().into_bytes())
            }
            Self::Sha384(keyed) => {
                let mut m = keyed.clone();
                parts.iter().for_each(|p| m.update(p));
                super::Digest::new(&m.finalize().into_bytes())
            }
        }
    }
}

struct P256Ecdh {
    secret: p256::SecretKey,
    public: Vec<u8>,
}

impl EcdhKey for P256Ecdh {
    fn public_key(&self) -> &[u8] {
        &self.public
    }

    fn agree(&self, peer_public: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let peer = p256::PublicKey::from_sec1_bytes(peer_public)
            .map_err(|_| CryptoError::InvalidPublicKey)?;
        let shared = p256::ecdh::diffie_hellman(self.secret.to_nonzero_scalar(), peer.as_affine());
        Ok(shared.raw_secret_bytes().to_vec())
    }
}

struct X25519Ecdh {
    secret: x25519_dalek::StaticSecret,
    public: Vec<u8>,
}

impl EcdhKey for X25519Ecdh {
    fn public_key(&self) -> &[u8] {
        &self.public
    }

    fn agree(&self, peer_public: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let peer: [u8; 32] = peer_public
            .try_into()
            .map_err(|_| CryptoError::InvalidPublicKey)?;
        let shared = self
            .secret
            .diffie_hellman(&x25519_dalek::PublicKey::from(peer));
        if !shared.was_contributory() {
            return Err(CryptoError::DegenerateSharedSecret);
        }
        Ok(shared.as_bytes().to_vec())
    }
}

struct P256Signer {
    key: SigningKey,
    public: Vec<u8>,
}

impl EcdsaSigningKey for P256Signer {
    fn public_key(&self) -> &[u8] {
        &self.public
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        // RFC 6979 deterministic nonce: reproducible.
        let sig: Signature = self
            .key
            .try_sign(message)
            .map_err(|_| CryptoError::SigningFailed)?;
        Ok(sig.to_der().as_bytes().to_vec())
    }
}

/// A RustCrypto AEAD behind [`AeadKey`].
struct Rc<A>(A);

impl<A: AeadInPlace<NonceSize = U12, TagSize = U16> + Send + Sync> AeadKey for Rc<A> {
    fn seal_detached(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; TAG_LEN], CryptoError> {
        let tag = self
            .0
            .encrypt_in_place_detached(GenericArray::from_slice(nonce), aad, in_out)
            .map_err(|_| CryptoError::AeadSealFailed)?;
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(&tag);
        Ok(out)
    }

    fn open_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        self.0
            .decrypt_in_place(GenericArray::from_slice(nonce), aad, buf)
            .map_err(|_| CryptoError::AeadOpenFailed)
    }
}
