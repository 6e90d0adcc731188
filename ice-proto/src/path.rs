//! A path: the transport, the local base a datagram leaves from or arrives on, and the
//! remote transport address. RFC 8445 §6.1.2.4 tells pairs apart by their base and remote
//! address; with ICE-TCP (RFC 6544) the transport is part of that identity, so pairs, the
//! checks on them and received datagrams are keyed by a `Path`, and a TCP path is a value
//! like a UDP one rather than a special case.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;

use stun_proto::TransportProtocol;

/// A path between a local base and a remote address over one transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Path {
    /// The transport.
    pub transport: TransportProtocol,
    /// The local base (the caller's socket, or a TURN relayed address).
    pub base: SocketAddr,
    /// The remote transport address.
    pub remote: SocketAddr,
}

impl Path {
    /// A UDP path.
    pub const fn udp(base: SocketAddr, remote: SocketAddr) -> Self {
        Self {
            transport: TransportProtocol::Udp,
            base,
            remote,
        }
    }
}

/// Two words per path, whatever the address family: a path is the key an SFU endpoint looks
/// up for every datagram, and the derived hash feeds each field of both addresses (family
/// tags, IPv6 flow label and scope id) to the hasher one at a time — 90 of the 250
/// instructions of a lookup (callgrind). Equal paths hash equally; the flow label and scope
/// id, which only IPv6 link-local addresses tell apart, are left to `Eq`.
impl Hash for Path {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let (remote_ip, remote_port) = words(self.remote);
        let (base_ip, base_port) = words(self.base);
        let tcp = u64::from(self.transport == TransportProtocol::Tcp);
        state.write_u64(remote_ip ^ base_ip.rotate_left(23));
        state.write_u64(remote_port | base_port << 20 | tcp << 40);
    }
}

/// An address as its IP folded to 64 bits, and its port with the family.
fn words(address: SocketAddr) -> (u64, u64) {
    match address {
        SocketAddr::V4(a) => (u64::from(a.ip().to_bits()), u64::from(a.port()) | 4 << 16),
        SocketAddr::V6(a) => {
            let ip = a.ip().to_bits();
            let folded = (ip as u64) ^ ((ip >> 64) as u64).rotate_left(32);
            (folded, u64::from(a.port()) | 6 << 16)
        }
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} -> {}", self.transport, self.base, self.remote)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_told_apart_by_its_transport_and_reads_as_one_line() {
        let (base, remote) = (
            "192.0.2.1:5000".parse().unwrap(),
            "198.51.100.2:9".parse().unwrap(),
        );
        let udp = Path::udp(base, remote);
        let tcp = Path {
            transport: TransportProtocol::Tcp,
            ..udp
        };
        assert_ne!(udp, tcp);
        assert_eq!(udp.to_string(), "udp 192.0.2.1:5000 -> 198.51.100.2:9");
        assert_eq!(tcp.to_string(), "tcp 192.0.2.1:5000 -> 198.51.100.2:9");
    }
}
