//! Synthesising the frames of one TCP connection from what was relayed or
//! probed: the three-way handshake, data in segments of at most one MSS with
//! correct sequence and acknowledgement numbers, and FIN or RST at the end.
//! Ethernet, IPv4 or IPv6 and TCP headers (checksums included) come from
//! etherparse. The server direction is watched by the same passive TLS parser
//! replay uses, so the frame that completes the server's Certificate message can
//! carry the verdict as a comment.

use std::net::{IpAddr, SocketAddr};

use etherparse::PacketBuilder;

use crate::core::tls::{Certificates, DirectionParser, TlsEvent};

/// What went over one connection, as a batch source recorded it (probe):
/// the exporter synthesises its frames from this when the batch is done. (The
/// proxy streams its connections instead: `stream::CaptureStream`.)
#[derive(Debug, Default, Clone)]
pub struct FlowLog {
    /// The client's address (edgetap's, for a probe).
    pub client: Option<std::net::SocketAddr>,
    /// The server's.
    pub server: Option<std::net::SocketAddr>,
    /// When the connection opened.
    pub opened: Option<std::time::SystemTime>,
    /// Bytes each way in order: (when, from us, bytes).
    pub chunks: Vec<(std::time::SystemTime, bool, Vec<u8>)>,
    /// When it closed.
    pub closed: Option<std::time::SystemTime>,
    /// NSS key log lines of the TLS session.
    pub keylog: String,
}

/// Largest TCP payload per synthesised segment.
pub const MSS: usize = 1448;

/// One synthesised frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Ethernet frame bytes.
    pub bytes: Vec<u8>,
    /// True for the frame that should carry the verdict: the one completing the
    /// server's Certificate message, or under TLS 1.3 (where that message is
    /// encrypted) the one completing the ServerHello.
    pub certificate: bool,
}

/// One TCP connection's frames, built as the connection happens.
#[derive(Debug)]
pub struct FlowSynth {
    client: SocketAddr,
    server: SocketAddr,
    /// Next sequence number of each side (client, server).
    seq: [u32; 2],
    server_tls: DirectionParser,
    /// The server's chain, once its Certificate message completed.
    pub certificates: Option<Certificates>,
    closed: bool,
}

const CLIENT_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
const SERVER_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];

impl FlowSynth {
    /// Start a connection: returns the synthesiser and the SYN, SYN/ACK, ACK frames.
    /// `isn` seeds the initial sequence numbers (any value; distinct per flow reads better).
    pub fn open(client: SocketAddr, server: SocketAddr, isn: u32) -> (FlowSynth, Vec<Frame>) {
        let mut f = FlowSynth {
            client,
            server,
            seq: [isn, isn.wrapping_mul(2_654_435_761).wrapping_add(1)],
            server_tls: DirectionParser::default(),
            certificates: None,
            closed: false,
        };
        let frames = vec![
            f.segment(
                true,
                Flags {
                    syn: true,
                    ..Flags::default()
                },
                &[],
            ),
            f.segment(
                false,
                Flags {
                    syn: true,
                    ack: true,
                    ..Flags::default()
                },
                &[],
            ),
            f.segment(
                true,
                Flags {
                    ack: true,
                    ..Flags::default()
                },
                &[],
            ),
        ];
        (f, frames)
    }

    /// Bytes sent by one side: data segments of at most [`MSS`].
    pub fn data(&mut self, from_client: bool, bytes: &[u8]) -> Vec<Frame> {
        let mut frames = Vec::new();
        if self.closed {
            return frames;
        }
        for chunk in bytes.chunks(MSS) {
            let mut frame = self.segment(
                from_client,
                Flags {
                    ack: true,
                    psh: true,
                    ..Flags::default()
                },
                chunk,
            );
            if !from_client && self.certificates.is_none() && !self.server_tls.done() {
                let mut events = Vec::new();
                self.server_tls.feed(chunk, &mut events);
                for e in events {
                    match e {
                        TlsEvent::Certificate(c) => {
                            self.certificates = Some(c);
                            frame.certificate = true;
                        }
                        TlsEvent::ServerHello(sh) if sh.version == 0x0304 => {
                            frame.certificate = true
                        }
                        _ => {}
                    }
                }
            }
            frames.push(frame);
        }
        frames
    }

    /// Bytes one side sent that are not in the capture: the sequence numbers
    /// move on, so Wireshark shows the gap ("previous segment not captured").
    pub fn skip(&mut self, from_client: bool, n: u64) {
        let side = usize::from(!from_client);
        self.seq[side] = self.seq[side].wrapping_add(n as u32);
    }

    /// The connection ends: FIN from `by_client`'s side answered in kind, or a RST.
    pub fn close(&mut self, by_client: bool, reset: bool) -> Vec<Frame> {
        if self.closed {
            return Vec::new();
        }
        self.closed = true;
        if reset {
            return vec![self.segment(
                by_client,
                Flags {
                    rst: true,
                    ack: true,
                    ..Flags::default()
                },
                &[],
            )];
        }
        vec![
            self.segment(
                by_client,
                Flags {
                    fin: true,
                    ack: true,
                    ..Flags::default()
                },
                &[],
            ),
            self.segment(
                !by_client,
                Flags {
                    fin: true,
                    ack: true,
                    ..Flags::default()
                },
                &[],
            ),
            self.segment(
                by_client,
                Flags {
                    ack: true,
                    ..Flags::default()
                },
                &[],
            ),
        ]
    }

