//! A capture written while connections are still open (the proxy's): what
//! passed on every connection, in the order it passed, so the file's
//! timestamps never go back even when connections overlap, and a capture cut
//! short (Ctrl-C, a full disk) still holds everything up to then.
//!
//! Records come in stamped, in stamp order (the recorder stamps them as it
//! queues them). Frames are synthesised at once ([`FlowSynth`]) and held for a
//! short window before they are given out, so that what is learned just after
//! the bytes passed can still go before or on them:
//! - a connection's TLS keys, as a Decryption Secrets Block placed before its
//!   first held frame (Wireshark and tshark read the keys before the records
//!   they open, in one pass);
//! - the verdict, as the comment of the frame that completed the server's
//!   Certificate (or TLS 1.3 ServerHello). A verdict that comes after that
//!   frame has left the window goes on the connection's next frame, saying so.
//!
//! The window is bounded in time and in bytes: past either, frames are given
//! out at once (the verdict then rides on a later frame).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use super::FlowSynth;
use super::flow::MSS;

/// What happened on one flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TapEvent {
    /// The TCP connection opened (client to server).
    Open {
        /// The connecting side.
        client: SocketAddr,
        /// The accepting side.
        server: SocketAddr,
    },
    /// Bytes passed one way.
    Data {
        /// Sent by the flow's client.
        from_client: bool,
        /// The bytes.
        bytes: Vec<u8>,
        /// Bytes of this direction that passed before these and were not
        /// captured (dropped when the writer could not keep up).
        skipped: u64,
    },
    /// NSS key log lines of the flow's TLS session.
    Keys(String),
    /// The verdict on the flow's handshake, as a comment.
    Verdict(String),
    /// The connection closed.
    Close,
}

/// One stamped record of one flow.
#[derive(Debug, Clone)]
pub struct TapRecord {
    /// Which flow (any number unique among the open flows).
    pub flow: u64,
    /// When, since the Unix epoch.
    pub at: Duration,
    /// What.
    pub event: TapEvent,
}

/// What to write, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// A frame: time since the epoch, Ethernet bytes, comment.
    Frame {
        /// Timestamp since the Unix epoch.
        at: Duration,
        /// Ethernet frame.
        bytes: Vec<u8>,
        /// The frame's comment.
        comment: Option<String>,
    },
    /// A Decryption Secrets Block of key log lines.
    Secrets(String),
}

impl Block {
    /// About how many bytes the block takes in a capture file.
    pub fn stored_len(&self) -> u64 {
        match self {
            Block::Frame { bytes, .. } => bytes.len() as u64 + 40,
            Block::Secrets(lines) => lines.len() as u64 + 20,
        }
    }
}

/// How long frames are held, at most, for keys and verdicts to catch up.
pub const HOLD: Duration = Duration::from_secs(2);
/// Bytes held, at most: past this the oldest frames go out at once.
pub const HOLD_BYTES: usize = 32 * 1024 * 1024;

/// Reads shorter than this (the XMPP prelude is read a byte at a time) are
/// joined with the next ones of the same direction into one segment.
const TINY: usize = 64;
/// Tiny reads join one segment only while it is this young.
const JOIN_WITHIN: Duration = Duration::from_millis(20);

/// Where a verdict that came before its frame was there goes.
#[derive(Debug, Default)]
enum Pending {
    #[default]
    None,
    /// On the frame that completes the server's Certificate, when it comes.
    OnCertificate(String),
    /// On the flow's next frame (its Certificate frame has gone out).
    OnNext(String),
}

/// Tiny reads being joined; their frame's place is kept in the window.
#[derive(Debug)]
struct Run {
    slot: u64,
    from_client: bool,
    bytes: Vec<u8>,
    started: Duration,
}

#[derive(Debug)]
struct Flow {
    synth: FlowSynth,
    /// The absolute index of the flow's certificate frame, once made.
    certificate: Option<u64>,
    /// The absolute index of the flow's oldest frame still held.
    first_held: Option<u64>,
    pending: Pending,
    run: Option<Run>,
    /// The flow's key log lines so far (for a file that starts mid-flow).
    keys: String,
}

/// A block in the window; `run_of` names the flow whose joined reads will
/// fill this place.
#[derive(Debug)]
struct Held {
    at: Duration,
    block: Block,
    run_of: Option<u64>,
}

