//! Resolving the `.local` host names browsers put in their host candidates
//! (draft-ietf-mmusic-mdns-ice-candidates §3.2) with one-shot Multicast DNS queries
//! (RFC 6762 §5.1), sans-IO.
//!
//! ```text
//! Agent ──Event::ResolveHostname──► caller ──handle_resolve──► MdnsResolver
//!   MdnsResolver ──poll_transmit──► query to 224.0.0.251:5353 (or [ff02::fb]:5353)
//!   responses on port 5353 ──handle_datagram──► MdnsEvent::Resolved ──► caller
//!   caller ──Agent::handle_resolved_hostname──► the candidates become IP candidates
//! ```
//!
//! Browsers answer by multicast (Chromium's responder always does), so the caller's socket
//! listens on port 5353 in the mDNS group, beside any other responder on the host
//! (`SO_REUSEADDR`). A query asks one question (some responders parse no more): A and AAAA
//! alternate, at 0, 0.5 s, 1 s and 2 s while unanswered (RFC 6762 §5.2 doubles its intervals
//! the same way); after [`LOOKUP_TIMEOUT`] the name is reported [`MdnsEvent::NotFound`]. Lookups are bounded by
//! [`MAX_LOOKUPS`]; responses are parsed without allocating except for the answer's name
//! comparison, and names are compared case-insensitively (RFC 6762 §16).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use stun_proto::time::saturating_add;

/// Where queries go over IPv4 (RFC 6762 §3).
pub const MDNS_IPV4: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(224, 0, 0, 251)), 5353);
/// Where queries go over IPv6 (RFC 6762 §3).
pub const MDNS_IPV6: SocketAddr = SocketAddr::new(
    IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0xfb)),
    5353,
);
/// Names being resolved at once.
pub const MAX_LOOKUPS: usize = 16;
/// How long a name is asked for before it is given up.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);

pub(crate) const HEADER_LEN: usize = 12;
pub(crate) const TYPE_A: u16 = 1;
pub(crate) const TYPE_AAAA: u16 = 28;
pub(crate) const CLASS_IN: u16 = 1;
/// The top bit of an answer's class is the cache-flush bit (RFC 6762 §10.2).
pub(crate) const CLASS_MASK: u16 = 0x7fff;
/// Compression pointers followed while reading one name, against loops.
const MAX_POINTERS: usize = 16;
/// Longest DNS name on the wire (RFC 1035 §3.1).
const MAX_NAME_LEN: usize = 255;

/// What a resolution came to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MdnsEvent {
    /// `name` has the address `ip`.
    Resolved {
        /// The name asked for, as given to [`MdnsResolver::handle_resolve`].
        name: String,
        /// Its address.
        ip: IpAddr,
    },
    /// Nobody answered for `name` within [`LOOKUP_TIMEOUT`].
    NotFound {
        /// The name asked for.
        name: String,
    },
}

/// Why a name was not looked up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MdnsError {
    /// Only names in `.local` are resolved by Multicast DNS (RFC 6762 §3).
    #[error("{0:?} is not a .local name")]
    NotLocal(String),
    /// A label over 63 bytes, an empty label or a name over 255 bytes (RFC 1035 §2.3.4).
    #[error("{0:?} is not a valid DNS name")]
    BadName(String),
    /// [`MAX_LOOKUPS`] names are being resolved already.
    #[error("{MAX_LOOKUPS} names are being resolved already")]
    TooManyLookups,
    /// A responder holds this many names already (its most).
    #[error("{0} names are held already")]
    TooManyNames(usize),
}

#[derive(Debug)]
struct Lookup {
    name: String,
    /// The encoded name, ready for a question.
    qname: Vec<u8>,
    started: Instant,
    next_send: Instant,
    sends: u32,
}

/// One-shot Multicast DNS resolution of host names, as a sans-IO machine.
///
/// # Drive loop
///
/// After [`handle_resolve`](Self::handle_resolve) and every other `handle_*`, send each
/// [`poll_transmit`](Self::poll_transmit) payload to [`MDNS_IPV4`] (or [`MDNS_IPV6`]) from the
/// caller's mDNS socket, drain [`poll_event`](Self::poll_event), and call
/// [`handle_timeout`](Self::handle_timeout) at [`poll_timeout`](Self::poll_timeout). Feed every
/// datagram that arrives on the mDNS socket to [`handle_datagram`](Self::handle_datagram).
#[derive(Debug, Default)]
pub struct MdnsResolver {
    lookups: Vec<Lookup>,
    transmits: VecDeque<Vec<u8>>,
    events: VecDeque<MdnsEvent>,
}

