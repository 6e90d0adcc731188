//! The full peer (ICE + DTLS, `harness::peer::Peer`) in the simulator: two peers go through
//! the WebRTC transport lifecycle, exchange SRTP keys and data over DTLS, resolve DTLS roles
//! from `setup` and ICE roles from a conflict, go through a TURN server when relay-only, and
//! fail with the detail a user needs when ICE fails, the fingerprint is wrong or the roles
//! cannot be resolved.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dtls_proto::crypto::RustCrypto;
use dtls_proto::{CertificateParams, DtlsCertificate, Fingerprint};
use harness::matrix::{MatrixPeer, ServerPlan, TURN_PASSWORD, TURN_USER, standard_servers};
use harness::nodes::PeerNode;
use harness::peer::{
    DtlsRole, Event, Peer, PeerConfig, PeerDtlsConfig, PeerError, PeerState, Setup, Signal,
};
use harness::{HostId, Link, Node, World, epoch};
use ice_proto::{AgentConfig, CandidateType, FailureReason, TurnServer};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use stun_proto::{Transmit, TransportProtocol};

const A: &str = "198.51.100.1:5000";
const B: &str = "198.51.100.2:6000";

struct Options {
    controlling: bool,
    setup: Option<Setup>,
    relay_only: bool,
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn plan() -> ServerPlan {
    ServerPlan {
        stun: addr("198.51.100.10:3478"),
        stun_alternate: addr("198.51.100.11:3479"),
        turn: addr("198.51.100.20:3478"),
        turn_tcp: addr("198.51.100.20:443"),
        turn_relay: "198.51.100.21".parse().unwrap(),
        link: Link::default(),
    }
}

/// A peer on `local` with a certificate from `seed`; its fingerprint.
fn peer(local: &str, seed: u64, o: &Options) -> (Peer, Option<Fingerprint>) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let dtls = o.setup.map(|setup| PeerDtlsConfig {
        certificate: DtlsCertificate::generate(
            &RustCrypto,
            &mut rng,
            &CertificateParams::new(1_767_225_600),
        )
        .unwrap(),
        setup,
        provider: &RustCrypto,
        versions: vec![dtls_proto::ProtocolVersion::Dtls12],
    });
    let fingerprint = dtls.as_ref().map(|d| d.certificate.fingerprint());
    let config = PeerConfig {
        ice: AgentConfig {
            controlling: o.controlling,
            turn_servers: vec![TurnServer {
                server: plan().turn,
                transport: TransportProtocol::Udp,
                username: TURN_USER.into(),
                password: TURN_PASSWORD.into(),
            }],
            ..AgentConfig::default()
        },
        bases: vec![addr(local)],
        tcp_bases: Vec::new(),
        relay_only: o.relay_only,
        dtls,
    };
    (Peer::new(config, rng).unwrap(), fingerprint)
}

/// A peer node whose incoming signalling lines pass through `rewrite` (tampering, dropping),
/// whose incoming `dtls` line can be held back until a given time, and which can go dark (no
/// datagrams in or out, as if unplugged).
struct Rewrite {
    inner: PeerNode,
    rewrite: fn(String) -> Option<String>,
    hold_dtls_until: Option<Instant>,
    held: Vec<String>,
    dark: bool,
}

