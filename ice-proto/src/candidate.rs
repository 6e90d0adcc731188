//! ICE candidates (RFC 8445 §5.1): their types, transport, component, priority (§5.1.2) and
//! foundation (§5.1.1.3), with the base and related address an agent needs.
//!
//! A [`Candidate`] is both what the agent gathers and what the peer signals: the SDP grammar
//! (RFC 8839 §5.1, [`crate::sdp`]) parses into it and formats from it, so everything a browser
//! or libnice puts on a `candidate:` line — TCP type, mDNS host names, extension attributes —
//! survives a round trip.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// The type of a candidate (RFC 8445 §5.1.1).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum CandidateType {
    /// A transport address on a local interface (§5.1.1.1).
    Host,
    /// The address a NAT gave a host candidate, learnt from a STUN server (§5.1.1.2).
    ServerReflexive,
    /// The address a NAT gave a host candidate, learnt from a connectivity check (§7.2.5.3.1,
    /// §7.3.1.3).
    PeerReflexive,
    /// An address on a TURN server relaying for the agent (§5.1.1.2).
    Relayed,
}

impl CandidateType {
    /// The recommended type preference (RFC 8445 §5.1.2.2): host 126, peer-reflexive 110,
    /// server-reflexive 100, relayed 0.
    pub const fn preference(self) -> u32 {
        match self {
            CandidateType::Host => 126,
            CandidateType::PeerReflexive => 110,
            CandidateType::ServerReflexive => 100,
            CandidateType::Relayed => 0,
        }
    }

    /// The `typ` token of RFC 8839 §5.1: `host`, `srflx`, `prflx`, `relay`.
    pub const fn as_str(self) -> &'static str {
        match self {
            CandidateType::Host => "host",
            CandidateType::ServerReflexive => "srflx",
            CandidateType::PeerReflexive => "prflx",
            CandidateType::Relayed => "relay",
        }
    }
}

impl fmt::Display for CandidateType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The transport protocol of a candidate. TCP candidates (RFC 6544, [`crate::tcp`]) pair
/// only with TCP ones, active with passive.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP (RFC 6544).
    Tcp,
}

impl Transport {
    /// The lowercase token browsers write (`udp`, `tcp`); parsing is case-insensitive.
    pub const fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

/// The RFC 6544 `tcptype` of a TCP candidate.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum TcpType {
    /// Opens outgoing connections only.
    Active,
    /// Accepts incoming connections only.
    Passive,
    /// Simultaneous open.
    SimultaneousOpen,
}

impl TcpType {
    /// The token: `active`, `passive`, `so`.
    pub const fn as_str(self) -> &'static str {
        match self {
            TcpType::Active => "active",
            TcpType::Passive => "passive",
            TcpType::SimultaneousOpen => "so",
        }
    }
}

/// A candidate's connection address: an IP address, or a host name — in practice an mDNS
/// `.local` name that browsers use to hide host addresses (the caller resolves it and signals
/// the result as an IP candidate).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum ConnectionAddress {
    /// An IPv4 or IPv6 address.
    Ip(IpAddr),
    /// A fully qualified domain name, e.g. `1f4712db-ea17-4bcf-a596-105139dfd8bf.local`.
    Fqdn(String),
}

impl ConnectionAddress {
    /// Whether this is an mDNS name (ends with `.local`).
    pub fn is_mdns(&self) -> bool {
        match self {
            ConnectionAddress::Fqdn(name) => name
                .get(name.len().saturating_sub(6)..)
                .is_some_and(|s| s.eq_ignore_ascii_case(".local")),
            ConnectionAddress::Ip(_) => false,
        }
    }

    /// The IP address, if this is one.
    pub const fn ip(&self) -> Option<IpAddr> {
        match self {
            ConnectionAddress::Ip(ip) => Some(*ip),
            ConnectionAddress::Fqdn(_) => None,
        }
    }
}

impl fmt::Display for ConnectionAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionAddress::Ip(ip) => ip.fmt(f),
            ConnectionAddress::Fqdn(name) => f.write_str(name),
        }
    }
}

