//! Sans-IO ICE (RFC 8445): candidates, gathering, connectivity checks, nomination.
//!
//! This first slice holds the candidate model ([`candidate`]: types, priority, foundation)
//! and the RFC 8839 SDP grammar ([`sdp`]).

#![forbid(unsafe_code)]

pub mod candidate;
pub mod sdp;
