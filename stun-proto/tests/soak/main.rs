//! The TURN server machine's memory after a soak (issue 19), a CI-sized run of
//! `machine.rs`: the full one (1,000,000 cycles, 100,000 abandoned allocations) is
//! `cargo bench -p stun-proto --bench turn_soak`, its figures in docs/performance.md.

// The tracking global allocator implements `GlobalAlloc`, which is unsafe; it only delegates.
#[allow(unsafe_code)]
mod machine;

/// Sized for a debug build in a few seconds.
const CYCLES: u64 = 3_000;
const ABANDONED: u64 = 3_000;

#[test]
fn cycles_and_abandoned_allocations_leave_memory_where_it_started() {
    let soak = machine::run(CYCLES, ABANDONED);
    eprintln!("{soak:?}");
    // Warm-up (one cycle, one abandoned allocation) included.
    assert_eq!(soak.allocated, CYCLES + ABANDONED + 2);
    assert_eq!(soak.refreshed, CYCLES + 1, "every cycle refreshed");
    assert_eq!(soak.deallocated, CYCLES + 1);
    assert_eq!(soak.expired, ABANDONED + 1);
    // The abandoned allocations did take memory while they lived...
    assert!(
        soak.peak.bytes > soak.before.bytes + ABANDONED as isize * 100,
        "{soak:?}"
    );
    // ...and it all came back, to the block.
    assert!(soak.after.bytes <= soak.before.bytes, "{soak:?}");
    assert!(soak.after.blocks <= soak.before.blocks, "{soak:?}");
}
