//! NAT boxes with the behaviours of RFC 4787 as independent knobs: mapping (§4.1), filtering
//! (§5), port assignment (§4.2), mapping lifetime and what refreshes it (§4.3), hairpinning
//! (§6) — and the named presets WebRTC primers use (full cone, restricted cone, …). TCP
//! mappings are kept apart from UDP ones, with RFC 5382's timeouts, and a box can be a
//! firewall that lets no UDP out and TCP only to some ports.
//!
//! A [`Nat`] translates addresses only; the [`World`](crate::World) moves packets through it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand_core::RngCore;
use stun_proto::TransportProtocol;

/// How a NAT reuses an external mapping for new destinations (RFC 4787 §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mapping {
    /// One mapping per internal address and port, whatever the destination.
    EndpointIndependent,
    /// A new mapping per destination IP address.
    AddressDependent,
    /// A new mapping per destination IP address and port ("symmetric").
    AddressAndPortDependent,
}

/// Which inbound packets a mapping lets through (RFC 4787 §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Filtering {
    /// Any source ("full cone").
    EndpointIndependent,
    /// Sources whose IP address the internal endpoint has sent to ("restricted cone").
    AddressDependent,
    /// Sources whose address and port the internal endpoint has sent to
    /// ("port-restricted cone").
    AddressAndPortDependent,
}

/// How external ports are chosen for new mappings (RFC 4787 §4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PortAssignment {
    /// The internal port if free, else the next free one.
    Preserving,
    /// One after the previous mapping's port (predictable, as some NATs do).
    Sequential,
    /// A random free port.
    Random,
}

/// A NAT's behaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NatConfig {
    /// Mapping behaviour.
    pub mapping: Mapping,
    /// Filtering behaviour.
    pub filtering: Filtering,
    /// Port assignment.
    pub ports: PortAssignment,
    /// How long an idle mapping lives (RFC 4787 REQ-5: at least 2 minutes; shorter values
    /// model NATs that misbehave).
    pub mapping_lifetime: Duration,
    /// Whether inbound packets refresh a mapping (RFC 4787 §4.3: outbound always does).
    pub inbound_refreshes: bool,
    /// Whether a packet from inside to the NAT's own external address is looped back in
    /// (RFC 4787 §6).
    pub hairpinning: bool,
    /// Whether the box drops all UDP (a firewall that lets no UDP out).
    pub blocks_udp: bool,
    /// The destination ports outbound TCP may go to (`None`: any); connections elsewhere are
    /// dropped, as a corporate firewall does.
    pub tcp_ports: Option<&'static [u16]>,
    /// How long an idle TCP mapping lives once its connection is established (RFC 5382
    /// REQ-5: at least 2 hours and 4 minutes).
    pub tcp_established_lifetime: Duration,
    /// How long a TCP mapping lives before its connection is established (RFC 5382 REQ-5:
    /// at least 4 minutes).
    pub tcp_transitory_lifetime: Duration,
    /// The most mappings the box keeps; new flows past it are dropped.
    pub max_mappings: usize,
}

/// The named NAT presets of the NAT traversal matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NatPreset {
    /// No NAT: the host has a public address.
    Open,
    /// Endpoint-independent mapping and filtering.
    FullCone,
    /// Endpoint-independent mapping, address-dependent filtering.
    RestrictedCone,
    /// Endpoint-independent mapping, address-and-port-dependent filtering.
    PortRestrictedCone,
    /// Address-and-port-dependent mapping and filtering, random ports.
    Symmetric,
    /// Address-and-port-dependent mapping and filtering, sequential ports.
    SymmetricSequential,
    /// A home port-restricted-cone NAT behind a carrier-grade NAT (endpoint-independent
    /// mapping, address-dependent filtering, RFC 6888).
    CarrierGradeDouble,
    /// A firewall that lets no UDP through; TCP goes anywhere.
    UdpBlocked,
    /// A corporate firewall: no UDP, TCP only to ports 80 and 443.
    Corporate,
    /// A firewall that lets out nothing but TCP to port 80.
    HttpOnly,
}

/// The ports a corporate firewall lets TCP out to: HTTP and HTTPS.
const WEB_PORTS: &[u16] = &[80, 443];
/// HTTP alone.
const HTTP_PORT: &[u16] = &[80];

impl NatPreset {
    /// Every preset, in the matrix's order.
    pub const ALL: [NatPreset; 10] = [
        NatPreset::Open,
        NatPreset::FullCone,
        NatPreset::RestrictedCone,
        NatPreset::PortRestrictedCone,
        NatPreset::Symmetric,
        NatPreset::SymmetricSequential,
        NatPreset::CarrierGradeDouble,
        NatPreset::UdpBlocked,
        NatPreset::Corporate,
        NatPreset::HttpOnly,
    ];