impl MdnsResolver {
    /// A resolver with nothing to resolve.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts resolving `name` (a query leaves at once); a name already being resolved is not
    /// asked twice.
    pub fn handle_resolve(&mut self, now: Instant, name: &str) -> Result<(), MdnsError> {
        let trimmed = name.trim_end_matches('.');
        if !trimmed.to_ascii_lowercase().ends_with(".local") {
            return Err(MdnsError::NotLocal(name.into()));
        }
        if self
            .lookups
            .iter()
            .any(|l| l.name.eq_ignore_ascii_case(name))
        {
            return Ok(());
        }
        if self.lookups.len() >= MAX_LOOKUPS {
            return Err(MdnsError::TooManyLookups);
        }
        let qname = encode_name(trimmed).ok_or_else(|| MdnsError::BadName(name.into()))?;
        let mut lookup = Lookup {
            name: name.into(),
            qname,
            started: now,
            next_send: now,
            sends: 0,
        };
        self.send(&mut lookup, now);
        self.lookups.push(lookup);
        Ok(())
    }

    /// A datagram that arrived on the mDNS socket: answers for names being resolved end their
    /// lookup; everything else (queries, other names, garbage) is ignored. True when it
    /// resolved something.
    pub fn handle_datagram(&mut self, _now: Instant, datagram: &[u8]) -> bool {
        let mut resolved = false;
        for (name_at, ip) in answers(datagram) {
            let Some(i) = self
                .lookups
                .iter()
                .position(|l| name_matches(datagram, name_at, &l.qname))
            else {
                continue;
            };
            let lookup = self.lookups.swap_remove(i);
            self.events.push_back(MdnsEvent::Resolved {
                name: lookup.name,
                ip,
            });
            resolved = true;
        }
        resolved
    }

    /// Sends queries again and gives up on names nobody answered.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut lookups = std::mem::take(&mut self.lookups);
        lookups.retain_mut(|l| {
            // (At the end of representable time the give-up instant saturates there too.)
            if now >= saturating_add(l.started, LOOKUP_TIMEOUT) {
                self.events.push_back(MdnsEvent::NotFound {
                    name: std::mem::take(&mut l.name),
                });
                return false;
            }
            if now >= l.next_send {
                self.send(l, now);
            }
            true
        });
        self.lookups = lookups;
    }

    /// The next query to send to the mDNS group.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmits.pop_front()
    }

    /// The next resolution.
    pub fn poll_event(&mut self) -> Option<MdnsEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due; `None` with nothing to resolve.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.lookups
            .iter()
            .map(|l| {
                let give_up = saturating_add(l.started, LOOKUP_TIMEOUT);
                l.next_send.min(give_up)
            })
            .min()
    }

    /// Queues the query for `lookup` and schedules the next one (1 s, then 2 s later). The
    /// odd sends ask A, the even ones AAAA, one question each.
    fn send(&mut self, lookup: &mut Lookup, now: Instant) {
        let qtype = if lookup.sends % 2 == 0 {
            TYPE_A
        } else {
            TYPE_AAAA
        };
        self.transmits.push_back(query(&lookup.qname, qtype));
        let interval = Duration::from_millis(if lookup.sends < 2 { 500 } else { 1000 });
        lookup.sends = lookup.sends.saturating_add(1);
        lookup.next_send = saturating_add(now, interval);
    }
}

/// A query with one question (RFC 6762 §18: id 0, no flags; the QU bit clear, so the answer is
/// multicast as browsers send it anyway).
fn query(qname: &[u8], qtype: u16) -> Vec<u8> {
    let mut q = Vec::with_capacity(HEADER_LEN + qname.len() + 4);
    q.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    q.extend_from_slice(qname);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&CLASS_IN.to_be_bytes());
    q
}

/// `a.b.local` as length-prefixed labels ending in the root; `None` for an invalid name.
pub(crate) fn encode_name(name: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(name.len() + 2);
    for label in name.split('.') {
        let len = u8::try_from(label.len())
            .ok()
            .filter(|l| (1..=63).contains(l))?;
        out.push(len);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    (out.len() <= MAX_NAME_LEN).then_some(out)
}

pub(crate) fn u16_at(buf: &[u8], at: usize) -> Option<u16> {
    let bytes = buf.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([*bytes.first()?, *bytes.get(1)?]))
}

