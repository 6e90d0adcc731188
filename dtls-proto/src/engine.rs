//! Mechanics shared by both roles: epochs, sequence numbers, record protection, the anti-replay
//! windows, the transcript, flights with their timer, fragmentation, and the bounded output
//! queues.
//!
//! `client.rs` and `server.rs` decide *what* to send and accept; the engine decides *how*
//! (RFC 6347 §4.1 records, §4.2.3 fragmentation, §4.2.4 retransmission).
//!
//! DTLS 1.2 epochs: 0 is the clear-text handshake, 1 the single protected epoch (renegotiation
//! is refused, so there is never an epoch 2). DTLS 1.3 (once `enable_dtls13` is called):
//! epoch 0 in clear text as in 1.2, then 2 for the encrypted handshake and 3 for application
//! data, sealed and opened by `epoch.rs` with the unified header; the same flights, timer,
//! fragmentation and reassembly serve both versions. Read keys of epoch 1 are installed as soon as they
//! are derived, so a Finished that overtakes a lost ChangeCipherSpec is still accepted; Finished
//! is only ever accepted under epoch 1 protection.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;

use crate::ack::AckView;
use crate::alert::Alert;
use crate::cipher_suite::CipherSuite;
use crate::config::Config;
use crate::crypto::{Digest, HashAlgorithm, TAG_LEN};
use crate::epoch::{
    EPOCH_APPLICATION, EPOCH_HANDSHAKE, EpochKeys, Opened, RECORD_OVERHEAD as RECORD13_OVERHEAD,
    ReadEpochs, RecordDropped, RecordNumber, SealError, WriteEpoch,
};
use crate::error::{Error, SendError};
use crate::event::{Event, Stats};
use crate::flight::{Flight, FlightItem, RetransmitTimer};
use crate::fragment::{Message, Reassembler};
use crate::handshake::{self, HandshakeType};
use crate::key_schedule::Exporter;
use crate::key_update::ApplicationSecrets;
use crate::prf::{self, KeyBlock, SessionSecrets, VERIFY_DATA_LEN};
use crate::record::{
    ContentType, DTLS_1_2, HEADER_LEN, MAX_PLAINTEXT_LEN, MAX_SEQUENCE, Protection, RecordHeader,
    RecordView,
};
use crate::replay::ReplayWindow;
use crate::transcript::Transcript;
use crate::unified_header::CiphertextView;

/// Bound on queued outgoing datagrams.
pub const MAX_TRANSMITS: usize = 256;
/// Bound on queued events.
pub const MAX_EVENTS: usize = 256;
/// Room reserved in the transmit queue: a handshake flight is a few datagrams.
const TRANSMITS_CAPACITY: usize = 8;
/// Room reserved in the event queue.
const EVENTS_CAPACITY: usize = 4;
/// Room reserved for the records of a flight (flight 4 or 5 with a certificate and headers is
/// under 1 KiB; a small MTU adds a header per fragment).
const FLIGHT_RECORDS_CAPACITY: usize = 2048;
/// Most a record adds beyond its header: an 8-byte explicit nonce and the tag.
const MAX_RECORD_OVERHEAD: usize = 8 + TAG_LEN;
/// Bound on the record numbers of the current flight remembered for ACKs (every
/// transmission of it counts: an ACK may name an earlier copy).
const MAX_FLIGHT_RECORD_NUMBERS: usize = 256;

/// DTLS 1.3 record state: our write epochs and the epochs we read.
#[derive(Debug, Default)]
struct Records13 {
    handshake: Option<WriteEpoch>,
    application: Option<WriteEpoch>,
    read: ReadEpochs,
}

/// What DTLS 1.3 keeps once the handshake has its secrets: the suite, the exporter and the
/// application traffic secrets KeyUpdates step on from.
#[derive(Debug)]
pub struct Session13 {
    /// The negotiated suite.
    pub suite: CipherSuite,
    /// The exporter master secret (RFC 8446 §7.5).
    pub exporter: Exporter,
    /// The application traffic secrets of both directions (RFC 8446 §7.2).
    pub secrets: ApplicationSecrets,
}

