//! The Binding method (RFC 8489 §3, §18.2): a [`BindingClient`] that learns the
//! server-reflexive (mapped) address, and a [`BindingServer`] that answers, with the RFC 5780
//! NAT-behaviour-discovery extensions and classic RFC 3489 compatibility.

pub mod client;
pub mod server;

pub use client::{BindingClient, BindingEvent, BindingFailure, BindingOptions, BindingResult};
pub use server::{
    AMPLIFICATION_FACTOR, Authentication, BindingServer, BindingServerConfig, BindingServerStats,
    ShortTermCredential,
};