/// The offset just past the name at `at` (which may end in a compression pointer).
pub(crate) fn skip_name(buf: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *buf.get(at)?;
        match len {
            0 => return Some(at + 1),
            l if l & 0xc0 == 0xc0 => return Some(at + 2),
            l if l <= 63 => at = at.checked_add(1 + usize::from(l))?,
            _ => return None,
        }
    }
}

/// Whether the (possibly compressed) name at `at` in `buf` equals `qname`, ignoring ASCII
/// case.
pub(crate) fn name_matches(buf: &[u8], mut at: usize, qname: &[u8]) -> bool {
    let mut q = 0;
    let mut pointers = 0;
    loop {
        let Some(&len) = buf.get(at) else {
            return false;
        };
        if len & 0xc0 == 0xc0 {
            pointers += 1;
            let Some(&low) = buf.get(at + 1) else {
                return false;
            };
            if pointers > MAX_POINTERS {
                return false;
            }
            at = usize::from(len & 0x3f) << 8 | usize::from(low);
            continue;
        }
        if len > 63 || qname.get(q) != Some(&len) {
            return false;
        }
        if len == 0 {
            return true;
        }
        let end = at + 1 + usize::from(len);
        let (Some(label), Some(expected)) = (
            buf.get(at + 1..end),
            qname.get(q + 1..q + 1 + usize::from(len)),
        ) else {
            return false;
        };
        if !label.eq_ignore_ascii_case(expected) {
            return false;
        }
        at = end;
        q += 1 + usize::from(len);
    }
}