impl Node for Rewrite {
    fn handle_datagram(
        &mut self,
        now: Instant,
        t: TransportProtocol,
        s: SocketAddr,
        d: SocketAddr,
        p: Bytes,
    ) {
        if !self.dark {
            self.inner.handle_datagram(now, t, s, d, p);
        }
    }
    fn handle_timeout(&mut self, now: Instant) {
        if self.hold_dtls_until.is_some_and(|at| at <= now) {
            self.hold_dtls_until = None;
            for line in std::mem::take(&mut self.held) {
                self.inner.handle_signal(now, line);
            }
        }
        self.inner.handle_timeout(now);
    }
    fn poll_transmit(&mut self) -> Option<Transmit> {
        loop {
            let t = self.inner.poll_transmit()?;
            if !self.dark {
                return Some(t);
            }
        }
    }
    fn poll_timeout(&self) -> Option<Instant> {
        [self.inner.poll_timeout(), self.hold_dtls_until]
            .into_iter()
            .flatten()
            .min()
    }
    fn handle_signal(&mut self, now: Instant, line: String) {
        if let Some(line) = (self.rewrite)(line) {
            let is_dtls = matches!(Signal::parse_line(&line), Ok(Some(Signal::Dtls { .. })));
            if is_dtls && self.hold_dtls_until.is_some() {
                self.held.push(line);
            } else {
                self.inner.handle_signal(now, line);
            }
        }
    }
    fn poll_signal(&mut self) -> Option<String> {
        self.inner.poll_signal()
    }
}

fn keep(line: String) -> Option<String> {
    Some(line)
}

struct Run {
    world: World,
    a: HostId,
    b: HostId,
    fingerprints: (Option<Fingerprint>, Option<Fingerprint>),
}

impl Run {
    /// Peers A and B; B's incoming signalling passes through `rewrite_b` (and A's too when
    /// `both`).
    fn new(oa: Options, ob: Options, rewrite_b: fn(String) -> Option<String>) -> Self {
        Self::with(oa, ob, rewrite_b, false)
    }

    fn with(oa: Options, ob: Options, rewrite_b: fn(String) -> Option<String>, both: bool) -> Self {
        let mut world = World::new(9, epoch());
        standard_servers(&mut world, &plan());
        let internet = world.internet();
        let start = world.now();
        let (pa, fa) = peer(A, 1, &oa);
        let (pb, fb) = peer(B, 2, &ob);
        let node = Rewrite {
            inner: PeerNode::from_peer(pa, start),
            rewrite: if both { rewrite_b } else { keep },
            hold_dtls_until: None,
            held: Vec::new(),
            dark: false,
        };
        let a = world.add_host("a", internet, &[addr(A).ip()], Link::default(), node);
        let inner = PeerNode::from_peer(pb, start);
        let node = Rewrite {
            inner,
            rewrite: rewrite_b,
            hold_dtls_until: None,
            held: Vec::new(),
            dark: false,
        };
        let b = world.add_host("b", internet, &[addr(B).ip()], Link::default(), node);
        world.connect_signalling(a, b, Duration::from_millis(50));
        Self {
            world,
            a,
            b,
            fingerprints: (fa, fb),
        }
    }

    fn node(&self, host: HostId) -> &PeerNode {
        &self.world.node::<Rewrite>(host).unwrap().inner
    }

    /// Runs until both peers are ready or terminal (or a minute passes).
    fn settle(&mut self) {
        let (a, b) = (self.a, self.b);
        let settled = |w: &World| {
            let state = |h: HostId| w.node::<Rewrite>(h).unwrap().inner.peer().state().clone();
            [a, b].iter().all(|&h| {
                let s = state(h);
                s == PeerState::Ready || s.is_terminal()
            })
        };
        self.world
            .run_until_condition(Duration::from_secs(60), settled);
    }

    fn states(&self, host: HostId) -> Vec<PeerState> {
        self.node(host)
            .events()
            .iter()
            .filter_map(|e| match e {
                Event::StateChanged(s) => Some(s.clone()),
                _ => None,
            })
            .collect()
    }

    fn role(&self, host: HostId) -> Option<DtlsRole> {
        self.node(host).events().iter().find_map(|e| match e {
            Event::DtlsStarted { role } => Some(*role),
            _ => None,
        })
    }

    fn connected(&self, host: HostId) -> Option<&dtls_proto::HandshakeComplete> {
        self.node(host).events().iter().find_map(|e| match e {
            Event::DtlsConnected(done) => Some(done.as_ref()),
            _ => None,
        })
    }

