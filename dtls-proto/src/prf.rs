//! The TLS 1.2 PRF and everything derived from it.
//!
//! - PRF: RFC 5246 §5, `P_hash` with the suite's hash.
//! - Extended master secret: RFC 7627 §4 (the only master secret this crate computes).
//! - Key block: RFC 5246 §6.3, AEAD layout of RFC 5288 §3 / RFC 7905 §2.
//! - Finished: RFC 5246 §7.4.9.
//! - Exporter: RFC 5705 §4.

use crate::cipher_suite::CipherSuite;
use crate::crypto::{CryptoProvider, HashAlgorithm};

/// Length of the master secret (RFC 5246 §8.1).
pub const MASTER_SECRET_LEN: usize = 48;
/// Length of Finished.verify_data (RFC 5246 §7.4.9).
pub const VERIFY_DATA_LEN: usize = 12;
/// How many pieces a PRF seed is given in: the exporter's client_random ‖ server_random ‖
/// context length ‖ context is the longest. Unused pieces are empty.
const SEED_PARTS: usize = 4;
/// The longest key block: two AES-256 or ChaCha20 keys and two 12-byte IVs.
const MAX_KEY_BLOCK_LEN: usize = 2 * (32 + 12);

/// The master secret.
pub type MasterSecret = [u8; MASTER_SECRET_LEN];

/// `PRF(secret, label, seed)` filling `out` (RFC 5246 §5): `P_hash` with `A(1) = HMAC(secret,
/// label ‖ seed)`, `A(i) = HMAC(secret, A(i-1))` and output blocks `HMAC(secret, A(i) ‖ label ‖
/// seed)`. The seed is handed over in pieces, so nothing is concatenated and nothing allocated
/// but the keyed HMAC.
pub fn prf(
    provider: &dyn CryptoProvider,
    hash: HashAlgorithm,
    secret: &[u8],
    label: &[u8],
    seed: [&[u8]; SEED_PARTS],
    out: &mut [u8],
) {
    let key = provider.hmac_key(hash, secret);
    let [s0, s1, s2, s3] = seed;
    let mut a = key.sign(&[label, s0, s1, s2, s3]);
    let blocks = out.len().div_ceil(hash.output_len());
    for (i, chunk) in out.chunks_mut(hash.output_len()).enumerate() {
        let block = key.sign(&[&a, label, s0, s1, s2, s3]);
        let n = chunk.len().min(block.len());
        chunk[..n].copy_from_slice(&block[..n]);
        if i + 1 < blocks {
            a = key.sign(&[&a]);
        }
    }
}

/// The extended master secret: `PRF(pre_master, "extended master secret", session_hash)`.
pub fn extended_master_secret(
    provider: &dyn CryptoProvider,
    suite: CipherSuite,
    pre_master_secret: &[u8],
    session_hash: &[u8],
) -> MasterSecret {
    let mut out = [0u8; MASTER_SECRET_LEN];
    prf(
        provider,
        suite.prf_hash(),
        pre_master_secret,
        b"extended master secret",
        [session_hash, &[], &[], &[]],
        &mut out,
    );
    out
}

/// The write keys and implicit IVs of both directions, in key block order (RFC 5246 §6.3:
/// client key, server key, client IV, server IV; AEAD suites have no MAC keys).
#[derive(Clone, PartialEq, Eq)]
pub struct KeyBlock {
    block: [u8; MAX_KEY_BLOCK_LEN],
    key_len: usize,
    iv_len: usize,
}

impl KeyBlock {
    /// client_write_key.
    pub fn client_key(&self) -> &[u8] {
        &self.block[..self.key_len]
    }

    /// server_write_key.
    pub fn server_key(&self) -> &[u8] {
        &self.block[self.key_len..2 * self.key_len]
    }

    /// client_write_IV.
    pub fn client_iv(&self) -> &[u8] {
        let start = 2 * self.key_len;
        &self.block[start..start + self.iv_len]
    }

    /// server_write_IV.
    pub fn server_iv(&self) -> &[u8] {
        let start = 2 * self.key_len + self.iv_len;
        &self.block[start..start + self.iv_len]
    }
}

impl std::fmt::Debug for KeyBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyBlock { .. }")
    }
}

