//! `trust.*`: conflicts between certificates seen across handshakes.

use std::collections::BTreeMap;

use super::Handshake;
use crate::core::analysis::catalog as c;
use crate::core::analysis::finding::Finding;
use crate::core::x509::path::is_self_signed;

/// Two different self-signed certificates with the same CN: Expressway-C stops at
/// the first trust-list entry whose subject matches, so only one can be trusted.
pub fn check(handshakes: &[Handshake<'_>], out: &mut [Vec<Finding>]) {
    // CN (lowercase) -> distinct (sha256, handshake index, chain index)
    let mut by_cn: BTreeMap<String, Vec<(String, usize, usize)>> = BTreeMap::new();
    for (h, hs) in handshakes.iter().enumerate() {
        for (i, cert) in hs.chain.iter().enumerate() {
            if !is_self_signed(cert) {
                continue;
            }
            for cn in &cert.common_names {
                let seen = by_cn.entry(cn.to_ascii_lowercase()).or_default();
                if !seen
                    .iter()
                    .any(|(sha, hh, _)| *sha == cert.sha256 && *hh == h)
                {
                    seen.push((cert.sha256.clone(), h, i));
                }
            }
        }
    }
    for (cn, seen) in by_cn {
        let mut distinct: Vec<&str> = seen.iter().map(|(s, _, _)| s.as_str()).collect();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() < 2 {
            continue;
        }
        for (sha, h, i) in &seen {
            let others: Vec<String> = seen
                .iter()
                .filter(|(s, _, _)| s != sha)
                .map(|(s, hh, _)| format!("{} (handshake {})", &s[..16], hh + 1))
                .collect();
            let hs = &handshakes[*h];
            out[*h].push(
                Finding::new(
                    &c::TRUST_DUPLICATE_SELF_SIGNED_CN,
                    format!("another self-signed certificate also has CN {cn}; Expressway-C can trust only one of them"),
                )
                .cert(hs.cert_ref(*i))
                .evidence("subject CN", Some("one self-signed certificate per CN".into()), Some(format!("also {}", others.join(", "))))
                .fix("sign the CUCM / IM and Presence certificates (tomcat, CallManager, cup-xmpp) with a CA and trust that CA alone on Expressway-C"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::core::analysis::Profile;

    #[test]
    fn duplicate_self_signed_cn_across_services() {
        let tomcat = self_signed_leaf(leaf_params("cucm.example.com", &["cucm.example.com"]));
        let callmanager = self_signed_leaf(leaf_params("cucm.example.com", &["cucm.example.com"]));
        let report = run_all(&[
            Case::new(vec![tomcat.clone()], "cucm.example.com"),
            Case::new(vec![callmanager], "cucm.example.com"),
        ]);
        for h in &report.handshakes {
            assert!(
                h.findings
                    .iter()
                    .any(|f| f.rule.id == "trust.duplicate-self-signed-cn")
            );
            assert_eq!(h.verdicts[&Profile::ExpresswayC].outcome.as_str(), "fail");
        }
        // The same certificate seen twice is no conflict.
        let same = run_all(&[
            Case::new(vec![tomcat.clone()], "cucm.example.com"),
            Case::new(vec![tomcat], "cucm.example.com"),
        ]);
        assert_quiet(&same, "trust.duplicate-self-signed-cn");
    }
}