    /// The short name the CLI and tables use.
    pub const fn name(self) -> &'static str {
        match self {
            NatPreset::Open => "open",
            NatPreset::FullCone => "full-cone",
            NatPreset::RestrictedCone => "restricted",
            NatPreset::PortRestrictedCone => "port-restricted",
            NatPreset::Symmetric => "symmetric",
            NatPreset::SymmetricSequential => "symmetric-seq",
            NatPreset::CarrierGradeDouble => "cgnat-double",
            NatPreset::UdpBlocked => "udp-blocked",
            NatPreset::Corporate => "corporate",
            NatPreset::HttpOnly => "http-only",
        }
    }

    /// The NAT boxes between the host and the internet, innermost first (none for `Open`).
    pub fn boxes(self) -> Vec<NatConfig> {
        let eim = |filtering| {
            NatConfig::new(
                Mapping::EndpointIndependent,
                filtering,
                PortAssignment::Preserving,
            )
        };
        let firewall = |tcp_ports| NatConfig {
            blocks_udp: true,
            tcp_ports,
            ..eim(Filtering::AddressAndPortDependent)
        };
        let symmetric = |ports| {
            NatConfig::new(
                Mapping::AddressAndPortDependent,
                Filtering::AddressAndPortDependent,
                ports,
            )
        };
        match self {
            NatPreset::Open => vec![],
            NatPreset::FullCone => vec![eim(Filtering::EndpointIndependent)],
            NatPreset::RestrictedCone => vec![eim(Filtering::AddressDependent)],
            NatPreset::PortRestrictedCone => vec![eim(Filtering::AddressAndPortDependent)],
            NatPreset::Symmetric => vec![symmetric(PortAssignment::Random)],
            NatPreset::SymmetricSequential => vec![symmetric(PortAssignment::Sequential)],
            NatPreset::CarrierGradeDouble => vec![
                eim(Filtering::AddressAndPortDependent),
                NatConfig {
                    ports: PortAssignment::Random,
                    ..eim(Filtering::AddressDependent)
                },
            ],
            NatPreset::UdpBlocked => vec![firewall(None)],
            NatPreset::Corporate => vec![firewall(Some(WEB_PORTS))],
            NatPreset::HttpOnly => vec![firewall(Some(HTTP_PORT))],
        }
    }
}

/// The command lines take presets by [`NatPreset::name`]; clap lists the names in `--help` and
/// suggests the nearest one for a misspelt name.
impl clap::ValueEnum for NatPreset {
    fn value_variants<'a>() -> &'a [Self] {
        &Self::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()))
    }
}

impl NatConfig {
    /// A NAT with these behaviours, a 2-minute UDP mapping lifetime refreshed by outbound
    /// traffic only, RFC 5382's least TCP timeouts (2 h 4 min established, 4 min
    /// transitory), hairpinning on, UDP and TCP allowed, and room for 4096 mappings.
    pub const fn new(mapping: Mapping, filtering: Filtering, ports: PortAssignment) -> Self {
        Self {
            mapping,
            filtering,
            ports,
            mapping_lifetime: Duration::from_secs(120),
            inbound_refreshes: false,
            hairpinning: true,
            blocks_udp: false,
            tcp_ports: None,
            tcp_established_lifetime: Duration::from_secs(2 * 3600 + 4 * 60),
            tcp_transitory_lifetime: Duration::from_secs(4 * 60),
            max_mappings: 4096,
        }
    }
}

/// One external mapping: an internal endpoint seen from outside at `external_port`.
#[derive(Clone, Debug)]
struct MappingEntry {
    /// Whether it maps TCP (else UDP).
    tcp: bool,
    /// For TCP: whether a segment came back through it (its connection is established).
    answered: bool,
    internal: SocketAddr,
    /// What the mapping is keyed on besides `internal` (RFC 4787 §4.1).
    key: Option<SocketAddr>,
    /// Remote endpoints the internal side sent to through this mapping (for filtering).
    contacted: BTreeSet<SocketAddr>,
    last_refresh: Instant,
}

/// Why a NAT dropped a packet (ordered, so that the world's counters sort by it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NatDrop {
    /// The box blocks UDP, or TCP to that port.
    Blocked,
    /// No mapping for the external port (never made, or expired).
    NoMapping,
    /// A mapping exists but its filtering refuses this source.
    Filtered,
    /// The mapping table is full.
    TableFull,
    /// A packet to the box's own address from inside, and hairpinning is off.
    NoHairpin,
}

/// A NAT box: its configuration, external address and mapping table.
#[derive(Debug)]
pub struct Nat {
    config: NatConfig,
    external_ip: IpAddr,
    /// (TCP?, external port) → mapping: TCP and UDP have port spaces of their own. Ordered, so
    /// iteration and port choice are deterministic.
    mappings: BTreeMap<(bool, u16), MappingEntry>,
    next_sequential: u16,
}

impl Nat {
    /// A box with `config` whose outside address is `external_ip`.
    pub fn new(config: NatConfig, external_ip: IpAddr) -> Self {
        Self {
            config,
            external_ip,
            mappings: BTreeMap::new(),
            next_sequential: 20_000,
        }
    }

    /// The outside address.
    pub const fn external_ip(&self) -> IpAddr {
        self.external_ip
    }

    /// The configuration.
    pub const fn config(&self) -> &NatConfig {
        &self.config
    }

    /// How many live mappings the box holds at `now`.
    pub fn mapping_count(&self, now: Instant) -> usize {
        self.mappings
            .values()
            .filter(|m| !self.expired(m, now))
            .count()
    }

