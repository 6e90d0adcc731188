//! What NAT behaviour discovery found (RFC 5780 §4.3–§4.5, in the vocabulary of RFC 4787
//! §4.1 and §5), and the classic RFC 3489 §5 / §10.1 NAT type it amounts to.
//!
//! The classic names map onto RFC 4787 behaviours as every WebRTC primer explains them:
//!
//! | classic type | NAT? | mapping | filtering |
//! | --- | --- | --- | --- |
//! | Open Internet | no | — | endpoint-independent |
//! | Symmetric UDP firewall | no | — | address(-and-port)-dependent |
//! | Full cone | yes | endpoint-independent | endpoint-independent |
//! | Restricted cone | yes | endpoint-independent | address-dependent |
//! | Port-restricted cone | yes | endpoint-independent | address-and-port-dependent |
//! | Symmetric | yes | address(-and-port)-dependent | any |
//! | UDP blocked | — | no answer at all | — |

use std::fmt;
use std::net::SocketAddr;

/// How a NAT maps internal to external addresses (RFC 4787 §4.1, RFC 5780 §4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MappingBehavior {
    /// The same mapping for every destination (or no NAT at all).
    EndpointIndependent,
    /// A new mapping for every destination IP address.
    AddressDependent,
    /// A new mapping for every destination IP address and port.
    AddressAndPortDependent,
}

/// Which inbound packets a NAT or firewall lets through (RFC 4787 §5, RFC 5780 §4.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FilteringBehavior {
    /// From anyone, once a mapping exists.
    EndpointIndependent,
    /// Only from IP addresses the client has sent to.
    AddressDependent,
    /// Only from the exact addresses and ports the client has sent to.
    AddressAndPortDependent,
}

impl fmt::Display for MappingBehavior {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MappingBehavior::EndpointIndependent => "endpoint-independent",
            MappingBehavior::AddressDependent => "address-dependent",
            MappingBehavior::AddressAndPortDependent => "address-and-port-dependent",
        })
    }
}

impl fmt::Display for FilteringBehavior {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FilteringBehavior::EndpointIndependent => "endpoint-independent",
            FilteringBehavior::AddressDependent => "address-dependent",
            FilteringBehavior::AddressAndPortDependent => "address-and-port-dependent",
        })
    }
}

/// The NAT types of RFC 3489 §5, which users still speak of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClassicNatType {
    /// No answer from the server at all.
    UdpBlocked,
    /// No NAT, no filtering.
    OpenInternet,
    /// No NAT, but a firewall that only lets answers in from where the client sent.
    SymmetricUdpFirewall,
    /// Endpoint-independent mapping and filtering.
    FullCone,
    /// Endpoint-independent mapping, address-dependent filtering.
    RestrictedCone,
    /// Endpoint-independent mapping, address-and-port-dependent filtering.
    PortRestrictedCone,
    /// A new mapping per destination.
    Symmetric,
    /// The tests could not decide (e.g. the server has no alternate address).
    Unknown,
}

impl fmt::Display for ClassicNatType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClassicNatType::UdpBlocked => "UDP blocked",
            ClassicNatType::OpenInternet => "Open Internet",
            ClassicNatType::SymmetricUdpFirewall => "Symmetric UDP firewall",
            ClassicNatType::FullCone => "Full cone",
            ClassicNatType::RestrictedCone => "Restricted cone",
            ClassicNatType::PortRestrictedCone => "Port-restricted cone",
            ClassicNatType::Symmetric => "Symmetric",
            ClassicNatType::Unknown => "Unknown",
        })
    }
}

/// Everything NAT behaviour discovery learned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NatReport {
    /// The local address the tests ran from.
    pub local: SocketAddr,
    /// The mapped address the primary server address saw; `None` if it never answered.
    pub mapped: Option<SocketAddr>,
    /// The server's OTHER-ADDRESS (or CHANGED-ADDRESS); `None` if it has none, and then
    /// neither behaviour can be tested.
    pub other_address: Option<SocketAddr>,
    /// The mapping behaviour, if determined.
    pub mapping: Option<MappingBehavior>,
    /// The filtering behaviour, if determined.
    pub filtering: Option<FilteringBehavior>,
    /// Whether the NAT hairpins (RFC 5780 §4.5); `None` if not tested or no NAT.
    pub hairpinning: Option<bool>,
}

