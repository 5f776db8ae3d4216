//! `revocation.*` decidable offline: is there anywhere to check revocation at all?

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
}
