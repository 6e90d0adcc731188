//! [`Dtls`]: one DTLS 1.2 or 1.3 association, either role, driven sans-IO.

use std::time::Instant;

use bytes::Bytes;
use rand_core::CryptoRng;

use crate::acceptor::AcceptedHello;
use crate::ack::AckView;
use crate::alert::{Alert, AlertDescription, AlertLevel};
use crate::cipher_suite::ProtocolVersion;
use crate::client;
use crate::client13;
use crate::config::Config;
use crate::demux::{PacketKind, classify};
use crate::engine::Engine;
use crate::epoch::{EPOCH_APPLICATION, RecordNumber};
use crate::error::{Error, SendError};
use crate::event::{Event, Stats};
use crate::fragment::{FragmentOutcome, HelloFragment, Message};
use crate::handshake::hello::ClientHello;
use crate::handshake::shared;
use crate::handshake::{FragmentView, HandshakeType};
use crate::initial_hello::InitialHello;
use crate::key_update::{KeyUpdateRequest, PostHandshake};
use crate::record::{ContentType, RecordView};
use crate::server;
use crate::server13;
use crate::unified_header::{WireRecord, wire_records};

/// Bound on the handshake record numbers remembered for the ACK of the client's last flight.
const MAX_RECEIVED_RECORDS: usize = 64;

/// A datagram to send to the peer over the path the association runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// One UDP payload: one or more DTLS records, at most the configured MTU for handshake
    /// flights.
    pub payload: Bytes,
}

/// What [`Dtls::handle_datagram`] did with its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Handled {
    /// The datagram was DTLS and was processed (records that failed checks are counted in
    /// [`Stats`] and dropped).
    Consumed,
    /// Not DTLS by its first byte (RFC 7983); returned to the caller untouched.
    NotDtls(PacketKind),
}

enum Phase {
    Client(client::State),
    Server(server::State),
    Client13(client13::State),
    Server13(server13::State),
    Connected,
    Closed,
    Failed,
}

/// One DTLS 1.2 (RFC 6347) or DTLS 1.3 (RFC 9147) association, client or server, as a
/// sans-IO state machine; the version is the one [`Config::versions`](crate::Config) allows.
///
/// # Drive loop
///
/// After creating it and after every `handle_*` call, drain [`poll_transmit`](Self::poll_transmit)
/// (send each payload to the peer) and [`poll_event`](Self::poll_event) until both return
/// `None`, then read [`poll_timeout`](Self::poll_timeout) and call
/// [`handle_timeout`](Self::handle_timeout) when that instant is reached. Calling
/// `handle_timeout` early or late is harmless.
///
/// The RNG `R` supplies randoms, ephemeral keys and the cookie secret; time only ever comes in
/// as `now`.
pub struct Dtls<R> {
    engine: Engine,
    rng: R,
    phase: Phase,
    /// The plaintext of the record being handled; its capacity serves every record.
    plaintext: Vec<u8>,
    /// A clear-text fatal alert or close_notify received during the handshake: anyone who
    /// knows the 5-tuple can send one, so it ends the handshake only if the peer then stays
    /// silent until our retransmission timer expires.
    unauthenticated_alert: Option<Alert>,
    /// DTLS 1.3: the numbers of the protected handshake records received, for the ACK.
    received_records: Vec<RecordNumber>,
    /// DTLS 1.3 after the handshake: our KeyUpdates and the ACKs we owe.
    post_handshake: PostHandshake,
}

impl<R: CryptoRng> Dtls<R> {
    /// A client; flight 1 (ClientHello) is queued at once.
    pub fn client(config: Config, mut rng: R, now: Instant) -> Result<Self, Error> {
        let plaintext = Vec::with_capacity(config.mtu);
        let mut engine = Engine::new(config, true);
        let phase = if engine.config.speaks(ProtocolVersion::Dtls13) {
            Phase::Client13(client13::start(&mut engine, &mut rng, now)?)
        } else {
            Phase::Client(client::start(&mut engine, &mut rng, now)?)
        };
        #[cfg(feature = "tracing")]
        tracing::info!(target: "dtls", role = "client", "handshake started: ClientHello sent");
        Ok(Self {
            engine,
            rng,
            phase,
            plaintext,
            unauthenticated_alert: None,
            received_records: Vec::new(),
            post_handshake: PostHandshake::default(),
        })
    }

