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

/// Render `report` as pretty JSON.
pub fn render(report: &Report, now: OffsetDateTime) -> String {
    let doc = Document {
        edgetap: env!("CARGO_PKG_VERSION"),
        analysed_at: now,
        worst: report.worst(),
        dns: report.dns.as_ref(),
        capture: report.capture.as_ref(),
        handshakes: &report.handshakes,
    };
    // Serialising plain owned data cannot fail; fall back to an error object anyway.
    serde_json::to_string_pretty(&doc)
        .unwrap_or_else(|e| format!("{{\"error\":\"cannot serialise report: {e}\"}}"))
}
