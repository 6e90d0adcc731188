//! The agent's configuration (RFC 8445 §14 timers and limits, RFC 7675 consent timing) and
//! its counters.

use std::net::SocketAddr;
use std::time::Duration;

use stun_proto::TransportProtocol;
use stun_proto::transaction::TransactionConfig;

use crate::candidate::CandidateType;

/// The agent's configuration. The defaults are RFC 8445's and RFC 7675's.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// Start as the controlling agent (the offerer is controlling, RFC 8445 §6.1.1). Against
    /// an ICE-lite peer (`a=ice-lite`), a full agent must be controlling.
    pub controlling: bool,
    /// Be an ICE-lite agent (RFC 8445 §2.5, §8.2; servers with public addresses): host
    /// candidates only, no checks of its own, always controlled; a pair becomes valid when a
    /// check arrives on it and is selected when the peer nominates it. Liveness: the
    /// selected pair fails when no check arrives for `consent_lifetime`. Signal `a=ice-lite`.
    pub lite: bool,
    /// Relay only (W3C `iceTransportPolicy: "relay"`): only relayed candidates are signalled,
    /// paired and answered on, so the peer never learns a host or reflexive address. Needs a
    /// TURN server.
    pub relay_only: bool,
    /// Ta, the pacing of new checks and gathering transactions (§14.2). Default 50 ms.
    pub ta: Duration,
    /// The most pairs in one check list (§6.1.2.5). Default 100.
    pub max_pairs: usize,
    /// The most local and the most remote candidates per stream. Default 100 each.
    pub max_candidates: usize,
    /// STUN servers for server-reflexive candidates (§5.1.1.2).
    pub stun_servers: Vec<SocketAddr>,
    /// TURN servers for relayed candidates (§5.1.1.2, RFC 8656).
    pub turn_servers: Vec<TurnServer>,
    /// Rc of a connectivity check (RFC 8489 §6.2.1). Default 7.
    pub check_request_count: u32,
    /// Rm of a connectivity check. Default 16.
    pub check_last_wait_factor: u32,
    /// The largest RTO of a check's retransmissions. Default 3 s (the check's first RTO
    /// is §14.3's).
    pub check_max_rto: Duration,
    /// How long the controlling agent waits for a better pair after the first valid pair of
    /// a component before nominating the best one (§8.1.1: the stopping criterion is the
    /// agent's). It nominates at once when no pending pair has a higher priority. Default
    /// 0: the first valid pair is nominated at once and, with `renomination` (the
    /// default), a better pair that becomes valid later is nominated in its place, so
    /// waiting buys nothing but time to the first selection (docs/ice.md, "Nominating
    /// early"). With `renomination` off, a wait (1 s, say) is what lets a better pair
    /// still in flight win.
    pub nomination_wait: Duration,
    /// How the controlling agent nominates: [`NominationMode::Regular`] (RFC 8445, the
    /// default) or [`NominationMode::Aggressive`] for peers that expect it.
    pub nomination: NominationMode,
    /// Re-nomination: after a pair is selected, both agents keep checking the pairs of higher priority than the
    /// selected one (and pair candidates learnt later when the pair would rank higher); when
    /// one becomes valid, the controlling agent nominates it, both agents select it and
    /// report [`Event::NewSelectedPair`](crate::Event::NewSelectedPair) again, and data
    /// moves to it. A late direct path thus replaces a relayed one chosen first. RFC 8445
    /// §8.1.1 has the controlling agent nominate once per ICE session; re-nomination goes
    /// beyond it, but only upwards, which any RFC 8445 controlled agent follows (§8.1.1: of
    /// several nominated pairs it selects the highest-priority one). `false` stops every
    /// other check of a component at selection (§8.1.2), as RFC 8445 does. A pair above the
    /// selected one whose check timed out is checked again, three transactions in all, so
    /// that a direct path whose checks a lossy link ate still replaces the relay. Default
    /// `true`.
    pub renomination: bool,
    /// The ICE PAC timer (RFC 8863 §4): no component fails its checks sooner than this after
    /// the remote credentials arrived, even when its check list is empty or every pair
    /// failed (a peer-reflexive candidate may still come with the peer's checks). Default
    /// 39.5 s, the check transaction timeout RFC 8863 recommends.
    pub patience: Duration,
    /// RFC 7675 consent checks every 0.8–1.2 × this on the selected pair; `None` turns
    /// consent off (then §11 keepalives keep NAT bindings). Default 5 s.
    pub consent_interval: Option<Duration>,
    /// After a consent check goes unanswered this long (randomized 0.8–1.2 ×), the next one
    /// goes at once instead of after `consent_interval`, so that a lossy path does not lose
    /// consent to a few lost datagrams (see the `consent` module). Default 1 s; set it to
    /// `consent_interval` for a fixed cadence.
    pub consent_recheck_interval: Duration,
    /// Consent expires this long after the last response (RFC 7675 §5.1: 30 s).
    pub consent_lifetime: Duration,
    /// The overall state becomes Disconnected when the selected pair has had no consent
    /// response for this long (W3C). Default 10 s.
    pub disconnected_after: Duration,
    /// Failing early (W3C `disconnected` before RFC 8863's `failed`): once both sides have
    /// gathered everything (end-of-candidates signalled both ways) and a component has no
    /// valid pair and nothing left to check, every pair's checks failed or went
    /// unanswered this long since their first send, the overall state becomes
    /// Disconnected with a [`ConnectionStateChanged`](crate::Event::ConnectionStateChanged)
    /// event — the application learns there is no path now, while the component fails
    /// only when the ICE PAC timer (`patience`) says so, and a late answer or a new
    /// candidate still brings it back. Default 5 s.
    pub checks_unanswered_after: Duration,
    /// Tr, the keepalive interval of §11 when consent is off. Default 15 s.
    pub keepalive_interval: Duration,
    /// Retransmission of gathering queries (its pacing interval is replaced by `ta`).
    /// Default: RFC 8489 with Rc = 7, Rm = 8 and the RTO capped at 3 s, as for checks:
    /// sends at 0, 0.5, 1.5, 3.5, 6.5, 9.5 and 12.5 s, given up at 16.5 s per server.
    pub gathering: TransactionConfig,
    /// Retransmission of the TURN client's requests (Allocate, Refresh, CreatePermission,
    /// ChannelBind). Default: RFC 8489's 39.5 s budget (Rm = 16) with the RTO capped at 3 s,
    /// so that 13 requests fit in it instead of RFC 8489's 7: a relay is the last resort,
    /// and behind three lossy hops seven requests all go unanswered 2% of the time.
    pub turn_requests: TransactionConfig,
}

