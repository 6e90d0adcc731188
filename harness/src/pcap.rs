//! A pcap writer: every simulated datagram with synthesized IPv4/IPv6 and UDP headers
//! (link type RAW), so Wireshark and tshark decode the STUN, TURN and DTLS inside.
//!
//! Format: the classic libpcap file (magic 0xa1b2c3d4, version 2.4, microsecond timestamps).

use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// LINKTYPE_RAW: packets start with an IPv4 or IPv6 header.
const LINKTYPE_RAW: u32 = 101;

/// Timestamps start here (2026-01-01T00:00:00Z), so captures of the same run are identical.
const EPOCH_SECS: u64 = 1_767_225_600;

/// Writes datagrams as a pcap stream.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
}

impl<W: Write> PcapWriter<W> {
    /// Starts a capture: writes the file header.
    pub fn new(mut out: W) -> io::Result<Self> {
        let mut header = Vec::with_capacity(24);
        header.extend_from_slice(&0xa1b2_c3d4_u32.to_le_bytes());
        header.extend_from_slice(&2u16.to_le_bytes());
        header.extend_from_slice(&4u16.to_le_bytes());
        header.extend_from_slice(&0i32.to_le_bytes()); // thiszone
        header.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        header.extend_from_slice(&65_535u32.to_le_bytes()); // snaplen
        header.extend_from_slice(&LINKTYPE_RAW.to_le_bytes());
        out.write_all(&header)?;
        Ok(Self { out })
    }

    /// Writes one UDP datagram seen `at` after the start of the simulation.
    pub fn write(
        &mut self,
        at: Duration,
        source: SocketAddr,
        destination: SocketAddr,
        payload: &[u8],
    ) -> io::Result<()> {
        let packet = ip_udp_packet(source, destination, payload);
        let len = packet.len() as u32;
        let mut record = Vec::with_capacity(16 + packet.len());
        record.extend_from_slice(&((EPOCH_SECS + at.as_secs()) as u32).to_le_bytes());
        record.extend_from_slice(&at.subsec_micros().to_le_bytes());
        record.extend_from_slice(&len.to_le_bytes());
        record.extend_from_slice(&len.to_le_bytes());
        record.extend_from_slice(&packet);
        self.out.write_all(&record)
    }

    /// Flushes and returns the underlying writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// The IPv4 or IPv6 header plus UDP header plus payload. Mixed families (impossible on a real
/// wire) are written as IPv6 with IPv4-mapped addresses.
pub(crate) fn ip_udp_packet(
    source: SocketAddr,
    destination: SocketAddr,
    payload: &[u8],
) -> Vec<u8> {
    let udp_len = (8 + payload.len()) as u16;
    let mut udp = Vec::with_capacity(usize::from(udp_len));
    udp.extend_from_slice(&source.port().to_be_bytes());
    udp.extend_from_slice(&destination.port().to_be_bytes());
    udp.extend_from_slice(&udp_len.to_be_bytes());
    udp.extend_from_slice(&[0, 0]); // checksum, filled below
    udp.extend_from_slice(payload);
    match (source.ip(), destination.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut ip = Vec::with_capacity(20 + udp.len());
            ip.extend_from_slice(&[0x45, 0]);
            ip.extend_from_slice(&(20 + udp_len).to_be_bytes());
            ip.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]); // id, DF, TTL 64, UDP
            ip.extend_from_slice(&s.octets());
            ip.extend_from_slice(&d.octets());
            let checksum = internet_checksum(&[&ip]);
            ip[10..12].copy_from_slice(&checksum.to_be_bytes());
            // A zero UDP checksum means "none" over IPv4 (RFC 768).
            ip.extend_from_slice(&udp);
            ip
        }
        (s, d) => {
            let (s, d) = (v6(s), v6(d));
            let pseudo = [
                &s.octets()[..],
                &d.octets()[..],
                &u32::from(udp_len).to_be_bytes()[..],
                &[0, 0, 0, 17][..],
            ];
            let mut parts: Vec<&[u8]> = pseudo.to_vec();
            parts.push(&udp);
            let checksum = match internet_checksum(&parts) {
                0 => 0xffff,
                c => c,
            };
            udp[6..8].copy_from_slice(&checksum.to_be_bytes());
            let mut ip = Vec::with_capacity(40 + udp.len());
            ip.extend_from_slice(&[0x60, 0, 0, 0]);
            ip.extend_from_slice(&udp_len.to_be_bytes());
            ip.extend_from_slice(&[17, 64]);
            ip.extend_from_slice(&s.octets());
            ip.extend_from_slice(&d.octets());
            ip.extend_from_slice(&udp);
            ip
        }
    }
}

fn v6(ip: IpAddr) -> std::net::Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// The ones'-complement sum of RFC 1071 over the concatenation of `parts`.
fn internet_checksum(parts: &[&[u8]]) -> u16 {
    let mut sum = 0u32;
    let mut odd: Option<u8> = None;
    for &byte in parts.iter().flat_map(|p| p.iter()) {
        match odd.take() {
            None => odd = Some(byte),
            Some(hi) => sum += u32::from(u16::from_be_bytes([hi, byte])),
        }
    }
    if let Some(hi) = odd {
        sum += u32::from(u16::from_be_bytes([hi, 0]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_header_checksum_verifies() {
        let p = ip_udp_packet(
            "10.0.0.1:1000".parse().unwrap(),
            "10.0.0.2:2000".parse().unwrap(),
            b"hello",
        );
        assert_eq!(p.len(), 20 + 8 + 5);
        assert_eq!(
            internet_checksum(&[&p[..20]]),
            0,
            "a header with its checksum sums to zero"
        );
        assert_eq!(&p[20..22], &1000u16.to_be_bytes());
        assert_eq!(&p[24..26], &13u16.to_be_bytes());
    }

    #[test]
    fn ipv6_udp_checksum_verifies() {
        let (s, d): (SocketAddr, SocketAddr) = (
            "[2001:db8::1]:5000".parse().unwrap(),
            "[2001:db8::2]:3478".parse().unwrap(),
        );
        let p = ip_udp_packet(s, d, b"odd");
        assert_eq!(p[0] >> 4, 6);
        let (IpAddr::V6(si), IpAddr::V6(di)) = (s.ip(), d.ip()) else {
            unreachable!()
        };
        let pseudo = [
            &si.octets()[..],
            &di.octets()[..],
            &11u32.to_be_bytes()[..],
            &[0, 0, 0, 17][..],
            &p[40..],
        ];
        assert_eq!(internet_checksum(&pseudo), 0);
    }

    #[test]
    fn file_header_says_raw_ip() {
        let w = PcapWriter::new(Vec::new()).unwrap();
        let bytes = w.into_inner().unwrap();
        assert_eq!(bytes.len(), 24);
        assert_eq!(&bytes[20..24], &LINKTYPE_RAW.to_le_bytes());
    }
}
