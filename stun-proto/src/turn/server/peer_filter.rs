//! Which peers a TURN server relays to (RFC 8656 §21.3 "Exploiting the TURN server to reach
//! internal hosts": a server SHOULD NOT relay to addresses it should not reach).
//!
//! Every address falls in zero or more [`PeerClass`]es; a peer is relayed to only if each of
//! its classes is allowed. By default no class is: loopback, private (RFC 1918, fc00::/7),
//! shared (100.64/10, RFC 6598), link-local, site-local (fec0::/10, RFC 3879), multicast,
//! broadcast, "this network" (0.0.0.0/8), reserved (240.0.0.0/4), unspecified, and the
//! server's own listening and relayed transport addresses are all denied (two clients of one
//! server relaying to each other need [`PeerClass::OwnRelay`] allowed). An IPv6 address
//! that carries an IPv4 address — IPv4-mapped (`::ffff:127.0.0.1`), IPv4-compatible
//! (`::127.0.0.1`, RFC 4291 §2.5.5.1), NAT64 (`64:ff9b::7f00:1`, RFC 6052 §2.1, and the
//! local-use `64:ff9b:1::/48` of RFC 8215), 6to4 (`2002:7f00:1::`, RFC 3056 §2) — also
//! falls in the classes of the IPv4 address it carries, so no spelling reaches a denied
//! host. Ranges of the caller's own are allowed or denied on top.
//!
//! A denied peer gets 403 Forbidden for CreatePermission and ChannelBind (§9.2, §11.2), and
//! its Send indications and datagrams are dropped.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// An IP prefix: an address and how many leading bits count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpRange {
    addr: IpAddr,
    prefix: u8,
}

impl IpRange {
    /// The range `addr/prefix`; `None` if the prefix is longer than the address.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Self> {
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= bits).then_some(Self { addr, prefix })
    }

    /// Whether `ip` is in the range (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// A class of addresses a public TURN server does not relay to unless told.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PeerClass {
    /// 127.0.0.0/8 and ::1.
    Loopback,
    /// RFC 1918 (10/8, 172.16/12, 192.168/16) and unique-local fc00::/7 (RFC 4193).
    Private,
    /// Shared address space for carrier-grade NAT, 100.64.0.0/10 (RFC 6598).
    Shared,
    /// 169.254.0.0/16 and fe80::/10.
    LinkLocal,
    /// The deprecated IPv6 site-local fec0::/10 (RFC 3879).
    SiteLocal,
    /// 224.0.0.0/4 and ff00::/8.
    Multicast,
    /// 255.255.255.255.
    Broadcast,
    /// "This network", 0.0.0.0/8 (RFC 791; RFC 6890 §2.2.2), less 0.0.0.0 itself.
    ThisNetwork,
    /// 240.0.0.0/4, reserved for future use (RFC 1112 §4), less the broadcast address.
    Reserved,
    /// 0.0.0.0 and ::.
    Unspecified,
    /// One of the server's own listening transport addresses: relaying there would feed
    /// the server TURN messages from its own relayed address, a loop.
    OwnListening,
    /// One of the server's own relayed transport addresses: two clients of one server
    /// talking relay to relay (both forcing relay in WebRTC) need this class allowed.
    OwnRelay,
}

impl PeerClass {
    /// Every class.
    pub const ALL: [PeerClass; 12] = [
        PeerClass::Loopback,
        PeerClass::Private,
        PeerClass::Shared,
        PeerClass::LinkLocal,
        PeerClass::SiteLocal,
        PeerClass::Multicast,
        PeerClass::Broadcast,
        PeerClass::ThisNetwork,
        PeerClass::Reserved,
        PeerClass::Unspecified,
        PeerClass::OwnListening,
        PeerClass::OwnRelay,
    ];

    /// The class's name in configuration files and on command lines, kebab-case:
    /// `loopback`, `private`, `shared`, `link-local`, `site-local`, `multicast`,
    /// `broadcast`, `this-network`, `reserved`, `unspecified`, `own-listening`, `own-relay`.
    pub const fn name(self) -> &'static str {
        match self {
            PeerClass::Loopback => "loopback",
            PeerClass::Private => "private",
            PeerClass::Shared => "shared",
            PeerClass::LinkLocal => "link-local",
            PeerClass::SiteLocal => "site-local",
            PeerClass::Multicast => "multicast",
            PeerClass::Broadcast => "broadcast",
            PeerClass::ThisNetwork => "this-network",
            PeerClass::Reserved => "reserved",
            PeerClass::Unspecified => "unspecified",
            PeerClass::OwnListening => "own-listening",
            PeerClass::OwnRelay => "own-relay",
        }
    }

    const fn bit(self) -> u16 {
        1 << self as u16
    }
}

