//! Replaying frames: connections are tracked by address pair, each direction is
//! reassembled and parsed, and every connection that shows TLS becomes a
//! [`TlsConnection`] with its hellos, the server's chain and where it was found.
//! A connection is dropped from work as soon as both directions turned encrypted,
//! so long captures cost little beyond their handshakes.

use std::collections::HashMap;
use std::net::SocketAddr;

use serde::Serialize;

use super::decap::{self, Skip, Transport};
use super::dns::CapturedDns;
use super::tcp::HalfStream;
use crate::core::tls::keylog::KeyLog;
use crate::core::tls::{Certificates, ClientHello, DirectionParser, ServerHello, TlsEvent};

/// Counters over a replay.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    /// Frames read.
    pub frames: u64,
    /// TCP segments decoded.
    pub tcp_segments: u64,
    /// Frames skipped as not TCP.
    pub not_tcp: u64,
    /// Frames that could not be decoded.
    pub undecodable: u64,
    /// IPv4 fragments skipped.
    pub fragments: u64,
    /// Link types seen but not decoded.
    pub unsupported_link_types: Vec<u32>,
    /// TCP connections seen.
    pub connections: u64,
}

/// A TLS handshake found in a capture.
#[derive(Debug, Clone, Serialize)]
pub struct TlsConnection {
    /// TCP stream index, in order of first appearance (0-based, like tshark's).
    pub stream: usize,
    /// The client (ClientHello sender) as ip:port.
    pub client: SocketAddr,
    /// The server.
    pub server: SocketAddr,
    /// Frame that completed the server's Certificate message (or its ServerHello).
    pub frame: u64,
    /// Capture timestamp of that frame, seconds since the epoch.
    pub time: f64,
    /// What the client offered.
    pub client_hello: Option<ClientHello>,
    /// What the server chose.
    pub server_hello: Option<ServerHello>,
    /// The server's Certificate message.
    pub certificates: Option<Certificates>,
    /// The client also sent a certificate (mutual TLS).
    pub client_certificate: bool,
    /// Alerts in plaintext: (sent by server, level, description).
    pub alerts: Vec<(bool, u8, u8)>,
    /// Plaintext the client sent before TLS (STARTTLS prelude).
    #[serde(skip)]
    pub client_prefix: Vec<u8>,
    /// Plaintext the server sent before TLS (its STARTTLS features).
    #[serde(skip)]
    pub server_prefix: Vec<u8>,
    /// What went wrong reading this connection, if anything.
    pub damage: Vec<String>,
    /// What became of the encrypted part of a TLS 1.3 handshake: decrypted
    /// with which keys, or why not. None when there was nothing to decrypt.
    pub decryption: Option<Decryption>,
    /// The server's encrypted TLS 1.3 records after ServerHello, until read.
    #[serde(skip)]
    pub server_flight: Vec<u8>,
    /// The client's first encrypted TLS 1.3 record, until read.
    #[serde(skip)]
    pub client_flight: Vec<u8>,
    /// The handshake resumed a session instead of sending a chain (then
    /// the chain of the full handshake it was tied to, when it was).
    #[serde(skip)]
    pub resumed: Option<super::resume::Resumed>,
    /// The session ticket the server issued (TLS 1.2), for a later
    /// resumption to be tied to this handshake.
    #[serde(skip)]
    pub ticket: Option<Vec<u8>>,
}

/// What became of the encrypted part of a recorded TLS 1.3 handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decryption {
    /// The server's flight was opened.
    pub decrypted: bool,
    /// With which keys, what it held, or why it was not opened.
    pub note: String,
}

#[derive(Default)]
struct Direction {
    tcp: HalfStream,
    tls: DirectionParser,
    events: Vec<(u64, f64, TlsEvent)>,
}

struct Connection {
    stream: usize,
    /// The first sender seen; direction 0.
    a: SocketAddr,
    b: SocketAddr,
    dirs: [Direction; 2],
    done: bool,
}

impl Connection {
    fn finished(&self) -> bool {
        self.dirs.iter().all(|d| d.tls.done())
    }
}

/// The replay state machine: feed frames, then [`Replay::finish`].
#[derive(Default)]
pub struct Replay {
    index: HashMap<(SocketAddr, SocketAddr), usize>,
    conns: Vec<Connection>,
    scratch: Vec<u8>,
    events: Vec<TlsEvent>,
    keys: KeyLog,
    dns: CapturedDns,
    /// DNS over TCP, the server's direction of each connection.
    dns_tcp: HashMap<(SocketAddr, SocketAddr), HalfStream>,
    /// Counters.
    pub stats: Stats,
}

impl Replay {
    /// A fresh replay.
    pub fn new() -> Replay {
        Replay::default()
    }

    /// A fresh replay that opens TLS 1.3 handshakes with `keys`.
    pub fn with_keys(keys: KeyLog) -> Replay {
        Replay {
            keys,
            ..Replay::default()
        }
    }

