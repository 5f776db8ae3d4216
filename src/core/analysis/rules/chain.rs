//! `chain.*`: is there a path from the leaf to something the client trusts, and did
//! the server send what it should, in the right order?

use super::{Handshake, Scope};
use crate::core::analysis::catalog as c;
use crate::core::analysis::finding::Finding;
use crate::core::observation::ReferenceIdentity;
use crate::core::x509::names::dns_within;
use crate::core::x509::signature::SigCheck;
use crate::core::x509::{CertInfo, PathEnd, PathNode};

/// Presented-chain checks that need no trust store: undecodable and duplicate certificates.
pub fn check_presented(hs: &Handshake<'_>, out: &mut Vec<Finding>) {
    for (position, reason) in &hs.malformed {
        out.push(
            Finding::new(
                &c::CHAIN_MALFORMED_CERTIFICATE,
                format!("certificate #{position} as sent cannot be decoded: {reason}"),
            )
            .evidence("certificate", Some("DER X.509 certificate".into()), Some(reason.clone()))
            .fix("re-export the certificate chain from the CA and upload it again; clients reject a chain with an undecodable certificate"),
        );
    }
    for (i, cert) in hs.chain.iter().enumerate() {
        if let Some(first) = hs.chain[..i].iter().position(|c| c.sha256 == cert.sha256) {
            out.push(
                Finding::new(
                    &c::CHAIN_DUPLICATE_CERT,
                    format!(
                        "certificate #{} ({}) is sent again as #{}",
                        hs.positions[first],
                        cert.short_name(),
                        hs.positions[i]
                    ),
                )
                .cert(hs.cert_ref(i))
                .evidence(
                    "chain",
                    Some("each certificate once".into()),
                    Some(format!("{} copies", 2)),
                )
                .fix("remove the duplicate from the server's certificate chain"),
            );
        }
    }
}