impl AgentConfig {
    /// Whether local candidates of this type are signalled (peer-reflexive ones never are;
    /// with `relay_only`, only relayed ones).
    pub(crate) fn is_signalled(&self, kind: CandidateType) -> bool {
        if self.relay_only {
            kind == CandidateType::Relayed
        } else {
            kind != CandidateType::PeerReflexive
        }
    }

    /// Whether local candidates of this type are paired and answer checks: host and relayed
    /// ones (§6.1.2.2: reflexive ones are replaced by their base); with `relay_only`, relayed
    /// ones only.
    pub(crate) fn is_paired(&self, kind: CandidateType) -> bool {
        kind == CandidateType::Relayed || (kind == CandidateType::Host && !self.relay_only)
    }
}

/// The RTO cap of gathering and TURN requests, as `check_max_rto` is for checks.
const MAX_REQUEST_RTO: Duration = Duration::from_secs(3);

impl Default for AgentConfig {
    fn default() -> Self {
        let gathering = TransactionConfig {
            request_count: 7,
            last_wait_factor: 8,
            max_rto: MAX_REQUEST_RTO,
            max_outstanding_per_server: None,
            max_outstanding: 256,
            ..TransactionConfig::default()
        };
        Self {
            controlling: false,
            lite: false,
            relay_only: false,
            ta: Duration::from_millis(50),
            max_pairs: 100,
            max_candidates: 100,
            stun_servers: Vec::new(),
            turn_servers: Vec::new(),
            check_request_count: 7,
            check_last_wait_factor: 16,
            check_max_rto: MAX_REQUEST_RTO,
            nomination_wait: Duration::ZERO,
            nomination: NominationMode::Regular,
            renomination: true,
            patience: Duration::from_millis(39_500),
            consent_interval: Some(Duration::from_secs(5)),
            consent_recheck_interval: Duration::from_secs(1),
            consent_lifetime: Duration::from_secs(30),
            disconnected_after: Duration::from_secs(10),
            checks_unanswered_after: Duration::from_secs(5),
            keepalive_interval: Duration::from_secs(15),
            gathering,
            turn_requests: TransactionConfig {
                request_count: 13,
                max_rto: MAX_REQUEST_RTO,
                ..TransactionConfig::default()
            },
        }
    }
}

