//! Two agents over a fuzzed network (issue 21): the fuzzer delivers, drops, duplicates and
//! reorders their datagrams, forges datagrams of its own, replays real ones from other
//! addresses, and moves time. After every step both agents hold the invariants of
//! [`check_bounds`](super::check_bounds) and leave nothing due in the past, and a forged
//! datagram — one that cannot carry the peer's MESSAGE-INTEGRITY — changes nothing an
//! authenticated message decides (roles, component states, selected and valid pairs).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use stun_proto::attribute::{ErrorCode, XorMappedAddress};
use stun_proto::{Class, IntegrityKey, Message, MessageBuilder, TransportProtocol};

use super::{Input, check_bounds, clock_origin};
use crate::{Agent, AgentConfig, ComponentState, ConnectionState, Event, PairStateKind, StreamId};

/// Datagrams in flight at most; beyond, new ones are lost.
const MAX_IN_FLIGHT: usize = 64;
/// Components of the stream each agent runs.
const COMPONENTS: u16 = 2;

type FuzzAgent = Agent<ChaCha20Rng>;

/// A datagram on the fuzzed network.
#[derive(Clone, Debug)]
struct Datagram {
    source: SocketAddr,
    destination: SocketAddr,
    payload: Bytes,
}

/// What a run reached (for the corpus replay to check that seeds go somewhere).
#[derive(Debug, Default)]
pub struct PairOutcome {
    /// Both agents' overall states after each step.
    pub states: Vec<(ConnectionState, ConnectionState)>,
    /// Forged datagrams delivered (each checked to change no authenticated state).
    pub forged: usize,
}

/// A path: (local, remote) transport addresses.
type Path = (Option<SocketAddr>, Option<SocketAddr>);

/// What only an authenticated message may change: the role, and per component its state
/// and selected pair, and each pair's state, validity and nomination (traffic counters and
/// round-trip times excluded).
#[derive(Debug, PartialEq, Eq)]
struct Authenticated {
    controlling: bool,
    components: Vec<(Option<ComponentState>, Option<Path>)>,
    pairs: Vec<(Path, PairStateKind, bool, bool)>,
}

impl Authenticated {
    fn of(agent: &FuzzAgent) -> Self {
        let Some(view) = agent.stream(StreamId(0)) else {
            return Self {
                controlling: agent.is_controlling(),
                components: Vec::new(),
                pairs: Vec::new(),
            };
        };
        let components = (1..=view.component_count())
            .map(|c| {
                let selected = view
                    .selected_pair(c)
                    .map(|p| (p.local.addr(), p.remote.addr()));
                (view.component_state(c), selected)
            })
            .collect();
        let pairs = view
            .pairs()
            .map(|p| {
                (
                    (p.local.addr(), p.remote.addr()),
                    p.state,
                    p.valid,
                    p.nominated,
                )
            })
            .collect();
        Self {
            controlling: agent.is_controlling(),
            components,
            pairs,
        }
    }
}

/// The two agents, the network between them, and the clock.
struct Pair {
    agents: [FuzzAgent; 2],
    bases: [[SocketAddr; 2]; 2],
    /// `keys[i]`: the key agent `i` signs its checks with and verifies their answers with
    /// (its peer's password); agent `i` verifies incoming checks with `keys[1 - i]`.
    keys: [IntegrityKey; 2],
    network: Vec<Datagram>,
    now: Instant,
}

