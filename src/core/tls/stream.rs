//! One direction of a TLS connection, parsed incrementally and passively.
//!
//! Bytes arrive in any chunking. The parser first looks for where TLS starts
//! (offset 0, or after a plaintext STARTTLS/upgrade prefix such as XMPP
//! `<proceed/>`, SMTP `220`, a PostgreSQL `S`, an HTTP CONNECT reply), then
//! deframes records, reassembles handshake messages across records (a 300 KB
//! certificate over 21 records works), and emits events until the direction
//! turns encrypted (ChangeCipherSpec or application data), when it stops.

use super::messages::{self, Certificates, ClientHello, ServerHello, be24};

/// Largest record body allowed (2^14 plus the expansion TLS 1.2 permits).
const MAX_RECORD: usize = 16384 + 2048;
/// Largest handshake message accepted (real chains are far smaller).
const MAX_MESSAGE: usize = 4 * 1024 * 1024;
/// Plaintext scanned for the start of TLS before giving up.
pub const MAX_PREFIX: usize = 64 * 1024;
/// Encrypted TLS 1.3 handshake bytes kept per server flight for a key log
/// (real flights are a few KiB; this bounds what a connection can hold).
pub const MAX_FLIGHT: usize = 256 * 1024;

/// Something the handshake showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsEvent {
    /// A ClientHello (TLS or SSLv2 format).
    ClientHello(ClientHello),
    /// A ServerHello (or HelloRetryRequest).
    ServerHello(ServerHello),
    /// A Certificate message.
    Certificate(Certificates),
    /// An alert (level, description), while still in plaintext.
    Alert(u8, u8),
    /// A TLS 1.2 NewSessionTicket's ticket (sent before the server's
    /// ChangeCipherSpec, in plaintext): what a later resumption presents.
    NewSessionTicket(Vec<u8>),
}

/// Keeping the encrypted records of a TLS 1.3 handshake, to be opened later
/// with a key log ([`super::tls13`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    /// Not asked to (the proxy's watch has no keys).
    Off,
    /// Asked to, role not known yet.
    Ready,
    /// This side sent a TLS 1.3 ServerHello: keep its records until told the
    /// client finished (or [`MAX_FLIGHT`]).
    Server,
    /// The other side did: keep this side's first encrypted record (its
    /// Finished, certificate or alert), then stop.
    Client,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Seeking,
    Records,
    Stopped,
}

/// The parser for one direction.
#[derive(Debug)]
pub struct DirectionParser {
    state: State,
    buf: Vec<u8>,
    prefix: Vec<u8>,
    handshake: Vec<u8>,
    /// Why parsing stopped early, if it did (malformed record, gap, no TLS).
    pub error: Option<String>,
    /// The direction turned encrypted (CCS or application data).
    pub encrypted: bool,
    /// TLS records seen.
    pub records: usize,
    keep: Keep,
    flight: Vec<u8>,
}

impl Default for DirectionParser {
    fn default() -> Self {
        DirectionParser {
            state: State::Seeking,
            buf: Vec::new(),
            prefix: Vec::new(),
            handshake: Vec::new(),
            error: None,
            encrypted: false,
            records: 0,
            keep: Keep::Off,
            flight: Vec::new(),
        }
    }
}

impl DirectionParser {
    /// True when this direction needs no more bytes.
    pub fn done(&self) -> bool {
        self.state == State::Stopped
    }

    /// True once TLS was found in this direction.
    pub fn found_tls(&self) -> bool {
        self.state != State::Seeking && self.records > 0
    }

    /// The plaintext that preceded TLS (a STARTTLS or upgrade prelude).
    pub fn prefix(&self) -> &[u8] {
        &self.prefix
    }

    /// The plaintext this direction sent: [`Self::prefix`], and while no TLS
    /// record has been found yet, the bytes held while looking for one (a
    /// client that sent plain HTTP to a TLS port).
    pub fn plaintext(&self) -> Vec<u8> {
        let mut text = self.prefix.clone();
        if matches!(self.state, State::Seeking) {
            text.extend_from_slice(&self.buf);
        }
        text
    }

