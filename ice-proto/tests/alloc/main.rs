//! Sending application data on a selected pair allocates nothing, and a connected agent
//! keeps little memory: checked with a counting global allocator once two agents are
//! connected.

// The counting global allocator implements `GlobalAlloc`, which is unsafe; it only delegates.
#[allow(unsafe_code)]
#[path = "../../../stun-proto/tests/common/counting_allocator.rs"]
mod counting_allocator;

use std::time::{Duration, Instant};

use ice_proto::{Agent, AgentConfig, ConnectionState, Event, Handled, StreamId};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use counting_allocator::{allocations_during, retained_by};

type A = Agent<ChaCha20Rng>;

fn agent(controlling: bool, seed: u64, bases: &[&str]) -> (A, StreamId) {
    let config = AgentConfig {
        controlling,
        ..AgentConfig::default()
    };
    let mut a = Agent::new(config, ChaCha20Rng::seed_from_u64(seed));
    let s = a.add_stream(1).unwrap();
    for base in bases {
        a.stream_mut(s)
            .unwrap()
            .add_base(1, base.parse().unwrap())
            .unwrap();
    }
    (a, s)
}

/// Hands `x`'s candidates and datagrams to `y` at once; whether anything moved.
fn exchange(now: Instant, x: &mut A, y: &mut A, sy: StreamId) -> bool {
    let mut moved = false;
    while let Some(event) = x.poll_event() {
        moved = true;
        if let Event::NewLocalCandidate { candidate, .. } = event {
            y.handle_remote_candidate(now, sy, candidate).unwrap();
        }
    }
    while let Some(t) = x.poll_transmit() {
        moved = true;
        y.handle_datagram(now, t.transport, t.source, t.destination, &t.payload);
    }
    moved
}

/// Two agents with these host bases, connected over a lossless instant link, then run on
/// until `until` after they both selected a pair (consent checks going both ways).
fn connected(a_bases: &[&str], b_bases: &[&str], until: Duration) -> (A, StreamId, A, Instant) {
    let (mut a, sa) = agent(true, 1, a_bases);
    let (mut b, sb) = agent(false, 2, b_bases);
    #[allow(clippy::disallowed_methods)] // the test's one real instant, origin of virtual time
    let mut now = Instant::now();
    let ca = a.stream(sa).unwrap().local_credentials().clone();
    let cb = b.stream(sb).unwrap().local_credentials().clone();
    a.handle_remote_credentials(now, sa, cb).unwrap();
    b.handle_remote_credentials(now, sb, ca).unwrap();
    a.handle_gather(now, sa).unwrap();
    b.handle_gather(now, sb).unwrap();
    let deadline = now + Duration::from_secs(30);
    let mut end = None;
    loop {
        while exchange(now, &mut a, &mut b, sb) | exchange(now, &mut b, &mut a, sa) {}
        if a.state() == ConnectionState::Completed && b.state() == ConnectionState::Completed {
            let end = *end.get_or_insert(now + until);
            if now >= end {
                return (a, sa, b, now);
            }
        } else {
            assert!(now < deadline, "the agents did not connect");
        }
        now = [a.poll_timeout(), b.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .expect("checks or consent are scheduled");
        a.handle_timeout(now);
        b.handle_timeout(now);
    }
}

/// Issue 15's memory goals: a connected agent retains at most 4 KB with one host candidate
/// each side (one pair) and 8 KB with three (nine pairs), its heap and the agent value
/// together, measured after 30 s of a call (consent rounds every 5 s or so, RFC 7675 §5.1).
#[test]
fn a_connected_agent_retains_at_most_4_kb_with_one_pair_and_8_kb_with_nine() {
    let cases: [(&[&str], &[&str], isize); 2] = [
        (&["192.0.2.1:5000"], &["198.51.100.2:6000"], 4096),
        (
            &["192.0.2.1:5000", "192.0.2.2:5000", "192.0.2.3:5000"],
            &[
                "198.51.100.2:6000",
                "198.51.100.3:6000",
                "198.51.100.4:6000",
            ],
            8192,
        ),
    ];
    for (a_bases, b_bases, bound) in cases {
        let (retained, (a, _, b, _)) =
            retained_by(|| connected(a_bases, b_bases, Duration::from_secs(30)));
        assert!(a.stats().consent_checks > 0 && b.stats().consent_checks > 0);
        let per_agent = retained / 2 + std::mem::size_of::<A>() as isize;
        assert!(
            per_agent <= bound,
            "{per_agent} bytes retained per connected agent with {} bases each (bound {bound})",
            a_bases.len()
        );
    }
}

#[test]
fn sending_on_a_direct_selected_pair_allocates_nothing() {
    let (mut a, sa, mut b, now) =
        connected(&["192.0.2.1:5000"], &["198.51.100.2:6000"], Duration::ZERO);

    let payload = [0x80u8; 160];
    let mut sent = None;
    let allocations = allocations_during(|| {
        for _ in 0..1_000 {
            let t = a.handle_send(now, sa, 1, &payload).unwrap();
            sent = Some((t.transport, t.source, t.destination, t.payload.len()));
        }
    });
    assert_eq!(allocations, 0, "1,000 sends on a direct pair allocated");

    // What was sent is the datagram the other side takes as data.
    let (transport, source, destination, len) = sent.unwrap();
    assert_eq!(len, payload.len());
    let received = b.handle_datagram(now, transport, source, destination, &payload);
    assert!(matches!(received, Handled::Data { component: 1, .. }));
}
