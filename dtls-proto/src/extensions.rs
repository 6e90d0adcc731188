//! Hello extensions this crate understands.
//!
//! | type | name | RFC |
//! | --- | --- | --- |
//! | 10 | supported_groups | RFC 8422 §5.1.1 |
//! | 11 | ec_point_formats | RFC 8422 §5.1.2 (uncompressed only) |
//! | 13 | signature_algorithms | RFC 5246 §7.4.1.4.1 |
//! | 14 | use_srtp | RFC 5764 §4.1.1 |
//! | 23 | extended_master_secret | RFC 7627 §5.1 |
//! | 0xff01 | renegotiation_info | RFC 5746 §3.2 |
//!
//! Other extensions are skipped on input (RFC 5246 §7.4.1.4) and never sent.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::error::DecodeError;
use crate::wire::{Reader, put_u16, put_vec8, with_len16};

const SUPPORTED_GROUPS: u16 = 10;
const EC_POINT_FORMATS: u16 = 11;
const SIGNATURE_ALGORITHMS: u16 = 13;
const USE_SRTP: u16 = 14;
const EXTENDED_MASTER_SECRET: u16 = 23;
const RENEGOTIATION_INFO: u16 = 0xff01;

/// Cap on how many extensions one hello may carry before we stop tracking duplicates.
const MAX_EXTENSIONS: usize = 64;

/// The `ec_point_formats` value "uncompressed" (RFC 8422 §5.1.2).
pub const POINT_FORMAT_UNCOMPRESSED: u8 = 0;

/// The use_srtp extension body (RFC 5764 §4.1.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UseSrtp {
    /// SRTPProtectionProfile code points, in preference order.
    pub profiles: Vec<u16>,
    /// srtp_mki (we send it empty and ignore the peer's).
    pub mki: Vec<u8>,
}

/// The extensions of a ClientHello or ServerHello.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Extensions {
    /// supported_groups code points.
    pub supported_groups: Option<Vec<u16>>,
    /// ec_point_formats.
    pub ec_point_formats: Option<Vec<u8>>,
    /// signature_algorithms code points.
    pub signature_algorithms: Option<Vec<u16>>,
    /// use_srtp.
    pub use_srtp: Option<UseSrtp>,
    /// extended_master_secret present.
    pub extended_master_secret: bool,
    /// renegotiation_info's renegotiated_connection.
    pub renegotiation_info: Option<Vec<u8>>,
}

fn u16_list(body: &[u8], name: &'static str) -> Result<Vec<u16>, DecodeError> {
    let mut r = Reader::new(body);
    let list = r.vec16()?;
    r.finish()?;
    if list.is_empty() || list.len() % 2 != 0 {
        return Err(DecodeError::InvalidLength {
            field: name,
            len: list.len(),
        });
    }
    Ok(list
        .chunks_exact(2)
        .map(|c| c.iter().fold(0, |acc, &b| acc << 8 | u16::from(b)))
        .collect())
}

