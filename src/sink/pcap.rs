//! Writing probed and relayed connections to a capture file. A batch (probe,
//! demo) is written at once, its frames merged in time order; the proxy's
//! frames come already ordered from `core::export::stream`. Frames are
//! synthesised per connection, the verdict rides as a comment on the frame that
//! completed the server's Certificate, the TLS keys go into a Decryption Secrets
//! Block (pcapng) and, if asked, an SSLKEYLOGFILE. Each connection is flushed as
//! it is written, so the file is valid whenever edgetap stops.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;

use crate::core::export::FlowLog;
use crate::core::export::{CaptureWriter, FlowSynth, Format};

/// A capture file (and optional key log) being written.
pub struct PcapSink {
    writer: CaptureWriter<BufWriter<File>>,
    keylog: Option<BufWriter<File>>,
    flows: u32,
    path: String,
    bytes: u64,
    /// A second handle on the file, to cut it back after a failed write.
    file: File,
    /// The file's length up to its last complete connection.
    committed: u64,
    /// A write failed (a full disk): the file was cut back to `committed`
    /// and nothing more is written to it.
    failed: bool,
}

fn since_epoch(t: SystemTime) -> Duration {
    t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default()
}

/// About how many bytes [`PcapSink::write_blocks`] writes and flushes at once.
pub const UNIT_BYTES: u64 = 64 * 1024;

/// A frame ready to write: time since the epoch, bytes, comment.
type TimedFrame = (std::time::Duration, Vec<u8>, Option<String>);

/// What discovery learned, to write back as the DNS answers a resolver gave.
#[derive(Clone, Copy)]
pub struct DnsAnswers<'a> {
    /// The look-ups and answers.
    pub discovery: &'a crate::core::discovery::Discovery,
    /// The resolver that answered.
    pub nameserver: std::net::IpAddr,
    /// edgetap's address toward it.
    pub client: std::net::IpAddr,
    /// When the answers are written as received.
    pub at: SystemTime,
}

/// One UDP frame per look-up, from the resolver to edgetap.
fn dns_frames(d: DnsAnswers<'_>) -> Vec<TimedFrame> {
    use crate::core::export::dns::{answer_messages, udp_frame};
    let (from, to) = (
        std::net::SocketAddr::new(d.nameserver, 53),
        std::net::SocketAddr::new(d.client, 53_053),
    );
    let comment = format!(
        "edgetap: the answer the resolver ({}) gave, written from what it returned",
        d.discovery.resolver
    );
    answer_messages(d.discovery)
        .iter()
        .map(|m| {
            (
                since_epoch(d.at),
                udp_frame(from, to, m),
                Some(comment.clone()),
            )
        })
        .collect()
}

impl PcapSink {
    /// Create `path` (pcap when it ends in `.pcap`, else pcapng) and `keylog`.
    pub fn create(path: &Path, keylog: Option<&Path>) -> anyhow::Result<PcapSink> {
        let name = path.display().to_string();
        let file = File::create(path)
            .with_context(|| format!("{name}: cannot create the capture file"))?;
        let handle = file
            .try_clone()
            .with_context(|| format!("{name}: cannot open the capture file"))?;
        let mut writer = CaptureWriter::new(BufWriter::new(file), Format::for_name(&name))
            .with_context(|| format!("{name}: cannot write the capture header"))?;
        writer
            .flush()
            .with_context(|| format!("{name}: cannot write the capture header"))?;
        let committed = handle.metadata().map(|m| m.len()).unwrap_or(0);
        let keylog = match keylog {
            Some(k) => Some(BufWriter::new(super::open_append(k, "key log")?)),
            None => None,
        };
        Ok(PcapSink {
            writer,
            keylog,
            flows: 0,
            path: name,
            bytes: 0,
            file: handle,
            committed,
            failed: false,
        })
    }

    /// Run `write`, which ends with a flush, as one whole unit of the file.
    fn whole(&mut self, write: impl FnOnce(&mut Self) -> anyhow::Result<()>) -> anyhow::Result<()> {
        if self.failed {
            anyhow::bail!(
                "{}: an earlier write failed; the capture ends before it",
                self.path
            );
        }
        match write(self) {
            Ok(()) => {
                self.committed = self.file.metadata().map(|m| m.len()).unwrap_or(0);
                Ok(())
            }
            Err(e) => {
                self.failed = true;
                let _ = self.file.set_len(self.committed);
                Err(e)
            }
        }
    }

    /// Write several connections (and DNS answers before them) as one unit,
    /// each with its comment on its certificate frame, their frames merged in
    /// time order, so timestamps never go back within the unit (a batch source
    /// such as probe or demo writes every connection at once; the proxy writes
    /// each connection, both legs in intercept mode, as it closes). Whole or
    /// not at all: when the disk fails part-way, the file is cut back to the
    /// unit before and later writes are refused (the file stays a valid
    /// capture of everything up to the failure).
    pub fn write_flows(
        &mut self,
        flows: &[(&FlowLog, String)],
        dns: Option<DnsAnswers<'_>>,
    ) -> anyhow::Result<()> {
        self.whole(|me| {
            let mut frames = Vec::new();
            if let Some(d) = dns {
                frames.extend(dns_frames(d));
            }
            for (flow, comment) in flows {
                me.flow_secrets(flow)?;
                frames.extend(me.flow_frames(flow, comment));
            }
            // Stable: within a connection, and at equal times, the order made stays.
            frames.sort_by_key(|(at, _, _)| *at);
            me.write_frames(&frames)
        })
    }

