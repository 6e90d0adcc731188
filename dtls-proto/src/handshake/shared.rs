//! Steps both roles take the same way: peer certificate checks, signatures over key exchange
//! parameters and transcripts, the ECDHE computation, and the completion event.

use rand_core::CryptoRng;

use crate::certificate::{Fingerprint, P256_PUBLIC_KEY_LEN, PeerVerifier, peer_public_key};
use crate::cipher_suite::{ECDSA_SECP256R1_SHA256, NamedGroup};
use crate::config::Config;
use crate::crypto::{EcdhKey, generate_ecdh_key};
use crate::engine::Engine;
use crate::error::Error;
use crate::event::HandshakeComplete;
use crate::fragment::Message;
use crate::handshake::HandshakeType;
use crate::handshake::key_exchange::{CertificateMsg, CertificateVerify};
use crate::srtp::{EXPORTER_LABEL, SrtpKeyingMaterial, SrtpProfile};

/// The peer's authenticated end-entity certificate.
#[derive(Debug, Clone)]
pub struct PeerCertificate {
    pub der: Vec<u8>,
    pub public_key: [u8; P256_PUBLIC_KEY_LEN],
    pub fingerprint: Fingerprint,
}

/// Checks a Certificate message against the configured verifier (RFC 8122 §5 for
/// fingerprints) and extracts the end-entity public key.
pub fn verify_peer_certificate(engine: &Engine, body: &[u8]) -> Result<PeerCertificate, Error> {
    let msg = CertificateMsg::parse(body)?;
    check_peer_chain(engine, || msg.chain())
}

/// Checks the peer's chain (end entity first) against the configured verifier and reads its
/// key: the part of [`verify_peer_certificate`] both DTLS versions share.
pub fn check_peer_chain<'a, I: Iterator<Item = &'a [u8]>>(
    engine: &Engine,
    chain: impl Fn() -> I,
) -> Result<PeerCertificate, Error> {
    let Some(end_entity) = chain().next() else {
        return Err(Error::PeerCertificateMissing);
    };
    let actual = Fingerprint::of(end_entity);
    match &engine.config.peer_verifier {
        PeerVerifier::Fingerprint(expected) => {
            if *expected != actual {
                return Err(Error::FingerprintMismatch {
                    expected: expected.to_string(),
                    actual: actual.to_string(),
                });
            }
        }
        PeerVerifier::AnyFingerprint(list) => {
            if !list.contains(&actual) {
                return Err(Error::FingerprintMismatch {
                    expected: list
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(" | "),
                    actual: actual.to_string(),
                });
            }
        }
        PeerVerifier::Custom(verifier) => {
            let chain: Vec<Vec<u8>> = chain().map(<[u8]>::to_vec).collect();
            verifier.verify(&chain)?;
        }
    }
    let public_key = peer_public_key(end_entity)?;
    Ok(PeerCertificate {
        der: end_entity.to_vec(),
        public_key,
        fingerprint: actual,
    })
}

/// Appends our Certificate message body: our one certificate.
pub fn encode_certificate(config: &Config, out: &mut Vec<u8>) {
    CertificateMsg::encode(&[config.certificate.der()], out);
}

/// Signs `message` with our certificate key (ecdsa_secp256r1_sha256).
pub fn sign(engine: &Engine, message: &[u8]) -> Result<Vec<u8>, Error> {
    Ok(engine.config.certificate.signing_key().sign(message)?)
}

/// Verifies a peer signature; any failure is [`Error::BadPeerSignature`].
pub fn verify_signature(
    engine: &Engine,
    peer: &PeerCertificate,
    scheme: u16,
    message: &[u8],
    signature: &[u8],
) -> Result<(), Error> {
    if scheme != ECDSA_SECP256R1_SHA256 {
        return Err(Error::IllegalParameter {
            parameter: "signature algorithm",
            value: scheme,
        });
    }
    engine
        .config
        .provider
        .ecdsa_p256_sha256_verify(&peer.public_key, message, signature)
        .map_err(|_| Error::BadPeerSignature)
}

/// Our signature over the transcript so far, for CertificateVerify (RFC 5246 §7.4.8).
pub fn sign_transcript(engine: &Engine) -> Result<Vec<u8>, Error> {
    sign(engine, engine.transcript())
}

/// Appends a CertificateVerify body carrying `signature`.
pub fn encode_certificate_verify(signature: &[u8], out: &mut Vec<u8>) {
    CertificateVerify {
        signature_scheme: ECDSA_SECP256R1_SHA256,
        signature,
    }
    .encode(out);
}

/// A fresh ephemeral key pair from the injected RNG.
pub fn ephemeral(
    engine: &Engine,
    group: NamedGroup,
    rng: &mut dyn CryptoRng,
) -> Result<Box<dyn EcdhKey>, Error> {
    Ok(generate_ecdh_key(engine.config.provider, group, rng)?)
}