impl Pair {
    /// Agent 0 controlling, agent 1 controlled (the fuzzer's seed may flip both to cause a
    /// role conflict), credentials exchanged, gathering started.
    fn new(seed: u8) -> Option<Self> {
        let config = |controlling| AgentConfig {
            controlling,
            max_pairs: super::MAX_PAIRS,
            max_candidates: 30,
            ..AgentConfig::default()
        };
        let conflict = seed & 1 == 1;
        let mut agents = [
            Agent::new(config(true), ChaCha20Rng::seed_from_u64(u64::from(seed))),
            Agent::new(
                config(conflict),
                ChaCha20Rng::seed_from_u64(u64::from(seed) + 1),
            ),
        ];
        let bases = [
            [
                SocketAddr::from(([192, 0, 2, 1], 5000)),
                SocketAddr::from(([192, 0, 2, 1], 5001)),
            ],
            [
                SocketAddr::from(([198, 51, 100, 2], 6000)),
                SocketAddr::from(([198, 51, 100, 2], 6001)),
            ],
        ];
        for (agent, bases) in agents.iter_mut().zip(bases) {
            let s = agent.add_stream(COMPONENTS).ok()?;
            let mut view = agent.stream_mut(s)?;
            for (c, base) in (1..).zip(bases) {
                view.add_base(c, base).ok()?;
            }
        }
        let now = clock_origin();
        let credentials =
            |a: &FuzzAgent| a.stream(StreamId(0)).map(|v| v.local_credentials().clone());
        let (c0, c1) = (credentials(&agents[0])?, credentials(&agents[1])?);
        let keys = [
            IntegrityKey::short_term(&c1.pwd).ok()?,
            IntegrityKey::short_term(&c0.pwd).ok()?,
        ];
        agents[0]
            .handle_remote_credentials(now, StreamId(0), c1)
            .ok()?;
        agents[1]
            .handle_remote_credentials(now, StreamId(0), c0)
            .ok()?;
        for agent in &mut agents {
            agent.handle_gather(now, StreamId(0)).ok()?;
        }
        let mut pair = Self {
            agents,
            bases,
            keys,
            network: Vec::new(),
            now,
        };
        pair.drain();
        for agent in &mut pair.agents {
            agent
                .handle_remote_end_of_candidates(now, StreamId(0))
                .ok()?;
        }
        pair.drain();
        Some(pair)
    }

    /// Which agent owns `address`, if either.
    fn owner(&self, address: SocketAddr) -> Option<usize> {
        self.bases.iter().position(|b| b.contains(&address))
    }

    /// Moves both agents' datagrams onto the network and their candidates through the
    /// (reliable) signalling channel, until neither has anything left.
    fn drain(&mut self) {
        loop {
            let mut moved = false;
            for i in 0..2 {
                while let Some(t) = self.agents[i].poll_transmit() {
                    moved = true;
                    if self.network.len() < MAX_IN_FLIGHT {
                        self.network.push(Datagram {
                            source: t.source,
                            destination: t.destination,
                            payload: t.payload,
                        });
                    }
                }
                let mut events = 0;
                while let Some(e) = self.agents[i].poll_event() {
                    events += 1;
                    if let Event::NewLocalCandidate { candidate, .. } = e {
                        moved = true;
                        let _ = self.agents[1 - i].handle_remote_candidate(
                            self.now,
                            StreamId(0),
                            candidate,
                        );
                    }
                }
                assert!(events <= 1_024, "the event queue is bounded");
            }
            if !moved {
                return;
            }
        }
    }

    /// Hands `d` to the agent that owns its destination (none: it is lost).
    fn deliver(&mut self, d: &Datagram) {
        if let Some(i) = self.owner(d.destination) {
            let _ = self.agents[i].handle_datagram(
                self.now,
                TransportProtocol::Udp,
                d.source,
                d.destination,
                &d.payload,
            );
        }
    }

    /// Whether `payload` carries a MESSAGE-INTEGRITY one of the agents accepts (a bit flip
    /// in what follows it, the FINGERPRINT's type say, leaves a message authentic).
    fn is_authentic(&self, payload: &[u8]) -> bool {
        Message::parse(payload)
            .is_ok_and(|m| self.keys.iter().any(|k| m.verify_integrity(k).is_ok()))
    }

    /// Delivers a datagram the fuzzer forged (without the peer's key), and checks that it
    /// changed nothing an authenticated message decides; returns whether it was forged.
    fn deliver_forged(&mut self, d: &Datagram) -> bool {
        let Some(i) = self.owner(d.destination) else {
            return false;
        };
        if self.is_authentic(&d.payload) {
            self.deliver(d);
            return false;
        }
        let before = Authenticated::of(&self.agents[i]);
        self.deliver(d);
        let after = Authenticated::of(&self.agents[i]);
        assert_eq!(
            before, after,
            "a forged datagram changed authenticated state"
        );
        true
    }

