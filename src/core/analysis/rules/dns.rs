//! `dns.*` rules: those decided on DNS answers alone ([`discovery_findings`],
//! over what `core::discovery` found), and the one decided on a handshake: does
//! the certificate name the SRV target the client looked up?

use super::Handshake;
use crate::core::analysis::catalog as c;
use crate::core::analysis::finding::Finding;
use crate::core::discovery::{Discovery, SrvAnswer, SrvKind, SrvLookup};
use crate::core::x509::names::dns_matches;

/// The SRV target FQDN must be a SAN of the certificate it serves.
pub fn check(hs: &Handshake<'_>, out: &mut Vec<Finding>) {
    let (Some(srv), Some(leaf)) = (&hs.obs.srv, hs.leaf()) else {
        return;
    };
    let target = srv.target.trim_end_matches('.');
    if leaf.san_dns().any(|d| dns_matches(d, target).is_some()) {
        return;
    }
    out.push(
        Finding::new(
            &c::DNS_TARGET_NOT_IN_CERT,
            format!("{} points at {target}, which is not a SAN of the certificate it serves", srv.name),
        )
        .cert(hs.cert_ref(0))
        .evidence("SAN dNSName", Some(target.to_owned()), Some(leaf.san_dns().collect::<Vec<_>>().join(", ")))
        .fix(format!("add {target} as a SAN on this server's certificate, or point the SRV record at a name the certificate carries")),
    );
}

/// The first nameserver as dig's arguments (`@IP`, and `-p PORT` off 53);
/// the system resolver needs none.
fn dig_server(resolver: &str) -> String {
    let first = resolver.split([',', ' ']).next().unwrap_or(resolver);
    if first == "system" {
        return String::new();
    }
    match first.parse::<std::net::SocketAddr>() {
        Ok(a) if a.port() == 53 => format!("@{} ", a.ip()),
        Ok(a) => format!("@{} -p {} ", a.ip(), a.port()),
        Err(_) => format!("@{first} "),
    }
}

