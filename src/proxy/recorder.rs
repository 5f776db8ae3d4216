//! The proxy's files (events, capture, key log), written by one thread of
//! their own. Connection tasks hand records over a channel and go on relaying:
//! a slow or full disk never holds up a tokio worker, so it never stalls other
//! connections. The thread writes in the order records arrive and, at
//! shutdown, drains the channel and closes the capture so it is complete.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::mpsc;
use std::thread::JoinHandle;

use crate::net::probe::FlowLog;

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

    fn write(&mut self, flow: &FlowLog, comment: &str) -> anyhow::Result<()> {
        if let Some(sink) = &mut self.current {
            sink.write_flow(flow, comment)?;
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

enum Record {
    Event(String),
    Flows(Vec<FlowLog>, String),
    Keys(String),
}

/// Hands records to the writer thread.
pub struct Recorder {
    capturing: bool,
    tx: Mutex<Option<mpsc::Sender<Record>>>,
    thread: Mutex<Option<JoinHandle<anyhow::Result<()>>>>,
}

impl Recorder {
    /// Start the writer thread for `outputs`.
    pub fn start(outputs: Outputs) -> std::io::Result<Recorder> {
        let capturing = outputs.pcap.is_some();
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("edgetap-recorder".into())
            .spawn(move || write_all(outputs, rx))?;
        Ok(Recorder {
            capturing,
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// A capture is being written (connections keep their bytes for it).
    pub fn capturing(&self) -> bool {
        self.capturing
    }

    fn send(&self, r: Record) {
        if let Ok(tx) = self.tx.lock()
            && let Some(tx) = tx.as_ref()
        {
            // Fails only once the thread has ended, which finish() causes.
            let _ = tx.send(r);
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
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        match thread {
            Some(t) => t
                .join()
                .map_err(|_| anyhow::anyhow!("the capture writer stopped unexpectedly"))?,
            None => Ok(()),
        }
    }
}

fn write_all(mut out: Outputs, rx: mpsc::Receiver<Record>) -> anyhow::Result<()> {
    let mut events = out.events.take().map(std::io::BufWriter::new);
    for record in rx {
        match record {
            Record::Event(line) => {
                if let Some(w) = &mut events
                    && let Err(e) = writeln!(w, "{line}").and_then(|_| w.flush())
                {
                    tracing::error!(error = %e, "writing the events file failed (disk full?)");
                }
            }
            Record::Flows(flows, comment) => {
                if let Some(p) = &mut out.pcap {
                    for flow in &flows {
                        if let Err(e) = p.write(flow, &comment) {
                            tracing::error!(error = %e, "capture write failed; later connections will try again");
                        }
                    }
                }
            }
            Record::Keys(lines) => {
                if let Some(f) = &mut out.keylog
                    && let Err(e) = f.write_all(lines.as_bytes())
                {
                    tracing::error!(error = %e, "writing the key log failed");
                }
            }
        }
    }
    if let Some(w) = &mut events {
        w.flush()?;
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
        let summary = crate::capture_io::read_capture(path, Box::new(|_| {}), |_, _, _, _| {})
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
}
