//! The DTLS 1.3 forms of the server parameters and authentication messages (RFC 8446 §4.3,
//! §4.4; RFC 9147 §5 leaves them as in TLS 1.3): EncryptedExtensions, CertificateRequest,
//! Certificate, and the content a CertificateVerify signs. CertificateVerify's own body and
//! Finished's (verify_data alone) are the DTLS 1.2 ones.
//!
//! ```text
//! struct { Extension extensions<0..2^16-1>; } EncryptedExtensions;
//! struct { opaque certificate_request_context<0..2^8-1>;
//!          Extension extensions<2..2^16-1>; } CertificateRequest;
//! struct { opaque cert_data<1..2^24-1>; Extension extensions<0..2^16-1>; } CertificateEntry;
//! struct { opaque certificate_request_context<0..2^8-1>;
//!          CertificateEntry certificate_list<0..2^24-1>; } Certificate;
//! ```
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::extensions::{Extensions, HelloKind};
use crate::wire::DecodeError;
use crate::wire::{Reader, put_u16, put_vec8, with_len16, with_len24};

/// signature_algorithms (RFC 8446 §4.2.3), the one extension a CertificateRequest must carry.
const SIGNATURE_ALGORITHMS: u16 = 13;
/// Cap on certificates read from one Certificate message.
const MAX_CHAIN: usize = 8;
/// The 64 spaces that open CertificateVerify's signed content (RFC 8446 §4.4.3).
const SIGNED_CONTENT_PAD: [u8; 64] = [0x20; 64];
/// Context strings of CertificateVerify (RFC 8446 §4.4.3; DTLS 1.3 keeps them).
const SERVER_CONTEXT: &[u8] = b"TLS 1.3, server CertificateVerify";
const CLIENT_CONTEXT: &[u8] = b"TLS 1.3, client CertificateVerify";
/// Longest signed content: pad, the longer context, the separator and a SHA-384 hash.
pub const MAX_SIGNED_CONTENT_LEN: usize = 64 + 33 + 1 + 48;

/// EncryptedExtensions: the server's extensions that are not needed to establish keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedExtensions(pub Extensions);

impl EncryptedExtensions {
    /// Parses the body; extensions that belong in ServerHello (supported_versions, key_share,
    /// cookie) are refused here (RFC 8446 §4.3.1).
    pub fn parse(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let block = r.vec16()?;
        r.finish()?;
        let extensions = Extensions::parse(block, HelloKind::Server)?;
        let misplaced = [
            (extensions.supported_versions.is_some(), 43),
            (extensions.key_share.is_some(), 51),
            (extensions.cookie.is_some(), 44),
        ];
        if let Some((_, ext)) = misplaced.into_iter().find(|(present, _)| *present) {
            return Err(DecodeError::InvalidValue {
                field: "EncryptedExtensions extension",
                value: ext,
            });
        }
        Ok(Self(extensions))
    }

    /// Appends the body (an empty block when there are no extensions).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        self.0.encode(out);
        if out.len() == start {
            put_u16(out, 0);
        }
    }
}

/// CertificateRequest (RFC 8446 §4.3.2), borrowing the received body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertificateRequest13<'a> {
    /// certificate_request_context, echoed in the client's Certificate.
    pub context: &'a [u8],
    /// signature_algorithms code points, two bytes each.
    signature_schemes: &'a [u8],
}

impl<'a> CertificateRequest13<'a> {
    /// Parses the body; it must carry signature_algorithms, other extensions are skipped.
    pub fn parse(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let context = r.vec8()?;
        let mut extensions = Reader::new(r.vec16()?);
        r.finish()?;
        let mut schemes = None;
        while !extensions.is_empty() {
            let ext_type = extensions.u16()?;
            let data = extensions.vec16()?;
            if ext_type == SIGNATURE_ALGORITHMS {
                if schemes.is_some() {
                    return Err(DecodeError::DuplicateExtension(ext_type));
                }
                let mut d = Reader::new(data);
                let list = d.vec16()?;
                d.finish()?;
                if list.is_empty() || list.len() % 2 != 0 {
                    return Err(DecodeError::InvalidLength {
                        field: "signature_algorithms",
                        len: list.len(),
                    });
                }
                schemes = Some(list);
            }
        }
        let signature_schemes = schemes.ok_or(DecodeError::InvalidLength {
            field: "CertificateRequest signature_algorithms",
            len: 0,
        })?;
        Ok(Self {
            context,
            signature_schemes,
        })
    }