/// Shared per-connection mechanics.
pub struct Engine {
    pub config: Config,
    pub is_client: bool,
    write_epoch: u16,
    write_seq: [u64; 2],
    write_protection: Option<Protection>,
    read_protection: Option<Protection>,
    /// The anti-replay window of epoch 1 (epoch 0 has none, see `open_record`).
    replay: ReplayWindow,
    next_message_seq: u16,
    pub reassembler: Reassembler,
    transcript: Transcript,
    flight: Flight,
    /// The records of the flight being written, and where each datagram ends in it; kept
    /// for the next flight and for retransmissions.
    flight_records: Vec<u8>,
    datagram_ends: Vec<usize>,
    pub timer: RetransmitTimer,
    last_requested_retransmit: Option<Instant>,
    transmits: VecDeque<Bytes>,
    events: VecDeque<Event>,
    pub stats: Stats,
    pub session: Option<SessionSecrets>,
    /// DTLS 1.3 records, once the version is chosen.
    records13: Option<Records13>,
    /// The numbers of the protected records our current flight went out in (every copy).
    flight_record_numbers: Vec<RecordNumber>,
    /// DTLS 1.3 session, once its secrets exist.
    pub session13: Option<Session13>,
}

impl Engine {
    pub fn new(config: Config, is_client: bool) -> Self {
        let timer = RetransmitTimer::new(config.retransmit_initial, config.retransmit_max);
        let reassembler = Reassembler::new(config.max_handshake_message_len);
        Self {
            config,
            is_client,
            write_epoch: 0,
            write_seq: [0; 2],
            write_protection: None,
            read_protection: None,
            replay: ReplayWindow::new(),
            next_message_seq: 0,
            reassembler,
            transcript: Transcript::new(),
            flight: Flight::new(),
            flight_records: Vec::with_capacity(FLIGHT_RECORDS_CAPACITY),
            datagram_ends: Vec::with_capacity(TRANSMITS_CAPACITY),
            timer,
            last_requested_retransmit: None,
            transmits: VecDeque::with_capacity(TRANSMITS_CAPACITY),
            events: VecDeque::with_capacity(EVENTS_CAPACITY),
            stats: Stats::default(),
            session: None,
            records13: None,
            flight_record_numbers: Vec::new(),
            session13: None,
        }
    }

    // ---- DTLS 1.3 ------------------------------------------------------------------------

    /// Switches this association to DTLS 1.3 records and the TLS 1.3 transcript form.
    pub fn enable_dtls13(&mut self) {
        self.records13 = Some(Records13::default());
        self.transcript.reset_tls13();
    }

    /// Back to DTLS 1.2 records and transcript: a DTLS 1.3 client whose server answered 1.2.
    pub fn disable_dtls13(&mut self) {
        self.records13 = None;
        self.transcript.reset_dtls12();
    }

    /// True once DTLS 1.3 was chosen.
    pub fn is_dtls13(&self) -> bool {
        self.records13.is_some()
    }

    /// The epoch application data goes in (DTLS 1.3: 3 stands for whichever application
    /// epoch KeyUpdates have moved us to; `write_record_13` picks its keys).
    pub fn application_epoch(&self) -> u16 {
        if self.is_dtls13() { 3 } else { 1 }
    }

    /// True when application data may arrive in `epoch`: 1 in DTLS 1.2, 3 and the epochs of
    /// KeyUpdates after it in DTLS 1.3 (RFC 9147 §6.1).
    pub fn is_application_epoch(&self, epoch: u16) -> bool {
        if self.is_dtls13() {
            u64::from(epoch) >= EPOCH_APPLICATION
        } else {
            epoch == 1
        }
    }

    /// Moves our writing to the next application epoch (our KeyUpdate was ACKed, RFC 9147
    /// §8).
    pub fn update_write_keys_13(&mut self) -> Result<(), Error> {
        let Some(session) = &mut self.session13 else {
            return Ok(());
        };
        let (epoch, keys) = session.secrets.next_write()?;
        self.install_write_keys_13(epoch, keys);
        Ok(())
    }

