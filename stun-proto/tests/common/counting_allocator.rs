//! A counting global allocator for the allocation tests of the workspace: it delegates to
//! `System` and counts, per thread (the tests of a binary run in parallel, each counts only its
//! own). Included by `#[path]` into each allocation test binary, which then has it as its global
//! allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    /// Bytes allocated less bytes freed on this thread.
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

/// Adds `bytes` (negative: freed) to this thread's live count.
fn add_live(bytes: isize) {
    let _ = LIVE.try_with(|n| n.set(n.get() + bytes));
}

// Delegates to the system allocator and only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        add_live(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add_live(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Heap allocations `f` made on this thread.
pub fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

/// Heap bytes `f` allocated on this thread and had not freed when it returned, with what it
/// returned (which still holds them).
#[allow(
    dead_code,
    reason = "the module is shared by four test binaries; ice-proto's alloc test uses this"
)]
pub fn retained_by<T>(f: impl FnOnce() -> T) -> (isize, T) {
    let before = LIVE.with(Cell::get);
    let value = f();
    (LIVE.with(Cell::get) - before, value)
}