impl fmt::Display for PeerClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is no [`PeerClass`]'s [`name`](PeerClass::name).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown peer class {0:?}: expected loopback, private, shared, link-local, site-local, \
     multicast, broadcast, this-network, reserved, unspecified, own-listening or own-relay"
)]
pub struct UnknownPeerClass(pub String);

impl FromStr for PeerClass {
    type Err = UnknownPeerClass;

    /// The class [`name`](PeerClass::name)d `name` (ASCII case ignored).
    fn from_str(name: &str) -> Result<Self, UnknownPeerClass> {
        PeerClass::ALL
            .into_iter()
            .find(|class| class.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| UnknownPeerClass(name.to_owned()))
    }
}

/// A set of [`PeerClass`]es.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PeerClasses(u16);

impl PeerClasses {
    /// No class.
    pub const NONE: PeerClasses = PeerClasses(0);

    /// The set with `class` added.
    #[must_use]
    pub const fn with(self, class: PeerClass) -> Self {
        Self(self.0 | class.bit())
    }

    /// Adds `class`.
    pub fn insert(&mut self, class: PeerClass) {
        *self = self.with(class);
    }

    /// Whether `class` is in the set.
    pub const fn contains(self, class: PeerClass) -> bool {
        self.0 & class.bit() != 0
    }

    /// Whether every class of `other` is in the set.
    pub const fn is_superset(self, other: PeerClasses) -> bool {
        other.0 & !self.0 == 0
    }

    /// The classes `ip` falls in, with those of the IPv4 address an IPv6 address carries.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => v4_classes(v4),
            IpAddr::V6(v6) => {
                let own = v6_classes(v6);
                embedded_v4(v6).map_or(own, |v4| PeerClasses(own.0 | v4_classes(v4).0))
            }
        }
    }
}

/// The deny-list of peer addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerFilter {
    /// The classes relayed to anyway (none by default; tests on one machine allow
    /// [`PeerClass::Loopback`]).
    pub allowed_classes: PeerClasses,
    /// Ranges always allowed, whatever else says (checked first).
    pub allowed: Vec<IpRange>,
    /// Ranges denied besides the classes.
    pub denied: Vec<IpRange>,
    /// The server's listening transport addresses ([`PeerClass::OwnListening`]; the server
    /// knows its relayed addresses itself). Only exact addresses count: list each concrete
    /// address a wildcard listener answers on.
    pub listening: Vec<SocketAddr>,
}

impl PeerFilter {
    /// The default filter with loopback peers allowed (for tests and demos on one host).
    pub fn allowing_loopback() -> Self {
        Self {
            allowed_classes: PeerClasses::NONE.with(PeerClass::Loopback),
            ..Self::default()
        }
    }

    /// Whether the server may relay to `ip` (a permission, RFC 8656 §9).
    pub fn is_allowed(&self, ip: IpAddr) -> bool {
        if self.allowed.iter().any(|r| r.contains(ip)) {
            return true;
        }
        if self.denied.iter().any(|r| r.contains(ip)) {
            return false;
        }
        self.allowed_classes.is_superset(PeerClasses::of(ip))
    }

    /// Whether the server may relay to `peer`, given whether it is one of the server's own
    /// relayed addresses (`is_relay`): [`is_allowed`](Self::is_allowed) for its IP, and
    /// neither a listening nor a relayed address of the server unless
    /// [`PeerClass::OwnListening`] or [`PeerClass::OwnRelay`] is allowed.
    pub fn is_allowed_peer(&self, peer: SocketAddr, is_relay: bool) -> bool {
        let allows = |class| self.allowed_classes.contains(class);
        let listening = self.listening.iter().any(|l| same_address(*l, peer));
        self.is_allowed(peer.ip())
            && (!listening || allows(PeerClass::OwnListening))
            && (!is_relay || allows(PeerClass::OwnRelay))
    }
}

/// Whether two transport addresses are one, IPv4-mapped IPv6 counting as IPv4.
fn same_address(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && a.ip().to_canonical() == b.ip().to_canonical()
}

