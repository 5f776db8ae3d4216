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
    progress: Box<dyn FnMut(u64)>,
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
pub fn read_capture_from(
    source: impl Read,
    name: &str,
    mut on: impl FnMut(Item<'_>),
) -> Result<ReadSummary, CaptureError> {
    let name = name.to_owned();
    let mut raw = BufReader::with_capacity(1 << 20, source);
    let mut magic = [0u8; 4];
    let n = read_up_to(&mut raw, &mut magic).map_err(|cause| CaptureError::Open {
        path: name.clone(),
        cause,
    })?;
    let head = std::io::Cursor::new(magic[..n].to_vec());
    let (mut reader, gz): (Box<dyn Read + '_>, bool) = if n >= 2 && magic[..2] == [0x1f, 0x8b] {
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
                        on(Item::Frame {
                            number: summary.frames,
                            time: p.timestamp.as_secs_f64(),
                            linktype,
                            data: &p.data,
                        });
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
            let mut big_endian = ng.section().endianness == pcap_file::Endianness::Big;
            while let Some(block) = ng.next_block() {
                match block {
                    Ok(Block::SectionHeader(shb)) => {
                        interfaces.clear();
                        big_endian = shb.endianness == pcap_file::Endianness::Big;
                    }
                    Ok(Block::Unknown(u)) if u.type_ == DSB_TYPE => {
                        if let Some(text) = tls_key_log(&u.value, big_endian) {
                            on(Item::TlsKeys(&text));
                        }
                    }
                    Ok(Block::InterfaceDescription(idb)) => {
                        interfaces.push(u32::from(idb.linktype))
                    }
                    Ok(Block::EnhancedPacket(epb)) => {
                        let linktype = interfaces
                            .get(epb.interface_id as usize)
                            .copied()
                            .unwrap_or(1);
                        summary.frames += 1;
                        on(Item::Frame {
                            number: summary.frames,
                            time: epb.timestamp.as_secs_f64(),
                            linktype,
                            data: &epb.data,
                        });
                    }
                    Ok(Block::SimplePacket(spb)) => {
                        let linktype = interfaces.first().copied().unwrap_or(1);
                        summary.frames += 1;
                        on(Item::Frame {
                            number: summary.frames,
                            time: 0.0,
                            linktype,
                            data: &spb.data,
                        });
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
