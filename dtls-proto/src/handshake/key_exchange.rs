//! Certificate, ServerKeyExchange, CertificateRequest, ClientKeyExchange, CertificateVerify and
//! Finished (RFC 5246 §7.4.2–§7.4.9, ECDHE forms of RFC 8422 §5.4 and §5.7).

use crate::error::DecodeError;
use crate::wire::{Reader, put_u16, put_vec8, put_vec16, with_len16, with_len24};

/// ECCurveType named_curve (RFC 8422 §5.4).
const NAMED_CURVE: u8 = 3;
/// ClientCertificateType ecdsa_sign (RFC 8422 §5.5).
pub const ECDSA_SIGN: u8 = 64;
/// Cap on certificates kept from one Certificate message.
const MAX_CHAIN: usize = 8;

/// Certificate: the sender's chain, end entity first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateMsg {
    /// DER certificates.
    pub chain: Vec<Vec<u8>>,
}

impl CertificateMsg {
    /// Parses a Certificate body.
    pub fn parse(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let list = r.vec24()?;
        r.finish()?;
        let mut list = Reader::new(list);
        let mut chain = Vec::new();
        while !list.is_empty() {
            let cert = list.vec24()?;
            if cert.is_empty() {
                return Err(DecodeError::InvalidLength("ASN.1Cert"));
            }
            if chain.len() < MAX_CHAIN {
                chain.push(cert.to_vec());
            }
        }
        Ok(Self { chain })
    }

    /// Appends the body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        with_len24(out, |o| {
            for cert in &self.chain {
                with_len24(o, |o| o.extend_from_slice(cert));
            }
        });
    }
}

/// ServerKeyExchange for ECDHE with a signature (RFC 8422 §5.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerKeyExchange {
    /// NamedCurve code point.
    pub group: u16,
    /// The server's ephemeral public share.
    pub public: Vec<u8>,
    /// SignatureAndHashAlgorithm.
    pub signature_scheme: u16,
    /// The signature.
    pub signature: Vec<u8>,
}

impl ServerKeyExchange {
    /// Parses a ServerKeyExchange body.
    pub fn parse(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        if r.u8()? != NAMED_CURVE {
            return Err(DecodeError::InvalidValue("ECCurveType"));
        }
        let group = r.u16()?;
        let public = r.vec8()?;
        if public.is_empty() {
            return Err(DecodeError::InvalidLength("ECPoint"));
        }
        let signature_scheme = r.u16()?;
        let signature = r.vec16()?;
        r.finish()?;
        Ok(Self {
            group,
            public: public.to_vec(),
            signature_scheme,
            signature: signature.to_vec(),
        })
    }

    /// The ServerECDHParams bytes the signature covers after the two randoms.
    pub fn params(group: u16, public: &[u8]) -> Vec<u8> {
        let mut out = vec![NAMED_CURVE];
        put_u16(&mut out, group);
        put_vec8(&mut out, public);
        out
    }

    /// Appends the body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&Self::params(self.group, &self.public));
        put_u16(out, self.signature_scheme);
        put_vec16(out, &self.signature);
    }
}

/// CertificateRequest (RFC 5246 §7.4.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRequest {
    /// ClientCertificateType values.
    pub certificate_types: Vec<u8>,
    /// SignatureAndHashAlgorithm code points.
    pub signature_schemes: Vec<u16>,
}

impl CertificateRequest {
    /// Parses a CertificateRequest body; certificate_authorities are skipped.
    pub fn parse(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let types = r.vec8()?;
        let schemes = r.vec16()?;
        if schemes.len() % 2 != 0 {
            return Err(DecodeError::InvalidLength("supported_signature_algorithms"));
        }
        let _authorities = r.vec16()?;
        r.finish()?;
        Ok(Self {
            certificate_types: types.to_vec(),
            signature_schemes: schemes
                .chunks_exact(2)
                .map(|c| c.iter().fold(0, |acc, &b| acc << 8 | u16::from(b)))
                .collect(),
        })
    }

    /// Appends the body (no certificate authorities).
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_vec8(out, &self.certificate_types);
        with_len16(out, |o| {
            self.signature_schemes.iter().for_each(|s| put_u16(o, *s))
        });
        put_u16(out, 0);
    }
}

/// ClientKeyExchange for ECDHE (RFC 8422 §5.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientKeyExchange {
    /// The client's ephemeral public share.
    pub public: Vec<u8>,
}

impl ClientKeyExchange {
    /// Parses a ClientKeyExchange body.
    pub fn parse(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let public = r.vec8()?;
        r.finish()?;
        if public.is_empty() {
            return Err(DecodeError::InvalidLength("ECPoint"));
        }
        Ok(Self {
            public: public.to_vec(),
        })
    }

    /// Appends the body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_vec8(out, &self.public);
    }
}

/// CertificateVerify: a DigitallySigned over the transcript (RFC 5246 §7.4.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateVerify {
    /// SignatureAndHashAlgorithm.
    pub signature_scheme: u16,
    /// The signature.
    pub signature: Vec<u8>,
}

impl CertificateVerify {
    /// Parses a CertificateVerify body.
    pub fn parse(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let signature_scheme = r.u16()?;
        let signature = r.vec16()?;
        r.finish()?;
        Ok(Self {
            signature_scheme,
            signature: signature.to_vec(),
        })
    }

    /// Appends the body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_u16(out, self.signature_scheme);
        put_vec16(out, &self.signature);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let c = CertificateMsg {
            chain: vec![vec![1, 2, 3], vec![4]],
        };
        let mut out = Vec::new();
        c.encode(&mut out);
        assert_eq!(CertificateMsg::parse(&out), Ok(c));

        let ske = ServerKeyExchange {
            group: 29,
            public: vec![5; 32],
            signature_scheme: 0x0403,
            signature: vec![6; 70],
        };
        let mut out = Vec::new();
        ske.encode(&mut out);
        assert_eq!(ServerKeyExchange::parse(&out), Ok(ske));

        let cr = CertificateRequest {
            certificate_types: vec![ECDSA_SIGN],
            signature_schemes: vec![0x0403],
        };
        let mut out = Vec::new();
        cr.encode(&mut out);
        assert_eq!(CertificateRequest::parse(&out), Ok(cr));

        let cke = ClientKeyExchange {
            public: vec![7; 65],
        };
        let mut out = Vec::new();
        cke.encode(&mut out);
        assert_eq!(ClientKeyExchange::parse(&out), Ok(cke));

        let cv = CertificateVerify {
            signature_scheme: 0x0403,
            signature: vec![8; 71],
        };
        let mut out = Vec::new();
        cv.encode(&mut out);
        assert_eq!(CertificateVerify::parse(&out), Ok(cv));
    }

    #[test]
    fn rejects_malformed() {
        assert!(CertificateMsg::parse(&[0, 0, 3, 0, 0, 0]).is_err());
        assert!(ServerKeyExchange::parse(&[1, 0, 23, 0]).is_err());
        assert!(ClientKeyExchange::parse(&[0]).is_err());
    }
}
