//! Two ICE agents over a fuzzed network: loss, duplication, reordering, forged and replayed
//! datagrams, time steps; invariants on both after every step.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ice_proto::fuzzing::pair(data);
});
