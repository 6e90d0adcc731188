//! Which peers a TURN server relays to (RFC 8656 §21.3 "Exploiting the TURN server to reach
//! internal hosts": a server SHOULD NOT relay to addresses it should not reach). By default
//! loopback, private, link-local, unique-local, shared (CGN), unspecified, multicast and
//! broadcast addresses are denied; the caller may allow loopback or private ranges, and add
//! ranges of its own to allow or deny. A denied peer gets 403 Forbidden for CreatePermission
//! and ChannelBind (§9.2, §11.2), and its Send indications and datagrams are dropped.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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

/// The deny-list of peer addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerFilter {
    /// Relay to 127.0.0.0/8 and ::1. Default no; tests on one machine need it.
    pub allow_loopback: bool,
    /// Relay to RFC 1918, RFC 6598 (100.64/10), link-local and unique-local (fc00::/7)
    /// addresses. Default no.
    pub allow_private: bool,
    /// Ranges always allowed, whatever else says (checked first).
    pub allowed: Vec<IpRange>,
    /// Ranges denied besides the defaults.
    pub denied: Vec<IpRange>,
}

impl PeerFilter {
    /// The default filter with loopback peers allowed (for tests and demos on one host).
    pub fn allowing_loopback() -> Self {
        Self {
            allow_loopback: true,
            ..Self::default()
        }
    }

    /// Whether the server may relay to `ip`.
    pub fn is_allowed(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        if self.allowed.iter().any(|r| r.contains(ip)) {
            return true;
        }
        if self.denied.iter().any(|r| r.contains(ip)) {
            return false;
        }
        if ip.is_unspecified() || ip.is_multicast() || is_broadcast(ip) {
            return false;
        }
        if ip.is_loopback() {
            return self.allow_loopback;
        }
        if is_private(ip) {
            return self.allow_private;
        }
        true
    }
}

fn is_broadcast(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V4(v4) if v4.is_broadcast())
}

fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_private() || v4.is_link_local() || in_v4(v4, Ipv4Addr::new(100, 64, 0, 0), 10)
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80 || v6 == Ipv6Addr::UNSPECIFIED
        }
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
    fn internal_addresses_are_denied_by_default() {
        let filter = PeerFilter::default();
        for denied in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.0.1",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!filter.is_allowed(ip(denied)), "{denied}");
        }
        for allowed in ["203.0.113.1", "8.8.8.8", "2001:db8::1", "::ffff:8.8.8.8"] {
            assert!(filter.is_allowed(ip(allowed)), "{allowed}");
        }
    }

    #[test]
    fn loopback_private_and_ranges_are_configurable() {
        let mut filter = PeerFilter::allowing_loopback();
        assert!(filter.is_allowed(ip("127.0.0.1")) && filter.is_allowed(ip("::1")));
        assert!(!filter.is_allowed(ip("10.0.0.1")));
        filter.allow_private = true;
        assert!(filter.is_allowed(ip("10.0.0.1")));
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