    /// Both agents' timers, at `now`.
    fn timeout(&mut self) {
        for agent in &mut self.agents {
            agent.handle_timeout(self.now);
        }
    }

    /// The invariants after a step.
    fn check(&self) {
        for agent in &self.agents {
            check_bounds(agent, StreamId(0));
            if let Some(t) = agent.poll_timeout() {
                assert!(
                    t > self.now,
                    "{:?} due at or before now",
                    agent.next_timer()
                );
            }
        }
    }
}

/// Runs two agents over a network the fuzzer controls:
///
/// | op | arguments | what |
/// | --- | --- | --- |
/// | 0 | u8 which | deliver one datagram in flight (any order: reordering) |
/// | 1 | u8 which | lose one |
/// | 2 | u8 which | duplicate one |
/// | 3 | u16 ms | time passes; both agents' timers |
/// | 4 | u8 kind, u8 which, u8 a, u8 b | forge a datagram (see `forge`) |
/// | 5 | u8 which, u8 addr | replay one from another source address (an on-path attacker) |
/// | 6 | — | jump to the earlier agent's deadline |
/// | 7 | — | deliver everything in flight, in order |
///
/// An operation byte is taken modulo 8. The first byte seeds the agents; an odd one makes
/// both controlling (a role conflict to resolve).
pub fn pair(data: &[u8]) -> PairOutcome {
    let mut input = Input(data);
    let mut outcome = PairOutcome::default();
    let Some(mut pair) = Pair::new(input.u8().unwrap_or(0)) else {
        return outcome;
    };
    loop {
        pair.check();
        outcome
            .states
            .push((pair.agents[0].state(), pair.agents[1].state()));
        let Some(op) = input.u8() else {
            break;
        };
        let pick = |pair: &Pair, which: u8| {
            (!pair.network.is_empty()).then(|| usize::from(which) % pair.network.len())
        };
        match op % 8 {
            0 => {
                let Some(which) = input.u8() else { break };
                if let Some(i) = pick(&pair, which) {
                    let d = pair.network.remove(i);
                    pair.deliver(&d);
                }
            }
            1 => {
                let Some(which) = input.u8() else { break };
                if let Some(i) = pick(&pair, which) {
                    pair.network.remove(i);
                }
            }
            2 => {
                let Some(which) = input.u8() else { break };
                if let Some(i) = pick(&pair, which) {
                    if pair.network.len() < MAX_IN_FLIGHT {
                        let d = pair.network[i].clone();
                        pair.network.push(d);
                    }
                }
            }
            3 => {
                let Some(ms) = input.u16() else { break };
                pair.now += Duration::from_millis(u64::from(ms));
                pair.timeout();
            }
            4 => {
                let (Some(kind), Some(which), Some(a), Some(b)) =
                    (input.u8(), input.u8(), input.u8(), input.u8())
                else {
                    break;
                };
                let original = pick(&pair, which).map(|i| pair.network[i].clone());
                if let Some(d) = forge(&pair, kind, original.as_ref(), a, b) {
                    outcome.forged += usize::from(pair.deliver_forged(&d));
                }
            }
            5 => {
                let (Some(which), Some(a)) = (input.u8(), input.u8()) else {
                    break;
                };
                if let Some(i) = pick(&pair, which) {
                    let mut d = pair.network[i].clone();
                    d.source = elsewhere(a);
                    pair.deliver(&d);
                }
            }
            6 => {
                let next = pair.agents.iter().filter_map(Agent::poll_timeout).min();
                if let Some(t) = next {
                    pair.now = pair.now.max(t);
                    pair.timeout();
                }
            }
            _ => {
                let in_flight = std::mem::take(&mut pair.network);
                for d in &in_flight {
                    pair.deliver(d);
                }
            }
        }
        pair.drain();
    }
    outcome
}

/// A source address that is neither agent's.
fn elsewhere(a: u8) -> SocketAddr {
    SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(203, 0, 113, a & 7)),
        7000 + u16::from(a >> 3),
    )
}

