//! The TLS 1.3 key schedule as DTLS 1.3 uses it (RFC 8446 §7.1, §7.3, §4.4.4, §7.2, §7.5;
//! RFC 9147 §5.9 and §4.2.3).
//!
//! ```text
//!              0
//!              |
//!    PSK (0) → HKDF-Extract = Early Secret
//!              |
//!        Derive-Secret(., "derived", "")
//!              |
//!   (EC)DHE → HKDF-Extract = Handshake Secret ─┬→ "c hs traffic" (CH..SH)
//!              |                               └→ "s hs traffic" (CH..SH)
//!        Derive-Secret(., "derived", "")
//!              |
//!        0 → HKDF-Extract = Master Secret ─┬→ "c ap traffic" (CH..server Finished)
//!                                          ├→ "s ap traffic" (CH..server Finished)
//!                                          └→ "exp master"   (CH..server Finished)
//! ```
//!
//! WebRTC uses no pre-shared keys, so the early secret is always the one of a zero PSK and
//! there is no early data (epoch 1 is never used). Each stage is a type holding only its
//! secret; the next stage is derived from it, never stored beside it.
//!
//! Cost (issue 18): every HMAC key costs two hash blocks to set up (its inner and outer pads),
//! as much as the HMAC of a short message after it. A secret that several labels expand is
//! therefore keyed once ([`Prk`]): the handshake secret gives both handshake traffic secrets
//! and the next "derived" one, the master secret both application secrets and the exporter, a
//! traffic secret its `key`, `iv` and `sn`. The zero-PSK stage before the (EC)DHE input is a
//! constant per hash and label prefix (see [`Hkdf::zero_psk_derived`]), as is
//! `Transcript-Hash("")`; both are tabled for DTLS 1.3 and checked against the computation.
//!
//! DTLS 1.3 prefixes every HKDF label with `"dtls13"` where TLS 1.3 has `"tls13 "` (RFC 9147
//! §5.9), so its secrets differ from TLS 1.3's for the same inputs. The machinery is checked
//! against the TLS 1.3 vectors of RFC 8448 §3 with the TLS prefix, and the prefix separately.

use crate::crypto::{CryptoProvider, Digest, HashAlgorithm, HkdfPrk, MAX_DIGEST_LEN};

/// The HKDF label prefix of DTLS 1.3 (RFC 9147 §5.9).
const DTLS13_LABEL_PREFIX: &[u8] = b"dtls13";
/// Longest HkdfLabel: length (2), label (1 + 255), context (1 + 255).
const MAX_HKDF_LABEL_LEN: usize = 2 + 1 + 255 + 1 + 255;
/// SHA-256 of the empty string.
const SHA256_EMPTY: [u8; 32] = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];
/// SHA-384 of the empty string.
const SHA384_EMPTY: [u8; 48] = [
    0x38, 0xb0, 0x60, 0xa7, 0x51, 0xac, 0x96, 0x38, 0x4c, 0xd9, 0x32, 0x7e, 0xb1, 0xb1, 0xe3, 0x6a,
    0x21, 0xfd, 0xb7, 0x11, 0x14, 0xbe, 0x07, 0x43, 0x4c, 0x0c, 0xc7, 0xbf, 0x63, 0xf6, 0xe1, 0xda,
    0x27, 0x4e, 0xde, 0xbf, 0xe7, 0x6f, 0x65, 0xfb, 0xd5, 0x1a, 0xd2, 0xf1, 0x48, 0x98, 0xb9, 0x5b,
];
/// `Derive-Secret(HKDF-Extract(0, 0), "derived", "")` with SHA-256 and the DTLS 1.3 prefix.
const DTLS13_SHA256_ZERO_PSK_DERIVED: [u8; 32] = [
    0xb1, 0x7b, 0xce, 0x94, 0x51, 0xee, 0x8b, 0xc6, 0xe8, 0xae, 0xbc, 0x0a, 0xa9, 0xe9, 0x82, 0x95,
    0x67, 0x7a, 0x4a, 0x6a, 0x91, 0xf7, 0x84, 0x40, 0x83, 0x31, 0x46, 0xe4, 0x65, 0xf2, 0xff, 0x95,
];
/// The same with SHA-384.
const DTLS13_SHA384_ZERO_PSK_DERIVED: [u8; 48] = [
    0x27, 0x00, 0x86, 0x05, 0xd3, 0x39, 0x6f, 0x88, 0x44, 0x19, 0x75, 0x65, 0xca, 0xec, 0xc5, 0x92,
    0xb3, 0xe5, 0x8f, 0x2e, 0xae, 0x55, 0xf8, 0x41, 0xb5, 0x77, 0xcf, 0xbc, 0xab, 0xb4, 0x7e, 0x22,
    0x1f, 0x67, 0x4e, 0xd3, 0xa6, 0x8a, 0xa8, 0x93, 0x43, 0x9c, 0xf5, 0x57, 0xf1, 0x11, 0xc0, 0xfc,
];

