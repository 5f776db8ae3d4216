//! From a captured frame to a TCP segment (or a UDP datagram, for DNS): peel the link layer (Ethernet, VLAN and
//! QinQ tags, PPPoE, Linux cooked SLL/SLL2, BSD loopback, raw IP) and tunnels
//! (Geneve, VXLAN), then slice IP and TCP with etherparse.
//!
//! The link layers are peeled here by hand: each is a few fixed bytes, and
//! etherparse knows neither PPPoE sessions, SLL2 nor Geneve, which real captures
//! of collaboration networks contain.

use std::net::{IpAddr, SocketAddr};

use etherparse::{LaxNetSlice, LaxSlicedPacket, TransportSlice};

/// pcap LINKTYPE values edgetap decodes.
pub mod linktype {
    /// BSD loopback (4-byte host-order family).
    pub const NULL: u32 = 0;
    /// Ethernet II.
    pub const ETHERNET: u32 = 1;
    /// PPP (with protocol field).
    pub const PPP: u32 = 9;
    /// Raw IP (also 12 and 14 on some systems).
    pub const RAW: u32 = 101;
    /// OpenBSD loopback (network-order family).
    pub const LOOP: u32 = 108;
    /// Linux cooked capture v1.
    pub const LINUX_SLL: u32 = 113;
    /// Raw IPv4.
    pub const IPV4: u32 = 228;
    /// Raw IPv6.
    pub const IPV6: u32 = 229;
    /// Linux cooked capture v2.
    pub const LINUX_SLL2: u32 = 276;
}

/// One TCP segment, addresses and all.
#[derive(Debug, Clone, Copy)]
pub struct Segment<'a> {
    /// Sender.
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
    /// Sequence number.
    pub seq: u32,
    /// SYN flag.
    pub syn: bool,
    /// FIN flag.
    pub fin: bool,
    /// RST flag.
    pub rst: bool,
    /// The payload bytes captured (may be fewer than sent if the snap length cut them).
    pub payload: &'a [u8],
}

/// One UDP datagram (DNS answers, for context).
#[derive(Debug, Clone, Copy)]
pub struct Datagram<'a> {
    /// Sender.
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
    /// The payload bytes captured.
    pub payload: &'a [u8],
}

/// What a frame carries that replay reads.
#[derive(Debug, Clone, Copy)]
pub enum Transport<'a> {
    /// A TCP segment.
    Tcp(Segment<'a>),
    /// A UDP datagram (other than the tunnels peeled here).
    Udp(Datagram<'a>),
}

/// Why a frame yields no TCP segment. Most are simply not TCP and are skipped
/// silently; `Undecodable` is counted and reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// Not IP/TCP (ARP, UDP, ICMP, ...).
    NotTcp,
    /// A link type edgetap does not decode.
    UnsupportedLinkType(u32),
    /// An IPv4 fragment other than the first (reassembly is not done).
    Fragment,
    /// Too short or inconsistent headers.
    Undecodable(String),
}

const MAX_DEPTH: usize = 4;

/// Decode a frame of `linktype` into a TCP segment.
pub fn segment(linktype: u32, frame: &[u8]) -> Result<Segment<'_>, Skip> {
    match transport(linktype, frame)? {
        Transport::Tcp(s) => Ok(s),
        Transport::Udp(_) => Err(Skip::NotTcp),
    }
}

/// Decode a frame of `linktype` into a TCP segment or a UDP datagram.
pub fn transport(linktype: u32, frame: &[u8]) -> Result<Transport<'_>, Skip> {
    segment_at(linktype, frame, 0)
}

fn segment_at(linktype: u32, frame: &[u8], depth: usize) -> Result<Transport<'_>, Skip> {
    if depth > MAX_DEPTH {
        return Err(Skip::Undecodable("too many nested tunnels".into()));
    }
    let ip = match linktype {
        linktype::ETHERNET => ethernet(frame)?,
        linktype::RAW | 12 | 14 | linktype::IPV4 | linktype::IPV6 => frame,
        linktype::NULL | linktype::LOOP => frame.get(4..).ok_or_else(short)?,
        linktype::LINUX_SLL => {
            let proto = be16(frame, 14)?;
            by_ethertype(proto, frame.get(16..).ok_or_else(short)?)?
        }
        linktype::LINUX_SLL2 => {
            let proto = be16(frame, 0)?;
            by_ethertype(proto, frame.get(20..).ok_or_else(short)?)?
        }
        linktype::PPP => ppp(frame)?,
        other => return Err(Skip::UnsupportedLinkType(other)),
    };
    ip_segment(ip, depth)
}

fn short() -> Skip {
    Skip::Undecodable("frame shorter than its link-layer header".into())
}

fn be16(b: &[u8], at: usize) -> Result<u16, Skip> {
    b.get(at..at + 2)
        .map(|s| u16::from_be_bytes([s[0], s[1]]))
        .ok_or_else(short)
}

/// Ethernet II with any number of 802.1Q/802.1ad tags.
fn ethernet(frame: &[u8]) -> Result<&[u8], Skip> {
    let mut ethertype = be16(frame, 12)?;
    let mut at = 14;
    while matches!(ethertype, 0x8100 | 0x88a8 | 0x9100) {
        ethertype = be16(frame, at + 2)?;
        at += 4;
    }
    by_ethertype(ethertype, frame.get(at..).ok_or_else(short)?)
}