/// The `dns.*` findings decided from the answers alone. `outside` says the
/// resolver stands for a client outside the enterprise (then internal records
/// answering is a problem).
pub fn discovery_findings(d: &Discovery, outside: bool) -> Vec<Finding> {
    let mut out = Vec::new();
    let edge_name = SrvKind::CollabEdge.owner(&d.domain);
    // A kind that was not looked up (a capture that does not show it) is not
    // missing: it is unknown.
    match d.lookup(SrvKind::CollabEdge) {
        None
        | Some(SrvLookup {
            answer: SrvAnswer::Found { .. },
            ..
        }) => {}
        // No answer is no evidence of a missing record: say what is unknown,
        // and advise looking at the resolver, not at the zone.
        Some(lookup) if lookup.unanswered() => {
            let why = lookup.describe();
            out.push(
                Finding::new(&c::DNS_LOOKUP_FAILED, format!("{edge_name}: the resolver ({}) gave no answer ({why}); whether the record exists is unknown", d.resolver))
                    .evidence("SRV", Some(format!("an answer for {edge_name}")), Some(why))
                    .fix(format!("check that this resolver answers (dig {}SRV {edge_name}); from a client's network, try its resolver or a public one with --nameserver, then run again", dig_server(&d.resolver))),
            );
        }
        Some(lookup) => {
            let why = lookup.describe();
            out.push(
                Finding::new(&c::DNS_COLLAB_EDGE_MISSING, format!("no {edge_name} SRV record: {why}"))
                    .evidence("SRV", Some(format!("{edge_name} -> Expressway-E on 8443")), Some(why))
                    .fix(format!("publish {edge_name} SRV records in public DNS pointing at the Expressway-E peers on port 8443")),
            );
        }
    }
    if outside {
        for kind in [SrvKind::CiscoUds, SrvKind::CupLogin] {
            if let Some(l) = d.lookup(kind).filter(|l| !l.targets().is_empty()) {
                out.push(
                    Finding::new(
                        &c::DNS_INTERNAL_SRV_EXPOSED,
                        format!("{} answers from this resolver; clients here will think they are inside and never try the edge", l.name),
                    )
                    .evidence("SRV", Some("no answer outside the enterprise".into()), Some(l.targets().iter().map(|t| t.record.target.clone()).collect::<Vec<_>>().join(", ")))
                    .fix(format!("remove {} from the public (external) DNS view", l.name)),
                );
            }
        }
    }
    for l in &d.lookups {
        for t in l.targets().iter().filter(|t| !t.not_seen) {
            if t.addresses.is_empty() {
                let why = t
                    .error
                    .clone()
                    .unwrap_or_else(|| "no A or AAAA record".into());
                out.push(
                    Finding::new(
                        &c::DNS_TARGET_UNRESOLVABLE,
                        format!(
                            "{} target {} has no address: {why}",
                            l.name, t.record.target
                        ),
                    )
                    .evidence(
                        "A/AAAA",
                        Some(format!("an address for {}", t.record.target)),
                        Some(why),
                    )
                    .fix(format!(
                        "publish A (and AAAA) records for {}",
                        t.record.target
                    )),
                );
            }
        }
    }
    if let Some(l) = d.lookup(SrvKind::CollabEdge) {
        for t in l.targets().iter().filter(|t| t.record.port != 8443) {
            out.push(
                Finding::new(&c::DNS_UNEXPECTED_PORT, format!("{} points at {}:{}, not port 8443", l.name, t.record.target, t.record.port))
                    .evidence("SRV port", Some("8443".into()), Some(t.record.port.to_string()))
                    .fix("point _collab-edge at port 8443 on the Expressway-E, the port MRA clients expect"),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::core::observation::SrvContext;

    fn via_srv(target: &str) -> Case {
        let (mut case, _, _) = good_edge();
        case.srv = Some(SrvContext {
            name: "_collab-edge._tls.example.com".into(),
            target: target.into(),
            port: 8443,
            peers: vec![target.into()],
        });
        case
    }

    #[test]
    fn target_not_in_cert() {
        assert_fires(
            &via_srv("edge2.example.com").run(),
            "dns.target-not-in-cert",
        );
        assert_quiet(
            &via_srv("expe.example.com.").run(),
            "dns.target-not-in-cert",
        );
        let (case, _, _) = good_edge();
        assert_quiet(&case.run(), "dns.target-not-in-cert");
    }

    mod from_answers {
        use super::super::discovery_findings as findings;
        use crate::core::analysis::finding::Finding;
        use crate::core::discovery::tests::{discovery, target};
        use crate::core::discovery::*;

        fn ids(f: &[Finding]) -> Vec<&str> {
            f.iter().map(|f| f.rule.id).collect()
        }

        #[test]
        fn collab_edge_missing_fires_on_nxdomain_and_nodata_not_on_records_or_no_answer() {
            for answer in [
                SrvAnswer::NxDomain,
                SrvAnswer::NoData,
                SrvAnswer::NotOffered,
            ] {
                let f = findings(&discovery(answer, SrvAnswer::NxDomain), true);
                assert!(ids(&f).contains(&"dns.collab-edge-missing"));
                assert!(!ids(&f).contains(&"dns.lookup-failed"));
            }
            for answer in [
                SrvAnswer::Timeout,
                SrvAnswer::ServerFailure {
                    detail: "SERVFAIL".into(),
                },
            ] {
                let f = findings(&discovery(answer, SrvAnswer::NxDomain), true);
                assert_eq!(
                    ids(&f),
                    ["dns.lookup-failed"],
                    "no answer is not a missing record"
                );
                assert!(f[0].fix.contains("dig "), "{}", f[0].fix);
            }
            let ok = discovery(
                SrvAnswer::Found {
                    targets: vec![target("expe.example.com", 8443, &["192.0.2.1"])],
                },
                SrvAnswer::NxDomain,
            );
            assert!(findings(&ok, true).is_empty());
        }

        #[test]
        fn internal_srv_exposed_only_for_an_outside_resolver() {
            let edge = SrvAnswer::Found {
                targets: vec![target("expe.example.com", 8443, &["192.0.2.1"])],
            };
            let uds = SrvAnswer::Found {
                targets: vec![target("cucm.example.com", 8443, &["10.0.0.5"])],
            };
            let d = discovery(edge, uds);
            assert!(ids(&findings(&d, true)).contains(&"dns.internal-srv-exposed"));
            assert!(!ids(&findings(&d, false)).contains(&"dns.internal-srv-exposed"));
        }

        #[test]
        fn unresolvable_target_and_unexpected_port() {
            let edge = SrvAnswer::Found {
                targets: vec![target("gone.example.com", 443, &[])],
            };
            let f = findings(&discovery(edge, SrvAnswer::NxDomain), true);
            assert!(ids(&f).contains(&"dns.target-unresolvable"));
            assert!(ids(&f).contains(&"dns.unexpected-port"));
        }

        /// A capture decides only what it shows: a target whose address
        /// look-up was not captured is not unresolvable, and an SRV kind never
        /// asked is not missing.
        #[test]
        fn what_a_capture_did_not_show_is_not_a_finding() {
            let mut unseen = target("expe2.example.com", 8443, &[]);
            unseen.not_seen = true;
            let edge = SrvAnswer::Found {
                targets: vec![target("expe.example.com", 8443, &["192.0.2.1"]), unseen],
            };
            let mut d = discovery(edge, SrvAnswer::NxDomain);
            assert!(findings(&d, false).is_empty());
            d.lookups.retain(|l| l.kind != SrvKind::CollabEdge);
            assert!(findings(&d, false).is_empty());
        }
    }
}
