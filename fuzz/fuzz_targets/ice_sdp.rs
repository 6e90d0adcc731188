//! RFC 8839 SDP lines (candidate, ice-ufrag, ice-pwd, ice-options, …): any bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ice_proto::fuzzing::sdp(data));
