//! Concealing our own host addresses behind `.local` names, as browsers do
//! (draft-ietf-mmusic-mdns-ice-candidates §3.1): a random UUID name per address, signalled in
//! place of the address, and a Multicast DNS responder that answers queries for it (RFC 6762
//! §6), sans-IO.
//!
//! ```text
//! caller: name = random_name(rng); responder.handle_register(name, ip); signal `name` in the
//!         host candidate instead of `ip`
//! query for the name on port 5353 ──handle_datagram──► answer queued (A or AAAA, TTL 120 s,
//!         cache-flush set: the name is unique, §10.2) ──poll_transmit──► to the mDNS group
//! ```
//!
//! An answer for a name is multicast at most once a second (RFC 6762 §6.2); the others are
//! counted and dropped, as is every query for a name we do not hold. At most [`MAX_NAMES`]
//! names are registered and [`MAX_QUEUED`] answers wait to be sent.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use rand_core::RngCore;

use crate::mdns_resolver::{
    CLASS_IN, CLASS_MASK, HEADER_LEN, MdnsError, TYPE_A, TYPE_AAAA, encode_name, name_matches,
    skip_name, u16_at,
};

/// Names one responder holds.
pub const MAX_NAMES: usize = 16;
/// Answers waiting to be sent.
pub const MAX_QUEUED: usize = 64;
/// The TTL of our answers: RFC 6762 §10 recommends 120 s for records with a host name.
const TTL_SECONDS: u32 = 120;
/// The shortest interval between two multicasts of one answer (RFC 6762 §6.2).
const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// QTYPE ANY (RFC 1035 §3.2.3).
const TYPE_ANY: u16 = 255;

#[derive(Debug)]
struct Registered {
    qname: Vec<u8>,
    ip: IpAddr,
    last_sent: Option<Instant>,
}

/// Answers Multicast DNS queries for the names that conceal our host addresses.
///
/// # Drive loop
///
/// Register each name with [`handle_register`](Self::handle_register); feed every datagram that
/// arrives on the mDNS socket (port 5353, in the group) to
/// [`handle_datagram`](Self::handle_datagram), then send each
/// [`poll_transmit`](Self::poll_transmit) payload to the group the query came in on. No timers.
#[derive(Debug, Default)]
pub struct MdnsResponder {
    names: Vec<Registered>,
    transmits: VecDeque<Vec<u8>>,
    /// Answers not sent because one had just been multicast or the queue was full.
    suppressed: u64,
}

impl MdnsResponder {
    /// A responder with no names.
    pub fn new() -> Self {
        Self::default()
    }

    /// Holds `name` (a `.local` name, e.g. from [`random_name`]) for `ip`.
    pub fn handle_register(&mut self, name: &str, ip: IpAddr) -> Result<(), MdnsError> {
        let trimmed = name.trim_end_matches('.');
        if !trimmed.to_ascii_lowercase().ends_with(".local") {
            return Err(MdnsError::NotLocal(name.into()));
        }
        let qname = encode_name(trimmed).ok_or_else(|| MdnsError::BadName(name.into()))?;
        if self.names.len() >= MAX_NAMES {
            return Err(MdnsError::TooManyNames(MAX_NAMES));
        }
        self.names.push(Registered {
            qname,
            ip,
            last_sent: None,
        });
        Ok(())
    }

    /// A datagram from the mDNS socket: a query for one of our names (type A, AAAA or ANY, of
    /// the address's family) gets an answer queued. True when it did.
    pub fn handle_datagram(&mut self, now: Instant, datagram: &[u8]) -> bool {
        let mut answered = false;
        for (name_at, qtype, class) in questions(datagram) {
            if class & CLASS_MASK != CLASS_IN {
                continue;
            }
            let Some(i) = self
                .names
                .iter()
                .position(|r| name_matches(datagram, name_at, &r.qname))
            else {
                continue;
            };
            let Some(entry) = self.names.get_mut(i) else {
                continue;
            };
            let rtype = if entry.ip.is_ipv4() {
                TYPE_A
            } else {
                TYPE_AAAA
            };
            if qtype != rtype && qtype != TYPE_ANY {
                continue;
            }
            let recent = entry
                .last_sent
                .is_some_and(|at| now.saturating_duration_since(at) < MIN_INTERVAL);
            if recent || self.transmits.len() >= MAX_QUEUED {
                self.suppressed += 1;
                continue;
            }
            entry.last_sent = Some(now);
            self.transmits.push_back(answer(&entry.qname, entry.ip));
            answered = true;
        }
        answered
    }

    /// The next answer to multicast.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmits.pop_front()
    }

    /// Answers not sent: one for the same name had just been multicast, or the queue was full.
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }
}

/// A random name in `.local` (a version 4 UUID, as browsers make them).
pub fn random_name<R: RngCore + ?Sized>(rng: &mut R) -> String {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    let [
        b0,
        b1,
        b2,
        b3,
        b4,
        b5,
        b6,
        b7,
        b8,
        b9,
        b10,
        b11,
        b12,
        b13,
        b14,
        b15,
    ] = b;
    format!(
        "{b0:02x}{b1:02x}{b2:02x}{b3:02x}-{b4:02x}{b5:02x}-{:02x}{b7:02x}-{:02x}{b9:02x}-\
         {b10:02x}{b11:02x}{b12:02x}{b13:02x}{b14:02x}{b15:02x}.local",
        (b6 & 0x0f) | 0x40,
        (b8 & 0x3f) | 0x80,
    )
}