    /// TLS key log text (from `--keylog`, or a capture's Decryption Secrets
    /// Block), `source` saying which; returns the handshake secrets taken.
    /// Keys may arrive at any point before [`Replay::finish`].
    pub fn add_keys(&mut self, text: &str, source: &str) -> usize {
        self.keys.add(text, source)
    }

    /// The DNS answers seen so far (taken once, before [`Replay::finish`]).
    pub fn take_dns(&mut self) -> CapturedDns {
        std::mem::take(&mut self.dns)
    }

    /// Take one frame.
    pub fn frame(&mut self, number: u64, time: f64, linktype: u32, data: &[u8]) {
        self.stats.frames += 1;
        let seg = match decap::transport(linktype, data) {
            Ok(Transport::Tcp(s)) if s.src.port() == 53 || s.dst.port() == 53 => {
                self.stats.tcp_segments += 1;
                if s.src.port() == 53 {
                    let half = self.dns_tcp.entry((s.src, s.dst)).or_default();
                    self.scratch.clear();
                    half.push(s.seq, s.syn, s.payload, &mut self.scratch);
                    if !self.scratch.is_empty() {
                        self.dns.tcp_bytes(number, (s.src, s.dst), &self.scratch);
                    }
                    if s.fin || s.rst {
                        self.dns_tcp.remove(&(s.src, s.dst));
                    }
                }
                return;
            }
            Ok(Transport::Tcp(s)) => s,
            Ok(Transport::Udp(u)) => {
                if u.src.port() == 53 {
                    self.dns.datagram(number, u.payload);
                }
                self.stats.not_tcp += 1;
                return;
            }
            Err(Skip::NotTcp) => {
                self.stats.not_tcp += 1;
                return;
            }
            Err(Skip::Fragment) => {
                self.stats.fragments += 1;
                return;
            }
            Err(Skip::UnsupportedLinkType(l)) => {
                if !self.stats.unsupported_link_types.contains(&l) {
                    self.stats.unsupported_link_types.push(l);
                }
                self.stats.undecodable += 1;
                return;
            }
            Err(Skip::Undecodable(_)) => {
                self.stats.undecodable += 1;
                return;
            }
        };
        self.stats.tcp_segments += 1;
        let key = (seg.src, seg.dst);
        let id = match self.index.get(&key) {
            Some(&id) => id,
            None => {
                let id = self.conns.len();
                self.stats.connections += 1;
                self.conns.push(Connection {
                    stream: id,
                    a: seg.src,
                    b: seg.dst,
                    dirs: [Direction::keeping(), Direction::keeping()],
                    done: false,
                });
                self.index.insert((seg.src, seg.dst), id);
                self.index.insert((seg.dst, seg.src), id);
                id
            }
        };
        let conn = &mut self.conns[id];
        if conn.done {
            return;
        }
        let d = usize::from(seg.src != conn.a);
        let dir = &mut conn.dirs[d];
        self.scratch.clear();
        dir.tcp
            .push(seg.seq, seg.syn, seg.payload, &mut self.scratch);
        if seg.fin || seg.rst {
            dir.tcp.closed = true;
        }
        if !self.scratch.is_empty() {
            self.events.clear();
            dir.tls.feed(&self.scratch, &mut self.events);
            let tls13 = self.events.iter().any(
                |e| matches!(e, TlsEvent::ServerHello(sh) if sh.version == 0x0304 && !sh.retry),
            );
            dir.events
                .extend(self.events.drain(..).map(|e| (number, time, e)));
            if tls13 {
                conn.dirs[1 - d].tls.peer_chose_tls13();
            }
        }
        // The client's first encrypted record comes after the server's whole
        // handshake flight: that flight is complete.
        for s in 0..2 {
            if conn.dirs[s].tls.keeping_server_flight() && conn.dirs[1 - s].tls.done() {
                conn.dirs[s].tls.end_server_flight();
            }
        }
        if conn.finished() {
            conn.done = true;
            conn.dirs[0].tcp = HalfStream::default();
            conn.dirs[1].tcp = HalfStream::default();
        }
    }

    /// End of input: give up on holes, close parsers, and list the TLS connections.
    pub fn finish(mut self) -> (Vec<TlsConnection>, Stats) {
        let mut out = Vec::new();
        for mut conn in std::mem::take(&mut self.conns) {
            if !conn.done {
                for dir in conn.dirs.iter_mut() {
                    let mut bytes = Vec::new();
                    while !dir.tls.done() {
                        bytes.clear();
                        let Some(gap) = dir.tcp.skip_gap(&mut bytes) else {
                            break;
                        };
                        dir.tls.gap(gap.at, gap.len);
                    }
                    dir.tls.finish();
                }
            }
            if let Some(mut tls) = summarise(conn) {
                super::decrypt::open_tls13(&mut tls, &self.keys);
                out.push(tls);
            }
        }
        super::resume::link(&mut out);
        (out, self.stats)
    }
}