/// HKDF (RFC 5869) over the provider's HMAC with one hash and one label prefix.
#[derive(Debug, Clone, Copy)]
pub struct Hkdf {
    provider: &'static dyn CryptoProvider,
    hash: HashAlgorithm,
    prefix: &'static [u8],
}

impl Hkdf {
    /// HKDF with the suite's hash and the DTLS 1.3 label prefix.
    pub fn dtls13(provider: &'static dyn CryptoProvider, hash: HashAlgorithm) -> Self {
        Self {
            provider,
            hash,
            prefix: DTLS13_LABEL_PREFIX,
        }
    }

    /// The hash.
    pub fn hash(&self) -> HashAlgorithm {
        self.hash
    }

    /// The provider.
    pub fn provider(&self) -> &'static dyn CryptoProvider {
        self.provider
    }

    /// `HKDF-Extract(salt, IKM)` = HMAC-Hash(salt, IKM) (RFC 5869 §2.2).
    pub fn extract(&self, salt: &[u8], ikm: &[u8]) -> Digest {
        self.provider.hmac(self.hash, salt, &[ikm])
    }

    /// `secret` keyed once for the several labels expanded from it.
    pub fn prk(&self, secret: &[u8]) -> Prk {
        Prk {
            hkdf: *self,
            key: self.provider.hkdf_prk(self.hash, secret),
        }
    }

    /// `HKDF-Expand-Label(Secret, Label, Context, out.len())` (RFC 8446 §7.1), keying `secret`
    /// for this one label (see [`Prk::expand_label`]).
    pub fn expand_label(&self, secret: &[u8], label: &[u8], context: &[u8], out: &mut [u8]) {
        self.prk(secret).expand_label(label, context, out);
    }

    /// Encodes the HkdfLabel into `buf` and returns it. The label (with its prefix) and the
    /// context are cut at 255 bytes, so the whole always fits `buf`.
    fn hkdf_label<'b>(
        &self,
        label: &[u8],
        context: &[u8],
        len: usize,
        buf: &'b mut [u8; MAX_HKDF_LABEL_LEN],
    ) -> &'b [u8] {
        let label = &label[..label.len().min(255 - self.prefix.len())];
        let context = &context[..context.len().min(255)];
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            buf[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        put(&u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes());
        // Both lengths were cut to 255 above.
        put(&[(self.prefix.len() + label.len()) as u8]);
        put(self.prefix);
        put(label);
        put(&[context.len() as u8]);
        put(context);
        &buf[..at]
    }

    /// `Derive-Secret(Secret, Label, Messages)` given `Transcript-Hash(Messages)`.
    pub fn derive_secret(&self, secret: &[u8], label: &[u8], transcript_hash: &[u8]) -> Digest {
        self.prk(secret).derive_secret(label, transcript_hash)
    }

    /// `Transcript-Hash("")`, the context of the "derived" secrets and of exporters.
    fn empty_hash(&self) -> Digest {
        match self.hash {
            HashAlgorithm::Sha256 => Digest::new(&SHA256_EMPTY),
            HashAlgorithm::Sha384 => Digest::new(&SHA384_EMPTY),
        }
    }

    /// `Derive-Secret(Early Secret, "derived", "")` for the zero PSK, the salt of the handshake
    /// secret: the same for every handshake with this hash and prefix, so DTLS 1.3's are
    /// tabled (checked against the computation in the tests); other prefixes compute it.
    fn zero_psk_derived(&self) -> Digest {
        match (self.prefix == DTLS13_LABEL_PREFIX, self.hash) {
            (true, HashAlgorithm::Sha256) => Digest::new(&DTLS13_SHA256_ZERO_PSK_DERIVED),
            (true, HashAlgorithm::Sha384) => Digest::new(&DTLS13_SHA384_ZERO_PSK_DERIVED),
            (false, _) => self.compute_zero_psk_derived(),
        }
    }

    /// What [`Self::zero_psk_derived`] tables: RFC 8446 §7.1 from the zero PSK.
    fn compute_zero_psk_derived(&self) -> Digest {
        let zeros = self.zeros();
        let early = self.extract(&zeros, &zeros);
        self.derive_secret(&early, b"derived", &self.empty_hash())
    }

    /// Hash.length zero bytes.
    fn zeros(&self) -> Digest {
        Digest::new(&[0u8; MAX_DIGEST_LEN][..self.hash.output_len()])
    }

    /// `finished_key = HKDF-Expand-Label(base_key, "finished", "", Hash.length)` (RFC 8446
    /// §4.4.4) from the sender's handshake traffic secret, already a [`Prk`]; Finished is
    /// `HMAC(finished_key, transcript_hash)`.
    pub fn finished_key(&self, base_key: &Prk) -> Digest {
        base_key.derive_secret(b"finished", &[])
    }

    /// Finished.verify_data (RFC 8446 §4.4.4): `HMAC(finished_key, transcript_hash)` with
    /// `finished_key = HKDF-Expand-Label(base_key, "finished", "", Hash.length)`, `base_key`
    /// being the sender's handshake traffic secret. The handshake keeps the keyed
    /// [`Self::finished_key`] instead; this is its definition, for the RFC 8448 vectors.
    #[cfg(test)]
    pub fn finished_verify_data(&self, base_key: &Digest, transcript_hash: &[u8]) -> Digest {
        let finished_key = self.finished_key(&self.prk(base_key));
        self.provider
            .hmac(self.hash, &finished_key, &[transcript_hash])
    }

    /// The application traffic secret of the next epoch after a KeyUpdate (RFC 8446 §7.2):
    /// `HKDF-Expand-Label(secret, "traffic upd", "", Hash.length)`.
    pub fn next_traffic_secret(&self, secret: &Digest) -> Digest {
        self.derive_secret(secret, b"traffic upd", &[])
    }
}

