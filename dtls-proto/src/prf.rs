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

/// `PRF(secret, label, seed)` truncated to `out_len` bytes.
pub fn prf(
    provider: &dyn CryptoProvider,
    hash: HashAlgorithm,
    secret: &[u8],
    label: &[u8],
    seed: &[&[u8]],
    out_len: usize,
) -> Vec<u8> {
    let mut label_seed =
        Vec::with_capacity(label.len() + seed.iter().map(|s| s.len()).sum::<usize>());
    label_seed.extend_from_slice(label);
    seed.iter().for_each(|s| label_seed.extend_from_slice(s));

    let mut out = Vec::with_capacity(out_len + hash.output_len());
    // A(1) = HMAC(secret, seed); A(i) = HMAC(secret, A(i-1)), in two buffers taking turns.
    let key = provider.hmac_key(hash, secret);
    let (mut a, mut next) = (
        Vec::with_capacity(hash.output_len()),
        Vec::with_capacity(hash.output_len()),
    );
    key.sign_append(&[&label_seed], &mut a);
    while out.len() < out_len {
        key.sign_append(&[&a, &label_seed], &mut out);
        if out.len() < out_len {
            next.clear();
            key.sign_append(&[&a], &mut next);
            std::mem::swap(&mut a, &mut next);
        }
    }
    out.truncate(out_len);
    out
}

/// The extended master secret: `PRF(pre_master, "extended master secret", session_hash)`.
pub fn extended_master_secret(
    provider: &dyn CryptoProvider,
    suite: CipherSuite,
    pre_master_secret: &[u8],
    session_hash: &[u8],
) -> Vec<u8> {
    prf(
        provider,
        suite.prf_hash(),
        pre_master_secret,
        b"extended master secret",
        &[session_hash],
        MASTER_SECRET_LEN,
    )
}

/// The write keys and implicit IVs of both directions.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyBlock {
    /// client_write_key.
    pub client_key: Vec<u8>,
    /// server_write_key.
    pub server_key: Vec<u8>,
    /// client_write_IV.
    pub client_iv: Vec<u8>,
    /// server_write_IV.
    pub server_iv: Vec<u8>,
}

impl std::fmt::Debug for KeyBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyBlock { .. }")
    }
}

/// Expands the master secret into record keys (AEAD suites have no MAC keys).
pub fn key_block(
    provider: &dyn CryptoProvider,
    suite: CipherSuite,
    master_secret: &[u8],
    client_random: &[u8; 32],
    server_random: &[u8; 32],
) -> KeyBlock {
    let aead = suite.aead();
    let (k, iv) = (aead.key_len(), aead.fixed_iv_len());
    let block = prf(
        provider,
        suite.prf_hash(),
        master_secret,
        b"key expansion",
        &[server_random, client_random],
        2 * (k + iv),
    );
    KeyBlock {
        client_key: block[..k].to_vec(),
        server_key: block[k..2 * k].to_vec(),
        client_iv: block[2 * k..2 * k + iv].to_vec(),
        server_iv: block[2 * k + iv..].to_vec(),
    }
}

/// Finished.verify_data for the given side over `transcript_hash`.
pub fn verify_data(
    provider: &dyn CryptoProvider,
    suite: CipherSuite,
    master_secret: &[u8],
    client: bool,
    transcript_hash: &[u8],
) -> Vec<u8> {
    let label: &[u8] = if client {
        b"client finished"
    } else {
        b"server finished"
    };
    prf(
        provider,
        suite.prf_hash(),
        master_secret,
        label,
        &[transcript_hash],
        VERIFY_DATA_LEN,
    )
}

/// The secrets of an established session: what the exporter needs (RFC 5705).
#[derive(Clone)]
pub struct SessionSecrets {
    /// Negotiated suite (its PRF hash).
    pub suite: CipherSuite,
    /// The extended master secret.
    pub master_secret: Vec<u8>,
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

/// RFC 5705 keying material exporter; `context: None` is the no-context form DTLS-SRTP uses.
pub fn export_keying_material(
    provider: &dyn CryptoProvider,
    session: &SessionSecrets,
    label: &[u8],
    context: Option<&[u8]>,
    out_len: usize,
) -> Vec<u8> {
    let mut seed = Vec::with_capacity(66 + context.map_or(0, |c| c.len()));
    seed.extend_from_slice(&session.client_random);
    seed.extend_from_slice(&session.server_random);
    if let Some(context) = context {
        seed.extend_from_slice(&(context.len().min(0xffff) as u16).to_be_bytes());
        seed.extend_from_slice(&context[..context.len().min(0xffff)]);
    }
    prf(
        provider,
        session.suite.prf_hash(),
        &session.master_secret,
        label,
        &[&seed],
        out_len,
    )
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
            let out = prf(
                p,
                HashAlgorithm::Sha256,
                &secret,
                b"test label",
                &[&seed],
                expected.len(),
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
            let out = prf(
                p,
                HashAlgorithm::Sha384,
                &secret,
                b"test label",
                &[&seed],
                expected.len(),
            );
            assert_eq!(out, expected, "{}", p.name());
        }
    }
}