    /// True when `scheme` is among the signature_algorithms.
    pub fn accepts_scheme(&self, scheme: u16) -> bool {
        self.signature_schemes
            .chunks_exact(2)
            .any(|c| c == scheme.to_be_bytes())
    }

    /// Appends the body of a request with an empty context for `schemes`.
    pub fn encode(schemes: &[u16], out: &mut Vec<u8>) {
        put_vec8(out, &[]);
        with_len16(out, |o| {
            put_u16(o, SIGNATURE_ALGORITHMS);
            with_len16(o, |o| {
                with_len16(o, |o| schemes.iter().for_each(|s| put_u16(o, *s)));
            });
        });
    }
}

/// Certificate (RFC 8446 §4.4.2), borrowing the received body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Certificate13<'a> {
    /// certificate_request_context: empty from a server, the request's from a client.
    pub context: &'a [u8],
    /// The certificate_list contents, every entry checked.
    list: &'a [u8],
}

impl<'a> Certificate13<'a> {
    /// Parses the body; every entry must have non-empty cert_data and a well-formed
    /// extensions vector (whose contents we ignore).
    pub fn parse(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let context = r.vec8()?;
        let list = r.vec24()?;
        r.finish()?;
        let mut entries = Reader::new(list);
        while !entries.is_empty() {
            if entries.vec24()?.is_empty() {
                return Err(DecodeError::InvalidLength {
                    field: "cert_data",
                    len: 0,
                });
            }
            entries.vec16()?;
        }
        Ok(Self { context, list })
    }

    /// The DER certificates, end entity first, at most [`MAX_CHAIN`].
    pub fn chain(&self) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        let mut entries = Reader::new(self.list);
        std::iter::from_fn(move || {
            let cert = entries.vec24().ok()?;
            entries.vec16().ok()?;
            Some(cert)
        })
        .take(MAX_CHAIN)
    }

    /// Appends the body of a Certificate carrying `chain` (no per-entry extensions).
    pub fn encode(context: &[u8], chain: &[&[u8]], out: &mut Vec<u8>) {
        put_vec8(out, context);
        with_len24(out, |o| {
            for cert in chain {
                with_len24(o, |o| o.extend_from_slice(cert));
                put_u16(o, 0);
            }
        });
    }
}