    /// A server, stateless until a ClientHello with a valid cookie arrives.
    pub fn server(config: Config, mut rng: R) -> Self {
        let max_hello = config.max_client_hello_len;
        let plaintext = Vec::with_capacity(config.mtu);
        let engine = Engine::new(config, false);
        let state = server::start(&mut rng, max_hello);
        Self {
            engine,
            rng,
            phase: Phase::Server(state),
            plaintext,
            unauthenticated_alert: None,
            received_records: Vec::new(),
            post_handshake: PostHandshake::default(),
        }
    }

    /// A server for the client whose ClientHello `accepted` passed an
    /// [`Acceptor`](crate::Acceptor)'s cookie check: the handshake goes on from that
    /// ClientHello and the server's flight is queued at once (or [`Event::Failed`], when
    /// nothing in it can be agreed on). A DTLS 1.3 hello continues the transcript of the
    /// acceptor's HelloRetryRequest; `config` must be the one the acceptor took its
    /// preferences from ([`Acceptor::with_dtls13`](crate::Acceptor::with_dtls13)).
    pub fn accept(config: Config, rng: R, now: Instant, accepted: Box<AcceptedHello>) -> Self {
        let mut dtls = Self::server(config, rng);
        let Phase::Server(server::State::AwaitClientHello(state)) =
            std::mem::replace(&mut dtls.phase, Phase::Failed)
        else {
            return dtls;
        };
        let initial = InitialHello {
            record_seq: accepted.record_seq,
            message_seq: accepted.message.seq,
            hello: &accepted.hello,
            body: &accepted.message.body,
            cookie_verified: true,
            retry: accepted.retry.as_ref(),
        };
        if server13::offers_13(&dtls.engine.config, &accepted.hello) {
            let secret = *state.cookie_secret();
            match server13::handle_client_hello(
                &secret,
                &mut dtls.engine,
                &mut dtls.rng,
                now,
                initial,
            ) {
                // An acceptor without cookies let a hello through that lacks our group's
                // share: our own HelloRetryRequest went out, and the server waits statelessly.
                Ok(server13::Accepted::Retried) => {
                    dtls.phase = Phase::Server(server::State::AwaitClientHello(state));
                }
                Ok(server13::Accepted::Next(next)) => dtls.phase = Phase::Server13(next),
                Err(e) => dtls.fail(e),
            }
            return dtls;
        }
        match state.handle_client_hello(&mut dtls.engine, &mut dtls.rng, now, initial) {
            Ok(next) => dtls.phase = Phase::Server(next),
            Err(e) => dtls.fail(e),
        }
        dtls
    }

