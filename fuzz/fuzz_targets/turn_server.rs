//! TURN server: arbitrary client and peer datagrams, signed requests and time steps (see stun_proto::turn::fuzzing::server for the format).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| stun_proto::turn::fuzzing::server(data));
