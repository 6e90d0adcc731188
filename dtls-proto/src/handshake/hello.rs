//! ClientHello, HelloVerifyRequest and ServerHello (RFC 5246 §7.4.1, RFC 6347 §4.2.1).

use crate::extensions::{Extensions, HelloKind};
use crate::record::{DTLS_1_0, DTLS_1_2};
use crate::wire::DecodeError;
use crate::wire::{Reader, put_u16, put_vec8, with_len16};

/// Cap on offered cipher suites we keep.
const MAX_SUITES: usize = 256;

/// ClientHello (RFC 6347 §4.2.1 adds the cookie).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHello {
    /// client_version.
    pub version: u16,
    /// Random.
    pub random: [u8; 32],
    /// session_id (we never resume; kept for the cookie).
    pub session_id: Vec<u8>,
    /// The cookie from HelloVerifyRequest, empty at first.
    pub cookie: Vec<u8>,
    /// Offered cipher suite code points.
    pub cipher_suites: Vec<u16>,
    /// Offered compression methods.
    pub compression_methods: Vec<u8>,
    /// Extensions.
    pub extensions: Extensions,
}

/// The fields both hellos open with (RFC 6347 §4.2.1, RFC 5246 §7.4.1.2–3): the version,
/// the random and a session_id of at most 32 bytes.
fn hello_head<'a>(r: &mut Reader<'a>) -> Result<(u16, [u8; 32], &'a [u8]), DecodeError> {
    let version = r.u16()?;
    let random = r.array()?;
    let session_id = r.vec8()?;
    if session_id.len() > 32 {
        return Err(DecodeError::InvalidLength {
            field: "session_id",
            len: session_id.len(),
        });
    }
    Ok((version, random, session_id))
}

impl ClientHello {
    /// Parses a ClientHello body.
    pub fn parse(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let (version, random, session_id) = hello_head(&mut r)?;
        let cookie = r.vec8()?;
        let suites = r.vec16()?;
        if suites.is_empty() || suites.len() % 2 != 0 {
            return Err(DecodeError::InvalidLength {
                field: "cipher_suites",
                len: suites.len(),
            });
        }
        let compression_methods = r.vec8()?;
        if compression_methods.is_empty() {
            return Err(DecodeError::InvalidLength {
                field: "compression_methods",
                len: 0,
            });
        }
        let extensions = if r.is_empty() {
            Extensions::default()
        } else {
            let block = r.vec16()?;
            r.finish()?;
            Extensions::parse(block, HelloKind::Client)?
        };
        Ok(Self {
            version,
            random,
            session_id: session_id.to_vec(),
            cookie: cookie.to_vec(),
            cipher_suites: suites
                .chunks_exact(2)
                .take(MAX_SUITES)
                .map(|c| c.iter().fold(0, |acc, &b| acc << 8 | u16::from(b)))
                .collect(),
            compression_methods: compression_methods.to_vec(),
            extensions,
        })
    }

    /// Appends the body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.encode_with_cookie(&self.cookie, out);
    }

    /// Encodes what a client must repeat in the ClientHello that answers a
    /// HelloVerifyRequest, and nothing else (RFC 6347 §4.2.1: "the same parameter values
    /// (version, random, session_id, cipher_suites, compression_method)"): the input of the
    /// server's cookie. Extensions are not among them, and clients do change them: one that
    /// offered DTLS 1.3 and is sent a HelloVerifyRequest continues in 1.2 without the 1.3
    /// extensions (dimpl's auto-sensing client does).
    pub fn encode_cookie_parameters(&self, out: &mut Vec<u8>) {
        put_u16(out, self.version);
        out.extend_from_slice(&self.random);
        put_vec8(out, &self.session_id);
        with_len16(out, |o| {
            self.cipher_suites.iter().for_each(|s| put_u16(o, *s))
        });
        put_vec8(out, &self.compression_methods);
    }

    /// Appends the body with `cookie` in place of ours.
    pub fn encode_with_cookie(&self, cookie: &[u8], out: &mut Vec<u8>) {
        put_u16(out, self.version);
        out.extend_from_slice(&self.random);
        put_vec8(out, &self.session_id);
        put_vec8(out, cookie);
        with_len16(out, |o| {
            self.cipher_suites.iter().for_each(|s| put_u16(o, *s))
        });
        put_vec8(out, &self.compression_methods);
        self.extensions.encode(out);
    }
}