/// Expands the master secret into record keys.
pub fn key_block(
    provider: &dyn CryptoProvider,
    suite: CipherSuite,
    master_secret: &MasterSecret,
    client_random: &[u8; 32],
    server_random: &[u8; 32],
) -> KeyBlock {
    let aead = suite.aead();
    let (key_len, iv_len) = (aead.key_len(), aead.fixed_iv_len());
    let mut block = [0u8; MAX_KEY_BLOCK_LEN];
    prf(
        provider,
        suite.prf_hash(),
        master_secret,
        b"key expansion",
        [server_random, client_random, &[], &[]],
        &mut block[..2 * (key_len + iv_len)],
    );
    KeyBlock {
        block,
        key_len,
        iv_len,
    }
}

/// Finished.verify_data for the given side over `transcript_hash`.
pub fn verify_data(
    provider: &dyn CryptoProvider,
    suite: CipherSuite,
    master_secret: &MasterSecret,
    client: bool,
    transcript_hash: &[u8],
) -> [u8; VERIFY_DATA_LEN] {
    let label: &[u8] = if client {
        b"client finished"
    } else {
        b"server finished"
    };
    let mut out = [0u8; VERIFY_DATA_LEN];
    prf(
        provider,
        suite.prf_hash(),
        master_secret,
        label,
        [transcript_hash, &[], &[], &[]],
        &mut out,
    );
    out
}

/// The secrets of an established session: what the exporter needs (RFC 5705).
#[derive(Clone)]
pub struct SessionSecrets {
    /// Negotiated suite (its PRF hash).
    pub suite: CipherSuite,
    /// The extended master secret.
    pub master_secret: MasterSecret,
    /// ClientHello.random.
    pub client_random: [u8; 32],
    /// ServerHello.random.
    pub server_random: [u8; 32],
}

impl std::fmt::Debug for SessionSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionSecrets")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

/// RFC 5705 keying material exporter (§4: seed = client_random ‖ server_random, then with a
/// context its 2-byte length and the context); `context: None` is the no-context form
/// DTLS-SRTP uses.
pub fn export_keying_material(
    provider: &dyn CryptoProvider,
    session: &SessionSecrets,
    label: &[u8],
    context: Option<&[u8]>,
    out_len: usize,
) -> Vec<u8> {
    let context = context.map(|c| &c[..c.len().min(0xffff)]);
    let context_len = context.map_or(0, <[u8]>::len) as u16;
    let context_len = context_len.to_be_bytes();
    let context_len: &[u8] = if context.is_some() { &context_len } else { &[] };
    let mut out = vec![0u8; out_len];
    prf(
        provider,
        session.suite.prf_hash(),
        &session.master_secret,
        label,
        [
            &session.client_random,
            &session.server_random,
            context_len,
            context.unwrap_or_default(),
        ],
        &mut out,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::providers;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The widely published TLS 1.2 PRF-SHA256 test vector (IETF TLS WG, Chris Newman).
    #[test]
    fn prf_sha256_vector() {
        let secret = hex("9bbe436ba940f017b17652849a71db35");
        let seed = hex("a0ba9f936cda311827a6f796ffd5198c");
        let expected = hex(
            "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff70187347b66",
        );
        for p in providers() {
            let mut out = vec![0; expected.len()];
            prf(
                p,
                HashAlgorithm::Sha256,
                &secret,
                b"test label",
                [&seed, &[], &[], &[]],
                &mut out,
            );
            assert_eq!(out, expected, "{}", p.name());
        }
    }

    /// The matching PRF-SHA384 vector.
    #[test]
    fn prf_sha384_vector() {
        let secret = hex("b80b733d6ceefcdc71566ea48e5567df");
        let seed = hex("cd665cf6a8447dd6ff8b27555edb7465");
        let expected = hex(
            "7b0c18e9ced410ed1804f2cfa34a336a1c14dffb4900bb5fd7942107e81c83cde9ca0faa60be9fe34f82b1233c9146a0e534cb400fed2700884f9dc236f80edd8bfa961144c9e8d792eca722a7b32fc3d416d473ebc2c5fd4abfdad05d9184259b5bf8cd4d90fa0d31e2dec479e4f1a26066f2eea9a69236a3e52655c9e9aee691c8f3a26854308d5eaa3be85e0990703d73e56f",
        );
        for p in providers() {
            let mut out = vec![0; expected.len()];
            prf(
                p,
                HashAlgorithm::Sha384,
                &secret,
                b"test label",
                [&seed, &[], &[], &[]],
                &mut out,
            );
            assert_eq!(out, expected, "{}", p.name());
        }
    }
}
