//! Decoding and validating a message, and encoding one into a caller's buffer, allocate
//! nothing: checked with a counting global allocator around the hot path an ICE agent runs.

// A counting global allocator needs `unsafe impl GlobalAlloc`; it only delegates to `System`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use stun_proto::attribute::{DecodeAttribute, IceControlling, Priority, UseCandidate, Username};
use stun_proto::{IntegrityKey, Message, MessageBuilder, MessageType};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// Delegates to the system allocator and only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    f();
    ALLOCATIONS.load(Ordering::SeqCst) - before
}

#[test]
fn ice_check_encode_and_decode_allocate_nothing() {
    let key = IntegrityKey::short_term("remote-password-0123456789").unwrap();
    let mut buf = [0u8; 256];
    let mut len = 0;
    let encode = allocations_during(|| {
        let mut b = MessageBuilder::new(&mut buf[..], MessageType::BINDING_REQUEST, [9; 12].into())
            .unwrap();
        b.add(&Username::new("abcd:efgh").unwrap()).unwrap();
        b.add(&Priority(1_853_817_087)).unwrap();
        b.add(&IceControlling(0x1122_3344_5566_7788)).unwrap();
        b.add(&UseCandidate).unwrap();
        b.add_message_integrity(&key).unwrap();
        b.add_fingerprint().unwrap();
        len = b.finish().len();
    });
    assert_eq!(encode, 0, "encoding into a caller's buffer allocated");

    let mut seen = None;
    let decode = allocations_during(|| {
        let m = Message::parse(&buf[..len]).unwrap();
        m.verify_fingerprint().unwrap();
        m.verify_integrity(&key).unwrap();
        let user = m.get::<Username>().unwrap().unwrap();
        let priority = m.get::<Priority>().unwrap().unwrap();
        seen = Some((user.as_str().len(), priority.0, m.has(UseCandidate::TYPE)));
    });
    assert_eq!(decode, 0, "decoding and validating allocated");
    assert_eq!(seen, Some((9, 1_853_817_087, true)));
}
