//! A seeded, time-ordered simulation of two DTLS endpoints over a lossy link.
//!
//! Each datagram becomes a delivery event at `now + delay`; each endpoint is asked for its own
//! deadline. The run ends when the stop condition holds or when nothing is left to happen before
//! the virtual-time limit: no iteration caps.

use std::time::{Duration, Instant};

use bytes::Bytes;
use dtls_proto::crypto::CryptoProvider;
use dtls_proto::{
    CertificateParams, Config, Dtls, DtlsCertificate, Event, Fingerprint, PeerVerifier,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

pub use crate::wire::origin;
use crate::wire::{Impairments, Wire};

pub const CLIENT: usize = 0;
pub const SERVER: usize = 1;

/// The link's impairments, as the handshake tests name them.
pub type Link = Impairments;

/// A pair of certificates and the configs that trust each other.
pub struct Pair {
    pub client: Config,
    pub server: Config,
}

pub fn certificate(provider: &'static dyn CryptoProvider, seed: u64) -> DtlsCertificate {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    DtlsCertificate::generate(provider, &mut rng, &CertificateParams::new(1_700_000_000)).unwrap()
}

pub fn pair(provider: &'static dyn CryptoProvider) -> Pair {
    let client_cert = certificate(provider, 100);
    let server_cert = certificate(provider, 200);
    let (cfp, sfp) = (client_cert.fingerprint(), server_cert.fingerprint());
    Pair {
        client: Config::new(provider, client_cert, PeerVerifier::Fingerprint(sfp)),
        server: Config::new(provider, server_cert, PeerVerifier::Fingerprint(cfp)),
    }
}

pub fn wrong_fingerprint() -> Fingerprint {
    Fingerprint::from([0xab; 32])
}

/// What the wire makes of each datagram, by direction and index, before link impairments: the
/// datagrams delivered instead (none drops it; several split it).
pub type Rewrite = Box<dyn FnMut(usize, usize, &[u8]) -> Vec<Vec<u8>>>;

pub struct Sim {
    pub now: Instant,
    pub nodes: [Dtls<ChaCha20Rng>; 2],
    pub events: [Vec<Event>; 2],
    /// Every datagram each side emitted, with the virtual time it was emitted.
    pub sent: [Vec<(Instant, Bytes)>; 2],
    wire: Wire,
    rewrite: Option<Rewrite>,
}

impl Sim {
    pub fn new(pair: Pair, link: Link, seed: u64) -> Self {
        let now = origin();
        let client = Dtls::client(pair.client, ChaCha20Rng::seed_from_u64(seed), now).unwrap();
        let server = Dtls::server(pair.server, ChaCha20Rng::seed_from_u64(seed + 1));
        Self {
            now,
            nodes: [client, server],
            events: [Vec::new(), Vec::new()],
            sent: [Vec::new(), Vec::new()],
            wire: Wire::new(link, seed ^ 0x5eed),
            rewrite: None,
        }
    }

    /// Changes the link's impairments from now on.
    pub fn set_link(&mut self, link: Link) {
        self.wire.impairments = link;
    }

    /// Drops datagrams for which `f(from, index, payload)` returns true.
    pub fn with_filter(self, mut f: impl FnMut(usize, usize, &[u8]) -> bool + 'static) -> Self {
        self.with_rewrite(move |from, index, payload| {
            if f(from, index, payload) {
                Vec::new()
            } else {
                vec![payload.to_vec()]
            }
        })
    }

    /// Delivers `f(from, index, payload)` in place of each datagram.
    pub fn with_rewrite(
        mut self,
        f: impl FnMut(usize, usize, &[u8]) -> Vec<Vec<u8>> + 'static,
    ) -> Self {
        self.rewrite = Some(Box::new(f));
        self
    }

    fn flush(&mut self) {
        for from in [CLIENT, SERVER] {
            while let Some(t) = self.nodes[from].poll_transmit() {
                let index = self.sent[from].len();
                self.sent[from].push((self.now, t.payload.clone()));
                let delivered = match &mut self.rewrite {
                    Some(f) => f(from, index, &t.payload),
                    None => vec![t.payload.to_vec()],
                };
                for payload in delivered {
                    self.transmit(from, payload);
                }
            }
            while let Some(e) = self.nodes[from].poll_event() {
                self.events[from].push(e);
            }
        }
    }

    /// Puts one datagram on the link from `from`, with its loss, duplication and delay.
    fn transmit(&mut self, from: usize, payload: Vec<u8>) {
        self.wire.transmit(self.now, from, payload);
    }

    /// Runs until `stop` holds (true) or nothing happens before `limit` of virtual time (false).
    pub fn run(&mut self, limit: Duration, stop: impl Fn(&Sim) -> bool) -> bool {
        let end = self.now + limit;
        loop {
            self.flush();
            if stop(self) {
                return true;
            }
            let next_delivery = self.wire.next_at();
            let next_timer = self.nodes.iter().filter_map(|n| n.poll_timeout()).min();
            let Some(next) = [next_delivery, next_timer].into_iter().flatten().min() else {
                return false;
            };
            if next > end {
                return false;
            }
            self.now = self.now.max(next);
            if next_delivery == Some(next) {
                if let Some((to, payload)) = self.wire.pop() {
                    self.nodes[to].handle_datagram(self.now, &payload);
                }
            } else {
                for node in &mut self.nodes {
                    if node.poll_timeout().is_some_and(|t| t <= self.now) {
                        node.handle_timeout(self.now);
                    }
                }
            }
        }
    }

    pub fn both_connected(&self) -> bool {
        self.nodes.iter().all(|n| n.is_connected())
    }

    /// Runs the handshake to completion on both sides.
    pub fn connect(&mut self, limit: Duration) -> bool {
        self.run(limit, |s| s.both_connected())
    }

    pub fn connected_event(&self, side: usize) -> Option<&dtls_proto::HandshakeComplete> {
        self.events[side].iter().find_map(|e| match e {
            Event::Connected(done) => Some(&**done),
            _ => None,
        })
    }

    pub fn failure(&self, side: usize) -> Option<&dtls_proto::Error> {
        self.events[side].iter().find_map(|e| match e {
            Event::Failed(err) => Some(err),
            _ => None,
        })
    }

    pub fn application_data(&self, side: usize) -> Vec<Vec<u8>> {
        self.events[side]
            .iter()
            .filter_map(|e| match e {
                Event::ApplicationData(d) => Some(d.clone()),
                _ => None,
            })
            .collect()
    }

    /// Delivers a datagram directly, outside the link.
    pub fn inject(&mut self, to: usize, payload: &[u8]) {
        self.nodes[to].handle_datagram(self.now, payload);
        self.flush();
    }
}
