//! Reading capture files: pcap and pcapng (via pcap-file), optionally gzipped,
//! frame by frame, never holding the file in memory. A file cut short or damaged
//! mid-way yields every frame before the damage and a message saying where.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use pcap_file::PcapError;
use pcap_file::pcap::PcapParser;
use pcap_file::pcapng::{Block, PcapNgParser};
use thiserror::Error;

/// Why a capture could not be read at all.
#[derive(Debug, Error)]
pub enum CaptureError {
    /// The file could not be opened or read.
    // The OS error is in the message, not a chained source, so it is said once.
    #[error("{path}: cannot read the file: {cause}")]
    Open {
        /// The file.
        path: String,
        /// The OS error.
        cause: std::io::Error,
    },
    /// The file is empty.
    #[error("{path}: the file is empty; expected a pcap or pcapng capture")]
    Empty {
        /// The file.
        path: String,
    },
    /// Not a capture format edgetap reads.
    #[error(
        "{path}: not a pcap or pcapng file (starts with {magic}); save the capture as pcap or pcapng, optionally gzipped"
    )]
    NotACapture {
        /// The file.
        path: String,
        /// The first bytes, hex.
        magic: String,
    },
    /// The header itself is damaged.
    #[error("{path}: the capture header is damaged: {reason}")]
    BadHeader {
        /// The file.
        path: String,
        /// What pcap-file said.
        reason: String,
    },
}

/// How reading went.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ReadSummary {
    /// Frames delivered.
    pub frames: u64,
    /// "pcap", "pcapng", with "+gzip" when compressed.
    pub format: String,
    /// Set when the file ended or broke before its last frame was whole.
    pub truncated: Option<String>,
}

/// Counts bytes read, for a progress bar.
struct Counting<R> {
    inner: R,
    on_read: Box<dyn FnMut(u64) + Send>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.on_read)(n as u64);
        Ok(n)
    }
}

/// One thing a capture holds, in file order.
#[derive(Debug, Clone, Copy)]
pub enum Item<'a> {
    /// A frame (numbered from 1, as Wireshark does).
    Frame {
        /// Frame number.
        number: u64,
        /// Seconds since the epoch.
        time: f64,
        /// The interface's link type.
        linktype: u32,
        /// The frame's bytes.
        data: &'a [u8],
    },
    /// TLS key log text from a pcapng Decryption Secrets Block.
    TlsKeys(&'a str),
}

