//! Steps both roles of a DTLS 1.3 handshake take (RFC 9147 §5 over RFC 8446 §4): the key
//! schedule run against the transcript at each stage and the keys it installs, the
//! certificate and CertificateVerify in their TLS 1.3 forms, Finished, and the completion
//! event with the exported SRTP keys (RFC 5764 §4.2 through RFC 8446 §7.5).
//!
//! | after | keys installed |
//! | --- | --- |
//! | ServerHello | epoch 2 both ways (handshake traffic secrets over ClientHello..ServerHello) |
//! | server Finished | epoch 3 both ways, the exporter (over ClientHello..server Finished) |

use crate::cipher_suite::ProtocolVersion;
use crate::cipher_suite::{CipherSuite, ECDSA_SECP256R1_SHA256, NamedGroup};
use crate::crypto::Digest;
use crate::engine::{Engine, Session13};
use crate::epoch::{EPOCH_APPLICATION, EPOCH_HANDSHAKE, EpochKeys};
use crate::error::Error;
use crate::event::HandshakeComplete;
use crate::fragment::Message;
use crate::handshake::authentication::{self, Certificate13, MAX_SIGNED_CONTENT_LEN};
use crate::handshake::key_exchange::CertificateVerify;
use crate::handshake::shared::{self, PeerCertificate};
use crate::key_schedule::{HandshakeSecret, Hkdf, TrafficSecrets};
use crate::key_share::SharedSecret;
use crate::key_update::ApplicationSecrets;
use crate::srtp::{EXPORTER_LABEL, SrtpKeyingMaterial, SrtpProfile};

/// The handshake's secrets from ServerHello on.
pub struct Schedule {
    suite: CipherSuite,
    hkdf: Hkdf,
    handshake: HandshakeSecret,
    /// The client's and the server's `finished_key` (RFC 8446 §4.4.4), derived once: each
    /// side computes one Finished and checks the other.
    client_finished: Digest,
    server_finished: Digest,
}

impl Schedule {
    /// Once ServerHello is in the transcript: the handshake traffic secrets, and epoch 2
    /// installed both ways.
    pub fn after_server_hello(
        engine: &mut Engine,
        suite: CipherSuite,
        shared: &SharedSecret,
    ) -> Result<Self, Error> {
        let hkdf = Hkdf::dtls13(engine.config.provider, suite.prf_hash());
        let handshake = HandshakeSecret::new(hkdf, shared.as_bytes());
        let hello_hash = engine.transcript_hash(suite.prf_hash());
        let traffic = handshake.traffic_secrets(&hello_hash);
        // Each handshake traffic secret keys epoch 2 of its direction and its Finished: one
        // HMAC keying for `key`, `iv`, `sn` and `finished`.
        let aead = suite.aead();
        let client = hkdf.prk(&traffic.client);
        let server = hkdf.prk(&traffic.server);
        let client_finished = hkdf.finished_key(&client);
        let server_finished = hkdf.finished_key(&server);
        let (client, server) = (
            EpochKeys::from_prk(&client, aead)?,
            EpochKeys::from_prk(&server, aead)?,
        );
        let (write, read) = if engine.is_client {
            (client, server)
        } else {
            (server, client)
        };
        engine.install_write_keys_13(EPOCH_HANDSHAKE, write);
        engine.install_read_keys_13(EPOCH_HANDSHAKE, read);
        Ok(Self {
            suite,
            hkdf,
            handshake,
            client_finished,
            server_finished,
        })
    }

    fn install(
        &self,
        engine: &mut Engine,
        epoch: u64,
        secrets: &TrafficSecrets,
    ) -> Result<(), Error> {
        let aead = self.suite.aead();
        let (ours, theirs) = if engine.is_client {
            (&secrets.client, &secrets.server)
        } else {
            (&secrets.server, &secrets.client)
        };
        let write = EpochKeys::derive(&self.hkdf, aead, ours)?;
        let read = EpochKeys::derive(&self.hkdf, aead, theirs)?;
        engine.install_write_keys_13(epoch, write);
        engine.install_read_keys_13(epoch, read);
        Ok(())
    }

    /// The suite.
    pub fn suite(&self) -> CipherSuite {
        self.suite
    }