/// Where the path ends, per trust store: a self-signed leaf, an untrusted root,
/// or an issuer that was neither sent nor trusted.
pub fn check_path_end(s: &Scope<'_, '_>, out: &mut Vec<Finding>) {
    let path = s.path;
    let leaf = &s.hs.chain[0];
    let leaf_ref = s.hs.cert_ref(0);

    match &path.end {
        PathEnd::UntrustedRoot if path.nodes.len() == 1 => out.push(
            Finding::new(
                &c::CHAIN_SELF_SIGNED,
                format!("the server certificate {} is self-signed and no trust store holds it", leaf.short_name()),
            )
            .cert(leaf_ref.clone())
            .evidence("issuer", Some("a CA the client trusts".into()), Some(format!("{} (itself)", leaf.issuer)))
            .fix("have the certificate signed by a CA (a public CA for phones and TelePresence endpoints over MRA), or for Jabber add this certificate to the clients' enterprise trust store"),
        ),
        PathEnd::UntrustedRoot => {
            let root_node = *path.nodes.last().unwrap_or(&PathNode::Presented(0));
            let root = s.cert_ref(root_node);
            out.push(
                Finding::new(
                    &c::CHAIN_UNTRUSTED_ROOT,
                    format!("the chain ends at root {} which this client does not trust", root.subject),
                )
                .cert(root.clone())
                .evidence("root", Some("a root in the client's trust store".into()), Some(root.subject.clone()))
                .fix(format!(
                    "use a certificate from a public CA (7800/8800 phones and TelePresence endpoints cannot add CAs), or deploy root {} to Jabber clients and to the Expressway-C trusted CA list",
                    root.subject
                )),
            );
        }
        PathEnd::MissingIssuer { issuer } => {
            let last = *path.nodes.last().unwrap_or(&PathNode::Presented(0));
            let cert = s.cert_ref(last);
            let issuer_der = s.cert(last).map(|c| c.issuer_der.clone()).unwrap_or_default();
            let elsewhere = s.known.anchors.iter().find(|a| a.subject_der == issuer_der);
            let finding = match elsewhere {
                // Another profile's store has it: this client simply cannot trust that CA.
                Some(anchor) => Finding::new(
                    &c::CHAIN_UNTRUSTED_ROOT,
                    format!("the chain ends at {} which only the enterprise trust store holds", anchor.subject),
                )
                .evidence("root", Some("a public CA root".into()), Some(format!("{} (enterprise store)", anchor.subject)))
                .fix(format!(
                    "7800/8800 phones and TelePresence endpoints cannot add CAs: have this server's certificate signed by a public CA instead of {}",
                    anchor.subject
                )),
                // Probably a root nobody told this client about: not something
                // the server should send (clients take roots from their store).
                None if issuer_looks_like_root(issuer, s) => Finding::new(
                    &c::CHAIN_UNTRUSTED_ROOT,
                    format!(
                        "the chain stops at {}, issued by {issuer}, which looks like a root CA that this client does not trust",
                        cert.subject
                    ),
                )
                .evidence("root", Some("a root in the client's trust store".into()), Some(format!("{issuer} (not trusted, not sent)")))
                .fix(format!(
                    "if {issuer} is your enterprise root: Jabber and Expressway-C need it in their trust store (run edgetap with --trust and that root to judge as they would), and 7800/8800 phones and TelePresence endpoints, which cannot add CAs, need a certificate from a public CA; if it is an intermediate after all, the server should send it after its own certificate"
                )),
                None => {
                    let fetch = s
                        .cert(last)
                        .and_then(|c| c.ca_issuer_urls.first().cloned())
                        .map(|u| format!(" (its certificate can be downloaded from {u})"))
                        .unwrap_or_default();
                    // With --online the issuer may have been fetched from its
                    // caIssuers URL: say so, and who could use it.
                    let fetched = s.cert(last).and_then(|c| {
                        s.hs.obs
                            .fetched_issuers
                            .iter()
                            .find(|f| CertInfo::parse(&f.der).is_ok_and(|i| i.subject_der == c.issuer_der))
                    });
                    let online = fetched.map_or_else(String::new, |f| format!(
                        "; edgetap fetched it from {} ({}, SHA-256 {}): a Windows Jabber client, whose validator fetches caIssuers, may recover, but phones, TelePresence endpoints and Expressway do not fetch it",
                        f.url, f.subject, f.sha256
                    ));
                    Finding::new(
                        &c::CHAIN_MISSING_INTERMEDIATE,
                        format!("no certificate issued by {issuer} was sent or is trusted: the chain stops at {}{online}", cert.subject),
                    )
                    .evidence("issuer", Some(issuer.clone()), Some("missing: the server did not send it and no trust store holds it".into()))
                    .fix(format!(
                        "configure the server to send the intermediate CA certificate {issuer}{fetch} after its own certificate (on Expressway: include the intermediate in the server certificate file or trusted CA list)"
                    ))
                }
            };
            out.push(finding.cert(cert));
        }
        PathEnd::Anchored { .. } => {}
    }
}

/// Each link of the path: does the signature verify, and may the issuer issue?
pub fn check_links(s: &Scope<'_, '_>, out: &mut Vec<Finding>) {
    for link in &s.path.links {
        let child = s.cert_ref(link.child);
        let issuer = s.cert_ref(link.issuer);
        if link.signature == SigCheck::Invalid {
            out.push(
                Finding::new(
                    &c::CHAIN_BAD_SIGNATURE,
                    format!("the signature on {} does not verify with the key of {}", child.subject, issuer.subject),
                )
                .cert(child.clone())
                .evidence("signature", Some(format!("signed by {}", issuer.subject)), Some("signature does not verify".into()))
                .fix("the certificate was altered or its issuer was re-keyed: download the certificate again from the CA and reinstall it with the matching intermediate"),
            );
        }
        if link.child != link.issuer
            && let Some(issuer_cert) = s.cert(link.issuer)
        {
            let not_ca = issuer_cert.basic_constraints_ca == Some(false);
            let no_sign = issuer_cert.key_cert_sign == Some(false);
            if not_ca || no_sign {
                let what = if not_ca {
                    "BasicConstraints cA=FALSE"
                } else {
                    "KeyUsage without keyCertSign"
                };
                out.push(
                        Finding::new(
                            &c::CHAIN_ISSUER_NOT_CA,
                            format!("{} issued {} but is not a CA ({what})", issuer.subject, child.subject),
                        )
                        .cert(issuer.clone())
                        .evidence("basicConstraints/keyUsage", Some("cA=TRUE with keyCertSign".into()), Some(what.into()))
                        .fix("issue the server certificate from a real CA certificate; a server certificate cannot sign others"),
                    );
            }
        }
    }
}

