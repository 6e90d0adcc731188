//! An ICE agent fed datagrams, candidate lines, time steps and authenticated checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ice_proto::fuzzing::agent(data);
});
