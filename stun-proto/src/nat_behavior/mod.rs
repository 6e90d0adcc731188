//! NAT behaviour discovery (RFC 5780 §4): a client machine that runs the mapping, filtering
//! and hairpinning tests against an RFC 5780 server, the classic RFC 3489 §10.1 NAT type
//! derived from the result, and binding lifetime discovery (§4.6).

mod classify;
mod client;
mod lifetime;

pub use classify::{ClassicNatType, FilteringBehavior, MappingBehavior, NatReport};
pub use client::{NatDiscovery, NatDiscoveryConfig, NatEvent};
pub use lifetime::{BindingLifetime, LifetimeConfig, LifetimeDiscovery, LifetimeEvent};