    fn failure(&self, host: HostId) -> Option<PeerError> {
        match self.node(host).peer().state() {
            PeerState::Failed(e) => Some(e.clone()),
            _ => None,
        }
    }
}

fn offerer() -> Options {
    Options {
        controlling: true,
        setup: Some(Setup::ActPass),
        relay_only: false,
    }
}

fn answerer() -> Options {
    Options {
        controlling: false,
        setup: Some(Setup::Active),
        relay_only: false,
    }
}

#[test]
fn two_peers_go_through_the_lifecycle_and_exchange_keys_and_data_over_dtls() {
    let mut run = Run::new(offerer(), answerer(), keep);
    run.settle();
    let (a, b) = (run.a, run.b);
    for h in [a, b] {
        assert_eq!(
            run.states(h),
            [PeerState::Started, PeerState::Gathered, PeerState::Ready],
            "{h:?}"
        );
    }
    // actpass meets active: the answerer is the DTLS client.
    assert_eq!(run.role(a), Some(DtlsRole::Server));
    assert_eq!(run.role(b), Some(DtlsRole::Client));
    // Each side verified the other's certificate against the signalled fingerprint, and both
    // exported the same SRTP keying material.
    let (ca, cb) = (run.connected(a).unwrap(), run.connected(b).unwrap());
    assert_eq!(Some(ca.peer_fingerprint), run.fingerprints.1);
    assert_eq!(Some(cb.peer_fingerprint), run.fingerprints.0);
    let (ka, kb) = (ca.srtp.as_ref().unwrap(), cb.srtp.as_ref().unwrap());
    assert_eq!(ka.material, kb.material);
    assert_eq!(ka.local(false), kb.remote(true));
    // The same through the getters: what A sends with, B receives with, and back.
    let keys = |h| {
        let p = run.node(h).peer();
        let srtp = p.handshake().unwrap().srtp.clone().unwrap();
        (srtp, p.dtls_role() == Some(DtlsRole::Client))
    };
    let ((sa, a_client), (sb, b_client)) = (keys(a), keys(b));
    assert_eq!(sa.local(a_client), sb.remote(b_client));
    assert_eq!(sa.remote(a_client), sb.local(b_client));
    assert_ne!(sa.local(a_client), sa.remote(a_client));
    // The DTLS handshake started only once ICE had a connected component.
    let events = run.node(b).events();
    let position = |f: &dyn Fn(&Event) -> bool| events.iter().position(f).unwrap();
    let connected = position(&|e| {
        matches!(e, Event::Ice(i) if matches!(**i, ice_proto::Event::ComponentStateChanged {
            state: ice_proto::ComponentState::Connected, .. }))
    });
    let started = position(&|e| matches!(e, Event::DtlsStarted { .. }));
    let ready = position(&|e| matches!(e, Event::StateChanged(PeerState::Ready)));
    assert!(connected < started && started < ready);

    // Pings flow over DTLS for a while; then A closes and B sees the close_notify.
    run.world.run_for(Duration::from_secs(5));
    assert!(run.node(a).pings_received() >= 4);
    assert!(run.node(b).pings_received() >= 4);
    assert!(run.node(a).connected() && run.node(b).connected());
    run.world
        .with_node::<Rewrite, _>(a, |n, now| n.inner.handle_close(now));
    run.world.run_for(Duration::from_secs(1));
    assert_eq!(run.node(a).peer().state(), &PeerState::Finished);
    assert_eq!(run.node(b).peer().state(), &PeerState::Finished);
}

