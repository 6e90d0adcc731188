//! A DTLS client and server over a fuzzed network (loss, duplication, reordering, bit flips,
//! forged datagrams, time steps, application data), invariants checked after every step; see
//! `dtls_proto::fuzzing::pair`.
#![no_main]

use std::sync::OnceLock;
use std::time::Instant;

static ORIGIN: OnceLock<Instant> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let origin = *ORIGIN.get_or_init(Instant::now);
    let _ = dtls_proto::fuzzing::pair(data, origin);
});