    /// A parser that keeps the encrypted records of a TLS 1.3 handshake
    /// (this side's, once it is known which side is which), for a key log.
    pub fn keeping_tls13_flights() -> DirectionParser {
        DirectionParser {
            keep: Keep::Ready,
            ..DirectionParser::default()
        }
    }

    /// The other side sent a TLS 1.3 ServerHello: this side is the client.
    pub fn peer_chose_tls13(&mut self) {
        if self.keep == Keep::Ready {
            self.keep = Keep::Client;
        }
    }

    /// Still keeping a TLS 1.3 server flight (the client has not finished).
    pub fn keeping_server_flight(&self) -> bool {
        self.keep == Keep::Server && self.state != State::Stopped
    }

    /// The client finished its handshake: the server's flight is complete.
    pub fn end_server_flight(&mut self) {
        if self.keeping_server_flight() {
            self.turned_encrypted();
        }
    }

    /// The encrypted TLS 1.3 records kept (headers included), handed over once.
    pub fn take_flight(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.flight)
    }

    /// Feed the next contiguous bytes; push what they completed to `events`.
    pub fn feed(&mut self, bytes: &[u8], events: &mut Vec<TlsEvent>) {
        if self.state == State::Stopped {
            return;
        }
        self.buf.extend_from_slice(bytes);
        if self.state == State::Seeking {
            self.seek();
        }
        if self.state == State::Records {
            self.records_loop(events);
        }
    }

    /// The stream has a hole here: framing is lost, stop with a note.
    pub fn gap(&mut self, at: u64, len: u64) {
        if self.state != State::Stopped {
            self.stop(format!("{len} bytes missing from the capture at stream offset {at}; the handshake after it cannot be read"));
        }
    }

    /// The direction ended: say what was left incomplete, if anything.
    pub fn finish(&mut self) {
        if self.state == State::Stopped {
            return;
        }
        // A handshake record cut short still tells which message was lost.
        if self.state == State::Records && self.buf.len() > 5 && self.buf[0] == 22 {
            let partial = self.buf.split_off(5);
            self.handshake.extend_from_slice(&partial);
            self.buf.clear();
        }
        if self.handshake.len() >= 4 {
            let need = be24(&self.handshake, 1) + 4;
            let what = message_name(self.handshake[0]);
            self.stop(format!(
                "{what} message cut short: {} of {need} bytes captured",
                self.handshake.len()
            ));
        } else if self.state == State::Records && !self.buf.is_empty() {
            self.stop(format!(
                "TLS record cut short: {} bytes of it captured",
                self.buf.len()
            ));
        }
    }

    /// The direction is encrypted from here: nothing more to parse.
    fn turned_encrypted(&mut self) {
        self.encrypted = true;
        self.state = State::Stopped;
        self.buf = Vec::new();
        self.handshake = Vec::new();
    }

    fn stop(&mut self, why: String) {
        self.error.get_or_insert(why);
        self.state = State::Stopped;
        self.buf = Vec::new();
        self.handshake = Vec::new();
    }

    fn seek(&mut self) {
        match find_tls_start(&self.buf) {
            Some(at) => {
                self.prefix.extend_from_slice(&self.buf[..at]);
                self.buf.drain(..at);
                self.state = State::Records;
                if is_sslv2_client_hello(&self.buf) {
                    self.state = State::Records;
                }
            }
            None if self.buf.len() > MAX_PREFIX => {
                let n = self.buf.len();
                self.prefix
                    .extend_from_slice(&self.buf[..MAX_PREFIX.min(n)]);
                self.stop(format!(
                    "no TLS handshake within the first {MAX_PREFIX} bytes"
                ));
            }
            None => {}
        }
    }

    fn records_loop(&mut self, events: &mut Vec<TlsEvent>) {
        loop {
            if self.records == 0 && is_sslv2_client_hello(&self.buf) {
                let len = (usize::from(self.buf[0] & 0x7f) << 8) | usize::from(self.buf[1]);
                if self.buf.len() < 2 + len {
                    return;
                }
                self.buf.drain(..2 + len);
                self.records += 1;
                events.push(TlsEvent::ClientHello(ClientHello {
                    sslv2_format: true,
                    legacy_version: 0x0002,
                    ..ClientHello::default()
                }));
                continue;
            }
            if self.buf.len() < 5 {
                return;
            }
            let content = self.buf[0];
            let major = self.buf[1];
            let len = usize::from(u16::from_be_bytes([self.buf[3], self.buf[4]]));
            if !(20..=24).contains(&content) || major != 3 || len > MAX_RECORD {
                self.stop(format!(
                    "malformed TLS record header {:02x} {:02x} {:02x} {:02x} {:02x} after {} records",
                    self.buf[0], self.buf[1], self.buf[2], self.buf[3], self.buf[4], self.records
                ));
                return;
            }
            if self.buf.len() < 5 + len {
                return;
            }
            self.records += 1;
            let header = [
                self.buf[0],
                self.buf[1],
                self.buf[2],
                self.buf[3],
                self.buf[4],
            ];
            let body: Vec<u8> = self.buf[5..5 + len].to_vec();
            self.buf.drain(..5 + len);
            match content {
                22 => {
                    self.handshake.extend_from_slice(&body);
                    if !self.messages(events) {
                        return;
                    }
                }
                21 if body.len() == 2 => events.push(TlsEvent::Alert(body[0], body[1])),
                // TLS 1.3's middlebox-compatibility ChangeCipherSpec changes nothing.
                20 if matches!(self.keep, Keep::Server | Keep::Client) => {}
                23 if self.keep == Keep::Server => {
                    if self.flight.len() + 5 + len > MAX_FLIGHT {
                        self.end_server_flight();
                        return;
                    }
                    self.flight.extend_from_slice(&header);
                    self.flight.extend_from_slice(&body);
                }
                23 if self.keep == Keep::Client => {
                    self.flight.extend_from_slice(&header);
                    self.flight.extend_from_slice(&body);
                    self.keep = Keep::Off;
                    self.turned_encrypted();
                    return;
                }
                20 | 23 => {
                    self.turned_encrypted();
                    return;
                }
                _ => {}
            }
        }
    }

    /// Emit every complete handshake message; false when parsing stopped.
    fn messages(&mut self, events: &mut Vec<TlsEvent>) -> bool {
        while self.handshake.len() >= 4 {
            let kind = self.handshake[0];
            let len = be24(&self.handshake, 1);
            if len > MAX_MESSAGE {
                self.stop(format!(
                    "{} message declares {len} bytes, more than edgetap accepts",
                    message_name(kind)
                ));
                return false;
            }
            if self.handshake.len() < 4 + len {
                return true;
            }
            let message: Vec<u8> = self.handshake.drain(..4 + len).collect();
            match kind {
                1 => match messages::client_hello(&message) {
                    Ok(ch) => events.push(TlsEvent::ClientHello(ch)),
                    Err(e) => {
                        self.stop(format!("malformed {e}"));
                        return false;
                    }
                },
                2 => match messages::server_hello(&message) {
                    Ok(sh) => {
                        if sh.version == 0x0304 && !sh.retry && self.keep == Keep::Ready {
                            self.keep = Keep::Server;
                        }
                        events.push(TlsEvent::ServerHello(sh))
                    }
                    Err(e) => {
                        self.stop(format!("malformed {e}"));
                        return false;
                    }
                },
                11 => events.push(TlsEvent::Certificate(messages::certificates(&message[4..]))),
                4 => {
                    if let Some(ticket) = messages::session_ticket(&message[4..]) {
                        events.push(TlsEvent::NewSessionTicket(ticket));
                    }
                }
                _ => {}
            }
        }
        true
    }
}