/// A secret made into the provider's HKDF pseudorandom key once (RFC 5869 §2.3; with
/// HKDF-Expand over HMAC, the HMAC keyed once), for every label expanded from it.
pub struct Prk {
    hkdf: Hkdf,
    key: Box<dyn HkdfPrk>,
}

impl Prk {
    /// The HKDF the secret belongs to.
    pub fn hkdf(&self) -> &Hkdf {
        &self.hkdf
    }

    /// `HKDF-Expand-Label(Secret, Label, Context, out.len())` (RFC 8446 §7.1): HKDF-Expand
    /// with the info `HkdfLabel { uint16 length; opaque label<7..255> = prefix ‖ Label;
    /// opaque context<0..255> }`. Labels and contexts are this crate's constants and digests,
    /// far below the 255-byte limits; `out` is at most a few hash lengths.
    pub fn expand_label(&self, label: &[u8], context: &[u8], out: &mut [u8]) {
        let mut info = [0u8; MAX_HKDF_LABEL_LEN];
        let info = self.hkdf.hkdf_label(label, context, out.len(), &mut info);
        self.key.expand(info, out);
    }

    /// `Derive-Secret(Secret, Label, Messages)` given `Transcript-Hash(Messages)`.
    pub fn derive_secret(&self, label: &[u8], transcript_hash: &[u8]) -> Digest {
        let mut out = [0u8; MAX_DIGEST_LEN];
        let out = &mut out[..self.hkdf.hash.output_len()];
        self.expand_label(label, transcript_hash, out);
        Digest::new(out)
    }
}