/// An ICE candidate: the fields of an RFC 8839 `candidate:` line.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Candidate {
    /// The foundation: equal for candidates of the same type, base IP, server and transport
    /// (RFC 8445 §5.1.1.3). 1 to 32 ice-chars.
    pub foundation: String,
    /// The component id, 1 to 256 (1 is RTP, 2 RTCP).
    pub component: u16,
    /// The transport.
    pub transport: Transport,
    /// The priority (RFC 8445 §5.1.2).
    pub priority: u32,
    /// The connection address.
    pub address: ConnectionAddress,
    /// The port.
    pub port: u16,
    /// The type.
    pub kind: CandidateType,
    /// `raddr`/`rport`: the base of a reflexive candidate, the mapped address of a relayed one
    /// (RFC 8839 §5.1). Browsers may hide it as `0.0.0.0 0`.
    pub related: Option<(ConnectionAddress, u16)>,
    /// RFC 6544 `tcptype`, for TCP candidates.
    pub tcp_type: Option<TcpType>,
    /// Extension attributes in their order (`generation 0`, `ufrag KDyD`, `network-id 3`, …).
    pub extensions: Vec<(String, String)>,
}

impl Candidate {
    /// A UDP candidate at `addr` with the priority RFC 8445 §5.1.2.1 gives it and the
    /// foundation of [`foundation`] (for a host candidate, `base` is `addr`).
    pub fn new(
        kind: CandidateType,
        component: u16,
        addr: SocketAddr,
        base: SocketAddr,
        server: Option<IpAddr>,
        local_preference: u16,
    ) -> Self {
        Self {
            foundation: foundation(kind, base.ip(), server, Transport::Udp),
            component,
            transport: Transport::Udp,
            priority: priority(kind.preference(), local_preference, component),
            address: ConnectionAddress::Ip(addr.ip()),
            port: addr.port(),
            kind,
            related: (kind != CandidateType::Host)
                .then_some((ConnectionAddress::Ip(base.ip()), base.port())),
            tcp_type: None,
            extensions: Vec::new(),
        }
    }

