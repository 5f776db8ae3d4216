//! Baselines: what a run saw per case and handshake (chain fingerprints, rules
//! that fired, outcomes), recorded once and compared with later runs, so that
//! a renewed certificate, a new or vanished finding, a changed outcome or a
//! handshake gone or new is reported as drift, apart from expectation
//! failures. A baseline belongs to one set of suite files and one edgetap
//! version; another is refused.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::check::{Kind, Mismatch, label};
use crate::core::analysis::Report;
use crate::core::analysis::profile::Profile;

/// The baseline file's format version.
pub const FORMAT: u32 = 1;

/// One handshake as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// `host:port` as reported.
    pub endpoint: String,
    /// The service.
    pub service: String,
    /// SHA-256 of each presented certificate, leaf first.
    pub chain: Vec<String>,
    /// Rules that fired, sorted.
    pub rules: Vec<String>,
    /// Outcome per profile ("n/a" where the profile does not apply).
    pub outcomes: BTreeMap<String, String>,
}

/// A recorded run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baseline {
    /// [`FORMAT`].
    pub format: u32,
    /// The edgetap version that recorded it.
    pub edgetap: String,
    /// The suite files it covers, by file name, sorted.
    pub suites: Vec<String>,
    /// Per suite file, per case, the handshakes in report order.
    pub cases: BTreeMap<String, BTreeMap<String, Vec<Seen>>>,
}

/// What a report shows, as a baseline keeps it.
pub fn seen(report: &Report) -> Vec<Seen> {
    report
        .handshakes
        .iter()
        .map(|h| Seen {
            endpoint: label(h),
            service: h.observation.service.as_str().to_owned(),
            chain: h.chain.iter().map(|c| c.cert.sha256.clone()).collect(),
            rules: h
                .findings
                .iter()
                .map(|f| f.rule.id.to_owned())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            outcomes: Profile::ALL
                .iter()
                .filter_map(|p| {
                    let v = h.verdicts.get(p)?;
                    let o = if v.applicable {
                        v.outcome.as_str()
                    } else {
                        "n/a"
                    };
                    Some((p.as_str().to_owned(), o.to_owned()))
                })
                .collect(),
        })
        .collect()
}

impl Baseline {
    /// An empty baseline for `suites` recorded by `version`.
    pub fn new(suites: Vec<String>, version: &str) -> Baseline {
        Baseline {
            format: FORMAT,
            edgetap: version.to_owned(),
            suites,
            cases: BTreeMap::new(),
        }
    }

    /// Why this baseline cannot judge a run of `suites` by `version`, if it cannot.
    pub fn refuse(&self, suites: &[String], version: &str) -> Option<String> {
        if self.format != FORMAT {
            return Some(format!(
                "baseline format {} is not the {FORMAT} this edgetap reads; record it again with --record",
                self.format
            ));
        }
        if self.edgetap != version {
            return Some(format!(
                "the baseline was recorded by edgetap {}, this is {version}: rules and verdicts may differ between versions; record it again with --record",
                self.edgetap
            ));
        }
        if self.suites != suites {
            return Some(format!(
                "the baseline covers the suites {}, this run {}: record one per set of suites",
                self.suites.join(", "),
                suites.join(", ")
            ));
        }
        None
    }