    /// Feeds one received datagram.
    pub fn handle_datagram(&mut self, now: Instant, datagram: &[u8]) -> Handled {
        match classify(datagram) {
            PacketKind::Dtls => {}
            other => return Handled::NotDtls(other),
        }
        let mut retransmit = false;
        // DTLS 1.2 records and DTLS 1.3's, clear text or unified header, in one framing.
        for record in wire_records(datagram) {
            if matches!(self.phase, Phase::Closed | Phase::Failed) {
                break;
            }
            let record = match record {
                Ok(r) => r,
                Err(_) => {
                    self.engine.stats.records_malformed += 1;
                    break;
                }
            };
            let mut plain = std::mem::take(&mut self.plaintext);
            let (content_type, epoch) = match record {
                WireRecord::Plaintext(record) => {
                    if self.is_stateless_hello(&record) {
                        self.plaintext = plain;
                        self.handle_initial_hello(now, &record);
                        continue;
                    }
                    if !self.engine.open_record(&record, &mut plain) {
                        self.plaintext = plain;
                        continue;
                    }
                    (record.header.content_type, record.header.epoch)
                }
                WireRecord::Ciphertext(view) => {
                    let Some(opened) = self.engine.open_record_13(&view, &mut plain) else {
                        self.plaintext = plain;
                        continue;
                    };
                    if opened.content_type == ContentType::Handshake {
                        if matches!(self.phase, Phase::Connected) {
                            // After the handshake every handshake record is ACKed (RFC 9147
                            // §7); a client reading the server's handshake epoch again
                            // resends its last flight instead (the server lacks our Finished).
                            if opened.number.epoch >= 3 || !self.engine.is_client {
                                self.post_handshake.note_received(opened.number);
                            }
                        } else if self.received_records.len() < MAX_RECEIVED_RECORDS {
                            self.received_records.push(opened.number);
                        }
                    }
                    // Epochs we read are 2 and 3 (and a few KeyUpdates beyond).
                    (
                        opened.content_type,
                        u16::try_from(opened.number.epoch).unwrap_or(u16::MAX),
                    )
                }
            };
            match content_type {
                ContentType::Handshake => {
                    self.handle_handshake(now, epoch, &plain, &mut retransmit);
                }
                ContentType::ChangeCipherSpec => {
                    // Epoch 1 read keys are installed when derived; CCS carries no state here.
                    if plain != [1] {
                        self.engine.stats.records_malformed += 1;
                    }
                }
                ContentType::Alert => self.handle_alert(epoch, &plain),
                // Only ever from a protected DTLS 1.3 record.
                ContentType::Ack => self.handle_ack(now, &plain),
                ContentType::ApplicationData => {
                    if matches!(self.phase, Phase::Connected)
                        && self.engine.is_application_epoch(epoch)
                    {
                        // Handed out whole: the next record gets a buffer of its own.
                        self.engine
                            .push_event(Event::ApplicationData(std::mem::take(&mut plain)));
                    } else {
                        self.engine.stats.records_unexpected_epoch += 1;
                    }
                }
            }
            self.plaintext = plain;
        }
        if retransmit && !matches!(self.phase, Phase::Closed | Phase::Failed) {
            if let Err(e) = self.engine.retransmit_on_request(now) {
                self.fail(e);
            }
        }
        let acks = self.post_handshake.take_acks();
        if !acks.is_empty() && matches!(self.phase, Phase::Connected) {
            self.engine.send_ack(&acks);
        }
        Handled::Consumed
    }

