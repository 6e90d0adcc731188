//! TURN client: arbitrary datagrams from the server or a stranger, and time steps.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| stun_proto::turn::fuzzing::client(data));
