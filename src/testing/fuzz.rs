//! Entry points for the coverage-guided fuzz targets in `fuzz/` (cargo-fuzz,
//! nightly) and for `tests/fuzz_corpus.rs`, which runs every committed corpus
//! and crash input through the same functions on stable. Each takes arbitrary
//! bytes, as a stranger could send or a customer's capture could hold, and must
//! neither panic, hang nor allocate without bound.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::OnceLock;

use crate::core::analysis::engine::Engine;
use crate::core::analysis::rules::DetectorConfig;
use crate::core::capture::decap;
use crate::core::capture::dns::{CapturedDns, give_context};
use crate::core::capture::tcp::HalfStream;
use crate::core::observation::{Observation, Origin, ReferenceIdentity, Service, SourceKind};
use crate::core::tls::keylog::KeyLog;
use crate::core::tls::{DirectionParser, messages};
use crate::core::x509::cert::CertInfo;
use crate::core::x509::trust::{StoreKind, TrustStore};
use crate::core::xmpp;
use crate::input::capture::{Item, ReadSummary, read_capture_from};

/// One fuzz target: its name (the file in `fuzz/fuzz_targets/`, the folder in
/// `fuzz/corpus/`) and what it runs.
pub type Target = (&'static str, fn(&[u8]));

/// Every target, by name.
pub const TARGETS: &[Target] = &[
    ("capture", capture),
    ("decap", decap),
    ("tcp", tcp),
    ("tls_stream", tls_stream),
    ("certificate", certificate),
    ("chain", chain),
    ("xmpp", xmpp),
    ("dns", dns),
    ("keylog", keylog),
    ("proxy_config", proxy_config),
    ("regress_suite", regress_suite),
    ("revocation", revocation),
];

/// The time verdicts are judged at (fixed: a target must be deterministic).
fn at() -> time::OffsetDateTime {
    time::macros::datetime!(2026-06-01 00:00 UTC)
}

/// One engine for all inputs (building the public roots per input would be
/// most of the work).
fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        Engine::new(
            TrustStore::bundled_public_roots(),
            TrustStore::default(),
            DetectorConfig::default(),
        )
    })
}

/// A whole capture file (pcap, pcapng, gzip; Decryption Secrets Blocks
/// included) through replay, captured DNS, observations and the engine; and
/// the file read in blocks of 1 to 64 bytes (chosen by its last byte) gives
/// the same frames, keys and summary as in one block. A damaged gzip stream
/// is the exception: flate2 drops what it inflated in the read that met the
/// damage, and a larger read inflates more, so in one block the frames may
/// stop earlier, never differ.
pub fn capture(data: &[u8]) {
    let (_, observations) =
        crate::cmd::replay::capture_report("fuzz", &HashMap::new(), &KeyLog::new(), |on| {
            read_capture_from(data, "fuzz", on)
        });
    engine().evaluate(&observations, at());
    let small = 1 + usize::from(data.last().copied().unwrap_or(0) % 64);
    let (one, one_summary) = capture_items(data, 1 << 20);
    let (many, many_summary) = capture_items(data, small);
    let gzip = data.starts_with(&[0x1f, 0x8b]);
    if gzip && (&one, &one_summary) != (&many, &many_summary) {
        assert!(
            many.starts_with(&one),
            "blocks of {small} bytes: not the same frames as in one block"
        );
    } else {
        assert_eq!(
            (one, one_summary),
            (many, many_summary),
            "blocks of {small} bytes"
        );
    }
}

/// Each item of a capture read `block` bytes at a time, and the summary or
/// error, as text.
fn capture_items(data: &[u8], block: usize) -> (Vec<OwnedItem>, String) {
    let (items, summary) = owned_items(data, block);
    let summary = match summary {
        Ok(s) => format!("{} {} {:?}", s.frames, s.format, s.truncated),
        Err(e) => e.to_string(),
    };
    (items, summary)
}

/// Link types the decapsulation knows, chosen by the input's first byte.
const LINKTYPES: &[u32] = &[
    decap::linktype::NULL,
    decap::linktype::ETHERNET,
    decap::linktype::PPP,
    decap::linktype::RAW,
    decap::linktype::LOOP,
    decap::linktype::LINUX_SLL,
    decap::linktype::IPV4,
    decap::linktype::IPV6,
    decap::linktype::LINUX_SLL2,
    12,
    14,
];

