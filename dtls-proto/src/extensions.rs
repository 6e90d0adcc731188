//! Hello extensions this crate understands.
//!
//! | type | name | RFC |
//! | --- | --- | --- |
//! | 10 | supported_groups | RFC 8422 §5.1.1 |
//! | 11 | ec_point_formats | RFC 8422 §5.1.2 (uncompressed only) |
//! | 13 | signature_algorithms | RFC 5246 §7.4.1.4.1 |
//! | 14 | use_srtp | RFC 5764 §4.1.1 |
//! | 23 | extended_master_secret | RFC 7627 §5.1 |
//! | 43 | supported_versions | RFC 8446 §4.2.1 (DTLS 1.3: RFC 9147 §5.3) |
//! | 44 | cookie | RFC 8446 §4.2.2 |
//! | 51 | key_share | RFC 8446 §4.2.8 |
//! | 0xff01 | renegotiation_info | RFC 5746 §3.2 |
//!
//! supported_versions and key_share have one form in ClientHello, another in ServerHello and
//! a third (key_share) in HelloRetryRequest: the parser is told which hello it reads.
//!
//! Other extensions are skipped on input (RFC 5246 §7.4.1.4) and never sent.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::wire::DecodeError;
use crate::wire::{Reader, put_u16, put_vec8, put_vec16, with_len16};

const SUPPORTED_GROUPS: u16 = 10;
const EC_POINT_FORMATS: u16 = 11;
const SIGNATURE_ALGORITHMS: u16 = 13;
const USE_SRTP: u16 = 14;
const EXTENDED_MASTER_SECRET: u16 = 23;
const SUPPORTED_VERSIONS: u16 = 43;
const COOKIE: u16 = 44;
const KEY_SHARE: u16 = 51;
const RENEGOTIATION_INFO: u16 = 0xff01;
/// Most key shares a ClientHello may offer that we keep (Chromium offers 2).
const MAX_KEY_SHARES: usize = 8;
/// Most versions a ClientHello may list that we keep.
const MAX_VERSIONS: usize = 16;

/// Which hello an extensions block belongs to: supported_versions and key_share differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelloKind {
    /// ClientHello.
    Client,
    /// ServerHello.
    Server,
    /// HelloRetryRequest (a ServerHello with the special random, RFC 8446 §4.1.3).
    RetryRequest,
}

/// supported_versions (RFC 8446 §4.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SupportedVersions {
    /// The versions a client offers, in its preference order.
    Offered(Vec<u16>),
    /// The version a server selected.
    Selected(u16),
}

/// One KeyShareEntry (RFC 8446 §4.2.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyShareEntry {
    /// The NamedGroup code point.
    pub group: u16,
    /// The share itself.
    pub key_exchange: Vec<u8>,
}

/// key_share (RFC 8446 §4.2.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyShare {
    /// A client's shares, one per group at most, in its preference order.
    Offered(Vec<KeyShareEntry>),
    /// The server's share.
    Selected(KeyShareEntry),
    /// The group a HelloRetryRequest asks a share for.
    Requested(u16),
}

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
    /// supported_versions.
    pub supported_versions: Option<SupportedVersions>,
    /// cookie (RFC 8446 §4.2.2): sent in HelloRetryRequest, echoed in the second ClientHello.
    pub cookie: Option<Vec<u8>>,
    /// key_share.
    pub key_share: Option<KeyShare>,
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

fn key_share_entry(r: &mut Reader<'_>) -> Result<KeyShareEntry, DecodeError> {
    let group = r.u16()?;
    let key_exchange = r.vec16()?;
    if key_exchange.is_empty() {
        return Err(DecodeError::InvalidLength {
            field: "key_exchange",
            len: 0,
        });
    }
    Ok(KeyShareEntry {
        group,
        key_exchange: key_exchange.to_vec(),
    })
}

fn parse_supported_versions(
    body: &[u8],
    kind: HelloKind,
) -> Result<SupportedVersions, DecodeError> {
    let mut r = Reader::new(body);
    let versions = match kind {
        HelloKind::Client => {
            let list = r.vec8()?;
            if list.is_empty() || list.len() % 2 != 0 {
                return Err(DecodeError::InvalidLength {
                    field: "supported_versions",
                    len: list.len(),
                });
            }
            SupportedVersions::Offered(
                list.chunks_exact(2)
                    .take(MAX_VERSIONS)
                    .map(|c| c.iter().fold(0, |acc, &b| acc << 8 | u16::from(b)))
                    .collect(),
            )
        }
        HelloKind::Server | HelloKind::RetryRequest => SupportedVersions::Selected(r.u16()?),
    };
    r.finish()?;
    Ok(versions)
}

fn parse_key_share(body: &[u8], kind: HelloKind) -> Result<KeyShare, DecodeError> {
    let mut r = Reader::new(body);
    let share = match kind {
        HelloKind::Client => {
            let mut list = Reader::new(r.vec16()?);
            let mut entries: Vec<KeyShareEntry> = Vec::new();
            while !list.is_empty() {
                let entry = key_share_entry(&mut list)?;
                // RFC 8446 §4.2.8: at most one share per group.
                if entries.iter().any(|e| e.group == entry.group) {
                    return Err(DecodeError::InvalidValue {
                        field: "key_share group (repeated)",
                        value: u32::from(entry.group),
                    });
                }
                if entries.len() < MAX_KEY_SHARES {
                    entries.push(entry);
                }
            }
            KeyShare::Offered(entries)
        }
        HelloKind::Server => KeyShare::Selected(key_share_entry(&mut r)?),
        HelloKind::RetryRequest => KeyShare::Requested(r.u16()?),
    };
    r.finish()?;
    Ok(share)
}

