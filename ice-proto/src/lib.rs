//! Sans-IO ICE (RFC 8445): candidates, gathering, connectivity checks, nomination, the
//! selected pair, consent freshness (RFC 7675) and the SDP grammar (RFC 8839).
//!
//! # What this crate is for
//! An [`Agent`] finds a working path between two peers behind NATs: it turns the caller's
//! sockets (bases) into host candidates, asks STUN servers for server-reflexive ones, pairs
//! them with the peer's candidates, checks the pairs with STUN Binding requests paced at Ta,
//! lets the controlling side nominate the best working pair, and then keeps checking that
//! the peer still consents to receive. It never opens a socket, reads a clock or draws
//! ambient randomness: the caller feeds it datagrams and time, and sends what it returns.
//!
//! What a libnice, str0m or pion user will find: streams of components with libnice's
//! component states and the W3C connection state; trickle (RFC 8838) with
//! end-of-candidates; host, server-reflexive, peer-reflexive and relayed candidates (TURN
//! through stun-proto's client, ChannelData once a relayed pair is selected); regular
//! nomination with a stopping criterion and re-nomination of a better pair found later
//! (aggressive nomination as an option); ICE PAC (RFC 8863); failover when the caller removes
//! an interface; role conflicts; RFC 7675 consent and §11
//! keepalives; ICE restarts (also after a network change); ICE-lite agents; the relay-only
//! policy; a round-trip time per pair; the SDP grammar of `candidate`, `ice-ufrag`,
//! `ice-pwd`, `ice-options`, `ice-lite` and `end-of-candidates` lines.
//!
//! # The drive loop
//! After any `handle_*` call, send everything [`Agent::poll_transmit`] returns and act on
//! everything [`Agent::poll_event`] returns until both give `None`; then call
//! [`Agent::handle_timeout`] at [`Agent::poll_timeout`]. Two agents in memory:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use ice_proto::{Agent, AgentConfig, ConnectionState, Event, Handled};
//! use rand_core::SeedableRng;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let rng = |seed| rand_chacha::ChaCha20Rng::seed_from_u64(seed); // use a CSPRNG from the OS
//! let offerer = AgentConfig { controlling: true, ..AgentConfig::default() };
//! let mut a = Agent::new(offerer, rng(1));
//! let mut b = Agent::new(AgentConfig::default(), rng(2));
//! let (sa, sb) = (a.add_stream(1)?, b.add_stream(1)?);
//! // The caller's sockets: the agent never binds ports (pick them from any port range).
//! a.stream_mut(sa).unwrap().add_base(1, "192.0.2.1:5000".parse()?)?;
//! b.stream_mut(sb).unwrap().add_base(1, "198.51.100.2:6000".parse()?)?;
//!
//! let mut now = Instant::now();
//! // Signalling (SDP or anything else): credentials, then candidates as they come.
//! let ca = a.stream(sa).unwrap().local_credentials().clone();
//! let cb = b.stream(sb).unwrap().local_credentials().clone();
//! a.handle_remote_credentials(now, sa, cb)?;
//! b.handle_remote_credentials(now, sb, ca)?;
//! a.handle_gather(now, sa)?;
//! b.handle_gather(now, sb)?;
//!
//! while a.state() != ConnectionState::Completed || b.state() != ConnectionState::Completed {
//!     // Drain both agents; the "network" delivers at once.
//!     while exchange(now, &mut a, &mut b, sb)? | exchange(now, &mut b, &mut a, sa)? {}
//!     // Sleep until the earliest deadline (virtual time here).
//!     let next = [a.poll_timeout(), b.poll_timeout()].into_iter().flatten().min();
//!     now = next.expect("checks are scheduled");
//!     a.handle_timeout(now);
//!     b.handle_timeout(now);
//! }
//!
//! let pair = a.stream(sa).unwrap().selected_pair(1).expect("selected");
//! assert_eq!(pair.remote.addr(), Some("198.51.100.2:6000".parse()?));
//! // Application data goes out on the selected pair
//! // (borrowing the payload: nothing is allocated on the way out)...
//! let datagram = a.handle_send(now, sa, 1, b"DTLS or RTP")?;
//! // ...and what is not STUN comes back to the application with its component.
//! let received = b.handle_datagram(now, datagram.transport, datagram.source,
//!     datagram.destination, datagram.payload);
//! assert!(matches!(received, Handled::Data { component: 1, data: b"DTLS or RTP", .. }));
//! # Ok(()) }
//!
//! /// Hands `x`'s candidates and datagrams to `y`; whether anything moved.
//! fn exchange<R: rand_core::RngCore + rand_core::CryptoRng>(
//!     now: Instant, x: &mut Agent<R>, y: &mut Agent<R>, sy: ice_proto::StreamId,
//! ) -> Result<bool, Box<dyn std::error::Error>> {
//!     let mut moved = false;
//!     while let Some(event) = x.poll_event() {
//!         moved = true;
//!         if let Event::NewLocalCandidate { candidate, .. } = event {
//!             // Trickled as an `a=candidate:` line and parsed on the other side.
//!             y.handle_remote_candidate(now, sy, candidate.to_string().parse()?)?;
//!         }
//!     }
//!     while let Some(t) = x.poll_transmit() {
//!         moved = true;
//!         y.handle_datagram(now, t.transport, t.source, t.destination, &t.payload);
//!     }
//!     Ok(moved)
//! }
//! ```
//!
//! # Sockets and port ranges
//! The caller binds its sockets — from whatever port range its firewall allows — and hands
//! them to the agent as bases ([`StreamMut::add_base`]); it also owns the clock and the
//! RNG. `examples/loopback.rs` runs two agents over real UDP sockets bound from a port range
//! (`cargo run -p ice-proto --example loopback 50000`).
//!
//! # Error policy
//! API misuse returns an [`AgentError`] (or a [`SendError`] from [`Agent::handle_send`]); none is
//! fatal, the agent is unchanged. Received datagrams never return an error: STUN for the
//! agent is consumed ([`Handled::Consumed`]); bad, unauthenticated or stale messages are counted
//! ([`AgentStats`]) and dropped ([`Handled::Dropped`]); anything else is handed back
//! ([`Handled::Data`], [`Handled::NotIce`]). No input panics the agent. Problems worth a
//! user's attention (a silent STUN server, a full check list) arrive as [`Event::Problem`].
//!
//! # Bounds
//! Every table is bounded: 100 pairs per check list (§6.1.2.5, [`AgentConfig::max_pairs`]),
//! 100 local and 100 remote candidates per stream, 32 bases per component, 64 streams, 64
//! TURN allocations, 1024 queued datagrams and events.
//!
//! # Out of scope (for now)
//! TCP candidates (RFC 6544: parsed, not checked); mDNS lookups themselves (the agent asks
//! with [`Event::ResolveHostname`], the caller resolves) and mDNS names for our own host
//! candidates. Section-by-section compliance, with the test that proves each row:
//! `docs/compliance.md` (ICE section); design notes: `docs/ice.md`.