impl Direction {
    fn keeping() -> Direction {
        Direction {
            tls: DirectionParser::keeping_tls13_flights(),
            ..Direction::default()
        }
    }
}

fn summarise(mut conn: Connection) -> Option<TlsConnection> {
    let has = |d: usize, f: fn(&TlsEvent) -> bool| conn.dirs[d].events.iter().any(|(_, _, e)| f(e));
    let is_ch = |e: &TlsEvent| matches!(e, TlsEvent::ClientHello(_));
    let is_sh = |e: &TlsEvent| matches!(e, TlsEvent::ServerHello(_));
    let is_cert = |e: &TlsEvent| matches!(e, TlsEvent::Certificate(_));
    // Roles, by the first clue that holds: who said ServerHello, who said
    // ClientHello (the other is the server), who sent certificates.
    type Clue = (usize, fn(&TlsEvent) -> bool, usize);
    let clues: [Clue; 6] = [
        (0, is_sh, 0),
        (1, is_sh, 1),
        (0, is_ch, 1),
        (1, is_ch, 0),
        (0, is_cert, 0),
        (1, is_cert, 1),
    ];
    let Some(server) = clues
        .iter()
        .find(|(d, clue, _)| has(*d, *clue))
        .map(|(_, _, s)| *s)
    else {
        let errors: Vec<_> = conn
            .dirs
            .iter()
            .filter_map(|d| d.tls.error.clone())
            .collect();
        // Only report connections where TLS was seen at all.
        if conn.dirs.iter().any(|d| d.tls.found_tls()) && !errors.is_empty() {
            let mut t = empty(&conn, 0);
            t.damage = errors;
            return Some(t);
        }
        return None;
    };
    let client = 1 - server;
    let mut t = empty(&conn, server);
    t.server_flight = conn.dirs[server].tls.take_flight();
    t.client_flight = conn.dirs[client].tls.take_flight();
    t.client_prefix = conn.dirs[client].tls.plaintext();
    t.server_prefix = conn.dirs[server].tls.prefix().to_vec();
    for (frame, time, e) in &conn.dirs[client].events {
        t.client_event(*frame, *time, e);
    }
    for (frame, time, e) in &conn.dirs[server].events {
        t.server_event(*frame, *time, e);
    }
    for (who, d) in [("server", server), ("client", client)] {
        if let Some(e) = &conn.dirs[d].tls.error {
            t.damage.push(format!("{who} side: {e}"));
        }
        let tcp = &conn.dirs[d].tcp;
        if tcp.overflow > 0 {
            t.damage.push(format!(
                "{who} side: {} bytes dropped, too far out of order",
                tcp.overflow
            ));
        }
    }
    Some(t)
}

fn empty(conn: &Connection, server: usize) -> TlsConnection {
    let (s, c) = if server == 0 {
        (conn.a, conn.b)
    } else {
        (conn.b, conn.a)
    };
    TlsConnection::new(conn.stream, c, s)
}

impl TlsConnection {
    /// A connection with nothing seen yet.
    pub fn new(stream: usize, client: SocketAddr, server: SocketAddr) -> TlsConnection {
        TlsConnection {
            stream,
            client,
            server,
            frame: 0,
            time: 0.0,
            client_hello: None,
            server_hello: None,
            certificates: None,
            client_certificate: false,
            alerts: Vec::new(),
            client_prefix: Vec::new(),
            server_prefix: Vec::new(),
            damage: Vec::new(),
            decryption: None,
            server_flight: Vec::new(),
            client_flight: Vec::new(),
            resumed: None,
            ticket: None,
        }
    }

    /// Take something the client sent (in frame `frame` at `time`).
    pub fn client_event(&mut self, frame: u64, time: f64, e: &TlsEvent) {
        match e {
            TlsEvent::ClientHello(ch) if self.client_hello.is_none() => {
                self.client_hello = Some(ch.clone());
                if self.frame == 0 {
                    (self.frame, self.time) = (frame, time);
                }
            }
            TlsEvent::Certificate(_) => self.client_certificate = true,
            TlsEvent::Alert(level, desc) => self.alerts.push((false, *level, *desc)),
            _ => {}
        }
    }

    /// Take something the server sent.
    pub fn server_event(&mut self, frame: u64, time: f64, e: &TlsEvent) {
        match e {
            TlsEvent::ServerHello(sh) => {
                self.server_hello = Some(*sh);
                (self.frame, self.time) = (frame, time);
            }
            TlsEvent::Certificate(c) if self.certificates.is_none() => {
                self.certificates = Some(c.clone());
                (self.frame, self.time) = (frame, time);
            }
            TlsEvent::Alert(level, desc) => self.alerts.push((true, *level, *desc)),
            TlsEvent::NewSessionTicket(t) => self.ticket = Some(t.clone()),
            _ => {}
        }
    }
}