fn v4_classes(ip: Ipv4Addr) -> PeerClasses {
    let in_range = |a, b, c, d, prefix| in_v4(ip, Ipv4Addr::new(a, b, c, d), prefix);
    let class = if ip.is_unspecified() {
        PeerClass::Unspecified
    } else if ip.is_broadcast() {
        PeerClass::Broadcast
    } else if ip.is_loopback() {
        PeerClass::Loopback
    } else if ip.is_private() {
        PeerClass::Private
    } else if in_range(100, 64, 0, 0, 10) {
        PeerClass::Shared
    } else if ip.is_link_local() {
        PeerClass::LinkLocal
    } else if ip.is_multicast() {
        PeerClass::Multicast
    } else if in_range(0, 0, 0, 0, 8) {
        PeerClass::ThisNetwork
    } else if in_range(240, 0, 0, 0, 4) {
        PeerClass::Reserved
    } else {
        return PeerClasses::NONE;
    };
    PeerClasses::NONE.with(class)
}

fn v6_classes(ip: Ipv6Addr) -> PeerClasses {
    let [first, ..] = ip.segments();
    let class = if ip.is_unspecified() {
        PeerClass::Unspecified
    } else if ip.is_loopback() {
        PeerClass::Loopback
    } else if first & 0xfe00 == 0xfc00 {
        PeerClass::Private
    } else if first & 0xffc0 == 0xfe80 {
        PeerClass::LinkLocal
    } else if first & 0xffc0 == 0xfec0 {
        PeerClass::SiteLocal
    } else if ip.is_multicast() {
        PeerClass::Multicast
    } else {
        return PeerClasses::NONE;
    };
    PeerClasses::NONE.with(class)
}

/// The IPv4 address an IPv6 address carries, if it is of a form that does: IPv4-mapped
/// `::ffff:0:0/96`, IPv4-compatible `::/96` (beside `::` and `::1`), NAT64 `64:ff9b::/96`
/// and `64:ff9b:1::/48` (RFC 6052 §2.2: the IPv4 address in bits 48–87, skipping the
/// reserved octet 64–71), and 6to4 `2002::/16` (bits 16–47).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let [_, _, a, b, c, d, e, f, _, g, h, _, w, x, y, z] = ip.octets();
    let bits = u128::from(ip);
    let prefix96 = bits >> 32;
    if prefix96 == 0xffff || prefix96 == 0x0064_ff9b_u128 << 64 || (prefix96 == 0 && bits > 1) {
        return Some(Ipv4Addr::new(w, x, y, z));
    }
    match ip.segments() {
        [0x0064, 0xff9b, 0x0001, ..] => Some(Ipv4Addr::new(e, f, g, h)),
        [0x2002, ..] => Some(Ipv4Addr::new(a, b, c, d)),
        _ => None,
    }
}

