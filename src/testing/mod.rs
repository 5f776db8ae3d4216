//! Scaffolding for tests, fuzzing and benchmarks, kept out of the documented
//! API: the fuzz targets' entry points ([`fuzz`]) and TLS records built rather
//! than parsed ([`tls_records`]), the JSON writer's reference
//! ([`json_reference`]). Nothing edgetap runs for a user goes through
//! here.

pub mod fuzz;

pub use crate::core::tls::build as tls_records;

/// `report` as serde_json's pretty printer writes it in one go: the reference
/// the JSON writer (`sink::json::write`) is held to, byte for byte, and
/// measured against (`benches/json.rs`).
pub fn json_reference(report: &crate::core::analysis::Report, now: time::OffsetDateTime) -> String {
    crate::sink::json::render(report, now)
}

/// The sample deployment's handshakes (`inspect --sample`) judged at `now`
/// and repeated to `n`: a report with the repeats of a real capture, for the
/// JSON writer's tests and benchmark.
pub fn sample_report(n: usize, now: time::OffsetDateTime) -> crate::core::analysis::Report {
    let engine = crate::core::analysis::Engine::new(
        crate::core::x509::TrustStore::default(),
        crate::cmd::inspect::sample_root().unwrap_or_default(),
        crate::core::analysis::rules::DetectorConfig::default(),
    );
    let observations = crate::cmd::inspect::sample_observations(now).unwrap_or_default();
    let sample = engine.evaluate(&observations, now);
    let mut report = sample.clone();
    report.handshakes = sample.handshakes.iter().cycle().take(n).cloned().collect();
    report
}