impl Extensions {
    /// Parses an extensions block (the bytes after the 2-byte block length) of a hello of
    /// `kind`.
    pub fn parse(block: &[u8], kind: HelloKind) -> Result<Self, DecodeError> {
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
                SUPPORTED_VERSIONS => {
                    out.supported_versions = Some(parse_supported_versions(body, kind)?);
                }
                KEY_SHARE => out.key_share = Some(parse_key_share(body, kind)?),
                COOKIE => {
                    let mut b = Reader::new(body);
                    let cookie = b.vec16()?;
                    b.finish()?;
                    if cookie.is_empty() {
                        return Err(DecodeError::InvalidLength {
                            field: "cookie",
                            len: 0,
                        });
                    }
                    out.cookie = Some(cookie.to_vec());
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
            match &self.supported_versions {
                Some(SupportedVersions::Offered(versions)) => {
                    ext(block, SUPPORTED_VERSIONS, |o| {
                        let list: Vec<u8> = versions.iter().flat_map(|v| v.to_be_bytes()).collect();
                        put_vec8(o, &list);
                    });
                }
                Some(SupportedVersions::Selected(v)) => {
                    ext(block, SUPPORTED_VERSIONS, |o| put_u16(o, *v));
                }
                None => {}
            }
            if let Some(cookie) = &self.cookie {
                ext(block, COOKIE, |o| put_vec16(o, cookie));
            }
            let entry = |o: &mut Vec<u8>, e: &KeyShareEntry| {
                put_u16(o, e.group);
                put_vec16(o, &e.key_exchange);
            };
            match &self.key_share {
                Some(KeyShare::Offered(entries)) => ext(block, KEY_SHARE, |o| {
                    with_len16(o, |o| entries.iter().for_each(|e| entry(o, e)));
                }),
                Some(KeyShare::Selected(e)) => ext(block, KEY_SHARE, |o| entry(o, e)),
                Some(KeyShare::Requested(group)) => ext(block, KEY_SHARE, |o| put_u16(o, *group)),
                None => {}
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

    fn parse_encoded(e: &Extensions, kind: HelloKind) -> Extensions {
        let mut out = Vec::new();
        e.encode(&mut out);
        let mut r = Reader::new(&out);
        let block = r.vec16().unwrap();
        Extensions::parse(block, kind).unwrap()
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
            supported_versions: Some(SupportedVersions::Offered(vec![0xfefc, 0xfefd])),
            cookie: Some(vec![1, 2, 3]),
            key_share: Some(KeyShare::Offered(vec![
                KeyShareEntry {
                    group: 0x11ec,
                    key_exchange: vec![7; 1216],
                },
                KeyShareEntry {
                    group: 29,
                    key_exchange: vec![8; 32],
                },
            ])),
        };
        assert_eq!(parse_encoded(&e, HelloKind::Client), e);
        let server = Extensions {
            supported_versions: Some(SupportedVersions::Selected(0xfefc)),
            key_share: Some(KeyShare::Selected(KeyShareEntry {
                group: 29,
                key_exchange: vec![9; 32],
            })),
            ..Extensions::default()
        };
        assert_eq!(parse_encoded(&server, HelloKind::Server), server);
        let retry = Extensions {
            supported_versions: Some(SupportedVersions::Selected(0xfefc)),
            cookie: Some(vec![5; 40]),
            key_share: Some(KeyShare::Requested(0x11ec)),
            ..Extensions::default()
        };
        assert_eq!(parse_encoded(&retry, HelloKind::RetryRequest), retry);
        let mut out = Vec::new();
        Extensions::default().encode(&mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn rejects_duplicates_and_bad_lengths() {
        let client = HelloKind::Client;
        let dup = [0, 23, 0, 0, 0, 23, 0, 0];
        assert_eq!(
            Extensions::parse(&dup, client),
            Err(DecodeError::DuplicateExtension(23))
        );
        let odd = [0, 10, 0, 3, 0, 1, 29];
        assert_eq!(
            Extensions::parse(&odd, client),
            Err(DecodeError::InvalidLength {
                field: "supported_groups",
                len: 1
            })
        );
        let unknown = [0x12, 0x34, 0, 1, 9];
        assert_eq!(
            Extensions::parse(&unknown, client),
            Ok(Extensions::default())
        );
        // Two shares of one group.
        let repeated = [0, 51, 0, 12, 0, 10, 0, 29, 0, 1, 1, 0, 29, 0, 1, 2];
        assert_eq!(
            Extensions::parse(&repeated, client),
            Err(DecodeError::InvalidValue {
                field: "key_share group (repeated)",
                value: 29
            })
        );
        // A server's single version where a client's list belongs, and the reverse.
        let selected = [0, 43, 0, 2, 0xfe, 0xfc];
        assert!(Extensions::parse(&selected, client).is_err());
        let offered = [0, 43, 0, 3, 2, 0xfe, 0xfc];
        assert!(Extensions::parse(&offered, HelloKind::Server).is_err());
        // An empty share and an empty cookie.
        assert!(Extensions::parse(&[0, 51, 0, 4, 0, 29, 0, 0], HelloKind::Server).is_err());
        assert!(Extensions::parse(&[0, 44, 0, 2, 0, 0], HelloKind::RetryRequest).is_err());
    }

    proptest! {
        #[test]
        fn any_bytes_parse_to_extensions_or_an_error(data in proptest::collection::vec(any::<u8>(), 0..400)) {
            for kind in [HelloKind::Client, HelloKind::Server, HelloKind::RetryRequest] {
                let _ = Extensions::parse(&data, kind);
            }
        }
    }
}