    /// Drift of one case's handshakes from what was recorded for it. A case
    /// the baseline does not know has no drift (it is new to the suite).
    pub fn drift(&self, suite: &str, case: &str, now: &[Seen]) -> Vec<Mismatch> {
        let Some(before) = self.cases.get(suite).and_then(|c| c.get(case)) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let key = |s: &Seen| (s.endpoint.clone(), s.service.clone());
        // Pair handshakes by endpoint and service, in order.
        let mut unmatched: Vec<&Seen> = now.iter().collect();
        for old in before {
            let Some(pos) = unmatched.iter().position(|n| key(n) == key(old)) else {
                out.push(drift(
                    Kind::DriftHandshakeGone,
                    old,
                    Some(old.endpoint.clone()),
                    None,
                    format!(
                        "{} ({}) was in the baseline, not in this run",
                        old.endpoint, old.service
                    ),
                ));
                continue;
            };
            let new = unmatched.remove(pos);
            if new.chain != old.chain {
                let short = |c: &[String]| {
                    c.iter()
                        .map(|s| s.get(..16).unwrap_or(s).to_owned())
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                out.push(drift(
                    Kind::DriftFingerprint,
                    old,
                    Some(short(&old.chain)),
                    Some(short(&new.chain)),
                    if new.chain.first() != old.chain.first() {
                        "the server presents another certificate (renewed or replaced)".to_owned()
                    } else {
                        "the server presents the same leaf with another chain".to_owned()
                    },
                ));
            }
            for rule in new.rules.iter().filter(|r| !old.rules.contains(r)) {
                out.push(drift(
                    Kind::DriftRuleNew,
                    old,
                    None,
                    Some(rule.clone()),
                    format!("rule {rule} fires now, not in the baseline"),
                ));
            }
            for rule in old.rules.iter().filter(|r| !new.rules.contains(r)) {
                out.push(drift(
                    Kind::DriftRuleGone,
                    old,
                    Some(rule.clone()),
                    None,
                    format!("rule {rule} fired in the baseline, not now"),
                ));
            }
            for (profile, was) in &old.outcomes {
                let is = new.outcomes.get(profile).cloned().unwrap_or_default();
                if &is != was {
                    out.push(drift(
                        Kind::DriftOutcome,
                        old,
                        Some(was.clone()),
                        Some(is.clone()),
                        format!("{profile} was {was}, now {is}"),
                    ));
                }
            }
        }
        for new in unmatched {
            out.push(drift(
                Kind::DriftHandshakeNew,
                new,
                None,
                Some(new.endpoint.clone()),
                format!(
                    "{} ({}) is new since the baseline",
                    new.endpoint, new.service
                ),
            ));
        }
        out
    }
}

fn drift(
    kind: Kind,
    at: &Seen,
    expected: Option<String>,
    got: Option<String>,
    message: String,
) -> Mismatch {
    Mismatch {
        kind,
        line: None,
        handshake: Some(at.endpoint.clone()),
        expected,
        got,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(endpoint: &str, leaf: &str, rules: &[&str], jabber: &str) -> Seen {
        Seen {
            endpoint: endpoint.into(),
            service: "http".into(),
            chain: vec![leaf.into(), "inter".into()],
            rules: rules.iter().map(|r| (*r).to_owned()).collect(),
            outcomes: [("jabber".to_owned(), jabber.to_owned())].into(),
        }
    }

    #[test]
    fn every_kind_of_drift_and_none_when_unchanged() {
        let before = vec![
            seen("a:8443", "leaf1", &["chain.missing-intermediate"], "prompt"),
            seen("b:8443", "leafb", &[], "ok"),
        ];
        let mut base = Baseline::new(vec!["s.toml".into()], "1.0");
        base.cases
            .entry("s.toml".into())
            .or_default()
            .insert("edge".into(), before.clone());
        assert!(base.drift("s.toml", "edge", &before).is_empty());
        let now = vec![
            seen("a:8443", "leaf2", &["identity.mismatch"], "fail"),
            seen("c:8443", "leafc", &[], "ok"),
        ];
        let kinds: Vec<Kind> = base
            .drift("s.toml", "edge", &now)
            .iter()
            .map(|m| m.kind)
            .collect();
        assert_eq!(
            kinds,
            [
                Kind::DriftFingerprint,
                Kind::DriftRuleNew,
                Kind::DriftRuleGone,
                Kind::DriftOutcome,
                Kind::DriftHandshakeGone,
                Kind::DriftHandshakeNew
            ]
        );
        assert!(base.drift("s.toml", "new case", &now).is_empty());
    }

    #[test]
    fn another_suite_or_version_is_refused() {
        let base = Baseline::new(vec!["s.toml".into()], "1.0");
        assert!(base.refuse(&["s.toml".into()], "1.0").is_none());
        assert!(
            base.refuse(&["s.toml".into()], "1.1")
                .unwrap()
                .contains("recorded by edgetap 1.0")
        );
        assert!(
            base.refuse(&["t.toml".into()], "1.0")
                .unwrap()
                .contains("covers the suites s.toml")
        );
    }
}
