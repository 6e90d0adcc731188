//! The SDP grammar of ICE (RFC 8839 §5): `candidate` lines (§5.1), `ice-ufrag`/`ice-pwd`
//! (§5.4), `ice-options` (§5.6), `ice-lite` (§5.3) and `end-of-candidates` (RFC 8840 §8.2).
//!
//! Parsing accepts what browsers, libnice and erizo emit: with or without the `a=` prefix and
//! a trailing CRLF, any case for the transport and `typ` tokens, IPv4, IPv6 or a host name
//! (mDNS `.local`) as connection address, `raddr`/`rport`, RFC 6544 `tcptype`, and any number
//! of extension attributes (`generation 0 ufrag KDyD network-id 3 network-cost 10`), which are
//! kept in order. Formatting writes the browser form: `candidate:` and lowercase `udp`/`tcp`,
//! then `typ`, `raddr`/`rport`, `tcptype` and the extensions in their order.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fmt;
use std::net::IpAddr;

use thiserror::Error;

use crate::candidate::{Candidate, CandidateType, ConnectionAddress, TcpType, Transport};
use crate::error::{CredentialError, CredentialPart};

/// Longest foundation (RFC 8839 §5.1: 1*32ice-char).
const MAX_FOUNDATION: usize = 32;
/// Most extension attributes kept from one line (a bound against hostile input).
const MAX_EXTENSIONS: usize = 16;
/// Longest line accepted at all.
const MAX_LINE: usize = 1_024;

/// Why a line did not parse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SdpError {
    /// Not an ICE attribute this module knows (the attribute name).
    #[error("{0:?} is not an ICE attribute")]
    UnknownAttribute(String),
    /// The line is longer than 1024 bytes.
    #[error("line of {0} bytes, longer than the 1024 accepted")]
    TooLong(usize),
    /// A required field is missing.
    #[error("missing {0}")]
    Missing(&'static str),
    /// The foundation is empty, longer than 32 or not ice-chars (RFC 8839 §5.1).
    #[error("bad foundation {0:?}: 1 to 32 ice-chars")]
    BadFoundation(String),
    /// The component id is not a number from 1 to 256.
    #[error("bad component id {0:?}: 1 to 256")]
    BadComponent(String),
    /// The transport is neither UDP nor TCP.
    #[error("unsupported transport {0:?}: UDP or TCP")]
    UnsupportedTransport(String),
    /// The priority is not a 32-bit unsigned number.
    #[error("bad priority {0:?}: a number from 0 to 4294967295")]
    BadPriority(String),
    /// The connection address is neither an IP address nor a host name.
    #[error("bad connection address {0:?}: an IP address or a host name")]
    BadAddress(String),
    /// The port is not a number from 0 to 65535.
    #[error("bad port {0:?}: a number from 0 to 65535")]
    BadPort(String),
    /// Where `typ` should stand, another token (or `typ` is followed by a type that is not
    /// host, srflx, prflx or relay): the token found.
    #[error("bad candidate type {0:?}: typ host, srflx, prflx or relay")]
    BadType(String),
    /// `tcptype` is not active, passive or so.
    #[error("bad tcptype {0:?}: active, passive or so")]
    BadTcpType(String),
    /// An extension attribute (named here) has no value.
    #[error("extension attribute {0:?} has no value")]
    ExtensionWithoutValue(String),
    /// More than 16 extension attributes (a bound against hostile input).
    #[error("more than {MAX_EXTENSIONS} extension attributes")]
    TooManyExtensions,
    /// ice-ufrag or ice-pwd is too short, too long or not ice-chars.
    #[error("bad credential: {0}")]
    BadCredential(#[from] CredentialError),
}

/// One ICE attribute of an SDP media section or session.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum IceAttribute {
    /// `a=candidate:…`.
    Candidate(Candidate),
    /// `a=ice-ufrag:…`.
    Ufrag(String),
    /// `a=ice-pwd:…`.
    Pwd(String),
    /// `a=ice-options:trickle ice2 …`.
    Options(Vec<String>),
    /// `a=ice-lite`.
    Lite,
    /// `a=end-of-candidates`.
    EndOfCandidates,
}

