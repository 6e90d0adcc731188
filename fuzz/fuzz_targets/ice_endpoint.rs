//! The SFU endpoint under fuzzed sessions, datagrams, signed checks and time steps.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ice_proto::fuzzing::endpoint(data);
});
