//! Fuzzing entry points (used by `fuzz/fuzz_targets/ice_*.rs` and replayed over the corpus
//! by `tests/fuzz_corpus`). Not part of the API.
//!
//! - [`sdp`]: any bytes as an SDP line: parsing never panics, and what parses formats and
//!   parses back to the same value.
//! - [`agent`]: an agent fed a sequence of operations — raw datagrams, candidate lines, time
//!   steps, *authenticated* checks and responses built from fuzzer-chosen fields (so the
//!   fuzzer reaches the states behind MESSAGE-INTEGRITY), data to send — checking after each
//!   that the tables stay within their bounds.
//! - [`endpoint`]: the SFU endpoint under fuzzed sessions, datagrams, signed checks and
//!   time steps, checking its bounds and that unauthenticated datagrams change no session.
//! - `pair`: two agents over a fuzzed network (loss, duplication, reordering, forged and
//!   replayed datagrams, time steps), checking the same invariants on both after every step
//!   and that forged datagrams change no authenticated state.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use stun_proto::attribute::{ErrorCode, XorMappedAddress};
use stun_proto::{Class, IntegrityKey, Message, MessageBuilder, TransportProtocol};

use crate::candidate::Candidate;
use crate::check::{CheckRequest, DeclaredRole, build_request};
use crate::sdp::IceAttribute;
use crate::stream::{Credentials, StreamId};
use crate::{Agent, AgentConfig, Event};

mod pair;
pub use crate::endpoint::fuzz::run as endpoint;
pub use pair::{PairOutcome, pair};

const LOCAL_UFRAG: &str = "LOCL";
const LOCAL_PWD: &str = "localpasswordlocalpassword";
const REMOTE_UFRAG: &str = "REMO";
const REMOTE_PWD: &str = "remotepasswordremotepassword";
/// The pair bound the fuzzed agent runs with (smaller than the default, to hit it).
const MAX_PAIRS: usize = 20;

/// Parses `data` as an SDP line; checks the format/parse round trip.
pub fn sdp(data: &[u8]) {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = line.parse::<Candidate>() {
        let again: Candidate = c
            .to_string()
            .parse()
            .unwrap_or_else(|e| panic!("{c} does not parse back: {e}"));
        assert_eq!(again, c, "round trip of {line:?}");
    }
    if let Ok(a) = IceAttribute::parse(line) {
        let again = IceAttribute::parse(&a.to_string());
        assert_eq!(again.as_ref(), Ok(&a), "round trip of {line:?}");
    }
}

/// A little reader over the fuzzer's bytes.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn u8(&mut self) -> Option<u8> {
        let (b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*b)
    }
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes([self.u8()?, self.u8()?]))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes([
            self.u8()?,
            self.u8()?,
            self.u8()?,
            self.u8()?,
        ]))
    }
    fn u64(&mut self) -> Option<u64> {
        Some((u64::from(self.u32()?) << 32) | u64::from(self.u32()?))
    }
    fn addr(&mut self) -> Option<SocketAddr> {
        // A handful of addresses, so that sources repeat and pairs form.
        let b = self.u8()?;
        let ip = IpAddr::V4(Ipv4Addr::new(203, 0, 113, b & 3));
        Some(SocketAddr::new(ip, 4000 + u16::from(b >> 2 & 3)))
    }
}

