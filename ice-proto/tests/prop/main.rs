//! Property tests: the SDP grammar round-trips, no input panics the parser or the agent,
//! and the priority formulas keep their order.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ice_proto::candidate::priority;
use ice_proto::{Candidate, CandidateType, ConnectionAddress, TcpType, Transport, pair_priority};
use proptest::prelude::*;

fn ice_chars(min: usize, max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[A-Za-z0-9+/]{{{min},{max}}}")).unwrap()
}

fn address() -> impl Strategy<Value = ConnectionAddress> {
    prop_oneof![
        any::<u32>().prop_map(|v| ConnectionAddress::Ip(IpAddr::V4(Ipv4Addr::from(v)))),
        any::<u128>().prop_map(|v| ConnectionAddress::Ip(IpAddr::V6(Ipv6Addr::from(v)))),
        "[a-f0-9]{8}-[a-f0-9]{4}\\.local".prop_map(ConnectionAddress::Fqdn),
    ]
}

fn candidate() -> impl Strategy<Value = Candidate> {
    (
        ice_chars(1, 32),
        1u16..=256,
        prop_oneof![Just(Transport::Udp), Just(Transport::Tcp)],
        any::<u32>(),
        address(),
        any::<u16>(),
        prop_oneof![
            Just(CandidateType::Host),
            Just(CandidateType::ServerReflexive),
            Just(CandidateType::PeerReflexive),
            Just(CandidateType::Relayed)
        ],
        proptest::option::of((address(), any::<u16>())),
        proptest::option::of(prop_oneof![
            Just(TcpType::Active),
            Just(TcpType::Passive),
            Just(TcpType::SimultaneousOpen)
        ]),
        proptest::collection::vec(("[a-z][a-z-]{0,10}", "[!-~]{1,12}"), 0..5),
    )
        .prop_map(
            |(
                foundation,
                component,
                transport,
                priority,
                address,
                port,
                kind,
                related,
                tcp_type,
                ext,
            )| {
                // Names the grammar gives a meaning to are not extensions.
                let extensions = ext
                    .into_iter()
                    .filter(|(n, _)| !matches!(n.as_str(), "raddr" | "rport" | "tcptype"))
                    .collect();
                Candidate {
                    foundation,
                    component,
                    transport,
                    priority,
                    address,
                    port,
                    kind,
                    related,
                    tcp_type,
                    extensions,
                }
            },
        )
}

proptest! {
    #[test]
    fn candidate_lines_round_trip(c in candidate()) {
        let line = c.to_string();
        let parsed: Candidate = line.parse().map_err(|e| TestCaseError::fail(format!("{line}: {e}")))?;
        prop_assert_eq!(&parsed, &c);
        // With the `a=` prefix and CRLF, as in an SDP body.
        let sdp: Candidate = format!("a={line}\r\n").parse().unwrap();
        prop_assert_eq!(sdp, c);
    }

    #[test]
    fn any_text_parses_or_fails_without_panic(s in "\\PC{0,200}") {
        ice_proto::fuzzing::sdp(s.as_bytes());
    }

    #[test]
    fn near_miss_lines_never_panic(c in candidate(), cut in 0usize..200, junk in "[ -~]{0,8}") {
        let mut line = c.to_string();
        line.truncate(cut.min(line.len()));
        line.push_str(&junk);
        ice_proto::fuzzing::sdp(line.as_bytes());
    }

    #[test]
    fn any_operations_never_panic_the_agent(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        ice_proto::fuzzing::agent(&data);
    }

    #[test]
    fn pair_priority_orders_by_the_weaker_candidate_first(
        g in 1u32..0x8000_0000, d in 1u32..0x8000_0000,
        g2 in 1u32..0x8000_0000, d2 in 1u32..0x8000_0000,
    ) {
        let (p, p2) = (pair_priority(g, d), pair_priority(g2, d2));
        if g.min(d) > g2.min(d2) {
            prop_assert!(p > p2);
        }
        // Both agents compute the same number: the controlling one's G is the other's D.
        prop_assert_eq!(p, pair_priority(g, d));
        // Distinct when the roles are swapped and the priorities differ (the tie bit).
        if g != d {
            prop_assert_ne!(pair_priority(g, d), pair_priority(d, g));
        }
    }

    #[test]
    fn candidate_priority_orders_by_type_then_local_preference(
        lp in any::<u16>(), lp2 in any::<u16>(), c in 1u16..=256,
    ) {
        let kinds = [CandidateType::Host, CandidateType::PeerReflexive, CandidateType::ServerReflexive, CandidateType::Relayed];
        for w in kinds.windows(2) {
            prop_assert!(priority(w[0].preference(), lp, c) > priority(w[1].preference(), lp2, c));
        }
        if lp > lp2 {
            prop_assert!(priority(100, lp, c) > priority(100, lp2, c));
        }
        prop_assert!(priority(126, lp, c) < 1 << 31);
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/ice_agent");
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

proptest! {
    /// The corpus seeds reach deep states (authenticated checks, selection, consent);
    /// mutations of them explore around those states.
    #[test]
    fn mutated_seeds_never_panic_the_agent(
        which in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let seeds = seeds();
        let mut data = seeds[which.index(seeds.len())].clone();
        for (at, byte, kind) in edits {
            let len = data.len();
            let i = at.index(len.max(1));
            match kind {
                0 if len > 0 => data[i.min(len - 1)] = byte,
                1 => data.insert(i.min(len), byte),
                _ if len > 0 => { data.remove(i.min(len - 1)); }
                _ => {}
            }
        }
        ice_proto::fuzzing::agent(&data);
    }
}
