//! The JSON document: a contract for automation. Fields may be added; none renamed.

use std::io::Write;

use serde::Serialize;
use time::OffsetDateTime;

use crate::core::analysis::{HandshakeReport, Report};

/// The top-level document.
#[derive(Serialize)]
struct Document<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    handshakes: &'a [HandshakeReport],
}

/// The document's fields before the handshakes, in order.
#[derive(Serialize)]
struct Head<'a> {
    edgetap: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    analysed_at: OffsetDateTime,
    worst: crate::core::analysis::Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    dns: Option<&'a crate::core::analysis::engine::DnsReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    capture: Option<&'a Vec<crate::core::capture::CaptureFileReport>>,
}

/// Write `report` as pretty JSON and a newline to stdout, streamed (a
/// capture of thousands of handshakes makes tens of megabytes of JSON: never
/// held in memory whole). A closed stdout ends the output quietly.
pub fn print(report: &Report, now: OffsetDateTime) {
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let written = write_document(&mut out, report, now, cores())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    if let Err(e) = written
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        tracing::debug!(error = %e, "the JSON document could not be written whole");
    }
}

/// Render `report` as pretty JSON.
pub fn render(report: &Report, now: OffsetDateTime) -> String {
    // Serialising plain owned data cannot fail; fall back to an error object anyway.
    serde_json::to_string_pretty(&Document {
        head: head(report, now),
        handshakes: &report.handshakes,
    })
    .unwrap_or_else(|e| format!("{{\"error\":\"cannot serialise report: {e}\"}}"))
}

fn head(report: &Report, now: OffsetDateTime) -> Head<'_> {
    Head {
        edgetap: env!("CARGO_PKG_VERSION"),
        analysed_at: now,
        worst: report.worst(),
        dns: report.dns.as_ref(),
        capture: report.capture.as_ref(),
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Handshakes serialised together on `workers` threads, then written in order.
const WINDOW: usize = 256;

/// The document [`render`] gives, byte for byte, written to `out` with the
/// handshakes serialised on `workers` threads: a capture's thousands of
/// handshakes took a third of `replay`'s time on one core. serde_json has no
/// parallel serialiser, and a raw fragment (`RawValue`) is parsed again when
/// made, so the document's last field is written here: the head as serde_json
/// prints it, then each handshake printed apart with its lines moved to their
/// depth (JSON strings hold no raw newline, so every newline starts a line).
fn write_document(
    out: &mut impl Write,
    report: &Report,
    now: OffsetDateTime,
    workers: usize,
) -> std::io::Result<()> {
    let mut head_text = serde_json::to_vec_pretty(&head(report, now))?;
    // `{ ... \n}`: reopen the object after its last field.
    if !head_text.ends_with(b"\n}") {
        return Err(std::io::Error::other("unexpected JSON head"));
    }
    head_text.truncate(head_text.len() - 2);
    out.write_all(&head_text)?;
    out.write_all(b",\n  \"handshakes\": [")?;
    let handshakes = &report.handshakes;
    if handshakes.is_empty() {
        return out.write_all(b"]\n}");
    }
    let mut first = true;
    for window in handshakes.chunks(WINDOW) {
        let per = window.len().div_ceil(workers.max(1));
        let parts: Vec<std::io::Result<Vec<u8>>> = if workers > 1 && window.len() > 1 {
            std::thread::scope(|scope| {
                let running: Vec<_> = window
                    .chunks(per)
                    .map(|chunk| {
                        scope.spawn(move || {
                            crate::threads::started();
                            elements(chunk)
                        })
                    })
                    .collect();
                running
                    .into_iter()
                    .map(|r| {
                        r.join().unwrap_or_else(|_| {
                            Err(std::io::Error::other("a JSON writer thread failed"))
                        })
                    })
                    .collect()
            })
        } else {
            vec![elements(window)]
        };
        for part in parts {
            let part = part?;
            // Each part starts with its elements' separator, a comma, which
            // the document's first element goes without.
            out.write_all(if first { &part[1..] } else { &part })?;
            first = false;
        }
    }
    out.write_all(b"\n  ]\n}")
}

/// `,\n    {element}` for each handshake, as serde_json prints array
/// elements at depth two.
fn elements(chunk: &[HandshakeReport]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut one = Vec::with_capacity(16 * 1024);
    for (i, h) in chunk.iter().enumerate() {
        one.clear();
        serde_json::to_writer_pretty(&mut one, h)?;
        out.extend_from_slice(b",\n    ");
        let mut from = 0;
        for nl in memchr::memchr_iter(b'\n', &one) {
            out.extend_from_slice(&one[from..=nl]);
            out.extend_from_slice(b"    ");
            from = nl + 1;
        }
        out.extend_from_slice(&one[from..]);
        if i == 0 {
            // Room for the rest at the first one's size and an eighth, so the
            // part is not copied as it grows.
            out.reserve((out.len() + out.len() / 8) * chunk.len());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(report: &Report, workers: usize) -> String {
        let mut out = Vec::new();
        write_document(&mut out, report, OffsetDateTime::UNIX_EPOCH, workers).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// The sample's handshakes, repeated to `n`.
    fn report_of(n: usize) -> Report {
        let at = OffsetDateTime::UNIX_EPOCH;
        let engine = crate::core::analysis::Engine::new(
            crate::core::x509::TrustStore::default(),
            crate::cmd::inspect::sample_root().unwrap(),
            crate::core::analysis::rules::DetectorConfig::default(),
        );
        let sample = engine.evaluate(&crate::cmd::inspect::sample_observations(at).unwrap(), at);
        let mut report = sample.clone();
        report.handshakes = sample.handshakes.iter().cycle().take(n).cloned().collect();
        report
    }

    #[test]
    fn written_in_parallel_is_byte_for_byte_the_pretty_document() {
        for n in [0, 1, 2, 5, WINDOW - 1, WINDOW, WINDOW + 3, 2 * WINDOW + 1] {
            let report = report_of(n);
            let expected = render(&report, OffsetDateTime::UNIX_EPOCH);
            for workers in [1, 2, 3, 8] {
                assert_eq!(
                    written(&report, workers),
                    expected,
                    "{n} handshakes, {workers} threads"
                );
            }
        }
    }
}