/// Runs an agent over the operations encoded in `data`:
///
/// | op | arguments | what |
/// | --- | --- | --- |
/// | 0 | addr, len u8, bytes | a raw datagram from addr to a base |
/// | 1 | len u8, bytes | an SDP line, as a remote candidate |
/// | 2 | u16 ms | time passes; `handle_timeout` |
/// | 3 | addr, u32 priority, u8 flags, u64 tie-breaker | an authenticated check |
/// | 4 | u8 which, u8 kind, addr | an authenticated answer to a recent check of ours |
/// | 5 | len u8 | application data to send |
/// | 6 | — | the remote end of candidates |
/// | 7 | — | jump to `poll_timeout` |
/// | 8 | — | an ICE restart (the peer keeps its credentials) |
/// | 9 | addr | an ICMP error from a base to addr; with addr's port ≡ 3 (mod 4), that base removed instead (`handle_base_removed`) |
///
/// An operation byte is taken modulo 10; a first byte with bit 7 set makes the agent lite.
/// With bit 6 set, component 1 also has an ICE-TCP base (RFC 6544), and operations 0 and 3
/// arrive over TCP at it when their length's or flags' bit 3 is set (one RFC 4571 frame, as
/// the caller cuts them); answers (4) go back over the transport of the check they answer.
pub fn agent(data: &[u8]) -> Outcome {
    let mut input = Input(data);
    let seed = input.u8().unwrap_or(0);
    let controlling = seed & 1 == 1;
    let config = AgentConfig {
        controlling,
        // Seeds with bit 7 set run an ICE-lite agent.
        lite: seed & 0x80 != 0,
        max_pairs: MAX_PAIRS,
        max_candidates: 30,
        ..AgentConfig::default()
    };
    let mut agent = Agent::new(config, ChaCha20Rng::seed_from_u64(u64::from(seed)));
    let mut outcome = Outcome::default();
    let Ok(s) = agent.add_stream(2) else {
        return outcome;
    };
    let bases: [SocketAddr; 2] = [
        SocketAddr::from(([192, 0, 2, 1], 5000)),
        SocketAddr::from(([192, 0, 2, 1], 5001)),
    ];
    let Some(mut view) = agent.stream_mut(s) else {
        return outcome;
    };
    let credentials = Credentials::new(LOCAL_UFRAG, LOCAL_PWD);
    let set = credentials.map(|c| view.set_local_credentials(c));
    if !matches!(set, Ok(Ok(()))) {
        return outcome;
    }
    let _ = view.add_base(1, bases[0]);
    let _ = view.add_base(2, bases[1]);
    let tcp_base = SocketAddr::from(([192, 0, 2, 1], 7000));
    let ice_tcp = seed & 0x40 != 0;
    if ice_tcp {
        let _ = view.add_tcp_base(1, tcp_base);
    }
    // Where a datagram whose selector has bit 3 set arrives: over TCP at the TCP base.
    let arrival = |selector: u8, udp_base: SocketAddr| {
        if ice_tcp && selector & 8 != 0 {
            (TransportProtocol::Tcp, tcp_base)
        } else {
            (TransportProtocol::Udp, udp_base)
        }
    };
    let (Ok(local_key), Ok(remote_key), Ok(remote)) = (
        IntegrityKey::short_term(LOCAL_PWD),
        IntegrityKey::short_term(REMOTE_PWD),
        Credentials::new(REMOTE_UFRAG, REMOTE_PWD),
    ) else {
        return outcome;
    };
    let mut now = clock_origin();
    let _ = agent.handle_remote_credentials(now, s, remote);
    let _ = agent.handle_gather(now, s);
    let mut recent: Vec<Recent> = Vec::new();
    let mut tid = 0u8;
    loop {
        outcome.selected += drain(&mut agent, s, &mut recent);
        outcome.states.push(agent.state());
        let Some(op) = input.u8() else {
            break;
        };
        match op % 10 {
            0 => {
                let (Some(from), Some(len)) = (input.addr(), input.u8()) else {
                    break;
                };
                let Some(bytes) = input.bytes(usize::from(len)) else {
                    break;
                };
                let (transport, to) = arrival(len, bases[usize::from(len & 1)]);
                let _ = agent.handle_datagram(now, transport, from, to, bytes);
            }
            1 => {
                let Some(len) = input.u8() else { break };
                let Some(bytes) = input.bytes(usize::from(len)) else {
                    break;
                };
                if let Ok(line) = std::str::from_utf8(bytes) {
                    if let Ok(c) = line.parse::<Candidate>() {
                        let _ = agent.handle_remote_candidate(now, s, c);
                    }
                }
            }
            2 => {
                let Some(ms) = input.u16() else { break };
                now += Duration::from_millis(u64::from(ms));
                agent.handle_timeout(now);
            }
            3 => {
                let (Some(from), Some(priority), Some(flags), Some(tb)) =
                    (input.addr(), input.u32(), input.u8(), input.u64())
                else {
                    break;
                };
                tid = tid.wrapping_add(1);
                let role = if flags & 1 == 1 {
                    DeclaredRole::Controlling(tb)
                } else {
                    DeclaredRole::Controlled(tb)
                };
                let check = CheckRequest {
                    username: "LOCL:REMO",
                    priority,
                    role,
                    use_candidate: flags & 2 == 2,
                };
                let mut id = [tid; 12];
                id[0] = flags;
                if let Ok(bytes) = build_request(id.into(), &check, &local_key) {
                    let (transport, to) = arrival(flags, bases[usize::from(flags >> 2 & 1)]);
                    let _ = agent.handle_datagram(now, transport, from, to, &bytes);
                }
            }
            4 => {
                let (Some(which), Some(kind), Some(mapped)) =
                    (input.u8(), input.u8(), input.addr())
                else {
                    break;
                };
                let Some(sent) =
                    (!recent.is_empty()).then(|| recent[usize::from(which) % recent.len()].clone())
                else {
                    continue;
                };
                if let Some(answer) = respond(&sent.payload, kind, mapped, &remote_key) {
                    // From where the request went, to where it came from (or, for kind & 4,
                    // from elsewhere: a non-symmetric answer).
                    let from = if kind & 4 == 4 {
                        mapped
                    } else {
                        sent.destination
                    };
                    let _ = agent.handle_datagram(now, sent.transport, from, sent.source, &answer);
                }
            }
            5 => {
                let Some(len) = input.u8() else { break };
                let payload = vec![0x80; usize::from(len)];
                let component = 1 + u16::from(len & 1);
                let _ = agent.handle_send(now, s, component, &payload);
            }
            6 => {
                let _ = agent.handle_remote_end_of_candidates(now, s);
            }
            7 => {
                if let Some(t) = agent.poll_timeout() {
                    now = now.max(t);
                    agent.handle_timeout(now);
                }
            }
            8 => {
                // An ICE restart. The fixed credentials are set again on both sides, so that
                // the authenticated operations keep reaching the agent.
                let _ = agent.handle_restart(now, s);
                if let Some(mut view) = agent.stream_mut(s) {
                    if let Ok(c) = Credentials::new(LOCAL_UFRAG, LOCAL_PWD) {
                        let _ = view.set_local_credentials(c);
                    }
                }
                if let Ok(c) = Credentials::new(REMOTE_UFRAG, REMOTE_PWD) {
                    let _ = agent.handle_remote_credentials(now, s, c);
                }
            }
            _ => {
                let Some(to) = input.addr() else { break };
                let which = usize::from(to.port() & 1);
                if to.port() % 4 == 3 {
                    // The interface of a base went away (component 1 + which owns it).
                    let component = 1 + (to.port() & 1);
                    let _ = agent.handle_base_removed(now, s, component, bases[which]);
                } else {
                    agent.handle_transport_error(now, bases[which], to);
                }
            }
        }
        check_bounds(&agent, s);
        // Progress: after a `handle_*` at `now` nothing is left due at `now` (a deadline
        // at or before it would make the caller spin).
        if let Some(t) = agent.poll_timeout() {
            assert!(
                t > now,
                "{:?} due {:?} before now",
                agent.next_timer(),
                now - t.min(now)
            );
        }
    }
    outcome
}

