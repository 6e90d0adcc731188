//! Our machine and dimpl's over one seeded, time-ordered in-memory link.
//!
//! Both are sans-IO, so the test owns the clock: each datagram becomes a delivery at
//! `now + delay (+ jitter)`, each side is asked for its own deadline, and the run ends when the
//! stop condition holds or nothing is left to happen before the virtual-time limit. Lost and
//! reordered datagrams are only ever recovered by the machines' own retransmission rules: the
//! test never resends anything.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dtls_proto::{Dtls, Event, HandshakeComplete};
use rand_chacha::ChaCha20Rng;

pub use crate::wire::{Impairments, Wire, origin};

/// Index of our machine in [`Link::sides`] terms.
pub const OURS: usize = 0;
/// Index of dimpl's.
pub const THEIRS: usize = 1;

/// What dimpl reported, gathered from its `Output`s.
#[derive(Debug, Default)]
pub struct TheirReport {
    pub connected: bool,
    pub peer_certificate: Option<Vec<u8>>,
    pub keying_material: Option<(Vec<u8>, dimpl::SrtpProfile)>,
    pub application_data: Vec<Vec<u8>>,
    pub close_notify: bool,
    /// The fatal error dimpl returned, if any.
    pub error: Option<String>,
}

/// dimpl's `Dtls`, with the deadline it asked for last and what it reported.
pub struct Theirs {
    pub dtls: dimpl::Dtls,
    deadline: Option<Instant>,
    pub report: TheirReport,
}

impl Theirs {
    pub fn new(dtls: dimpl::Dtls) -> Self {
        Self {
            dtls,
            deadline: None,
            report: TheirReport::default(),
        }
    }

    /// Drains dimpl's outputs; returns the datagrams to send. dimpl ends every poll cycle with
    /// `Timeout`, its next deadline.
    fn drain(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 2048];
        loop {
            match self.dtls.poll_output(&mut buf) {
                dimpl::Output::Packet(p) => out.push(p.to_vec()),
                dimpl::Output::BufferTooSmall { needed } => buf.resize(needed, 0),
                dimpl::Output::Timeout(t) => {
                    self.deadline = Some(t);
                    return out;
                }
                dimpl::Output::Connected => self.report.connected = true,
                dimpl::Output::PeerCert(der) => self.report.peer_certificate = Some(der.to_vec()),
                dimpl::Output::KeyingMaterial(km, profile) => {
                    self.report.keying_material = Some((km.to_vec(), profile));
                }
                dimpl::Output::ApplicationData(d) => self.report.application_data.push(d.to_vec()),
                dimpl::Output::CloseNotify => self.report.close_notify = true,
                _ => {}
            }
        }
    }

    fn fail(&mut self, e: dimpl::Error) {
        self.report.error = Some(format!("{e:?}"));
        self.deadline = None;
    }

    fn is_failed(&self) -> bool {
        self.report.error.is_some()
    }
}

/// A dimpl config: pinned RNG seed (dimpl otherwise draws from the OS), the given groups and
/// DTLS 1.3 suites, defaults otherwise (1 s first retransmission timeout, client certificate
/// required, cookie on).
/// `aead_limit`, if set, is the number of records dimpl seals under one key before it sends a
/// KeyUpdate asking us to update too.
pub fn their_config(
    seed: u64,
    groups: &[dimpl::crypto::NamedGroup],
    suites: &[dimpl::crypto::Dtls13CipherSuite],
    aead_limit: Option<u64>,
) -> Arc<dimpl::Config> {
    let builder = dimpl::Config::builder()
        .dangerously_set_rng_seed(seed)
        .kx_groups(groups)
        .dtls13_cipher_suites(suites);
    let builder = match aead_limit {
        Some(limit) => builder.aead_encryption_limit(limit),
        None => builder,
    };
    Arc::new(builder.build().unwrap())
}

/// Which datagrams the wire drops: `f(from, index, payload)` true drops the `index`th datagram
/// `from` emitted.
pub type Filter = Box<dyn FnMut(usize, usize, &[u8]) -> bool>;

pub struct Link {
    pub now: Instant,
    pub ours: Dtls<ChaCha20Rng>,
    pub theirs: Theirs,
    pub our_events: Vec<Event>,
    /// Every datagram each side emitted, with the time it was emitted.
    pub sent: [Vec<(Instant, Vec<u8>)>; 2],
    pub wire: Wire,
    filter: Option<Filter>,
}

impl Link {
    /// Starts the run: dimpl's first output (a client's ClientHello) is taken at `now`.
    pub fn new(
        now: Instant,
        ours: Dtls<ChaCha20Rng>,
        theirs: dimpl::Dtls,
        impairments: Impairments,
        seed: u64,
    ) -> Self {
        let mut link = Self {
            now,
            ours,
            theirs: Theirs::new(theirs),
            our_events: Vec::new(),
            sent: [Vec::new(), Vec::new()],
            wire: Wire::new(impairments, seed),
            filter: None,
        };
        if let Err(e) = link.theirs.dtls.handle_timeout(now) {
            link.theirs.fail(e);
        }
        link
    }

