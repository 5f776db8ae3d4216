//! The proxy's files (events, capture, key log), written by one thread of
//! their own. Connection tasks hand records over a channel and go on relaying:
//! a slow or full disk never holds up a tokio worker, so it never stalls other
//! connections. The thread writes in the order records arrive and, at
//! shutdown, drains the channel and closes the capture so it is complete.
//!
//! The queue is bounded, in records ([`QUEUE_RECORDS`]) and in captured bytes
//! ([`QUEUE_BYTES`]): when the disk cannot keep up, what does not fit is
//! dropped and counted, never waited for (that would stall relaying) and never
//! held without limit (that would grow memory). Each drop is reported in the
//! events file as a `recorder-overflow` line with the running counts, and at
//! shutdown on stderr.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::core::export::stream::{Block, CaptureStream, TapEvent, TapRecord};
use crate::net::recording::Tape;
use crate::sink::WholeRecords;

/// A capture sink that starts a new file past a size.
pub struct PcapRotation {
    base: PathBuf,
    max_bytes: Option<u64>,
    current: Option<crate::sink::pcap::PcapSink>,
    index: u32,
}

impl PcapRotation {
    /// Open the first file.
    pub fn new(base: PathBuf, max_mb: Option<u64>) -> anyhow::Result<PcapRotation> {
        let current = Some(crate::sink::pcap::PcapSink::create(&base, None)?);
        Ok(PcapRotation {
            base,
            max_bytes: max_mb.map(|m| m * 1024 * 1024),
            current,
            index: 0,
        })
    }

    /// Write blocks as they leave the ordering window; past the size, the
    /// next file starts (a connection open across the cut goes on in it, the
    /// keys of the open connections, `open_keys`, first).
    fn write(
        &mut self,
        mut blocks: &[Block],
        open_keys: &dyn Fn() -> String,
    ) -> anyhow::Result<()> {
        while let Some(sink) = &mut self.current
            && !blocks.is_empty()
        {
            // What fits before the cut (one block at least).
            let take = match self.max_bytes {
                None => blocks.len(),
                Some(m) => {
                    let mut room = m.saturating_sub(sink.bytes_written());
                    let mut n = 0;
                    while n < blocks.len() && (n == 0 || room > 0) {
                        room = room.saturating_sub(blocks[n].stored_len());
                        n += 1;
                    }
                    n
                }
            };
            sink.write_blocks(&blocks[..take])?;
            blocks = &blocks[take..];
            if self.max_bytes.is_some_and(|m| sink.bytes_written() >= m) {
                if let Some(old) = self.current.take() {
                    old.finish()?;
                }
                self.index += 1;
                let stem = self
                    .base
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or("edgetap");
                let ext = self
                    .base
                    .extension()
                    .and_then(|s| s.to_str())
                    .unwrap_or("pcapng");
                let next = self
                    .base
                    .with_file_name(format!("{stem}-{}.{ext}", self.index));
                let mut sink = crate::sink::pcap::PcapSink::create(&next, None)?;
                let keys = open_keys();
                if !keys.is_empty() {
                    sink.write_blocks(&[Block::Secrets(keys)])?;
                }
                self.current = Some(sink);
            }
        }
        Ok(())
    }

    /// Flush and close the current file.
    pub fn finish(&mut self) -> anyhow::Result<()> {
        match self.current.take() {
            Some(sink) => sink.finish(),
            None => Ok(()),
        }
    }
}

/// The files a running proxy writes; each is optional.
#[derive(Default)]
pub struct Outputs {
    /// JSON lines, one per connection.
    pub events: Option<std::fs::File>,
    /// The capture.
    pub pcap: Option<PcapRotation>,
    /// SSLKEYLOGFILE lines of intercepted sessions.
    pub keylog: Option<std::fs::File>,
}