    /// The transport address, unless the address is a host name.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.address.ip().map(|ip| SocketAddr::new(ip, self.port))
    }

    /// The related address, if present and an IP address.
    pub fn related_addr(&self) -> Option<SocketAddr> {
        let (address, port) = self.related.as_ref()?;
        address.ip().map(|ip| SocketAddr::new(ip, *port))
    }

    /// The value of extension attribute `name` (e.g. `ufrag`, `generation`), if present.
    pub fn extension(&self, name: &str) -> Option<&str> {
        self.extensions
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The candidate priority of RFC 8445 §5.1.2.1:
/// `2^24 × type preference + 2^8 × local preference + (256 − component id)`.
/// Component ids above 256 are treated as 256.
pub const fn priority(type_preference: u32, local_preference: u16, component: u16) -> u32 {
    let component = if component > 256 { 256 } else { component } as u32;
    ((type_preference & 0x7e) << 24) | ((local_preference as u32) << 8) | (256 - component)
}

/// The local preference the agent gives the `index`-th base of a component (RFC 8445
/// §5.1.2.1 and RFC 8421 §4): IPv6 bases rank above IPv4 ones, earlier bases above later ones.
pub const fn local_preference(ip: IpAddr, index: usize) -> u16 {
    let family: u16 = match ip {
        IpAddr::V6(_) => 65_535,
        IpAddr::V4(_) => 32_767,
    };
    let index = if index > 1_000 { 1_000 } else { index } as u16;
    family - 2 * index
}

/// A foundation (RFC 8445 §5.1.1.3): candidates share one when they have the same type, base
/// IP address, STUN/TURN server IP address and transport. It is a 32-bit FNV-1a hash of those
/// four, in decimal, as browsers write foundations.
pub fn foundation(
    kind: CandidateType,
    base: IpAddr,
    server: Option<IpAddr>,
    transport: Transport,
) -> String {
    let mut hash = Fnv::default();
    hash.write(kind.as_str().as_bytes());
    write_ip(&mut hash, base);
    match server {
        Some(ip) => write_ip(&mut hash, ip),
        None => hash.write(b"-"),
    }
    hash.write(transport.as_str().as_bytes());
    hash.0.to_string()
}

fn write_ip(hash: &mut Fnv, ip: IpAddr) {
    match ip {
        IpAddr::V4(ip) => hash.write(&ip.octets()),
        IpAddr::V6(ip) => hash.write(&ip.octets()),
    }
}

/// 32-bit FNV-1a: stable across runs and platforms (unlike `std`'s `DefaultHasher`).
struct Fnv(u32);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0x811c_9dc5)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u32::from(*b)).wrapping_mul(0x0100_0193);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_formula_of_rfc_8445_5_1_2_1() {
        // A host candidate, local preference 65535, component 1: 126 << 24 | 65535 << 8 | 255.
        assert_eq!(priority(126, 65_535, 1), 2_130_706_431);
        // The same, component 2.
        assert_eq!(priority(126, 65_535, 2), 2_130_706_430);
        // Chrome's lines: srflx 1685921535 and host (mDNS) 2122262783, component 1.
        assert_eq!(priority(100, 32_030, 1), 1_685_921_535);
        assert_eq!(priority(126, 32_552, 1), 2_122_262_783);
        // Relayed: type preference 0.
        assert_eq!(priority(0, 65_535, 1), 16_777_215);
        // A component above 256 saturates instead of overflowing.
        assert_eq!(priority(0, 0, 300), 0);
    }

    #[test]
    fn type_preferences_are_ordered_host_prflx_srflx_relay() {
        let [h, p, s, r] = [
            CandidateType::Host,
            CandidateType::PeerReflexive,
            CandidateType::ServerReflexive,
            CandidateType::Relayed,
        ]
        .map(CandidateType::preference);
        assert!(h > p && p > s && s > r);
        assert_eq!((h, p, s, r), (126, 110, 100, 0));
    }

    #[test]
    fn local_preference_ranks_ipv6_then_order() {
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(local_preference(v6, 0), 65_535);
        assert!(local_preference(v6, 5) > local_preference(v4, 0));
        assert!(local_preference(v4, 0) > local_preference(v4, 1));
        assert_eq!(local_preference(v4, usize::MAX), 32_767 - 2_000);
    }

    #[test]
    fn foundation_equal_iff_type_base_server_transport_equal() {
        let b1: IpAddr = "10.0.0.1".parse().unwrap();
        let b2: IpAddr = "10.0.0.2".parse().unwrap();
        let s1: IpAddr = "192.0.2.1".parse().unwrap();
        let s2: IpAddr = "192.0.2.2".parse().unwrap();
        let f = |k, b, s| foundation(k, b, s, Transport::Udp);
        let host = CandidateType::Host;
        let srflx = CandidateType::ServerReflexive;
        assert_eq!(f(host, b1, None), f(host, b1, None));
        assert_ne!(f(host, b1, None), f(host, b2, None));
        assert_ne!(f(host, b1, None), f(srflx, b1, None));
        assert_eq!(f(srflx, b1, Some(s1)), f(srflx, b1, Some(s1)));
        assert_ne!(f(srflx, b1, Some(s1)), f(srflx, b1, Some(s2)));
        assert_ne!(
            foundation(host, b1, None, Transport::Udp),
            foundation(host, b1, None, Transport::Tcp)
        );
        // Stable across runs: a fixed value.
        assert_eq!(f(host, b1, None), f(host, b1, None));
        assert!(f(host, b1, None).len() <= 10);
    }

    #[test]
    fn new_candidate_has_related_address_unless_host() {
        let base: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let mapped: SocketAddr = "203.0.113.7:6000".parse().unwrap();
        let host = Candidate::new(CandidateType::Host, 1, base, base, None, 65_535);
        assert_eq!(host.related, None);
        assert_eq!(host.addr(), Some(base));
        assert_eq!(host.priority, 2_130_706_431);
        let srflx = Candidate::new(
            CandidateType::ServerReflexive,
            1,
            mapped,
            base,
            Some("192.0.2.1".parse().unwrap()),
            65_535,
        );
        assert_eq!(srflx.related_addr(), Some(base));
        assert_eq!(srflx.addr(), Some(mapped));
    }

    #[test]
    fn mdns_names_are_recognised() {
        let name = ConnectionAddress::Fqdn("1f4712db-ea17-4bcf-a596-105139dfd8bf.local".into());
        assert!(name.is_mdns());
        assert!(!ConnectionAddress::Fqdn("example.com".into()).is_mdns());
        assert!(!ConnectionAddress::Fqdn("l".into()).is_mdns());
        assert!(!ConnectionAddress::Ip("10.0.0.1".parse().unwrap()).is_mdns());
    }
}
