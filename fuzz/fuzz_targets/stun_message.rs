//! STUN message parsing and validation: any bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| stun_proto::fuzzing::message(data));