fn in_v4(ip: Ipv4Addr, net: Ipv4Addr, prefix: u8) -> bool {
    IpRange::new(IpAddr::V4(net), prefix).is_some_and(|r| r.contains(IpAddr::V4(ip)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn internal_addresses_are_denied_by_default_in_every_spelling() {
        let filter = PeerFilter::default();
        for (denied, class) in [
            ("127.0.0.1", PeerClass::Loopback),
            ("10.1.2.3", PeerClass::Private),
            ("172.16.0.1", PeerClass::Private),
            ("192.168.1.1", PeerClass::Private),
            ("100.64.0.1", PeerClass::Shared),
            ("100.127.255.254", PeerClass::Shared),
            ("169.254.0.1", PeerClass::LinkLocal),
            ("0.0.0.0", PeerClass::Unspecified),
            ("0.1.2.3", PeerClass::ThisNetwork),
            ("240.0.0.1", PeerClass::Reserved),
            ("254.255.255.255", PeerClass::Reserved),
            ("224.0.0.1", PeerClass::Multicast),
            ("255.255.255.255", PeerClass::Broadcast),
            ("::1", PeerClass::Loopback),
            ("::", PeerClass::Unspecified),
            ("fc00::1", PeerClass::Private),
            ("fe80::1", PeerClass::LinkLocal),
            ("fec0::1", PeerClass::SiteLocal),
            ("ff02::1", PeerClass::Multicast),
            ("::ffff:127.0.0.1", PeerClass::Loopback),
            ("::127.0.0.1", PeerClass::Loopback),
            ("::10.0.0.1", PeerClass::Private),
            ("64:ff9b::7f00:1", PeerClass::Loopback),
            ("64:ff9b::a9fe:1", PeerClass::LinkLocal),
            ("64:ff9b:1:7f00:0:100::", PeerClass::Loopback),
            ("2002:7f00:1::", PeerClass::Loopback),
            ("2002:c0a8:101::1", PeerClass::Private),
            ("2002:6440:1::", PeerClass::Shared),
            ("::ffff:0.0.0.0", PeerClass::Unspecified),
        ] {
            assert!(!filter.is_allowed(ip(denied)), "{denied}");
            assert!(PeerClasses::of(ip(denied)).contains(class), "{denied}");
            let only = PeerFilter {
                allowed_classes: PeerClasses::NONE.with(class),
                ..PeerFilter::default()
            };
            assert!(
                only.is_allowed(ip(denied)),
                "{denied} with {class:?} allowed"
            );
        }
        for allowed in [
            "203.0.113.1",
            "8.8.8.8",
            "100.128.0.1",
            "2001:db8::1",
            "::ffff:8.8.8.8",
            "::8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(filter.is_allowed(ip(allowed)), "{allowed}");
            assert_eq!(PeerClasses::of(ip(allowed)), PeerClasses::NONE, "{allowed}");
        }
    }

    #[test]
    fn embedded_addresses_follow_the_options_of_their_ipv4_class() {
        // 2002:7f00:1:: is a global 6to4 address of a loopback host, 2002:a00:1:: of a
        // private one, 64:ff9b::a9fe:1 the NAT64 spelling of a link-local one.
        let mut filter = PeerFilter::allowing_loopback();
        assert!(filter.is_allowed(ip("2002:7f00:1::")));
        assert!(!filter.is_allowed(ip("2002:a00:1::")));
        filter.allowed_classes.insert(PeerClass::Private);
        assert!(filter.is_allowed(ip("2002:a00:1::")));
        assert!(!filter.is_allowed(ip("64:ff9b::a9fe:1")));
    }

    #[test]
    fn own_addresses_are_denied_unless_allowed() {
        let listening: SocketAddr = "203.0.113.1:3478".parse().unwrap();
        let mut filter = PeerFilter {
            listening: vec![listening],
            ..PeerFilter::default()
        };
        let mapped: SocketAddr = "[::ffff:203.0.113.1]:3478".parse().unwrap();
        let relay: SocketAddr = "203.0.113.1:50000".parse().unwrap();
        assert!(!filter.is_allowed_peer(listening, false));
        assert!(!filter.is_allowed_peer(mapped, false));
        assert!(!filter.is_allowed_peer(relay, true));
        assert!(filter.is_allowed_peer("203.0.113.1:3479".parse().unwrap(), false));
        filter.allowed_classes.insert(PeerClass::OwnRelay);
        assert!(filter.is_allowed_peer(relay, true));
        assert!(!filter.is_allowed_peer(listening, false));
        filter.allowed_classes.insert(PeerClass::OwnListening);
        assert!(filter.is_allowed_peer(listening, false));
    }

    #[test]
    fn class_names_round_trip_and_unknown_names_are_refused_by_name() {
        for class in PeerClass::ALL {
            assert_eq!(class.to_string().parse(), Ok(class));
        }
        assert_eq!("OWN-RELAY".parse(), Ok(PeerClass::OwnRelay));
        assert_eq!("link-local".parse(), Ok(PeerClass::LinkLocal));
        let e = "lan".parse::<PeerClass>().unwrap_err();
        assert_eq!(e, UnknownPeerClass("lan".into()));
        assert!(e.to_string().contains("\"lan\"") && e.to_string().contains("own-relay"));
        assert!("".parse::<PeerClass>().is_err());
    }

    #[test]
    fn ranges_are_configurable() {
        let mut filter = PeerFilter::allowing_loopback();
        assert!(filter.is_allowed(ip("127.0.0.1")) && filter.is_allowed(ip("::1")));
        assert!(!filter.is_allowed(ip("10.0.0.1")));
        filter
            .denied
            .push(IpRange::new(ip("203.0.113.0"), 24).unwrap());
        assert!(!filter.is_allowed(ip("203.0.113.9")));
        filter
            .allowed
            .push(IpRange::new(ip("203.0.113.9"), 32).unwrap());
        assert!(filter.is_allowed(ip("203.0.113.9")));
        assert!(!filter.is_allowed(ip("203.0.113.10")));
        assert_eq!(IpRange::new(ip("10.0.0.0"), 33), None);
        assert!(
            IpRange::new(ip("0.0.0.0"), 0)
                .unwrap()
                .contains(ip("1.2.3.4"))
        );
        assert!(!IpRange::new(ip("::"), 0).unwrap().contains(ip("1.2.3.4")));
    }
}