impl std::fmt::Debug for Prk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Prk { .. }")
    }
}

/// The traffic secrets of both directions of one stage.
#[derive(Clone, PartialEq, Eq)]
pub struct TrafficSecrets {
    /// The client's write secret.
    pub client: Digest,
    /// The server's write secret.
    pub server: Digest,
}

impl std::fmt::Debug for TrafficSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TrafficSecrets { .. }")
    }
}

/// The handshake secret: the zero-PSK early secret combined with the (EC)DHE or hybrid
/// shared secret.
pub struct HandshakeSecret {
    hkdf: Hkdf,
    #[cfg(test)]
    secret: Digest,
    prk: Prk,
}

impl HandshakeSecret {
    /// Runs the schedule from the zero PSK through the shared secret.
    pub fn new(hkdf: Hkdf, shared_secret: &[u8]) -> Self {
        let secret = hkdf.extract(&hkdf.zero_psk_derived(), shared_secret);
        Self {
            hkdf,
            #[cfg(test)]
            secret,
            prk: hkdf.prk(&secret),
        }
    }

    /// `c hs traffic` and `s hs traffic` over `Transcript-Hash(ClientHello..ServerHello)`.
    pub fn traffic_secrets(&self, hello_hash: &[u8]) -> TrafficSecrets {
        TrafficSecrets {
            client: self.prk.derive_secret(b"c hs traffic", hello_hash),
            server: self.prk.derive_secret(b"s hs traffic", hello_hash),
        }
    }

    /// The master secret that follows.
    pub fn master_secret(&self) -> MasterSecret {
        let derived = self.prk.derive_secret(b"derived", &self.hkdf.empty_hash());
        let secret = self.hkdf.extract(&derived, &self.hkdf.zeros());
        MasterSecret {
            hkdf: self.hkdf,
            #[cfg(test)]
            secret,
            prk: self.hkdf.prk(&secret),
        }
    }
}

impl std::fmt::Debug for HandshakeSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HandshakeSecret { .. }")
    }
}

/// The master secret.
pub struct MasterSecret {
    hkdf: Hkdf,
    #[cfg(test)]
    secret: Digest,
    prk: Prk,
}

impl MasterSecret {
    /// `c ap traffic` and `s ap traffic` over `Transcript-Hash(ClientHello..server Finished)`.
    pub fn traffic_secrets(&self, server_finished_hash: &[u8]) -> TrafficSecrets {
        TrafficSecrets {
            client: self
                .prk
                .derive_secret(b"c ap traffic", server_finished_hash),
            server: self
                .prk
                .derive_secret(b"s ap traffic", server_finished_hash),
        }
    }

    /// The exporter master secret over `Transcript-Hash(ClientHello..server Finished)`.
    pub fn exporter(&self, server_finished_hash: &[u8]) -> Exporter {
        Exporter {
            hkdf: self.hkdf,
            secret: self.prk.derive_secret(b"exp master", server_finished_hash),
        }
    }
}

impl std::fmt::Debug for MasterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterSecret { .. }")
    }
}

