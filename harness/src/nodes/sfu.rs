//! An SFU on one port as a simulator node: `ice_proto::endpoint::Endpoint` answering
//! ICE-lite for every session, and, with DTLS, one `dtls_proto::Dtls` server per session
//! demultiplexed by the first byte (RFC 7983). It answers every datagram of application data
//! on the session it came from — `ping <x>` with `pong <x>` as `harness peer` does, anything
//! else with itself — so that its peers see their pings answered.
//!
//! Signalling is the application's: [`SfuNode::admit`] takes a peer's first lines
//! (credentials, DTLS fingerprint) and returns the lines the peer needs — the session's
//! credentials, the one host candidate of the port, end-of-candidates and, with DTLS, the
//! fingerprint with `setup:passive` (the SFU is the DTLS server, as an answerer to a
//! browser's `actpass` usually is).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use dtls_proto::crypto::RustCrypto;
use dtls_proto::{
    Config as DtlsConfig, Dtls, DtlsCertificate, Event as DtlsEvent, PacketKind, PeerVerifier,
    classify,
};
use ice_proto::endpoint::{Endpoint, EndpointConfig, EndpointStats, Handled, SessionId};
use ice_proto::{Candidate, CandidateType, Credentials};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use stun_proto::{Transmit, TransportProtocol};

use crate::Node;
use crate::peer::dtls::{MAX_RETRANSMITS, RETRANSMIT_INITIAL, RETRANSMIT_MAX};
use crate::peer::{Setup, Signal};

/// One admitted peer.
struct Seat {
    dtls: Option<Dtls<ChaCha20Rng>>,
    /// When its handshake completed.
    secured_at: Option<Instant>,
    /// Datagrams of application data echoed.
    echoed: u64,
}

/// The SFU node.
pub struct SfuNode {
    endpoint: Endpoint<ChaCha20Rng>,
    port: SocketAddr,
    certificate: Option<DtlsCertificate>,
    rng: ChaCha20Rng,
    seats: HashMap<SessionId, Seat>,
    out: VecDeque<Transmit>,
}

impl SfuNode {
    /// An SFU listening on `port`, with DTLS or not, its randomness from `seed`.
    pub fn new(port: SocketAddr, dtls: bool, seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let certificate = dtls.then(|| super::dtls_config(&mut rng, Setup::Passive).certificate);
        let endpoint_rng = ChaCha20Rng::seed_from_u64(rng.next_u64());
        Self {
            endpoint: Endpoint::new(EndpointConfig::default(), endpoint_rng),
            port,
            certificate,
            rng,
            seats: HashMap::new(),
            out: VecDeque::new(),
        }
    }

    /// Admits the peer whose first signalling lines are `lines`: a session for its ufrag
    /// (and, with DTLS, a server pinned to its fingerprint); returns the lines for it.
    /// `None` when the lines lack the credentials (or, with DTLS, the fingerprint).
    pub fn admit(&mut self, now: Instant, lines: &[Signal]) -> Option<Vec<Signal>> {
        let ufrag = lines.iter().find_map(|s| match s {
            Signal::Credentials(c) => Some(c.ufrag.clone()),
            _ => None,
        })?;
        let fingerprint = lines.iter().find_map(|s| match s {
            Signal::Dtls { fingerprint, .. } => Some(*fingerprint),
            _ => None,
        });
        let dtls = match (&self.certificate, fingerprint) {
            (None, _) => None,
            (Some(certificate), Some(fingerprint)) => {
                let config = DtlsConfig::new(
                    &RustCrypto,
                    certificate.clone(),
                    PeerVerifier::Fingerprint(fingerprint),
                )
                // As the peers time their flights without an RTT yet (RFC 9147 §5.8.2); no
                // cookie: the session's path is proven by ICE already (RFC 6347 §4.2.1).
                .with_retransmit(RETRANSMIT_INITIAL, RETRANSMIT_MAX)
                .with_max_retransmits(MAX_RETRANSMITS)
                .with_server_cookie(false);
                let rng = ChaCha20Rng::seed_from_u64(self.rng.next_u64());
                Some(Dtls::server(config, rng))
            }
            (Some(_), None) => return None,
        };
        let session = self.endpoint.add_session(now, &ufrag).ok()?;
        let credentials: Credentials = self.endpoint.session(session)?.local_credentials().clone();
        let host = Candidate::new(CandidateType::Host, 1, self.port, self.port, None, 65_535);
        let mut answer = vec![
            Signal::Credentials(credentials),
            Signal::Candidate(host),
            Signal::EndOfCandidates,
        ];
        if let Some(certificate) = &self.certificate {
            answer.push(Signal::Dtls {
                fingerprint: certificate.fingerprint(),
                setup: Setup::Passive,
            });
        }
        let seat = Seat {
            dtls,
            secured_at: None,
            echoed: 0,
        };
        self.seats.insert(session, seat);
        Some(answer)
    }