impl IceAttribute {
    /// Parses one SDP line (with or without `a=`, with or without CRLF).
    pub fn parse(line: &str) -> Result<Self, SdpError> {
        if line.len() > MAX_LINE {
            return Err(SdpError::TooLong(line.len()));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        let line = line.strip_prefix("a=").unwrap_or(line);
        let (name, value) = match line.split_once(':') {
            Some((name, value)) => (name, Some(value)),
            None => (line, None),
        };
        match (name, value) {
            ("candidate", Some(_)) => parse_candidate(line).map(IceAttribute::Candidate),
            ("ice-ufrag", Some(v)) => credential(CredentialPart::Ufrag, v).map(IceAttribute::Ufrag),
            ("ice-pwd", Some(v)) => credential(CredentialPart::Pwd, v).map(IceAttribute::Pwd),
            ("ice-options", Some(v)) => Ok(IceAttribute::Options(
                v.split_ascii_whitespace()
                    .take(MAX_EXTENSIONS)
                    .map(str::to_owned)
                    .collect(),
            )),
            ("ice-lite", None) => Ok(IceAttribute::Lite),
            ("end-of-candidates", None) => Ok(IceAttribute::EndOfCandidates),
            _ => Err(SdpError::UnknownAttribute(name.to_owned())),
        }
    }
}

impl fmt::Display for IceAttribute {
    /// The attribute without `a=` and without CRLF.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IceAttribute::Candidate(c) => c.fmt(f),
            IceAttribute::Ufrag(u) => write!(f, "ice-ufrag:{u}"),
            IceAttribute::Pwd(p) => write!(f, "ice-pwd:{p}"),
            IceAttribute::Options(o) => write!(f, "ice-options:{}", o.join(" ")),
            IceAttribute::Lite => f.write_str("ice-lite"),
            IceAttribute::EndOfCandidates => f.write_str("end-of-candidates"),
        }
    }
}

impl std::str::FromStr for Candidate {
    type Err = SdpError;

    /// Parses a `candidate:` line (RFC 8839 §5.1), with or without `a=`.
    fn from_str(line: &str) -> Result<Self, SdpError> {
        if line.len() > MAX_LINE {
            return Err(SdpError::TooLong(line.len()));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        parse_candidate(line.strip_prefix("a=").unwrap_or(line))
    }
}

impl fmt::Display for Candidate {
    /// The browser form: `candidate:7 1 udp 2013266431 10.200.20.84 40006 typ host generation 0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "candidate:{} {} {} {} {} {} typ {}",
            self.foundation,
            self.component,
            self.transport.as_str(),
            self.priority,
            self.address,
            self.port,
            self.kind
        )?;
        if let Some((address, port)) = &self.related {
            write!(f, " raddr {address} rport {port}")?;
        }
        if let Some(tcp_type) = self.tcp_type {
            write!(f, " tcptype {}", tcp_type.as_str())?;
        }
        for (name, value) in &self.extensions {
            write!(f, " {name} {value}")?;
        }
        Ok(())
    }
}

