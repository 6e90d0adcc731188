//! The deterministic network simulator: a virtual clock, networks joined by NAT boxes with the
//! RFC 4787 behaviours, links with latency, jitter, loss, duplication and MTU, STUN/TURN servers
//! and full WebRTC peers (ICE + DTLS, [`peer`]) as nodes — every sans-IO machine of this
//! workspace plugs in through one small [`Node`] trait. A seed fixes the whole run: the same
//! scenario and seed give the same trace, bit for bit ([`World::trace_hash`]), and any run can
//! be captured as pcap.
//!
//! ```
//! use std::time::Duration;
//! use harness::{Link, NatConfig, NatPreset, World, epoch};
//! use harness::nodes::StunServer;
//!
//! let mut world = World::new(42, epoch());
//! let internet = world.internet();
//! let server_ip = "198.51.100.1".parse().unwrap();
//! world.add_host("stun", internet, &[server_ip], Link::default(), StunServer::new("198.51.100.1:3478".parse().unwrap(), None));
//! let [home] = NatPreset::FullCone.boxes()[..] else { unreachable!() };
//! let (_nat, lan) = world.add_nat(internet, home, "203.0.113.7".parse().unwrap(), Link::default());
//! # let _ = lan;
//! world.run_for(Duration::from_secs(1));
//! println!("trace {}", world.trace_hash());
//! ```

mod link;
pub mod matrix;
mod nat;
mod node;
pub mod nodes;
mod pcap;
pub mod peer;
pub mod theory;
mod world;

pub use link::{Link, LinkDrop, Path};
pub use nat::{Filtering, Mapping, Nat, NatConfig, NatDrop, NatPreset, PortAssignment};
pub use node::Node;
pub use pcap::PcapWriter;
pub use world::{Drop, HostId, NatDropReason, NatId, NetworkId, Stats, World};

/// An origin for a world's virtual clock.
///
/// `std::time::Instant` has no constructor but `now`, so the simulator reads the real clock
/// exactly once, here, for an origin; nothing after depends on its value.
#[allow(clippy::disallowed_methods)] // the one real instant the virtual clock starts from
pub fn epoch() -> std::time::Instant {
    std::time::Instant::now()
}