/// The exporter master secret (RFC 8446 §7.5), what DTLS-SRTP keys come from.
#[derive(Clone)]
pub struct Exporter {
    hkdf: Hkdf,
    secret: Digest,
}
impl Exporter {
    /// `TLS-Exporter(label, context, out.len())` = `HKDF-Expand-Label(Derive-Secret(Secret,
    /// label, ""), "exporter", Hash(context), out.len())`. TLS 1.3 does not tell an absent
    /// context from an empty one (RFC 8446 §7.5), so `None` and `Some(&[])` agree.
    pub fn export(&self, label: &[u8], context: Option<&[u8]>, out: &mut [u8]) {
        let hkdf = &self.hkdf;
        let per_label = hkdf.derive_secret(&self.secret, label, &hkdf.empty_hash());
        let context_hash = match context {
            // DTLS-SRTP exports without a context: the hash of nothing is a constant.
            None | Some([]) => hkdf.empty_hash(),
            Some(context) => hkdf.provider.hash(hkdf.hash, &[context]),
        };
        hkdf.expand_label(&per_label, b"exporter", &context_hash, out);
    }
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Exporter { .. }")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::crypto::providers;

    pub(crate) fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// HKDF with TLS 1.3's label prefix, for the RFC 8448 vectors.
    fn tls13(provider: &'static dyn CryptoProvider) -> Hkdf {
        Hkdf {
            provider,
            hash: HashAlgorithm::Sha256,
            prefix: b"tls13 ",
        }
    }

    fn expand(hkdf: &Hkdf, secret: &[u8], label: &[u8], len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        hkdf.expand_label(secret, label, &[], &mut out);
        out
    }

    // RFC 8448 §3, "Simple 1-RTT Handshake".
    const SHARED: &str = "8bd4054fb55b9d63fdfbacf9f04b9f0d35e6d63f537563efd46272900f89492d";
    const HELLO_HASH: &str = "860c06edc07858ee8e78f0e7428c58edd6b43f2ca3e6e95f02ed063cf0e1cad8";
    const SERVER_FINISHED_HASH: &str =
        "9608102a0f1ccc6db6250b7b7e417b1a000eaada3daae4777a7686c9ff83df13";

    #[test]
    fn rfc8448_handshake_secrets_keys_and_finished() {
        for p in providers() {
            let hkdf = tls13(p);
            let zeros = [0u8; 32];
            assert_eq!(
                hkdf.extract(&zeros, &zeros).as_bytes(),
                hex("33ad0a1c607ec03b09e6cd9893680ce210adf300aa1f2660e1b22e10f170f92a")
            );
            let hs = HandshakeSecret::new(hkdf, &hex(SHARED));
            assert_eq!(
                hs.secret.as_bytes(),
                hex("1dc826e93606aa6fdc0aadc12f741b01046aa6b99f691ed221a9f0ca043fbeac")
            );
            let traffic = hs.traffic_secrets(&hex(HELLO_HASH));
            assert_eq!(
                traffic.client.as_bytes(),
                hex("b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21")
            );
            assert_eq!(
                traffic.server.as_bytes(),
                hex("b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38")
            );
            let (c, s) = (&traffic.client, &traffic.server);
            assert_eq!(
                expand(&hkdf, s, b"key", 16),
                hex("3fce516009c21727d0f2e4e86ee403bc")
            );
            assert_eq!(expand(&hkdf, s, b"iv", 12), hex("5d313eb2671276ee13000b30"));
            assert_eq!(
                expand(&hkdf, c, b"key", 16),
                hex("dbfaa693d1762c5b666af5d950258d01")
            );
            assert_eq!(expand(&hkdf, c, b"iv", 12), hex("5bd3c71b836e0b76bb73265f"));
            assert_eq!(
                expand(&hkdf, s, b"finished", 32),
                hex("008d3b66f816ea559f96b537e885c31fc068bf492c652f01f288a1d8cdc19fc8")
            );
            assert_eq!(
                expand(&hkdf, c, b"finished", 32),
                hex("b80ad01015fb2f0bd65ff7d4da5d6bf83f84821d1f87fdc7d3c75b5a7b42d9c4")
            );
            // The client's Finished covers the transcript through the server's Finished.
            assert_eq!(
                hkdf.finished_verify_data(c, &hex(SERVER_FINISHED_HASH))
                    .as_bytes(),
                hex("a8ec436d677634ae525ac1fcebe11a039ec17694fac6e98527b642f2edd5ce61")
            );
            // The server's covers it through its CertificateVerify.
            assert_eq!(
                hkdf.finished_verify_data(
                    s,
                    &hex("edb7725fa7a3473b031ec8ef65a2485493900138a2b91291407d7951a06110ed")
                )
                .as_bytes(),
                hex("9b9b141d906337fbd2cbdce71df4deda4ab42c309572cb7fffee5454b78f0718")
            );
        }
    }

