//! The DTLS half of a [`Peer`]: its configuration, where the endpoint is (waiting for the
//! peer's fingerprint and for ICE connectivity, running, done), RFC 7983 demultiplexing of the
//! non-STUN data the agent hands back, the start of the handshake with the role from the
//! `setup` attributes (RFC 5763 §5) and the fingerprint check (RFC 8122 §5), and the DTLS
//! datagrams that wait for a pair to send them on.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use dtls_proto::{Config as DtlsConfig, Dtls, DtlsCertificate, PacketKind, PeerVerifier};
use rand_chacha::ChaCha20Rng;
use stun_proto::Transmit;

use super::{COMPONENT, DtlsRole, Event, MAX_PENDING_DATAGRAMS, Peer, PeerError, PeerState, Setup};

/// The first retransmission timeout of a flight when ICE measured no round trip on the
/// pair: RFC 9147 §5.8.2 recommends 400 ms for DTLS-SRTP (RFC 6347 §4.2.4.1 said 1 s).
pub(crate) const RETRANSMIT_INITIAL: Duration = Duration::from_millis(400);
/// The least first timeout: a round trip of microseconds (loopback) would otherwise resend
/// flights a busy machine has not yet had time to answer.
const RETRANSMIT_FLOOR: Duration = Duration::from_millis(50);
/// The timeout doubles up to this, not RFC 6347's 60 s: the path was verified by ICE a
/// moment ago and carries consent checks every few seconds, so a lost flight is loss, not
/// congestion, and a 32 s or 60 s wait only stalls the call (pion resends every 1 s, with
/// no backoff at all). `docs/peer.md` has the figures.
pub(crate) const RETRANSMIT_MAX: Duration = Duration::from_secs(2);
/// Retransmissions of one flight before the handshake fails: about 59 s of trying.
pub(crate) const MAX_RETRANSMITS: u32 = 30;

/// DTLS for a peer: our certificate and the role we signal.
#[derive(Debug)]
pub struct PeerDtlsConfig {
    /// The certificate whose fingerprint we signal.
    pub certificate: DtlsCertificate,
    /// The `setup` value we signal: `actpass` for an offerer, `active` or `passive` for an
    /// answerer.
    pub setup: Setup,
    /// The crypto provider.
    pub provider: &'static dyn dtls_proto::crypto::CryptoProvider,
    /// The DTLS versions we speak, in preference order (`Config::with_versions`): DTLS 1.2
    /// alone by default; with DTLS 1.3 too, 1.3 when the other side offers it.
    pub versions: Vec<dtls_proto::ProtocolVersion>,
}

/// Where DTLS is: each state holds what is valid then.
pub(super) enum DtlsPhase {
    /// DTLS is off: data goes as plain datagrams.
    Off,
    /// Waiting for the peer's fingerprint and for ICE connectivity; DTLS datagrams that
    /// arrive early are kept.
    AwaitStart {
        config: PeerDtlsConfig,
        remote: Option<(dtls_proto::Fingerprint, Setup)>,
        early: VecDeque<Vec<u8>>,
    },
    /// The handshake runs, then the association carries data.
    Running(Box<Dtls<ChaCha20Rng>>),
    /// Failed or closed: nothing more.
    Done,
}

impl Peer {
    /// Non-STUN data from the agent: RFC 7983 demultiplexing when DTLS is on.
    pub(super) fn handle_data(&mut self, now: Instant, data: Vec<u8>) {
        match &mut self.dtls {
            DtlsPhase::Off => self.push_event(Event::Data(data)),
            DtlsPhase::Running(dtls) => {
                if !matches!(
                    dtls.handle_datagram(now, &data),
                    dtls_proto::Handled::Consumed
                ) {
                    self.dropped += 1;
                }
            }
            DtlsPhase::AwaitStart { early, .. } => {
                if dtls_proto::classify(&data) == PacketKind::Dtls
                    && early.len() < MAX_PENDING_DATAGRAMS
                {
                    early.push_back(data);
                } else {
                    self.dropped += 1;
                }
            }
            DtlsPhase::Done => self.dropped += 1,
        }
    }

