//! `stun_proto::fuzzing::stun_clients`: see its documentation for how the bytes are cut up.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| stun_proto::fuzzing::stun_clients(data));
