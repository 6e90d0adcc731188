//! Sans-IO DTLS 1.2 and 1.3 for WebRTC (RFC 6347, RFC 9147, RFC 5764).
//!
//! A DTLS client and server as pure state machines: no sockets, no clocks, no ambient
//! randomness. The handshake is the one WebRTC uses: ECDHE (P-256 or X25519) with mutual ECDSA
//! P-256 certificate authentication, checked against the fingerprint from signalling
//! (RFC 8122), extended_master_secret (RFC 7627, required), use_srtp (RFC 5764) and the SRTP
//! keying material exported when the handshake completes (RFC 5705, RFC 5764 §4.2).
//!
//! DTLS 1.3 (RFC 9147) is spoken when both sides enable it with
//! [`Config::with_versions`]: the same authentication and SRTP export, key exchange with
//! X25519MLKEM768 (the hybrid post-quantum group browsers offer), X25519 or P-256,
//! HelloRetryRequest with a cookie, encrypted record numbers, ACKs. An endpoint that enables
//! both versions speaks 1.3 with a 1.3 peer and 1.2 with a 1.2-only one, with the downgrade
//! protection of RFC 8446 §4.1.3.
//!
//! # Drive loop
//!
//! Create a [`Dtls`] with [`Dtls::client`] or [`Dtls::server`], then after every `handle_*`
//! call drain [`Dtls::poll_transmit`] and [`Dtls::poll_event`] until `None` and schedule
//! [`Dtls::handle_timeout`] at [`Dtls::poll_timeout`]:
//!
//! ```
//! use std::time::Instant;
//! use dtls_proto::{CertificateParams, Config, Dtls, DtlsCertificate, Event, PeerVerifier};
//! use dtls_proto::crypto::RustCrypto;
//! use rand_core::SeedableRng;
//!
//! # #[allow(clippy::disallowed_methods)] // the example needs an origin for its virtual clock
//! let now = Instant::now();
//! let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
//! let params = CertificateParams::new(1_700_000_000); // unix time from the caller's clock
//! let client_cert = DtlsCertificate::generate(&RustCrypto, &mut rng, &params).unwrap();
//! let server_cert = DtlsCertificate::generate(&RustCrypto, &mut rng, &params).unwrap();
//! let (client_fp, server_fp) = (client_cert.fingerprint(), server_cert.fingerprint());
//!
//! let client_cfg = Config::new(&RustCrypto, client_cert, PeerVerifier::Fingerprint(server_fp));
//! let server_cfg = Config::new(&RustCrypto, server_cert, PeerVerifier::Fingerprint(client_fp));
//! let mut client = Dtls::client(client_cfg, rand_chacha::ChaCha20Rng::seed_from_u64(1), now).unwrap();
//! let mut server = Dtls::server(server_cfg, rand_chacha::ChaCha20Rng::seed_from_u64(2));
//!
//! // Shuttle datagrams until both sides report Connected (a real caller uses sockets).
//! let mut connected = 0;
//! while connected < 2 {
//!     let mut progressed = false;
//!     while let Some(t) = client.poll_transmit() {
//!         server.handle_datagram(now, &t.payload);
//!         progressed = true;
//!     }
//!     while let Some(t) = server.poll_transmit() {
//!         client.handle_datagram(now, &t.payload);
//!         progressed = true;
//!     }
//!     for side in [&mut client, &mut server] {
//!         while let Some(event) = side.poll_event() {
//!             if let Event::Connected(done) = event {
//!                 assert!(done.srtp.is_some()); // SRTP keys for the media path
//!                 connected += 1;
//!             }
//!         }
//!     }
//!     assert!(progressed || connected == 2);
//! }
//! client.handle_send(now, b"hello").unwrap();
//! ```
//!
//! # Errors
//!
//! Records that do not parse, fail authentication or are replayed are dropped and counted in
//! [`Stats`]; they never surface as errors (RFC 6347 §4.1.2.7). A fatal fault of the handshake
//! (wrong fingerprint, no common parameters, bad signature, timeout, a fatal alert from the
//! peer) is reported once as [`Event::Failed`] with an [`Error`]; the peer is sent the matching
//! fatal alert ([`Error::alert`]) and the association stops. [`Dtls::handle_send`] returns a
//! [`SendError`]. Nothing panics on any input.
//!
//! # Standards
//!
//! RFC 6347 (DTLS 1.2) over RFC 5246 (TLS 1.2); RFC 9147 (DTLS 1.3) over RFC 8446 (TLS 1.3)
//! with draft-ietf-tls-ecdhe-mlkem (X25519MLKEM768); RFC 8422 (ECDHE, ECDSA), RFC 5289 and RFC 7905
//! (cipher suites); RFC 7627 (extended master secret); RFC 5746 (renegotiation_info); RFC 5764
//! and RFC 7714 (DTLS-SRTP and its AEAD profiles); RFC 5705 (exporters); RFC 8122
//! (fingerprints); RFC 7983 (demultiplexing). Section-by-section status and the test proving
//! each row: the DTLS section of `docs/compliance.md`.
//!
//! # Out of scope
//!
//! Session resumption, renegotiation (refused with `no_renegotiation`), RSA and non-AEAD suites,
//! certificate chains to a CA (WebRTC uses self-signed certificates and fingerprints), DTLS 1.3
//! connection IDs. DTLS 1.3 NewSessionTickets are acknowledged and ignored (we never resume);
//! KeyUpdate works both ways (`Dtls::handle_key_update`).
//! The RFC coverage is tracked in `docs/compliance.md`; design notes in `docs/dtls.md`.

#![forbid(unsafe_code)]

mod acceptor;
mod ack;
mod alert;
mod certificate;
mod cipher_suite;
mod client;
mod client13;
mod config;
mod connection;
pub mod crypto;
mod demux;
mod engine;
mod epoch;
mod error;
mod event;
mod extensions;
mod flight;
mod fragment;
mod handshake;
mod initial_hello;
mod key_schedule;
mod key_share;
mod key_update;
mod prf;
mod record;
mod replay;
mod server;
mod server13;
mod srtp;
mod transcript;
mod unified_header;
mod wire;

#[doc(hidden)]
pub mod fuzzing;

pub use acceptor::{
    Accept, AcceptedHello, Acceptor, AcceptorConfig, AcceptorStats, AcceptorTransmit,
    MAX_ACCEPTOR_TRANSMITS,
};
pub use alert::AlertDescription;
pub use certificate::{CertificateParams, DtlsCertificate, Fingerprint, PeerVerifier, VerifyPeer};
pub use cipher_suite::{CipherSuite, NamedGroup, ProtocolVersion};
pub use config::{Config, DEFAULT_MAX_CLIENT_HELLO_LEN, DEFAULT_MTU};
pub use connection::{Dtls, Handled, Transmit};
pub use demux::{PacketKind, classify};
pub use error::{CertificateError, CryptoError, DecodeError, Error, PeerRejected, SendError};
pub use event::{Event, HandshakeComplete, Stats};
pub use handshake::HandshakeType;
/// The RNG traits the machines take (`RngCore`, `CryptoRng`, `SeedableRng`), at the version
/// this crate was built with, so that a caller's generator matches them.
pub use rand_core;
pub use srtp::{SrtpKeyingMaterial, SrtpProfile};

/// An origin for the virtual clock of unit tests.
#[cfg(test)]
pub(crate) fn test_instant() -> std::time::Instant {
    #[allow(clippy::disallowed_methods)] // tests need an origin; nothing depends on its value
    std::time::Instant::now()
}
