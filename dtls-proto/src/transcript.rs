//! The handshake transcript: every handshake message of this handshake, in its canonical DTLS
//! form (RFC 6347 §4.2.6: header with offset 0 and the full length), from the ClientHello the
//! server answered (the cookie-less ClientHello and HelloVerifyRequest are excluded, §4.2.1).
//!
//! DTLS 1.3 hashes the TLS 1.3 form instead: type and 24-bit length, without message_seq and
//! the fragment fields (RFC 9147 §5.2); after a HelloRetryRequest the first ClientHello is
//! replaced by a synthetic message_hash message carrying its hash (RFC 8446 §4.4.1).
//!
//! The bytes are kept for CertificateVerify, which signs them whole (RFC 5246 §7.4.8); the PRF
//! hash runs alongside so the session hash (RFC 7627 §3) and each Finished (RFC 5246 §7.4.9)
//! cost only the bytes added since the last one.

use crate::crypto::{CryptoProvider, Digest, HashAlgorithm, HashContext};
use crate::error::Error;
use crate::handshake::{self, HandshakeType};

/// Bound on the transcript of one handshake.
const MAX_TRANSCRIPT: usize = 128 * 1024;
/// Room reserved up front: a WebRTC handshake's transcript (two certificates) is 2–3 KB.
const INITIAL_CAPACITY: usize = 4096;

/// The transcript and its running hash.
#[derive(Default)]
pub struct Transcript {
    bytes: Vec<u8>,
    running: Option<(HashAlgorithm, Box<dyn HashContext>)>,
    /// Messages go in the TLS 1.3 form (DTLS 1.3).
    tls13: bool,
}

/// The message_hash handshake type of RFC 8446 §4.4.1.
const MESSAGE_HASH: u8 = 254;
/// The TLS handshake header: type and 24-bit length.
const TLS_HEADER_LEN: usize = 4;

impl Transcript {
    /// An empty transcript with room for a typical handshake.
    pub fn new() -> Self {
        Self {
            bytes: Vec::with_capacity(INITIAL_CAPACITY),
            running: None,
            tls13: false,
        }
    }

    /// Starts over in the DTLS 1.2 form (a DTLS 1.3 client that fell back).
    pub fn reset_dtls12(&mut self) {
        self.reset();
        self.tls13 = false;
    }

    /// Starts over in the DTLS 1.3 form.
    pub fn reset_tls13(&mut self) {
        self.reset();
        self.tls13 = true;
    }

    /// Replaces everything so far (the first ClientHello) by `message_hash` with its hash
    /// under `alg` (RFC 8446 §4.4.1), before the HelloRetryRequest is added.
    pub fn replace_with_message_hash(&mut self, provider: &dyn CryptoProvider, alg: HashAlgorithm) {
        let hash = provider.hash(alg, &[&self.bytes]);
        self.start_with_message_hash(&hash);
    }

    /// Starts over in the DTLS 1.3 form with a message_hash message carrying `hash`.
    pub fn start_with_message_hash(&mut self, hash: &[u8]) {
        self.reset_tls13();
        let hash = hash.get(..48).unwrap_or(hash);
        // At most 48 bytes: the 24-bit length's top bytes are zero.
        self.bytes
            .extend_from_slice(&[MESSAGE_HASH, 0, 0, hash.len() as u8]);
        self.bytes.extend_from_slice(hash);
    }

    /// Everything so far.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Starts over (the client learns only from ServerHello which ClientHello counts).
    pub fn reset(&mut self) {
        self.bytes.clear();
        self.running = None;
    }

    /// Appends one whole message.
    pub fn push(&mut self, msg_type: HandshakeType, seq: u16, body: &[u8]) -> Result<(), Error> {
        self.push_encoded(msg_type, seq, |out| out.extend_from_slice(body))
    }

