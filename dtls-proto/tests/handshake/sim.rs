//! A seeded, time-ordered simulation of two DTLS endpoints over a lossy link.
//!
//! Each datagram becomes a delivery event at `now + delay`; each endpoint is asked for its own
//! deadline. The run ends when the stop condition holds or when nothing is left to happen before
//! the virtual-time limit: no iteration caps.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dtls_proto::crypto::CryptoProvider;
use dtls_proto::{
    CertificateParams, Config, Dtls, DtlsCertificate, Event, Fingerprint, PeerVerifier,
};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

pub const CLIENT: usize = 0;
pub const SERVER: usize = 1;

/// An origin for the virtual clock.
pub fn origin() -> Instant {
    #[allow(clippy::disallowed_methods)] // tests need an origin; only offsets from it matter
    Instant::now()
}

/// Link impairments, applied per datagram in each direction.
#[derive(Debug, Clone, Copy)]
pub struct Link {
    pub loss: f64,
    pub duplicate: f64,
    pub delay: Duration,
    pub jitter: Duration,
}

impl Link {
    pub fn perfect() -> Self {
        Self {
            loss: 0.0,
            duplicate: 0.0,
            delay: Duration::from_millis(10),
            jitter: Duration::ZERO,
        }
    }

    /// Loss, duplication and enough jitter to reorder datagrams.
    pub fn hostile(loss: f64) -> Self {
        Self {
            loss,
            duplicate: 0.1,
            delay: Duration::from_millis(10),
            jitter: Duration::from_millis(40),
        }
    }
}

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

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Delivery {
    at: Instant,
    order: u64,
    to: usize,
    payload: Vec<u8>,
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
    queue: BinaryHeap<Reverse<Delivery>>,
    link: Link,
    link_rng: ChaCha20Rng,
    order: u64,
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
            queue: BinaryHeap::new(),
            link,
            link_rng: ChaCha20Rng::seed_from_u64(seed ^ 0x5eed),
            order: 0,
            rewrite: None,
        }
    }

    /// Changes the link's impairments from now on.
    pub fn set_link(&mut self, link: Link) {
        self.link = link;
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

    fn chance(&mut self, p: f64) -> bool {
        (self.link_rng.next_u64() as f64 / u64::MAX as f64) < p
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
        if self.chance(self.link.loss) {
            return;
        }
        let copies = if self.chance(self.link.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let jitter_ns = self.link.jitter.as_nanos() as u64;
            let extra = if jitter_ns == 0 {
                0
            } else {
                self.link_rng.next_u64() % jitter_ns
            };
            let at = self.now + self.link.delay + Duration::from_nanos(extra);
            self.order += 1;
            self.queue.push(Reverse(Delivery {
                at,
                order: self.order,
                to: 1 - from,
                payload: payload.clone(),
            }));
        }
    }

    /// Runs until `stop` holds (true) or nothing happens before `limit` of virtual time (false).
    pub fn run(&mut self, limit: Duration, stop: impl Fn(&Sim) -> bool) -> bool {
        let end = self.now + limit;
        loop {
            self.flush();
            if stop(self) {
                return true;
            }
            let next_delivery = self.queue.peek().map(|Reverse(d)| d.at);
            let next_timer = self.nodes.iter().filter_map(|n| n.poll_timeout()).min();
            let Some(next) = [next_delivery, next_timer].into_iter().flatten().min() else {
                return false;
            };
            if next > end {
                return false;
            }
            self.now = self.now.max(next);
            if next_delivery == Some(next) {
                let Reverse(d) = self.queue.pop().unwrap();
                self.nodes[d.to].handle_datagram(self.now, &d.payload);
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
