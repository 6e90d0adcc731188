//! NAT behaviour discovery (RFC 5780 §4): a client machine that runs the mapping, filtering
//! and hairpinning tests against an RFC 5780 server, and the classic RFC 3489 §10.1 NAT type
//! derived from the result.

mod classify;
mod client;

pub use classify::{ClassicNatType, FilteringBehavior, MappingBehavior, NatReport};
pub use client::{NatDiscovery, NatDiscoveryConfig, NatEvent};
