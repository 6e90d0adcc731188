//! `stun_proto::fuzzing::binding_server`: see its documentation for how the bytes are cut up.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| stun_proto::fuzzing::binding_server(data));