impl Extensions {
    /// Parses an extensions block (the bytes after the 2-byte block length).
    pub fn parse(block: &[u8]) -> Result<Self, DecodeError> {
        let mut out = Self::default();
        let mut seen = [0u16; MAX_EXTENSIONS];
        let mut seen_len = 0;
        let mut r = Reader::new(block);
        while !r.is_empty() {
            let ext_type = r.u16()?;
            let body = r.vec16()?;
            if seen.get(..seen_len).unwrap_or_default().contains(&ext_type) {
                return Err(DecodeError::DuplicateExtension(ext_type));
            }
            if let Some(slot) = seen.get_mut(seen_len) {
                *slot = ext_type;
                seen_len += 1;
            }
            match ext_type {
                SUPPORTED_GROUPS => {
                    out.supported_groups = Some(u16_list(body, "supported_groups")?);
                }
                SIGNATURE_ALGORITHMS => {
                    out.signature_algorithms = Some(u16_list(body, "signature_algorithms")?);
                }
                EC_POINT_FORMATS => {
                    let mut b = Reader::new(body);
                    let formats = b.vec8()?;
                    b.finish()?;
                    if formats.is_empty() {
                        return Err(DecodeError::InvalidLength {
                            field: "ec_point_formats",
                            len: 0,
                        });
                    }
                    out.ec_point_formats = Some(formats.to_vec());
                }
                USE_SRTP => {
                    let mut b = Reader::new(body);
                    let profiles = b.vec16()?;
                    let mki = b.vec8()?;
                    b.finish()?;
                    if profiles.is_empty() || profiles.len() % 2 != 0 {
                        return Err(DecodeError::InvalidLength {
                            field: "use_srtp",
                            len: profiles.len(),
                        });
                    }
                    out.use_srtp = Some(UseSrtp {
                        profiles: profiles
                            .chunks_exact(2)
                            .map(|c| c.iter().fold(0, |acc, &b| acc << 8 | u16::from(b)))
                            .collect(),
                        mki: mki.to_vec(),
                    });
                }
                EXTENDED_MASTER_SECRET => {
                    if !body.is_empty() {
                        return Err(DecodeError::InvalidLength {
                            field: "extended_master_secret",
                            len: body.len(),
                        });
                    }
                    out.extended_master_secret = true;
                }
                RENEGOTIATION_INFO => {
                    let mut b = Reader::new(body);
                    let info = b.vec8()?;
                    b.finish()?;
                    out.renegotiation_info = Some(info.to_vec());
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// Appends the extensions block with its 2-byte length; nothing when there are none.
    pub fn encode(&self, out: &mut Vec<u8>) {
        fn ext(block: &mut Vec<u8>, ext_type: u16, body: impl FnOnce(&mut Vec<u8>)) {
            put_u16(block, ext_type);
            with_len16(block, body);
        }
        let start = out.len();
        with_len16(out, |block| {
            if let Some(groups) = &self.supported_groups {
                ext(block, SUPPORTED_GROUPS, |o| {
                    with_len16(o, |o| groups.iter().for_each(|g| put_u16(o, *g)))
                });
            }
            if let Some(formats) = &self.ec_point_formats {
                ext(block, EC_POINT_FORMATS, |o| put_vec8(o, formats));
            }
            if let Some(algs) = &self.signature_algorithms {
                ext(block, SIGNATURE_ALGORITHMS, |o| {
                    with_len16(o, |o| algs.iter().for_each(|a| put_u16(o, *a)))
                });
            }
            if let Some(srtp) = &self.use_srtp {
                ext(block, USE_SRTP, |o| {
                    with_len16(o, |o| srtp.profiles.iter().for_each(|p| put_u16(o, *p)));
                    put_vec8(o, &srtp.mki);
                });
            }
            if self.extended_master_secret {
                ext(block, EXTENDED_MASTER_SECRET, |_| {});
            }
            if let Some(info) = &self.renegotiation_info {
                ext(block, RENEGOTIATION_INFO, |o| put_vec8(o, info));
            }
        });
        // No extensions: no block at all (RFC 5246 §7.4.1.2 allows omitting it).
        if out.len() == start + 2 {
            out.truncate(start);
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn parse_encoded(e: &Extensions) -> Extensions {
        let mut out = Vec::new();
        e.encode(&mut out);
        let mut r = Reader::new(&out);
        let block = r.vec16().unwrap();
        Extensions::parse(block).unwrap()
    }

    #[test]
    fn round_trip() {
        let e = Extensions {
            supported_groups: Some(vec![29, 23]),
            ec_point_formats: Some(vec![0]),
            signature_algorithms: Some(vec![0x0403]),
            use_srtp: Some(UseSrtp {
                profiles: vec![1, 7],
                mki: vec![],
            }),
            extended_master_secret: true,
            renegotiation_info: Some(vec![]),
        };
        assert_eq!(parse_encoded(&e), e);
        let mut out = Vec::new();
        Extensions::default().encode(&mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn rejects_duplicates_and_bad_lengths() {
        let dup = [0, 23, 0, 0, 0, 23, 0, 0];
        assert_eq!(
            Extensions::parse(&dup),
            Err(DecodeError::DuplicateExtension(23))
        );
        let odd = [0, 10, 0, 3, 0, 1, 29];
        assert_eq!(
            Extensions::parse(&odd),
            Err(DecodeError::InvalidLength {
                field: "supported_groups",
                len: 1
            })
        );
        let unknown = [0x12, 0x34, 0, 1, 9];
        assert_eq!(Extensions::parse(&unknown), Ok(Extensions::default()));
    }

    proptest! {
        #[test]
        fn any_bytes_parse_to_extensions_or_an_error(data in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = Extensions::parse(&data);
        }
    }
}
