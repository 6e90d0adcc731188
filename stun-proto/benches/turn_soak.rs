//! The full soak of the TURN server machine (issue 19): 1,000,000 allocate/refresh/deallocate
//! cycles, then 100,000 abandoned allocations expired, with the heap this thread holds
//! before, at the peak and after (`tests/soak/machine.rs`; `tests/soak` runs a CI-sized
//! one). Not a criterion bench: one run, figures printed, recorded in docs/performance.md.
//!
//! `cargo bench -p stun-proto --bench turn_soak [-- CYCLES ABANDONED]`

// The tracking global allocator implements `GlobalAlloc`, which is unsafe; it only delegates.
#[allow(unsafe_code)]
#[path = "../tests/soak/machine.rs"]
mod machine;

fn main() {
    // `cargo bench` passes `--bench`; numbers are the counts.
    let mut counts = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse::<u64>().ok());
    let cycles = counts.next().unwrap_or(1_000_000);
    let abandoned = counts.next().unwrap_or(100_000);
    #[allow(clippy::disallowed_methods)] // a benchmark reads the wall clock
    let started = std::time::Instant::now();
    let soak = machine::run(cycles, abandoned);
    let elapsed = started.elapsed();
    println!("{cycles} cycles, {abandoned} abandoned allocations, {elapsed:.1?}");
    println!(
        "allocated {}, refreshed {}, deallocated {}, expired {}",
        soak.allocated, soak.refreshed, soak.deallocated, soak.expired
    );
    for (when, live) in [
        ("before", soak.before),
        ("peak", soak.peak),
        ("after", soak.after),
    ] {
        println!(
            "{when:>6}: {:>12} bytes in {:>8} blocks",
            live.bytes, live.blocks
        );
    }
    let kept = soak.after.bytes > soak.before.bytes || soak.after.blocks > soak.before.blocks;
    println!(
        "{}",
        if kept {
            "MEMORY KEPT after the soak"
        } else {
            "memory back where it started"
        }
    );
}
