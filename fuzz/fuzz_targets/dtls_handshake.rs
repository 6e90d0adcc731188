//! DTLS handshake message bodies: the first byte selects the message type, the rest is its body.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dtls_proto::fuzzing::handshake_message(data));
