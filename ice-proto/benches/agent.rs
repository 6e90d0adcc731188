//! The agent's cost: CPU time and virtual time from gathering to a selected pair for two
//! agents with three host candidates each (9 pairs per side), memory held per connected
//! agent (a counting global allocator), and the per-datagram cost of the hot paths once
//! connected (application data in, a consent check answered). Results:
//! docs/performance-ice.md.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]
// The counting global allocator needs `unsafe impl GlobalAlloc`; it only forwards to
// `System` and counts.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ice_proto::{Agent, AgentConfig, ConnectionState, Event, StreamId};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use stun_proto::{Transmit, TransportProtocol};

/// Counts live heap bytes and allocations.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

type A = Agent<ChaCha20Rng>;

/// How long connected agents run on before their memory is counted: several consent rounds
/// (RFC 7675 §5.1, about every 5 s), so what is measured is a call's steady state.
const LINGER: Duration = Duration::from_secs(30);

fn agent(controlling: bool, seed: u64, host: [u8; 4], bases: u8) -> (A, StreamId) {
    let config = AgentConfig {
        controlling,
        ..AgentConfig::default()
    };
    let mut a = Agent::new(config, ChaCha20Rng::seed_from_u64(seed));
    let s = a.add_stream(1).unwrap();
    let mut view = a.stream_mut(s).unwrap();
    for i in 0..bases {
        let ip = [host[0], host[1], host[2], host[3] + i];
        view.add_base(1, (ip, 5000).into()).unwrap();
    }
    (a, s)
}

/// Moves `x`'s output to `y` (candidates through the SDP grammar); whether anything moved.
fn exchange(now: Instant, x: &mut A, y: &mut A, sy: StreamId, queue: &mut Vec<Transmit>) -> bool {
    let mut moved = false;
    while let Some(e) = x.poll_event() {
        moved = true;
        match e {
            Event::NewLocalCandidate { candidate, .. } => {
                let line = candidate.to_string();
                y.handle_remote_candidate(now, sy, line.parse().unwrap())
                    .unwrap();
            }
            Event::CandidateGatheringDone { .. } => {
                y.handle_remote_end_of_candidates(now, sy).unwrap()
            }
            _ => {}
        }
    }
    while let Some(t) = x.poll_transmit() {
        moved = true;
        queue.push(t);
    }
    moved
}

/// Two agents, `bases` host candidates each, 5 ms one way, datagrams from or to `blocked`
/// addresses dropped: returns them connected, with the virtual time it took, after running
/// on for `linger` (consent checks, keepalives) once both had selected their pair.
fn connect(
    start: Instant,
    bases: u8,
    blocked: &[SocketAddr],
    linger: Duration,
) -> (A, StreamId, A, StreamId, Duration) {
    let (mut a, sa) = agent(true, 1, [192, 0, 2, 1], bases);
    let (mut b, sb) = agent(false, 2, [198, 51, 100, 1], bases);
    let ca = a.stream(sa).unwrap().local_credentials().clone();
    let cb = b.stream(sb).unwrap().local_credentials().clone();
    a.handle_remote_credentials(start, sa, cb).unwrap();
    b.handle_remote_credentials(start, sb, ca).unwrap();
    a.handle_gather(start, sa).unwrap();
    b.handle_gather(start, sb).unwrap();
    let latency = Duration::from_millis(5);
    let mut now = start;
    // (deliver at, to a?, datagram)
    let mut wire: Vec<(Instant, bool, Transmit)> = Vec::new();
    let (mut qa, mut qb) = (Vec::new(), Vec::new());
    let mut completed = None;
    loop {
        while exchange(now, &mut a, &mut b, sb, &mut qa)
            | exchange(now, &mut b, &mut a, sa, &mut qb)
        {
            wire.extend(qa.drain(..).map(|t| (now + latency, false, t)));
            wire.extend(qb.drain(..).map(|t| (now + latency, true, t)));
        }
        if a.state() == ConnectionState::Completed && b.state() == ConnectionState::Completed {
            let at = *completed.get_or_insert(now);
            if now >= at + linger {
                return (a, sa, b, sb, at - start);
            }
        }
        let next_wire = wire.iter().map(|(t, _, _)| *t).min();
        let next = [a.poll_timeout(), b.poll_timeout(), next_wire]
            .into_iter()
            .flatten()
            .min()
            .unwrap();
        now = now.max(next);
        let (due, later): (Vec<_>, Vec<_>) = wire.drain(..).partition(|(t, _, _)| *t <= now);
        wire = later;
        for (_, to_a, t) in due {
            if blocked.contains(&t.source) || blocked.contains(&t.destination) {
                continue;
            }
            let x = if to_a { &mut a } else { &mut b };
            x.handle_datagram(now, t.transport, t.source, t.destination, &t.payload);
        }
        if a.poll_timeout().is_some_and(|t| t <= now) {
            a.handle_timeout(now);
        }
        if b.poll_timeout().is_some_and(|t| t <= now) {
            b.handle_timeout(now);
        }
    }
}