/// The address records of a response: (offset of the record's name, address). Anything
/// malformed ends the list.
fn answers(buf: &[u8]) -> Vec<(usize, IpAddr)> {
    let mut out = Vec::new();
    let Some(flags) = u16_at(buf, 2) else {
        return out;
    };
    if flags & 0x8000 == 0 {
        return out; // a query, not a response
    }
    let count = |at| u16_at(buf, at).map_or(0, usize::from);
    let (questions, records) = (count(4), count(6) + count(8) + count(10));
    let mut at = HEADER_LEN;
    for _ in 0..questions {
        let Some(next) = skip_name(buf, at).and_then(|n| n.checked_add(4)) else {
            return out;
        };
        at = next;
    }
    for _ in 0..records {
        let name_at = at;
        let Some(fixed) = skip_name(buf, at) else {
            return out;
        };
        let (Some(rtype), Some(class), Some(rdlength)) = (
            u16_at(buf, fixed),
            u16_at(buf, fixed + 2),
            u16_at(buf, fixed + 8),
        ) else {
            return out;
        };
        let rdata_at = fixed + 10;
        let Some(rdata) = buf.get(rdata_at..rdata_at + usize::from(rdlength)) else {
            return out;
        };
        if class & CLASS_MASK == CLASS_IN {
            if let Ok(v4) = <[u8; 4]>::try_from(rdata).map(Ipv4Addr::from) {
                if rtype == TYPE_A {
                    out.push((name_at, IpAddr::V4(v4)));
                }
            } else if let Ok(v6) = <[u8; 16]>::try_from(rdata).map(Ipv6Addr::from) {
                if rtype == TYPE_AAAA {
                    out.push((name_at, IpAddr::V6(v6)));
                }
            }
        }
        at = rdata_at + usize::from(rdlength);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{t0, very_late};

    const NAME: &str = "1f4712db-ea17-4bcf-a596-105139dfd8bf.local";

    /// A response as Chromium's responder sends it: the answer's name written out, class IN
    /// with the cache-flush bit, TTL 120.
    fn response(name: &str, ip: [u8; 4]) -> Vec<u8> {
        let mut r = vec![0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0];
        r.extend_from_slice(&encode_name(name).unwrap());
        r.extend_from_slice(&[0, 1, 0x80, 1, 0, 0, 0, 120, 0, 4]);
        r.extend_from_slice(&ip);
        r
    }

    #[test]
    fn a_query_leaves_at_once_and_the_answer_resolves_the_name() {
        let now = t0();
        let mut r = MdnsResolver::new();
        r.handle_resolve(now, NAME).unwrap();
        let q = r.poll_transmit().unwrap();
        assert_eq!(&q[..12], &[0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(q[12] as usize, NAME.len() - ".local".len());
        assert_eq!(&q[q.len() - 4..], &[0, 1, 0, 1], "A, class IN");
        // A query (ours echoed back by multicast loop) resolves nothing.
        assert!(!r.handle_datagram(now, &q));
        let upper = NAME.to_ascii_uppercase();
        assert!(r.handle_datagram(now, &response(&upper, [10, 99, 0, 1])));
        assert_eq!(
            r.poll_event(),
            Some(MdnsEvent::Resolved {
                name: NAME.into(),
                ip: IpAddr::from([10, 99, 0, 1])
            })
        );
        assert_eq!(r.poll_timeout(), None);
    }

    #[test]
    fn compressed_names_and_other_records_are_read() {
        let now = t0();
        let mut r = MdnsResolver::new();
        r.handle_resolve(now, "host.local").unwrap();
        // Question "host.local" A, then an answer whose name points back at it, after a
        // TXT record of another name.
        let mut m = vec![0, 0, 0x84, 0, 0, 1, 0, 2, 0, 0, 0, 0];
        m.extend_from_slice(&encode_name("host.local").unwrap());
        m.extend_from_slice(&[0, 1, 0, 1]);
        m.extend_from_slice(&encode_name("other.local").unwrap());
        m.extend_from_slice(&[0, 16, 0, 1, 0, 0, 0, 1, 0, 2, 1, b'x']);
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 192, 0, 2, 9]);
        assert!(r.handle_datagram(now, &m));
        assert!(matches!(
            r.poll_event(),
            Some(MdnsEvent::Resolved { ip, .. }) if ip == IpAddr::from([192, 0, 2, 9])
        ));
    }

    #[test]
    fn unanswered_names_are_asked_again_then_given_up() {
        let now = t0();
        let mut r = MdnsResolver::new();
        r.handle_resolve(now, NAME).unwrap();
        r.handle_resolve(now, NAME).unwrap();
        let mut sent = vec![(Duration::ZERO, r.poll_transmit().unwrap())];
        assert_eq!(r.poll_transmit(), None, "asked once");
        let mut at = now;
        while let Some(next) = r.poll_timeout() {
            at = next;
            r.handle_timeout(at);
            r.handle_timeout(at); // a spurious call changes nothing
            while let Some(q) = r.poll_transmit() {
                sent.push((at - now, q));
            }
        }
        let times: Vec<_> = sent.iter().map(|(t, _)| t.as_millis()).collect();
        assert_eq!(times, [0, 500, 1000, 2000]);
        let types: Vec<_> = sent.iter().map(|(_, q)| q[q.len() - 3]).collect();
        assert_eq!(types, [1, 28, 1, 28], "A, AAAA, A, AAAA");
        assert_eq!(at - now, LOOKUP_TIMEOUT);
        assert_eq!(
            r.poll_event(),
            Some(MdnsEvent::NotFound { name: NAME.into() })
        );
    }

    #[test]
    fn very_late_timestamps_are_harmless() {
        // Within a second of the last representable instant: the retries and the give-up
        // all fall due at the end of time, and the lookup still ends.
        let end = very_late();
        let mut r = MdnsResolver::new();
        r.handle_resolve(end - Duration::from_secs(1), NAME)
            .unwrap();
        let mut sends = 0;
        while let Some(at) = r.poll_timeout() {
            assert!(at <= end);
            r.handle_timeout(at);
            while r.poll_transmit().is_some() {
                sends += 1;
            }
            assert!(sends <= 4);
        }
        assert!(sends >= 1);
        assert_eq!(
            r.poll_event(),
            Some(MdnsEvent::NotFound { name: NAME.into() })
        );
    }

    #[test]
    fn bad_names_and_too_many_lookups_are_refused() {
        let now = t0();
        let mut r = MdnsResolver::new();
        assert!(matches!(
            r.handle_resolve(now, "example.com"),
            Err(MdnsError::NotLocal(_))
        ));
        let long = format!("{}.local", "a".repeat(64));
        assert!(matches!(
            r.handle_resolve(now, &long),
            Err(MdnsError::BadName(_))
        ));
        assert!(matches!(
            r.handle_resolve(now, "a..local"),
            Err(MdnsError::BadName(_))
        ));
        for i in 0..MAX_LOOKUPS {
            r.handle_resolve(now, &format!("h{i}.local")).unwrap();
        }
        assert_eq!(
            r.handle_resolve(now, "one-more.local"),
            Err(MdnsError::TooManyLookups)
        );
    }

    #[test]
    fn garbage_and_pointer_loops_resolve_nothing() {
        let now = t0();
        let mut r = MdnsResolver::new();
        r.handle_resolve(now, NAME).unwrap();
        let mut looped = vec![0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0xc0, 12];
        looped.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4]);
        for datagram in [
            &[][..],
            &[0x84; 11],
            &looped,
            &response(NAME, [1, 2, 3, 4])[..40],
        ] {
            assert!(!r.handle_datagram(now, datagram));
        }
        assert_eq!(r.poll_event(), None);
    }
}
