//! A TURN client and server over a fuzzed network: delivery in any order, loss,
//! duplication, forged datagrams to the client, a peer, time steps and client commands.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| stun_proto::turn::fuzzing::pair(data));
