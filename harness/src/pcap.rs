//! A pcap writer: every simulated datagram with synthesized IPv4/IPv6 and UDP headers, every
//! TCP segment with a TCP header (link type RAW), so Wireshark and tshark decode the STUN,
//! TURN and DTLS inside.
//!
//! Format: the classic libpcap file (magic 0xa1b2c3d4, version 2.4, microsecond timestamps).
//! The IP, UDP and TCP headers, checksums included, are written by the `etherparse` crate.

use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use etherparse::PacketBuilder;

use crate::tcp::Flags;

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

    /// Writes one packet seen `at` after the start of the simulation: a UDP datagram, or a
    /// TCP segment when `tcp` gives its flags, sequence and acknowledgement numbers.
    pub(crate) fn write(
        &mut self,
        at: Duration,
        source: SocketAddr,
        destination: SocketAddr,
        tcp: Option<(Flags, u32, u32)>,
        payload: &[u8],
    ) -> io::Result<()> {
        let packet = match tcp {
            None => ip_udp_packet(source, destination, payload)?,
            Some(header) => ip_tcp_packet(source, destination, header, payload)?,
        };
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
) -> io::Result<Vec<u8>> {
    const TTL: u8 = 64;
    let builder = match (source.ip(), destination.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), TTL),
        (s, d) => PacketBuilder::ipv6(v6(s).octets(), v6(d).octets(), TTL),
    }
    .udp(source.port(), destination.port());
    let mut packet = Vec::with_capacity(builder.size(payload.len()));
    builder
        .write(&mut packet, payload)
        .map_err(io::Error::other)?;
    Ok(packet)
}

/// The IPv4 or IPv6 header plus TCP header (with a fixed 64 KiB window) plus payload.
fn ip_tcp_packet(
    source: SocketAddr,
    destination: SocketAddr,
    (flags, seq, ack): (Flags, u32, u32),
    payload: &[u8],
) -> io::Result<Vec<u8>> {
    const TTL: u8 = 64;
    const WINDOW: u16 = 65_535;
    let mut builder = match (source.ip(), destination.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), TTL),
        (s, d) => PacketBuilder::ipv6(v6(s).octets(), v6(d).octets(), TTL),
    }
    .tcp(source.port(), destination.port(), seq, WINDOW);
    if flags.syn {
        builder = builder.syn();
    }
    if flags.ack {
        builder = builder.ack(ack);
    }
    if flags.rst {
        builder = builder.rst();
    }
    if !payload.is_empty() {
        builder = builder.psh();
    }
    let mut packet = Vec::with_capacity(builder.size(payload.len()));
    builder
        .write(&mut packet, payload)
        .map_err(io::Error::other)?;
    Ok(packet)
}

fn v6(ip: IpAddr) -> std::net::Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses what we wrote back with etherparse's checksum-verifying reader.
    fn parsed(
        source: &str,
        destination: &str,
        payload: &[u8],
    ) -> (SocketAddr, SocketAddr, Vec<u8>) {
        let bytes = ip_udp_packet(
            source.parse().unwrap(),
            destination.parse().unwrap(),
            payload,
        )
        .unwrap();
        let packet = etherparse::SlicedPacket::from_ip(&bytes).unwrap();
        let (src_ip, dst_ip): (IpAddr, IpAddr) = match packet.net.unwrap() {
            etherparse::NetSlice::Ipv4(ip) => {
                let h = ip.header();
                assert_eq!(
                    etherparse::checksum::Sum16BitWords::new()
                        .add_slice(h.slice())
                        .ones_complement(),
                    0
                );
                (h.source_addr().into(), h.destination_addr().into())
            }
            etherparse::NetSlice::Ipv6(ip) => (
                ip.header().source_addr().into(),
                ip.header().destination_addr().into(),
            ),
            other => panic!("{other:?}"),
        };
        let Some(etherparse::TransportSlice::Udp(udp)) = packet.transport else {
            panic!("not UDP")
        };
        let (s, d) = (
            SocketAddr::new(src_ip, udp.source_port()),
            SocketAddr::new(dst_ip, udp.destination_port()),
        );
        let expected = match (s.ip(), d.ip()) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                udp.to_header()
                    .calc_checksum_ipv4_raw(a.octets(), b.octets(), udp.payload())
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                udp.to_header()
                    .calc_checksum_ipv6_raw(a.octets(), b.octets(), udp.payload())
            }
            _ => unreachable!("one family per packet"),
        };
        assert_eq!(udp.checksum(), expected.unwrap(), "UDP checksum");
        (s, d, udp.payload().to_vec())
    }

    #[test]
    fn ipv4_and_ipv6_packets_parse_back_with_valid_checksums() {
        let (s, d, p) = parsed("10.0.0.1:1000", "10.0.0.2:2000", b"hello");
        assert_eq!(
            (s.to_string(), d.to_string(), p),
            (
                "10.0.0.1:1000".into(),
                "10.0.0.2:2000".into(),
                b"hello".to_vec()
            )
        );
        let (s, d, p) = parsed("[2001:db8::1]:5000", "[2001:db8::2]:3478", b"odd");
        assert_eq!(
            (s.to_string(), d.to_string(), p),
            (
                "[2001:db8::1]:5000".into(),
                "[2001:db8::2]:3478".into(),
                b"odd".to_vec()
            )
        );
    }

    #[test]
    fn tcp_segments_parse_back_with_their_flags_and_numbers() {
        let flags = Flags {
            syn: true,
            ack: true,
            rst: false,
        };
        let bytes = ip_tcp_packet(
            "10.0.0.1:1000".parse().unwrap(),
            "10.0.0.2:443".parse().unwrap(),
            (flags, 7, 42),
            b"",
        )
        .unwrap();
        let packet = etherparse::SlicedPacket::from_ip(&bytes).unwrap();
        let Some(etherparse::TransportSlice::Tcp(tcp)) = packet.transport else {
            panic!("not TCP")
        };
        assert!(tcp.syn() && tcp.ack() && !tcp.rst());
        assert_eq!(
            (tcp.sequence_number(), tcp.acknowledgment_number()),
            (7, 42)
        );
        assert_eq!((tcp.source_port(), tcp.destination_port()), (1000, 443));
    }

    #[test]
    fn file_header_says_raw_ip() {
        let w = PcapWriter::new(Vec::new()).unwrap();
        let bytes = w.into_inner().unwrap();
        assert_eq!(bytes.len(), 24);
        assert_eq!(&bytes[20..24], &LINKTYPE_RAW.to_le_bytes());
    }
}