fn bench(c: &mut Criterion) {
    #[allow(clippy::disallowed_methods)] // the origin of virtual time
    let start = Instant::now();

    // Virtual time and memory, measured once (deterministic): the heap each connected agent
    // holds (consent running, every queue drained), plus the agent value itself, wherever
    // the caller keeps it.
    for bases in [1, 3] {
        let before = LIVE.load(Ordering::Relaxed);
        let allocations = ALLOCATIONS.load(Ordering::Relaxed);
        let (a, sa, b, sb, virtual_time) = connect(start, bases, &[], LINGER);
        let live = LIVE.load(Ordering::Relaxed) - before;
        let allocs = ALLOCATIONS.load(Ordering::Relaxed) - allocations;
        let pairs = a.stream(sa).unwrap().pairs().count();
        let inline = std::mem::size_of::<A>();
        eprintln!(
            "two agents, {bases} host candidate(s) each ({pairs} pairs per side): selected pair \
             on both after {virtual_time:?} of virtual time; {live} heap bytes live for both \
             agents, {} per agent, + {inline} bytes of the agent value = {} bytes retained per \
             connected agent; {allocs} allocations during the whole exchange",
            live / 2,
            live / 2 + inline as isize,
        );
        let checks = a.stats().checks_sent + b.stats().checks_sent;
        eprintln!("checks sent (both): {checks}");
        drop((a, b, sb));
    }

    c.bench_function(
        "gather to selected pair, two agents, 3 candidates each",
        |bench| bench.iter(|| black_box(connect(start, 3, &[], Duration::ZERO))),
    );

    // Worst case: only the lowest-priority pair works (the first two bases of each side
    // are blocked), so every pair is checked and retransmitted until the nomination wait.
    let blocked: Vec<SocketAddr> = [
        "192.0.2.1:5000",
        "192.0.2.2:5000",
        "198.51.100.1:5000",
        "198.51.100.2:5000",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    let (a, _, b, _, virtual_time) = connect(start, 3, &blocked, Duration::ZERO);
    eprintln!(
        "worst case (only the last of 9 pairs works): selected pair on both after \
         {virtual_time:?} of virtual time; checks sent {} + {}, retransmissions {} + {}",
        a.stats().checks_sent,
        b.stats().checks_sent,
        a.stats().retransmissions,
        b.stats().retransmissions
    );
    drop((a, b));
    c.bench_function(
        "gather to selected pair, only the lowest-priority pair works",
        |bench| bench.iter(|| black_box(connect(start, 3, &blocked, Duration::ZERO))),
    );

    // Hot paths once connected.
    let (mut a, sa, mut b, sb, elapsed) = connect(start, 3, &[], Duration::ZERO);
    let now = start + elapsed;
    let data = Transmit::from(a.handle_send(now, sa, 1, &[0x80; 160]).unwrap());
    // Heap allocations per call on the hot paths (counting allocator).
    let count = |f: &mut dyn FnMut()| {
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        f();
        ALLOCATIONS.load(Ordering::Relaxed) - before
    };
    let receive = count(&mut || {
        black_box(b.handle_datagram(
            now,
            TransportProtocol::Udp,
            data.source,
            data.destination,
            &data.payload,
        ));
    });
    let send = count(&mut || {
        black_box(a.handle_send(now, sa, 1, &[0x80; 160]).unwrap());
    });
    eprintln!("allocations per call: receive data {receive}, send data {send}");
    c.bench_function("receive application data (160 B RTP-like)", |bench| {
        bench.iter(|| {
            black_box(b.handle_datagram(
                now,
                TransportProtocol::Udp,
                data.source,
                data.destination,
                black_box(&data.payload),
            ));
        })
    });
    c.bench_function("send application data (160 B)", |bench| {
        bench.iter(|| {
            black_box(a.handle_send(now, sa, 1, black_box(&[0x80; 160])).unwrap());
        })
    });
    // A consent check from A, answered by B (request parsed, verified, answered).
    let later = now + Duration::from_secs(7);
    a.handle_timeout(later);
    let check = std::iter::from_fn(|| a.poll_transmit())
        .find(|t| t.destination == data.destination)
        .expect("a consent check");
    // B's own consent check may be due at `later` too: let it go first, so that only the
    // answer is counted.
    b.handle_timeout(later);
    while b.poll_transmit().is_some() {}
    let answer = count(&mut || {
        b.handle_datagram(
            later,
            TransportProtocol::Udp,
            check.source,
            check.destination,
            &check.payload,
        );
    });
    let response = std::iter::from_fn(|| b.poll_transmit())
        .find(|t| t.destination == check.source)
        .expect("an answer");
    let consume = count(&mut || {
        black_box(a.handle_datagram(
            later,
            TransportProtocol::Udp,
            response.source,
            response.destination,
            &response.payload,
        ));
    });
    eprintln!(
        "allocations per call: answer a consent check {answer}, take a consent response {consume}"
    );
    c.bench_function("answer a consent check (verify + respond)", |bench| {
        bench.iter(|| {
            let r = b.handle_datagram(
                later,
                TransportProtocol::Udp,
                check.source,
                check.destination,
                black_box(&check.payload),
            );
            while b.poll_transmit().is_some() {}
            black_box(r);
        })
    });
    let _ = sb;
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(30);
    targets = bench
}
criterion_main!(benches);
