//! The JSON document: a contract for automation. Fields may be added; none renamed.

use serde::Serialize;
use time::OffsetDateTime;

use crate::core::analysis::Report;

/// The top-level document.
#[derive(Serialize)]
struct Document<'a> {
    edgetap: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    analysed_at: OffsetDateTime,
    worst: crate::core::analysis::Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    dns: Option<&'a crate::core::analysis::engine::DnsReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    capture: Option<&'a Vec<crate::core::capture::CaptureFileReport>>,
    handshakes: &'a [crate::core::analysis::HandshakeReport],
}

/// Write `report` as pretty JSON and a newline to stdout, streamed (a
/// capture of thousands of handshakes makes tens of megabytes of JSON: never
/// held in memory whole). A closed stdout ends the output quietly.
pub fn print(report: &Report, now: OffsetDateTime) {
    use std::io::Write as _;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let written = serde_json::to_writer_pretty(&mut out, &document(report, now))
        .map_err(std::io::Error::from)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    if let Err(e) = written
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        tracing::debug!(error = %e, "the JSON document could not be written whole");
    }
}

fn document(report: &Report, now: OffsetDateTime) -> Document<'_> {
    Document {
        edgetap: env!("CARGO_PKG_VERSION"),
        analysed_at: now,
        worst: report.worst(),
        dns: report.dns.as_ref(),
        capture: report.capture.as_ref(),
        handshakes: &report.handshakes,
    }
}

/// Render `report` as pretty JSON.
pub fn render(report: &Report, now: OffsetDateTime) -> String {
    // Serialising plain owned data cannot fail; fall back to an error object anyway.
    serde_json::to_string_pretty(&document(report, now))
        .unwrap_or_else(|e| format!("{{\"error\":\"cannot serialise report: {e}\"}}"))
}
