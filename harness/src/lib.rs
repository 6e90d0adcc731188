//! The deterministic network simulator: a virtual clock, hosts, links and NAT boxes, with the
//! sans-IO machines of this workspace as nodes.
//!
//! The simulator arrives with the harness issue; until then this crate exports nothing.
