//! Certificate, ServerKeyExchange, CertificateRequest, ClientKeyExchange, CertificateVerify and
//! Finished (RFC 5246 §7.4.2–§7.4.9, ECDHE forms of RFC 8422 §5.4 and §5.7).
//!
//! Each message is a view borrowing the received body (parsing allocates nothing: the state
//! machine checks a message's structure when it admits it and parses it again when it acts on
//! it) and encodes from borrowed fields.

use crate::wire::DecodeError;
use crate::wire::{Reader, put_u16, put_vec8, put_vec16, with_len16, with_len24};

/// ECCurveType named_curve (RFC 8422 §5.4).
const NAMED_CURVE: u8 = 3;
/// ClientCertificateType ecdsa_sign (RFC 8422 §5.5).
pub const ECDSA_SIGN: u8 = 64;
/// Cap on certificates read from one Certificate message.
const MAX_CHAIN: usize = 8;
/// Longest ServerECDHParams: curve type, group, and a point of at most 255 bytes.
pub const MAX_PARAMS_LEN: usize = 1 + 2 + 1 + 255;

/// Certificate: the sender's chain, end entity first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertificateMsg<'a> {
    /// The certificate_list contents, every entry checked to be a non-empty `ASN.1Cert<1..2^24-1>`.
    list: &'a [u8],
}

impl<'a> CertificateMsg<'a> {
    /// Parses a Certificate body.
    pub fn parse(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let list = r.vec24()?;
        r.finish()?;
        let mut entries = Reader::new(list);
        while !entries.is_empty() {
            if entries.vec24()?.is_empty() {
                return Err(DecodeError::InvalidLength {
                    field: "ASN.1Cert",
                    len: 0,
                });
            }
        }
        Ok(Self { list })
    }

    /// The DER certificates, end entity first, at most [`MAX_CHAIN`].
    pub fn chain(&self) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        let mut entries = Reader::new(self.list);
        std::iter::from_fn(move || entries.vec24().ok()).take(MAX_CHAIN)
    }

    /// Appends the body of a Certificate carrying `chain`.
    pub fn encode(chain: &[&[u8]], out: &mut Vec<u8>) {
        with_len24(out, |o| {
            for cert in chain {
                with_len24(o, |o| o.extend_from_slice(cert));
            }
        });
    }
}

/// ServerKeyExchange for ECDHE with a signature (RFC 8422 §5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerKeyExchange<'a> {
    /// NamedCurve code point.
    pub group: u16,
    /// The server's ephemeral public share.
    pub public: &'a [u8],
    /// SignatureAndHashAlgorithm.
    pub signature_scheme: u16,
    /// The signature.
    pub signature: &'a [u8],
}

impl<'a> ServerKeyExchange<'a> {
    /// Parses a ServerKeyExchange body.
    pub fn parse(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let curve_type = r.u8()?;
        if curve_type != NAMED_CURVE {
            return Err(DecodeError::InvalidValue {
                field: "ECCurveType",
                value: curve_type.into(),
            });
        }
        let group = r.u16()?;
        let public = r.vec8()?;
        if public.is_empty() {
            return Err(DecodeError::InvalidLength {
                field: "ECPoint",
                len: 0,
            });
        }
        let signature_scheme = r.u16()?;
        let signature = r.vec16()?;
        r.finish()?;
        Ok(Self {
            group,
            public,
            signature_scheme,
            signature,
        })
    }

    /// What the signature covers (RFC 8422 §5.4): `client_random ‖ server_random ‖
    /// ServerECDHParams`, written into `out`; returns its length (the point is cut to 255
    /// bytes, like its one-byte length prefix).
    pub fn signed_message(
        client_random: &[u8; 32],
        server_random: &[u8; 32],
        group: u16,
        public: &[u8],
        out: &mut [u8; 64 + MAX_PARAMS_LEN],
    ) -> usize {
        let public = public.get(..0xff).unwrap_or(public);
        let [g0, g1] = group.to_be_bytes();
        let head = [NAMED_CURVE, g0, g1, public.len() as u8];
        let parts: [&[u8]; 4] = [client_random, server_random, &head, public];
        let bytes = parts.into_iter().flatten();
        out.iter_mut()
            .zip(bytes)
            .map(|(slot, byte)| *slot = *byte)
            .count()
    }

    /// Appends the body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(NAMED_CURVE);
        put_u16(out, self.group);
        put_vec8(out, self.public);
        put_u16(out, self.signature_scheme);
        put_vec16(out, self.signature);
    }
}

/// CertificateRequest (RFC 5246 §7.4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertificateRequest<'a> {
    /// ClientCertificateType values.
    pub certificate_types: &'a [u8],
    /// SignatureAndHashAlgorithm code points, two bytes each.
    signature_schemes: &'a [u8],
}