    /// Starts reading the peer's next application epoch (its KeyUpdate arrived); the
    /// current one stays readable for records still on their way (RFC 9147 §8).
    pub fn update_read_keys_13(&mut self) -> Result<(), Error> {
        let Some(session) = &mut self.session13 else {
            return Ok(());
        };
        let (epoch, keys) = session.secrets.next_read()?;
        self.install_read_keys_13(epoch, keys);
        Ok(())
    }

    /// The application epochs we write and read, once DTLS 1.3 has them.
    pub fn application_epochs_13(&self) -> Option<(u64, u64)> {
        let s = &self.session13.as_ref()?.secrets;
        Some((s.write_epoch(), s.read_epoch()))
    }

    /// Sends one ACK record naming `numbers` at once, outside any flight (RFC 9147 §7).
    pub fn send_ack(&mut self, numbers: &[RecordNumber]) {
        let mut body = Vec::with_capacity(2 + 16 * numbers.len());
        AckView::encode(numbers, &mut body);
        let epoch = self.application_epoch();
        let mut out = Vec::with_capacity(self.record_overhead(epoch) + body.len());
        if self
            .write_record(&mut out, ContentType::Ack, epoch, &[&body])
            .is_ok()
        {
            self.queue_datagram(Bytes::from(out));
        }
    }

    /// Installs our write keys of epoch 2, or of the application epoch (3, or a later one after
    /// a KeyUpdate); alerts go in the newest.
    pub fn install_write_keys_13(&mut self, epoch: u64, keys: EpochKeys) {
        let Some(records) = &mut self.records13 else {
            return;
        };
        let writer = Some(WriteEpoch::new(epoch, keys));
        if epoch == EPOCH_HANDSHAKE {
            records.handshake = writer;
        } else {
            records.application = writer;
        }
        self.write_epoch = self
            .write_epoch
            .max(u16::try_from(epoch).unwrap_or(u16::MAX));
    }

    /// Installs the peer's keys of epoch 2 or 3.
    pub fn install_read_keys_13(&mut self, epoch: u64, keys: EpochKeys) {
        if let Some(records) = &mut self.records13 {
            records.read.install(epoch, keys);
        }
    }

    /// Opens a protected DTLS 1.3 record into `plaintext`; `None` means dropped and counted.
    pub fn open_record_13(
        &mut self,
        record: &CiphertextView<'_>,
        plaintext: &mut Vec<u8>,
    ) -> Option<Opened> {
        self.stats.records_received += 1;
        let Some(records) = &mut self.records13 else {
            self.stats.records_unexpected_epoch += 1;
            return None;
        };
        match records.read.open(record, plaintext) {
            Ok(opened) => Some(opened),
            Err(dropped) => {
                let counter = match dropped {
                    RecordDropped::Replayed(_) => &mut self.stats.records_replayed,
                    RecordDropped::FailedAuthentication(_) => {
                        &mut self.stats.records_failed_authentication
                    }
                    RecordDropped::UnknownEpoch(_) | RecordDropped::IntegrityLimitReached(_) => {
                        &mut self.stats.records_unexpected_epoch
                    }
                    _ => &mut self.stats.records_malformed,
                };
                *counter += 1;
                None
            }
        }
    }

    /// True when `ack` names a record our current flight went out in (RFC 9147 §7).
    pub fn acknowledges_flight(&self, ack: &AckView<'_>) -> bool {
        ack.record_numbers()
            .any(|n| self.flight_record_numbers.contains(&n))
    }

    /// Adds an ACK of `numbers` in `epoch` to the flight being prepared.
    pub fn push_ack(&mut self, epoch: u16, numbers: &[RecordNumber]) {
        self.flight
            .push_ack(epoch, |out| AckView::encode(numbers, out));
    }

    /// From now on, handshake messages of the flight being prepared go in `epoch`.
    pub fn set_flight_epoch(&mut self, epoch: u16) {
        self.flight.set_epoch(epoch);
    }

