//! DTLS record layer and handshake fragment framing: any bytes as one datagram.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dtls_proto::fuzzing::record_layer(data));
