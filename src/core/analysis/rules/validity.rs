//! `validity.*`: dates of every certificate on the path, at the analysis time.

use time::Duration;
use time::macros::datetime;

use super::Scope;
use crate::core::analysis::catalog as c;
use crate::core::analysis::finding::{CertSource, Finding};
use crate::core::timestamp::rfc3339;

/// Check notBefore/notAfter of each certificate on the path.
pub fn check(s: &Scope<'_, '_>, out: &mut Vec<Finding>) {
    // Certificates state validity to the second (RFC 5280 4.1.2.5), and notAfter
    // is inclusive: compare in whole seconds, so a certificate is still valid
    // during the second its notAfter names.
    let now = s.hs.now.replace_nanosecond(0).unwrap_or(s.hs.now);
    let soon = Duration::days(s.hs.config.expiry_warn_days);
    for (node, cert) in s.path_certs() {
        let r = s.cert_ref(node);
        let when = |t: time::OffsetDateTime| t.date().to_string();
        if now > cert.not_after {
            out.push(
                Finding::new(
                    &c::VALIDITY_EXPIRED,
                    format!("{} expired on {}", cert.short_name(), when(cert.not_after)),
                )
                .cert(r.clone())
                .evidence("notAfter", Some(format!("after {}", now.date())), Some(rfc3339(cert.not_after)))
                .fix(format!("renew the certificate {} and install the new one (and its chain) on the server", cert.short_name())),
            );
        } else if now < cert.not_before {
            out.push(
                Finding::new(
                    &c::VALIDITY_NOT_YET_VALID,
                    format!("{} is not valid before {}", cert.short_name(), when(cert.not_before)),
                )
                .cert(r.clone())
                .evidence("notBefore", Some(format!("before {}", now.date())), Some(rfc3339(cert.not_before)))
                .fix("check the clock on the client and server (NTP); if the clocks are right, wait or reissue the certificate with a correct start date"),
            );
        } else if cert.not_after - now <= soon {
            out.push(
                Finding::new(
                    &c::VALIDITY_EXPIRES_SOON,
                    format!(
                        "{} expires on {}, in {} days",
                        cert.short_name(),
                        when(cert.not_after),
                        (cert.not_after - now).whole_days()
                    ),
                )
                .cert(r.clone())
                .evidence(
                    "notAfter",
                    Some(format!("more than {} days away", soon.whole_days())),
                    Some(rfc3339(cert.not_after)),
                )
                .fix(format!(
                    "renew {} before {}",
                    cert.short_name(),
                    when(cert.not_after)
                )),
            );
        }
        if r.source == CertSource::Presented && cert.not_after >= datetime!(2050-01-01 00:00 UTC) {
            out.push(
                Finding::new(
                    &c::VALIDITY_BEYOND_2050,
                    format!("{} is valid until {}, past 2050", cert.short_name(), when(cert.not_after)),
                )
                .cert(r)
                .evidence("notAfter", Some("before 2050-01-01".into()), Some(rfc3339(cert.not_after)))
                .fix("reissue the certificate with an expiry date before 2050; Expressway may mishandle later dates"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use time::macros::datetime;

    #[test]
    fn expired_and_not_yet_valid() {
        let (case, _, _) = good_edge();
        assert_quiet(&case.run(), "validity.expired");
        assert_quiet(&case.run(), "validity.not-yet-valid");
        let (case, _, _) = good_edge();
        let report = case.at(datetime!(2027-03-01 00:00 UTC)).run();
        assert_fires(&report, "validity.expired");
        let (case, _, _) = good_edge();
        let report = case.at(datetime!(2024-06-01 00:00 UTC)).run();
        assert_fires(&report, "validity.not-yet-valid");
    }

    #[test]
    fn expires_soon_within_thirty_days() {
        let (case, _, _) = good_edge();
        let report = case.at(datetime!(2026-12-15 00:00 UTC)).run();
        assert_fires(&report, "validity.expires-soon");
        assert_quiet(&report, "validity.expired");
        let (case, _, _) = good_edge();
        assert_quiet(&case.run(), "validity.expires-soon");
    }

    #[test]
    fn beyond_2050_only_on_presented_certificates() {
        let root = root("Long Root");
        let mut p = leaf_params("expe.example.com", &["expe.example.com"]);
        p.not_after = datetime!(2051-01-01 00:00 UTC);
        let long = leaf(p, &root);
        assert_fires(
            &Case::new(vec![long], "expe.example.com")
                .public(vec![root.der()])
                .run(),
            "validity.beyond-2050",
        );
        let (case, _, _) = good_edge();
        assert_quiet(&case.run(), "validity.beyond-2050");
    }

    #[test]
    fn evidence_writes_times_as_rfc3339() {
        let (case, _, _) = good_edge();
        let report = case.at(datetime!(2027-03-01 00:00 UTC)).run();
        let expired = report.handshakes[0]
            .findings
            .iter()
            .find(|f| f.rule.id == "validity.expired")
            .unwrap();
        let presented = expired.evidence.presented.as_deref().unwrap();
        assert!(
            presented.ends_with('Z') && presented.contains('T'),
            "{presented}"
        );
    }
}