    /// The DTLS 1.3 exporter (RFC 8446 §7.5); `None` before the handshake has it.
    pub fn export_13(&self, label: &[u8], context: Option<&[u8]>, len: usize) -> Option<Vec<u8>> {
        let session = self.session13.as_ref()?;
        let mut out = vec![0u8; len];
        session.exporter.export(label, context, &mut out);
        Some(out)
    }

    // ---- output queues -------------------------------------------------------------------

    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn queue_datagram(&mut self, datagram: Bytes) {
        if self.transmits.len() >= MAX_TRANSMITS {
            self.stats.transmits_dropped += 1;
            return;
        }
        self.transmits.push_back(datagram);
    }

    pub fn transmit_queue_is_full(&self) -> bool {
        self.transmits.len() >= MAX_TRANSMITS
    }

    /// Queues an event; application data beyond the bound is dropped and counted, other events
    /// (at most a handful per connection) always fit.
    pub fn push_event(&mut self, event: Event) {
        #[cfg(feature = "tracing")]
        self.trace(&event);
        if matches!(event, Event::ApplicationData(_)) && self.events.len() >= MAX_EVENTS {
            self.stats.application_data_dropped += 1;
            return;
        }
        self.events.push_back(event);
    }

    /// Diagnostics (feature `tracing`): the handshake's outcome under the target `dtls`, with
    /// our role; the caller's span (a peer, a connection id) says which association.
    #[cfg(feature = "tracing")]
    fn trace(&self, event: &Event) {
        let role = if self.is_client { "client" } else { "server" };
        match event {
            Event::Connected(done) => tracing::info!(
                target: "dtls",
                role,
                suite = ?done.cipher_suite,
                group = ?done.group,
                srtp = ?done.srtp.as_ref().map(|k| k.profile),
                peer = %done.peer_fingerprint,
                retransmits = self.stats.flight_retransmits,
                "handshake complete"
            ),
            Event::Failed(error) => tracing::warn!(
                target: "dtls",
                role,
                stats = ?self.stats,
                "association failed: {error}"
            ),
            Event::PeerClosed => tracing::info!(target: "dtls", role, "peer sent close_notify"),
            _ => {}
        }
    }

    // ---- records -------------------------------------------------------------------------

    fn overhead(&self, epoch: u16) -> usize {
        match (epoch, &self.write_protection) {
            (1, Some(p)) => p.overhead(),
            _ => 0,
        }
    }

    /// Every byte a record of `epoch` adds to its payload, header included.
    fn record_overhead(&self, epoch: u16) -> usize {
        if epoch >= 2 && self.is_dtls13() {
            RECORD13_OVERHEAD
        } else {
            HEADER_LEN + self.overhead(epoch)
        }
    }

    /// Seals one DTLS 1.3 record of epoch 2 or 3; its number joins the flight's.
    fn write_record_13(
        &mut self,
        out: &mut Vec<u8>,
        content_type: ContentType,
        epoch: u16,
        payload: &[&[u8]],
    ) -> Result<(), Error> {
        let writer = self.records13.as_mut().and_then(|r| {
            if u64::from(epoch) == EPOCH_HANDSHAKE {
                r.handshake.as_mut()
            } else {
                r.application.as_mut()
            }
        });
        // An epoch is only written once its keys exist; refuse rather than leak plaintext.
        let Some(writer) = writer else {
            return Err(Error::Crypto(crate::error::CryptoError::AeadSealFailed));
        };
        let number = writer
            .seal(content_type, payload, out)
            .map_err(|e| match e {
                SealError::SequenceNumberExhausted => Error::SequenceNumberExhausted,
                SealError::Crypto(c) => Error::Crypto(c),
                SealError::PlaintextTooLong(_) => {
                    Error::Crypto(crate::error::CryptoError::AeadSealFailed)
                }
            })?;
        if self.flight_record_numbers.len() < MAX_FLIGHT_RECORD_NUMBERS {
            self.flight_record_numbers.push(number);
        }
        Ok(())
    }

