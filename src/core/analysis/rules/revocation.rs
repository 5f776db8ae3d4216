//! `revocation.*`: is there anywhere to check revocation at all (offline), and
//! what did the CRLs and OCSP responders say (`--online`, from the checks the
//! shell put on the observation)?

use super::Handshake;
use crate::core::analysis::catalog as c;
use crate::core::analysis::finding::Finding;

/// Jabber checks revocation only through an HTTP URL in CRL DP or AIA OCSP.
pub fn check(hs: &Handshake<'_>, out: &mut Vec<Finding>) {
    let Some(leaf) = hs.leaf() else { return };
    let http = |u: &&String| {
        let l = u.to_ascii_lowercase();
        l.starts_with("http://") || l.starts_with("https://")
    };
    if leaf.crl_urls.iter().any(|u| http(&u)) || leaf.ocsp_urls.iter().any(|u| http(&u)) {
        return;
    }
    let presented: Vec<String> = leaf
        .crl_urls
        .iter()
        .chain(&leaf.ocsp_urls)
        .cloned()
        .collect();
    out.push(
        Finding::new(
            &c::REVOCATION_NO_INFO,
            "the certificate carries no HTTP CRL or OCSP URL, so Jabber cannot check revocation",
        )
        .cert(hs.cert_ref(0))
        .evidence(
            "cRLDistributionPoints / authorityInfoAccess",
            Some("an http:// URL".into()),
            Some(if presented.is_empty() {
                "none".into()
            } else {
                presented.join(", ")
            }),
        )
        .fix(
            "have the CA include an HTTP CRL distribution point or OCSP URL that clients can reach",
        ),
    );
}

/// What the online look-ups said, per certificate: revoked by any source; or no
/// source gave an answer (each URL with why). One good answer is enough, as for
/// a client that tries OCSP, then the CRL.
pub fn check_online(hs: &Handshake<'_>, out: &mut Vec<Finding>) {
    use crate::core::observation::RevocationStatus as S;
    let checks = &hs.obs.revocation;
    let mut positions: Vec<usize> = checks.iter().map(|c| c.position).collect();
    positions.dedup();
    for position in positions {
        let here: Vec<_> = checks.iter().filter(|c| c.position == position).collect();
        let cert = hs
            .positions
            .iter()
            .position(|p| *p == position)
            .map(|i| hs.cert_ref(i));
        let subject = &here[0].subject;
        if let Some((check, at, reason)) = here.iter().find_map(|c| match &c.status {
            S::Revoked { at, reason } => Some((c, at, reason)),
            _ => None,
        }) {
            let reason = reason.as_deref().unwrap_or("no reason given");
            let at = crate::core::timestamp::rfc3339(*at);
            let mut finding = Finding::new(
                &c::REVOCATION_REVOKED,
                format!("{subject} is revoked: {} {} says so ({reason}, since {at})", check.method.label(), check.url),
            )
            .evidence(format!("{} {}", check.method.label(), check.url), Some("not revoked".into()), Some(format!("revoked {at} ({reason})")))
            .fix("replace the certificate: generate a new CSR, have it signed, and upload the new certificate (and its chain) to the server; clients refuse a revoked one");
            if let Some(cert) = cert.clone() {
                finding = finding.cert(cert);
            }
            out.push(finding);
            continue;
        }
        if here.iter().any(|c| c.status == S::Good) {
            continue;
        }
        let why: Vec<String> = here
            .iter()
            .map(|c| match &c.status {
                S::Unreachable { why } => format!("{} {}: {why}", c.method.label(), c.url),
                S::Unknown => format!(
                    "{} {}: the responder does not know this certificate",
                    c.method.label(),
                    c.url
                ),
                _ => String::new(),
            })
            .collect();
        let mut finding = Finding::new(
            &c::REVOCATION_UNREACHABLE,
            format!("no revocation source for {subject} answered: {}", why.join("; ")),
        )
        .evidence("cRLDistributionPoints / authorityInfoAccess OCSP", Some("a current, signed answer".into()), Some(why.join("; ")))
        .fix("make the CRL or OCSP URL reachable over HTTP from where the clients are (Jabber cannot connect to CUCM when it cannot check revocation, and does not say why), or have the certificate reissued with a URL they can reach");
        if let Some(cert) = cert {
            finding = finding.cert(cert);
        }
        out.push(finding);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;

    #[test]
    fn no_info_fires_without_http_urls() {
        let root = root("Revocation Root");
        let mut p = leaf_params("expe.example.com", &["expe.example.com"]);
        p.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
            uris: vec!["ldap://ldap.example.com/cn=crl".into()],
        }];
        let report = Case::new(vec![leaf(p, &root)], "expe.example.com")
            .public(vec![root.der()])
            .run();
        assert_fires(&report, "revocation.no-info");
        let (case, _, _) = good_edge();
        assert_quiet(&case.run(), "revocation.no-info");
    }

    mod online {
        use super::super::super::testkit::*;
        use crate::core::analysis::Profile;
        use crate::core::observation::{RevocationCheck, RevocationMethod, RevocationStatus as S};

        fn judged(statuses: Vec<S>) -> crate::core::analysis::Report {
            let (case, _, _) = good_edge();
            let mut obs = case.observation();
            obs.revocation = statuses
                .into_iter()
                .enumerate()
                .map(|(i, status)| RevocationCheck {
                    position: 0,
                    subject: "CN=expe.example.com".into(),
                    method: if i == 0 {
                        RevocationMethod::Ocsp
                    } else {
                        RevocationMethod::Crl
                    },
                    url: format!("http://pki.example.com/{i}"),
                    status,
                })
                .collect();
            case.engine().evaluate(&[obs], case.now)
        }

        fn down(why: &str) -> S {
            S::Unreachable { why: why.into() }
        }

        #[test]
        fn revoked_by_any_source_fails_everyone() {
            let at = time::macros::datetime!(2026-05-01 00:00 UTC);
            let report = judged(vec![
                S::Good,
                S::Revoked {
                    at,
                    reason: Some("Key Compromise".into()),
                },
            ]);
            assert_fires(&report, "revocation.revoked");
            assert_quiet(&report, "revocation.unreachable");
            for p in Profile::ALL {
                assert_eq!(report.handshakes[0].verdicts[&p].outcome.as_str(), "fail");
            }
        }

        #[test]
        fn one_good_answer_is_enough() {
            let report = judged(vec![down("connection refused"), S::Good]);
            assert_quiet(&report, "revocation.unreachable");
            assert_quiet(&report, "revocation.revoked");
        }

        #[test]
        fn no_answer_at_all_names_every_url() {
            let report = judged(vec![
                down("HTTP 503"),
                down("the CRL is stale (nextUpdate 2026-05-01)"),
            ]);
            assert_fires(&report, "revocation.unreachable");
            let f = report.handshakes[0]
                .findings
                .iter()
                .find(|f| f.rule.id == "revocation.unreachable")
                .expect("fired");
            assert!(
                f.message.contains("http://pki.example.com/0: HTTP 503"),
                "{}",
                f.message
            );
            assert!(f.message.contains("stale"), "{}", f.message);
            let v = &report.handshakes[0].verdicts;
            assert_eq!(v[&Profile::Jabber].outcome.as_str(), "fail");
            assert_eq!(v[&Profile::ExpresswayC].outcome.as_str(), "warn");
        }

        #[test]
        fn offline_says_nothing_online() {
            let report = judged(vec![]);
            assert_quiet(&report, "revocation.unreachable");
            assert_quiet(&report, "revocation.revoked");
        }
    }
}
