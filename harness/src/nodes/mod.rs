//! The workspace's machines as simulator nodes, and a probe for packet-level tests.

mod nat_check;
mod probe;
mod stun_server;

pub use nat_check::NatCheck;
pub use probe::{Probe, Received};
pub use stun_server::StunServer;