/// Read `path`, calling `on` for each frame and each block of TLS secrets.
/// `progress` gets compressed bytes read.
pub fn read_capture(
    path: &Path,
    progress: Box<dyn FnMut(u64) + Send>,
    on: impl FnMut(Item<'_>),
) -> Result<ReadSummary, CaptureError> {
    let name = path.display().to_string();
    let file = File::open(path).map_err(|cause| CaptureError::Open {
        path: name.clone(),
        cause,
    })?;
    read_capture_from(
        Counting {
            inner: file,
            on_read: progress,
        },
        &name,
        on,
    )
}

/// Read a capture from any byte source (`name` says what it is in messages):
/// the part of [`read_capture`] that does not open a file.
///
/// The source is read (and gunzipped) on a thread of its own, a block at a
/// time, and the frames are parsed where they lie in those blocks and handed
/// to `on` on this one. So copying a file's bytes out of the kernel and
/// replaying its frames each take a core (a 115 MB capture spent 49 ms on one
/// thread, half of it copying). pcap-file's readers copy every byte into a
/// buffer of their own once more, so its slice parsers are used, over
/// [`Blocks`].
pub fn read_capture_from(
    source: impl Read + Send,
    name: &str,
    on: impl FnMut(Item<'_>),
) -> Result<ReadSummary, CaptureError> {
    read_capture_blocks(source, name, BLOCK, on)
}

/// Bytes read at a time.
const BLOCK: usize = 1 << 20;

/// A record larger than this is refused (pcap-file's own readers stop at
/// their 8 MB buffer too): a damaged length cannot make edgetap gather the
/// rest of the file into one record.
const MAX_RECORD: usize = 8_000_000;

/// [`read_capture_from`] with `block` bytes read at a time (tests and the
/// capture fuzz target use small blocks too, so that records straddle blocks
/// everywhere).
pub(crate) fn read_capture_blocks(
    source: impl Read + Send,
    name: &str,
    block: usize,
    mut on: impl FnMut(Item<'_>),
) -> Result<ReadSummary, CaptureError> {
    use std::sync::mpsc::{channel, sync_channel};
    let name = name.to_owned();
    let block = block.max(4);
    std::thread::scope(|scope| {
        let (full_tx, full_rx) = sync_channel::<std::io::Result<(Vec<u8>, usize)>>(2);
        let (empty_tx, empty_rx) = channel::<Vec<u8>>();
        let reader = crate::threads::spawn_scoped(scope, move || {
            let mut raw = BufReader::with_capacity(64 * 1024, source);
            let mut magic = [0u8; 2];
            let (n, error) = fill(&mut raw, &mut magic, 2);
            if let Some(e) = error {
                let _ = full_tx.send(Err(e));
                return false;
            }
            let head = std::io::Cursor::new(magic[..n].to_vec());
            let gz = n == 2 && magic == [0x1f, 0x8b];
            let mut bytes: Box<dyn Read> = if gz {
                Box::new(flate2::read::MultiGzDecoder::new(head.chain(raw)))
            } else {
                Box::new(head.chain(raw))
            };
            // Each block filled as far as the bytes go; what was read before
            // an error (a gzip stream cut short or damaged) is still handed
            // over. flate2 drops what it inflated in the call that meets
            // the damage, so it is asked for 64 KiB at a time: that is the
            // most a damaged stream can lose before the damage.
            let piece = if gz { 64 * 1024 } else { block };
            while hand_over(&mut bytes, &empty_rx, &full_tx, block, piece) {}
            gz
        });
        let result = parse_blocks(Blocks::new(full_rx, empty_tx), &name, &mut on);
        let gz = match reader.join() {
            Ok(gz) => gz,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        result.map(|mut summary| {
            if gz {
                summary.format += "+gzip";
            }
            summary
        })
    })
}

/// Frames and key logs of a capture, from its blocks. The blocks are
/// dropped on return, which stops their readers at their next block.
fn parse_blocks(
    mut blocks: Blocks,
    name: &str,
    on: &mut impl FnMut(Item<'_>),
) -> Result<ReadSummary, CaptureError> {
    // The first block holds the first four bytes, if the file has them.
    match blocks.advance() {
        Err(cause) => Err(CaptureError::Open {
            path: name.to_owned(),
            cause,
        }),
        Ok(false) => Err(CaptureError::Empty {
            path: name.to_owned(),
        }),
        Ok(true) => parse_capture(&mut blocks, name, on),
    }
}

/// Frames and key logs of a capture whose first block is in `blocks`.
fn parse_capture(
    blocks: &mut Blocks,
    name: &str,
    on: &mut impl FnMut(Item<'_>),
) -> Result<ReadSummary, CaptureError> {
    let mut summary = ReadSummary::default();
    let avail = blocks.len - blocks.pos;
    let mut magic = [0u8; 4];
    magic[..avail.min(4)].copy_from_slice(&blocks.block[..avail.min(4)]);
    let bad_header = |e: PcapError| CaptureError::BadHeader {
        path: name.to_owned(),
        reason: e.to_string(),
    };
    let truncated =
        |frames: u64, e: PcapError| Some(format!("the capture breaks after frame {frames}: {e}"));
    match magic {
        [0xd4, 0xc3, 0xb2, 0xa1]
        | [0xa1, 0xb2, 0xc3, 0xd4]
        | [0x4d, 0x3c, 0xb2, 0xa1]
        | [0xa1, 0xb2, 0x3c, 0x4d] => {
            summary.format = "pcap".into();
            let parser = blocks.header(PcapParser::new).map_err(bad_header)?;
            let linktype = u32::from(parser.header().datalink);
            let frames = &mut summary.frames;
            let read = blocks.each(|s| {
                let (rem, p) = parser.next_packet(s)?;
                *frames += 1;
                on(Item::Frame {
                    number: *frames,
                    time: p.timestamp.as_secs_f64(),
                    linktype,
                    data: &p.data,
                });
                Ok(s.len() - rem.len())
            });
            if let Err(e) = read {
                summary.truncated = truncated(summary.frames, e);
            }
        }
        [0x0a, 0x0d, 0x0d, 0x0a] => {
            summary.format = "pcapng".into();
            let mut ng = blocks.header(PcapNgParser::new).map_err(bad_header)?;
            // Interfaces per section, tracked here as the blocks go by.
            let mut interfaces: Vec<u32> = Vec::new();
            let mut big_endian = ng.section().endianness == pcap_file::Endianness::Big;
            let frames = &mut summary.frames;
            let read = blocks.each(|s| {
                let (rem, block) = ng.next_block(s)?;
                match block {
                    Block::SectionHeader(shb) => {
                        interfaces.clear();
                        big_endian = shb.endianness == pcap_file::Endianness::Big;
                    }
                    Block::Unknown(u) if u.type_ == DSB_TYPE => {
                        if let Some(text) = tls_key_log(&u.value, big_endian) {
                            on(Item::TlsKeys(&text));
                        }
                    }
                    Block::InterfaceDescription(idb) => interfaces.push(u32::from(idb.linktype)),
                    Block::EnhancedPacket(epb) => {
                        let linktype = interfaces
                            .get(epb.interface_id as usize)
                            .copied()
                            .unwrap_or(1);
                        *frames += 1;
                        on(Item::Frame {
                            number: *frames,
                            time: epb.timestamp.as_secs_f64(),
                            linktype,
                            data: &epb.data,
                        });
                    }
                    Block::SimplePacket(spb) => {
                        let linktype = interfaces.first().copied().unwrap_or(1);
                        *frames += 1;
                        on(Item::Frame {
                            number: *frames,
                            time: 0.0,
                            linktype,
                            data: &spb.data,
                        });
                    }
                    _ => {}
                }
                Ok(s.len() - rem.len())
            });
            if let Err(e) = read {
                summary.truncated = truncated(summary.frames, e);
            }
        }
        other => {
            return Err(CaptureError::NotACapture {
                path: name.to_owned(),
                magic: other[..avail.min(4)]
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(" "),
            });
        }
    }
    Ok(summary)
}

/// The error for bytes that end inside a record.
fn eof() -> PcapError {
    PcapError::IoError(std::io::Error::from(std::io::ErrorKind::UnexpectedEof))
}

/// A capture's bytes as they arrive from the reader thread, one block at a
/// time, with records parsed where they lie. Written here because no capture
/// crate parses a stream of blocks without copying it: a record that
/// straddles two blocks is the only one copied (into `carry`), and only as
/// far as it goes. Drained blocks go back to the reader to be filled again.
struct Blocks {
    /// Blocks read, with how many bytes each holds (or the read error).
    full: std::sync::mpsc::Receiver<std::io::Result<(Vec<u8>, usize)>>,
    /// Drained blocks, back to the reader.
    empty: std::sync::mpsc::Sender<Vec<u8>>,
    /// The block being parsed.
    block: Vec<u8>,
    /// The next byte of `block` to parse.
    pos: usize,
    /// Bytes `block` holds.
    len: usize,
    /// A record that straddles blocks, gathered.
    carry: Vec<u8>,
}

impl Blocks {
    fn new(
        full: std::sync::mpsc::Receiver<std::io::Result<(Vec<u8>, usize)>>,
        empty: std::sync::mpsc::Sender<Vec<u8>>,
    ) -> Blocks {
        Blocks {
            full,
            empty,
            block: Vec::new(),
            pos: 0,
            len: 0,
            carry: Vec::new(),
        }
    }

    /// The next block, once this one is drained: false at the end of the
    /// bytes (the reader stops after a block that is not full).
    fn advance(&mut self) -> std::io::Result<bool> {
        match self.full.recv() {
            Ok(Ok((block, len))) => {
                let drained = std::mem::replace(&mut self.block, block);
                if !drained.is_empty() {
                    let _ = self.empty.send(drained);
                }
                (self.pos, self.len) = (0, len);
                Ok(true)
            }
            Err(_) => Ok(false),
            Ok(Err(e)) => Err(e),
        }
    }

    /// The file's header, parsed by `parse` (a parser's `new`, which owns
    /// what it keeps): an error if the bytes end before it.
    fn header<T>(
        &mut self,
        parse: impl Fn(&[u8]) -> Result<(&[u8], T), PcapError>,
    ) -> Result<T, PcapError> {
        let mut header = None;
        self.next(|s| {
            let (rem, parsed) = parse(s)?;
            header = Some(parsed);
            Ok(s.len() - rem.len())
        })?;
        header.ok_or_else(eof)
    }

    /// Each record to the end: see [`Blocks::next`].
    fn each(
        &mut self,
        mut step: impl FnMut(&[u8]) -> Result<usize, PcapError>,
    ) -> Result<(), PcapError> {
        while self.next(&mut step)? {}
        Ok(())
    }

    /// One record: `step` parses it from the front of the bytes it is given
    /// (and does what it must with it), saying how many bytes it used, or
    /// `IncompleteBuffer` when they end inside the record. False at the end
    /// of the bytes, between records.
    fn next(
        &mut self,
        mut step: impl FnMut(&[u8]) -> Result<usize, PcapError>,
    ) -> Result<bool, PcapError> {
        if self.pos == self.len && !self.advance().map_err(PcapError::IoError)? {
            return Ok(false);
        }
        match step(&self.block[self.pos..self.len]) {
            Ok(used) => {
                self.pos += used;
                return Ok(true);
            }
            Err(PcapError::IncompleteBuffer) => {}
            Err(e) => return Err(e),
        }
        // The record goes on in the next block(s): gather it, a growing
        // piece at a time, until it parses.
        self.carry.clear();
        self.carry
            .extend_from_slice(&self.block[self.pos..self.len]);
        self.pos = self.len;
        loop {
            if self.pos == self.len && !self.advance().map_err(PcapError::IoError)? {
                return Err(eof());
            }
            let take = (self.len - self.pos).min(self.carry.len().max(64 * 1024));
            self.carry
                .extend_from_slice(&self.block[self.pos..self.pos + take]);
            self.pos += take;
            match step(&self.carry) {
                Ok(used) => {
                    // What the record did not use came from this block.
                    self.pos -= self.carry.len() - used;
                    return Ok(true);
                }
                Err(PcapError::IncompleteBuffer) if self.carry.len() < MAX_RECORD => {}
                Err(PcapError::IncompleteBuffer) => {
                    return Err(PcapError::InvalidField(
                        "a record longer than 8 MB (its length is damaged)",
                    ));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// pcapng Decryption Secrets Block type.
const DSB_TYPE: u32 = 0x0000_000A;
/// Its secrets type for a TLS key log ("TLSK").
const SECRETS_TLS_KEY_LOG: u32 = 0x544c_534b;

/// The key log text of a Decryption Secrets Block body (secrets type, length,
/// data, in the section's byte order), if it holds TLS keys.
fn tls_key_log(body: &[u8], big_endian: bool) -> Option<String> {
    let word = |at: usize| -> Option<u32> {
        let b: [u8; 4] = body.get(at..at + 4)?.try_into().ok()?;
        Some(if big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    if word(0)? != SECRETS_TLS_KEY_LOG {
        return None;
    }
    let len = usize::try_from(word(4)?).ok()?;
    let data = body.get(8..8 + len.min(body.len().saturating_sub(8)))?;
    Some(String::from_utf8_lossy(data).into_owned())
}

/// A reader's step: a drained block back from the parser (or a new one of
/// `block` bytes) filled from `source`, `piece` bytes a read at most (see
/// [`fill`]), and handed over with what it holds.
/// A read error follows what was read before it. False when this reader is
/// done: the parser is gone, the source failed or ended (a block not full).
fn hand_over(
    source: &mut impl Read,
    empty: &std::sync::mpsc::Receiver<Vec<u8>>,
    full: &std::sync::mpsc::SyncSender<std::io::Result<(Vec<u8>, usize)>>,
    block: usize,
    piece: usize,
) -> bool {
    let mut buf = empty.try_recv().unwrap_or_else(|_| vec![0; block]);
    let (n, error) = fill(source, &mut buf, piece);
    if n > 0 && full.send(Ok((buf, n))).is_err() {
        return false;
    }
    if let Some(e) = error {
        let _ = full.send(Err(e));
        return false;
    }
    n == block
}

/// Fill `buf` as far as the source goes, `piece` bytes a read at most:
/// short only at the end of the source or at an error, which comes back with
/// the count of the bytes read before it.
fn fill(r: &mut impl Read, buf: &mut [u8], piece: usize) -> (usize, Option<std::io::Error>) {
    let mut n = 0;
    while n < buf.len() {
        let end = buf.len().min(n + piece);
        match r.read(&mut buf[n..end]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return (n, Some(e)),
        }
    }
    (n, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcap_file::pcapng::PcapNgReader;

    /// A read's frame count, format and truncation, or its error.
    type Outcome = Result<(u64, String, Option<String>), String>;

    /// Everything a read gives: the items and the summary (or the error).
    fn read(bytes: &[u8], block: usize) -> (Vec<crate::testing::fuzz::OwnedItem>, Outcome) {
        let (items, summary) = crate::testing::fuzz::owned_items(bytes, block);
        (
            items,
            summary
                .map(|s| (s.frames, s.format, s.truncated))
                .map_err(|e| e.to_string()),
        )
    }

    /// The demo capture (pcapng, with a secrets block), the same frames as
    /// pcap, and both gzipped.
    fn inputs() -> Vec<(&'static str, Vec<u8>)> {
        let ng = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/captures/demo/demo.pcapng"
        ))
        .unwrap();
        let mut pcap = Vec::new();
        {
            let mut w = pcap_file::pcap::PcapWriter::new(&mut pcap).unwrap();
            let mut r = PcapNgReader::new(&ng[..]).unwrap();
            while let Some(block) = r.next_block() {
                if let Block::EnhancedPacket(epb) = block.unwrap() {
                    let len = epb.data.len() as u32;
                    w.write_packet(&pcap_file::pcap::PcapPacket::new(
                        epb.timestamp,
                        len,
                        &epb.data,
                    ))
                    .unwrap();
                }
            }
        }
        let gz = |b: &[u8]| {
            use std::io::Write as _;
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(b).unwrap();
            e.finish().unwrap()
        };
        vec![
            ("pcapng+gzip", gz(&ng)),
            ("pcap+gzip", gz(&pcap)),
            ("pcapng", ng),
            ("pcap", pcap),
        ]
    }

    /// pcap-file's own reader (which copies through its buffer) gives the
    /// same frames as the block parser, whatever the block size: records
    /// straddle blocks everywhere with small ones.
    #[test]
    fn blocks_of_any_size_read_the_same_frames_as_pcap_files_reader() {
        for (format, bytes) in inputs() {
            let whole = read(&bytes, BLOCK);
            let (items, summary) = &whole;
            let (frames, got_format, truncated) = summary.clone().unwrap();
            assert_eq!(got_format, format);
            assert_eq!(truncated, None, "{format}");
            assert!(frames > 20, "{format}: {frames} frames");
            if format == "pcapng" {
                let mut oracle = Vec::new();
                let mut r = PcapNgReader::new(&bytes[..]).unwrap();
                while let Some(block) = r.next_block() {
                    if let Block::EnhancedPacket(epb) = block.unwrap() {
                        oracle.push(epb.data.to_vec());
                    }
                }
                let ours: Vec<Vec<u8>> = items
                    .iter()
                    .filter(|(number, ..)| *number != 0)
                    .map(|(.., d)| d.clone())
                    .collect();
                assert_eq!(ours, oracle);
                assert!(
                    items.iter().any(|(number, ..)| *number == 0),
                    "secrets block read"
                );
            }
            for block in [4, 5, 13, 64, 333, 4096] {
                assert!(read(&bytes, block) == whole, "{format}, blocks of {block}");
            }
        }
    }

    /// Every item of the file `path` read through [`read_capture`], as
    /// [`read`] gives them.
    fn read_file(path: &Path) -> (Vec<crate::testing::fuzz::OwnedItem>, Outcome) {
        let mut items = Vec::new();
        let summary = read_capture(path, Box::new(|_| {}), |item| {
            items.push(crate::testing::fuzz::owned(item))
        });
        (
            items,
            summary
                .map(|s| (s.frames, s.format, s.truncated))
                .map_err(|e| {
                    e.to_string()
                        .replace(&path.display().to_string(), "capture")
                }),
        )
    }

    /// A file reads as its bytes do: whole, cut inside a record, cut at a
    /// block's end, and empty.
    #[test]
    fn a_file_reads_as_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        for (format, bytes) in inputs() {
            for cut in [bytes.len(), bytes.len() - 7, 4096, 333 * 5, 0] {
                let prefix = &bytes[..cut.min(bytes.len())];
                let path = dir.path().join(format!("{format}-{cut}"));
                std::fs::write(&path, prefix).unwrap();
                assert!(
                    read_file(&path) == read(prefix, BLOCK),
                    "{format} cut at {cut}"
                );
            }
        }
    }

    /// A capture cut anywhere reads, with small blocks, as it does in one
    /// block: the frames before the cut, and the same message for the cut.
    #[test]
    fn every_prefix_reads_the_same_with_small_blocks() {
        for (format, bytes) in inputs().into_iter().filter(|(f, _)| !f.contains("gzip")) {
            let mut cut_inside = 0;
            for cut in (0..bytes.len()).step_by(53).chain([bytes.len() - 1]) {
                let prefix = &bytes[..cut];
                let whole = read(prefix, BLOCK);
                assert!(read(prefix, 13) == whole, "{format} cut at {cut}");
                // Past the header, a cut inside a record is said; one
                // between records is not.
                if let (_, Ok((_, _, Some(t)))) = &whole {
                    assert!(
                        t.contains("breaks after frame"),
                        "{format} cut at {cut}: {t}"
                    );
                    cut_inside += 1;
                }
            }
            assert!(
                cut_inside > bytes.len() / 53 / 2,
                "{format}: {cut_inside} cuts said"
            );
        }
    }

    /// A record whose length says more than 8 MB is refused once that much
    /// is gathered, not read on to the end of a long file.
    #[test]
    fn a_damaged_record_length_is_refused() {
        let mut bytes = Vec::new();
        // pcap header (little-endian, microseconds, snaplen 262144, Ethernet).
        for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 262_144, 1] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        // A record header that claims 2 GB.
        for v in [0u32, 0, 0x7fff_ffff, 0x7fff_ffff] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        bytes.resize(bytes.len() + 9_000_000, 0);
        let (items, summary) = read(&bytes, 1 << 16);
        assert!(items.is_empty());
        let (_, _, truncated) = summary.unwrap();
        assert!(truncated.is_some_and(|t| t.contains("8 MB")));
    }

    /// What a read error leaves: an empty source, foreign bytes, a gzip
    /// stream cut short (its frames before the cut are kept).
    #[test]
    fn empty_foreign_and_cut_gzip() {
        assert!(read(b"", BLOCK).1.unwrap_err().contains("empty"));
        assert!(
            read(b"hello world", BLOCK)
                .1
                .unwrap_err()
                .contains("starts with 68 65 6c 6c")
        );
        let (_, gz) = inputs().remove(0);
        let (items, summary) = read(&gz[..gz.len() / 2], 64);
        let (frames, format, truncated) = summary.unwrap();
        assert_eq!(format, "pcapng+gzip");
        assert!(frames > 0 && items.len() as u64 >= frames);
        assert!(truncated.is_some());
    }
}
