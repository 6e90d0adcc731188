//! DTLS 1.3 record layer (unified header, record number encryption, epochs 2 to 4, replay):
//! a suite selector and one datagram.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    dtls_proto::fuzzing::record_layer_13(data);
});