/// The ordering window (sans I/O: records in, blocks out).
#[derive(Debug)]
pub struct CaptureStream {
    hold: Duration,
    hold_bytes: usize,
    flows: HashMap<u64, Flow>,
    /// Held blocks; the front's absolute index is `released`.
    held: VecDeque<Held>,
    held_bytes: usize,
    released: u64,
    /// The latest stamp seen: stamps never go back from it.
    latest: Duration,
    opened: u32,
    /// Closed flows' keys, kept until their last frame is given out: (its
    /// absolute index, the keys).
    closed_keys: Vec<(u64, String)>,
}

impl Default for CaptureStream {
    fn default() -> Self {
        CaptureStream::new(HOLD, HOLD_BYTES)
    }
}

impl CaptureStream {
    /// A window of `hold` and `hold_bytes` at most.
    pub fn new(hold: Duration, hold_bytes: usize) -> CaptureStream {
        CaptureStream {
            hold,
            hold_bytes,
            flows: HashMap::new(),
            held: VecDeque::new(),
            held_bytes: 0,
            released: 0,
            latest: Duration::ZERO,
            opened: 0,
            closed_keys: Vec::new(),
        }
    }

    /// Flows open now.
    pub fn open_flows(&self) -> usize {
        self.flows.len()
    }

    /// The key log lines of every flow with frames not yet written: what a
    /// new capture file (after a rotation) needs first, so connections open
    /// across the cut decrypt. Call [`CaptureStream::forget_released`] once
    /// what was given out is written.
    pub fn open_keys(&self) -> String {
        self.flows
            .values()
            .map(|f| f.keys.as_str())
            .chain(self.closed_keys.iter().map(|(_, k)| k.as_str()))
            .collect()
    }

    /// Everything given out so far is written: closed flows whose last frame
    /// went out no longer need their keys.
    pub fn forget_released(&mut self) {
        let released = self.released;
        self.closed_keys.retain(|(last, _)| *last >= released);
    }

    /// Take one record; returns what may be written now, in order.
    pub fn push(&mut self, r: TapRecord) -> Vec<Block> {
        // A wall clock stepped back (NTP) must not make the file go back.
        let at = r.at.max(self.latest);
        self.latest = at;
        if let TapEvent::Open { client, server } = r.event {
            self.opened = self.opened.wrapping_add(1);
            let (synth, frames) =
                FlowSynth::open(client, server, 0x1000_0000u32.wrapping_mul(self.opened));
            let mut flow = Flow {
                synth,
                certificate: None,
                first_held: None,
                pending: Pending::None,
                run: None,
                keys: String::new(),
            };
            for f in frames {
                self.hold_frame(&mut flow, at, f.bytes, None);
            }
            // A flow number reused without a close replaces the old one.
            self.flows.insert(r.flow, flow);
            return self.release(at);
        }
        if let TapEvent::Keys(lines) = r.event {
            // Looked up in place: the insertion renumbers every open flow's frames.
            if let Some(flow) = self.flows.get_mut(&r.flow)
                && !lines.is_empty()
            {
                flow.keys.push_str(&lines);
                let first = flow.first_held;
                self.hold_secrets(first, at, lines);
            }
            return self.release(at);
        }
        let Some(mut flow) = self.flows.remove(&r.flow) else {
            // Its open was never seen (dropped when the queue was full).
            return self.release(at);
        };
        let joined = match &r.event {
            TapEvent::Data {
                from_client,
                bytes,
                skipped: 0,
            } => flow.run.as_mut().is_some_and(|run| {
                let joins = run.from_client == *from_client
                    && bytes.len() < TINY
                    && at.saturating_sub(run.started) < JOIN_WITHIN
                    && run.bytes.len() + bytes.len() <= MSS;
                if joins {
                    run.bytes.extend_from_slice(bytes);
                }
                joins
            }),
            _ => false,
        };
        if !joined {
            self.end_run(&mut flow);
        }
        let mut open = true;
        match r.event {
            TapEvent::Data { .. } if joined => {}
            TapEvent::Data {
                from_client,
                bytes,
                skipped,
            } => {
                let mut lost = None;
                if skipped > 0 {
                    flow.synth.skip(from_client, skipped);
                    lost = Some(format!(
                        "edgetap: {skipped} bytes before this segment were not captured (the capture file could not keep up)"
                    ));
                }
                if bytes.len() < TINY && lost.is_none() {
                    let slot = self.next_index();
                    self.mark_held(&mut flow, slot);
                    self.held.push_back(Held {
                        at,
                        block: Block::Secrets(String::new()),
                        run_of: Some(r.flow),
                    });
                    flow.run = Some(Run {
                        slot,
                        from_client,
                        bytes,
                        started: at,
                    });
                } else {
                    for f in flow.synth.data(from_client, &bytes) {
                        let index = self.next_index();
                        let comment =
                            Self::comment_for(&mut flow, index, f.certificate, lost.take());
                        self.hold_frame(&mut flow, at, f.bytes, comment);
                    }
                }
            }
            TapEvent::Open { .. } | TapEvent::Keys(_) => {}
            TapEvent::Verdict(comment) => match flow.certificate {
                Some(i) if i >= self.released => {
                    let slot = (i - self.released) as usize;
                    if let Some(Held {
                        block: Block::Frame { comment: c, .. },
                        ..
                    }) = self.held.get_mut(slot)
                    {
                        *c = Some(join(c.take(), comment));
                    }
                }
                Some(_) => {
                    flow.pending = Pending::OnNext(format!(
                        "{comment} [the verdict on the server's chain, sent earlier in this TCP stream]"
                    ))
                }
                None => flow.pending = Pending::OnCertificate(comment),
            },
            TapEvent::Close => {
                let mut pending = match std::mem::take(&mut flow.pending) {
                    Pending::None => None,
                    Pending::OnCertificate(c) | Pending::OnNext(c) => Some(c),
                };
                for f in flow.synth.close(true, false) {
                    self.hold_frame(&mut flow, at, f.bytes, pending.take());
                }
                if !flow.keys.is_empty() {
                    let last = self.next_index().saturating_sub(1);
                    self.closed_keys
                        .push((last, std::mem::take(&mut flow.keys)));
                }
                open = false;
            }
        }
        if open {
            self.flows.insert(r.flow, flow);
        }
        self.release(at)
    }

