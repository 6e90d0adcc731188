//! The agent with TURN servers: what their datagrams reach, and the transport allocations use.

use std::time::Duration;

use stun_proto::TransportProtocol;

use std::net::SocketAddr;

use crate::AgentConfig;
use crate::test_support::t0;
use crate::{Agent, CandidateType, TurnServer};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// One server as STUN and TURN server (coturn on 3478): the answer to the Binding query
/// reaches the gatherer, not the TURN client, and yields the server-reflexive candidate.
#[test]
fn a_stun_answer_from_the_turn_server_reaches_the_gatherer() {
    use stun_proto::attribute::XorMappedAddress;
    use stun_proto::{Message, MessageBuilder, MessageType, Method};

    let server: SocketAddr = "198.51.100.20:3478".parse().unwrap();
    let base: SocketAddr = "192.168.1.2:5000".parse().unwrap();
    let mapped: SocketAddr = "203.0.113.7:40000".parse().unwrap();
    let config = AgentConfig {
        stun_servers: vec![server],
        turn_servers: vec![TurnServer {
            server,
            transport: TransportProtocol::Udp,
            username: "user".into(),
            password: "pass".into(),
        }],
        ..AgentConfig::default()
    };
    let mut agent = Agent::new(config, ChaCha20Rng::seed_from_u64(2));
    let s = agent.add_stream(1).unwrap();
    agent.stream_mut(s).unwrap().add_base(1, base).unwrap();
    let mut now = t0();
    agent.handle_gather(now, s).unwrap();
    let mut query = None;
    while query.is_none() && now < t0() + Duration::from_secs(1) {
        query = std::iter::from_fn(|| agent.poll_transmit())
            .find(|t| Message::parse(&t.payload).is_ok_and(|m| m.method() == Method::BINDING));
        now = agent
            .poll_timeout()
            .unwrap_or(now + Duration::from_millis(50));
        agent.handle_timeout(now);
    }
    let query = query.expect("a Binding query to the server");
    let tid = Message::parse(&query.payload).unwrap().transaction_id();
    let mut answer = MessageBuilder::new_bytes(MessageType::BINDING_SUCCESS, tid);
    answer.add(&XorMappedAddress(mapped)).unwrap();
    answer.add_fingerprint().unwrap();
    let answer = answer.into_bytes();
    agent.handle_datagram(now, TransportProtocol::Udp, server, base, &answer);
    let srflx = agent
        .stream(s)
        .unwrap()
        .local_candidates()
        .any(|c| c.kind == CandidateType::ServerReflexive && c.addr() == Some(mapped));
    assert!(srflx, "the server-reflexive candidate was gathered");
}

/// The allocation goes to the server over the transport its entry names.
#[test]
fn allocations_use_the_configured_transport() {
    let server: SocketAddr = "198.51.100.20:3478".parse().unwrap();
    for transport in [TransportProtocol::Udp, TransportProtocol::Tcp] {
        let config = AgentConfig {
            turn_servers: vec![TurnServer {
                server,
                transport,
                username: "user".into(),
                password: "pass".into(),
            }],
            ..AgentConfig::default()
        };
        let mut agent = Agent::new(config, ChaCha20Rng::seed_from_u64(1));
        let s = agent.add_stream(1).unwrap();
        let base = "192.0.2.1:5000".parse().unwrap();
        agent.stream_mut(s).unwrap().add_base(1, base).unwrap();
        let mut now = t0();
        agent.handle_gather(now, s).unwrap();
        let mut allocate = None;
        while allocate.is_none() && now < t0() + Duration::from_secs(1) {
            allocate =
                std::iter::from_fn(|| agent.poll_transmit()).find(|t| t.destination == server);
            now = agent
                .poll_timeout()
                .unwrap_or(now + Duration::from_millis(50));
            agent.handle_timeout(now);
        }
        let allocate = allocate.expect("an Allocate request to the server");
        assert_eq!(allocate.transport, transport);
        assert_eq!(allocate.source, base);
    }
}
