//! What the NAT traversal matrix expects of each pair of NAT presets — from RFC 4787 behaviour,
//! not from whatever the code does. The reasoning, cell by cell, is in `docs/harness.md`.
//!
//! ICE (RFC 8445) without port prediction gets a direct path when some check can pass both
//! ways: a side that sends a check opens its own NAT for the exact endpoint it sent to, so a
//! pair works when each side's checks reach the other's NAT from an endpoint that NAT accepts.
//! - A public host (no NAT) accepts anything, and what it answers goes back to the endpoint
//!   that sent: direct.
//! - Two endpoint-independent mappings: each side's server-reflexive address is the one it
//!   uses towards the peer too, so srflx ↔ srflx checks open both filters: direct.
//! - An address-and-port-dependent mapping ("symmetric") facing an endpoint-independent one:
//!   the symmetric side reaches the other from a new port the other never heard of. That works
//!   if the other side's filter accepts it — endpoint-independent (any source) or
//!   address-dependent (it already sent to that IP) — and the other then learns the new port
//!   as a peer-reflexive candidate; an address-and-port-dependent filter drops it: relay.
//! - Two symmetric mappings: neither can learn the other's next port: relay.
//! - A firewall that blocks UDP leaves no direct UDP path. Where it lets TCP go anywhere
//!   (`udp-blocked`) and the other side is public, ICE-TCP connects them directly: the
//!   firewalled side's active candidate reaches the public side's passive one (RFC 6544).
//!   Otherwise, where it lets TCP out to the TURN server's TCP port (443; `corporate` allows
//!   80 and 443), the peer allocates over TCP, and its relayed candidate reaches anyone:
//!   relay. Where it does not (`http-only`: port 80 alone, where no TURN server listens),
//!   nothing does: fail. Behind a NAT a passive candidate is out of reach (an unsolicited
//!   SYN finds no mapping), so ICE-TCP adds nothing there.

use crate::nat::{Filtering, Mapping, NatPreset};

/// The port the matrix's TURN server takes TCP on: 443, where `turns:` servers listen so that
/// firewalls letting HTTPS out let them through.
pub const TURN_TCP_PORT: u16 = 443;

/// What a matrix cell must achieve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Expectation {
    /// A direct path (host, server-reflexive or peer-reflexive candidates).
    Direct,
    /// Only the relay works.
    Relay,
    /// No path exists: ICE must fail, and say so.
    Fail,
}

/// A preset's behaviour as one box would show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Effective {
    Public,
    Nat(Mapping, Filtering),
    /// No UDP.
    Blocked(Firewall),
}

/// What a firewall that blocks UDP lets through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Firewall {
    /// TCP to the TURN server's port.
    turn_over_tcp: bool,
    /// TCP to any port (a peer's ICE-TCP passive candidate).
    tcp_anywhere: bool,
}

fn effective(preset: NatPreset) -> Effective {
    let boxes = preset.boxes();
    if boxes.iter().any(|b| b.blocks_udp) {
        let allows = |port: Option<u16>| {
            (boxes.iter()).all(|b| {
                b.tcp_ports
                    .is_none_or(|ports| port.is_some_and(|p| ports.contains(&p)))
            })
        };
        return Effective::Blocked(Firewall {
            turn_over_tcp: allows(Some(TURN_TCP_PORT)),
            tcp_anywhere: allows(None),
        });
    }
    // Nested boxes: the mapping is as dependent as the most dependent box (any box minting new
    // ports per destination makes the whole path do so); filtering likewise.
    let mapping = boxes
        .iter()
        .map(|b| b.mapping)
        .max_by_key(|m| mapping_rank(*m));
    let filtering = boxes
        .iter()
        .map(|b| b.filtering)
        .max_by_key(|f| filtering_rank(*f));
    match (mapping, filtering) {
        (Some(m), Some(f)) => Effective::Nat(m, f),
        _ => Effective::Public,
    }
}

fn mapping_rank(m: Mapping) -> u8 {
    match m {
        Mapping::EndpointIndependent => 0,
        Mapping::AddressDependent => 1,
        Mapping::AddressAndPortDependent => 2,
    }
}

fn filtering_rank(f: Filtering) -> u8 {
    match f {
        Filtering::EndpointIndependent => 0,
        Filtering::AddressDependent => 1,
        Filtering::AddressAndPortDependent => 2,
    }
}

/// The expectation for peers behind `a` and `b` (symmetric in its arguments), with a TURN
/// server on the public internet that both reach over UDP and over TCP on
/// [`TURN_TCP_PORT`].
pub fn expect(a: NatPreset, b: NatPreset) -> Expectation {
    use Effective::*;
    match (effective(a), effective(b)) {
        // ICE-TCP: the firewalled side's active candidate connects out to the public side's
        // passive one (RFC 6544), which accepts any source.
        (Blocked(f), Public) | (Public, Blocked(f)) if f.tcp_anywhere => Expectation::Direct,
        (Blocked(f), _) | (_, Blocked(f)) if !f.turn_over_tcp => Expectation::Fail,
        (Blocked(_), _) | (_, Blocked(_)) => Expectation::Relay,
        (Public, _) | (_, Public) => Expectation::Direct,
        (Nat(ma, fa), Nat(mb, fb)) => {
            let independent = |m| m == Mapping::EndpointIndependent;
            // A filter that lets in a new port from an IP it has already sent to.
            let lets_new_port_in = |f| f != Filtering::AddressAndPortDependent;
            match (independent(ma), independent(mb)) {
                (true, true) => Expectation::Direct,
                (false, true) if lets_new_port_in(fb) => Expectation::Direct,
                (true, false) if lets_new_port_in(fa) => Expectation::Direct,
                _ => Expectation::Relay,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use NatPreset::*;

    #[test]
    fn the_cells_the_issue_names() {
        assert_eq!(expect(Symmetric, FullCone), Expectation::Direct);
        assert_eq!(expect(Symmetric, RestrictedCone), Expectation::Direct);
        assert_eq!(expect(Symmetric, PortRestrictedCone), Expectation::Relay);
        assert_eq!(expect(Symmetric, Symmetric), Expectation::Relay);
        assert_eq!(expect(SymmetricSequential, Symmetric), Expectation::Relay);
    }

    #[test]
    fn cones_and_public_hosts_connect_directly_and_firewalls_relay_over_tcp_or_fail() {
        for a in [
            Open,
            FullCone,
            RestrictedCone,
            PortRestrictedCone,
            CarrierGradeDouble,
        ] {
            for b in [
                Open,
                FullCone,
                RestrictedCone,
                PortRestrictedCone,
                CarrierGradeDouble,
            ] {
                assert_eq!(expect(a, b), Expectation::Direct, "{a:?} {b:?}");
            }
            let tcp_direct = if a == Open {
                Expectation::Direct
            } else {
                Expectation::Relay
            };
            assert_eq!(expect(a, UdpBlocked), tcp_direct);
            assert_eq!(expect(a, Corporate), Expectation::Relay);
            assert_eq!(expect(a, HttpOnly), Expectation::Fail);
        }
        assert_eq!(expect(Open, Symmetric), Expectation::Direct);
        // The carrier-grade pair filters by port, like a port-restricted cone.
        assert_eq!(expect(CarrierGradeDouble, Symmetric), Expectation::Relay);
    }

    #[test]
    fn the_matrix_is_symmetric() {
        for a in NatPreset::ALL {
            for b in NatPreset::ALL {
                assert_eq!(expect(a, b), expect(b, a), "{a:?} {b:?}");
            }
        }
    }
}