    /// Blocks from a [`crate::core::export::stream::CaptureStream`] (the
    /// proxy's capture, written as connections go on), in units of about
    /// [`UNIT_BYTES`], each flushed whole or not at all, as
    /// [`PcapSink::write_flows`]: a disk that fills keeps every unit before.
    pub fn write_blocks(
        &mut self,
        blocks: &[crate::core::export::stream::Block],
    ) -> anyhow::Result<()> {
        use crate::core::export::stream::Block;
        let mut rest = blocks;
        while !rest.is_empty() {
            let mut size = 0;
            let n = rest
                .iter()
                .take_while(|b| {
                    let fits = size == 0 || size + b.stored_len() <= UNIT_BYTES;
                    size += b.stored_len();
                    fits
                })
                .count();
            let (unit, next) = rest.split_at(n);
            rest = next;
            self.whole(|me| {
                let ctx = || format!("{}: writing failed (disk full?)", me.path);
                for b in unit {
                    me.bytes += b.stored_len();
                    match b {
                        Block::Frame { at, bytes, comment } => {
                            me.writer
                                .frame(*at, bytes, comment.as_deref())
                                .with_context(ctx)?;
                        }
                        Block::Secrets(lines) => {
                            me.writer.secrets(lines).with_context(ctx)?;
                        }
                    }
                }
                me.writer.flush().with_context(ctx)
            })?;
        }
        Ok(())
    }

    /// The connection's TLS keys: a Decryption Secrets Block, and the key log file.
    fn flow_secrets(&mut self, flow: &FlowLog) -> anyhow::Result<()> {
        if flow.keylog.is_empty() || flow.opened.is_none() {
            return Ok(());
        }
        let ctx = || format!("{}: writing failed (disk full?)", self.path);
        self.writer.secrets(&flow.keylog).with_context(ctx)?;
        if let Some(k) = &mut self.keylog {
            k.write_all(flow.keylog.as_bytes())
                .context("writing the key log")?;
            k.flush().context("writing the key log")?;
        }
        Ok(())
    }

    /// One connection as frames: (time, bytes, comment).
    fn flow_frames(&mut self, flow: &FlowLog, comment: &str) -> Vec<TimedFrame> {
        let (Some(client), Some(server), Some(opened)) = (flow.client, flow.server, flow.opened)
        else {
            return Vec::new(); // never connected: nothing went over the wire
        };
        let mut out = Vec::new();
        self.flows += 1;
        let (mut synth, frames) =
            FlowSynth::open(client, server, 0x1000_0000u32.wrapping_mul(self.flows));
        let t0 = since_epoch(opened);
        out.extend(frames.into_iter().map(|f| (t0, f.bytes, None)));
        let mut commented = false;
        for (at, from_us, bytes) in coalesce(&flow.chunks) {
            let at = since_epoch(at);
            for f in synth.data(from_us, &bytes) {
                self.bytes += f.bytes.len() as u64 + 40;
                let c = (f.certificate && !commented).then(|| comment.to_owned());
                commented |= c.is_some();
                out.push((at, f.bytes, c));
            }
        }
        let end = since_epoch(flow.closed.unwrap_or(opened));
        let closing = synth.close(true, false);
        for (i, f) in closing.into_iter().enumerate() {
            // Without a visible Certificate (TLS 1.3, or a failure) the verdict goes on the close.
            let c = (i == 0 && !commented).then(|| comment.to_owned());
            out.push((end, f.bytes, c));
        }
        out
    }

    fn write_frames(&mut self, frames: &[TimedFrame]) -> anyhow::Result<()> {
        let ctx = || format!("{}: writing failed (disk full?)", self.path);
        for (at, bytes, comment) in frames {
            self.writer
                .frame(*at, bytes, comment.as_deref())
                .with_context(ctx)?;
        }
        self.writer.flush().with_context(ctx)
    }

    /// Approximate bytes written so far (for rotation).
    pub fn bytes_written(&self) -> u64 {
        self.bytes
    }

    /// Flush and close. After a failed write, what the writer still holds
    /// is thrown away and the file keeps its complete connections only.
    pub fn finish(self) -> anyhow::Result<()> {
        let path = self.path.clone();
        if self.failed {
            let PcapSink {
                writer,
                file,
                committed,
                ..
            } = self;
            // Dropping the buffered writer may still write its tail: cut after.
            drop(writer);
            let _ = file.set_len(committed);
            return Ok(());
        }
        let result = self.writer.into_inner().map(drop);
        if result.is_err() {
            let _ = self.file.set_len(self.committed);
        }
        result.with_context(|| format!("{path}: closing the capture failed"))
    }
}

/// Join back-to-back reads or writes of one side (XMPP is read a byte at a time
/// before TLS) so that segments look like what went over the wire.
fn coalesce(chunks: &[(SystemTime, bool, Vec<u8>)]) -> Vec<(SystemTime, bool, Vec<u8>)> {
    let mut out: Vec<(SystemTime, bool, Vec<u8>)> = Vec::new();
    for (at, from_us, bytes) in chunks {
        match out.last_mut() {
            Some((first, side, acc))
                if *side == *from_us
                    && at.duration_since(*first).unwrap_or_default()
                        < Duration::from_millis(20) =>
            {
                acc.extend_from_slice(bytes);
            }
            _ => out.push((*at, *from_us, bytes.clone())),
        }
    }
    out
}