    /// Appends one whole message whose body `encode` writes (the client's ClientHello enters
    /// the transcript this way, encoded straight into it).
    pub fn push_encoded(
        &mut self,
        msg_type: HandshakeType,
        seq: u16,
        encode: impl FnOnce(&mut Vec<u8>),
    ) -> Result<(), Error> {
        let start = self.bytes.len();
        let header_len = if self.tls13 {
            TLS_HEADER_LEN
        } else {
            handshake::HEADER_LEN
        };
        let body_start = start + header_len;
        self.bytes.resize(body_start, 0);
        encode(&mut self.bytes);
        let len = self.bytes.len() - body_start;
        if self.bytes.len() > MAX_TRANSCRIPT {
            self.bytes.truncate(start);
            return Err(Error::HandshakeMessageTooLarge {
                len,
                max: MAX_TRANSCRIPT,
            });
        }
        // RFC 6347 §4.2.6: as if sent in one fragment (offset 0, fragment_length = length);
        // the TLS form is its first four bytes (RFC 9147 §5.2).
        let header = handshake::fragment_header(msg_type, seq, len, 0, len);
        self.bytes[start..body_start].copy_from_slice(&header[..header_len]);
        if let Some((_, ctx)) = &mut self.running {
            ctx.update(&self.bytes[start..]);
        }
        Ok(())
    }

    /// The hash of everything so far.
    pub fn hash(&mut self, provider: &dyn CryptoProvider, alg: HashAlgorithm) -> Digest {
        match &self.running {
            Some((running_alg, ctx)) if *running_alg == alg => ctx.digest(),
            _ => {
                let mut ctx = provider.hash_context(alg);
                ctx.update(&self.bytes);
                let digest = ctx.digest();
                self.running = Some((alg, ctx));
                digest
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::providers;

    #[test]
    fn running_hash_equals_hash_of_the_bytes() {
        for p in providers() {
            for alg in [HashAlgorithm::Sha256, HashAlgorithm::Sha384] {
                let mut t = Transcript::new();
                t.push(HandshakeType::ClientHello, 0, &[1; 100]).unwrap();
                assert_eq!(t.hash(p, alg), p.hash(alg, &[t.bytes()]));
                let mut body = Vec::new();
                handshake::encode_fragment(
                    HandshakeType::ClientHello,
                    0,
                    100,
                    0,
                    &[1; 100],
                    &mut body,
                );
                assert_eq!(t.bytes(), body);
                t.push(HandshakeType::ServerHello, 1, &[2; 70]).unwrap();
                t.push(HandshakeType::ServerHelloDone, 2, &[]).unwrap();
                assert_eq!(t.hash(p, alg), p.hash(alg, &[t.bytes()]), "{}", p.name());
                t.reset();
                assert!(t.bytes().is_empty());
                assert_eq!(t.hash(p, alg), p.hash(alg, &[b""]));
            }
        }
        let mut t = Transcript::new();
        t.reset_tls13();
        t.push(HandshakeType::ClientHello, 7, &[1, 2, 3]).unwrap();
        assert_eq!(
            t.bytes(),
            [1, 0, 0, 3, 1, 2, 3],
            "TLS form: no message_seq, no fragment"
        );
        for p in providers() {
            let mut t = Transcript::new();
            t.reset_tls13();
            t.push(HandshakeType::ClientHello, 0, &[9; 50]).unwrap();
            let ch1 = p.hash(HashAlgorithm::Sha256, &[t.bytes()]);
            t.replace_with_message_hash(p, HashAlgorithm::Sha256);
            let mut expected = vec![254, 0, 0, 32];
            expected.extend_from_slice(&ch1);
            assert_eq!(t.bytes(), expected);
            assert_eq!(
                t.hash(p, HashAlgorithm::Sha256),
                p.hash(HashAlgorithm::Sha256, &[&expected])
            );
        }
        assert!(matches!(
            Transcript::new().push(HandshakeType::Certificate, 0, &vec![0; MAX_TRANSCRIPT]),
            Err(Error::HandshakeMessageTooLarge { .. })
        ));
    }
}