/// What a CertificateVerify signs (RFC 8446 §4.4.3): 64 spaces, the context string of the
/// signer's role, a zero byte and the transcript hash; written into `buf`.
pub fn signed_content<'b>(
    server: bool,
    transcript_hash: &[u8],
    buf: &'b mut [u8; MAX_SIGNED_CONTENT_LEN],
) -> &'b [u8] {
    let context = if server {
        SERVER_CONTEXT
    } else {
        CLIENT_CONTEXT
    };
    let hash = transcript_hash.get(..48).unwrap_or(transcript_hash);
    let mut at = 0;
    for part in [&SIGNED_CONTENT_PAD[..], context, &[0], hash] {
        if let Some(slot) = buf.get_mut(at..at + part.len()) {
            slot.copy_from_slice(part);
            at += part.len();
        }
    }
    buf.get(..at).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::extensions::{KeyShare, UseSrtp};

    #[test]
    fn encrypted_extensions_round_trip_and_refuse_hello_extensions() {
        let ee = EncryptedExtensions(Extensions {
            use_srtp: Some(UseSrtp {
                profiles: vec![7],
                mki: vec![],
            }),
            supported_groups: Some(vec![0x11ec, 29]),
            ..Extensions::default()
        });
        let mut out = Vec::new();
        ee.encode(&mut out);
        assert_eq!(EncryptedExtensions::parse(&out), Ok(ee));
        let mut empty = Vec::new();
        EncryptedExtensions(Extensions::default()).encode(&mut empty);
        assert_eq!(empty, [0, 0]);
        let with_share = EncryptedExtensions(Extensions {
            key_share: Some(KeyShare::Requested(29)),
            ..Extensions::default()
        });
        let mut out = Vec::new();
        with_share.0.encode(&mut out);
        // A one-group key_share reads as a ServerHello share here, which fails before the
        // misplacement check; a well-formed selected share is refused by it.
        assert!(EncryptedExtensions::parse(&out).is_err());
        let selected = [0, 8, 0, 51, 0, 4, 0, 29, 0, 0];
        assert!(EncryptedExtensions::parse(&selected).is_err());
        let versions = [0, 6, 0, 43, 0, 2, 0xfe, 0xfc];
        assert_eq!(
            EncryptedExtensions::parse(&versions),
            Err(DecodeError::InvalidValue {
                field: "EncryptedExtensions extension",
                value: 43
            })
        );
    }

    #[test]
    fn certificate_request_round_trip_and_needs_signature_algorithms() {
        let mut out = Vec::new();
        CertificateRequest13::encode(&[0x0403, 0x0804], &mut out);
        let cr = CertificateRequest13::parse(&out).unwrap();
        assert!(cr.context.is_empty());
        assert!(cr.accepts_scheme(0x0403) && cr.accepts_scheme(0x0804));
        assert!(!cr.accepts_scheme(0x0503));
        // Context "ab", one unknown extension, no signature_algorithms.
        let no_schemes = [2, b'a', b'b', 0, 5, 0x12, 0x34, 0, 1, 0];
        assert!(CertificateRequest13::parse(&no_schemes).is_err());
        let odd = [0, 0, 7, 0, 13, 0, 3, 0, 1, 4];
        assert!(CertificateRequest13::parse(&odd).is_err());
    }

    #[test]
    fn certificate_round_trip() {
        let (a, b) = ([1u8; 40], [2u8; 3]);
        let mut out = Vec::new();
        Certificate13::encode(b"ctx", &[&a, &b], &mut out);
        let cert = Certificate13::parse(&out).unwrap();
        assert_eq!(cert.context, b"ctx");
        assert_eq!(cert.chain().collect::<Vec<_>>(), [&a[..], &b[..]]);
        // An empty certificate_list (a client without a certificate) parses, empty.
        let mut none = Vec::new();
        Certificate13::encode(&[], &[], &mut none);
        assert_eq!(Certificate13::parse(&none).unwrap().chain().count(), 0);
        // An entry without its extensions vector is malformed.
        let truncated = [0, 0, 0, 4, 0, 0, 1, 9];
        assert!(Certificate13::parse(&truncated).is_err());
        let empty_cert = [0, 0, 0, 5, 0, 0, 0, 0, 0];
        assert!(Certificate13::parse(&empty_cert).is_err());
    }

    #[test]
    fn signed_content_layout() {
        let mut buf = [0u8; MAX_SIGNED_CONTENT_LEN];
        let content = signed_content(true, &[7; 32], &mut buf).to_vec();
        assert_eq!(content.len(), 64 + 33 + 1 + 32);
        assert!(content[..64].iter().all(|&b| b == 0x20));
        assert_eq!(&content[64..97], b"TLS 1.3, server CertificateVerify");
        assert_eq!(content[97], 0);
        assert_eq!(&content[98..], &[7; 32]);
        let client = signed_content(false, &[7; 48], &mut buf);
        assert_eq!(client.len(), MAX_SIGNED_CONTENT_LEN);
        assert_eq!(&client[64..97], b"TLS 1.3, client CertificateVerify");
    }

    proptest! {
        #[test]
        fn any_bytes_parse_or_fail_without_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = EncryptedExtensions::parse(&data);
            let _ = CertificateRequest13::parse(&data);
            if let Ok(c) = Certificate13::parse(&data) {
                prop_assert!(c.chain().all(|cert| !cert.is_empty()));
            }
        }
    }
}
