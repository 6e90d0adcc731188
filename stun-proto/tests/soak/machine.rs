//! The TURN server machine soaked, at the machine level (issue 19): `cycles`
//! allocate/refresh/deallocate cycles, each by a client of its own, then `abandoned`
//! allocations whose clients vanish without deleting them, then time moved past their
//! lifetime. A global allocator counts the heap this thread holds (live bytes and live
//! blocks) before and after. Time is an input: the refreshes and the expiry cost no waiting.
//! Shared by `tests/soak` (a CI-sized run) and `benches/turn_soak.rs` (the full one).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use stun_proto::TransportProtocol;
use stun_proto::turn::client::{Timer, TurnClient, TurnClientConfig};
use stun_proto::turn::server::{FiveTuple, TurnServer, TurnServerConfig};

/// Counts the heap each thread holds; delegates to `System`.
struct Tracking;

thread_local! {
    static LIVE: Cell<Live> = const { Cell::new(Live { bytes: 0, blocks: 0 }) };
}

fn track(bytes: isize, blocks: isize) {
    let _ = LIVE.try_with(|live| {
        let l = live.get();
        live.set(Live {
            bytes: l.bytes + bytes,
            blocks: l.blocks + blocks,
        });
    });
}

// Delegates to the system allocator and only counts.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            track(layout.size() as isize, 1);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        track(-(layout.size() as isize), -1);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            track(new_size as isize - layout.size() as isize, 0);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Tracking = Tracking;

/// The heap this thread holds (allocated here and not yet freed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Live {
    /// Bytes.
    pub bytes: isize,
    /// Blocks.
    pub blocks: isize,
}

impl Live {
    fn now() -> Self {
        LIVE.with(Cell::get)
    }
}

/// What a soak saw.
#[derive(Debug)]
pub struct Soak {
    /// The heap once the server is built and warmed up (one cycle and one abandoned
    /// allocation of each kind, expired: every table and queue has been used once).
    pub before: Live,
    /// With every abandoned allocation live.
    pub peak: Live,
    /// After the soak, once the abandoned allocations' lifetime is over.
    pub after: Live,
    /// Allocations made (cycles and abandoned ones), refreshes answered, deletions.
    pub allocated: u64,
    /// Refreshes that extended an allocation.
    pub refreshed: u64,
    /// Allocations deleted by their client (cycles).
    pub deallocated: u64,
    /// Allocations that expired (abandoned ones).
    pub expired: u64,
}

/// The server's listening address.
const LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 3478);
/// Relay ports per relay IP.
const PORTS_PER_IP: u32 = 50_000;

/// `cycles` allocate/refresh/deallocate cycles, then `abandoned` allocations left to expire.
pub fn run(cycles: u64, abandoned: u64) -> Soak {
    #[allow(clippy::disallowed_methods)] // one real instant to start the virtual clock
    let mut now = Instant::now();
    let relays = abandoned.max(1) + 1;
    let relay_addresses = (0..relays).map(|i| address(0xC000_0200, i)).collect();
    let mut config = TurnServerConfig::new("soak.test", relay_addresses);
    config.max_allocations = usize::try_from(relays).expect("a small count");
    config.max_allocations_per_user = config.max_allocations;
    let mut server = TurnServer::new(now, config, ChaCha20Rng::seed_from_u64(1));
    server.add_user("soak", "secret").expect("a valid user");
    let mut counts = Counts::default();
    let mut client_number = 0;
    // Warm-up: every table and queue used once.
    cycle(&mut server, &mut now, &mut client_number, &mut counts);
    abandon(&mut server, &mut now, 1, &mut client_number, &mut counts);
    expire(&mut server, &mut now, &mut counts);
    let before = Live::now();
    for _ in 0..cycles {
        cycle(&mut server, &mut now, &mut client_number, &mut counts);
    }
    abandon(
        &mut server,
        &mut now,
        abandoned,
        &mut client_number,
        &mut counts,
    );
    let peak = Live::now();
    expire(&mut server, &mut now, &mut counts);
    let after = Live::now();
    Soak {
        before,
        peak,
        after,
        allocated: counts.allocated,
        refreshed: counts.refreshed,
        deallocated: counts.deallocated,
        expired: counts.expired,
    }
}

#[derive(Default)]
struct Counts {
    allocated: u64,
    refreshed: u64,
    deallocated: u64,
    expired: u64,
}