/// HelloVerifyRequest (RFC 6347 §4.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelloVerifyRequest {
    /// server_version (DTLS 1.0 per RFC 6347 §4.2.1, whatever is negotiated later).
    pub version: u16,
    /// The cookie the client must echo.
    pub cookie: Vec<u8>,
}

impl HelloVerifyRequest {
    /// Parses a HelloVerifyRequest body.
    pub fn parse(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let version = r.u16()?;
        let cookie = r.vec8()?;
        r.finish()?;
        Ok(Self {
            version,
            cookie: cookie.to_vec(),
        })
    }

    /// Appends the body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_u16(out, self.version);
        put_vec8(out, &self.cookie);
    }

    /// A request carrying `cookie` with the RFC's recommended DTLS 1.0 version.
    pub fn new(cookie: Vec<u8>) -> Self {
        Self {
            version: DTLS_1_0,
            cookie,
        }
    }
}

/// The random of a HelloRetryRequest, SHA-256("HelloRetryRequest") (RFC 8446 §4.1.3): a
/// ServerHello carrying it asks for another ClientHello.
pub const HELLO_RETRY_REQUEST_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// ServerHello (RFC 5246 §7.4.1.3), and HelloRetryRequest (RFC 8446 §4.1.4) which shares its
/// structure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerHello {
    /// server_version.
    pub version: u16,
    /// Random.
    pub random: [u8; 32],
    /// session_id (we send an empty one: no resumption).
    pub session_id: Vec<u8>,
    /// The selected cipher suite code point.
    pub cipher_suite: u16,
    /// The selected compression method.
    pub compression_method: u8,
    /// Extensions.
    pub extensions: Extensions,
}

impl ServerHello {
    /// Parses a ServerHello body.
    pub fn parse(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let (version, random, session_id) = hello_head(&mut r)?;
        let cipher_suite = r.u16()?;
        let compression_method = r.u8()?;
        let extensions = if r.is_empty() {
            Extensions::default()
        } else {
            let block = r.vec16()?;
            r.finish()?;
            let kind = if random == HELLO_RETRY_REQUEST_RANDOM {
                HelloKind::RetryRequest
            } else {
                HelloKind::Server
            };
            Extensions::parse(block, kind)?
        };
        Ok(Self {
            version,
            random,
            session_id: session_id.to_vec(),
            cipher_suite,
            compression_method,
            extensions,
        })
    }

    /// Appends the body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_u16(out, self.version);
        out.extend_from_slice(&self.random);
        put_vec8(out, &self.session_id);
        put_u16(out, self.cipher_suite);
        out.push(self.compression_method);
        self.extensions.encode(out);
    }
}

/// True for the wire versions a DTLS 1.2 peer may put in a hello.
pub fn is_dtls_1_2_or_later(version: u16) -> bool {
    // DTLS versions count down: 1.0 = 0xfeff, 1.2 = 0xfefd.
    (0xfe00..=DTLS_1_2).contains(&version)
}