/// What was sent against the path: order, the root sent along, certificates
/// that are not on the path.
pub fn check_sent(s: &Scope<'_, '_>, out: &mut Vec<Finding>) {
    let path = s.path;
    // Order and extras, judged on what was sent.
    let on_path: Vec<usize> = path.presented_on_path().collect();
    if on_path.windows(2).any(|w| w[1] < w[0]) {
        let sent: Vec<String> = on_path
            .iter()
            .map(|i| format!("#{}", s.hs.positions[*i]))
            .collect();
        out.push(
            Finding::new(
                &c::CHAIN_OUT_OF_ORDER,
                "the certificates were not sent in leaf-to-root order".to_string(),
            )
            .evidence(
                "certificate order",
                Some("leaf, then its issuer, then that issuer's issuer".into()),
                Some(format!("path uses sent certificates in order {}", sent.join(", "))),
            )
            .fix("reorder the server's chain file: server certificate first, then each intermediate up towards the root"),
        );
    }
    for &i in &on_path {
        if i == 0 {
            continue;
        }
        let node = PathNode::Presented(i);
        if s.hs.chain[i].self_issued && s.is_root(node) {
            out.push(
                Finding::new(
                    &c::CHAIN_ROOT_SENT,
                    format!("the root {} was sent too", s.hs.chain[i].short_name()),
                )
                .cert(s.hs.cert_ref(i))
                .evidence(
                    "chain",
                    Some("leaf and intermediates only".into()),
                    Some("root included".into()),
                )
                .fix("optional: drop the root from the server's chain; clients use their own copy"),
            );
        }
    }
    for (i, cert) in s.hs.chain.iter().enumerate().skip(1) {
        let first_copy = s.hs.chain[..i].iter().all(|c| c.sha256 != cert.sha256);
        let used = path
            .nodes
            .iter()
            .any(|n| matches!(n, PathNode::Presented(j) if s.hs.chain[*j].sha256 == cert.sha256));
        if first_copy && !used {
            out.push(
                Finding::new(
                    &c::CHAIN_UNRELATED_CERT,
                    format!(
                        "{} was sent but is not part of the chain to the leaf",
                        cert.short_name()
                    ),
                )
                .cert(s.hs.cert_ref(i))
                .evidence(
                    "chain",
                    Some("only certificates on the path".into()),
                    Some(cert.subject.clone()),
                )
                .fix("remove the unrelated certificate from the server's chain file"),
            );
        }
    }
}

/// BasicConstraints pathLenConstraint of every CA on the path.
pub fn check_path_len(s: &Scope<'_, '_>, out: &mut Vec<Finding>) {
    let certs: Vec<(PathNode, &crate::core::x509::CertInfo)> = s.path_certs().collect();
    // pathLenConstraint: intermediates (not self-issued) below a CA, leaf excluded.
    for (k, (node, ca)) in certs.iter().enumerate().skip(1) {
        let Some(limit) = ca.path_len else { continue };
        let below = certs[1..k].iter().filter(|(_, c)| !c.self_issued).count();
        if below > limit as usize {
            out.push(
                Finding::new(
                    &c::CHAIN_PATH_LEN_EXCEEDED,
                    format!("{} allows {limit} intermediate(s) below it, the path has {below}", ca.short_name()),
                )
                .cert(s.cert_ref(*node))
                .evidence("basicConstraints pathLenConstraint", Some(format!("at most {limit}")), Some(below.to_string()))
                .fix("issue the server certificate directly from an intermediate the CA's path length allows, or have the CA reissued without the constraint"),
            );
        }
    }
}