    /// Finished.verify_data of `from_client`'s Finished over the transcript so far.
    pub fn verify_data(&self, engine: &mut Engine, from_client: bool) -> Digest {
        let hash = engine.transcript_hash(self.suite.prf_hash());
        let finished_key = if from_client {
            &self.client_finished
        } else {
            &self.server_finished
        };
        self.hkdf
            .provider()
            .hmac(self.suite.prf_hash(), finished_key, &[&hash])
    }

    /// Checks the peer's Finished (epoch 2) against the transcript so far.
    pub fn check_finished(
        &self,
        engine: &mut Engine,
        msg: &Message,
        from_client: bool,
    ) -> Result<(), Error> {
        shared::expect_epoch(msg, 2, "Finished under epoch 2")?;
        let expected = self.verify_data(engine, from_client);
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

    /// Once the server's Finished is in the transcript: epoch 3 both ways and the exporter.
    pub fn enter_application(&self, engine: &mut Engine) -> Result<(), Error> {
        let hash = engine.transcript_hash(self.suite.prf_hash());
        let master = self.handshake.master_secret();
        let application = master.traffic_secrets(&hash);
        self.install(engine, EPOCH_APPLICATION, &application)?;
        let (ours, theirs) = if engine.is_client {
            (application.client, application.server)
        } else {
            (application.server, application.client)
        };
        engine.session13 = Some(Session13 {
            suite: self.suite,
            exporter: master.exporter(&hash),
            secrets: ApplicationSecrets::new(self.hkdf, self.suite.aead(), ours, theirs),
        });
        Ok(())
    }
}

impl std::fmt::Debug for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schedule")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

/// Checks the peer's Certificate (TLS 1.3 form) like DTLS 1.2's.
pub fn verify_peer_certificate(engine: &Engine, body: &[u8]) -> Result<PeerCertificate, Error> {
    let msg = Certificate13::parse(body)?;
    shared::check_peer_chain(engine, || msg.chain())
}

/// Our CertificateVerify body over the transcript so far.
pub fn certificate_verify(engine: &mut Engine, suite: CipherSuite) -> Result<Vec<u8>, Error> {
    let hash = engine.transcript_hash(suite.prf_hash());
    let mut buf = [0u8; MAX_SIGNED_CONTENT_LEN];
    let content = authentication::signed_content(!engine.is_client, &hash, &mut buf);
    let signature = shared::sign(engine, content)?;
    let mut body = Vec::with_capacity(4 + signature.len());
    shared::encode_certificate_verify(&signature, &mut body);
    Ok(body)
}

/// Checks the peer's CertificateVerify over the transcript before it.
pub fn check_certificate_verify(
    engine: &mut Engine,
    suite: CipherSuite,
    peer: &PeerCertificate,
    msg: &Message,
) -> Result<(), Error> {
    let cv = CertificateVerify::parse(&msg.body)?;
    let hash = engine.transcript_hash(suite.prf_hash());
    let mut buf = [0u8; MAX_SIGNED_CONTENT_LEN];
    // The peer signs with its own role's context.
    let content = authentication::signed_content(engine.is_client, &hash, &mut buf);
    shared::verify_signature(engine, peer, cv.signature_scheme, content, cv.signature)
}

/// The signature schemes we offer and accept.
pub const SIGNATURE_SCHEMES: [u16; 1] = [ECDSA_SECP256R1_SHA256];

/// The completion event of a DTLS 1.3 handshake.
pub fn completion(
    engine: &Engine,
    group: NamedGroup,
    srtp: Option<SrtpProfile>,
    peer: PeerCertificate,
) -> Result<HandshakeComplete, Error> {
    let session = engine
        .session13
        .as_ref()
        .ok_or(Error::UnexpectedRecord("Finished before key exchange"))?;
    let srtp = srtp.and_then(|profile| {
        let material = engine.export_13(EXPORTER_LABEL, None, profile.keying_material_len())?;
        SrtpKeyingMaterial::new(profile, material)
    });
    Ok(HandshakeComplete {
        version: ProtocolVersion::Dtls13,
        cipher_suite: session.suite,
        group,
        srtp,
        peer_fingerprint: peer.fingerprint,
        peer_certificate: peer.der,
    })
}