fn message_name(kind: u8) -> &'static str {
    match kind {
        1 => "ClientHello",
        2 => "ServerHello",
        11 => "Certificate",
        12 => "ServerKeyExchange",
        13 => "CertificateRequest",
        14 => "ServerHelloDone",
        16 => "ClientKeyExchange",
        22 => "CertificateStatus",
        _ => "handshake",
    }
}

fn is_sslv2_client_hello(b: &[u8]) -> bool {
    b.len() >= 5
        && b[0] & 0x80 != 0
        && b[2] == 0x01
        && (b[3] == 0x03 || b[3] == 0x00)
        && b[4] <= 0x04
}

/// Where TLS starts: offset 0 when the stream opens with any plausible record (or
/// an SSLv2 hello); later offsets only for a handshake record carrying a
/// ClientHello or ServerHello, so that plaintext cannot fake a start.
fn find_tls_start(b: &[u8]) -> Option<usize> {
    if b.len() >= 5 && (20..=23).contains(&b[0]) && b[1] == 3 && b[2] <= 4 {
        return Some(0);
    }
    if is_sslv2_client_hello(b) {
        return Some(0);
    }
    let limit = b.len().min(MAX_PREFIX);
    (1..limit).find(|&i| {
        b.len() >= i + 6
            && b[i] == 0x16
            && b[i + 1] == 0x03
            && b[i + 2] <= 0x04
            && {
                let len = usize::from(u16::from_be_bytes([b[i + 3], b[i + 4]]));
                (4..=MAX_RECORD).contains(&len)
            }
            && (b[i + 5] == 1 || b[i + 5] == 2)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::tls::build::{certificate as cert_message, handshake as message, record};

    fn server_stream(certs: &[Vec<u8>], record_size: usize) -> Vec<u8> {
        let mut hs = message(14, b""); // ServerHelloDone stands in before
        hs = [cert_message(certs), hs].concat();
        let mut out = Vec::new();
        for chunk in hs.chunks(record_size) {
            out.extend(record(22, chunk));
        }
        out.extend(record(20, &[1]));
        out
    }

    fn run(stream: &[u8], chunk: usize) -> (Vec<TlsEvent>, DirectionParser) {
        let mut p = DirectionParser::default();
        let mut events = Vec::new();
        for c in stream.chunks(chunk.max(1)) {
            p.feed(c, &mut events);
        }
        p.finish();
        (events, p)
    }

    #[test]
    fn certificate_over_many_records_and_any_chunking() {
        let big = vec![vec![0x30; 300_000], vec![0x31; 1200]];
        let stream = server_stream(&big, 16384);
        for chunk in [1, 7, 1460, 100_000, stream.len()] {
            let (events, p) = run(&stream, chunk);
            assert_eq!(events.len(), 1, "chunk {chunk}");
            let TlsEvent::Certificate(c) = &events[0] else {
                panic!()
            };
            assert_eq!(c.certs, big);
            assert!(p.encrypted && p.done());
        }
    }

    #[test]
    fn starttls_prefix_is_skipped_and_kept() {
        let prefix = b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
        let sh = message(
            2,
            &[3, 3]
                .iter()
                .chain([0u8; 32].iter())
                .chain([0u8, 0xc0, 0x30, 0].iter())
                .copied()
                .collect::<Vec<u8>>(),
        );
        let stream = [&prefix[..], &record(22, &sh)].concat();
        let (events, p) = run(&stream, 5);
        assert_eq!(p.prefix(), prefix);
        assert_eq!(
            events,
            vec![TlsEvent::ServerHello(ServerHello {
                version: 0x0303,
                cipher: 0xc030,
                retry: false,
                ..ServerHello::default()
            })]
        );
    }

    #[test]
    fn truncated_certificate_is_reported() {
        let stream = server_stream(&[vec![0x30; 5000]], 16384);
        let (events, p) = run(&stream[..3000], 512);
        assert!(events.is_empty());
        assert!(
            p.error
                .as_deref()
                .unwrap()
                .contains("Certificate message cut short"),
            "{:?}",
            p.error
        );
    }

    #[test]
    fn garbage_stops_cleanly_and_every_prefix_is_safe() {
        let (_, p) = run(&[0x16, 3, 3, 0xff, 0xff, 1, 2, 3], 3);
        assert!(p.error.is_some());
        let (_, p) = run(&vec![b'x'; MAX_PREFIX + 10], 4096);
        assert!(p.error.as_deref().unwrap().contains("no TLS handshake"));
        let stream = server_stream(&[vec![0x30; 2000], vec![0x31; 900]], 700);
        for cut in 0..stream.len() {
            let _ = run(&stream[..cut], 13);
        }
    }
}