#[test]
fn a_wrong_fingerprint_fails_the_handshake_with_both_values() {
    fn tamper(line: String) -> Option<String> {
        match Signal::parse_line(&line) {
            Ok(Some(Signal::Dtls { setup, .. })) => Some(
                Signal::Dtls {
                    fingerprint: Fingerprint::from([0x42; 32]),
                    setup,
                }
                .to_line(),
            ),
            _ => Some(line),
        }
    }
    let mut run = Run::new(offerer(), answerer(), tamper);
    run.settle();
    // B (the client) checks A's certificate against the tampered fingerprint and refuses it.
    let Some(PeerError::Dtls(dtls_proto::Error::FingerprintMismatch { expected, actual })) =
        run.failure(run.b)
    else {
        panic!("b: {:?}", run.failure(run.b));
    };
    assert_eq!(expected, Fingerprint::from([0x42; 32]).to_string());
    assert_eq!(Some(actual), run.fingerprints.0.map(|f| f.to_string()));
    // A hears the bad_certificate alert; neither side was ever ready.
    assert!(
        matches!(run.failure(run.a), Some(PeerError::Dtls(_))),
        "{:?}",
        run.failure(run.a)
    );
    for h in [run.a, run.b] {
        assert!(!run.states(h).contains(&PeerState::Ready));
        assert!(!run.node(h).peer().is_dtls_done());
    }
    let message = run.failure(run.b).unwrap().to_string();
    assert!(message.contains("fingerprint mismatch"), "{message}");
}

#[test]
fn two_active_sides_fail_with_a_setup_conflict() {
    let mut a = offerer();
    a.setup = Some(Setup::Active);
    let mut run = Run::new(a, answerer(), keep);
    run.settle();
    for h in [run.a, run.b] {
        assert_eq!(
            run.failure(h),
            Some(PeerError::SetupConflict {
                local: Setup::Active,
                remote: Setup::Active
            })
        );
    }
}

#[test]
fn two_controlling_offerers_resolve_ice_and_dtls_roles() {
    let mut b = offerer();
    b.setup = Some(Setup::ActPass);
    let mut run = Run::new(offerer(), b, keep);
    run.settle();
    let (a, b) = (run.a, run.b);
    for h in [a, b] {
        assert_eq!(run.node(h).peer().state(), &PeerState::Ready, "{h:?}");
    }
    let switched = |h| {
        run.node(h).events().iter().any(
            |e| matches!(e, Event::Ice(i) if matches!(**i, ice_proto::Event::RoleChanged { .. })),
        )
    };
    assert!(switched(a) || switched(b), "one side switched its ICE role");
    let roles = [run.role(a).unwrap(), run.role(b).unwrap()];
    assert!(roles.contains(&DtlsRole::Client) && roles.contains(&DtlsRole::Server));
}

#[test]
fn relay_only_peers_talk_through_the_turn_server() {
    let relay = |mut o: Options| {
        o.relay_only = true;
        o
    };
    let mut run = Run::new(relay(offerer()), relay(answerer()), keep);
    run.settle();
    for h in [run.a, run.b] {
        let p = run.node(h).peer();
        assert_eq!(p.state(), &PeerState::Ready, "{h:?}");
        assert_eq!(
            p.selected_types(),
            Some((CandidateType::Relayed, CandidateType::Relayed))
        );
        // Only relayed candidates were signalled.
        let signalled = p
            .agent()
            .stream(p.stream())
            .unwrap()
            .remote_candidates()
            .all(|c| c.kind == CandidateType::Relayed);
        assert!(signalled);
    }
    run.world.run_for(Duration::from_secs(3));
    assert!(run.node(run.a).pings_received() >= 2);
}

#[test]
fn without_dtls_data_flows_as_plain_datagrams() {
    let plain = |mut o: Options| {
        o.setup = None;
        o
    };
    let mut run = Run::new(plain(offerer()), plain(answerer()), keep);
    run.settle();
    run.world.run_for(Duration::from_secs(3));
    for h in [run.a, run.b] {
        assert_eq!(run.node(h).peer().state(), &PeerState::Ready);
        assert_eq!(run.role(h), None);
        assert!(run.node(h).pings_received() >= 2);
    }
}

