//! `edge.*`: what the MRA edge (Expressway-E) certificate needs beyond a name match.

use std::collections::BTreeMap;

use super::Handshake;
use crate::core::analysis::catalog as c;
use crate::core::analysis::finding::Finding;
use crate::core::observation::Service;

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

/// Which server a handshake reached: the host name, else the address.
fn server_of(hs: &Handshake<'_>) -> String {
    hs.obs
        .srv
        .as_ref()
        .map(|s| s.target.trim_end_matches('.').to_ascii_lowercase())
        .or_else(|| {
            hs.obs
                .endpoint
                .host
                .as_ref()
                .map(|h| h.to_ascii_lowercase())
        })
        .or_else(|| hs.obs.endpoint.ip.map(|ip| ip.to_string()))
        .unwrap_or_default()
}

/// The same key on different servers: one compromised peer exposes all.
pub fn check_shared_key(handshakes: &[Handshake<'_>], out: &mut [Vec<Finding>]) {
    let mut by_key: BTreeMap<&[u8], Vec<(usize, String)>> = BTreeMap::new();
    for (h, hs) in handshakes.iter().enumerate() {
        if let Some(leaf) = hs.leaf() {
            by_key
                .entry(leaf.spki_der.as_slice())
                .or_default()
                .push((h, server_of(hs)));
        }
    }
    for holders in by_key.values() {
        let mut servers: Vec<&str> = holders.iter().map(|(_, s)| s.as_str()).collect();
        servers.sort_unstable();
        servers.dedup();
        if servers.len() < 2 {
            continue;
        }
        for (h, server) in holders {
            let others: Vec<&str> = servers.iter().copied().filter(|s| s != server).collect();
            out[*h].push(
                Finding::new(
                    &c::EDGE_SHARED_KEY,
                    format!("{server} presents the same public key as {}", others.join(", ")),
                )
                .cert(handshakes[*h].cert_ref(0))
                .evidence("subjectPublicKeyInfo", Some("a key of this server's own".into()), Some(format!("shared with {}", others.join(", "))))
                .fix("generate a separate key and CSR on each cluster peer and have each certificate signed; a shared key lets one compromised peer expose all"),
            );
        }
    }
}

/// Cluster peers of one SRV set: CN = the cluster FQDN; SAN = the peer's FQDN and the cluster FQDN.
pub fn check_cluster_san(handshakes: &[Handshake<'_>], out: &mut [Vec<Finding>]) {
    let mut sets: BTreeMap<(String, Service), Vec<usize>> = BTreeMap::new();
    for (h, hs) in handshakes.iter().enumerate() {
        if let (Some(srv), Some(_)) = (&hs.obs.srv, hs.leaf())
            && srv.peers.len() >= 2
        {
            sets.entry((srv.name.clone(), hs.obs.service))
                .or_default()
                .push(h);
        }
    }
    for members in sets.values() {
        let mut cn_count: BTreeMap<String, usize> = BTreeMap::new();
        for &h in members {
            if let Some(cn) = handshakes[h].leaf().and_then(|l| l.common_names.first()) {
                *cn_count.entry(cn.to_ascii_lowercase()).or_default() += 1;
            }
        }
        let Some(cluster) = cn_count
            .iter()
            .max_by_key(|(_, n)| **n)
            .map(|(cn, _)| cn.clone())
        else {
            continue;
        };
        for &h in members {
            let hs = &handshakes[h];
            let Some(leaf) = hs.leaf() else { continue };
            let server = server_of(hs);
            let cn = leaf
                .common_names
                .first()
                .map(|c| c.to_ascii_lowercase())
                .unwrap_or_default();
            let has = |name: &str| {
                leaf.san_dns()
                    .any(|d| d.trim_end_matches('.').eq_ignore_ascii_case(name))
            };
            let mut problems = Vec::new();
            if cn != cluster {
                problems.push(format!(
                    "CN is {cn:?}, not the cluster FQDN {cluster} its peers use"
                ));
            }
            if !has(&server) {
                problems.push(format!("its own FQDN {server} is not a SAN"));
            }
            if !has(&cluster) {
                problems.push(format!("the cluster FQDN {cluster} is not a SAN"));
            }
            if problems.is_empty() {
                continue;
            }
            out[h].push(
                Finding::new(&c::EDGE_CLUSTER_SAN, format!("cluster peer {server}: {}", problems.join("; ")))
                    .cert(hs.cert_ref(0))
                    .evidence("subject CN / SAN", Some(format!("CN={cluster}; SAN {server}, {cluster}")), Some(format!("CN={cn}; SAN {}", leaf.san_dns().collect::<Vec<_>>().join(", "))))
                    .fix(format!("reissue the peer certificate with CN={cluster} and SANs {cluster} and {server} (plus the other required names)")),
            );
        }
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

    fn peer(target: &str, leaf_der: Vec<u8>, root: &Ca, peers: &[&str]) -> Case {
        let mut case = Case::new(vec![leaf_der], target)
            .public(vec![root.der()])
            .edge("example.com");
        case.srv = Some(crate::core::observation::SrvContext {
            name: "_collab-edge._tls.example.com".into(),
            target: target.into(),
            port: 8443,
            peers: peers.iter().map(|p| (*p).to_owned()).collect(),
        });
        case
    }

    #[test]
    fn shared_key_across_peers() {
        let root = root("Cluster Root");
        let key = rsa_key();
        let peers = ["expe1.example.com", "expe2.example.com"];
        let a = leaf_with_key(
            leaf_params(
                "vcse.example.com",
                &["vcse.example.com", "expe1.example.com", "expe2.example.com"],
            ),
            &root,
            &key,
        );
        let b = leaf_with_key(
            leaf_params(
                "vcse.example.com",
                &["vcse.example.com", "expe1.example.com", "expe2.example.com"],
            ),
            &root,
            &key,
        );
        let report = run_all(&[
            peer(peers[0], a.clone(), &root, &peers),
            peer(peers[1], b, &root, &peers),
        ]);
        for h in &report.handshakes {
            assert!(h.findings.iter().any(|f| f.rule.id == "edge.shared-key"));
        }
        // Different keys, or the same server twice (8443 and 5222), are fine.
        let c = leaf_with_key(
            leaf_params(
                "vcse.example.com",
                &["vcse.example.com", "expe1.example.com", "expe2.example.com"],
            ),
            &root,
            &rsa_key_other_than(&key),
        );
        assert_quiet(
            &run_all(&[
                peer(peers[0], a.clone(), &root, &peers),
                peer(peers[1], c, &root, &peers),
            ]),
            "edge.shared-key",
        );
        assert_quiet(
            &run_all(&[
                peer(peers[0], a.clone(), &root, &peers),
                peer(peers[0], a, &root, &peers),
            ]),
            "edge.shared-key",
        );
    }

    #[test]
    fn cluster_san_requires_cluster_cn_and_both_names() {
        let root = root("Cluster Root 2");
        let peers = ["expe1.example.com", "expe2.example.com"];
        let good = |me: &str| {
            leaf(
                leaf_params(
                    "vcse.example.com",
                    &["vcse.example.com", me, "collab-edge.example.com"],
                ),
                &root,
            )
        };
        let report = run_all(&[
            peer(peers[0], good(peers[0]), &root, &peers),
            peer(peers[1], good(peers[1]), &root, &peers),
        ]);
        assert_quiet(&report, "edge.cluster-san");
        let missing_self = leaf(
            leaf_params(
                "vcse.example.com",
                &["vcse.example.com", "collab-edge.example.com"],
            ),
            &root,
        );
        let report = run_all(&[
            peer(peers[0], missing_self, &root, &peers),
            peer(peers[1], good(peers[1]), &root, &peers),
        ]);
        assert_fires(&report, "edge.cluster-san");
        assert!(
            report.handshakes[0]
                .findings
                .iter()
                .any(|f| f.message.contains("expe1.example.com is not a SAN"))
        );
    }
}
