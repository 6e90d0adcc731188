//! Configuration of a DTLS endpoint.

use std::time::Duration;

use crate::certificate::{DtlsCertificate, PeerVerifier};
use crate::cipher_suite::{CipherSuite, NamedGroup, ProtocolVersion};
use crate::crypto::CryptoProvider;
use crate::srtp::SrtpProfile;

/// Default path MTU budget for one datagram (IPv6 minimum MTU minus IP/UDP headers, a common
/// WebRTC choice).
pub const DEFAULT_MTU: usize = 1200;

/// Default bound on a first ClientHello in reassembly: room for two hybrid post-quantum key
/// shares (about 1.2 KB each) beside the classical ones and the usual extensions.
pub const DEFAULT_MAX_CLIENT_HELLO_LEN: usize = 8 * 1024;

/// Configuration shared by both roles.
///
/// Built with [`Config::new`], then adjusted through the `with_*` setters. Role-specific knobs
/// (the server's HelloVerifyRequest cookie) are ignored by the other role.
#[derive(Debug)]
#[non_exhaustive]
pub struct Config {
    /// The crypto backend.
    pub provider: &'static dyn CryptoProvider,
    /// Our certificate (always sent: WebRTC authenticates both sides).
    pub certificate: DtlsCertificate,
    /// How the peer's certificate is checked.
    pub peer_verifier: PeerVerifier,
    /// Protocol versions, in preference order: DTLS 1.2 only unless set.
    pub versions: Vec<ProtocolVersion>,
    /// Cipher suites, in preference order (the server's order wins); each version uses its own.
    pub cipher_suites: Vec<CipherSuite>,
    /// Key exchange groups, in preference order (the server's order wins); DTLS 1.2 uses the
    /// ECDHE ones only.
    pub groups: Vec<NamedGroup>,
    /// SRTP profiles to negotiate with use_srtp; empty disables use_srtp.
    pub srtp_profiles: Vec<SrtpProfile>,
    /// Largest datagram we send; handshake messages are fragmented to fit.
    pub mtu: usize,
    /// Initial retransmission timeout (RFC 6347 §4.2.4.1 suggests 1 s).
    pub retransmit_initial: Duration,
    /// Retransmission timeout cap (RFC 6347 §4.2.4.1: at least 60 s is RECOMMENDED).
    pub retransmit_max: Duration,
    /// Retransmissions of one flight before the handshake fails.
    pub max_retransmits: u32,
    /// Server only: answer a ClientHello without a valid cookie with HelloVerifyRequest and
    /// keep no state until the cookie comes back (RFC 6347 §4.2.1).
    pub server_cookie: bool,
    /// Largest handshake message we reassemble.
    pub max_handshake_message_len: usize,
    /// Server only: largest first ClientHello reassembled before the handshake has state
    /// (browsers' hellos with a post-quantum key share are about 1.4 KB, in two fragments).
    pub max_client_hello_len: usize,
}

impl Config {
    /// Defaults: DTLS 1.2 only, all suites and groups (X25519MLKEM768 first, for DTLS 1.3), all
    /// SRTP profiles, 1200-byte MTU, 1 s initial and 60 s maximum retransmission timeout, 7
    /// retransmissions, server cookie on.
    pub fn new(
        provider: &'static dyn CryptoProvider,
        certificate: DtlsCertificate,
        peer_verifier: PeerVerifier,
    ) -> Self {
        Self {
            provider,
            certificate,
            peer_verifier,
            versions: vec![ProtocolVersion::Dtls12],
            cipher_suites: CipherSuite::ALL
                .iter()
                .chain(&CipherSuite::ALL_13)
                .copied()
                .collect(),
            groups: NamedGroup::ALL_13.to_vec(),
            srtp_profiles: SrtpProfile::ALL.to_vec(),
            mtu: DEFAULT_MTU,
            retransmit_initial: Duration::from_secs(1),
            retransmit_max: Duration::from_secs(60),
            max_retransmits: 7,
            server_cookie: true,
            max_handshake_message_len: 32 * 1024,
            max_client_hello_len: DEFAULT_MAX_CLIENT_HELLO_LEN,
        }
    }

    /// Sets the cipher suites.
    pub fn with_cipher_suites(mut self, suites: &[CipherSuite]) -> Self {
        self.cipher_suites = suites.to_vec();
        self
    }

    /// Sets the protocol versions (DTLS 1.3 needs both sides to list it).
    pub fn with_versions(mut self, versions: &[ProtocolVersion]) -> Self {
        self.versions = versions.to_vec();
        self
    }

    /// True when `version` is enabled.
    pub fn speaks(&self, version: ProtocolVersion) -> bool {
        self.versions.contains(&version)
    }

    /// Sets the key exchange groups.
    pub fn with_groups(mut self, groups: &[NamedGroup]) -> Self {
        self.groups = groups.to_vec();
        self
    }

    /// Sets the SRTP profiles (empty: no use_srtp).
    pub fn with_srtp_profiles(mut self, profiles: &[SrtpProfile]) -> Self {
        self.srtp_profiles = profiles.to_vec();
        self
    }

    /// Sets the MTU (clamped to at least 64 bytes so every record makes progress).
    pub fn with_mtu(mut self, mtu: usize) -> Self {
        self.mtu = mtu.max(64);
        self
    }

    /// Sets the retransmission timer bounds.
    pub fn with_retransmit(mut self, initial: Duration, max: Duration) -> Self {
        self.retransmit_initial = initial;
        self.retransmit_max = max;
        self
    }

    /// Sets the bound on a first ClientHello in reassembly (server only).
    pub fn with_max_client_hello_len(mut self, len: usize) -> Self {
        self.max_client_hello_len = len;
        self
    }

    /// Sets how many retransmissions of one flight are tried.
    pub fn with_max_retransmits(mut self, n: u32) -> Self {
        self.max_retransmits = n;
        self
    }

    /// Enables or disables the server's HelloVerifyRequest cookie exchange.
    pub fn with_server_cookie(mut self, on: bool) -> Self {
        self.server_cookie = on;
        self
    }
}