impl NatReport {
    /// Whether the mapped address differs from the local one: a NAT is on the path.
    pub fn is_behind_nat(&self) -> Option<bool> {
        self.mapped.map(|mapped| mapped != self.local)
    }

    /// The classic RFC 3489 NAT type (RFC 3489 §10.1's decision tree, fed by the RFC 5780
    /// tests).
    pub fn classic_type(&self) -> ClassicNatType {
        let Some(behind_nat) = self.is_behind_nat() else {
            return ClassicNatType::UdpBlocked;
        };
        match (behind_nat, self.mapping, self.filtering) {
            (false, _, Some(FilteringBehavior::EndpointIndependent)) => {
                ClassicNatType::OpenInternet
            }
            (false, _, Some(_)) => ClassicNatType::SymmetricUdpFirewall,
            (true, Some(MappingBehavior::EndpointIndependent), Some(filtering)) => {
                match filtering {
                    FilteringBehavior::EndpointIndependent => ClassicNatType::FullCone,
                    FilteringBehavior::AddressDependent => ClassicNatType::RestrictedCone,
                    FilteringBehavior::AddressAndPortDependent => {
                        ClassicNatType::PortRestrictedCone
                    }
                }
            }
            (true, Some(_), _) if self.mapping != Some(MappingBehavior::EndpointIndependent) => {
                ClassicNatType::Symmetric
            }
            _ => ClassicNatType::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use FilteringBehavior as F;
    use MappingBehavior as M;

    fn report(mapped: Option<&str>, m: Option<M>, f: Option<F>) -> NatReport {
        NatReport {
            local: "10.0.0.2:5000".parse().unwrap(),
            mapped: mapped.map(|s| s.parse().unwrap()),
            other_address: Some("192.0.2.2:3479".parse().unwrap()),
            mapping: m,
            filtering: f,
            hairpinning: None,
        }
    }

    #[test]
    fn the_rfc_3489_decision_tree() {
        let local = Some("10.0.0.2:5000");
        let nat = Some("203.0.113.1:6000");
        let ei = Some(M::EndpointIndependent);
        let cases = [
            (None, None, None, ClassicNatType::UdpBlocked),
            (
                local,
                ei,
                Some(F::EndpointIndependent),
                ClassicNatType::OpenInternet,
            ),
            (
                local,
                ei,
                Some(F::AddressDependent),
                ClassicNatType::SymmetricUdpFirewall,
            ),
            (
                local,
                ei,
                Some(F::AddressAndPortDependent),
                ClassicNatType::SymmetricUdpFirewall,
            ),
            (
                nat,
                ei,
                Some(F::EndpointIndependent),
                ClassicNatType::FullCone,
            ),
            (
                nat,
                ei,
                Some(F::AddressDependent),
                ClassicNatType::RestrictedCone,
            ),
            (
                nat,
                ei,
                Some(F::AddressAndPortDependent),
                ClassicNatType::PortRestrictedCone,
            ),
            (
                nat,
                Some(M::AddressDependent),
                Some(F::AddressDependent),
                ClassicNatType::Symmetric,
            ),
            (
                nat,
                Some(M::AddressAndPortDependent),
                None,
                ClassicNatType::Symmetric,
            ),
            (nat, None, None, ClassicNatType::Unknown),
            (nat, ei, None, ClassicNatType::Unknown),
            (local, None, None, ClassicNatType::Unknown),
        ];
        for (mapped, m, f, expected) in cases {
            assert_eq!(
                report(mapped, m, f).classic_type(),
                expected,
                "{mapped:?} {m:?} {f:?}"
            );
        }
        assert_eq!(
            ClassicNatType::PortRestrictedCone.to_string(),
            "Port-restricted cone"
        );
        assert_eq!(
            M::AddressAndPortDependent.to_string(),
            "address-and-port-dependent"
        );
    }
}