    #[test]
    fn rfc8448_master_application_and_exporter_secrets() {
        for p in providers() {
            let hkdf = tls13(p);
            let master = HandshakeSecret::new(hkdf, &hex(SHARED)).master_secret();
            assert_eq!(
                master.secret.as_bytes(),
                hex("18df06843d13a08bf2a449844c5f8a478001bc4d4c627984d5a41da8d0402919")
            );
            let app = master.traffic_secrets(&hex(SERVER_FINISHED_HASH));
            assert_eq!(
                app.client.as_bytes(),
                hex("9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5")
            );
            assert_eq!(
                app.server.as_bytes(),
                hex("a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643")
            );
            assert_eq!(
                expand(&hkdf, &app.server, b"key", 16),
                hex("9f02283b6c9c07efc26bb9f2ac92e356")
            );
            assert_eq!(
                expand(&hkdf, &app.client, b"iv", 12),
                hex("5b78923dee08579033e523d9")
            );
            let exporter = master.exporter(&hex(SERVER_FINISHED_HASH));
            assert_eq!(
                exporter.secret.as_bytes(),
                hex("fe22f881176eda18eb8f44529e6792c50c9a3f89452f68d8ae311b4309d3cf50")
            );
        }
    }

    #[test]
    fn tabled_constants_match_their_computation() {
        for p in providers() {
            for hash in [HashAlgorithm::Sha256, HashAlgorithm::Sha384] {
                let hkdf = Hkdf::dtls13(p, hash);
                assert_eq!(hkdf.empty_hash(), p.hash(hash, &[]));
                assert_eq!(hkdf.zero_psk_derived(), hkdf.compute_zero_psk_derived());
                // Another prefix is computed, not looked up.
                let other = Hkdf {
                    prefix: b"tls13 ",
                    ..hkdf
                };
                assert_eq!(other.zero_psk_derived(), other.compute_zero_psk_derived());
                assert_ne!(other.zero_psk_derived(), hkdf.zero_psk_derived());
            }
        }
        // RFC 8448 §3: the TLS 1.3 "derived" secret of the zero PSK.
        assert_eq!(
            tls13(providers()[0]).zero_psk_derived().as_bytes(),
            hex("6f2615a108c702c5678f54fc9dbab69716c076189c48250cebeac3576c3611ba")
        );
    }

    #[test]
    fn one_prk_expands_as_separate_keyings_do() {
        for p in providers() {
            let hkdf = Hkdf::dtls13(p, HashAlgorithm::Sha256);
            let secret = [8u8; 32];
            let prk = hkdf.prk(&secret);
            for label in [&b"key"[..], b"iv", b"sn"] {
                let mut once = [0u8; 16];
                prk.expand_label(label, &[], &mut once);
                assert_eq!(once.to_vec(), expand(&hkdf, &secret, label, 16));
            }
        }
    }