/// A datagram the fuzzer makes without the peers' passwords, by `kind % 4`:
/// 0. `a` bytes of `b`, to the base of agent `a & 1`, from elsewhere;
/// 1. a datagram in flight with bit `a·8 + b` flipped (modulo its length);
/// 2. an unsigned answer (success, or error 487, 401 or 500) to a request in flight, from
///    where it went: what an off-path attacker who guessed the transaction would send;
/// 3. the same answer signed with the wrong agent's key.
fn forge(pair: &Pair, kind: u8, original: Option<&Datagram>, a: u8, b: u8) -> Option<Datagram> {
    match kind % 4 {
        0 => {
            let agent = usize::from(a & 1);
            Some(Datagram {
                source: elsewhere(b),
                destination: pair.bases[agent][usize::from(b & 1)],
                payload: Bytes::from(vec![b; usize::from(a)]),
            })
        }
        1 => {
            let d = original?;
            let mut payload = BytesMut::from(&d.payload[..]);
            let bit = (usize::from(a) << 8 | usize::from(b)) % (payload.len() * 8).max(1);
            *payload.get_mut(bit / 8)? ^= 1 << (bit % 8);
            Some(Datagram {
                payload: payload.freeze(),
                ..d.clone()
            })
        }
        _ => {
            let d = original?;
            let request = Message::parse(&d.payload).ok()?;
            if request.class() != Class::Request {
                return None;
            }
            let class = if a & 3 == 0 {
                Class::Success
            } else {
                Class::Error
            };
            let mut m = MessageBuilder::response_to(BytesMut::new(), &request, class).ok()?;
            match a & 3 {
                0 => m.add(&XorMappedAddress(elsewhere(b))).ok()?,
                1 => m.add(&ErrorCode::new(487).ok()?).ok()?,
                2 => m.add(&ErrorCode::new(401).ok()?).ok()?,
                _ => m.add(&ErrorCode::new(500).ok()?).ok()?,
            };
            if kind % 4 == 3 {
                // The key the request's sender checks *incoming* checks with: the wrong one
                // for an answer (a reflection of its own password).
                let sender = pair.owner(d.source)?;
                m.add_message_integrity(&pair.keys[1 - sender]).ok()?;
            }
            m.add_fingerprint().ok()?;
            Some(Datagram {
                source: d.destination,
                destination: d.source,
                payload: m.into_bytes(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::RngCore;

    /// Deliver everything, let 50 ms pass; `rounds` times.
    fn clean(seed: u8, rounds: usize) -> Vec<u8> {
        let mut ops = vec![seed];
        for _ in 0..rounds {
            ops.extend([7, 3, 0, 50]);
        }
        ops
    }

    #[test]
    fn over_a_clean_network_both_agents_complete() {
        for seed in [0, 1] {
            let outcome = pair(&clean(seed, 40));
            let last = outcome.states.last().copied();
            assert_eq!(
                last,
                Some((ConnectionState::Completed, ConnectionState::Completed)),
                "seed {seed}"
            );
        }
    }

    #[test]
    fn forged_datagrams_change_nothing_and_the_agents_still_complete() {
        let mut ops = vec![0];
        for round in 0..40u8 {
            // Before each delivery: every kind of forgery against what is in flight.
            for kind in 0..4 {
                ops.extend([
                    4,
                    kind,
                    round,
                    round.wrapping_mul(7),
                    kind.wrapping_add(round),
                ]);
            }
            ops.extend([7, 3, 0, 50]);
        }
        let outcome = pair(&ops);
        assert!(
            outcome.forged > 40,
            "beyond the 40 random datagrams: {}",
            outcome.forged
        );
        assert_eq!(
            outcome.states.last().copied(),
            Some((ConnectionState::Completed, ConnectionState::Completed))
        );
    }

    #[test]
    fn random_sequences_hold_the_invariants() {
        let mut rng = ChaCha20Rng::seed_from_u64(21);
        let runs = std::env::var("ICE_PAIR_RUNS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(200);
        for _ in 0..runs {
            let mut data = vec![0u8; 64 + (rng.next_u32() % 512) as usize];
            rng.fill_bytes(&mut data);
            pair(&data);
        }
    }
}
