//! Received datagrams (DESIGN.md, the sans-IO contract): STUN for the agent is consumed —
//! checks (RFC 8445 §7.3), responses (§7.2.5), keepalives (§11) —; anything else is handed
//! back, with the stream, component and pair it arrived on when it arrived on one of our
//! addresses, or as not ICE's (for a TURN client or a STUN server of the caller's).

use std::net::SocketAddr;
use std::time::Instant;

use rand_core::{CryptoRng, RngCore};
use stun_proto::{Class, Message, Method, is_stun};

use crate::agent::Agent;
use crate::checklist::PairId;
use crate::stream::StreamId;

/// What [`Agent::handle_datagram`](crate::Agent::handle_datagram) did with a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Received<'a> {
    /// A STUN message for the agent (a check, a response, a keepalive): consumed.
    Stun,
    /// Application data (DTLS, RTP…) that arrived on a component's socket.
    Data {
        /// The stream.
        stream: StreamId,
        /// The component.
        component: u16,
        /// The pair it arrived on, when it matches a checked pair.
        pair: Option<PairId>,
        /// Where it came from.
        source: SocketAddr,
        /// The bytes (borrowed from the datagram).
        data: &'a [u8],
    },
    /// The agent's, but unusable: counted and dropped.
    Dropped(DropReason),
    /// Not the agent's: hand it to another machine (a TURN client, a STUN server…).
    NotIce(NotIceReason),
}

/// Why a datagram for the agent was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// MESSAGE-INTEGRITY or FINGERPRINT did not verify.
    BadIntegrity,
    /// A check whose USERNAME names no stream of ours, or is malformed.
    UnknownUsername,
    /// The agent is closed.
    Closed,
}

/// Why a datagram is not the agent's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotIceReason {
    /// It arrived on an address that is no base of the agent.
    UnknownDestination,
    /// A STUN method other than Binding (TURN, for instance).
    OtherMethod,
    /// A Binding response to no transaction of the agent.
    UnknownTransaction,
}

impl<R: RngCore + CryptoRng> Agent<R> {
    /// A datagram that arrived on `destination` (a base or a relayed address).
    pub(crate) fn dispatch<'a>(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        payload: &'a [u8],
    ) -> Received<'a> {
        let message = if is_stun(payload) {
            Message::parse(payload).ok()
        } else {
            None
        };
        let Some(message) = message else {
            return self.data(source, destination, payload);
        };
        if message.method() != Method::BINDING {
            return Received::NotIce(NotIceReason::OtherMethod);
        }
        match message.class() {
            Class::Request => self.handle_check_request(now, source, destination, &message),
            Class::Indication => Received::Stun,
            Class::Success | Class::Error => {
                match self.handle_check_response(now, source, destination, &message) {
                    Some(received) => received,
                    None if self
                        .gatherer
                        .handle_response(now, source, destination, &message) =>
                    {
                        Received::Stun
                    }
                    None => Received::NotIce(NotIceReason::UnknownTransaction),
                }
            }
        }
    }

    /// Non-STUN data: returned with the component whose base it arrived on.
    fn data<'a>(
        &mut self,
        source: SocketAddr,
        destination: SocketAddr,
        payload: &'a [u8],
    ) -> Received<'a> {
        for (s, st) in self.streams.iter_mut().enumerate() {
            if let Some(l) = st.local.iter().find(|l| l.base == destination) {
                let pair = st
                    .checklist
                    .count_received(destination, source, payload.len());
                return Received::Data {
                    stream: StreamId(s),
                    component: l.candidate.component,
                    pair,
                    source,
                    data: payload,
                };
            }
            // After a restart that dropped the base, the previous path still carries data
            // until a new pair is selected (RFC 8445 §9): both ways.
            let previous = st
                .components
                .iter()
                .find(|c| c.previous == Some((destination, source)));
            if let Some(c) = previous {
                return Received::Data {
                    stream: StreamId(s),
                    component: c.id,
                    pair: None,
                    source,
                    data: payload,
                };
            }
        }
        Received::NotIce(NotIceReason::UnknownDestination)
    }
}