    /// Hands queued datagrams (DTLS records, or plain data without DTLS) to ICE while it has
    /// a pair to send them on.
    pub(super) fn flush_unsent(&mut self, now: Instant) -> bool {
        let mut moved = false;
        while let Some(payload) = self.unsent.front() {
            match self.agent.handle_send(now, self.stream, COMPONENT, payload) {
                Ok(t) => {
                    self.transmits.push_back(Transmit::from(t));
                    self.unsent.pop_front();
                    moved = true;
                }
                // No valid pair yet: keep the datagram for the first one.
                Err(e) if super::waits_for_pair(&e) => break,
                Err(_) => {
                    self.unsent.pop_front();
                    self.dropped += 1;
                }
            }
        }
        moved
    }

    /// Starts the handshake once ICE is connected and the peer's fingerprint is known.
    /// The first retransmission timeout of the handshake's flights: RFC 9147 §5.8.2 — "where
    /// there is external information (for instance, from an ICE handshake) about the RTT,
    /// implementations SHOULD use 1.5 times that RTT estimate" — from the round trip ICE
    /// measured on the best valid pair, which the handshake runs on; 400 ms without one.
    fn first_retransmit(&self) -> Duration {
        let rtt = self.agent.stream(self.stream).and_then(|st| {
            st.pairs()
                .filter(|p| p.component == COMPONENT && p.valid)
                .max_by_key(|p| p.priority)
                .and_then(|p| p.rtt)
        });
        rtt.map_or(RETRANSMIT_INITIAL, |rtt| {
            (rtt * 3 / 2).clamp(RETRANSMIT_FLOOR, RETRANSMIT_MAX)
        })
    }

    pub(super) fn maybe_start_dtls(&mut self, now: Instant) -> bool {
        let ready = matches!(
            &self.dtls,
            DtlsPhase::AwaitStart {
                remote: Some(_),
                ..
            }
        ) && self.component_connected
            && !self.state.is_terminal();
        if !ready {
            return false;
        }
        let DtlsPhase::AwaitStart {
            config,
            remote: Some((fingerprint, remote_setup)),
            early,
        } = std::mem::replace(&mut self.dtls, DtlsPhase::Done)
        else {
            return false;
        };
        let controlling = self.agent.is_controlling();
        let Some(client) = config.setup.is_client(remote_setup, controlling) else {
            let error = PeerError::SetupConflict {
                local: config.setup,
                remote: remote_setup,
            };
            self.finish(now, PeerState::Failed(error));
            return true;
        };
        // No HelloVerifyRequest: RFC 6347 §4.2.1 lets a server skip the cookie exchange
        // where amplification is not a problem, and DTLS only runs on a pair whose address
        // ICE's authenticated checks just proved; the exchange would cost a round trip.
        let dtls_config = DtlsConfig::new(
            config.provider,
            config.certificate,
            PeerVerifier::Fingerprint(fingerprint),
        )
        .with_versions(&config.versions)
        .with_retransmit(self.first_retransmit(), RETRANSMIT_MAX)
        .with_max_retransmits(MAX_RETRANSMITS)
        .with_server_cookie(false);
        let rng = super::child_rng(&mut self.dtls_rng);
        let dtls = if client {
            match Dtls::client(dtls_config, rng, now) {
                Ok(d) => d,
                Err(e) => {
                    self.finish(now, PeerState::Failed(PeerError::Dtls(e)));
                    return true;
                }
            }
        } else {
            Dtls::server(dtls_config, rng)
        };
        let mut dtls = Box::new(dtls);
        let role = if client {
            DtlsRole::Client
        } else {
            DtlsRole::Server
        };
        self.dtls_role = Some(role);
        self.push_event(Event::DtlsStarted { role });
        for datagram in early {
            dtls.handle_datagram(now, &datagram);
        }
        self.dtls = DtlsPhase::Running(dtls);
        true
    }

    /// Acts on what the DTLS endpoint reported: keys, data, close, failure.
    pub(super) fn on_dtls_event(&mut self, now: Instant, e: dtls_proto::Event) {
        match e {
            dtls_proto::Event::Connected(done) => {
                self.handshake = Some(done.clone());
                self.push_event(Event::DtlsConnected(done));
            }
            dtls_proto::Event::ApplicationData(data) => self.push_event(Event::Data(data)),
            dtls_proto::Event::PeerClosed => self.finish(now, PeerState::Finished),
            dtls_proto::Event::Failed(error) => {
                self.finish(now, PeerState::Failed(PeerError::Dtls(error)));
            }
            // A later dtls-proto event: nothing the transport acts on.
            _ => {}
        }
    }
}
