//! Property tests through the public surface: "any bytes parse to a value or an error, never a
//! panic", for the parsers and for both machines. Round trips, reassembly under any
//! fragmentation and the replay window model are unit tests beside their (private) types.

use dtls_proto::crypto::providers;
use dtls_proto::fuzzing;
use proptest::prelude::*;

proptest! {
    #[test]
    fn any_bytes_never_panic_the_parsers(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        fuzzing::record_layer(&data);
        fuzzing::handshake_message(&data);
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