/// How long stopping waits for the output files to be written.
pub const FINISH_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Records waiting for the writer at most.
pub const QUEUE_RECORDS: usize = 16_384;
/// Captured bytes waiting for the writer at most.
pub const QUEUE_BYTES: usize = 256 * 1024 * 1024;

enum Record {
    Event(String),
    Tap(TapRecord),
}

impl Record {
    /// Bytes this record holds in memory while queued.
    fn size(&self) -> usize {
        match self {
            Record::Event(s) => s.len(),
            Record::Tap(t) => match &t.event {
                TapEvent::Data { bytes, .. } => bytes.len(),
                TapEvent::Keys(s) | TapEvent::Verdict(s) => s.len(),
                TapEvent::Open { .. } | TapEvent::Close => 0,
            },
        }
    }
}

/// What the queue could not take, by kind.
#[derive(Debug, Default)]
pub struct Dropped {
    /// Events-file lines.
    pub events: AtomicU64,
    /// Capture records (bytes read or written, verdicts) left out.
    pub captures: AtomicU64,
    /// Key log entries.
    pub keys: AtomicU64,
}

impl Dropped {
    fn total(&self) -> u64 {
        self.events.load(Ordering::Relaxed)
            + self.captures.load(Ordering::Relaxed)
            + self.keys.load(Ordering::Relaxed)
    }

    /// The events-file line that reports the counts so far.
    fn line(&self) -> String {
        format!(
            "{{\"kind\":\"recorder-overflow\",\"dropped_events\":{},\"dropped_captures\":{},\"dropped_keys\":{},\"why\":\"the disk did not keep up; edgetap dropped these rather than stall relaying or grow memory\"}}",
            self.events.load(Ordering::Relaxed),
            self.captures.load(Ordering::Relaxed),
            self.keys.load(Ordering::Relaxed)
        )
    }
}

/// The sending side, shared by the recorder and every flow's tap.
struct Shared {
    capturing: bool,
    keylogging: bool,
    /// Records with the bytes each holds (counted once, on the way in).
    tx: Mutex<Option<mpsc::SyncSender<(Record, usize)>>>,
    queued_bytes: Arc<AtomicUsize>,
    max_bytes: usize,
    dropped: Arc<Dropped>,
    next_flow: AtomicU64,
    /// Flows whose close did not fit the queue: the writer closes them, so
    /// it never keeps a flow forever.
    orphans: Arc<Mutex<Vec<u64>>>,
}