#[test]
fn no_candidates_fail_ice_with_its_reason() {
    fn no_candidates(line: String) -> Option<String> {
        match Signal::parse_line(&line) {
            Ok(Some(Signal::Candidate(_))) => None,
            _ => Some(line),
        }
    }
    let mut run = Run::with(offerer(), answerer(), no_candidates, true);
    run.settle();
    // Neither side has a remote candidate, and both heard end-of-candidates: ICE fails.
    for h in [run.a, run.b] {
        let failure = run.failure(h);
        assert_eq!(failure, Some(PeerError::Ice(FailureReason::ChecksFailed)));
        let message = failure.unwrap().to_string();
        assert!(message.contains("every candidate pair failed"), "{message}");
        assert_eq!(
            run.states(h).last(),
            Some(&PeerState::Failed(PeerError::Ice(
                FailureReason::ChecksFailed
            )))
        );
    }
}

#[test]
fn a_peer_that_goes_silent_fails_on_consent_expiry() {
    let mut run = Run::new(offerer(), answerer(), keep);
    run.settle();
    assert_eq!(run.node(run.a).peer().state(), &PeerState::Ready);
    let b = run.b;
    run.world.with_node::<Rewrite, _>(b, |n, _| n.dark = true);
    // RFC 7675: consent expires 30 s after the last response.
    run.world.run_for(Duration::from_secs(29));
    assert_eq!(run.node(run.a).peer().state(), &PeerState::Ready);
    run.world.run_for(Duration::from_secs(2));
    let failure = run.failure(run.a);
    assert_eq!(failure, Some(PeerError::Ice(FailureReason::ConsentExpired)));
    let message = failure.unwrap().to_string();
    assert!(message.contains("consent"), "{message}");
}

#[test]
fn datagrams_that_are_not_dtls_are_demultiplexed_away() {
    let mut run = Run::new(offerer(), answerer(), keep);
    run.settle();
    let (a, before) = (run.a, run.node(run.a).peer().dropped());
    let events = run.node(a).events().len();
    // RTP (first byte 128..=191, RFC 7983) and a byte no protocol claims, from the peer.
    for payload in [&[0x80u8, 0x60, 0, 1][..], &[0x05, 1, 2, 3][..]] {
        run.world.with_node::<Rewrite, _>(a, |n, now| {
            n.handle_datagram(
                now,
                TransportProtocol::Udp,
                addr(B),
                addr(A),
                Bytes::copy_from_slice(payload),
            );
        });
    }
    let node = run.node(a);
    assert_eq!(node.peer().dropped(), before + 2);
    assert_eq!(node.peer().state(), &PeerState::Ready);
    assert!(
        !node.events()[events..]
            .iter()
            .any(|e| matches!(e, Event::Data(_)))
    );
}

#[test]
fn dtls_that_arrives_before_the_fingerprint_is_kept_until_it_does() {
    let mut run = Run::new(offerer(), answerer(), keep);
    // A (the DTLS server) learns B's fingerprint only at 0.5 s, after B's ClientHello came.
    let release = run.world.now() + Duration::from_millis(500);
    let a = run.a;
    run.world
        .with_node::<Rewrite, _>(a, |n, _| n.hold_dtls_until = Some(release));
    run.settle();
    assert_eq!(run.node(a).peer().state(), &PeerState::Ready);
    let started = run
        .node(a)
        .events()
        .iter()
        .position(|e| matches!(e, Event::DtlsStarted { .. }))
        .unwrap();
    let received = run.node(a).events()[..started]
        .iter()
        .any(|e| matches!(e, Event::Ice(i) if matches!(**i, ice_proto::Event::ComponentStateChanged { state: ice_proto::ComponentState::Connected, .. })));
    assert!(received, "A was connected before it could start DTLS");
    // The kept ClientHello is answered at once, not at B's retransmission (1 s after it).
    let ready = run.node(a).ready_at().unwrap();
    assert!(
        ready - release < Duration::from_millis(300),
        "{:?}",
        ready - release
    );
    assert_eq!(run.node(a).peer().dropped(), 0);
}