/// One frame's decapsulation; the first byte picks the link type.
pub fn decap(data: &[u8]) {
    let Some((&pick, frame)) = data.split_first() else {
        return;
    };
    let linktype = LINKTYPES[usize::from(pick) % LINKTYPES.len()];
    let _ = decap::transport(linktype, frame);
    let _ = decap::segment(linktype, frame);
}

/// One direction's TCP reassembly: the input is a list of segments, each a
/// 4-byte sequence number, a flag byte (bit 0: SYN; bit 1: skip a gap after
/// it) and a length byte, then that many payload bytes.
pub fn tcp(data: &[u8]) {
    let mut half = HalfStream::default();
    let mut out = Vec::new();
    let mut rest = data;
    while rest.len() >= 6 {
        let seq = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let flags = rest[4];
        let len = usize::from(rest[5]).min(rest.len() - 6);
        let payload = &rest[6..6 + len];
        rest = &rest[6 + len..];
        out.clear();
        half.push(seq, flags & 1 != 0, payload, &mut out);
        if flags & 2 != 0 {
            let _ = half.skip_gap(&mut out);
        }
        let _ = half.offset();
    }
    while half.has_pending() {
        out.clear();
        if half.skip_gap(&mut out).is_none() {
            break;
        }
    }
}

/// One direction of a TLS stream in chunks (the first byte sets the chunk
/// size), in both parser flavours, and the handshake message parsers on the
/// same bytes.
pub fn tls_stream(data: &[u8]) {
    let Some((&size, bytes)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(size).max(1);
    let mut events = Vec::new();
    for mut parser in [
        DirectionParser::default(),
        DirectionParser::keeping_tls13_flights(),
    ] {
        for (i, piece) in bytes.chunks(chunk).enumerate() {
            if i == 1 {
                parser.peer_chose_tls13();
            }
            events.clear();
            parser.feed(piece, &mut events);
            if parser.done() {
                break;
            }
        }
        parser.finish();
        let _ = parser.take_flight();
    }
    let _ = messages::client_hello(bytes);
    let _ = messages::server_hello(bytes);
    let _ = messages::certificates(bytes);
    let _ = messages::certificates_tls13(bytes);
}

/// A certificate file's bytes (PEM bundle or DER) and each certificate's summary.
pub fn certificate(data: &[u8]) {
    let _ = CertInfo::parse(data);
    if let Ok(certs) = crate::input::certs::parse_certificates(data, Path::new("fuzz")) {
        for der in &certs {
            if let Ok(info) = CertInfo::parse(der) {
                let _ = (info.san_text(), info.short_name(), info.may_be_ca());
            }
        }
    }
}

/// A presented chain (each certificate prefixed by a 2-byte length) judged
/// by the whole engine for every service, the first certificate also
/// standing as an enterprise anchor.
pub fn chain(data: &[u8]) {
    let mut presented = Vec::new();
    let mut rest = data;
    while rest.len() >= 2 && presented.len() < 8 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        presented.push(rest[2..2 + len].to_vec());
        rest = &rest[2 + len..];
    }
    let observations: Vec<Observation> = [Service::Http, Service::Xmpp, Service::Sip]
        .into_iter()
        .map(|service| {
            Observation::new(
                service,
                ReferenceIdentity::parse("expe.example.com"),
                presented.clone(),
                Origin {
                    kind: SourceKind::Inspect,
                    at: None,
                    locator: "fuzz".into(),
                },
            )
        })
        .collect();
    engine().evaluate(&observations, at());
    if let Some(first) = presented.first() {
        let enterprise = TrustStore::from_der_certs([first.clone()], StoreKind::Enterprise);
        if let Ok(enterprise) = enterprise {
            Engine::new(TrustStore::default(), enterprise, DetectorConfig::default())
                .evaluate(&observations, at());
        }
    }
}

/// XMPP stream preludes from either side.
pub fn xmpp(data: &[u8]) {
    let mut at = 0;
    while let Ok(Some((_, used))) = xmpp::scan_server(&data[at..]) {
        if used == 0 {
            break;
        }
        at += used;
    }
    let _ = xmpp::scan_client(data);
}

