//! Writing frames to pcapng (with per-packet comments and Decryption Secrets
//! Blocks) or classic pcap, to any `Write`.
//!
//! pcap-file writes section, interface and packet blocks, but has no type for the
//! Decryption Secrets Block (pcapng spec, block type 0x0000000A). Its body is
//! built here (secrets type "TLSK" 0x544c534b, length, NSS key log text) and
//! written through pcap-file's unknown-block path, which adds the padding and
//! trailer. pcap-file 2.0 always writes packet timestamps in nanoseconds, so the
//! interface declares if_tsresol = 9 to match.

use std::borrow::Cow;
use std::io::Write;
use std::time::Duration;

use pcap_file::DataLink;
use pcap_file::Endianness;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::section_header::SectionHeaderBlock;
use pcap_file::pcapng::blocks::unknown::UnknownBlock;
use pcap_file::pcapng::{Block, PcapNgWriter};
use thiserror::Error;

/// Decryption Secrets Block type.
pub const DSB_TYPE: u32 = 0x0000_000A;
/// Secrets type for a TLS key log.
pub const SECRETS_TLS_KEY_LOG: u32 = 0x544c_534b;

/// Why writing failed (a full disk, a closed pipe).
#[derive(Debug, Error)]
pub enum WriteError {
    /// The underlying writer failed.
    #[error("writing the capture failed: {0}")]
    Io(String),
}

impl From<pcap_file::PcapError> for WriteError {
    fn from(e: pcap_file::PcapError) -> Self {
        WriteError::Io(e.to_string())
    }
}

/// Capture file flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// pcapng: comments and embedded secrets.
    PcapNg,
    /// Classic pcap: frames only (keys go to `--keylog`).
    Pcap,
}

impl Format {
    /// pcap for names ending in `.pcap`, pcapng otherwise.
    pub fn for_name(name: &str) -> Format {
        if name.to_ascii_lowercase().ends_with(".pcap") {
            Format::Pcap
        } else {
            Format::PcapNg
        }
    }
}

/// The writer shared between pcap-file's writer and us, so that we can flush it:
/// pcap-file's `PcapWriter` does not hand out its writer until it is dropped.
struct Shared<W>(std::sync::Arc<std::sync::Mutex<W>>);

impl<W> Clone for Shared<W> {
    fn clone(&self) -> Self {
        Shared(self.0.clone())
    }
}

impl<W: Write> Write for Shared<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("capture writer poisoned"))?
            .write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("capture writer poisoned"))?
            .flush()
    }
}

enum Inner<W: Write> {
    Ng(PcapNgWriter<Shared<W>>),
    Pcap(PcapWriter<Shared<W>>),
}

/// A capture being written: Ethernet frames on one interface.
pub struct CaptureWriter<W: Write> {
    inner: Inner<W>,
    shared: Shared<W>,
    endianness: Endianness,
    /// Frames written.
    pub frames: u64,
}

/// Body of a Decryption Secrets Block carrying `keylog` (NSS key log lines).
pub fn dsb_body(keylog: &str, endianness: Endianness) -> Vec<u8> {
    let u32b = |v: u32| match endianness {
        Endianness::Big => v.to_be_bytes(),
        Endianness::Little => v.to_le_bytes(),
    };
    let mut body = Vec::with_capacity(8 + keylog.len());
    body.extend_from_slice(&u32b(SECRETS_TLS_KEY_LOG));
    body.extend_from_slice(&u32b(keylog.len() as u32));
    body.extend_from_slice(keylog.as_bytes());
    body
}

impl<W: Write> CaptureWriter<W> {
    /// Start a capture: headers are written at once.
    pub fn new(w: W, format: Format) -> Result<CaptureWriter<W>, WriteError> {
        let endianness = Endianness::Little;
        let shared = Shared(std::sync::Arc::new(std::sync::Mutex::new(w)));
        let w = shared.clone();
        let inner = match format {
            Format::PcapNg => {
                let section = SectionHeaderBlock {
                    endianness,
                    ..SectionHeaderBlock::default()
                };
                let mut ng = PcapNgWriter::with_section_header(w, section)?;
                let idb = InterfaceDescriptionBlock {
                    linktype: DataLink::ETHERNET,
                    snaplen: 0,
                    options: vec![
                        InterfaceDescriptionOption::IfName(Cow::Borrowed("edgetap")),
                        InterfaceDescriptionOption::IfTsResol(9),
                    ],
                };
                ng.write_pcapng_block(idb)?;
                Inner::Ng(ng)
            }
            Format::Pcap => Inner::Pcap(PcapWriter::with_header(
                w,
                PcapHeader {
                    datalink: DataLink::ETHERNET,
                    endianness,
                    ..PcapHeader::default()
                },
            )?),
        };
        Ok(CaptureWriter {
            inner,
            shared,
            endianness,
            frames: 0,
        })
    }