/// The `i`th address from `base`: [`PORTS_PER_IP`] ports (from 10,000) on each IP.
fn address(base: u32, i: u64) -> SocketAddr {
    let i = u32::try_from(i).expect("fewer than 2^32 addresses");
    let ip = Ipv4Addr::from(base + i / PORTS_PER_IP);
    let port = u16::try_from(10_000 + i % PORTS_PER_IP).expect("a port");
    SocketAddr::new(IpAddr::V4(ip), port)
}

/// A client of its own, the `n`th, from 10.0.0.0 up.
fn new_client(n: &mut u64) -> (TurnClient<ChaCha20Rng>, FiveTuple) {
    let tuple = FiveTuple {
        transport: TransportProtocol::Udp,
        client: address(0x0A00_0000, *n),
        server: LISTEN,
    };
    let config = TurnClientConfig::new(tuple.client, LISTEN, tuple.transport, "soak", "secret");
    let client = TurnClient::new(config, ChaCha20Rng::seed_from_u64(*n));
    *n += 1;
    (client, tuple)
}

/// Everything the client sends goes to the server and back, until both are quiet; the
/// server's events are drained (deletions counted).
fn exchange(
    server: &mut TurnServer<ChaCha20Rng>,
    client: &mut TurnClient<ChaCha20Rng>,
    tuple: FiveTuple,
    now: Instant,
    counts: &mut Counts,
) {
    while let Some(t) = client.poll_transmit() {
        let _ = server.handle_client_datagram(now, tuple, &t.payload);
        while let Some(r) = server.poll_transmit() {
            let _ = client.handle_datagram(now, r.transport, r.source, r.destination, &r.payload);
        }
    }
    while client.poll_event().is_some() {}
    drain_events(server, counts);
}

/// Counts creations and deletions by clients. (Expiries are counted from the allocation
/// count: 100,000 at once overflow the server's bounded event queue, as they may.)
fn drain_events(server: &mut TurnServer<ChaCha20Rng>, counts: &mut Counts) {
    use stun_proto::turn::server::{DeleteReason, ServerEvent};
    while let Some(e) = server.poll_event() {
        match e {
            ServerEvent::AllocationCreated { .. } => counts.allocated += 1,
            ServerEvent::AllocationDeleted {
                reason: DeleteReason::Expired,
                ..
            } => {}
            ServerEvent::AllocationDeleted { .. } => counts.deallocated += 1,
            _ => {}
        }
    }
}

/// One client allocates (401, then the signed Allocate), refreshes when its timer says
/// (540 s later, virtual), and deletes its allocation (Refresh with LIFETIME 0).
fn cycle(
    server: &mut TurnServer<ChaCha20Rng>,
    now: &mut Instant,
    n: &mut u64,
    counts: &mut Counts,
) {
    let (mut client, tuple) = new_client(n);
    client.handle_allocate(*now).expect("an allocation starts");
    exchange(server, &mut client, tuple, *now, counts);
    let id = server.allocation_by_tuple(&tuple).expect("allocated");
    let expiry = server.expires_at(id).expect("allocated");
    let (timer, at) = client.next_timer().expect("a refresh is scheduled");
    assert_eq!(timer, Timer::Allocation);
    *now = at;
    client.handle_timeout(*now);
    server.handle_timeout(*now);
    exchange(server, &mut client, tuple, *now, counts);
    if server.expires_at(id).is_some_and(|e| e > expiry) {
        counts.refreshed += 1;
    }
    client.handle_close(*now);
    exchange(server, &mut client, tuple, *now, counts);
    assert_eq!(server.allocation_by_tuple(&tuple), None, "deallocated");
}

/// `count` clients allocate and vanish.
fn abandon(
    server: &mut TurnServer<ChaCha20Rng>,
    now: &mut Instant,
    count: u64,
    n: &mut u64,
    counts: &mut Counts,
) {
    for _ in 0..count {
        let (mut client, tuple) = new_client(n);
        client.handle_allocate(*now).expect("an allocation starts");
        exchange(server, &mut client, tuple, *now, counts);
        *now += Duration::from_micros(10);
    }
}

/// Time passes every allocation's lifetime (an hour, the longest): the server expires them.
fn expire(server: &mut TurnServer<ChaCha20Rng>, now: &mut Instant, counts: &mut Counts) {
    let live = server.allocation_count() as u64;
    *now += Duration::from_secs(3600);
    server.handle_timeout(*now);
    drain_events(server, counts);
    assert_eq!(server.allocation_count(), 0, "every allocation expired");
    counts.expired += live;
}
