//! Reading capture files: pcap and pcapng (via pcap-file), optionally gzipped,
//! frame by frame, never holding the file in memory. A file cut short or damaged
//! mid-way yields every frame before the damage and a message saying where.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::{Block, PcapNgReader};
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
    on_read: Box<dyn FnMut(u64)>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.on_read)(n as u64);
        Ok(n)
    }
}

/// Read `path`, calling `frame(number, seconds, linktype, bytes)` for each frame
/// (numbered from 1, as Wireshark does). `progress` gets compressed bytes read.
pub fn read_capture(
    path: &Path,
    progress: Box<dyn FnMut(u64)>,
    mut frame: impl FnMut(u64, f64, u32, &[u8]),
) -> Result<ReadSummary, CaptureError> {
    let name = path.display().to_string();
    let file = File::open(path).map_err(|cause| CaptureError::Open {
        path: name.clone(),
        cause,
    })?;
    let mut raw = BufReader::with_capacity(
        1 << 20,
        Counting {
            inner: file,
            on_read: progress,
        },
    );
    let mut magic = [0u8; 4];
    let n = read_up_to(&mut raw, &mut magic).map_err(|cause| CaptureError::Open {
        path: name.clone(),
        cause,
    })?;
    let head = std::io::Cursor::new(magic[..n].to_vec());
    let (mut reader, gz): (Box<dyn Read>, bool) = if n >= 2 && magic[..2] == [0x1f, 0x8b] {
        let mut inner = flate2::read::MultiGzDecoder::new(head.chain(raw));
        let mut m = [0u8; 4];
        let k = read_up_to(&mut inner, &mut m).map_err(|cause| CaptureError::Open {
            path: name.clone(),
            cause,
        })?;
        magic = m;
        (
            Box::new(std::io::Cursor::new(m[..k].to_vec()).chain(inner)),
            true,
        )
    } else {
        (Box::new(head.chain(raw)), false)
    };
    let suffix = if gz { "+gzip" } else { "" };
    let mut summary = ReadSummary::default();
    match magic {
        [0xd4, 0xc3, 0xb2, 0xa1]
        | [0xa1, 0xb2, 0xc3, 0xd4]
        | [0x4d, 0x3c, 0xb2, 0xa1]
        | [0xa1, 0xb2, 0x3c, 0x4d] => {
            summary.format = format!("pcap{suffix}");
            let mut pcap = PcapReader::new(&mut reader).map_err(|e| CaptureError::BadHeader {
                path: name.clone(),
                reason: e.to_string(),
            })?;
            let linktype = u32::from(pcap.header().datalink);
            while let Some(packet) = pcap.next_packet() {
                match packet {
                    Ok(p) => {
                        summary.frames += 1;
                        frame(summary.frames, p.timestamp.as_secs_f64(), linktype, &p.data);
                    }
                    Err(e) => {
                        summary.truncated = Some(format!(
                            "the capture breaks after frame {}: {e}",
                            summary.frames
                        ));
                        break;
                    }
                }
            }
        }
        [0x0a, 0x0d, 0x0d, 0x0a] => {
            summary.format = format!("pcapng{suffix}");
            let mut ng = PcapNgReader::new(&mut reader).map_err(|e| CaptureError::BadHeader {
                path: name.clone(),
                reason: e.to_string(),
            })?;
            // Interfaces per section, tracked here because blocks borrow the reader.
            let mut interfaces: Vec<u32> = Vec::new();
            while let Some(block) = ng.next_block() {
                match block {
                    Ok(Block::SectionHeader(_)) => interfaces.clear(),
                    Ok(Block::InterfaceDescription(idb)) => {
                        interfaces.push(u32::from(idb.linktype))
                    }
                    Ok(Block::EnhancedPacket(epb)) => {
                        let linktype = interfaces
                            .get(epb.interface_id as usize)
                            .copied()
                            .unwrap_or(1);
                        summary.frames += 1;
                        frame(
                            summary.frames,
                            epb.timestamp.as_secs_f64(),
                            linktype,
                            &epb.data,
                        );
                    }
                    Ok(Block::SimplePacket(spb)) => {
                        let linktype = interfaces.first().copied().unwrap_or(1);
                        summary.frames += 1;
                        frame(summary.frames, 0.0, linktype, &spb.data);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        summary.truncated = Some(format!(
                            "the capture breaks after frame {}: {e}",
                            summary.frames
                        ));
                        break;
                    }
                }
            }
        }
        _ if n == 0 => return Err(CaptureError::Empty { path: name }),
        other => {
            return Err(CaptureError::NotACapture {
                path: name,
                magic: other[..n.min(4)]
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(" "),
            });
        }
    }
    Ok(summary)
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}