    /// Time has reached [`poll_timeout`](Self::poll_timeout): retransmit the current flight
    /// with a doubled timer, or fail once `max_retransmits` is exhausted.
    pub fn handle_timeout(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Closed | Phase::Failed) || !self.engine.timer.is_expired(now)
        {
            return;
        }
        if let Some(alert) = self.unauthenticated_alert.take() {
            // The peer said it stopped, and nothing from it since: believe it.
            self.apply_alert(alert);
            return;
        }
        if self.engine.timer.expiries() >= self.engine.config.max_retransmits {
            self.fail(Error::HandshakeTimeout);
            return;
        }
        self.engine.timer.on_expired(now);
        if let Err(e) = self.engine.retransmit() {
            self.fail(e);
        }
    }

    /// Sends application data in one record (after [`Event::Connected`]).
    pub fn handle_send(&mut self, _now: Instant, data: &[u8]) -> Result<(), SendError> {
        match self.phase {
            Phase::Connected => {}
            Phase::Closed | Phase::Failed => return Err(SendError::Closed),
            _ => return Err(SendError::NotConnected),
        }
        self.engine.send_application_data(data)
    }

    /// DTLS 1.3: updates our sending keys with a KeyUpdate (RFC 9147 §8, RFC 8446 §4.6.3),
    /// asking the peer to update its own too when `request_peer_update`. The KeyUpdate is
    /// retransmitted until the peer ACKs it, and only then do our records move to the next
    /// epoch. One is in flight at a time: a call while one (or the client's last handshake
    /// flight) still waits for its ACK is held until that ACK.
    pub fn handle_key_update(
        &mut self,
        now: Instant,
        request_peer_update: bool,
    ) -> Result<(), SendError> {
        match self.phase {
            Phase::Connected => {}
            Phase::Closed | Phase::Failed => return Err(SendError::Closed),
            _ => return Err(SendError::NotConnected),
        }
        if !self.engine.is_dtls13() {
            return Err(SendError::KeyUpdateUnsupported);
        }
        let request = if request_peer_update {
            KeyUpdateRequest::Requested
        } else {
            KeyUpdateRequest::NotRequested
        };
        self.start_key_update(now, request)?;
        Ok(())
    }

    /// Closes the association with close_notify (RFC 5246 §7.2.1).
    pub fn handle_close(&mut self, _now: Instant) {
        if matches!(self.phase, Phase::Closed | Phase::Failed) {
            return;
        }
        self.engine.send_alert(Alert::close_notify());
        self.engine.clear_flight();
        self.phase = Phase::Closed;
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.engine
            .poll_transmit()
            .map(|payload| Transmit { payload })
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.engine.poll_event()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called; `None` when no timer runs.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Closed | Phase::Failed => None,
            _ => self.engine.timer.deadline(),
        }
    }

    /// True for the client role.
    pub fn is_client(&self) -> bool {
        self.engine.is_client
    }

    /// DTLS 1.3: the epochs application data is written and read in, `(write, read)`: 3
    /// after the handshake, one more per KeyUpdate in that direction (RFC 9147 §6.1).
    pub fn application_epochs(&self) -> Option<(u64, u64)> {
        self.engine.application_epochs_13()
    }

    /// True once the handshake completed and until close or failure.
    pub fn is_connected(&self) -> bool {
        matches!(self.phase, Phase::Connected)
    }

    /// True after close_notify was sent or received.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// True after a fatal error.
    pub fn is_failed(&self) -> bool {
        matches!(self.phase, Phase::Failed)
    }

    /// Drop counters.
    pub fn stats(&self) -> Stats {
        self.engine.stats
    }

    /// RFC 5705 keying material exporter; `None` before the handshake completes.
    pub fn export_keying_material(
        &self,
        label: &[u8],
        context: Option<&[u8]>,
        len: usize,
    ) -> Option<Vec<u8>> {
        if !self.is_connected() {
            return None;
        }
        if self.engine.is_dtls13() {
            return self.engine.export_13(label, context, len);
        }
        let s = self.engine.session.as_ref()?;
        Some(crate::prf::export_keying_material(
            self.engine.config.provider,
            s,
            label,
            context,
            len,
        ))
    }

    // ---- private -------------------------------------------------------------------------

    fn is_stateless_hello(&self, record: &RecordView<'_>) -> bool {
        matches!(
            self.phase,
            Phase::Server(server::State::AwaitClientHello(_))
        ) && record.header.epoch == 0
            && record.header.content_type == ContentType::Handshake
    }

    /// Handshake records to the server before its first ClientHello: fragments are put
    /// together (RFC 6347 §4.2.3), and the complete ClientHello is handed to the state.
    fn handle_initial_hello(&mut self, now: Instant, record: &RecordView<'_>) {
        self.engine.stats.records_received += 1;
        let Phase::Server(server::State::AwaitClientHello(state)) = &mut self.phase else {
            return;
        };
        let mut rest = record.fragment;
        let mut complete = None;
        while !rest.is_empty() && complete.is_none() {
            let Ok((frag, tail)) = FragmentView::parse(rest) else {
                self.engine.stats.fragments_dropped += 1;
                return;
            };
            rest = tail;
            match state.assembler.insert(&frag) {
                HelloFragment::Complete(message) => complete = Some(message),
                HelloFragment::Buffered => {}
                HelloFragment::Dropped(_) => self.engine.stats.fragments_dropped += 1,
            }
        }
        let Some(message) = complete else {
            return;
        };
        // Garbage before the cookie round trip is dropped: the server keeps no state yet.
        let Ok(hello) = ClientHello::parse(&message.body) else {
            self.engine.stats.fragments_dropped += 1;
            return;
        };
        if server13::offers_13(&self.engine.config, &hello) {
            let secret = *state.cookie_secret();
            let initial = InitialHello {
                record_seq: record.header.sequence,
                message_seq: message.seq,
                hello: &hello,
                body: &message.body,
                cookie_verified: false,
                retry: None,
            };
            match server13::handle_client_hello(
                &secret,
                &mut self.engine,
                &mut self.rng,
                now,
                initial,
            ) {
                // Stateless: the HelloRetryRequest went out, nothing else changed.
                Ok(server13::Accepted::Retried) => {}
                Ok(server13::Accepted::Next(next)) => self.phase = Phase::Server13(next),
                Err(e) => self.fail(e),
            }
            return;
        }
        if !self.engine.config.speaks(ProtocolVersion::Dtls12) {
            // A DTLS 1.2 ClientHello to a server that only speaks 1.3.
            self.fail(Error::UnsupportedVersion(hello.version));
            return;
        }
        let Phase::Server(server::State::AwaitClientHello(state)) =
            std::mem::replace(&mut self.phase, Phase::Failed)
        else {
            return;
        };
        match state.handle_client_hello(
            &mut self.engine,
            &mut self.rng,
            now,
            InitialHello {
                record_seq: record.header.sequence,
                message_seq: message.seq,
                hello: &hello,
                body: &message.body,
                cookie_verified: false,
                retry: None,
            },
        ) {
            Ok(next) => {
                #[cfg(feature = "tracing")]
                if matches!(next, server::State::AwaitCertificate(_)) {
                    tracing::info!(
                        target: "dtls",
                        role = "server",
                        bytes = message.body.len(),
                        "handshake started: ClientHello accepted, flight 4 sent"
                    );
                }
                self.phase = Phase::Server(next);
            }
            Err(e) => self.fail(e),
        }
    }

    fn handle_handshake(&mut self, now: Instant, epoch: u16, plain: &[u8], retransmit: &mut bool) {
        let mut rest = plain;
        while !rest.is_empty() {
            let frag = match FragmentView::parse(rest) {
                Ok((f, tail)) => {
                    rest = tail;
                    f
                }
                Err(_) => {
                    self.engine.stats.fragments_dropped += 1;
                    return;
                }
            };
            if matches!(self.phase, Phase::Connected) {
                if self.engine.is_dtls13() && u64::from(epoch) >= EPOCH_APPLICATION {
                    // A post-handshake message (KeyUpdate, NewSessionTicket), or a fragment
                    // of one already handled: its record is ACKed either way.
                    match self.engine.reassembler.insert(epoch, &frag) {
                        FragmentOutcome::Buffered | FragmentOutcome::Retransmission => {}
                        _ => self.engine.stats.fragments_dropped += 1,
                    }
                } else if frag.message_seq < self.engine.reassembler.next_seq() {
                    // The peer resent its last flight. A DTLS 1.3 server ACKed the client's
                    // records already; everyone else resends their own last flight.
                    if self.engine.is_client || !self.engine.is_dtls13() {
                        *retransmit = true;
                    }
                } else if epoch == 1 {
                    // A new handshake under protection: renegotiation, refused (RFC 5746 §4.5).
                    self.engine.send_alert(Alert {
                        level: AlertLevel::Warning,
                        description: AlertDescription::NoRenegotiation,
                    });
                } else {
                    self.engine.stats.fragments_dropped += 1;
                }
                continue;
            }
            match self.engine.reassembler.insert(epoch, &frag) {
                FragmentOutcome::Buffered => {}
                FragmentOutcome::Retransmission => *retransmit = true,
                _ => self.engine.stats.fragments_dropped += 1,
            }
        }
        if matches!(self.phase, Phase::Connected) {
            if self.engine.is_dtls13() {
                self.handle_post_handshake(now);
            }
            return;
        }
        while let Some(msg) = self.engine.reassembler.pop() {
            let admitted = match &self.phase {
                Phase::Client(state) => shared::is_well_formed(&msg) && state.waits_for(&msg),
                Phase::Server(state) => shared::is_well_formed(&msg) && state.waits_for(&msg),
                Phase::Client13(state) => state.admits(&msg),
                Phase::Server13(state) => state.admits(&msg),
                _ => false,
            };
            if !admitted {
                self.engine.stats.handshake_messages_dropped += 1;
                self.engine.reassembler.refuse(msg.seq);
                break;
            }
            self.step(now, msg);
            if !self.is_handshaking() {
                break;
            }
        }
    }

    fn step(&mut self, now: Instant, msg: Message) {
        let phase = std::mem::replace(&mut self.phase, Phase::Failed);
        let next = match phase {
            Phase::Client(state) => {
                match state.handle_message(&mut self.engine, &mut self.rng, now, msg) {
                    Ok(client::Step::Next(s)) => Ok(Phase::Client(s)),
                    Ok(client::Step::Done(done)) => {
                        self.engine.push_event(Event::Connected(done));
                        Ok(Phase::Connected)
                    }
                    Err(e) => Err(e),
                }
            }
            Phase::Server(state) => match state.handle_message(&mut self.engine, now, msg) {
                Ok(server::Step::Next(s)) => Ok(Phase::Server(s)),
                Ok(server::Step::Done(done)) => {
                    self.engine.push_event(Event::Connected(done));
                    Ok(Phase::Connected)
                }
                Err(e) => Err(e),
            },
            Phase::Client13(state) => {
                match state.handle_message(&mut self.engine, &mut self.rng, now, msg) {
                    Ok(client13::Step::Next(s)) => Ok(Phase::Client13(s)),
                    Ok(client13::Step::FellBack(s)) => Ok(Phase::Client(s)),
                    Ok(client13::Step::Done(done)) => {
                        self.engine.push_event(Event::Connected(done));
                        Ok(Phase::Connected)
                    }
                    Err(e) => Err(e),
                }
            }
            Phase::Server13(state) => {
                match state.handle_message(&mut self.engine, now, msg, &self.received_records) {
                    Ok(server13::Step::Next(s)) => Ok(Phase::Server13(s)),
                    Ok(server13::Step::Done(done)) => {
                        self.engine.push_event(Event::Connected(done));
                        Ok(Phase::Connected)
                    }
                    Err(e) => Err(e),
                }
            }
            other => Ok(other),
        };
        match next {
            Ok(phase) => {
                // The peer is alive and answering: an earlier clear-text alert was not its.
                self.unauthenticated_alert = None;
                self.phase = phase;
            }
            Err(e) => self.fail(e),
        }
    }

    fn handle_alert(&mut self, epoch: u16, plain: &[u8]) {
        let Ok(alert) = Alert::parse(plain) else {
            self.engine.stats.records_malformed += 1;
            return;
        };
        // After the handshake only protected alerts count: a forged clear-text alert must not
        // tear down an authenticated association. The stateless server has nothing to tear
        // down and ignores alerts too.
        let stateless = matches!(
            self.phase,
            Phase::Server(server::State::AwaitClientHello(_))
        );
        if stateless || (matches!(self.phase, Phase::Connected) && epoch == 0) {
            self.engine.stats.alerts_ignored += 1;
            return;
        }
        let handshaking = self.is_handshaking();
        let ends =
            alert.description == AlertDescription::CloseNotify || alert.level == AlertLevel::Fatal;
        if handshaking && epoch == 0 {
            // Unauthenticated: held until the retransmission timer shows the peer is silent.
            self.engine.stats.alerts_ignored += 1;
            if ends {
                self.unauthenticated_alert = Some(alert);
            }
            return;
        }
        self.apply_alert(alert);
    }

    /// True during a handshake of either version.
    fn is_handshaking(&self) -> bool {
        matches!(
            self.phase,
            Phase::Client(_) | Phase::Server(_) | Phase::Client13(_) | Phase::Server13(_)
        )
    }

    /// A DTLS 1.3 ACK (RFC 9147 §7): once connected, an ACK naming a record of our last
    /// flight ends its retransmissions (the client's final flight waits for exactly this).
    /// After the handshake the same ends our KeyUpdate: only now do our records move to the
    /// next epoch (RFC 9147 §8), and a KeyUpdate held meanwhile goes out.
    fn handle_ack(&mut self, now: Instant, plain: &[u8]) {
        let Ok(ack) = AckView::parse(plain) else {
            self.engine.stats.records_malformed += 1;
            return;
        };
        if matches!(self.phase, Phase::Connected) && self.engine.acknowledges_flight(&ack) {
            self.engine.clear_flight();
            if self.post_handshake.on_acknowledged() {
                if let Err(e) = self.engine.update_write_keys_13() {
                    self.fail(e);
                    return;
                }
            }
            if let Some(request) = self.post_handshake.take_queued() {
                if let Err(e) = self.start_key_update(now, request) {
                    self.fail(e);
                }
            }
        }
    }

    /// Sends our KeyUpdate in the current application epoch, on the retransmission timer,
    /// or holds it while a flight of ours still waits for its ACK.
    fn start_key_update(&mut self, now: Instant, request: KeyUpdateRequest) -> Result<(), Error> {
        if self.post_handshake.is_in_flight() || self.engine.timer.deadline().is_some() {
            self.post_handshake.queue(request);
            return Ok(());
        }
        self.engine.begin_flight();
        self.engine
            .set_flight_epoch(self.engine.application_epoch());
        self.engine
            .push_handshake(HandshakeType::KeyUpdate, false, |_, o| {
                o.push(request.to_byte())
            })?;
        self.engine.send_flight(now, true)?;
        self.post_handshake.on_sent();
        Ok(())
    }

    /// DTLS 1.3 handshake messages after the handshake, complete and in order: a KeyUpdate
    /// moves the peer's epoch on (and asks for ours when requested, RFC 8446 §4.6.3); a
    /// NewSessionTicket is ignored, as we never resume; anything else is dropped. Each record
    /// was ACKed whatever it held.
    fn handle_post_handshake(&mut self, now: Instant) {
        while let Some(msg) = self.engine.reassembler.pop() {
            match msg.msg_type {
                HandshakeType::KeyUpdate => {
                    let request = match KeyUpdateRequest::parse(&msg.body) {
                        Ok(r) => r,
                        Err(e) => return self.fail(Error::MalformedMessage(e)),
                    };
                    if let Err(e) = self.engine.update_read_keys_13() {
                        return self.fail(e);
                    }
                    if request == KeyUpdateRequest::Requested {
                        if let Err(e) = self.start_key_update(now, KeyUpdateRequest::NotRequested) {
                            return self.fail(e);
                        }
                    }
                }
                HandshakeType::NewSessionTicket => self.engine.stats.session_tickets_ignored += 1,
                _ => self.engine.stats.handshake_messages_dropped += 1,
            }
        }
    }

    /// Acts on an alert we believe: close_notify closes, a fatal alert fails.
    fn apply_alert(&mut self, alert: Alert) {
        if alert.description == AlertDescription::CloseNotify {
            self.engine.send_alert(Alert::close_notify());
            self.engine.clear_flight();
            self.engine.push_event(Event::PeerClosed);
            self.phase = Phase::Closed;
        } else if alert.level == AlertLevel::Fatal {
            self.engine.clear_flight();
            self.engine
                .push_event(Event::Failed(Error::AlertReceived(alert.description)));
            self.phase = Phase::Failed;
        } else {
            self.engine.stats.alerts_ignored += 1;
        }
    }

    fn fail(&mut self, error: Error) {
        if let Some(description) = error.alert() {
            self.engine.send_alert(Alert::fatal(description));
        }
        self.engine.clear_flight();
        self.engine.push_event(Event::Failed(error));
        self.phase = Phase::Failed;
    }
}