    /// The clock moved on to `now` with nothing new: what may be written.
    pub fn tick(&mut self, now: Duration) -> Vec<Block> {
        self.release(now.max(self.latest))
    }

    /// Everything still held, in order (the capture is closing). Flows still
    /// open stay open in the file (Wireshark shows them as unfinished).
    pub fn finish(&mut self) -> Vec<Block> {
        let ids: Vec<u64> = self.flows.keys().copied().collect();
        for id in ids {
            if let Some(mut flow) = self.flows.remove(&id) {
                self.end_run(&mut flow);
            }
        }
        self.released += self.held.len() as u64;
        self.held_bytes = 0;
        self.closed_keys.clear();
        self.held
            .drain(..)
            .filter(|h| h.run_of.is_none())
            .map(|h| h.block)
            .collect()
    }

    fn next_index(&self) -> u64 {
        self.released + self.held.len() as u64
    }

    fn mark_held(&self, flow: &mut Flow, index: u64) {
        flow.first_held = Some(match flow.first_held {
            Some(first) if first >= self.released => first,
            _ => index,
        });
    }

    /// The comment a new frame of `flow` carries: what it says itself
    /// (`own`), and a verdict waiting for it.
    fn comment_for(
        flow: &mut Flow,
        index: u64,
        certificate: bool,
        own: Option<String>,
    ) -> Option<String> {
        let mut comment = own;
        if certificate && flow.certificate.is_none() {
            flow.certificate = Some(index);
            if let Pending::OnCertificate(c) = std::mem::take(&mut flow.pending) {
                comment = Some(join(comment, c));
            }
        }
        if let Pending::OnNext(c) = std::mem::take(&mut flow.pending) {
            comment = Some(join(comment, c));
        }
        comment
    }

    /// The joined tiny reads become their frame, in the place kept for it.
    fn end_run(&mut self, flow: &mut Flow) {
        let Some(run) = flow.run.take() else { return };
        let Some(i) = run.slot.checked_sub(self.released) else {
            return;
        };
        let mut frames = flow.synth.data(run.from_client, &run.bytes).into_iter();
        let Some(f) = frames.next() else { return };
        let comment = Self::comment_for(flow, run.slot, f.certificate, None);
        self.held_bytes += f.bytes.len();
        if let Some(h) = self.held.get_mut(i as usize) {
            *h = Held {
                at: run.started,
                block: Block::Frame {
                    at: run.started,
                    bytes: f.bytes,
                    comment,
                },
                run_of: None,
            };
        }
    }