/// What a fuzzed run reached (for the corpus replay to check that seeds go somewhere).
#[derive(Debug, Default)]
pub struct Outcome {
    /// Selected pairs announced.
    pub selected: usize,
    /// The agent's state after each operation.
    pub states: Vec<crate::ConnectionState>,
}

/// The origin of a fuzzed machine's virtual clock.
#[allow(clippy::disallowed_methods)] // one real instant to build virtual time on
pub(crate) fn clock_origin() -> Instant {
    Instant::now()
}

/// Drains the agent, keeping the last requests it sent (to answer them); returns how many
/// selected pairs it announced.
/// A request the agent sent, kept for answers.
#[derive(Clone)]
struct Recent {
    transport: TransportProtocol,
    source: SocketAddr,
    destination: SocketAddr,
    /// The STUN message (over TCP, without its RFC 4571 length).
    payload: bytes::Bytes,
}

fn drain(agent: &mut Agent<ChaCha20Rng>, s: StreamId, recent: &mut Vec<Recent>) -> usize {
    let mut selected = 0;
    while let Some(t) = agent.poll_transmit() {
        let payload = if t.transport == TransportProtocol::Tcp {
            // Every TCP transmit is one RFC 4571 frame.
            let mut framer = crate::tcp::Framer::default();
            framer.push(&t.payload);
            let frame = framer.next_frame();
            assert!(frame.is_some() && framer.pending() == 0, "one whole frame");
            frame.map(bytes::Bytes::from).unwrap_or_default()
        } else {
            t.payload
        };
        let is_request = Message::parse(&payload).is_ok_and(|m| m.class() == Class::Request);
        if is_request {
            if recent.len() >= 8 {
                recent.remove(0);
            }
            recent.push(Recent {
                transport: t.transport,
                source: t.source,
                destination: t.destination,
                payload,
            });
        }
    }
    let mut events = 0;
    while let Some(e) = agent.poll_event() {
        events += 1;
        if let Event::NewSelectedPair { stream, .. } = e {
            assert_eq!(stream, s);
            selected += 1;
        }
    }
    assert!(events <= 1_024, "the event queue is bounded");
    selected
}

