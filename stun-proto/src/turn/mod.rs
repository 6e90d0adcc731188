//! TURN (RFC 8656): relaying through a server when no direct path exists, as sans-IO
//! machines; with RFC 6062 TCP allocations on both sides (the client's `handle_connect` and
//! `handle_connection_bind`, the server's peer-connection inputs and events).
//!
//! - [`client`]: [`TurnClient`](client::TurnClient), one allocation on one server.
//! - [`server`]: [`TurnServer`](server::TurnServer), every allocation of a server.
//! - [`channel_data`]: the ChannelData message (RFC 8656 §12.4, §12.5), zero-copy.
//! - [`framing`]: STUN and ChannelData framed out of a TCP or TLS byte stream (§3.1, §12.5).
//!
//! The TURN messages themselves (Allocate, Refresh, CreatePermission, ChannelBind, Send and
//! Data indications; RFC 6062's Connect, ConnectionBind and ConnectionAttempt) are STUN
//! messages built with [`MessageBuilder`](crate::MessageBuilder);
//! their attributes live in [`attribute`](crate::attribute) (RFC 8656 §18).

// The machines take untrusted input: no unwrap, expect, panic or indexing outside tests.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

pub mod channel_data;
pub mod client;
pub mod framing;
pub mod server;

#[doc(hidden)]
pub mod fuzzing;

pub use crate::transmit::TransmitRef;
pub use channel_data::{ChannelData, ChannelDataError, encode_channel_data, is_channel_data};
pub use framing::{Frame, FramingError, StreamFramer};

/// How long a permission lives without a refresh (RFC 8656 §9: 300 seconds).
pub const PERMISSION_LIFETIME: Duration = Duration::from_secs(300);

/// How long a channel binding lives without a refresh (RFC 8656 §12: 10 minutes).
pub const CHANNEL_LIFETIME: Duration = Duration::from_secs(600);

/// After a channel binding expires, neither its number nor its peer may be rebound to
/// another for this long (RFC 8656 §12: 5 minutes).
pub const CHANNEL_COOLDOWN: Duration = Duration::from_secs(300);

/// An allocation's lifetime when the client does not ask for one (RFC 8656 §7.2: 10 minutes).
pub const DEFAULT_ALLOCATION_LIFETIME: Duration = Duration::from_secs(600);

/// ADDITIONAL-ADDRESS-FAMILY as the TURN-bis drafts numbered it, and coturn (4.6) still
/// does: RFC 8656 §18.11 assigned 0x8000. Used only with the `coturn_dual_allocation`
/// options of the client and the server.
pub const DRAFT_ADDITIONAL_ADDRESS_FAMILY: crate::AttributeType = crate::AttributeType::new(0x8032);

/// ADDRESS-ERROR-CODE as the drafts and coturn number it (RFC 8656 §18.12: 0x8001).
pub const DRAFT_ADDRESS_ERROR_CODE: crate::AttributeType = crate::AttributeType::new(0x8033);
