//! The deterministic network simulator: a virtual clock, networks joined by NAT boxes with the
//! RFC 4787 behaviours, links with latency, jitter, loss, duplication and MTU, STUN/TURN servers
//! and full WebRTC peers (ICE + DTLS, [`peer`]) as nodes — every sans-IO machine of this
//! workspace plugs in through one small [`Node`] trait. A seed fixes the whole run: the same
//! scenario and seed give the same trace, bit for bit ([`World::trace_hash`]), and any run can
//! be captured as pcap. On it stands the NAT traversal [`matrix`] (`harness matrix`), whose
//! expectations come from [`theory`], and the real-UDP `harness peer` driver.
//!
//! # A scenario
//! A host behind a restricted-cone NAT asks an RFC 5780 STUN server what NAT it is behind:
//!
//! ```
//! use std::net::SocketAddr;
//! use std::time::Duration;
//! use harness::nodes::{NatCheck, StunServer};
//! use harness::{Link, NatPreset, World, epoch};
//! use stun_proto::nat_behavior::ClassicNatType;
//!
//! let mut world = World::new(42, epoch()); // the seed fixes every random draw
//! let internet = world.internet();
//! let (primary, alternate): (SocketAddr, SocketAddr) =
//!     ("198.51.100.10:3478".parse()?, "198.51.100.11:3479".parse()?);
//! world.add_host("stun", internet, &[primary.ip(), alternate.ip()], Link::default(),
//!                StunServer::new(primary, Some(alternate)));
//! let (_nat, lan) = world.add_nat(internet, NatPreset::RestrictedCone.boxes()[0],
//!                                 "203.0.113.7".parse()?, Link::default());
//! let local: SocketAddr = "192.168.1.2:40000".parse()?;
//! let start = world.now();
//! let host = world.add_host("natcheck", lan, &[local.ip()], Link::default(),
//!                           NatCheck::new(local, primary, start, 1));
//! world.run_for(Duration::from_secs(300)); // virtual time: milliseconds of real time
//! let report = world.node::<NatCheck>(host).and_then(|n| n.report()).expect("finished");
//! assert_eq!(report.classic_type(), ClassicNatType::RestrictedCone);
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```
//!
//! # Error policy
//! A simulation has no errors: datagrams a link or a NAT drops are counted by reason
//! ([`Stats::dropped`]). Misconfiguring a scenario (two hosts with one address, a node sending
//! from an address it does not have) panics with a message naming the mistake: that is a bug
//! in the scenario, found on its first run. I/O errors come only from pcap capture and the
//! matrix's `--pcap` directory.
//!
//! # Out of scope
//! ICMP messages from NATs, TLS (TURN over TCP on port 443 stands in for `turns:`; TLS itself
//! is tested against real peers), and bandwidth limits or queueing: links lose, delay,
//! reorder and duplicate, but do not congest, and TCP has no congestion control. The design, a complete scenario and the matrix's reasoning:
//! `docs/harness.md`.

mod link;
pub mod matrix;
mod nat;
mod node;
pub mod nodes;
mod pcap;
pub mod peer;
pub mod sfu;
mod tcp;
pub mod theory;
mod world;

pub use link::{Link, LinkDrop, Path};
pub use nat::{Filtering, Mapping, Nat, NatConfig, NatDrop, NatPreset, PortAssignment};
pub use node::Node;
pub use pcap::PcapWriter;
pub use tcp::Closed as TcpClosed;
pub use world::{DropReason, HostId, NatId, NetworkId, Stats, World};

/// An origin for a world's virtual clock.
///
/// `std::time::Instant` has no constructor but `now`, so the simulator reads the real clock
/// exactly once, here, for an origin; nothing after depends on its value.
#[allow(clippy::disallowed_methods)] // the one real instant the virtual clock starts from
pub fn epoch() -> std::time::Instant {
    std::time::Instant::now()
}