    fn next_write_seq(&mut self, epoch: u16) -> Result<u64, Error> {
        let slot = &mut self.write_seq[usize::from(epoch.min(1))];
        if *slot > MAX_SEQUENCE {
            return Err(Error::SequenceNumberExhausted);
        }
        let seq = *slot;
        *slot += 1;
        Ok(seq)
    }

    /// Appends one record carrying the concatenation of `payload` to `out`, protected when
    /// `epoch` is 1.
    fn write_record(
        &mut self,
        out: &mut Vec<u8>,
        content_type: ContentType,
        epoch: u16,
        payload: &[&[u8]],
    ) -> Result<(), Error> {
        if epoch >= 2 && self.is_dtls13() {
            return self.write_record_13(out, content_type, epoch, payload);
        }
        let sequence = self.next_write_seq(epoch)?;
        let header = RecordHeader {
            content_type,
            version: DTLS_1_2,
            epoch,
            sequence,
        };
        match (epoch, &self.write_protection) {
            (0, _) => {
                header.encode(payload.iter().map(|p| p.len()).sum(), out);
                payload.iter().for_each(|p| out.extend_from_slice(p));
            }
            (_, Some(p)) => p.seal(&header, payload, out)?,
            // Epoch 1 is only written after keys are installed; refuse rather than leak plaintext.
            (_, None) => return Err(Error::Crypto(crate::error::CryptoError::AeadSealFailed)),
        }
        Ok(())
    }

    /// Checks replay, then authenticates and decrypts into `plaintext` (whose capacity is
    /// reused from record to record). `false` means dropped (and counted).
    pub fn open_record(&mut self, record: &RecordView<'_>, plaintext: &mut Vec<u8>) -> bool {
        self.stats.records_received += 1;
        let epoch = record.header.epoch;
        if epoch > 1 {
            self.stats.records_unexpected_epoch += 1;
            return false;
        }
        if epoch == 0 {
            // Clear text: no replay window, which anyone could push forward with one forged
            // record numbered 2^48-1 and so shut out every genuine record after it. Handshake
            // messages are deduplicated by message_seq instead (RFC 6347 §4.1.2.6 makes replay
            // detection optional; §4.1.2.7 discards what is invalid).
            if record.header.content_type == ContentType::ApplicationData {
                self.stats.records_unexpected_epoch += 1;
                return false;
            }
            plaintext.clear();
            plaintext.extend_from_slice(record.fragment);
            return true;
        }
        if !self.replay.is_fresh(record.header.sequence) {
            self.stats.records_replayed += 1;
            return false;
        }
        let Some(protection) = &self.read_protection else {
            self.stats.records_unexpected_epoch += 1;
            return false;
        };
        if protection.open(record, plaintext).is_err() {
            self.stats.records_failed_authentication += 1;
            return false;
        }
        self.replay.mark(record.header.sequence);
        true
    }

    /// Installs epoch 1 keys in both directions.
    pub fn install_keys(&mut self, suite: CipherSuite, keys: &KeyBlock) -> Result<(), Error> {
        let provider = self.config.provider;
        let client = Protection::new(provider, suite, keys.client_key(), keys.client_iv())?;
        let server = Protection::new(provider, suite, keys.server_key(), keys.server_iv())?;
        let (write, read) = if self.is_client {
            (client, server)
        } else {
            (server, client)
        };
        self.write_protection = Some(write);
        self.read_protection = Some(read);
        Ok(())
    }

    // ---- transcript ----------------------------------------------------------------------

    pub fn transcript(&self) -> &[u8] {
        self.transcript.bytes()
    }

    pub fn transcript_hash(&mut self, alg: HashAlgorithm) -> Digest {
        self.transcript.hash(self.config.provider, alg)
    }

    pub fn transcript_reset(&mut self) {
        self.transcript.reset();
    }

    /// Replaces the transcript (the first ClientHello) by its message_hash (RFC 8446 §4.4.1).
    pub fn transcript_message_hash(&mut self, alg: HashAlgorithm) {
        self.transcript
            .replace_with_message_hash(self.config.provider, alg);
    }