fn by_ethertype(ethertype: u16, payload: &[u8]) -> Result<&[u8], Skip> {
    match ethertype {
        0x0800 | 0x86dd => Ok(payload),
        // PPPoE session: version/type, code, session id, length, then PPP protocol.
        0x8864 => ppp(payload.get(6..).ok_or_else(short)?),
        0x8100 | 0x88a8 | 0x9100 => {
            let inner = be16(payload, 2)?;
            by_ethertype(inner, payload.get(4..).ok_or_else(short)?)
        }
        _ => Err(Skip::NotTcp),
    }
}

/// PPP with a 2-byte protocol field (optionally after 0xff 0x03 address/control).
fn ppp(b: &[u8]) -> Result<&[u8], Skip> {
    let b = if b.starts_with(&[0xff, 0x03]) {
        &b[2..]
    } else {
        b
    };
    match be16(b, 0)? {
        0x0021 | 0x0057 => Ok(&b[2..]),
        _ => Err(Skip::NotTcp),
    }
}

fn ip_segment(ip: &[u8], depth: usize) -> Result<Transport<'_>, Skip> {
    let packet = LaxSlicedPacket::from_ip(ip).map_err(|e| Skip::Undecodable(e.to_string()))?;
    let (src_ip, dst_ip): (IpAddr, IpAddr) = match &packet.net {
        Some(LaxNetSlice::Ipv4(v4)) => {
            let h = v4.header();
            if h.fragments_offset().value() != 0 {
                return Err(Skip::Fragment);
            }
            (h.source_addr().into(), h.destination_addr().into())
        }
        Some(LaxNetSlice::Ipv6(v6)) => {
            let h = v6.header();
            (h.source_addr().into(), h.destination_addr().into())
        }
        _ => return Err(Skip::NotTcp),
    };
    match packet.transport {
        Some(TransportSlice::Tcp(tcp)) => Ok(Transport::Tcp(Segment {
            src: SocketAddr::new(src_ip, tcp.source_port()),
            dst: SocketAddr::new(dst_ip, tcp.destination_port()),
            seq: tcp.sequence_number(),
            syn: tcp.syn(),
            fin: tcp.fin(),
            rst: tcp.rst(),
            payload: tcp.payload(),
        })),
        Some(TransportSlice::Udp(udp)) => match udp.destination_port() {
            // Geneve: 8-byte header plus options, then (for protocol 0x6558) Ethernet.
            6081 => {
                let p = udp.payload();
                let opt_len = usize::from(p.first().copied().unwrap_or(0) & 0x3f) * 4;
                let proto = be16(p, 2)?;
                let inner = p.get(8 + opt_len..).ok_or_else(short)?;
                match proto {
                    0x6558 => segment_at(linktype::ETHERNET, inner, depth + 1),
                    0x0800 | 0x86dd => ip_segment(inner, depth + 1),
                    _ => Err(Skip::NotTcp),
                }
            }
            // VXLAN: 8-byte header, then Ethernet.
            4789 => segment_at(
                linktype::ETHERNET,
                udp.payload().get(8..).ok_or_else(short)?,
                depth + 1,
            ),
            _ => Ok(Transport::Udp(Datagram {
                src: SocketAddr::new(src_ip, udp.source_port()),
                dst: SocketAddr::new(dst_ip, udp.destination_port()),
                payload: udp.payload(),
            })),
        },
        _ => Err(Skip::NotTcp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp_ipv4(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        etherparse::PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 5222, 1000, 65535)
            .write(&mut out, payload)
            .unwrap();
        out
    }

    #[test]
    fn ethernet_vlan_qinq_pppoe_sll() {
        let ip = tcp_ipv4(b"hello");
        let mac = [0u8; 12];
        let eth = [&mac[..], &[0x08, 0x00], &ip].concat();
        assert_eq!(segment(linktype::ETHERNET, &eth).unwrap().payload, b"hello");
        let qinq = [
            &mac[..],
            &[0x88, 0xa8, 0, 1, 0x81, 0x00, 0, 2, 0x08, 0x00],
            &ip,
        ]
        .concat();
        let s = segment(linktype::ETHERNET, &qinq).unwrap();
        assert_eq!(s.dst.port(), 5222);
        let pppoe = [
            &mac[..],
            &[0x88, 0x64, 0x11, 0, 0, 1, 0, 0, 0x00, 0x21],
            &ip,
        ]
        .concat();
        assert_eq!(segment(linktype::ETHERNET, &pppoe).unwrap().seq, 1000);
        let sll = [&[0u8; 14][..], &[0x08, 0x00], &ip].concat();
        assert_eq!(
            segment(linktype::LINUX_SLL, &sll).unwrap().payload,
            b"hello"
        );
        let sll2 = [&[0x08, 0x00][..], &[0u8; 18], &ip].concat();
        assert_eq!(
            segment(linktype::LINUX_SLL2, &sll2).unwrap().payload,
            b"hello"
        );
        assert_eq!(segment(linktype::RAW, &ip).unwrap().payload, b"hello");
    }

    #[test]
    fn truncated_and_foreign_frames_are_skipped_not_fatal() {
        assert!(matches!(
            segment(linktype::ETHERNET, &[0u8; 5]),
            Err(Skip::Undecodable(_))
        ));
        assert_eq!(
            segment(147, &[0u8; 40]).unwrap_err(),
            Skip::UnsupportedLinkType(147)
        );
        let arp = [&[0u8; 12][..], &[0x08, 0x06], &[0u8; 28]].concat();
        assert_eq!(segment(linktype::ETHERNET, &arp).unwrap_err(), Skip::NotTcp);
        // Every prefix of a good frame decodes or is skipped, never panics.
        let ip = tcp_ipv4(b"payload");
        let eth = [&[0u8; 12][..], &[0x08, 0x00], &ip].concat();
        for cut in 0..eth.len() {
            let _ = segment(linktype::ETHERNET, &eth[..cut]);
        }
    }
}