impl<R> std::fmt::Debug for Dtls<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let phase = match &self.phase {
            Phase::Client(_) => "client handshake",
            Phase::Server(_) => "server handshake",
            Phase::Client13(_) => "client DTLS 1.3 handshake",
            Phase::Server13(_) => "server DTLS 1.3 handshake",
            Phase::Connected => "connected",
            Phase::Closed => "closed",
            Phase::Failed => "failed",
        };
        f.debug_struct("Dtls")
            .field("phase", &phase)
            .field("stats", &self.engine.stats)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;
    use crate::certificate::{CertificateParams, DtlsCertificate, PeerVerifier};
    use crate::crypto::providers;
    use crate::handshake::HandshakeType;

    /// Delivers datagrams both ways until neither side has anything to send.
    fn exchange(a: &mut Dtls<ChaCha20Rng>, b: &mut Dtls<ChaCha20Rng>, now: Instant) {
        loop {
            let mut quiet = true;
            while let Some(t) = a.poll_transmit() {
                b.handle_datagram(now, &t.payload);
                quiet = false;
            }
            while let Some(t) = b.poll_transmit() {
                a.handle_datagram(now, &t.payload);
                quiet = false;
            }
            if quiet {
                return;
            }
        }
    }

    #[test]
    fn renegotiation_is_refused_with_a_warning() {
        for p in providers() {
            let now = crate::test_instant();
            let mut rng = ChaCha20Rng::seed_from_u64(1);
            let params = CertificateParams::new(0);
            let c = DtlsCertificate::generate(p, &mut rng, &params).unwrap();
            let s = DtlsCertificate::generate(p, &mut rng, &params).unwrap();
            let (cfp, sfp) = (c.fingerprint(), s.fingerprint());
            let ccfg = Config::new(p, c, PeerVerifier::Fingerprint(sfp));
            let scfg = Config::new(p, s, PeerVerifier::Fingerprint(cfp));
            let mut client = Dtls::client(ccfg, ChaCha20Rng::seed_from_u64(2), now).unwrap();
            let mut server = Dtls::server(scfg, ChaCha20Rng::seed_from_u64(3));
            exchange(&mut client, &mut server, now);
            assert!(
                client.is_connected() && server.is_connected(),
                "{}",
                p.name()
            );

            // The client starts a new handshake under epoch 1 protection.
            let next_seq = client.engine.reassembler.next_seq();
            client
                .engine
                .set_next_message_seq(next_seq.wrapping_add(10));
            client.engine.begin_flight();
            client.engine.push_change_cipher_spec();
            client
                .engine
                .push_handshake(HandshakeType::ClientHello, false, |_, o| {
                    o.extend_from_slice(&[0; 40])
                })
                .unwrap();
            client.engine.send_flight(now, false).unwrap();
            exchange(&mut client, &mut server, now);

            assert!(server.is_connected() && client.is_connected());
            // The server answered with a protected no_renegotiation warning, which the client
            // read and ignored.
            assert_eq!(client.stats().alerts_ignored, 1, "{}", p.name());
        }
    }

    /// A NewSessionTicket after a DTLS 1.3 handshake (RFC 8446 §4.6.1) is ACKed and ignored:
    /// the sender's retransmissions stop, nothing else changes, and a retransmitted copy is
    /// ACKed again without being counted twice.
    #[test]
    fn a_new_session_ticket_is_acknowledged_and_ignored() {
        for p in providers() {
            let now = crate::test_instant();
            let mut rng = ChaCha20Rng::seed_from_u64(1);
            let params = CertificateParams::new(0);
            let c = DtlsCertificate::generate(p, &mut rng, &params).unwrap();
            let s = DtlsCertificate::generate(p, &mut rng, &params).unwrap();
            let (cfp, sfp) = (c.fingerprint(), s.fingerprint());
            let v13 = [ProtocolVersion::Dtls13];
            let ccfg = Config::new(p, c, PeerVerifier::Fingerprint(sfp)).with_versions(&v13);
            let scfg = Config::new(p, s, PeerVerifier::Fingerprint(cfp)).with_versions(&v13);
            let mut client = Dtls::client(ccfg, ChaCha20Rng::seed_from_u64(2), now).unwrap();
            let mut server = Dtls::server(scfg, ChaCha20Rng::seed_from_u64(3));
            exchange(&mut client, &mut server, now);
            assert!(
                client.is_connected() && server.is_connected(),
                "{}",
                p.name()
            );
            assert_eq!(client.poll_timeout(), None);

            // The server sends a ticket as a post-handshake flight on its timer: lifetime,
            // age_add, nonce, ticket, no extensions.
            let mut ticket = vec![0, 0, 0x0e, 0x10, 1, 2, 3, 4, 1, 9, 0, 4, 7, 7, 7, 7, 0, 0];
            server.engine.begin_flight();
            server.engine.set_flight_epoch(3);
            server
                .engine
                .push_handshake(HandshakeType::NewSessionTicket, false, |_, o| {
                    o.append(&mut ticket)
                })
                .unwrap();
            server.engine.send_flight(now, true).unwrap();
            assert!(server.poll_timeout().is_some());
            let sent = server.poll_transmit().unwrap().payload;
            client.handle_datagram(now, &sent);
            assert_eq!(client.stats().session_tickets_ignored, 1, "{}", p.name());
            // The same datagram again is a replay, dropped; the ACK of the first is lost.
            client.handle_datagram(now, &sent);
            assert_eq!(client.stats().records_replayed, 1);
            assert!(client.poll_transmit().is_some());
            assert!(client.poll_transmit().is_none());
            // The server's timer resends the ticket in a new record: ACKed, not counted again.
            let later = server.poll_timeout().unwrap();
            server.handle_timeout(later);
            let again = server.poll_transmit().unwrap().payload;
            client.handle_datagram(later, &again);
            assert_eq!(client.stats().session_tickets_ignored, 1);
            let ack = client.poll_transmit().unwrap().payload;
            server.handle_datagram(later, &ack);
            assert_eq!(server.poll_timeout(), None, "the ACK ended the flight");
            assert!(client.is_connected() && server.is_connected());
            assert_eq!(client.application_epochs(), Some((3, 3)));
            assert_eq!(
                client
                    .poll_event()
                    .map(|e| matches!(e, Event::Connected(_))),
                Some(true)
            );
            assert_eq!(client.poll_event(), None, "no event for a ticket");
        }
    }
}
