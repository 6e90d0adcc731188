//! Sans-IO ICE (RFC 8445): candidates, gathering, connectivity checks, nomination.
//!
//! The agent arrives with the ICE issue; until then this crate exports nothing.