    fn hold_frame(&mut self, flow: &mut Flow, at: Duration, bytes: Vec<u8>, c: Option<String>) {
        let index = self.next_index();
        self.mark_held(flow, index);
        self.held_bytes += bytes.len();
        self.held.push_back(Held {
            at,
            block: Block::Frame {
                at,
                bytes,
                comment: c,
            },
            run_of: None,
        });
    }

    /// Keys go before the flow's oldest held frame (or next, when none is held).
    fn hold_secrets(&mut self, first: Option<u64>, at: Duration, lines: String) {
        self.held_bytes += lines.len();
        let slot = match first {
            Some(i) if i >= self.released => (i - self.released) as usize,
            _ => self.held.len(),
        };
        let stamp = self.held.get(slot).map(|h| h.at).unwrap_or(at);
        self.held.insert(
            slot,
            Held {
                at: stamp,
                block: Block::Secrets(lines),
                run_of: None,
            },
        );
        // Every index from `slot` on moved up by one.
        let from = self.released + slot as u64;
        for (last, _) in &mut self.closed_keys {
            if *last >= from {
                *last += 1;
            }
        }
        for f in self.flows.values_mut() {
            let run = f.run.as_mut().map(|r| &mut r.slot);
            for i in [f.certificate.as_mut(), f.first_held.as_mut(), run]
                .into_iter()
                .flatten()
            {
                if *i >= from {
                    *i += 1;
                }
            }
        }
    }

    fn release(&mut self, now: Duration) -> Vec<Block> {
        let mut out = Vec::new();
        while let Some(front) = self.held.front() {
            if front.at + self.hold > now && self.held_bytes <= self.hold_bytes {
                break;
            }
            if let Some(id) = front.run_of {
                // Joined reads about to leave: they are one frame now.
                if let Some(mut flow) = self.flows.remove(&id) {
                    self.end_run(&mut flow);
                    self.flows.insert(id, flow);
                }
                if self.held.front().is_some_and(|h| h.run_of.is_some()) {
                    // Nothing to fill it with (the flow is gone).
                    self.held.pop_front();
                    self.released += 1;
                }
                continue;
            }
            let Some(h) = self.held.pop_front() else {
                break;
            };
            self.released += 1;
            self.held_bytes -= match &h.block {
                Block::Frame { bytes, .. } => bytes.len(),
                Block::Secrets(s) => s.len(),
            };
            out.push(h.block);
        }
        out
    }
}