    /// Translates an outbound packet over `transport` from `internal` to `destination`: the
    /// external source address it leaves with.
    pub fn outbound(
        &mut self,
        now: Instant,
        rng: &mut dyn RngCore,
        transport: TransportProtocol,
        internal: SocketAddr,
        destination: SocketAddr,
    ) -> Result<SocketAddr, NatDrop> {
        let tcp = transport == TransportProtocol::Tcp;
        let allowed = if tcp {
            self.config
                .tcp_ports
                .is_none_or(|ports| ports.contains(&destination.port()))
        } else {
            !self.config.blocks_udp
        };
        if !allowed {
            return Err(NatDrop::Blocked);
        }
        self.expire(now);
        let key = match self.config.mapping {
            Mapping::EndpointIndependent => None,
            Mapping::AddressDependent => Some(SocketAddr::new(destination.ip(), 0)),
            Mapping::AddressAndPortDependent => Some(destination),
        };
        let existing = self
            .mappings
            .iter()
            .find(|(_, m)| m.tcp == tcp && m.internal == internal && m.key == key);
        let port = match existing {
            Some((&(_, port), _)) => port,
            None => {
                if self.mappings.len() >= self.config.max_mappings {
                    return Err(NatDrop::TableFull);
                }
                let port = self
                    .choose_port(rng, tcp, internal.port())
                    .ok_or(NatDrop::TableFull)?;
                let entry = MappingEntry {
                    tcp,
                    answered: false,
                    internal,
                    key,
                    contacted: BTreeSet::new(),
                    last_refresh: now,
                };
                self.mappings.insert((tcp, port), entry);
                port
            }
        };
        if let Some(m) = self.mappings.get_mut(&(tcp, port)) {
            m.contacted.insert(destination);
            m.last_refresh = now;
        }
        Ok(SocketAddr::new(self.external_ip, port))
    }

    /// Translates an inbound packet over `transport` from `source` to the box's
    /// `external_port`: the internal address it is delivered to. An unsolicited TCP SYN finds
    /// no mapping and is dropped silently (RFC 5382 REQ-4 allows not answering it).
    pub fn inbound(
        &mut self,
        now: Instant,
        transport: TransportProtocol,
        source: SocketAddr,
        external_port: u16,
    ) -> Result<SocketAddr, NatDrop> {
        let tcp = transport == TransportProtocol::Tcp;
        if !tcp && self.config.blocks_udp {
            return Err(NatDrop::Blocked);
        }
        self.expire(now);
        let filtering = self.config.filtering;
        let refresh = self.config.inbound_refreshes;
        let m = self
            .mappings
            .get_mut(&(tcp, external_port))
            .ok_or(NatDrop::NoMapping)?;
        let allowed = match filtering {
            Filtering::EndpointIndependent => true,
            Filtering::AddressDependent => m.contacted.iter().any(|c| c.ip() == source.ip()),
            Filtering::AddressAndPortDependent => m.contacted.contains(&source),
        };
        if !allowed {
            return Err(NatDrop::Filtered);
        }
        // RFC 5382 REQ-5: an answered TCP mapping is an established connection's.
        m.answered |= tcp;
        if refresh {
            m.last_refresh = now;
        }
        Ok(m.internal)
    }

    fn expired(&self, m: &MappingEntry, now: Instant) -> bool {
        now.saturating_duration_since(m.last_refresh) >= lifetime(&self.config, m)
    }

    fn expire(&mut self, now: Instant) {
        let config = self.config;
        self.mappings
            .retain(|_, m| now.saturating_duration_since(m.last_refresh) < lifetime(&config, m));
    }

    fn choose_port(&mut self, rng: &mut dyn RngCore, tcp: bool, internal_port: u16) -> Option<u16> {
        const FIRST: u16 = 1024;
        let free = |p: u16, m: &BTreeMap<(bool, u16), MappingEntry>| {
            p >= FIRST && !m.contains_key(&(tcp, p))
        };
        let start = match self.config.ports {
            PortAssignment::Preserving => internal_port.max(FIRST),
            PortAssignment::Sequential => self.next_sequential,
            PortAssignment::Random => FIRST + (rng.next_u32() % u32::from(u16::MAX - FIRST)) as u16,
        };
        // Walk up from the preferred port, wrapping within FIRST..=65535, to a free one.
        let span = u32::from(u16::MAX - FIRST) + 1;
        let port = (0..span)
            .map(|i| FIRST + ((u32::from(start - FIRST) + i) % span) as u16)
            .find(|&p| free(p, &self.mappings))?;
        if self.config.ports == PortAssignment::Sequential {
            self.next_sequential = if port == u16::MAX { FIRST } else { port + 1 };
        }
        Some(port)
    }
}

/// How long `m` lives idle under `config`.
fn lifetime(config: &NatConfig, m: &MappingEntry) -> Duration {
    match (m.tcp, m.answered) {
        (false, _) => config.mapping_lifetime,
        (true, true) => config.tcp_established_lifetime,
        (true, false) => config.tcp_transitory_lifetime,
    }
}
