//! A case's expectations against the report its input produced: which
//! handshakes each `[[case.expect]]` selects, and every way they differ from
//! what it states, typed so that CI output, JSON and JUnit can say exactly what
//! changed.

use std::collections::BTreeSet;

use serde::Serialize;

use super::suite::{Case, Expect};
use crate::core::analysis::Report;
use crate::core::analysis::engine::HandshakeReport;

/// What kind of difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A profile's outcome is not the expected one.
    Outcome,
    /// An expected rule did not fire.
    MissingRule,
    /// A rule listed as absent fired.
    ExtraRule,
    /// The leaf certificate is not the pinned one.
    Fingerprint,
    /// No handshake matches the selectors.
    NoHandshake,
    /// Against the baseline: a certificate of the chain changed.
    DriftFingerprint,
    /// Against the baseline: a rule fires that did not.
    DriftRuleNew,
    /// Against the baseline: a rule that fired is gone.
    DriftRuleGone,
    /// Against the baseline: a profile's outcome changed.
    DriftOutcome,
    /// Against the baseline: a handshake is gone.
    DriftHandshakeGone,
    /// Against the baseline: a handshake is new.
    DriftHandshakeNew,
}

impl Kind {
    /// The kebab-case name, as in JSON and JUnit.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Outcome => "outcome",
            Kind::MissingRule => "missing-rule",
            Kind::ExtraRule => "extra-rule",
            Kind::Fingerprint => "fingerprint",
            Kind::NoHandshake => "no-handshake",
            Kind::DriftFingerprint => "drift-fingerprint",
            Kind::DriftRuleNew => "drift-rule-new",
            Kind::DriftRuleGone => "drift-rule-gone",
            Kind::DriftOutcome => "drift-outcome",
            Kind::DriftHandshakeGone => "drift-handshake-gone",
            Kind::DriftHandshakeNew => "drift-handshake-new",
        }
    }

    /// Against the baseline rather than the suite's expectations.
    pub fn is_drift(self) -> bool {
        self >= Kind::DriftFingerprint
    }
}

/// One difference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    /// What kind.
    pub kind: Kind,
    /// The suite line of the expectation, for expectation failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The handshake (`host:port` as reported).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handshake: Option<String>,
    /// What was expected (or what the baseline had).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// What was found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub got: Option<String>,
    /// The difference in words.
    pub message: String,
}

/// How a handshake is named in reports and baselines: `host:port`, the host
/// alone for chains from files, else where it was found.
pub fn label(h: &HandshakeReport) -> String {
    let e = &h.observation.endpoint;
    let host = e
        .host
        .clone()
        .or_else(|| e.ip.map(|ip| ip.to_string()))
        .unwrap_or_else(|| h.observation.origin.locator.clone());
    match e.port {
        Some(port) if host.contains(':') && !host.starts_with('[') => format!("[{host}]:{port}"),
        Some(port) => format!("{host}:{port}"),
        None => host,
    }
}

fn selects(e: &Expect, index: usize, h: &HandshakeReport) -> bool {
    e.endpoint
        .as_ref()
        .is_none_or(|want| want.eq_ignore_ascii_case(&label(h)))
        && e.service.is_none_or(|s| s == h.observation.service)
        && e.index.is_none_or(|i| i == index)
}

/// Every way the case's handshakes differ from its expectations.
pub fn check(case: &Case, report: &Report) -> Vec<Mismatch> {
    let mut out = Vec::new();
    for e in &case.expects {
        let selected: Vec<&HandshakeReport> = report
            .handshakes
            .iter()
            .enumerate()
            .filter(|(i, h)| selects(e, *i, h))
            .map(|(_, h)| h)
            .collect();
        if selected.is_empty() {
            let mut want = Vec::new();
            if let Some(ep) = &e.endpoint {
                want.push(format!("endpoint {ep}"));
            }
            if let Some(s) = e.service {
                want.push(format!("service {}", s.as_str()));
            }
            if let Some(i) = e.index {
                want.push(format!("index {i}"));
            }
            let seen: Vec<String> = report.handshakes.iter().map(label).collect();
            out.push(Mismatch {
                kind: Kind::NoHandshake,
                line: Some(e.line),
                handshake: None,
                expected: Some(if want.is_empty() {
                    "any handshake".into()
                } else {
                    want.join(", ")
                }),
                got: Some(if seen.is_empty() {
                    "no handshake".into()
                } else {
                    seen.join(", ")
                }),
                message: "no handshake matches this expectation's selectors".into(),
            });
            continue;
        }
        for h in selected {
            expect_one(e, h, &mut out);
        }
    }
    out
}

fn expect_one(e: &Expect, h: &HandshakeReport, out: &mut Vec<Mismatch>) {
    let at = label(h);
    let mismatch = |kind, expected: String, got: String, message: String| Mismatch {
        kind,
        line: Some(e.line),
        handshake: Some(at.clone()),
        expected: Some(expected),
        got: Some(got),
        message,
    };
    for (profile, want) in &e.outcomes {
        let got = h.verdicts.get(profile).map_or("n/a".to_owned(), |v| {
            if v.applicable {
                v.outcome.as_str().to_owned()
            } else {
                "n/a".to_owned()
            }
        });
        let want = want.map_or("n/a", |o| o.as_str());
        if got != want {
            let why = h
                .verdicts
                .get(profile)
                .map(|v| {
                    if let Some(n) = &v.not_judged {
                        format!(" (not judged: {n})")
                    } else if v.rules.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", v.rules.join(", "))
                    }
                })
                .unwrap_or_default();
            out.push(mismatch(
                Kind::Outcome,
                want.to_owned(),
                got.clone(),
                format!("{} expected {want}, got {got}{why}", profile.as_str()),
            ));
        }
    }
    let fired: BTreeSet<&str> = h.findings.iter().map(|f| f.rule.id).collect();
    for rule in &e.rules {
        if !fired.contains(rule) {
            out.push(mismatch(
                Kind::MissingRule,
                (*rule).to_owned(),
                fired.iter().copied().collect::<Vec<_>>().join(", "),
                format!("rule {rule} expected, did not fire"),
            ));
        }
    }
    for rule in &e.absent {
        if fired.contains(rule) {
            out.push(mismatch(
                Kind::ExtraRule,
                format!("no {rule}"),
                (*rule).to_owned(),
                format!("rule {rule} fired, expected absent"),
            ));
        }
    }
    if let Some(pin) = &e.leaf_sha256 {
        let leaf = h.chain.first().map(|c| c.cert.sha256.clone());
        if leaf.as_deref() != Some(pin.as_str()) {
            let got = leaf.unwrap_or_else(|| "no certificate".into());
            out.push(mismatch(
                Kind::Fingerprint,
                pin.clone(),
                got.clone(),
                format!("leaf certificate {got}, pinned {pin}"),
            ));
        }
    }
}