impl<'a> CertificateRequest<'a> {
    /// Parses a CertificateRequest body; certificate_authorities are skipped.
    pub fn parse(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let certificate_types = r.vec8()?;
        let signature_schemes = r.vec16()?;
        if signature_schemes.len() % 2 != 0 {
            return Err(DecodeError::InvalidLength {
                field: "supported_signature_algorithms",
                len: signature_schemes.len(),
            });
        }
        let _authorities = r.vec16()?;
        r.finish()?;
        Ok(Self {
            certificate_types,
            signature_schemes,
        })
    }

    /// True when `scheme` is among the supported_signature_algorithms.
    pub fn accepts_scheme(&self, scheme: u16) -> bool {
        self.signature_schemes
            .chunks_exact(2)
            .any(|c| c == scheme.to_be_bytes())
    }

    /// Appends the body asking for `certificate_types` signed with `schemes` (no certificate
    /// authorities).
    pub fn encode(certificate_types: &[u8], schemes: &[u16], out: &mut Vec<u8>) {
        put_vec8(out, certificate_types);
        with_len16(out, |o| schemes.iter().for_each(|s| put_u16(o, *s)));
        put_u16(out, 0);
    }
}

/// ClientKeyExchange for ECDHE (RFC 8422 §5.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientKeyExchange<'a> {
    /// The client's ephemeral public share.
    pub public: &'a [u8],
}

impl<'a> ClientKeyExchange<'a> {
    /// Parses a ClientKeyExchange body.
    pub fn parse(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let public = r.vec8()?;
        r.finish()?;
        if public.is_empty() {
            return Err(DecodeError::InvalidLength {
                field: "ECPoint",
                len: 0,
            });
        }
        Ok(Self { public })
    }

    /// Appends the body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_vec8(out, self.public);
    }
}

/// CertificateVerify: a DigitallySigned over the transcript (RFC 5246 §7.4.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertificateVerify<'a> {
    /// SignatureAndHashAlgorithm.
    pub signature_scheme: u16,
    /// The signature.
    pub signature: &'a [u8],
}

impl<'a> CertificateVerify<'a> {
    /// Parses a CertificateVerify body.
    pub fn parse(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let signature_scheme = r.u16()?;
        let signature = r.vec16()?;
        r.finish()?;
        Ok(Self {
            signature_scheme,
            signature,
        })
    }

    /// Appends the body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_u16(out, self.signature_scheme);
        put_vec16(out, self.signature);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let mut out = Vec::new();
        CertificateMsg::encode(&[&[1, 2, 3], &[4]], &mut out);
        let c = CertificateMsg::parse(&out).unwrap();
        assert!(c.chain().eq([&[1u8, 2, 3][..], &[4]]));

        let ske = ServerKeyExchange {
            group: 29,
            public: &[5; 32],
            signature_scheme: 0x0403,
            signature: &[6; 70],
        };
        let mut out = Vec::new();
        ske.encode(&mut out);
        assert_eq!(ServerKeyExchange::parse(&out), Ok(ske));

        let mut out = Vec::new();
        CertificateRequest::encode(&[ECDSA_SIGN], &[0x0403], &mut out);
        let cr = CertificateRequest::parse(&out).unwrap();
        assert_eq!(cr.certificate_types, [ECDSA_SIGN]);
        assert!(cr.accepts_scheme(0x0403) && !cr.accepts_scheme(0x0401));

        let cke = ClientKeyExchange { public: &[7; 65] };
        let mut out = Vec::new();
        cke.encode(&mut out);
        assert_eq!(ClientKeyExchange::parse(&out), Ok(cke));

        let cv = CertificateVerify {
            signature_scheme: 0x0403,
            signature: &[8; 71],
        };
        let mut out = Vec::new();
        cv.encode(&mut out);
        assert_eq!(CertificateVerify::parse(&out), Ok(cv));
    }

    #[test]
    fn the_signed_message_is_both_randoms_and_the_params() {
        let mut out = [0u8; 64 + MAX_PARAMS_LEN];
        let len = ServerKeyExchange::signed_message(&[1; 32], &[2; 32], 29, &[5; 32], &mut out);
        let mut expected = [[1u8; 32], [2; 32]].concat();
        expected.extend_from_slice(&[NAMED_CURVE, 0, 29, 32]);
        expected.extend_from_slice(&[5; 32]);
        assert_eq!(out[..len], expected[..]);
    }

    #[test]
    fn rejects_malformed() {
        assert!(CertificateMsg::parse(&[0, 0, 3, 0, 0, 0]).is_err());
        assert!(ServerKeyExchange::parse(&[1, 0, 23, 0]).is_err());
        assert!(ClientKeyExchange::parse(&[0]).is_err());
    }
}