    /// Write one Ethernet frame at `at` (since the epoch), with an optional comment
    /// (pcapng only; dropped for pcap).
    pub fn frame(
        &mut self,
        at: Duration,
        frame: &[u8],
        comment: Option<&str>,
    ) -> Result<(), WriteError> {
        match &mut self.inner {
            Inner::Ng(ng) => {
                let options = comment
                    .map(|c| vec![EnhancedPacketOption::Comment(Cow::Borrowed(c))])
                    .unwrap_or_default();
                ng.write_pcapng_block(EnhancedPacketBlock {
                    interface_id: 0,
                    timestamp: at,
                    original_len: frame.len() as u32,
                    data: Cow::Borrowed(frame),
                    options,
                })?;
            }
            Inner::Pcap(p) => {
                p.write_packet(&PcapPacket::new(at, frame.len() as u32, frame))?;
            }
        }
        self.frames += 1;
        Ok(())
    }

    /// Embed TLS secrets (NSS key log lines) so Wireshark decrypts without a
    /// separate file. Returns false for classic pcap, which cannot hold them.
    pub fn secrets(&mut self, keylog: &str) -> Result<bool, WriteError> {
        if keylog.is_empty() {
            return Ok(true);
        }
        match &mut self.inner {
            Inner::Ng(ng) => {
                let value = dsb_body(keylog, self.endianness);
                ng.write_block(&Block::Unknown(UnknownBlock {
                    type_: DSB_TYPE,
                    length: 0,
                    value: Cow::Owned(value),
                }))?;
                Ok(true)
            }
            Inner::Pcap(_) => Ok(false),
        }
    }

    /// Flush buffered bytes to the underlying writer.
    pub fn flush(&mut self) -> Result<(), WriteError> {
        self.shared
            .flush()
            .map_err(|e| WriteError::Io(e.to_string()))
    }

    /// The underlying writer (flushed).
    pub fn into_inner(self) -> Result<W, WriteError> {
        let CaptureWriter { inner, shared, .. } = self;
        drop(inner);
        let mutex = std::sync::Arc::try_unwrap(shared.0)
            .map_err(|_| WriteError::Io("capture writer still shared".into()))?;
        let mut w = mutex
            .into_inner()
            .map_err(|_| WriteError::Io("capture writer poisoned".into()))?;
        w.flush().map_err(|e| WriteError::Io(e.to_string()))?;
        Ok(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsb_body_layout() {
        let body = dsb_body("CLIENT_RANDOM aa bb\n", Endianness::Little);
        assert_eq!(&body[..4], &0x544c534bu32.to_le_bytes());
        assert_eq!(&body[4..8], &20u32.to_le_bytes());
        assert_eq!(&body[8..], b"CLIENT_RANDOM aa bb\n");
    }

    #[test]
    fn pcapng_with_comment_and_secrets_reads_back() {
        let mut w = CaptureWriter::new(Vec::new(), Format::PcapNg).unwrap();
        w.secrets("CLIENT_RANDOM 00 11\n").unwrap();
        w.frame(
            Duration::from_secs(1_700_000_000),
            &[0u8; 60],
            Some("edgetap: jabber=ok"),
        )
        .unwrap();
        let bytes = w.into_inner().unwrap();
        let mut reader = pcap_file::pcapng::PcapNgReader::new(&bytes[..]).unwrap();
        let mut kinds = Vec::new();
        while let Some(b) = reader.next_block() {
            match b.unwrap() {
                Block::EnhancedPacket(epb) => {
                    assert_eq!(epb.timestamp, Duration::from_secs(1_700_000_000));
                    assert!(
                        matches!(&epb.options[0], EnhancedPacketOption::Comment(c) if c == "edgetap: jabber=ok")
                    );
                    kinds.push("epb");
                }
                Block::Unknown(u) => {
                    assert_eq!(u.type_, DSB_TYPE);
                    kinds.push("dsb");
                }
                _ => {}
            }
        }
        assert_eq!(kinds, ["dsb", "epb"]);
    }

    #[test]
    fn classic_pcap_for_dot_pcap() {
        assert_eq!(Format::for_name("out.pcap"), Format::Pcap);
        assert_eq!(Format::for_name("out.pcapng"), Format::PcapNg);
        let mut w = CaptureWriter::new(Vec::new(), Format::Pcap).unwrap();
        assert!(!w.secrets("x\n").unwrap());
        w.frame(Duration::from_millis(1500), &[1u8; 60], Some("ignored"))
            .unwrap();
        let bytes = w.into_inner().unwrap();
        let mut r = pcap_file::pcap::PcapReader::new(&bytes[..]).unwrap();
        assert_eq!(r.next_packet().unwrap().unwrap().data.len(), 60);
    }
}