/// DNS answers as UDP payloads and as a TCP byte stream, then rebuilt as
/// discoveries and given to an observation as context.
pub fn dns(data: &[u8]) {
    let mut dns = CapturedDns::default();
    dns.datagram(1, data);
    let server: SocketAddr = ([192, 0, 2, 53], 53).into();
    let client: SocketAddr = ([192, 0, 2, 1], 40000).into();
    for (i, piece) in data.chunks(97).enumerate() {
        dns.tcp_bytes(i as u64 + 2, (server, client), piece);
    }
    let found = dns.discoveries("fuzz");
    let mut obs = Observation::new(
        Service::Http,
        ReferenceIdentity::parse("expe.example.com"),
        Vec::new(),
        Origin {
            kind: SourceKind::Replay,
            at: None,
            locator: "fuzz".into(),
        },
    );
    obs.endpoint.ip = Some([192, 0, 2, 10].into());
    obs.endpoint.port = Some(8443);
    give_context(&mut obs, &found);
}

/// SSLKEYLOGFILE text.
pub fn keylog(data: &[u8]) {
    let mut keys = KeyLog::new();
    keys.add(&String::from_utf8_lossy(data), "fuzz");
}

/// A proxy TOML configuration.
pub fn proxy_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = crate::proxy::ProxyConfig::from_toml(text) {
        let _ = config.validate();
        for listener in &config.listeners {
            let _ = listener.service();
        }
    }
}

/// A regression suite file.
pub fn regress_suite(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = crate::core::regress::suite::parse("fuzz.toml", text, Path::new("."));
}

/// A fetched CRL or OCSP response read as `--online` reads it. The input is
/// the issuer's certificate and the checked certificate (DER, each after a
/// 2-byte big-endian length), then the answer's bytes; it is judged a day
/// after the certificate's notBefore (deterministic, and inside the seeds'
/// CRLs and responses).
pub fn revocation(data: &[u8]) {
    use crate::core::x509::revocation::{Issuer, ocsp_request, read_crl, read_ocsp};
    fn take(data: &[u8]) -> Option<(&[u8], &[u8])> {
        let len = usize::from(u16::from_be_bytes([*data.first()?, *data.get(1)?]));
        let rest = data.get(2..)?;
        Some((rest.get(..len)?, rest.get(len..)?))
    }
    let Some((issuer, rest)) = take(data) else {
        return;
    };
    let Some((cert, answer)) = take(rest) else {
        return;
    };
    let (Ok(issuer), Ok(cert)) = (CertInfo::parse(issuer), CertInfo::parse(cert)) else {
        return;
    };
    let parts = Issuer {
        subject_der: &issuer.subject_der,
        spki_der: &issuer.spki_der,
    };
    let when = cert.not_before + time::Duration::days(1);
    let _ = read_crl(answer, &cert, parts, when);
    let _ = read_ocsp(answer, &cert, parts, when);
    let _ = ocsp_request(&cert, parts);
}

/// An item, owned, to compare reads: frame number, time (its bits), link
/// type and bytes; a key log has number 0 (frames count from 1).
pub type OwnedItem = (u64, u64, u32, Vec<u8>);

/// Every item of `source` read `block` bytes at a time, owned, and how the
/// read ended (for the tests and the capture fuzz target, which compare
/// block sizes).
pub fn owned_items(
    source: &[u8],
    block: usize,
) -> (
    Vec<OwnedItem>,
    Result<ReadSummary, crate::input::capture::CaptureError>,
) {
    let mut items = Vec::new();
    let summary = crate::input::capture::read_capture_blocks(source, "capture", block, |item| {
        items.push(owned(item))
    });
    (items, summary)
}

/// `item` as an [`OwnedItem`].
pub fn owned(item: Item<'_>) -> OwnedItem {
    match item {
        Item::Frame {
            number,
            time,
            linktype,
            data,
        } => (number, time.to_bits(), linktype, data.to_vec()),
        Item::TlsKeys(text) => (0, 0, 0, text.as_bytes().to_vec()),
    }
}