    fn segment(&mut self, from_client: bool, flags: Flags, payload: &[u8]) -> Frame {
        let (me, peer) = if from_client { (0, 1) } else { (1, 0) };
        let (src, dst) = if from_client {
            (self.client, self.server)
        } else {
            (self.server, self.client)
        };
        let (smac, dmac) = if from_client {
            (CLIENT_MAC, SERVER_MAC)
        } else {
            (SERVER_MAC, CLIENT_MAC)
        };
        let seq = self.seq[me];
        let ack = self.seq[peer];
        let eth = PacketBuilder::ethernet2(smac, dmac);
        let ip = match (src.ip(), dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => eth.ipv4(s.octets(), d.octets(), 64),
            (s, d) => eth.ipv6(v6(s), v6(d), 64),
        };
        let mut tcp = ip.tcp(src.port(), dst.port(), seq, 65535);
        if flags.syn {
            tcp = tcp.syn();
        }
        if flags.ack {
            tcp = tcp.ack(ack);
        }
        if flags.psh {
            tcp = tcp.psh();
        }
        if flags.fin {
            tcp = tcp.fin();
        }
        if flags.rst {
            tcp = tcp.rst();
        }
        let mut bytes = Vec::with_capacity(tcp.size(payload.len()));
        // Writing into a Vec cannot fail; sizes are bounded by MSS.
        let _ = tcp.write(&mut bytes, payload);
        let consumed = payload.len() as u32 + u32::from(flags.syn) + u32::from(flags.fin);
        self.seq[me] = seq.wrapping_add(consumed);
        Frame {
            bytes,
            certificate: false,
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Flags {
    syn: bool,
    ack: bool,
    psh: bool,
    fin: bool,
    rst: bool,
}

/// An address as the 16 bytes IPv6 headers carry (IPv4 mapped).
pub(crate) fn v6(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V6(v6) => v6.octets(),
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::capture::replay::Replay;
    use crate::core::tls::build::{certificate, record};

    #[test]
    fn synthesised_flow_replays_to_the_same_chain() {
        let cert = vec![0x30u8; 5000];
        let msg = certificate(std::slice::from_ref(&cert));
        let server_bytes = [record(22, &msg), record(20, &[1])].concat();

        let (mut flow, mut frames) = FlowSynth::open(
            "10.0.0.1:50000".parse().unwrap(),
            "[2001:db8::2]:8443".parse().unwrap(),
            7,
        );
        frames.extend(flow.data(true, b"\x16\x03\x01\x00\x01\x01"));
        let server_frames = flow.data(false, &server_bytes);
        assert_eq!(server_frames.iter().filter(|f| f.certificate).count(), 1);
        assert!(
            server_frames
                .iter()
                .all(|f| f.bytes.len() <= 14 + 40 + 20 + MSS)
        );
        frames.extend(server_frames);
        frames.extend(flow.close(true, false));
        assert_eq!(
            flow.certificates.as_ref().unwrap().certs,
            vec![cert.clone()]
        );

        let mut replay = Replay::new();
        for (i, f) in frames.iter().enumerate() {
            replay.frame(i as u64 + 1, 0.0, 1, &f.bytes);
        }
        let (conns, stats) = replay.finish();
        assert_eq!(stats.connections, 1);
        assert_eq!(conns[0].certificates.as_ref().unwrap().certs, vec![cert]);
        assert_eq!(conns[0].server.port(), 8443);
    }

    /// Property: any prefix of a valid capture yields exactly the handshakes
    /// whose Certificate message was complete before the cut, each with its
    /// whole chain, and nothing for the others.
    #[test]
    fn any_prefix_yields_exactly_the_handshakes_finished_before_the_cut() {
        let chains: Vec<Vec<Vec<u8>>> = (0..3u8)
            .map(|i| {
                vec![
                    vec![0x30 + i; 3000 + 700 * usize::from(i)],
                    vec![0x40 + i; 1200],
                ]
            })
            .collect();
        let mut per_flow: Vec<Vec<Frame>> = Vec::new();
        for (i, chain) in chains.iter().enumerate() {
            let (mut flow, mut frames) = FlowSynth::open(
                format!("10.0.0.1:{}", 50000 + i).parse().unwrap(),
                format!("10.0.0.2:{}", 8443 + i).parse().unwrap(),
                100 + i as u32,
            );
            frames.extend(flow.data(true, b"\x16\x03\x01\x00\x01\x01"));
            let server = [record(22, &certificate(chain)), record(20, &[1])].concat();
            frames.extend(flow.data(false, &server));
            frames.extend(flow.close(true, false));
            per_flow.push(frames);
        }
        // Interleave the flows frame by frame, remembering where each chain completes.
        let mut frames: Vec<Frame> = Vec::new();
        let mut complete_at = [usize::MAX; 3];
        let longest = per_flow.iter().map(Vec::len).max().unwrap();
        for k in 0..longest {
            for (i, f) in per_flow.iter().enumerate() {
                if let Some(frame) = f.get(k) {
                    if frame.certificate {
                        complete_at[i] = frames.len();
                    }
                    frames.push(frame.clone());
                }
            }
        }
        assert!(complete_at.iter().all(|&c| c != usize::MAX));
        for cut in 0..=frames.len() {
            let mut replay = Replay::new();
            for (n, f) in frames[..cut].iter().enumerate() {
                replay.frame(n as u64 + 1, 0.0, 1, &f.bytes);
            }
            let (conns, _) = replay.finish();
            for (i, chain) in chains.iter().enumerate() {
                let port = 8443 + i as u16;
                let seen = conns
                    .iter()
                    .find(|c| c.server.port() == port)
                    .and_then(|c| c.certificates.as_ref())
                    .filter(|m| !m.certs.is_empty());
                if cut > complete_at[i] {
                    assert_eq!(seen.map(|m| &m.certs), Some(chain), "cut {cut}, flow {i}");
                } else {
                    assert!(
                        seen.is_none(),
                        "cut {cut}, flow {i}: a chain from a cut message"
                    );
                }
            }
        }
    }
}