#![forbid(unsafe_code)]

mod agent;
pub mod candidate;
mod check;
mod checklist;
mod config;
mod connectivity;
mod consent;
mod context;
pub mod endpoint;
mod error;
mod event;
mod freshness;
#[doc(hidden)]
pub mod fuzzing;
mod gathering;
mod handled;
mod mdns;
pub mod mdns_resolver;
pub mod mdns_responder;
mod network;
mod nomination;
mod pairing;
mod path;
mod received;
mod relay;
mod restart;
pub mod sdp;
mod state;
mod stream;
pub mod tcp;
#[cfg(test)]
mod test_support;
mod timer;
#[cfg(feature = "tracing")]
mod trace;

pub use agent::Agent;
pub use candidate::{Candidate, CandidateType, ConnectionAddress, TcpType, Transport};
pub use checklist::{ChecklistState, PairId, PairStateKind, Traffic, pair_priority};
pub use config::{AgentConfig, AgentStats, NominationMode, TurnServer};
pub use error::{AgentError, CredentialError, CredentialPart, SendError};
pub use event::{ComponentState, ConnectionState, Event, FailureReason, Problem};
pub use handled::{DropReason, Handled, NotIceReason};
pub use mdns_resolver::{MdnsError, MdnsEvent, MdnsResolver};
pub use mdns_responder::{MdnsResponder, random_name};
pub use path::Path;
/// The RNG traits the machines take (`RngCore`, `CryptoRng`, `SeedableRng`), at the version
/// this crate was built with, so that a caller's generator matches them.
pub use rand_core;
pub use sdp::{IceAttribute, SdpError};
pub use stream::{Credentials, PairInfo, StreamId, StreamMut, StreamView};
pub use timer::Timer;
// What embedding the agent names, from the STUN layer underneath, so that a user needs no
// `stun-proto` in its Cargo.toml for them.
pub use stun_proto::transaction::TransactionConfig;
pub use stun_proto::{Transmit, TransmitRef, TransportProtocol};
