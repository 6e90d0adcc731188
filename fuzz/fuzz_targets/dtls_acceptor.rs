//! The stateless DTLS acceptor (DTLS 1.2 HelloVerifyRequest, DTLS 1.3 HelloRetryRequest) and
//! the servers it starts, fed arbitrary datagrams from two sources: the encoding of
//! `dtls_server`, whose corpus it can start from.
#![no_main]

use std::sync::OnceLock;
use std::time::Instant;

static ORIGIN: OnceLock<Instant> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let origin = *ORIGIN.get_or_init(Instant::now);
    dtls_proto::fuzzing::acceptor_datagrams(data, origin);
});