/// The questions of a query: (offset of the name, QTYPE, QCLASS). Responses and anything
/// malformed give none.
fn questions(buf: &[u8]) -> Vec<(usize, u16, u16)> {
    let mut out = Vec::new();
    let (Some(flags), Some(count)) = (u16_at(buf, 2), u16_at(buf, 4)) else {
        return out;
    };
    if flags & 0x8000 != 0 {
        return out;
    }
    let mut at = HEADER_LEN;
    for _ in 0..count {
        let Some(fixed) = skip_name(buf, at) else {
            return out;
        };
        let (Some(qtype), Some(class)) = (u16_at(buf, fixed), u16_at(buf, fixed + 2)) else {
            return out;
        };
        out.push((at, qtype, class));
        at = fixed + 4;
    }
    out
}

/// A response with one answer (RFC 6762 §18: id 0, QR and AA set; class IN with the
/// cache-flush bit, §10.2).
fn answer(qname: &[u8], ip: IpAddr) -> Vec<u8> {
    let mut r = Vec::with_capacity(HEADER_LEN + qname.len() + 26);
    r.extend_from_slice(&[0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
    r.extend_from_slice(qname);
    let (rtype, rdata): (u16, Vec<u8>) = match ip {
        IpAddr::V4(v4) => (TYPE_A, v4.octets().to_vec()),
        IpAddr::V6(v6) => (TYPE_AAAA, v6.octets().to_vec()),
    };
    r.extend_from_slice(&rtype.to_be_bytes());
    r.extend_from_slice(&(CLASS_IN | 0x8000).to_be_bytes());
    r.extend_from_slice(&TTL_SECONDS.to_be_bytes());
    r.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    r.extend_from_slice(&rdata);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mdns_resolver::{MdnsEvent, MdnsResolver};
    use crate::test_support::t0;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn our_resolver_s_queries_get_answers_it_reads() {
        let now = t0();
        let name = random_name(&mut ChaCha20Rng::seed_from_u64(1));
        assert_eq!(name.len(), 36 + ".local".len());
        assert_eq!(name.as_bytes()[14], b'4', "a version 4 UUID: {name}");
        let ip = IpAddr::from([10, 99, 0, 1]);
        let mut responder = MdnsResponder::new();
        responder.handle_register(&name, ip).unwrap();
        let mut resolver = MdnsResolver::new();
        resolver.handle_resolve(now, &name).unwrap();
        let query = resolver.poll_transmit().unwrap();
        assert!(responder.handle_datagram(now, &query));
        let response = responder.poll_transmit().unwrap();
        // Our own answer, looped back to the responder, is no query.
        assert!(!responder.handle_datagram(now, &response));
        assert!(resolver.handle_datagram(now, &response));
        assert_eq!(
            resolver.poll_event(),
            Some(MdnsEvent::Resolved { name, ip })
        );
    }

    #[test]
    fn answers_are_rate_limited_and_other_names_and_types_ignored() {
        let now = t0();
        let ip = IpAddr::from([10, 99, 0, 1]);
        let mut responder = MdnsResponder::new();
        responder.handle_register("ours.local", ip).unwrap();
        let query = |name: &str, qtype: u16| {
            let mut q = vec![0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
            q.extend_from_slice(&encode_name(name).unwrap());
            q.extend_from_slice(&qtype.to_be_bytes());
            q.extend_from_slice(&[0x80, 1]); // QU bit set: still class IN
            q
        };
        assert!(responder.handle_datagram(now, &query("OURS.local", TYPE_A)));
        assert!(
            !responder.handle_datagram(now, &query("ours.local", TYPE_A)),
            "within 1 s"
        );
        assert_eq!(responder.suppressed(), 1);
        let later = now + MIN_INTERVAL;
        assert!(!responder.handle_datagram(later, &query("theirs.local", TYPE_A)));
        assert!(!responder.handle_datagram(later, &query("ours.local", TYPE_AAAA)));
        assert!(responder.handle_datagram(later, &query("ours.local", TYPE_ANY)));
        assert_eq!(
            responder.poll_transmit().map(|a| a.len()),
            Some(12 + 12 + 14)
        );
        for garbage in [&[][..], &[0; 11], &[0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 63]] {
            assert!(!responder.handle_datagram(later, garbage));
        }
    }

    #[test]
    fn names_are_bounded_and_must_be_local() {
        let mut responder = MdnsResponder::new();
        let ip = IpAddr::from([10, 0, 0, 1]);
        assert!(matches!(
            responder.handle_register("example.com", ip),
            Err(MdnsError::NotLocal(_))
        ));
        for i in 0..MAX_NAMES {
            responder
                .handle_register(&format!("n{i}.local"), ip)
                .unwrap();
        }
        assert_eq!(
            responder.handle_register("more.local", ip),
            Err(MdnsError::TooManyNames(MAX_NAMES))
        );
    }
}