    /// Starts the transcript with a message_hash carrying `hash` (the stateless server
    /// rebuilds it from its cookie, RFC 8446 §4.4.1).
    pub fn transcript_start_with_message_hash(&mut self, hash: &[u8]) {
        self.transcript.start_with_message_hash(hash);
    }

    /// Adds a whole message in its canonical DTLS form (RFC 6347 §4.2.6).
    pub fn transcript_push(
        &mut self,
        msg_type: HandshakeType,
        seq: u16,
        body: &[u8],
    ) -> Result<(), Error> {
        self.transcript.push(msg_type, seq, body)
    }

    pub fn transcript_push_received(&mut self, msg: &Message) -> Result<(), Error> {
        self.transcript_push(msg.msg_type, msg.seq, &msg.body)
    }

    /// Adds a whole message whose body `encode` writes straight into the transcript.
    pub fn transcript_push_encoded(
        &mut self,
        msg_type: HandshakeType,
        seq: u16,
        encode: impl FnOnce(&mut Vec<u8>),
    ) -> Result<(), Error> {
        self.transcript.push_encoded(msg_type, seq, encode)
    }

    // ---- flights -------------------------------------------------------------------------

    pub fn set_next_message_seq(&mut self, seq: u16) {
        self.next_message_seq = seq;
    }

    /// Continues epoch 0 at least at `record_seq`: the server answers a ClientHello from the
    /// record number the client used (RFC 6347 §4.2.1), so a HelloVerifyRequest sent from that
    /// number by a stateless acceptor is never followed by a lower one.
    pub fn continue_epoch0_at(&mut self, record_seq: u64) {
        self.write_seq[0] = self.write_seq[0].max(record_seq.min(MAX_SEQUENCE));
    }

    /// Starts preparing a new flight; the previous one is forgotten.
    pub fn begin_flight(&mut self) {
        self.flight.clear();
        self.flight_record_numbers.clear();
    }

    /// Adds a handshake message, whose body `encode` appends (given the configuration, which
    /// holds our certificate), to the flight and, if `in_transcript`, to the transcript.
    pub fn push_handshake(
        &mut self,
        msg_type: HandshakeType,
        in_transcript: bool,
        encode: impl FnOnce(&Config, &mut Vec<u8>),
    ) -> Result<u16, Error> {
        let seq = self.next_message_seq;
        self.next_message_seq = self.next_message_seq.wrapping_add(1);
        let config = &self.config;
        let body = self
            .flight
            .push_handshake(msg_type, seq, |out| encode(config, out));
        if in_transcript {
            self.transcript.push(msg_type, seq, body)?;
        }
        Ok(seq)
    }

    pub fn push_change_cipher_spec(&mut self) {
        self.flight.push_change_cipher_spec();
    }

    /// Sends the prepared flight; arms the timer unless this is the last flight of the
    /// handshake (RFC 6347 §4.2.4: the final flight is only resent on request).
    pub fn send_flight(&mut self, now: Instant, arm_timer: bool) -> Result<(), Error> {
        self.write_flight()?;
        if arm_timer {
            self.timer.start(now);
        } else {
            self.timer.stop();
        }
        Ok(())
    }

    /// Resends the current flight with fresh record sequence numbers.
    pub fn retransmit(&mut self) -> Result<(), Error> {
        if self.flight.is_empty() {
            return Ok(());
        }
        self.stats.flight_retransmits += 1;
        self.write_flight()
    }

    /// Resends the flight because the peer retransmitted its own (RFC 6347 §4.2.4), at most
    /// once per half initial timeout: a peer's flight spans several datagrams, and a forged or
    /// duplicated old fragment must not make us amplify.
    pub fn retransmit_on_request(&mut self, now: Instant) -> Result<(), Error> {
        if self.flight.is_empty() {
            return Ok(());
        }
        let spacing = self.config.retransmit_initial / 2;
        let recent = self
            .last_requested_retransmit
            .is_some_and(|t| now.checked_duration_since(t).is_none_or(|d| d < spacing));
        if recent {
            self.stats.retransmits_suppressed += 1;
            return Ok(());
        }
        self.last_requested_retransmit = Some(now);
        self.retransmit()
    }