/// ice-char = ALPHA / DIGIT / "+" / "/" (RFC 8839 §5.1).
fn is_ice_chars(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

fn credential(part: CredentialPart, value: &str) -> Result<String, SdpError> {
    let value = value.trim();
    CredentialError::check(part, value)?;
    Ok(value.to_owned())
}

fn parse_candidate(line: &str) -> Result<Candidate, SdpError> {
    let rest = line.strip_prefix("candidate:").ok_or_else(|| {
        SdpError::UnknownAttribute(line.split(':').next().unwrap_or(line).to_owned())
    })?;
    let mut fields = rest.split_ascii_whitespace();
    let mut next = |what| fields.next().ok_or(SdpError::Missing(what));
    let foundation = next("foundation")?;
    if foundation.len() > MAX_FOUNDATION || !is_ice_chars(foundation) {
        return Err(SdpError::BadFoundation(foundation.to_owned()));
    }
    let component = next("component id")?;
    let component = component
        .parse::<u16>()
        .ok()
        .filter(|c| (1..=256).contains(c))
        .ok_or_else(|| SdpError::BadComponent(component.to_owned()))?;
    let transport = next("transport")?;
    let transport = if transport.eq_ignore_ascii_case("udp") {
        Transport::Udp
    } else if transport.eq_ignore_ascii_case("tcp") {
        Transport::Tcp
    } else {
        return Err(SdpError::UnsupportedTransport(transport.to_owned()));
    };
    let priority = next("priority")?;
    let priority = priority
        .parse::<u32>()
        .map_err(|_| SdpError::BadPriority(priority.to_owned()))?;
    let address = connection_address(next("connection address")?)?;
    let port = port(next("port")?)?;
    let typ = next("typ")?;
    if !typ.eq_ignore_ascii_case("typ") {
        return Err(SdpError::BadType(typ.to_owned()));
    }
    let kind = next("candidate type")?;
    let kind = match kind.to_ascii_lowercase().as_str() {
        "host" => CandidateType::Host,
        "srflx" => CandidateType::ServerReflexive,
        "prflx" => CandidateType::PeerReflexive,
        "relay" => CandidateType::Relayed,
        _ => return Err(SdpError::BadType(kind.to_owned())),
    };
    let mut candidate = Candidate {
        foundation: foundation.to_owned(),
        component,
        transport,
        priority,
        address,
        port,
        kind,
        related: None,
        tcp_type: None,
        extensions: Vec::new(),
    };
    let mut related_address = None;
    let mut related_port = None;
    while let Some(name) = fields.next() {
        let value = fields
            .next()
            .ok_or_else(|| SdpError::ExtensionWithoutValue(name.to_owned()))?;
        match name {
            "raddr" if related_address.is_none() => {
                related_address = Some(connection_address(value)?);
            }
            "rport" if related_port.is_none() => related_port = Some(self::port(value)?),
            "tcptype" if candidate.tcp_type.is_none() => {
                candidate.tcp_type = Some(match value {
                    "active" => TcpType::Active,
                    "passive" => TcpType::Passive,
                    "so" => TcpType::SimultaneousOpen,
                    _ => return Err(SdpError::BadTcpType(value.to_owned())),
                });
            }
            _ => {
                if candidate.extensions.len() >= MAX_EXTENSIONS {
                    return Err(SdpError::TooManyExtensions);
                }
                candidate
                    .extensions
                    .push((name.to_owned(), value.to_owned()));
            }
        }
    }
    candidate.related = match (related_address, related_port) {
        (Some(a), Some(p)) => Some((a, p)),
        (None, None) => None,
        (None, Some(_)) => return Err(SdpError::Missing("raddr")),
        (Some(_), None) => return Err(SdpError::Missing("rport")),
    };
    Ok(candidate)
}

fn connection_address(s: &str) -> Result<ConnectionAddress, SdpError> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(ConnectionAddress::Ip(ip));
    }
    // A host name (RFC 1123 labels): letters, digits, '-', '.', at most 253 bytes.
    let valid = !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && s.bytes().any(|b| b.is_ascii_alphabetic() || b == b'-');
    if valid {
        Ok(ConnectionAddress::Fqdn(s.to_owned()))
    } else {
        Err(SdpError::BadAddress(s.to_owned()))
    }
}