    #[test]
    fn dtls13_labels_carry_their_own_prefix() {
        let hkdf = Hkdf::dtls13(providers()[0], HashAlgorithm::Sha256);
        let mut buf = [0u8; MAX_HKDF_LABEL_LEN];
        let info = hkdf.hkdf_label(b"sn", &[], 16, &mut buf);
        assert_eq!(info, b"\x00\x10\x08dtls13sn\x00");
        let context = [7u8; 32];
        let info = hkdf.hkdf_label(b"c hs traffic", &context, 32, &mut buf);
        let mut expected = b"\x00\x20\x12dtls13c hs traffic\x20".to_vec();
        expected.extend_from_slice(&context);
        assert_eq!(info, &expected[..]);
        // Same inputs, different protocol: different secrets.
        let secret = [1u8; 32];
        assert_ne!(
            expand(&hkdf, &secret, b"key", 16),
            expand(&tls13(providers()[0]), &secret, b"key", 16)
        );
    }

    #[test]
    fn expand_label_fills_outputs_longer_than_one_hash() {
        // 48 bytes of SHA-256 output: T(1) = HMAC(PRK, info ‖ 01) whole, then half of
        // T(2) = HMAC(PRK, T(1) ‖ info ‖ 02) (RFC 5869 §2.3), checked against HMAC directly.
        for p in providers() {
            let hkdf = Hkdf::dtls13(p, HashAlgorithm::Sha256);
            let secret = [3u8; 32];
            let mut out = [0u8; 48];
            hkdf.expand_label(&secret, b"key", &[], &mut out);
            let mut buf = [0u8; MAX_HKDF_LABEL_LEN];
            let info = hkdf.hkdf_label(b"key", &[], 48, &mut buf);
            let t1 = p.hmac(HashAlgorithm::Sha256, &secret, &[info, &[1]]);
            let t2 = p.hmac(HashAlgorithm::Sha256, &secret, &[&t1, info, &[2]]);
            assert_eq!(&out[..32], t1.as_bytes());
            assert_eq!(&out[32..], &t2[..16]);
        }
    }

    #[test]
    fn exporter_context_and_label_separate_outputs() {
        for p in providers() {
            let hkdf = Hkdf::dtls13(p, HashAlgorithm::Sha256);
            let master = HandshakeSecret::new(hkdf, &[9u8; 32]).master_secret();
            let exporter = master.exporter(&[4u8; 32]);
            let export = |label: &[u8], context: Option<&[u8]>| {
                let mut out = [0u8; 60];
                exporter.export(label, context, &mut out);
                out
            };
            let srtp = export(b"EXTRACTOR-dtls_srtp", None);
            assert_eq!(srtp, export(b"EXTRACTOR-dtls_srtp", Some(&[])));
            assert_ne!(srtp, export(b"EXTRACTOR-dtls_srtp", Some(b"x")));
            assert_ne!(srtp, export(b"EXPORTER-other", None));
            // By the definition, step by step.
            let per_label = hkdf.derive_secret(
                &exporter.secret,
                b"EXTRACTOR-dtls_srtp",
                &p.hash(HashAlgorithm::Sha256, &[]),
            );
            let mut expected = [0u8; 60];
            hkdf.expand_label(
                &per_label,
                b"exporter",
                &p.hash(HashAlgorithm::Sha256, &[]),
                &mut expected,
            );
            assert_eq!(srtp, expected);
        }
    }

    #[test]
    fn traffic_update_chains_and_sha384_has_its_length() {
        for p in providers() {
            let hkdf = Hkdf::dtls13(p, HashAlgorithm::Sha384);
            let hs = HandshakeSecret::new(hkdf, &[5u8; 48]);
            let secrets = hs.traffic_secrets(&[0u8; 48]);
            assert_eq!(secrets.client.len(), 48);
            assert_ne!(secrets.client, secrets.server);
            let next = hkdf.next_traffic_secret(&secrets.client);
            assert_eq!(next.len(), 48);
            assert_eq!(
                next,
                hkdf.derive_secret(&secrets.client, b"traffic upd", &[])
            );
            assert_ne!(next, hkdf.next_traffic_secret(&next));
        }
    }
}
