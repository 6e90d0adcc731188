//! The workspace's machines as simulator nodes, and a probe for packet-level tests.

mod ice_tcp;
mod nat_check;
mod peer_node;
mod probe;
mod sfu;
mod stun_server;
mod turn_server;

pub use ice_tcp::IceTcpSockets;
pub use nat_check::NatCheck;
pub use peer_node::{PeerNode, dtls_config};
pub use probe::{Probe, Received};
pub use sfu::SfuNode;
pub use stun_server::StunServer;
pub use turn_server::TurnServer;