#[cfg(test)]
pub(crate) mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::extensions::UseSrtp;

    /// Chromium 156's captured ClientHello body (`tests/handshake/chromium156-client-hello.hex`:
    /// two records, one fragment each), reassembled.
    pub(crate) fn chromium156_client_hello_body() -> Vec<u8> {
        let mut body = Vec::new();
        for line in include_str!("../../tests/handshake/chromium156-client-hello.hex").lines() {
            let bytes: Vec<u8> = (0..line.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&line[i..i + 2], 16).unwrap())
                .collect();
            if bytes.is_empty() {
                continue;
            }
            let (record, rest) = crate::record::RecordView::parse(&bytes).unwrap();
            assert!(rest.is_empty());
            let (fragment, _) = crate::handshake::FragmentView::parse(record.fragment).unwrap();
            let (offset, len) = (fragment.offset as usize, fragment.body.len());
            body.resize(body.len().max(offset + len), 0);
            body[offset..offset + len].copy_from_slice(fragment.body);
        }
        body
    }

    #[test]
    fn chromium_s_hello_offers_dtls_1_3_and_a_hybrid_share() {
        use crate::extensions::{KeyShare, SupportedVersions};
        let hello = ClientHello::parse(&chromium156_client_hello_body()).unwrap();
        let ext = &hello.extensions;
        assert_eq!(
            ext.supported_versions,
            Some(SupportedVersions::Offered(vec![0xfefc, 0xfefd]))
        );
        let Some(KeyShare::Offered(shares)) = &ext.key_share else {
            panic!("{:?}", ext.key_share);
        };
        let shares: Vec<(u16, usize)> = shares
            .iter()
            .map(|s| (s.group, s.key_exchange.len()))
            .collect();
        assert_eq!(shares, [(0x11ec, 1216), (29, 32)]);
        assert!(
            hello.cipher_suites.contains(&0x1301),
            "TLS_AES_128_GCM_SHA256 offered"
        );
    }

    #[test]
    fn a_hello_retry_request_is_told_by_its_random() {
        use crate::extensions::{KeyShare, SupportedVersions};
        let hrr = ServerHello {
            version: DTLS_1_2,
            random: HELLO_RETRY_REQUEST_RANDOM,
            session_id: vec![],
            cipher_suite: 0x1301,
            compression_method: 0,
            extensions: Extensions {
                supported_versions: Some(SupportedVersions::Selected(0xfefc)),
                cookie: Some(vec![9; 32]),
                key_share: Some(KeyShare::Requested(29)),
                ..Extensions::default()
            },
        };
        let mut out = Vec::new();
        hrr.encode(&mut out);
        assert_eq!(ServerHello::parse(&out), Ok(hrr.clone()));
        // The same bytes with an ordinary random: a one-group key_share is not a ServerHello's.
        let mut not_hrr = hrr;
        not_hrr.random = [0; 32];
        let mut out = Vec::new();
        not_hrr.encode(&mut out);
        assert!(ServerHello::parse(&out).is_err());
    }

    #[test]
    fn client_hello_round_trip() {
        let ch = ClientHello {
            version: DTLS_1_2,
            random: [3; 32],
            session_id: vec![],
            cookie: vec![1, 2, 3],
            cipher_suites: vec![0xc02b, 0x00ff],
            compression_methods: vec![0],
            extensions: Extensions {
                extended_master_secret: true,
                ..Extensions::default()
            },
        };
        let mut out = Vec::new();
        ch.encode(&mut out);
        assert_eq!(ClientHello::parse(&out), Ok(ch));
        assert!(ClientHello::parse(&out[..out.len() - 1]).is_err());
    }

    #[test]
    fn server_hello_and_hvr_round_trip() {
        let sh = ServerHello {
            version: DTLS_1_2,
            random: [4; 32],
            session_id: vec![],
            cipher_suite: 0xc02b,
            compression_method: 0,
            extensions: Extensions::default(),
        };
        let mut out = Vec::new();
        sh.encode(&mut out);
        assert_eq!(ServerHello::parse(&out), Ok(sh));
        let hvr = HelloVerifyRequest::new(vec![9; 32]);
        let mut out = Vec::new();
        hvr.encode(&mut out);
        assert_eq!(HelloVerifyRequest::parse(&out), Ok(hvr));
        assert!(is_dtls_1_2_or_later(DTLS_1_2));
        assert!(!is_dtls_1_2_or_later(DTLS_1_0));
        assert!(!is_dtls_1_2_or_later(0x0303));
    }

    /// Any extensions block this crate can represent.
    fn extensions() -> impl Strategy<Value = Extensions> {
        (
            proptest::option::of(proptest::collection::vec(any::<u16>(), 1..8)),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 1..4)),
            proptest::option::of(proptest::collection::vec(any::<u16>(), 1..8)),
            proptest::option::of((
                proptest::collection::vec(any::<u16>(), 1..5),
                proptest::collection::vec(any::<u8>(), 0..4),
            )),
            any::<bool>(),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
        )
            .prop_map(|(g, f, s, srtp, ems, ri)| Extensions {
                supported_groups: g,
                ec_point_formats: f,
                signature_algorithms: s,
                use_srtp: srtp.map(|(profiles, mki)| UseSrtp { profiles, mki }),
                extended_master_secret: ems,
                renegotiation_info: ri,
                ..Extensions::default()
            })
    }

    proptest! {
        #[test]
        fn client_hello_round_trips(
            random in any::<[u8; 32]>(),
            session_id in proptest::collection::vec(any::<u8>(), 0..32),
            cookie in proptest::collection::vec(any::<u8>(), 0..64),
            suites in proptest::collection::vec(any::<u16>(), 1..16),
            ext in extensions(),
        ) {
            let hello = ClientHello {
                version: DTLS_1_2,
                random,
                session_id,
                cookie,
                cipher_suites: suites,
                compression_methods: vec![0],
                extensions: ext,
            };
            let mut out = Vec::new();
            hello.encode(&mut out);
            prop_assert_eq!(ClientHello::parse(&out), Ok(hello));
        }
    }
}