    /// Sessions whose peer proved a path and whose consent holds.
    pub fn connected(&self) -> usize {
        (self.seats.keys())
            .filter(|id| self.endpoint.handle_send(**id, &[]).is_ok())
            .count()
    }

    /// Sessions whose DTLS handshake completed, and when each did.
    pub fn secured(&self) -> Vec<Instant> {
        self.seats.values().filter_map(|s| s.secured_at).collect()
    }

    /// Datagrams of application data echoed, over all sessions.
    pub fn echoed(&self) -> u64 {
        self.seats.values().map(|s| s.echoed).sum()
    }

    /// The endpoint's counters.
    pub fn stats(&self) -> &EndpointStats {
        self.endpoint.stats()
    }

    /// Sends `payload` to `session`'s peer on its path.
    fn send(&mut self, session: SessionId, payload: &[u8]) {
        if let Ok(t) = self.endpoint.handle_send(session, payload) {
            self.out.push_back(Transmit::from(t));
        }
    }

    /// Drains a session's DTLS machine: its records to the peer, its data echoed.
    fn pump(&mut self, now: Instant, session: SessionId) {
        let Some(seat) = self.seats.get_mut(&session) else {
            return;
        };
        let Some(dtls) = seat.dtls.as_mut() else {
            return;
        };
        let mut records = Vec::new();
        let mut echo = Vec::new();
        while let Some(event) = dtls.poll_event() {
            match event {
                DtlsEvent::Connected(_) => seat.secured_at = Some(now),
                DtlsEvent::ApplicationData(data) => echo.push(data),
                _ => {}
            }
        }
        for data in echo {
            if dtls.handle_send(now, &reply(&data)).is_ok() {
                seat.echoed += 1;
            }
        }
        while let Some(t) = dtls.poll_transmit() {
            records.push(t.payload);
        }
        for record in records {
            self.send(session, &record);
        }
    }
}

/// The answer to application data: `pong <x>` to `ping <x>`, the data itself otherwise.
fn reply(data: &[u8]) -> Vec<u8> {
    match data.strip_prefix(b"ping ") {
        Some(rest) => [b"pong ".as_slice(), rest].concat(),
        None => data.to_vec(),
    }
}

impl Node for SfuNode {
    fn handle_datagram(
        &mut self,
        now: Instant,
        transport: TransportProtocol,
        source: SocketAddr,
        destination: SocketAddr,
        payload: Bytes,
    ) {
        let Handled::Data { session, data } =
            self.endpoint
                .handle_datagram(now, transport, source, destination, &payload)
        else {
            return;
        };
        let dtls = (self.seats.get_mut(&session)).and_then(|seat| seat.dtls.as_mut());
        match dtls {
            Some(dtls) if classify(data) == PacketKind::Dtls => {
                dtls.handle_datagram(now, data);
                self.pump(now, session);
            }
            // Without DTLS, the application's datagrams are echoed as they are.
            None => {
                if let Some(seat) = self.seats.get_mut(&session) {
                    seat.echoed += 1;
                }
                self.send(session, &reply(data));
            }
            Some(_) => {}
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.endpoint.handle_timeout(now);
        let due: Vec<SessionId> = (self.seats.iter())
            .filter(|(_, s)| {
                (s.dtls.as_ref())
                    .and_then(Dtls::poll_timeout)
                    .is_some_and(|t| t <= now)
            })
            .map(|(id, _)| *id)
            .collect();
        for session in due {
            if let Some(dtls) = self.seats.get_mut(&session).and_then(|s| s.dtls.as_mut()) {
                dtls.handle_timeout(now);
            }
            self.pump(now, session);
        }
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.endpoint
            .poll_transmit()
            .or_else(|| self.out.pop_front())
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let dtls = (self.seats.values()).filter_map(|s| s.dtls.as_ref()?.poll_timeout());
        dtls.chain(self.endpoint.poll_timeout()).min()
    }
}
