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

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::core::export::FlowLog;
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

    /// Write one connection's flows (intercept mode has two legs) as one
    /// unit, their frames merged in time order.
    fn write(&mut self, flows: &[FlowLog], comment: &str) -> anyhow::Result<()> {
        if let Some(sink) = &mut self.current {
            let pairs: Vec<(&FlowLog, String)> =
                flows.iter().map(|f| (f, comment.to_owned())).collect();
            sink.write_flows(&pairs, None)?;
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
                self.current = Some(crate::sink::pcap::PcapSink::create(&next, None)?);
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
    Flows(Vec<FlowLog>, String),
    Keys(String),
}

impl Record {
    /// Bytes this record holds in memory while queued.
    fn size(&self) -> usize {
        match self {
            Record::Event(s) | Record::Keys(s) => s.len(),
            Record::Flows(flows, comment) => {
                comment.len()
                    + flows
                        .iter()
                        .flat_map(|f| &f.chunks)
                        .map(|(_, _, b)| b.len())
                        .sum::<usize>()
            }
        }
    }
}

/// What the queue could not take, by kind.
#[derive(Debug, Default)]
pub struct Dropped {
    /// Events-file lines.
    pub events: AtomicU64,
    /// Connections left out of the capture.
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

/// Hands records to the writer thread.
pub struct Recorder {
    capturing: bool,
    /// Records with the bytes each holds (counted once, on the way in).
    tx: Mutex<Option<mpsc::SyncSender<(Record, usize)>>>,
    thread: Mutex<Option<JoinHandle<anyhow::Result<()>>>>,
    queued_bytes: Arc<AtomicUsize>,
    max_bytes: usize,
    dropped: Arc<Dropped>,
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
        let capturing = outputs.pcap.is_some();
        let (tx, rx) = mpsc::sync_channel(records);
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new(Dropped::default());
        let writer = Writer {
            queued_bytes: queued_bytes.clone(),
            dropped: dropped.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("edgetap-recorder".into())
            .spawn(move || {
                crate::threads::started();
                write_all(outputs, rx, writer)
            })?;
        Ok(Recorder {
            capturing,
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            queued_bytes,
            max_bytes: bytes,
            dropped,
        })
    }

    /// What was dropped so far.
    pub fn dropped(&self) -> &Dropped {
        &self.dropped
    }

    /// A capture is being written (connections keep their bytes for it).
    pub fn capturing(&self) -> bool {
        self.capturing
    }

    fn send(&self, r: Record) {
        let size = r.size();
        let counter = match &r {
            Record::Event(_) => &self.dropped.events,
            Record::Flows(..) => &self.dropped.captures,
            Record::Keys(_) => &self.dropped.keys,
        };
        let Ok(tx) = self.tx.lock() else { return };
        // None once finish() ran: late records are dropped, not counted.
        let Some(tx) = tx.as_ref() else { return };
        if self.queued_bytes.fetch_add(size, Ordering::Relaxed) + size > self.max_bytes {
            self.queued_bytes.fetch_sub(size, Ordering::Relaxed);
            counter.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if tx.try_send((r, size)).is_err() {
            self.queued_bytes.fetch_sub(size, Ordering::Relaxed);
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queue one events-file line.
    pub fn event(&self, line: String) {
        self.send(Record::Event(line));
    }

    /// Queue a connection's flows for the capture, with the verdict comment.
    pub fn flows(&self, flows: Vec<FlowLog>, comment: String) {
        if self.capturing {
            self.send(Record::Flows(flows, comment));
        }
    }

    /// Queue key log lines.
    pub fn keys(&self, lines: String) {
        if !lines.is_empty() {
            self.send(Record::Keys(lines));
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
        if let Ok(mut tx) = self.tx.lock() {
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
                    self.queued_bytes.load(Ordering::Relaxed).div_ceil(1024)
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        t.join()
            .map_err(|_| anyhow::anyhow!("the capture writer stopped unexpectedly"))?
    }
}

/// The writer thread's view of the queue's accounting.
struct Writer {
    queued_bytes: Arc<AtomicUsize>,
    dropped: Arc<Dropped>,
}

/// Write failures (a full disk): the first of each file said at once on the
/// terminal, the rest counted and said at the end, never one line per record.
#[derive(Default)]
struct Lost {
    by_file: Vec<(&'static str, &'static str, u64)>,
}

impl Lost {
    fn note(&mut self, file: &'static str, what: &'static str, e: &dyn std::fmt::Display) {
        match self.by_file.iter_mut().find(|(f, _, _)| *f == file) {
            Some(entry) => entry.2 += 1,
            None => {
                eprintln!(
                    "edgetap: error: writing the {file} failed ({e}); relaying goes on, what cannot be written is counted"
                );
                self.by_file.push((file, what, 1));
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

fn write_all(
    mut out: Outputs,
    rx: mpsc::Receiver<(Record, usize)>,
    acct: Writer,
) -> anyhow::Result<()> {
    let mut events = out.events.take().map(WholeRecords::new);
    let mut keylog = out.keylog.take().map(WholeRecords::new);
    let mut lost = Lost::default();
    let mut reported = 0;
    let mut report_drops = |events: &mut Option<WholeRecords>| {
        let total = acct.dropped.total();
        if total != reported {
            reported = total;
            if let Some(w) = events {
                let _ = w.write_line(&acct.dropped.line());
            }
        }
    };
    for (record, size) in rx {
        acct.queued_bytes.fetch_sub(size, Ordering::Relaxed);
        report_drops(&mut events);
        match record {
            Record::Event(line) => {
                if let Some(w) = &mut events
                    && let Err(e) = w.write_line(&line)
                {
                    lost.note("events file", "event", &e);
                }
            }
            Record::Flows(flows, comment) => {
                if let Some(p) = &mut out.pcap
                    && let Err(e) = p.write(&flows, &comment)
                {
                    lost.note("capture", "connection", &e);
                }
            }
            Record::Keys(lines) => {
                if let Some(f) = &mut keylog
                    && let Err(e) = f.write(lines.as_bytes())
                {
                    lost.note("key log", "key entry", &e);
                }
            }
        }
    }
    report_drops(&mut events);
    if let Some(summary) = lost.summary() {
        eprintln!("edgetap: warning: {summary}");
    }
    if acct.dropped.total() > 0 {
        eprintln!(
            "edgetap: warning: the output files could not keep up: {}",
            acct.dropped.line()
        );
    }
    match &mut out.pcap {
        Some(p) => p.finish(),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::{Duration, SystemTime};

    use super::*;

    fn flow(port: u16, bytes: usize) -> FlowLog {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_000_000);
        FlowLog {
            client: Some(SocketAddr::from(([10, 0, 0, 2], port))),
            server: Some(SocketAddr::from(([10, 0, 0, 1], 8443))),
            opened: Some(t),
            chunks: vec![(t, true, vec![0x5a; bytes]), (t, false, b"ok".to_vec())],
            closed: Some(t),
            keylog: String::new(),
        }
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
        for i in 0..3u16 {
            // 700 KB each: the second connection takes the first file past 1 MB.
            recorder.flows(vec![flow(40000 + i, 700_000)], format!("connection {i}"));
            recorder.event(format!("{{\"connection\":{i}}}"));
        }
        recorder.keys("CLIENT_RANDOM aa bb\n".into());
        recorder.keys(String::new());
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
        // Two connections in the first file, the third in the next: both complete.
        let first = frames(&base);
        let second = frames(&dir.path().join("cap-1.pcapng"));
        assert!(first > 0 && second > 0, "{first} {second}");
        assert_eq!(first, second * 2, "same-sized connections");
        assert!(!dir.path().join("cap-2.pcapng").exists());
    }

    #[test]
    fn without_a_capture_flows_are_not_queued() {
        let recorder = Recorder::start(Outputs::default()).unwrap();
        assert!(!recorder.capturing());
        recorder.flows(vec![flow(1, 10)], String::new());
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
        recorder.flows(vec![flow(1, 2_000_000)], String::new());
        recorder.flows(vec![flow(2, 100)], String::new());
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
            lost.note("events file", "event", &e);
        }
        lost.note("capture", "connection", &e);
        assert_eq!(
            lost.summary().unwrap(),
            "3 event(s) not written to the events file, 1 connection(s) not written to the capture"
        );
    }
}