/// Fails unless `msg` arrived in `epoch` (Finished only under protection, everything else in
/// the clear).
pub fn expect_epoch(msg: &Message, epoch: u16, expected: &'static str) -> Result<(), Error> {
    if msg.epoch != epoch {
        return Err(Error::UnexpectedMessage {
            expected,
            got: msg.msg_type,
        });
    }
    Ok(())
}

/// Whether `msg`'s body has the structure of its type (nothing is verified): a clear-text
/// message that does not is discarded like any invalid record (RFC 6347 §4.1.2.7) instead of
/// ending the handshake.
pub fn is_well_formed(msg: &Message) -> bool {
    use crate::handshake::hello::{ClientHello, HelloVerifyRequest, ServerHello};
    use crate::handshake::key_exchange::{
        CertificateMsg, CertificateRequest, CertificateVerify, ClientKeyExchange, ServerKeyExchange,
    };
    let body = &msg.body[..];
    match msg.msg_type {
        HandshakeType::HelloRequest | HandshakeType::ServerHelloDone => body.is_empty(),
        HandshakeType::ClientHello => ClientHello::parse(body).is_ok(),
        HandshakeType::ServerHello => ServerHello::parse(body).is_ok(),
        HandshakeType::HelloVerifyRequest => HelloVerifyRequest::parse(body).is_ok(),
        HandshakeType::Certificate => CertificateMsg::parse(body).is_ok(),
        HandshakeType::ServerKeyExchange => ServerKeyExchange::parse(body).is_ok(),
        HandshakeType::CertificateRequest => CertificateRequest::parse(body).is_ok(),
        HandshakeType::CertificateVerify => CertificateVerify::parse(body).is_ok(),
        HandshakeType::ClientKeyExchange => ClientKeyExchange::parse(body).is_ok(),
        HandshakeType::Finished => !body.is_empty(),
        HandshakeType::EncryptedExtensions => {
            crate::handshake::authentication::EncryptedExtensions::parse(body).is_ok()
        }
        // DTLS 1.3 post-handshake messages, never part of a DTLS 1.2 handshake.
        HandshakeType::NewSessionTicket | HandshakeType::KeyUpdate => false,
    }
}

/// Fails with [`Error::UnexpectedMessage`] unless `msg` has type `want`.
pub fn expect_type(
    msg: &Message,
    want: HandshakeType,
    expected: &'static str,
) -> Result<(), Error> {
    if msg.msg_type != want {
        return Err(Error::UnexpectedMessage {
            expected,
            got: msg.msg_type,
        });
    }
    Ok(())
}

/// Checks the peer's Finished against the transcript so far (RFC 5246 §7.4.9).
pub fn check_finished(engine: &mut Engine, msg: &Message, from_client: bool) -> Result<(), Error> {
    expect_epoch(msg, 1, "Finished under epoch 1")?;
    let expected = engine
        .verify_data(from_client)
        .ok_or(Error::UnexpectedRecord("Finished before key exchange"))?;
    let differs = expected.len() != msg.body.len()
        || expected
            .iter()
            .zip(&msg.body)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            != 0;
    if differs {
        return Err(Error::FinishedMismatch);
    }
    Ok(())
}

/// The completion event: negotiated parameters and the exported SRTP keys (RFC 5764 §4.2).
pub fn completion(
    engine: &Engine,
    group: NamedGroup,
    srtp: Option<SrtpProfile>,
    peer: PeerCertificate,
) -> Result<HandshakeComplete, Error> {
    let session = engine
        .session
        .as_ref()
        .ok_or(Error::UnexpectedRecord("Finished before key exchange"))?;
    let srtp = srtp.and_then(|profile| {
        let material = crate::prf::export_keying_material(
            engine.config.provider,
            session,
            EXPORTER_LABEL,
            None,
            profile.keying_material_len(),
        );
        SrtpKeyingMaterial::new(profile, material)
    });
    Ok(HandshakeComplete {
        version: crate::cipher_suite::ProtocolVersion::Dtls12,
        cipher_suite: session.suite,
        group,
        srtp,
        peer_fingerprint: peer.fingerprint,
        peer_certificate: peer.der,
    })
}

/// The extensions every DTLS 1.2 hello must get right, either side: the extended master
/// secret (RFC 7627 §5.2, which the key schedule relies on) and an empty renegotiation_info
/// if any (RFC 5746 §3.4: a first handshake renegotiates nothing).
pub fn check_secure_hello(ext: &crate::extensions::Extensions) -> Result<(), Error> {
    if !ext.extended_master_secret {
        return Err(Error::ExtendedMasterSecretMissing);
    }
    if ext
        .renegotiation_info
        .as_ref()
        .is_some_and(|i| !i.is_empty())
    {
        return Err(Error::BadRenegotiationInfo);
    }
    Ok(())
}
