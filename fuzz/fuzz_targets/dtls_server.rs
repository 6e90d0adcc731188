//! A DTLS server (and client) fed arbitrary datagrams with time steps: byte 0 toggles the
//! cookie exchange, then 2-byte-length-prefixed datagrams.
#![no_main]

use std::sync::OnceLock;
use std::time::Instant;

static ORIGIN: OnceLock<Instant> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let origin = *ORIGIN.get_or_init(Instant::now);
    dtls_proto::fuzzing::server_datagrams(data, origin);
});