fn join(first: Option<String>, then: String) -> String {
    match first {
        Some(f) => format!("{f}; {then}"),
        None => then,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::tls::build;

    fn at(ms: u64) -> Duration {
        Duration::from_millis(1_780_000_000_000 + ms)
    }

    fn rec(flow: u64, ms: u64, event: TapEvent) -> TapRecord {
        TapRecord {
            flow,
            at: at(ms),
            event,
        }
    }

    fn open(port: u16) -> TapEvent {
        TapEvent::Open {
            client: SocketAddr::from(([10, 0, 0, 2], port)),
            server: SocketAddr::from(([10, 0, 0, 1], 8443)),
        }
    }

    fn data(from_client: bool, bytes: &[u8]) -> TapEvent {
        TapEvent::Data {
            from_client,
            bytes: bytes.to_vec(),
            skipped: 0,
        }
    }

    /// A server flight holding a Certificate message.
    fn server_flight() -> Vec<u8> {
        let mut messages = build::hello(true);
        messages.extend(build::certificate(&[vec![0x30, 0x03, 0x02, 0x01, 0x01]]));
        build::record(22, &messages)
    }

    fn times(blocks: &[Block]) -> Vec<Duration> {
        blocks
            .iter()
            .filter_map(|b| match b {
                Block::Frame { at, .. } => Some(*at),
                Block::Secrets(_) => None,
            })
            .collect()
    }

    fn comments(blocks: &[Block]) -> Vec<(usize, String)> {
        blocks
            .iter()
            .enumerate()
            .filter_map(|(i, b)| match b {
                Block::Frame {
                    comment: Some(c), ..
                } => Some((i, c.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn overlapping_flows_come_out_in_time_order_and_close_cleanly() {
        let mut s = CaptureStream::default();
        let mut out = Vec::new();
        out.extend(s.push(rec(1, 0, open(40001))));
        out.extend(s.push(rec(2, 5, open(40002))));
        out.extend(s.push(rec(1, 10, data(true, b"hello"))));
        out.extend(s.push(rec(2, 20, data(true, b"other"))));
        out.extend(s.push(rec(1, 30, TapEvent::Close)));
        assert!(out.is_empty(), "all held inside the window");
        assert_eq!(s.open_flows(), 1);
        out.extend(s.push(rec(2, 40, TapEvent::Close)));
        out.extend(s.finish());
        let t = times(&out);
        assert_eq!(t.len(), 3 + 1 + 3 + 3 + 1 + 3);
        assert!(t.windows(2).all(|w| w[0] <= w[1]), "{t:?}");
        assert_eq!(s.open_flows(), 0);
    }

    #[test]
    fn a_clock_stepped_back_does_not_make_the_file_go_back() {
        let mut s = CaptureStream::default();
        s.push(rec(1, 1_000, open(40001)));
        s.push(rec(1, 400, data(true, b"x")));
        let t = times(&s.finish());
        assert!(t.windows(2).all(|w| w[0] <= w[1]), "{t:?}");
    }

    #[test]
    fn frames_leave_after_the_window_or_past_the_byte_bound() {
        let mut s = CaptureStream::new(Duration::from_millis(100), 1 << 20);
        assert!(s.push(rec(1, 0, open(40001))).is_empty());
        assert!(s.tick(at(99)).is_empty());
        assert_eq!(s.tick(at(100)).len(), 3, "the handshake's three frames");
        let mut small = CaptureStream::new(Duration::from_secs(60), 100);
        small.push(rec(1, 0, open(40001)));
        let out = small.push(rec(1, 1, data(true, &[0u8; 200])));
        assert!(!out.is_empty(), "over the byte bound: out at once");
    }

    #[test]
    fn a_verdict_in_time_goes_on_the_certificate_frame() {
        let mut s = CaptureStream::default();
        s.push(rec(1, 0, open(40001)));
        s.push(rec(1, 1, data(true, b"client hello")));
        s.push(rec(1, 2, data(false, &server_flight())));
        s.push(rec(1, 3, data(true, b"client finished")));
        s.push(rec(1, 500, TapEvent::Verdict("edgetap: jabber=ok".into())));
        s.push(rec(1, 600, TapEvent::Close));
        let out = s.finish();
        // SYN, SYN/ACK, ACK, client hello, then the server's flight.
        assert_eq!(comments(&out), [(4, "edgetap: jabber=ok".to_owned())]);
    }

    #[test]
    fn a_late_verdict_goes_on_the_next_frame_and_says_so() {
        let mut s = CaptureStream::new(Duration::from_millis(100), 1 << 20);
        let mut out = Vec::new();
        out.extend(s.push(rec(1, 0, open(40001))));
        out.extend(s.push(rec(1, 2, data(false, &server_flight()))));
        out.extend(s.tick(at(1_000)));
        out.extend(s.push(rec(1, 1_000, TapEvent::Verdict("v".into()))));
        out.extend(s.push(rec(1, 1_001, data(true, b"later"))));
        out.extend(s.finish());
        let c = comments(&out);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].0, 4, "the frame after the certificate's");
        assert!(c[0].1.starts_with("v [the verdict"), "{c:?}");
    }

    #[test]
    fn a_verdict_before_the_certificate_waits_for_it_or_the_close() {
        let mut s = CaptureStream::default();
        s.push(rec(1, 0, open(40001)));
        s.push(rec(1, 1, TapEvent::Verdict("early".into())));
        s.push(rec(1, 2, data(false, &server_flight())));
        let out = s.finish();
        assert_eq!(comments(&out), [(3, "early".to_owned())]);

        let mut s = CaptureStream::default();
        s.push(rec(1, 0, open(40001)));
        s.push(rec(1, 1, data(true, b"GET / HTTP/1.1\r\n\r\n")));
        s.push(rec(1, 2, TapEvent::Verdict("no TLS".into())));
        s.push(rec(1, 3, TapEvent::Close));
        let out = s.finish();
        assert_eq!(comments(&out), [(4, "no TLS".to_owned())], "on the FIN");
    }

    #[test]
    fn keys_go_before_the_flows_held_frames() {
        let mut s = CaptureStream::default();
        s.push(rec(1, 0, open(40001)));
        s.push(rec(2, 1, open(40002)));
        s.push(rec(2, 2, data(false, &server_flight())));
        s.push(rec(2, 3, TapEvent::Keys("CLIENT_RANDOM aa bb\n".into())));
        s.push(rec(2, 4, TapEvent::Verdict("v2".into())));
        let out = s.finish();
        let secrets = out
            .iter()
            .position(|b| matches!(b, Block::Secrets(_)))
            .unwrap();
        assert_eq!(secrets, 3, "after flow 1's handshake, before flow 2's");
        // The verdict still found its frame after the insertion.
        assert_eq!(comments(&out), [(7, "v2".to_owned())]);
    }

    #[test]
    fn skipped_bytes_are_said_and_records_of_unknown_flows_ignored() {
        let mut s = CaptureStream::default();
        s.push(rec(9, 0, data(true, b"no open")));
        s.push(rec(9, 0, TapEvent::Close));
        s.push(rec(1, 0, open(40001)));
        s.push(rec(
            1,
            1,
            TapEvent::Data {
                from_client: true,
                bytes: b"after a gap".to_vec(),
                skipped: 4096,
            },
        ));
        let out = s.finish();
        let c = comments(&out);
        assert_eq!(c.len(), 1);
        assert!(c[0].1.contains("4096 bytes"), "{c:?}");
        assert_eq!(times(&out).len(), 4);
    }

    #[test]
    fn tiny_reads_join_one_segment_in_its_place() {
        let mut s = CaptureStream::default();
        s.push(rec(1, 0, open(40001)));
        for (i, b) in b"<stream:stream>".iter().enumerate() {
            s.push(rec(1, 1 + i as u64 / 4, data(true, &[*b])));
        }
        // Another flow in between, then the server's answer.
        s.push(rec(2, 4, open(40002)));
        s.push(rec(1, 5, data(false, b"<features/>")));
        let out = s.finish();
        assert_eq!(times(&out).len(), 3 + 1 + 3 + 1);
        let t = times(&out);
        assert!(t.windows(2).all(|w| w[0] <= w[1]), "{t:?}");
        let Block::Frame {
            bytes, at: when, ..
        } = &out[3]
        else {
            panic!("{:?}", out[3]);
        };
        assert!(bytes.ends_with(b"<stream:stream>"), "one segment");
        assert_eq!(*when, at(1), "at its first byte");
        let Block::Frame { bytes, .. } = &out[7] else {
            panic!()
        };
        assert!(bytes.ends_with(b"<features/>"));
    }

    #[test]
    fn joined_reads_leaving_the_window_become_their_frame() {
        let mut s = CaptureStream::new(Duration::from_millis(100), 1 << 20);
        s.push(rec(1, 0, open(40001)));
        s.push(rec(1, 1, data(true, b"<")));
        let out = s.tick(at(1_000));
        assert_eq!(times(&out).len(), 4);
        // The flow goes on normally after.
        s.push(rec(1, 1_001, data(true, b"x")));
        s.push(rec(1, 1_002, TapEvent::Close));
        assert_eq!(times(&s.finish()).len(), 1 + 3);
    }

    #[test]
    fn open_flows_keys_are_kept_for_a_new_file() {
        let mut s = CaptureStream::default();
        s.push(rec(1, 0, open(40001)));
        s.push(rec(2, 1, open(40002)));
        s.push(rec(1, 2, TapEvent::Keys("CLIENT_RANDOM aa bb\n".into())));
        s.push(rec(2, 3, TapEvent::Keys("CLIENT_RANDOM cc dd\n".into())));
        s.push(rec(1, 4, TapEvent::Close));
        // Flow 1 closed, but its frames are still to be written.
        assert_eq!(s.open_keys(), "CLIENT_RANDOM cc dd\nCLIENT_RANDOM aa bb\n");
        s.forget_released();
        assert!(s.open_keys().contains("aa bb"), "still held");
        s.tick(at(60_000));
        s.forget_released();
        assert_eq!(s.open_keys(), "CLIENT_RANDOM cc dd\n", "written: forgotten");
    }
}