impl Shared {
    /// Queue `r`; false when it was dropped (and counted).
    fn send(&self, make: impl FnOnce() -> Record, counter: &AtomicU64) -> bool {
        let Ok(tx) = self.tx.lock() else { return false };
        // None once finish() ran: late records are dropped, not counted.
        let Some(tx) = tx.as_ref() else { return false };
        // Made (and so stamped) under the lock: records reach the writer in
        // the order of their stamps, and the capture never goes back in time.
        let r = make();
        let size = r.size();
        if self.queued_bytes.fetch_add(size, Ordering::Relaxed) + size > self.max_bytes {
            self.queued_bytes.fetch_sub(size, Ordering::Relaxed);
            counter.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        if tx.try_send((r, size)).is_err() {
            self.queued_bytes.fetch_sub(size, Ordering::Relaxed);
            counter.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    fn tap(&self, flow: u64, event: TapEvent) -> bool {
        let counter = match event {
            TapEvent::Keys(_) => &self.dropped.keys,
            _ => &self.dropped.captures,
        };
        self.send(
            || {
                Record::Tap(TapRecord {
                    flow,
                    at: since_epoch(crate::clock::wall()),
                    event,
                })
            },
            counter,
        )
    }
}

fn since_epoch(t: std::time::SystemTime) -> std::time::Duration {
    t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default()
}

/// Hands records to the writer thread.
pub struct Recorder {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<anyhow::Result<()>>>>,
}

impl Recorder {
    /// Start the writer thread for `outputs`.
    pub fn start(outputs: Outputs) -> std::io::Result<Recorder> {
        Recorder::with_limits(outputs, QUEUE_RECORDS, QUEUE_BYTES)
    }

    /// As [`Recorder::start`], with other queue bounds.
    pub fn with_limits(
        outputs: Outputs,
        records: usize,
        bytes: usize,
    ) -> std::io::Result<Recorder> {
        let (tx, rx) = mpsc::sync_channel(records);
        let shared = Arc::new(Shared {
            capturing: outputs.pcap.is_some(),
            keylogging: outputs.keylog.is_some() || outputs.pcap.is_some(),
            tx: Mutex::new(Some(tx)),
            queued_bytes: Arc::new(AtomicUsize::new(0)),
            max_bytes: bytes,
            dropped: Arc::new(Dropped::default()),
            next_flow: AtomicU64::new(1),
            orphans: Arc::new(Mutex::new(Vec::new())),
        });
        let writer = Writer {
            queued_bytes: shared.queued_bytes.clone(),
            dropped: shared.dropped.clone(),
            orphans: shared.orphans.clone(),
        };
        let thread = crate::threads::spawn("recorder", move || write_all(outputs, rx, writer))?;
        Ok(Recorder {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// What was dropped so far.
    pub fn dropped(&self) -> &Dropped {
        &self.shared.dropped
    }

    /// A capture is being written (connections keep their bytes for it).
    pub fn capturing(&self) -> bool {
        self.shared.capturing
    }

    /// Queue one events-file line.
    pub fn event(&self, line: String) {
        self.shared
            .send(|| Record::Event(line), &self.shared.dropped.events);
    }

    /// A tap for one TCP flow from `client` to `server`, opened now: its
    /// bytes go to the capture as they pass, its keys to the capture and the
    /// key log. Without a capture or key log it records nothing.
    pub fn tap(&self, client: SocketAddr, server: SocketAddr) -> FlowTap {
        let flow = self.shared.next_flow.fetch_add(1, Ordering::Relaxed);
        let live = self.shared.capturing || self.shared.keylogging;
        if self.shared.capturing {
            self.shared.tap(flow, TapEvent::Open { client, server });
        }
        FlowTap {
            shared: live.then(|| self.shared.clone()),
            flow,
            state: Mutex::new(TapState::default()),
        }
    }

    /// Write everything queued, close the capture, end the thread.
    pub fn finish(&self) -> anyhow::Result<()> {
        self.finish_within(FINISH_WAIT)
    }

    /// [`Recorder::finish`], waiting at most `within` for the disk: a disk that
    /// stalls (a hung network mount, a pipe nobody reads) must not keep the
    /// proxy from stopping. What was still queued then is said to be lost.
    pub fn finish_within(&self, within: std::time::Duration) -> anyhow::Result<()> {
        if let Ok(mut tx) = self.shared.tx.lock() {
            tx.take();
        }
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        let Some(t) = thread else {
            return Ok(());
        };
        let deadline = std::time::Instant::now() + within;
        while !t.is_finished() {
            if std::time::Instant::now() >= deadline {
                anyhow::bail!(
                    "the output files did not finish writing within {}s (a stalled disk or an unread pipe?): {} KiB still queued are lost, and the last record of each file may be cut",
                    within.as_secs(),
                    self.shared
                        .queued_bytes
                        .load(Ordering::Relaxed)
                        .div_ceil(1024)
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        t.join()
            .map_err(|_| anyhow::anyhow!("the capture writer stopped unexpectedly"))?
    }
}

#[derive(Default)]
struct TapState {
    /// Bytes per direction (client, server) dropped since the last sent.
    skipped: [u64; 2],
    closed: bool,
}

/// One TCP flow's line to the capture: bytes as they pass, keys, the verdict,
/// and the close (sent when the tap is closed or dropped).
pub struct FlowTap {
    /// None when nothing is recorded.
    shared: Option<Arc<Shared>>,
    flow: u64,
    state: Mutex<TapState>,
}

impl FlowTap {
    /// A tap that records nothing.
    pub fn none() -> FlowTap {
        FlowTap {
            shared: None,
            flow: 0,
            state: Mutex::new(TapState::default()),
        }
    }

    fn send_data(
        shared: &Shared,
        flow: u64,
        state: &mut TapState,
        from_client: bool,
        bytes: Vec<u8>,
    ) {
        let side = usize::from(!from_client);
        let n = bytes.len() as u64;
        let skipped = state.skipped[side];
        if shared.tap(
            flow,
            TapEvent::Data {
                from_client,
                bytes,
                skipped,
            },
        ) {
            state.skipped[side] = 0;
        } else {
            state.skipped[side] += n;
        }
    }

    /// The verdict on the flow's handshake, for the capture's comment.
    pub fn verdict(&self, comment: String) {
        let Some(shared) = self.capturing() else {
            return;
        };
        shared.tap(self.flow, TapEvent::Verdict(comment));
    }

    /// The flow ended (once; dropping the tap does it too).
    pub fn close(&self) {
        let Some(shared) = self.capturing() else {
            return;
        };
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if std::mem::replace(&mut state.closed, true) {
            return;
        }
        if !shared.tap(self.flow, TapEvent::Close)
            && let Ok(mut orphans) = shared.orphans.lock()
        {
            orphans.push(self.flow);
        }
    }

    fn capturing(&self) -> Option<&Arc<Shared>> {
        self.shared.as_ref().filter(|s| s.capturing)
    }
}

impl Drop for FlowTap {
    fn drop(&mut self) {
        self.close();
    }
}

impl Tape for FlowTap {
    fn bytes(&self, from_client: bool, bytes: &[u8]) {
        let Some(shared) = self.capturing() else {
            return;
        };
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if state.closed || bytes.is_empty() {
            return;
        }
        FlowTap::send_data(shared, self.flow, &mut state, from_client, bytes.to_vec());
    }

    fn key_line(&self, line: String) {
        if let Some(shared) = &self.shared {
            shared.tap(self.flow, TapEvent::Keys(line));
        }
    }
}

/// The writer thread's view of the queue's accounting.
struct Writer {
    queued_bytes: Arc<AtomicUsize>,
    dropped: Arc<Dropped>,
    orphans: Arc<Mutex<Vec<u64>>>,
}

/// Write failures (a full disk): the first of each file said at once on the
/// terminal, the rest counted and said at the end, never one line per record.
#[derive(Default)]
struct Lost {
    by_file: Vec<(&'static str, &'static str, u64)>,
}

impl Lost {
    fn note(&mut self, file: &'static str, what: &'static str, n: u64, e: &dyn std::fmt::Display) {
        match self.by_file.iter_mut().find(|(f, _, _)| *f == file) {
            Some(entry) => entry.2 += n,
            None => {
                eprintln!(
                    "edgetap: error: writing the {file} failed ({e}); relaying goes on, what cannot be written is counted"
                );
                self.by_file.push((file, what, n));
            }
        }
    }

    fn summary(&self) -> Option<String> {
        (!self.by_file.is_empty()).then(|| {
            self.by_file
                .iter()
                .map(|(file, what, n)| format!("{n} {what}(s) not written to the {file}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
    }
}

/// How often held frames are looked at when no record comes.
const TICK: std::time::Duration = std::time::Duration::from_millis(250);
/// Records taken from the queue before what they released is written.
const BATCH: usize = 1024;

/// The recorder thread: records in batches until every sender is gone, then
/// the capture finished and what was lost said.
fn write_all(
    out: Outputs,
    rx: mpsc::Receiver<(Record, usize)>,
    acct: Writer,
) -> anyhow::Result<()> {
    let mut files = Files::new(out, acct);
    let mut open = true;
    while open {
        let mut blocks = Vec::new();
        open = files.take_batch(&rx, &mut blocks);
        files.write_capture(blocks, open);
    }
    files.finish()
}

/// What the recorder thread holds: its files, the capture's ordering
/// window, what could not be written, and the drops last reported.
struct Files {
    events: Option<WholeRecords>,
    keylog: Option<WholeRecords>,
    pcap: Option<PcapRotation>,
    stream: CaptureStream,
    lost: Lost,
    reported: u64,
    acct: Writer,
}

impl Files {
    fn new(mut out: Outputs, acct: Writer) -> Files {
        Files {
            events: out.events.take().map(WholeRecords::new),
            keylog: out.keylog.take().map(WholeRecords::new),
            pcap: out.pcap.take(),
            stream: CaptureStream::default(),
            lost: Lost::default(),
            reported: 0,
            acct,
        }
    }

    /// Up to [`BATCH`] records (waiting [`TICK`] for the first), each written
    /// or, for the capture, pushed into the ordering window (what it releases
    /// goes to `blocks`). False once every sender is gone.
    fn take_batch(
        &mut self,
        rx: &mpsc::Receiver<(Record, usize)>,
        blocks: &mut Vec<Block>,
    ) -> bool {
        let mut next = rx.recv_timeout(TICK);
        for taken in 1..=BATCH {
            let (record, size) = match next {
                Ok(r) => r,
                Err(mpsc::RecvTimeoutError::Timeout) => return true,
                Err(mpsc::RecvTimeoutError::Disconnected) => return false,
            };
            self.acct.queued_bytes.fetch_sub(size, Ordering::Relaxed);
            self.record(record, blocks);
            if taken == BATCH {
                break;
            }
            next = rx.try_recv().map_err(|e| match e {
                mpsc::TryRecvError::Empty => mpsc::RecvTimeoutError::Timeout,
                mpsc::TryRecvError::Disconnected => mpsc::RecvTimeoutError::Disconnected,
            });
        }
        true
    }

    /// One record: an event line, a flow's keys, its bytes for the capture.
    fn record(&mut self, record: Record, blocks: &mut Vec<Block>) {
        match record {
            Record::Event(line) => {
                self.report_drops();
                if let Some(w) = &mut self.events
                    && let Err(e) = w.write_line(&line)
                {
                    self.lost.note("events file", "event", 1, &e);
                }
            }
            Record::Tap(tap) => {
                if let (TapEvent::Keys(lines), Some(f)) = (&tap.event, &mut self.keylog)
                    && let Err(e) = f.write(lines.as_bytes())
                {
                    self.lost.note("key log", "key entry", 1, &e);
                }
                if self.pcap.is_some() {
                    blocks.extend(self.stream.push(tap));
                }
            }
        }
    }

    /// The drop counts as an event line, when they changed since last said.
    fn report_drops(&mut self) {
        let total = self.acct.dropped.total();
        if total != self.reported {
            self.reported = total;
            if let Some(w) = &mut self.events {
                let _ = w.write_line(&self.acct.dropped.line());
            }
        }
    }

    /// Close the flows whose taps were dropped, release what the window
    /// holds past its time (everything once the senders are gone: `open`
    /// false), and write `blocks` to the capture.
    fn write_capture(&mut self, mut blocks: Vec<Block>, open: bool) {
        if let Ok(mut orphans) = self.acct.orphans.lock() {
            for flow in orphans.drain(..) {
                blocks.extend(self.stream.push(TapRecord {
                    flow,
                    at: since_epoch(crate::clock::wall()),
                    event: TapEvent::Close,
                }));
            }
        }
        blocks.extend(self.stream.tick(since_epoch(crate::clock::wall())));
        // The keys a new file after a cut starts with: the open flows', taken
        // before closing the stream forgets them.
        let mut keys = None;
        if !open {
            keys = Some(self.stream.open_keys());
            blocks.extend(self.stream.finish());
        }
        let stream = &self.stream;
        let open_keys = || keys.clone().unwrap_or_else(|| stream.open_keys());
        if let Some(p) = &mut self.pcap
            && !blocks.is_empty()
            && let Err(e) = p.write(&blocks, &open_keys)
        {
            self.lost.note("capture", "frame", blocks.len() as u64, &e);
        }
        self.stream.forget_released();
    }

    /// Say what was lost or dropped, and finish the capture file.
    fn finish(mut self) -> anyhow::Result<()> {
        self.report_drops();
        if let Some(summary) = self.lost.summary() {
            eprintln!("edgetap: warning: {summary}");
        }
        if self.acct.dropped.total() > 0 {
            eprintln!(
                "edgetap: warning: the output files could not keep up: {}",
                self.acct.dropped.line()
            );
        }
        match &mut self.pcap {
            Some(p) => p.finish(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use super::*;

    /// One connection through `recorder`: `bytes` up, "ok" down, closed.
    fn connection(recorder: &Recorder, port: u16, bytes: usize, verdict: &str) {
        let tap = recorder.tap(
            SocketAddr::from(([10, 0, 0, 2], port)),
            SocketAddr::from(([10, 0, 0, 1], 8443)),
        );
        tap.bytes(true, &vec![0x5a; bytes]);
        tap.bytes(false, b"ok");
        tap.verdict(verdict.to_owned());
        drop(tap);
    }

    fn frames(path: &std::path::Path) -> u64 {
        let summary = crate::input::capture::read_capture(path, Box::new(|_| {}), |_| {})
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(summary.truncated, None, "{} is complete", path.display());
        summary.frames
    }

    #[test]
    fn writes_in_order_rotates_the_capture_and_closes_every_file() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("cap.pcapng");
        let events = dir.path().join("events.jsonl");
        let keys = dir.path().join("keys.log");
        let recorder = Recorder::start(Outputs {
            events: Some(std::fs::File::create(&events).unwrap()),
            pcap: Some(PcapRotation::new(base.clone(), Some(1)).unwrap()),
            keylog: Some(std::fs::File::create(&keys).unwrap()),
        })
        .unwrap();
        assert!(recorder.capturing());
        // A TLS connection open across both cuts, keys first.
        let tap = recorder.tap(
            SocketAddr::from(([10, 0, 0, 2], 1)),
            SocketAddr::from(([10, 0, 0, 1], 2)),
        );
        tap.key_line("CLIENT_RANDOM aa bb\n".into());
        for i in 0..3u16 {
            // 700 KB each: the second connection takes the first file past 1 MB.
            connection(&recorder, 40000 + i, 700_000, &format!("connection {i}"));
            recorder.event(format!("{{\"connection\":{i}}}"));
        }
        drop(tap);
        recorder.finish().unwrap();
        // Records after finish are dropped, not a panic.
        recorder.event("late".into());

        let lines: Vec<String> = std::fs::read_to_string(&events)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(
            lines,
            [
                "{\"connection\":0}",
                "{\"connection\":1}",
                "{\"connection\":2}"
            ]
        );
        assert_eq!(
            std::fs::read_to_string(&keys).unwrap(),
            "CLIENT_RANDOM aa bb\n"
        );
        // 2.1 MB of frames cut past each 1 MiB, each file complete: every frame
        // is in one of them (3 connections of 3 + 484 + 1 + 3 frames, and the
        // key-only connection's 6).
        let files = [
            base.clone(),
            dir.path().join("cap-1.pcapng"),
            dir.path().join("cap-2.pcapng"),
        ];
        let counts: Vec<u64> = files.iter().map(|f| frames(f)).collect();
        assert_eq!(counts.iter().sum::<u64>(), 3 * 491 + 6, "{counts:?}");
        for f in &files[..2] {
            // Cut by the blocks' estimated size (a little over the real one).
            assert!(std::fs::metadata(f).unwrap().len() > 1_000_000);
        }
        assert!(!dir.path().join("cap-3.pcapng").exists());
        // Every file holds the keys of the connection open across it.
        for f in &files {
            let mut keys = 0;
            crate::input::capture::read_capture(f, Box::new(|_| {}), |item| {
                if let crate::input::capture::Item::TlsKeys(k) = item {
                    keys += usize::from(k.contains("CLIENT_RANDOM aa bb"));
                }
            })
            .unwrap();
            assert_eq!(keys, 1, "{}", f.display());
        }
    }

    #[test]
    fn without_a_capture_flows_are_not_queued() {
        let recorder = Recorder::start(Outputs::default()).unwrap();
        assert!(!recorder.capturing());
        connection(&recorder, 1, 10, "");
        recorder.event("{}".into());
        recorder.finish().unwrap();
    }

    /// A disk that stops taking writes (a pipe nobody reads, here) never stalls
    /// the senders: what does not fit the bounded queue is dropped, counted and
    /// reported in the events file once the writer can write again.
    #[test]
    fn a_stalled_disk_drops_and_counts_instead_of_blocking_or_growing() {
        use std::io::Read as _;
        let (read_end, write_end) = rustix::pipe::pipe().unwrap();
        let recorder = Recorder::with_limits(
            Outputs {
                events: Some(std::fs::File::from(write_end)),
                ..Outputs::default()
            },
            4,
            QUEUE_BYTES,
        )
        .unwrap();
        let sent = 5_000;
        let started = std::time::Instant::now();
        for i in 0..sent {
            recorder.event(format!(
                "{{\"connection\":{i},\"pad\":\"{}\"}}",
                "x".repeat(80)
            ));
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "sending never waits for the disk"
        );
        let dropped = recorder.dropped().events.load(Ordering::Relaxed);
        assert!(dropped > 0, "a 64 KiB pipe and 4 slots cannot hold 500 KB");
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            std::fs::File::from(read_end)
                .read_to_string(&mut text)
                .unwrap();
            text
        });
        recorder.finish().unwrap();
        let text = reader.join().unwrap();
        let written = text
            .lines()
            .filter(|l| l.starts_with("{\"connection\""))
            .count() as u64;
        let last_report = text
            .lines()
            .rfind(|l| l.contains("recorder-overflow"))
            .expect("the overflow is reported in the events file");
        let report: serde_json::Value = serde_json::from_str(last_report).unwrap();
        assert_eq!(report["dropped_events"], dropped);
        assert_eq!(written + dropped, sent, "every event written or counted");
    }

    #[test]
    fn captured_bytes_beyond_the_budget_are_dropped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let events = dir.path().join("events.jsonl");
        let recorder = Recorder::with_limits(
            Outputs {
                events: Some(std::fs::File::create(&events).unwrap()),
                pcap: Some(PcapRotation::new(dir.path().join("c.pcapng"), None).unwrap()),
                keylog: None,
            },
            QUEUE_RECORDS,
            1_000_000,
        )
        .unwrap();
        // Larger than the whole budget: never queued, whatever the writer does.
        connection(&recorder, 1, 2_000_000, "");
        connection(&recorder, 2, 100, "");
        recorder.event("{}".into());
        recorder.finish().unwrap();
        assert_eq!(recorder.dropped().captures.load(Ordering::Relaxed), 1);
        let text = std::fs::read_to_string(&events).unwrap();
        assert!(text.contains("\"dropped_captures\":1"), "{text}");
        assert!(
            frames(&dir.path().join("c.pcapng")) > 0,
            "the small one is captured"
        );
    }

    #[test]
    fn write_failures_are_said_once_and_counted() {
        let mut lost = Lost::default();
        assert_eq!(lost.summary(), None);
        let e = std::io::Error::other("No space left on device");
        for _ in 0..3 {
            lost.note("events file", "event", 1, &e);
        }
        lost.note("capture", "frame", 7, &e);
        assert_eq!(
            lost.summary().unwrap(),
            "3 event(s) not written to the events file, 7 frame(s) not written to the capture"
        );
    }
}
