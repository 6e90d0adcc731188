//! The workspace's machines as simulator nodes, and a probe for packet-level tests.

mod ice_peer;
mod nat_check;
mod probe;
mod stun_server;
mod turn_server;

pub use ice_peer::IcePeer;
pub use nat_check::NatCheck;
pub use probe::{Probe, Received};
pub use stun_server::StunServer;
pub use turn_server::TurnServer;
