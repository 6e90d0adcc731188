//! The SFU shape's cost (issue 22): an endpoint with 100 000 connected ICE-lite sessions on
//! one port — retained memory per session (a counting global allocator), the demux cost of
//! an application datagram, the cost of answering a consent check beside its floor (the
//! STUN work any implementation must do: parse, verify MESSAGE-INTEGRITY and FINGERPRINT,
//! build the signed success), and `poll_timeout` with 100 000 armed deadlines. Results:
//! docs/performance.md.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]
// The counting global allocator needs `unsafe impl GlobalAlloc`; it only forwards to
// `System` and counts.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, criterion_group, criterion_main};
use ice_proto::endpoint::{Endpoint, EndpointConfig, Handled, SessionId};
use ice_proto::{Credentials, TransportProtocol};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use stun_proto::attribute::{IceControlling, Priority, UseCandidate, Username, XorMappedAddress};
use stun_proto::{Class, IntegrityKey, Message, MessageBuilder, MessageType, TransactionId};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const SESSIONS: u32 = 100_000;

fn port() -> SocketAddr {
    "192.0.2.1:3478".parse().unwrap()
}

/// The `i`th peer's address: 100 000 distinct sources.
fn source(i: u32) -> SocketAddr {
    SocketAddr::from((
        [198, 18, (i >> 8) as u8, i as u8],
        10_000 + (i % 50_000) as u16,
    ))
}

/// A consent check (a browser's: USERNAME, PRIORITY, ICE-CONTROLLING, USE-CANDIDATE,
/// MESSAGE-INTEGRITY, FINGERPRINT) to the session with credentials `ours`.
fn check(ours: &Credentials, theirs: &str, tid: u32) -> Bytes {
    let mut id = [0u8; 12];
    id[..4].copy_from_slice(&tid.to_be_bytes());
    let mut b = MessageBuilder::new_bytes(MessageType::BINDING_REQUEST, TransactionId::from(id));
    let username = format!("{}:{theirs}", ours.ufrag);
    b.add(&Username::new(&username).unwrap()).unwrap();
    b.add(&Priority(1_853_817_087)).unwrap();
    b.add(&IceControlling(7)).unwrap();
    b.add(&UseCandidate).unwrap();
    b.add_message_integrity(&IntegrityKey::new(ours.pwd.as_bytes()))
        .unwrap();
    b.add_fingerprint().unwrap();
    b.into_bytes()
}

/// 100 000 sessions, each connected by one check from its own source.
fn connected(now: Instant) -> (Endpoint<ChaCha20Rng>, Vec<(SessionId, Credentials)>, isize) {
    let before = LIVE.load(Ordering::Relaxed);
    let mut sfu = Endpoint::new(EndpointConfig::default(), ChaCha20Rng::seed_from_u64(1));
    let mut sessions = Vec::with_capacity(SESSIONS as usize);
    for i in 0..SESSIONS {
        let theirs = format!("peer{i:04x}");
        let id = sfu.add_session(now, &theirs).unwrap();
        let ours = sfu.session(id).unwrap().local_credentials().clone();
        let c = check(&ours, &theirs, i);
        let handled = sfu.handle_datagram(now, TransportProtocol::Udp, source(i), port(), &c);
        assert_eq!(handled, Handled::Consumed);
        while sfu.poll_transmit().is_some() {}
        while sfu.poll_event().is_some() {}
        sessions.push((id, ours));
    }
    let retained = LIVE.load(Ordering::Relaxed) - before;
    (sfu, sessions, retained)
}

fn bench(c: &mut Criterion) {
    #[allow(clippy::disallowed_methods)] // the origin of virtual time
    let now = Instant::now();
    let (mut sfu, sessions, retained) = connected(now);
    // The credentials kept by the bench itself are not the endpoint's.
    let kept: isize = sessions
        .iter()
        .map(|(_, c)| (c.ufrag.capacity() + c.pwd.capacity()) as isize)
        .sum::<isize>()
        + (sessions.capacity() * std::mem::size_of::<(SessionId, Credentials)>()) as isize;
    let endpoint = retained - kept;
    eprintln!(
        "{SESSIONS} connected sessions: {endpoint} bytes retained by the endpoint, {} per session",
        endpoint / isize::try_from(SESSIONS).unwrap()
    );

    let mut g = c.benchmark_group("endpoint, 100 000 sessions");
    let mut i = 0u32;
    g.bench_function("demux an application datagram", |b| {
        b.iter(|| {
            i = (i + 7_919) % SESSIONS;
            let handled = sfu.handle_datagram(
                now,
                TransportProtocol::Udp,
                source(i),
                port(),
                black_box(b"\x80\x60 rtp payload of a few bytes"),
            );
            black_box(matches!(handled, Handled::Data { .. }))
        })
    });
    g.bench_function(
        "demux an application datagram, one session (cache-warm)",
        |b| {
            b.iter(|| {
                let handled = sfu.handle_datagram(
                    now,
                    TransportProtocol::Udp,
                    black_box(source(4_242)),
                    port(),
                    black_box(b"\x80\x60 rtp payload of a few bytes"),
                );
                black_box(matches!(handled, Handled::Data { .. }))
            })
        },
    );
    let stranger = SocketAddr::from(([203, 0, 113, 9], 4_444));
    g.bench_function("drop a datagram from an unknown source", |b| {
        b.iter(|| {
            black_box(sfu.handle_datagram(
                now,
                TransportProtocol::Udp,
                stranger,
                port(),
                black_box(b"\x80\x60 rtp"),
            ))
        })
    });
    let (_, ours) = &sessions[4_242];
    let consent = check(ours, "peer1092", 1);
    g.bench_function("answer a consent check", |b| {
        b.iter(|| {
            let handled = sfu.handle_datagram(
                now,
                TransportProtocol::Udp,
                source(4_242),
                port(),
                black_box(&consent),
            );
            black_box(handled);
            black_box(sfu.poll_transmit())
        })
    });
    let key = IntegrityKey::new(ours.pwd.as_bytes());
    g.bench_function("floor: parse, verify, build the signed success", |b| {
        b.iter(|| {
            let m = Message::parse(black_box(&consent)).unwrap();
            m.verify_fingerprint().unwrap();
            m.verify_integrity(&key).unwrap();
            let mut r =
                MessageBuilder::response_to(BytesMut::with_capacity(64), &m, Class::Success)
                    .unwrap();
            r.add(&XorMappedAddress(source(4_242))).unwrap();
            r.add_message_integrity(&key).unwrap();
            r.add_fingerprint().unwrap();
            black_box(r.into_bytes())
        })
    });
    g.bench_function("poll_timeout with 100 000 armed deadlines", |b| {
        b.iter(|| black_box(sfu.poll_timeout()))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = bench
}
criterion_main!(benches);
