//! TURN over TCP: a byte stream cut at arbitrary points through the STUN/ChannelData framer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| stun_proto::turn::fuzzing::framer(data));