/// An authenticated answer to `request`: success with `mapped`, 487, or another error.
fn respond(request: &[u8], kind: u8, mapped: SocketAddr, key: &IntegrityKey) -> Option<Vec<u8>> {
    let request = Message::parse(request).ok()?;
    let class = if kind & 3 == 0 {
        Class::Success
    } else {
        Class::Error
    };
    let mut b = MessageBuilder::response_to(bytes::BytesMut::new(), &request, class).ok()?;
    match kind & 3 {
        0 => b.add(&XorMappedAddress(mapped)).ok()?,
        1 => b.add(&ErrorCode::new(487).ok()?).ok()?,
        _ => b.add(&ErrorCode::new(500).ok()?).ok()?,
    };
    b.add_message_integrity(key).ok()?.add_fingerprint().ok()?;
    Some(b.into_bytes().to_vec())
}

fn check_bounds(agent: &Agent<ChaCha20Rng>, s: StreamId) {
    let Some(view) = agent.stream(s) else {
        return;
    };
    assert!(
        view.pairs().count() <= MAX_PAIRS,
        "the check list is bounded"
    );
    assert!(view.local_candidates().count() <= 30);
    assert!(view.remote_candidates().count() <= 30);
    // The check list stays ordered by priority (§6.1.2.5), and a selected pair is a
    // nominated valid pair of its component (§8.1.1).
    let priorities: Vec<u64> = view.pairs().map(|p| p.priority).collect();
    assert!(
        priorities.windows(2).all(|w| w[0] >= w[1]),
        "{priorities:?}"
    );
    for c in 1..=view.component_count() {
        if let Some(p) = view.selected_pair(c) {
            assert!(p.valid && p.nominated && p.component == c, "{p:?}");
        }
    }
    let _: Option<Instant> = agent.poll_timeout();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Issue 21: a controlled agent nominated on a pair whose first check was cancelled by a
    /// triggered one; the second check succeeds (selected), then a signed error 500 answers
    /// the cancelled check from another address. The selected pair used to fail and stay
    /// selected ("a selected pair is a nominated valid pair of its component").
    #[test]
    fn a_late_error_to_a_cancelled_check_leaves_the_selected_pair_valid() {
        let input = unhex(
            "000300ff03ffffffffffff400000090003006e00ff00ff03020362620262020704010000362effff00ff0302",
        );
        let outcome = agent(&input);
        assert_eq!(outcome.selected, 1, "{:?}", outcome.states);
        assert_eq!(
            outcome.states.last(),
            Some(&crate::ConnectionState::Checking),
            "component 1 never connected; component 2 stays Ready"
        );
    }
}