    pub fn clear_flight(&mut self) {
        self.flight.clear();
        self.timer.stop();
    }

    /// Encodes the flight into datagrams of at most `mtu` bytes, fragmenting handshake
    /// messages and packing several records per datagram (RFC 6347 §4.1.1, §4.2.3). The
    /// records are written back to back into one buffer, copied once into one shared `Bytes`,
    /// and each datagram is a slice of it.
    fn write_flight(&mut self) -> Result<(), Error> {
        let mtu = self.config.mtu;
        let flight = std::mem::take(&mut self.flight);
        let mut out = std::mem::take(&mut self.flight_records);
        let mut ends = std::mem::take(&mut self.datagram_ends);
        out.clear();
        ends.clear();
        let per_record = HEADER_LEN + handshake::HEADER_LEN + MAX_RECORD_OVERHEAD;
        let records = flight.items().len() + flight.bodies_len() / mtu.max(1) + 1;
        out.reserve(flight.bodies_len() + records * per_record);
        let result = self.write_flight_records(&flight, mtu, &mut out, &mut ends);
        if out.len() > ends.last().copied().unwrap_or(0) {
            ends.push(out.len());
        }
        let all = Bytes::copy_from_slice(&out);
        if let [_one] = ends[..] {
            self.queue_datagram(all);
        } else {
            let mut start = 0;
            for &end in &ends {
                self.queue_datagram(all.slice(start..end));
                start = end;
            }
        }
        self.flight = flight;
        self.flight_records = out;
        self.datagram_ends = ends;
        result
    }