#[test]
fn sending_before_ready_is_refused() {
    let (mut p, _) = peer(A, 1, &offerer());
    let now = epoch();
    assert!(matches!(
        p.handle_send(now, b"early"),
        Err(harness::peer::PeerSendError::NotReady("initial"))
    ));
    p.handle_start(now);
    assert!(matches!(
        p.handle_send(now, b"early"),
        Err(harness::peer::PeerSendError::NotReady("started"))
    ));
    // A late or repeated timeout, or a second start, changes nothing.
    let signals = std::iter::from_fn(|| p.poll_signal()).count();
    p.handle_timeout(now);
    p.handle_timeout(now);
    p.handle_start(now);
    assert_eq!(std::iter::from_fn(|| p.poll_signal()).count(), 0);
    assert!(signals >= 3, "credentials, dtls, a host candidate");
}

#[test]
fn a_run_replays_bit_for_bit() {
    let trace = || {
        let mut run = Run::new(offerer(), answerer(), keep);
        run.settle();
        run.world.run_for(Duration::from_secs(3));
        run.world.trace_hash()
    };
    assert_eq!(trace(), trace());
}

#[test]
fn random_datagrams_and_lines_leave_a_ready_peer_ready() {
    use rand_core::RngCore;
    let mut run = Run::new(offerer(), answerer(), keep);
    run.settle();
    let a = run.a;
    let mut rng = ChaCha20Rng::seed_from_u64(77);
    for i in 0..2000 {
        let mut payload = vec![0u8; (rng.next_u32() % 300) as usize];
        rng.fill_bytes(&mut payload);
        // Every fourth one looks like a DTLS record header (content type, version 1.2).
        if i % 4 == 0 && payload.len() >= 3 {
            payload[0] = 20 + (rng.next_u32() % 4) as u8;
            payload[1..3].copy_from_slice(&[0xfe, 0xfd]);
        }
        let line = String::from_utf8_lossy(&payload).into_owned();
        run.world.with_node::<Rewrite, _>(a, |n, now| {
            n.handle_datagram(
                now,
                TransportProtocol::Udp,
                addr(B),
                addr(A),
                Bytes::from(payload),
            );
            n.handle_signal(now, line);
        });
    }
    let received = run.node(a).pings_received();
    run.world.run_for(Duration::from_secs(3));
    let node = run.node(a);
    assert_eq!(node.peer().state(), &PeerState::Ready);
    assert!(node.pings_received() >= received + 2, "pings still flow");
    assert!(node.peer().dropped() > 0);
    // The DTLS-shaped garbage reached the endpoint, which counted and dropped it.
    let stats = node.peer().dtls_stats().unwrap();
    let dropped = stats.records_malformed
        + stats.records_failed_authentication
        + stats.records_unexpected_epoch
        + stats.records_replayed;
    assert!(dropped > 0, "{stats:?}");
}

/// B as an application that answers each `ping` with a `pong` at once (as `harness peer`
/// does), on a host whose outgoing connectivity checks are lost until `drop_checks_until`:
/// the other side's checks succeed, ours do not, so B has no valid pair of its own yet.
struct Answering {
    inner: PeerNode,
    now: Instant,
    seen: usize,
    drop_checks_until: Instant,
    /// Each answer: when, B's state then, and whether the peer took it.
    answers: Vec<(Instant, PeerState, bool)>,
}

impl Answering {
    fn answer(&mut self, now: Instant) {
        self.now = now;
        let pings = self.inner.events()[self.seen..]
            .iter()
            .filter(|e| matches!(e, Event::Data(d) if d.as_slice() == b"ping"))
            .count();
        self.seen = self.inner.events().len();
        for _ in 0..pings {
            let state = self.inner.peer().state().clone();
            let taken = self.inner.peer_mut().handle_send(now, b"pong").is_ok();
            self.answers.push((now, state, taken));
        }
    }
}

