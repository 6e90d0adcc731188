//! DTLS 1.3 key shares (X25519MLKEM768, X25519, P-256): a group selector and a share.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dtls_proto::fuzzing::key_share(data));