/// Critical extensions a client does not understand, anywhere on the path.
pub fn check_critical_extensions(s: &Scope<'_, '_>, out: &mut Vec<Finding>) {
    let certs: Vec<(PathNode, &crate::core::x509::CertInfo)> = s.path_certs().collect();
    for (node, cert) in &certs {
        for oid in &cert.unknown_critical_extensions {
            out.push(
                Finding::new(
                    &c::CHAIN_UNKNOWN_CRITICAL_EXTENSION,
                    format!("{} has critical extension {oid}, which clients must reject if they do not understand it", cert.short_name()),
                )
                .cert(s.cert_ref(*node))
                .evidence("extensions", Some("only critical extensions clients process".into()), Some(format!("{oid} (critical)")))
                .fix("have the CA reissue the certificate without marking that extension critical"),
            );
        }
    }
}

/// NameConstraints of every CA on the path.
pub fn check_name_constraints(s: &Scope<'_, '_>, out: &mut Vec<Finding>) {
    let certs: Vec<(PathNode, &crate::core::x509::CertInfo)> = s.path_certs().collect();
    // Name constraints of every CA on the path bind the dNSNames of every certificate
    // below it (RFC 5280 6.1.3: self-issued intermediates excepted), and the name
    // the client asked for.
    let reference = match &s.hs.obs.reference_identity {
        ReferenceIdentity::Dns(name) => Some(name.clone()),
        ReferenceIdentity::Ip(_) => None,
    };
    for (k, (node, ca)) in certs.iter().enumerate().skip(1) {
        ip_constraints(s, *node, ca, &certs[..k], out);
        if ca.permitted_dns.is_empty() && ca.excluded_dns.is_empty() {
            continue;
        }
        let mut names: Vec<(String, String)> = Vec::new(); // (name, whose)
        for (i, (_, below)) in certs[..k].iter().enumerate() {
            if i > 0 && below.self_issued {
                continue;
            }
            names.extend(
                below
                    .san_dns()
                    .map(|d| (d.to_ascii_lowercase(), below.short_name())),
            );
        }
        if let Some(name) = &reference
            && !names.iter().any(|(n, _)| n == name)
        {
            names.push((name.clone(), "the name the client asked for".into()));
        }
        for (name, whose) in &names {
            let permitted = ca.permitted_dns.is_empty()
                || ca.permitted_dns.iter().any(|base| dns_within(name, base));
            let excluded = ca.excluded_dns.iter().find(|base| dns_within(name, base));
            if permitted && excluded.is_none() {
                continue;
            }
            let rule_text = match excluded {
                Some(base) => format!("excluded subtree {base}"),
                None => format!("permitted subtrees {}", ca.permitted_dns.join(", ")),
            };
            out.push(
                Finding::new(
                    &c::CHAIN_NAME_CONSTRAINTS,
                    format!(
                        "{name} ({whose}) is outside what {} may issue for ({rule_text})",
                        ca.short_name()
                    ),
                )
                .cert(s.cert_ref(*node))
                .evidence(
                    "nameConstraints",
                    Some(rule_text.clone()),
                    Some(name.clone()),
                )
                .fix("have a CA whose name constraints cover this name issue the certificate"),
            );
        }
    }
}

