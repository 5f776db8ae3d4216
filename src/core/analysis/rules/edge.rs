//! `edge.*`: what the MRA edge (Expressway-E) certificate needs beyond a name match.

use super::Handshake;
use crate::core::analysis::catalog as c;
use crate::core::analysis::finding::Finding;

/// Expressway reads at most this many characters of SAN text.
pub const SAN_TEXT_LIMIT: usize = 999;

/// Edge-domain SAN and SAN length.
pub fn check(hs: &Handshake<'_>, out: &mut Vec<Finding>) {
    let Some(leaf) = hs.leaf() else { return };
    if let Some(domain) = &hs.obs.edge_domain {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let collab = format!("collab-edge.{domain}");
        let has = |want: &str| {
            leaf.san_dns()
                .any(|d| d.trim_end_matches('.').eq_ignore_ascii_case(want))
        };
        if !has(&domain) && !has(&collab) {
            out.push(
                Finding::new(
                    &c::EDGE_DOMAIN_SAN_MISSING,
                    format!("the edge certificate has neither {domain} nor {collab} as a SAN"),
                )
                .cert(hs.cert_ref(0))
                .evidence("SAN dNSName", Some(format!("{domain} or {collab}")), Some(leaf.san_dns().collect::<Vec<_>>().join(", ")))
                .fix(format!(
                    "add {collab} (or {domain}) as a SAN on the Expressway-E certificate; phones and TelePresence endpoints cannot register over MRA without it and Jabber prompts"
                )),
            );
        }
    }

    let text = leaf.san_text();
    if text.chars().count() > SAN_TEXT_LIMIT {
        // Walk the entries as Expressway does and list those that end past the limit.
        let mut used = 0usize;
        let mut lost = Vec::new();
        for entry in leaf.san.iter().flatten() {
            let entry_text = entry.as_text();
            let start = if used == 0 { 0 } else { used + 2 };
            let end = start + entry_text.chars().count();
            if end > SAN_TEXT_LIMIT {
                lost.push(entry_text);
            }
            used = end;
        }
        out.push(
            Finding::new(
                &c::EDGE_SAN_OVER_999,
                format!(
                    "the SAN is {} characters long; Expressway ignores everything after {SAN_TEXT_LIMIT}: {}",
                    text.chars().count(),
                    lost.join(", ")
                ),
            )
            .cert(hs.cert_ref(0))
            .evidence("SAN length", Some(format!("at most {SAN_TEXT_LIMIT} characters")), Some(format!("{} characters", text.chars().count())))
            .fix("shorten the SAN list (drop unused names, or split services across certificates) so the names clients need fit in the first 999 characters"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::core::analysis::profile::Profile;

    #[test]
    fn domain_san_missing_fires_without_either_name() {
        let root = root("Edge Root");
        let bare = leaf(
            leaf_params("expe.example.com", &["expe.example.com"]),
            &root,
        );
        let report = Case::new(vec![bare.clone()], "expe.example.com")
            .public(vec![root.der()])
            .edge("example.com")
            .run();
        assert_fires(&report, "edge.domain-san-missing");
        let v = &report.handshakes[0].verdicts;
        assert_eq!(v[&Profile::Jabber].outcome.as_str(), "prompt");
        assert_eq!(v[&Profile::TcEndpoint].outcome.as_str(), "fail");
        assert_eq!(v[&Profile::ExpresswayC].outcome.as_str(), "ok");
        // Not an edge lookup: nothing to require.
        assert_quiet(
            &Case::new(vec![bare], "expe.example.com")
                .public(vec![root.der()])
                .run(),
            "edge.domain-san-missing",
        );
    }

    #[test]
    fn domain_san_either_name_is_enough() {
        let (case, _, _) = good_edge();
        assert_quiet(&case.run(), "edge.domain-san-missing");
        let root = root("Edge Root 2");
        let base = leaf(
            leaf_params("expe.example.com", &["expe.example.com", "example.com"]),
            &root,
        );
        assert_quiet(
            &Case::new(vec![base], "expe.example.com")
                .public(vec![root.der()])
                .edge("example.com")
                .run(),
            "edge.domain-san-missing",
        );
    }

    #[test]
    fn san_over_999_lists_lost_names() {
        let root = root("Long SAN Root");
        let names: Vec<String> = (0..60)
            .map(|i| format!("peer{i:02}.cluster.example.com"))
            .collect();
        let refs: Vec<&str> = std::iter::once("expe.example.com")
            .chain(names.iter().map(String::as_str))
            .collect();
        let long = leaf(leaf_params("expe.example.com", &refs), &root);
        let report = Case::new(vec![long], "expe.example.com")
            .public(vec![root.der()])
            .run();
        assert_fires(&report, "edge.san-over-999");
        let f = report.handshakes[0]
            .findings
            .iter()
            .find(|f| f.rule.id == "edge.san-over-999")
            .unwrap();
        assert!(
            f.message.contains("peer59.cluster.example.com"),
            "{}",
            f.message
        );
        assert!(
            !f.message.contains("expe.example.com,"),
            "first name is kept: {}",
            f.message
        );
        let (case, _, _) = good_edge();
        assert_quiet(&case.run(), "edge.san-over-999");
    }
}