    /// The records of `flight` appended to `out`; `ends` gets the end of every datagram but
    /// the last.
    fn write_flight_records(
        &mut self,
        flight: &Flight,
        mtu: usize,
        out: &mut Vec<u8>,
        ends: &mut Vec<usize>,
    ) -> Result<(), Error> {
        let mut start = 0;
        for item in flight.items() {
            match item {
                FlightItem::Ack { epoch, body } => {
                    let body = flight.body(body);
                    let used = out.len() - start;
                    if used > 0 && used + self.record_overhead(*epoch) + body.len() > mtu {
                        ends.push(out.len());
                        start = out.len();
                    }
                    self.write_record(out, ContentType::Ack, *epoch, &[body])?;
                }
                FlightItem::ChangeCipherSpec => {
                    let used = out.len() - start;
                    if used > 0 && used + HEADER_LEN + 1 > mtu {
                        ends.push(out.len());
                        start = out.len();
                    }
                    self.write_record(out, ContentType::ChangeCipherSpec, 0, &[&[1]])?;
                    self.write_epoch = 1;
                }
                FlightItem::Handshake {
                    epoch,
                    msg_type,
                    seq,
                    body,
                } => {
                    let body = flight.body(body);
                    let fixed = self.record_overhead(*epoch) + handshake::HEADER_LEN;
                    let mut offset = 0;
                    loop {
                        let left = body.len() - offset;
                        let used = out.len() - start + fixed;
                        // Start a new datagram rather than overflow it (even an empty message
                        // needs its headers) or send a sliver of a message.
                        if out.len() > start && (used > mtu || mtu - used < left.min(32)) {
                            ends.push(out.len());
                            start = out.len();
                        }
                        let room = mtu.saturating_sub(out.len() - start + fixed);
                        // A stateless server cannot reassemble a ClientHello (RFC 6347
                        // §4.2.1), so it always goes whole, even beyond the MTU.
                        let take = if *msg_type == HandshakeType::ClientHello {
                            left
                        } else {
                            left.min(room.max(1))
                        };
                        let fragment = &body[offset..offset + take];
                        let header =
                            handshake::fragment_header(*msg_type, *seq, body.len(), offset, take);
                        self.write_record(
                            out,
                            ContentType::Handshake,
                            *epoch,
                            &[&header, fragment],
                        )?;
                        offset += take;
                        if offset >= body.len() {
                            break;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Sends one handshake message outside any flight, with a chosen record sequence number
    /// (the stateless HelloVerifyRequest, RFC 6347 §4.2.1).
    pub fn send_stateless(
        &mut self,
        record_seq: u64,
        msg_type: HandshakeType,
        message_seq: u16,
        body: &[u8],
    ) {
        let out = stateless_record(record_seq, msg_type, message_seq, body);
        self.write_seq[0] = self.write_seq[0].max(record_seq.saturating_add(1));
        self.queue_datagram(Bytes::from(out));
    }

    // ---- alerts and application data -----------------------------------------------------

    pub fn send_alert(&mut self, alert: Alert) {
        let epoch = self.write_epoch;
        let mut out = Vec::with_capacity(HEADER_LEN + self.overhead(epoch) + 2);
        if self
            .write_record(&mut out, ContentType::Alert, epoch, &[&alert.to_bytes()])
            .is_ok()
        {
            self.queue_datagram(Bytes::from(out));
        }
    }

    pub fn send_application_data(&mut self, data: &[u8]) -> Result<(), SendError> {
        if data.len() > MAX_PLAINTEXT_LEN {
            return Err(SendError::TooLarge {
                len: data.len(),
                max: MAX_PLAINTEXT_LEN,
            });
        }
        if self.transmit_queue_is_full() {
            return Err(SendError::QueueFull);
        }
        // Exactly the record's size, so the `Bytes` takes the buffer over as it is.
        let epoch = self.application_epoch();
        let mut out = Vec::with_capacity(self.record_overhead(epoch) + data.len());
        self.write_record(&mut out, ContentType::ApplicationData, epoch, &[data])?;
        self.queue_datagram(Bytes::from(out));
        Ok(())
    }

    // ---- session -------------------------------------------------------------------------

    /// Derives the master secret and the epoch 1 keys once ClientKeyExchange is in the
    /// transcript (RFC 7627 §4: the session hash covers up to ClientKeyExchange).
    pub fn derive_session(
        &mut self,
        suite: CipherSuite,
        pre_master_secret: &[u8],
        client_random: [u8; 32],
        server_random: [u8; 32],
    ) -> Result<(), Error> {
        let provider = self.config.provider;
        let session_hash = self.transcript_hash(suite.prf_hash());
        let master_secret =
            prf::extended_master_secret(provider, suite, pre_master_secret, &session_hash);
        let keys = prf::key_block(
            provider,
            suite,
            &master_secret,
            &client_random,
            &server_random,
        );
        self.install_keys(suite, &keys)?;
        self.session = Some(SessionSecrets {
            suite,
            master_secret,
            client_random,
            server_random,
        });
        Ok(())
    }

    /// verify_data for `client`'s Finished over the current transcript.
    pub fn verify_data(&mut self, client: bool) -> Option<[u8; VERIFY_DATA_LEN]> {
        let suite = self.session.as_ref()?.suite;
        let hash = self.transcript_hash(suite.prf_hash());
        let s = self.session.as_ref()?;
        Some(prf::verify_data(
            self.config.provider,
            s.suite,
            &s.master_secret,
            client,
            &hash,
        ))
    }
}

/// One clear-text epoch-0 record carrying a whole handshake message, for answers sent before
/// any state exists (HelloVerifyRequest reuses the ClientHello's record sequence number,
/// RFC 6347 §4.2.1).
pub(crate) fn stateless_record(
    record_seq: u64,
    msg_type: HandshakeType,
    message_seq: u16,
    body: &[u8],
) -> Vec<u8> {
    let fragment_header =
        handshake::fragment_header(msg_type, message_seq, body.len(), 0, body.len());
    let header = RecordHeader {
        content_type: ContentType::Handshake,
        version: DTLS_1_2,
        epoch: 0,
        sequence: record_seq.min(MAX_SEQUENCE),
    };
    let len = handshake::HEADER_LEN + body.len();
    let mut out = Vec::with_capacity(HEADER_LEN + len);
    header.encode(len, &mut out);
    out.extend_from_slice(&fragment_header);
    out.extend_from_slice(body);
    out
}