    pub fn with_filter(mut self, f: impl FnMut(usize, usize, &[u8]) -> bool + 'static) -> Self {
        self.filter = Some(Box::new(f));
        self
    }

    fn flush(&mut self) {
        let mut ours = Vec::new();
        while let Some(t) = self.ours.poll_transmit() {
            ours.push(t.payload.to_vec());
        }
        while let Some(e) = self.ours.poll_event() {
            self.our_events.push(e);
        }
        let theirs = if self.theirs.is_failed() {
            Vec::new()
        } else {
            self.theirs.drain()
        };
        for (from, datagrams) in [(OURS, ours), (THEIRS, theirs)] {
            for payload in datagrams {
                let index = self.sent[from].len();
                self.sent[from].push((self.now, payload.clone()));
                let dropped = self
                    .filter
                    .as_mut()
                    .is_some_and(|f| f(from, index, &payload));
                if !dropped {
                    self.transmit(from, payload);
                }
            }
        }
    }

    fn transmit(&mut self, from: usize, payload: Vec<u8>) {
        self.wire.transmit(self.now, from, payload);
    }

    /// Runs until `stop` holds (true) or nothing happens before `limit` of virtual time (false).
    pub fn run(&mut self, limit: Duration, stop: impl Fn(&Link) -> bool) -> bool {
        let end = self.now + limit;
        loop {
            self.flush();
            if stop(self) {
                return true;
            }
            let next_delivery = self.wire.next_at();
            let timers = [self.ours.poll_timeout(), self.theirs.deadline];
            let next_timer = timers.iter().flatten().min().copied();
            let Some(next) = [next_delivery, next_timer].into_iter().flatten().min() else {
                return false;
            };
            if next > end {
                return false;
            }
            self.now = self.now.max(next);
            if next_delivery == Some(next) {
                let Some((to, payload)) = self.wire.pop() else {
                    continue;
                };
                if to == OURS {
                    self.ours.handle_datagram(self.now, &payload);
                } else if !self.theirs.is_failed() {
                    // dimpl's clock moves only through handle_timeout (its documented loop
                    // calls it with the arrival time before handle_packet).
                    let result = self
                        .theirs
                        .dtls
                        .handle_timeout(self.now)
                        .and_then(|()| self.theirs.dtls.handle_packet(&payload));
                    if let Err(e) = result {
                        self.theirs.fail(e);
                    }
                }
            } else {
                if self.ours.poll_timeout().is_some_and(|t| t <= self.now) {
                    self.ours.handle_timeout(self.now);
                }
                if self.theirs.deadline.is_some_and(|t| t <= self.now) {
                    self.theirs.deadline = None;
                    if let Err(e) = self.theirs.dtls.handle_timeout(self.now) {
                        self.theirs.fail(e);
                    }
                }
            }
        }
    }

    pub fn both_connected(&self) -> bool {
        self.ours.is_connected() && self.theirs.report.connected
    }

    /// Runs the handshake to completion on both sides, or until either side fails.
    pub fn connect(&mut self, limit: Duration) -> bool {
        self.run(limit, |l| {
            l.both_connected() || l.ours.is_failed() || l.theirs.is_failed()
        }) && self.both_connected()
    }

    pub fn connected_event(&self) -> Option<&HandshakeComplete> {
        self.our_events.iter().find_map(|e| match e {
            Event::Connected(done) => Some(&**done),
            _ => None,
        })
    }

    pub fn our_failure(&self) -> Option<&dtls_proto::Error> {
        self.our_events.iter().find_map(|e| match e {
            Event::Failed(err) => Some(err),
            _ => None,
        })
    }

    pub fn our_application_data(&self) -> Vec<Vec<u8>> {
        self.our_events
            .iter()
            .filter_map(|e| match e {
                Event::ApplicationData(d) => Some(d.clone()),
                _ => None,
            })
            .collect()
    }

    /// Sends one message each way and runs until both arrived.
    pub fn exchange(&mut self, ours: &[u8], theirs: &[u8], limit: Duration) -> bool {
        self.ours.handle_send(self.now, ours).unwrap();
        self.theirs.dtls.send_application_data(theirs).unwrap();
        self.run(limit, |l| {
            !l.our_application_data().is_empty() && !l.theirs.report.application_data.is_empty()
        })
    }
}

impl Link {
    /// Sends `n` messages each way, one pair at a time, each pair delivered before the next.
    pub fn exchange_many(&mut self, n: usize, limit: Duration) -> bool {
        for i in 0..n {
            let ours = self.our_application_data().len();
            let theirs = self.theirs.report.application_data.len();
            let message = format!("message {i}");
            self.ours.handle_send(self.now, message.as_bytes()).unwrap();
            self.theirs
                .dtls
                .send_application_data(message.as_bytes())
                .unwrap();
            let arrived = self.run(limit, |l| {
                l.our_application_data().len() > ours
                    && l.theirs.report.application_data.len() > theirs
            });
            if !arrived {
                return false;
            }
        }
        true
    }
}