/// A CA's iPAddress constraints against the iPAddress SANs below it and an IP
/// the client connected to (RFC 5280 4.2.1.10: address and mask, 8 octets for
/// IPv4, 32 for IPv6). With any permitted subtree, an address of the other
/// family is outside it too, as OpenSSL and webpki judge it.
fn ip_constraints(
    s: &Scope<'_, '_>,
    node: PathNode,
    ca: &crate::core::x509::CertInfo,
    below: &[(PathNode, &crate::core::x509::CertInfo)],
    out: &mut Vec<Finding>,
) {
    let st = &ca.structure;
    if st.permitted_ip.is_empty() && st.excluded_ip.is_empty() {
        return;
    }
    let mut names: Vec<(std::net::IpAddr, String)> = Vec::new();
    for (i, (_, cert)) in below.iter().enumerate() {
        if i > 0 && cert.self_issued {
            continue;
        }
        for entry in cert.san.iter().flatten() {
            if let crate::core::x509::SanEntry::Ip(ip) = entry {
                names.push((*ip, cert.short_name()));
            }
        }
    }
    if let ReferenceIdentity::Ip(ip) = &s.hs.obs.reference_identity
        && !names.iter().any(|(n, _)| n == ip)
    {
        names.push((*ip, "the address the client connected to".into()));
    }
    let subnet = |(addr, mask): &(Vec<u8>, Vec<u8>)| {
        format!(
            "{}/{}",
            ip_text(addr),
            mask.iter().map(|b| b.count_ones()).sum::<u32>()
        )
    };
    for (ip, whose) in names {
        let octets = match ip {
            std::net::IpAddr::V4(v4) => v4.octets().to_vec(),
            std::net::IpAddr::V6(v6) => v6.octets().to_vec(),
        };
        let inside = |(addr, mask): &(Vec<u8>, Vec<u8>)| {
            addr.len() == octets.len()
                && mask.len() == octets.len()
                && octets
                    .iter()
                    .zip(addr)
                    .zip(mask)
                    .all(|((o, a), m)| o & m == a & m)
        };
        let excluded = st.excluded_ip.iter().find(|sub| inside(sub));
        let permitted = st.permitted_ip.is_empty() || st.permitted_ip.iter().any(inside);
        if permitted && excluded.is_none() {
            continue;
        }
        let rule_text = match excluded {
            Some(sub) => format!("excluded subtree {}", subnet(sub)),
            None => format!(
                "permitted subtrees {}",
                st.permitted_ip
                    .iter()
                    .map(subnet)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        out.push(
            Finding::new(
                &c::CHAIN_NAME_CONSTRAINTS,
                format!("{ip} ({whose}) is outside what {} may issue for ({rule_text})", ca.short_name()),
            )
            .cert(s.cert_ref(node))
            .evidence("nameConstraints iPAddress", Some(rule_text.clone()), Some(ip.to_string()))
            .fix("have a CA whose name constraints cover this address issue the certificate, or connect by a name the certificate carries"),
        );
    }
}

/// An address of 4 or 16 octets as text; anything else as hex.
fn ip_text(octets: &[u8]) -> String {
    match octets.len() {
        4 => std::net::Ipv4Addr::from(<[u8; 4]>::try_from(octets).unwrap_or_default()).to_string(),
        16 => {
            std::net::Ipv6Addr::from(<[u8; 16]>::try_from(octets).unwrap_or_default()).to_string()
        }
        _ => crate::core::x509::cert::hex(octets),
    }
}

/// Whether a missing issuer is probably a root rather than an intermediate the
/// server forgot: its name says so (a CN with "Root"), or the certificate that
/// names it is itself a CA and a self-signed certificate with that subject was
/// presented (the server sent the root, just not the one it needs).
fn issuer_looks_like_root(issuer: &str, s: &Scope<'_, '_>) -> bool {
    let cn_says_root = issuer
        .split(", ")
        .filter_map(|part| part.strip_prefix("CN="))
        .any(|cn| {
            cn.split(|c: char| !c.is_alphanumeric())
                .any(|w| w.eq_ignore_ascii_case("root"))
        });
    let sent_as_root =
        s.hs.chain
            .iter()
            .any(|c| c.self_issued && c.subject == issuer);
    cn_says_root || sent_as_root
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::core::analysis::profile::Profile;
    use rcgen::{GeneralSubtree, NameConstraints};

    #[test]
    fn good_chain_is_quiet() {
        let (case, _, _) = good_edge();
        let report = case.run();
        for rule in [
            "chain.self-signed",
            "chain.untrusted-root",
            "chain.missing-intermediate",
            "chain.bad-signature",
            "chain.out-of-order",
            "chain.root-sent",
            "chain.unrelated-cert",
            "chain.issuer-not-ca",
            "chain.duplicate-cert",
            "chain.name-constraints",
            "chain.malformed-certificate",
        ] {
            assert_quiet(&report, rule);
        }
        assert!(report.handshakes[0].paths[0].trusted);
    }

    #[test]
    fn self_signed_fires_unless_trusted() {
        let leaf = self_signed_leaf(leaf_params("cucm.example.com", &["cucm.example.com"]));
        let report = Case::new(vec![leaf.clone()], "cucm.example.com").run();
        assert_fires(&report, "chain.self-signed");
        assert_eq!(
            report.handshakes[0].verdicts[&Profile::Jabber]
                .outcome
                .as_str(),
            "prompt"
        );
        assert_eq!(
            report.handshakes[0].verdicts[&Profile::IpPhone]
                .outcome
                .as_str(),
            "fail"
        );
        assert_quiet(&report, "chain.untrusted-root");

        // Pinned in the enterprise store: Jabber and Expressway-C trust it, phones do not.
        let pinned = Case::new(vec![leaf.clone()], "cucm.example.com")
            .enterprise(vec![leaf])
            .run();
        let profiles = assert_fires(&pinned, "chain.self-signed");
        assert_eq!(profiles, vec![Profile::IpPhone, Profile::TcEndpoint]);
        assert_eq!(
            pinned.handshakes[0].verdicts[&Profile::Jabber]
                .outcome
                .as_str(),
            "ok"
        );
    }

    #[test]
    fn untrusted_root_fires_per_store() {
        let (case, root, _) = good_edge();
        let mut case = case;
        case.public = Vec::new();
        // Leaf and intermediate sent, the root trusted nowhere: the missing
        // issuer is a root by its name, so the cause is trust, not the server.
        let untrusted = case.run();
        assert_fires(&untrusted, "chain.untrusted-root");
        assert_quiet(&untrusted, "chain.missing-intermediate");
        let fix = &untrusted.handshakes[0]
            .findings
            .iter()
            .find(|f| f.rule.id == "chain.untrusted-root")
            .unwrap()
            .fix;
        assert!(
            fix.contains("--trust") && fix.contains("public CA"),
            "{fix}"
        );

        // Root sent but trusted nowhere.
        let mut with_root = case.presented.clone();
        with_root.push(root.der());
        let report = Case::new(with_root.clone(), "expe.example.com").run();
        assert_fires(&report, "chain.untrusted-root");
        assert_quiet(&report, "chain.missing-intermediate");

        // Enterprise root: only phones and endpoints are left out.
        let report = Case::new(with_root, "expe.example.com")
            .enterprise(vec![root.der()])
            .run();
        let profiles = assert_fires(&report, "chain.untrusted-root");
        assert_eq!(profiles, vec![Profile::IpPhone, Profile::TcEndpoint]);
        let v = &report.handshakes[0].verdicts;
        assert_eq!(v[&Profile::ExpresswayC].outcome.as_str(), "ok");
        assert_eq!(v[&Profile::TcEndpoint].outcome.as_str(), "fail");
    }

    #[test]
    fn missing_intermediate_fires_when_leaf_sent_alone() {
        let (case, _, _) = good_edge();
        let leaf_only = Case::new(vec![case.presented[0].clone()], "expe.example.com")
            .public(case.public.clone());
        let report = leaf_only.run();
        assert_fires(&report, "chain.missing-intermediate");
        let f = &report.handshakes[0]
            .findings
            .iter()
            .find(|f| f.rule.id == "chain.missing-intermediate")
            .unwrap();
        assert!(
            f.fix.contains("Example Issuing CA"),
            "fix names the missing CA: {}",
            f.fix
        );
        // Quiet when the intermediate is in the store instead (as for an enterprise CA bundle).
        let mut store = case.public.clone();
        store.push(case.presented[1].clone());
        assert_quiet(
            &Case::new(vec![case.presented[0].clone()], "expe.example.com")
                .public(store)
                .run(),
            "chain.missing-intermediate",
        );
    }

    #[test]
    fn enterprise_root_not_sent_is_untrusted_for_phones_not_missing() {
        let (case, root, _) = good_edge();
        let report = Case::new(case.presented.clone(), "expe.example.com")
            .enterprise(vec![root.der()])
            .run();
        let profiles = assert_fires(&report, "chain.untrusted-root");
        assert_eq!(profiles, vec![Profile::IpPhone, Profile::TcEndpoint]);
        assert_quiet(&report, "chain.missing-intermediate");
    }

    #[test]
    fn bad_signature_fires_on_altered_certificate() {
        let (case, _, _) = good_edge();
        let mut leaf = case.presented[0].clone();
        let last = leaf.len() - 1;
        leaf[last] ^= 0x01; // flip a bit of the signature
        let report = Case::new(vec![leaf, case.presented[1].clone()], "expe.example.com")
            .public(case.public.clone())
            .run();
        assert_fires(&report, "chain.bad-signature");
        assert_eq!(
            report.handshakes[0].verdicts[&Profile::Jabber]
                .outcome
                .as_str(),
            "fail"
        );
        assert_quiet(&case.run(), "chain.bad-signature");
    }

    #[test]
    fn out_of_order_fires_when_root_before_intermediate() {
        let root = root("Order Root");
        let inter = intermediate("Order Issuing CA", &root);
        let leaf = leaf(
            leaf_params("expe.example.com", &["expe.example.com"]),
            &inter,
        );
        let report = Case::new(
            vec![leaf.clone(), root.der(), inter.der()],
            "expe.example.com",
        )
        .public(vec![root.der()])
        .run();
        assert_fires(&report, "chain.out-of-order");
        assert_fires(&report, "chain.root-sent");
        let in_order = Case::new(vec![leaf, inter.der(), root.der()], "expe.example.com")
            .public(vec![root.der()])
            .run();
        assert_quiet(&in_order, "chain.out-of-order");
        assert_fires(&in_order, "chain.root-sent");
    }

    #[test]
    fn root_sent_quiet_without_root() {
        let (case, _, _) = good_edge();
        assert_quiet(&case.run(), "chain.root-sent");
    }

    #[test]
    fn unrelated_and_duplicate_certificates() {
        let (case, _, inter) = good_edge();
        let stranger = root("Stranger CA");
        let mut presented = case.presented.clone();
        presented.push(stranger.der());
        presented.push(inter.der());
        let report = Case::new(presented, "expe.example.com")
            .public(case.public.clone())
            .run();
        assert_fires(&report, "chain.unrelated-cert");
        assert_fires(&report, "chain.duplicate-cert");
        assert!(
            report.handshakes[0].paths[0].trusted,
            "extras do not break the path"
        );
        assert_quiet(&case.run(), "chain.duplicate-cert");
    }

    #[test]
    fn issuer_not_ca_fires_when_a_leaf_signs() {
        let root = root("NotCA Root");
        let mut p = leaf_params("server.example.com", &["server.example.com"]);
        p.is_ca = rcgen::IsCa::ExplicitNoCa;
        let fake_ca = intermediate_with(p, &root);
        let victim = leaf(
            leaf_params("expe.example.com", &["expe.example.com"]),
            &fake_ca,
        );
        let report = Case::new(vec![victim, fake_ca.der()], "expe.example.com")
            .public(vec![root.der()])
            .run();
        assert_fires(&report, "chain.issuer-not-ca");
    }

    #[test]
    fn name_constraints_fire_outside_permitted_subtree() {
        let mut p = ca_params("Constrained Root");
        p.name_constraints = Some(NameConstraints {
            permitted_subtrees: vec![GeneralSubtree::DnsName("example.com".into())],
            excluded_subtrees: vec![],
        });
        let root = root_with(p);
        let ok = leaf(
            leaf_params("expe.example.com", &["expe.example.com"]),
            &root,
        );
        assert_quiet(
            &Case::new(vec![ok], "expe.example.com")
                .public(vec![root.der()])
                .run(),
            "chain.name-constraints",
        );
        let bad = leaf(
            leaf_params("expe.example.net", &["expe.example.net"]),
            &root,
        );
        assert_fires(
            &Case::new(vec![bad], "expe.example.net")
                .public(vec![root.der()])
                .run(),
            "chain.name-constraints",
        );
    }

    #[test]
    fn ip_name_constraints_judge_ip_sans_and_the_address_connected_to() {
        use rcgen::{CidrSubnet, SanType};
        let mut p = ca_params("IP Constrained Root");
        p.name_constraints = Some(NameConstraints {
            permitted_subtrees: vec![GeneralSubtree::IpAddress(CidrSubnet::from_v4_prefix(
                [10, 0, 0, 0],
                8,
            ))],
            excluded_subtrees: vec![GeneralSubtree::IpAddress(CidrSubnet::from_v4_prefix(
                [10, 9, 0, 0],
                16,
            ))],
        });
        let root = root_with(p);
        let with_ip = |ip: [u8; 4]| {
            let mut params = leaf_params("expe.example.com", &["expe.example.com"]);
            params
                .subject_alt_names
                .push(SanType::IpAddress(std::net::IpAddr::from(ip)));
            leaf(params, &root)
        };
        let judge = |ip: [u8; 4]| {
            let name = std::net::Ipv4Addr::from(ip).to_string();
            Case::new(vec![with_ip(ip)], &name)
                .public(vec![root.der()])
                .run()
        };
        assert_quiet(&judge([10, 1, 2, 3]), "chain.name-constraints");
        let outside = judge([192, 0, 2, 1]);
        assert_fires(&outside, "chain.name-constraints");
        let excluded = judge([10, 9, 1, 1]);
        let finding = excluded.handshakes[0]
            .findings
            .iter()
            .find(|f| f.rule.id == "chain.name-constraints")
            .expect("excluded subtree fires");
        assert!(
            finding.message.contains("excluded subtree 10.9.0.0/16"),
            "{}",
            finding.message
        );
    }

    #[test]
    fn path_len_exceeded_counts_intermediates_below_the_ca() {
        let mut p = ca_params("Pathlen Root");
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(1));
        let root = root_with(p);
        let inter = intermediate("Pathlen Issuing CA", &root);
        let ok = leaf(
            leaf_params("expe.example.com", &["expe.example.com"]),
            &inter,
        );
        let report = Case::new(vec![ok, inter.der()], "expe.example.com")
            .public(vec![root.der()])
            .run();
        assert_quiet(&report, "chain.path-len-exceeded");
        let inter2 = intermediate("Pathlen Second CA", &inter);
        let deep = leaf(
            leaf_params("expe.example.com", &["expe.example.com"]),
            &inter2,
        );
        let report = Case::new(vec![deep, inter2.der(), inter.der()], "expe.example.com")
            .public(vec![root.der()])
            .run();
        assert_fires(&report, "chain.path-len-exceeded");
    }

    #[test]
    fn unknown_critical_extension_fires() {
        let root = root("Critical Root");
        let mut p = leaf_params("expe.example.com", &["expe.example.com"]);
        let mut ext = rcgen::CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 4, 1, 55555, 1],
            vec![0x05, 0x00],
        );
        ext.set_criticality(true);
        p.custom_extensions.push(ext);
        let report = Case::new(vec![leaf(p, &root)], "expe.example.com")
            .public(vec![root.der()])
            .run();
        assert_fires(&report, "chain.unknown-critical-extension");
        let (case, _, _) = good_edge();
        assert_quiet(&case.run(), "chain.unknown-critical-extension");
    }

    #[test]
    fn malformed_certificate_is_reported_not_fatal() {
        let (case, _, _) = good_edge();
        let mut presented = case.presented.clone();
        presented.push(b"\x30\x03\x02\x01".to_vec());
        let report = Case::new(presented, "expe.example.com")
            .public(case.public.clone())
            .run();
        assert_fires(&report, "chain.malformed-certificate");
        assert_eq!(
            report.handshakes[0].chain.len(),
            2,
            "the good certificates still count"
        );
        assert_quiet(&case.run(), "chain.malformed-certificate");
    }

    #[test]
    fn subtree_matching() {
        assert!(crate::core::x509::names::dns_within(
            "a.example.com",
            "example.com"
        ));
        assert!(crate::core::x509::names::dns_within(
            "example.com",
            "example.com"
        ));
        assert!(!crate::core::x509::names::dns_within(
            "example.com",
            ".example.com"
        ));
        assert!(!crate::core::x509::names::dns_within(
            "badexample.com",
            "example.com"
        ));
        assert!(crate::core::x509::names::dns_within(
            "*.example.com",
            "example.com"
        ));
    }
}
