//! Property tests: round trips, reassembly under any fragmentation and order, the replay
//! window against a model, and "any bytes parse to a value or an error, never a panic".

use std::collections::HashSet;

use dtls_proto::crypto::providers;
use dtls_proto::extensions::{Extensions, UseSrtp};
use dtls_proto::fragment::Reassembler;
use dtls_proto::fuzzing;
use dtls_proto::handshake::hello::ClientHello;
use dtls_proto::handshake::{FragmentView, HandshakeType, encode_fragment};
use dtls_proto::record::{ContentType, DTLS_1_2, RecordHeader, RecordView};
use dtls_proto::replay::{ReplayWindow, WINDOW};
use proptest::prelude::*;

fn extensions() -> impl Strategy<Value = Extensions> {
    (
        proptest::option::of(proptest::collection::vec(any::<u16>(), 1..8)),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 1..4)),
        proptest::option::of(proptest::collection::vec(any::<u16>(), 1..8)),
        proptest::option::of((
            proptest::collection::vec(any::<u16>(), 1..5),
            proptest::collection::vec(any::<u8>(), 0..4),
        )),
        any::<bool>(),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
    )
        .prop_map(|(g, f, s, srtp, ems, ri)| Extensions {
            supported_groups: g,
            ec_point_formats: f,
            signature_algorithms: s,
            use_srtp: srtp.map(|(profiles, mki)| UseSrtp { profiles, mki }),
            extended_master_secret: ems,
            renegotiation_info: ri,
        })
}

proptest! {
    #[test]
    fn client_hello_round_trips(
        random in any::<[u8; 32]>(),
        session_id in proptest::collection::vec(any::<u8>(), 0..32),
        cookie in proptest::collection::vec(any::<u8>(), 0..64),
        suites in proptest::collection::vec(any::<u16>(), 1..16),
        ext in extensions(),
    ) {
        let hello = ClientHello {
            version: DTLS_1_2,
            random,
            session_id,
            cookie,
            cipher_suites: suites,
            compression_methods: vec![0],
            extensions: ext,
        };
        let mut out = Vec::new();
        hello.encode(&mut out);
        prop_assert_eq!(ClientHello::parse(&out), Ok(hello));
    }

    #[test]
    fn record_header_round_trips(epoch in any::<u16>(), seq in 0u64..(1 << 48), body in proptest::collection::vec(any::<u8>(), 0..64)) {
        let header = RecordHeader { content_type: ContentType::ApplicationData, version: DTLS_1_2, epoch, sequence: seq };
        let mut out = Vec::new();
        header.encode(body.len(), &mut out);
        out.extend_from_slice(&body);
        let (view, rest) = RecordView::parse(&out).unwrap();
        prop_assert!(rest.is_empty());
        prop_assert_eq!(view.header, header);
        prop_assert_eq!(view.fragment, &body[..]);
    }

    #[test]
    fn any_fragmentation_in_any_order_reassembles(
        body in proptest::collection::vec(any::<u8>(), 1..600),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
        order in any::<prop::sample::Index>(),
        dup in any::<prop::sample::Index>(),
    ) {
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(body.len())).collect();
        points.push(0);
        points.push(body.len());
        points.sort_unstable();
        points.dedup();
        let mut frags: Vec<Vec<u8>> = points.windows(2).map(|w| {
            let mut out = Vec::new();
            encode_fragment(HandshakeType::Certificate, 0, body.len(), w[0], &body[w[0]..w[1]], &mut out);
            out
        }).collect();
        let n = frags.len();
        frags.rotate_left(order.index(n));
        let extra = frags[dup.index(n)].clone();
        frags.insert(dup.index(n), extra);
        let mut r = Reassembler::new(4096);
        for f in &frags {
            let (view, _) = FragmentView::parse(f).unwrap();
            r.insert(0, &view);
        }
        let msg = r.pop().unwrap();
        prop_assert_eq!(msg.body, body);
        prop_assert!(r.pop().is_none());
    }

    #[test]
    fn replay_window_matches_a_model(seqs in proptest::collection::vec(0u64..300, 1..200)) {
        let mut w = ReplayWindow::new();
        let mut seen = HashSet::new();
        let mut highest = None::<u64>;
        for s in seqs {
            let too_old = highest.is_some_and(|h| h >= WINDOW && s <= h - WINDOW);
            let fresh = !seen.contains(&s) && !too_old;
            prop_assert_eq!(w.is_fresh(s), fresh, "seq {}", s);
            if fresh {
                w.mark(s);
                seen.insert(s);
                highest = Some(highest.map_or(s, |h: u64| h.max(s)));
            }
        }
    }

    #[test]
    fn any_bytes_never_panic_the_parsers(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        fuzzing::record_layer(&data);
        fuzzing::handshake_message(&data);
        let _ = Extensions::parse(&data);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_datagrams_never_panic_the_machines(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        #[allow(clippy::disallowed_methods)] // an origin for the virtual clock
        let origin = std::time::Instant::now();
        for p in providers() {
            fuzzing::server_datagrams_with(p, &data, origin);
        }
    }

    #[test]
    fn mutated_handshake_datagrams_never_panic_the_machines(
        seed in 0usize..2,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("../fuzz/corpus/dtls_server/seed-{seed}"));
        let mut data = std::fs::read(path).unwrap();
        for (i, b) in flips {
            let i = i.index(data.len());
            data[i] ^= b;
        }
        #[allow(clippy::disallowed_methods)] // an origin for the virtual clock
        let origin = std::time::Instant::now();
        for p in providers() {
            fuzzing::server_datagrams_with(p, &data, origin);
        }
    }
}