/// How the controlling agent nominates pairs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NominationMode {
    /// Regular nomination (RFC 8445 §8.1.1): checks without USE-CANDIDATE until the stopping
    /// criterion holds (`nomination_wait`), then one check with USE-CANDIDATE on the best
    /// valid pair. With `renomination`, a better pair found later is nominated again.
    #[default]
    Regular,
    /// Nominate on first success (RFC 5245 §8.1.1.2 aggressive nomination, removed from RFC
    /// 8445): every check carries USE-CANDIDATE, so the first pair to succeed is selected at
    /// once, and a higher-priority pair that succeeds later replaces it. Faster, less
    /// stable; for peers that expect it. Do not use against an ICE-lite peer (RFC 5245
    /// §8.1.1 requires regular nomination there).
    Aggressive,
}

/// Counters, for operators and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AgentStats {
    /// Connectivity checks sent (first sends).
    pub checks_sent: u64,
    /// Check retransmissions.
    pub retransmissions: u64,
    /// Check requests received and answered.
    pub requests_received: u64,
    /// Responses to our checks processed.
    pub responses_received: u64,
    /// Messages dropped: bad integrity or fingerprint (checks from the peer among them are
    /// answered 401, RFC 8489 §9.1.3).
    pub bad_integrity: u64,
    /// Answers to our checks that were 401 Unauthenticated (dropped, RFC 8489 §9.1.4): the
    /// peer does not accept the password we have for it.
    pub unauthenticated_answers: u64,
    /// Failure answers (an error, non-symmetric addresses) to a check cancelled by a later
    /// one (§7.3.1.4) on a pair that is valid since: ignored.
    pub stale_failures: u64,
    /// Requests dropped: unknown ufrag or malformed USERNAME.
    pub unknown_username: u64,
    /// Consent checks sent.
    pub consent_checks: u64,
    /// Datagrams dropped: the queue was full, or a TURN allocation refused one.
    pub dropped_transmits: u64,
    /// Events dropped because the event queue was full.
    pub dropped_events: u64,
}

/// A TURN server, the transport to reach it over and the long-term credentials to use it.
/// One server over several transports is several entries, as browsers take `turn:` URLs with
/// `?transport=udp` and `?transport=tcp` and `turns:` on 443.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TurnServer {
    /// Its address.
    pub server: SocketAddr,
    /// How the agent reaches it (RFC 8656 §3.1): UDP from each base, or TCP (or TLS over
    /// TCP, which is the caller's: docs/turn.md) — then the caller holds one connection per
    /// base and server, opened when the first `Transmit` for it appears, writes the payload of
    /// every `Transmit` whose transport is TCP to it, and hands each frame it reads back (STUN
    /// or ChannelData, cut by `stun_proto::turn::StreamFramer`) to `handle_datagram` with the
    /// server as source and the base as destination. The relayed candidates are UDP towards
    /// the peer either way; one reached over TCP ranks below one over UDP.
    pub transport: TransportProtocol,
    /// The long-term credential username.
    pub username: String,
    /// The long-term credential password.
    pub password: String,
}