fn port(s: &str) -> Result<u16, SdpError> {
    s.parse::<u16>()
        .map_err(|_| SdpError::BadPort(s.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(line: &str) -> Candidate {
        let c: Candidate = line.parse().unwrap();
        assert_eq!(c.to_string(), line.strip_prefix("a=").unwrap_or(line));
        c
    }

    #[test]
    fn chrome_host_line() {
        let c =
            round_trip("a=candidate:7 1 udp 2013266431 10.200.20.84 40006 typ host generation 0");
        assert_eq!(c.foundation, "7");
        assert_eq!(c.component, 1);
        assert_eq!(c.transport, Transport::Udp);
        assert_eq!(c.priority, 2_013_266_431);
        assert_eq!(c.addr(), Some("10.200.20.84:40006".parse().unwrap()));
        assert_eq!(c.kind, CandidateType::Host);
        assert_eq!(c.extension("generation"), Some("0"));
    }

    #[test]
    fn chrome_srflx_line_with_extensions() {
        let c = round_trip(
            "candidate:3661794643 1 udp 1685921535 114.86.193.199 43544 typ srflx raddr \
             10.200.111.59 rport 64816 generation 0 ufrag KDyD network-id 3",
        );
        assert_eq!(c.kind, CandidateType::ServerReflexive);
        assert_eq!(
            c.related_addr(),
            Some("10.200.111.59:64816".parse().unwrap())
        );
        assert_eq!(c.extension("ufrag"), Some("KDyD"));
        assert_eq!(c.extension("network-id"), Some("3"));
        assert_eq!(c.extensions.len(), 3);
    }

    #[test]
    fn tcp_candidate_with_tcptype() {
        let c = round_trip(
            "candidate:1467250027 1 tcp 1518280447 192.168.1.2 9 typ host tcptype active \
             generation 0 network-id 1 network-cost 10",
        );
        assert_eq!(c.transport, Transport::Tcp);
        assert_eq!(c.tcp_type, Some(TcpType::Active));
        assert_eq!(c.extension("network-cost"), Some("10"));
        let so: Candidate = "candidate:2 1 TCP 1 ::1 9 typ host tcptype so"
            .parse()
            .unwrap();
        assert_eq!(so.tcp_type, Some(TcpType::SimultaneousOpen));
        assert_eq!(
            "candidate:2 1 tcp 1 ::1 9 typ host tcptype sideways".parse::<Candidate>(),
            Err(SdpError::BadTcpType("sideways".into()))
        );
    }

    #[test]
    fn mdns_host_name() {
        let c = round_trip(
            "candidate:2845470591 1 udp 2122262783 1f4712db-ea17-4bcf-a596-105139dfd8bf.local \
             54400 typ host generation 0 network-id 1",
        );
        assert!(c.address.is_mdns());
        assert_eq!(c.addr(), None);
    }

    #[test]
    fn libnice_line_uppercase_udp_and_relay() {
        let line = "a=candidate:3 1 UDP 8331263 203.0.113.5 50123 typ relay raddr 198.51.100.2 rport 40000\r\n";
        let c: Candidate = line.parse().unwrap();
        assert_eq!(c.kind, CandidateType::Relayed);
        assert_eq!(c.transport, Transport::Udp);
        assert_eq!(
            c.to_string(),
            "candidate:3 1 udp 8331263 203.0.113.5 50123 typ relay raddr 198.51.100.2 rport 40000"
        );
        // Formatting and parsing again gives the same candidate.
        assert_eq!(c.to_string().parse::<Candidate>().unwrap(), c);
    }

    #[test]
    fn erizo_ipv6_and_hidden_raddr() {
        let c = round_trip(
            "candidate:1 2 udp 2013266430 2001:db8::7 9999 typ srflx raddr 0.0.0.0 rport 0",
        );
        assert_eq!(c.component, 2);
        assert_eq!(c.addr(), Some("[2001:db8::7]:9999".parse().unwrap()));
        assert_eq!(c.related_addr(), Some("0.0.0.0:0".parse().unwrap()));
    }

    #[test]
    fn malformed_lines_are_typed_errors() {
        let cases: &[(&str, SdpError)] = &[
            ("candidate:", SdpError::Missing("foundation")),
            ("candidate:1", SdpError::Missing("component id")),
            (
                "candidate:1 0 udp 1 1.2.3.4 5 typ host",
                SdpError::BadComponent("0".into()),
            ),
            (
                "candidate:1 257 udp 1 1.2.3.4 5 typ host",
                SdpError::BadComponent("257".into()),
            ),
            (
                "candidate:1 1 sctp 1 1.2.3.4 5 typ host",
                SdpError::UnsupportedTransport("sctp".into()),
            ),
            (
                "candidate:1 1 udp x 1.2.3.4 5 typ host",
                SdpError::BadPriority("x".into()),
            ),
            (
                "candidate:1 1 udp 1 1.2.3.4.. 5 typ host",
                SdpError::BadAddress("1.2.3.4..".into()),
            ),
            (
                "candidate:1 1 udp 1 1.2.3.4 70000 typ host",
                SdpError::BadPort("70000".into()),
            ),
            (
                "candidate:1 1 udp 1 1.2.3.4 5 type host",
                SdpError::BadType("type".into()),
            ),
            (
                "candidate:1 1 udp 1 1.2.3.4 5 typ nat",
                SdpError::BadType("nat".into()),
            ),
            (
                "candidate:1 1 udp 1 1.2.3.4 5 typ host generation",
                SdpError::ExtensionWithoutValue("generation".into()),
            ),
            (
                "candidate:1 1 udp 1 1.2.3.4 5 typ srflx raddr 1.2.3.4",
                SdpError::Missing("rport"),
            ),
            (
                "candidate:1 1 udp 1 1.2.3.4 5 typ srflx rport 9",
                SdpError::Missing("raddr"),
            ),
            (
                "candidate:a_b 1 udp 1 1.2.3.4 5 typ host",
                SdpError::BadFoundation("a_b".into()),
            ),
            (
                "candidate:123456789012345678901234567890123 1 udp 1 1.2.3.4 5 typ host",
                SdpError::BadFoundation("123456789012345678901234567890123".into()),
            ),
        ];
        for (line, error) in cases {
            assert_eq!(line.parse::<Candidate>().as_ref(), Err(error), "{line}");
        }
        // The message names the offending value.
        assert_eq!(
            "candidate:1 1 udp 1 1.2.3.4 70000 typ host"
                .parse::<Candidate>()
                .unwrap_err()
                .to_string(),
            "bad port \"70000\": a number from 0 to 65535"
        );
        assert_eq!(
            "x".repeat(2000).parse::<Candidate>(),
            Err(SdpError::TooLong(2000))
        );
    }

    #[test]
    fn extension_count_is_bounded() {
        let mut line = "candidate:1 1 udp 1 1.2.3.4 5 typ host".to_owned();
        for i in 0..16 {
            line.push_str(&format!(" x{i} {i}"));
        }
        assert_eq!(line.parse::<Candidate>().unwrap().extensions.len(), 16);
        line.push_str(" one more");
        assert_eq!(line.parse::<Candidate>(), Err(SdpError::TooManyExtensions));
    }

    #[test]
    fn session_attributes() {
        assert_eq!(
            IceAttribute::parse("a=ice-ufrag:KDyD"),
            Ok(IceAttribute::Ufrag("KDyD".into()))
        );
        let short = IceAttribute::parse("a=ice-ufrag:abc").unwrap_err();
        assert_eq!(
            short,
            SdpError::BadCredential(CredentialError::BadLength {
                part: CredentialPart::Ufrag,
                len: 3
            })
        );
        assert_eq!(
            short.to_string(),
            "bad credential: ice-ufrag is 3 characters long; RFC 8839 §5.4 wants 4 to 256"
        );
        let pwd = "a=ice-pwd:asd88fgpdd777uzjYhagZg\r\n";
        assert_eq!(
            IceAttribute::parse(pwd),
            Ok(IceAttribute::Pwd("asd88fgpdd777uzjYhagZg".into()))
        );
        assert_eq!(
            IceAttribute::parse("a=ice-pwd:short"),
            Err(SdpError::BadCredential(CredentialError::BadLength {
                part: CredentialPart::Pwd,
                len: 5
            }))
        );
        assert_eq!(
            IceAttribute::parse("a=ice-pwd:asd88fgpdd777uzjYhag-g"),
            Err(SdpError::BadCredential(CredentialError::NotIceChar {
                part: CredentialPart::Pwd,
                character: '-'
            }))
        );
        let options = IceAttribute::parse("a=ice-options:trickle ice2").unwrap();
        assert_eq!(
            options,
            IceAttribute::Options(vec!["trickle".into(), "ice2".into()])
        );
        assert_eq!(options.to_string(), "ice-options:trickle ice2");
        assert_eq!(IceAttribute::parse("a=ice-lite"), Ok(IceAttribute::Lite));
        assert_eq!(
            IceAttribute::parse("end-of-candidates"),
            Ok(IceAttribute::EndOfCandidates)
        );
        assert_eq!(
            IceAttribute::parse("a=rtcp-mux"),
            Err(SdpError::UnknownAttribute("rtcp-mux".into()))
        );
        let c = IceAttribute::parse("a=candidate:7 1 udp 2013266431 10.200.20.84 40006 typ host")
            .unwrap();
        assert!(matches!(c, IceAttribute::Candidate(_)));
        assert_eq!(
            c.to_string(),
            "candidate:7 1 udp 2013266431 10.200.20.84 40006 typ host"
        );
    }
}