impl Node for Answering {
    fn handle_datagram(
        &mut self,
        now: Instant,
        t: TransportProtocol,
        s: SocketAddr,
        d: SocketAddr,
        p: Bytes,
    ) {
        self.inner.handle_datagram(now, t, s, d, p);
        self.answer(now);
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.inner.handle_timeout(now);
        self.answer(now);
    }
    fn poll_transmit(&mut self) -> Option<Transmit> {
        loop {
            let t = self.inner.poll_transmit()?;
            let check = stun_proto::Message::parse(&t.payload).is_ok_and(|m| {
                m.method() == stun_proto::Method::BINDING && m.class() == stun_proto::Class::Request
            });
            if !(check && t.destination == addr(A) && self.now < self.drop_checks_until) {
                return Some(t);
            }
        }
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.inner.poll_timeout()
    }
    fn handle_signal(&mut self, now: Instant, line: String) {
        self.inner.handle_signal(now, line);
        self.answer(now);
    }
    fn poll_signal(&mut self) -> Option<String> {
        self.inner.poll_signal()
    }
}

/// Issue 14: A (controlling) reaches ready first and pings; B's own checks to A's host
/// address are lost for 1.5 s, so B has no valid pair and is not ready when the ping
/// arrives. B's answer is taken all the same, waits for B's first valid pair, and reaches
/// A before B is ready — the data check does not
/// depend on who becomes ready first (RFC 8445 §12). Before, `handle_send` refused it
/// ("the peer is not ready") and a third party that sends each datagram once never got an
/// answer.
#[test]
fn data_that_arrives_before_ready_is_answered() {
    answered_before_ready(false);
}

/// The same with DTLS: B's handshake completes over its first valid pair (through the
/// relay) while its nomination waits for its own direct check, and B answers A's ping over
/// DTLS then — data needs the handshake, not the nomination.
#[test]
fn dtls_data_that_arrives_before_ready_is_answered() {
    answered_before_ready(true);
}

fn answered_before_ready(dtls: bool) {
    let setup = |mut o: Options| {
        if !dtls {
            o.setup = None;
        }
        o
    };
    let mut world = World::new(9, epoch());
    standard_servers(&mut world, &plan());
    let internet = world.internet();
    let start = world.now();
    let (pa, _) = peer(A, 1, &setup(offerer()));
    let (pb, _) = peer(B, 2, &setup(answerer()));
    let a = world.add_host(
        "a",
        internet,
        &[addr(A).ip()],
        Link::default(),
        PeerNode::from_peer(pa, start),
    );
    let node = Answering {
        inner: PeerNode::from_peer(pb, start),
        now: start,
        seen: 0,
        drop_checks_until: start + Duration::from_millis(1_500),
        answers: Vec::new(),
    };
    let b = world.add_host("b", internet, &[addr(B).ip()], Link::default(), node);
    world.connect_signalling(a, b, Duration::from_millis(50));
    let pong = |w: &World| {
        w.node::<PeerNode>(a)
            .unwrap()
            .events()
            .iter()
            .any(|e| matches!(e, Event::Data(d) if d.as_slice() == b"pong"))
    };
    assert!(world.run_until_condition(Duration::from_secs(10), pong));
    let answering = world.node::<Answering>(b).unwrap();
    let (at, state, taken) = answering.answers.first().cloned().unwrap();
    assert!(taken, "B took its answer in state {state}");
    assert_ne!(state, PeerState::Ready, "B answered before it was ready");
    let a_ready = world.node::<PeerNode>(a).unwrap().ready_at().unwrap();
    assert!(at >= a_ready && at < a_ready + Duration::from_millis(100));
    // The pong reached A before B was ready: it left on B's first valid pair (through the
    // relay, while B's direct checks were still being lost), not at B's nomination.
    assert_eq!(world.node::<Answering>(b).unwrap().inner.ready_at(), None);
    assert_eq!(
        world.node::<Answering>(b).unwrap().inner.peer().dropped(),
        0
    );
}
