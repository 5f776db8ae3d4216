//! Service discovery as a Jabber client does it, without the network: the SRV
//! names to ask, the order clients try targets in (RFC 2782), and the `dns.*`
//! findings decided from the answers alone. The resolver shell fills
//! [`Discovery`]; this module judges it.

use std::net::IpAddr;

use serde::Serialize;

use crate::core::analysis::catalog as c;
use crate::core::analysis::finding::Finding;

/// The SRV services a Cisco client looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SrvKind {
    /// `_collab-edge._tls`: Mobile and Remote Access through Expressway-E.
    CollabEdge,
    /// `_cisco-uds._tcp`: CUCM User Data Service, inside the enterprise.
    CiscoUds,
    /// `_cuplogin._tcp`: legacy CUP login, inside the enterprise.
    CupLogin,
    /// `_xmpp-client._tcp`: XMPP client connections.
    XmppClient,
}

impl SrvKind {
    /// Every kind, in lookup order.
    pub const ALL: [SrvKind; 4] = [
        SrvKind::CollabEdge,
        SrvKind::CiscoUds,
        SrvKind::CupLogin,
        SrvKind::XmppClient,
    ];

    /// The owner-name prefix.
    pub fn prefix(self) -> &'static str {
        match self {
            SrvKind::CollabEdge => "_collab-edge._tls",
            SrvKind::CiscoUds => "_cisco-uds._tcp",
            SrvKind::CupLogin => "_cuplogin._tcp",
            SrvKind::XmppClient => "_xmpp-client._tcp",
        }
    }

    /// The SRV owner name for `domain`.
    pub fn owner(self, domain: &str) -> String {
        format!("{}.{}", self.prefix(), domain.trim_end_matches('.'))
    }

    /// True for the records meant to be visible only inside the enterprise.
    pub fn internal(self) -> bool {
        matches!(self, SrvKind::CiscoUds | SrvKind::CupLogin)
    }
}

/// One SRV record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SrvRecord {
    /// Lower is tried first.
    pub priority: u16,
    /// Relative share among records of one priority.
    pub weight: u16,
    /// Target port.
    pub port: u16,
    /// Target host, without the trailing dot.
    pub target: String,
}

/// A target's address lookup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolvedTarget {
    /// The SRV record.
    #[serde(flatten)]
    pub record: SrvRecord,
    /// A and AAAA addresses found.
    pub addresses: Vec<IpAddr>,
    /// Why the address lookup failed, if it did.
    pub error: Option<String>,
}

/// The answer to one SRV query, as a client would experience it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum SrvAnswer {
    /// Records, in the order clients try them.
    Found {
        /// Targets in RFC 2782 order.
        targets: Vec<ResolvedTarget>,
    },
    /// The name does not exist.
    NxDomain,
    /// The name exists but has no SRV record.
    NoData,
    /// A single "." target: the service is explicitly not offered.
    NotOffered,
    /// The resolver gave up waiting.
    Timeout,
    /// SERVFAIL, REFUSED or another error response.
    ServerFailure {
        /// The response code or error text.
        detail: String,
    },
    /// Anything else (truncated answer that TCP could not complete, bad name...).
    Error {
        /// What went wrong.
        detail: String,
    },
}

/// One SRV lookup.
#[derive(Debug, Clone, Serialize)]
pub struct SrvLookup {
    /// Which service.
    pub kind: SrvKind,
    /// The owner name asked for.
    pub name: String,
    /// The answer.
    #[serde(flatten)]
    pub answer: SrvAnswer,
}

impl SrvLookup {
    /// The targets, if any were found.
    pub fn targets(&self) -> &[ResolvedTarget] {
        match &self.answer {
            SrvAnswer::Found { targets } => targets,
            _ => &[],
        }
    }

    /// One line describing the answer, for people.
    pub fn describe(&self) -> String {
        match &self.answer {
            SrvAnswer::Found { targets } => format!("{} target(s)", targets.len()),
            SrvAnswer::NxDomain => "no such name (NXDOMAIN)".into(),
            SrvAnswer::NoData => "name exists, no SRV record".into(),
            SrvAnswer::NotOffered => "service explicitly not offered (target \".\")".into(),
            SrvAnswer::Timeout => "timed out: no answer from the nameserver".into(),
            SrvAnswer::ServerFailure { detail } => format!("server failure: {detail}"),
            SrvAnswer::Error { detail } => format!("lookup error: {detail}"),
        }
    }
}

/// Everything discovery found for a domain.
#[derive(Debug, Clone, Serialize)]
pub struct Discovery {
    /// The domain looked up.
    pub domain: String,
    /// Which resolver answered: "system" or the nameservers given.
    pub resolver: String,
    /// One entry per SRV kind.
    pub lookups: Vec<SrvLookup>,
}

impl Discovery {
    /// The lookup of one kind.
    pub fn lookup(&self, kind: SrvKind) -> Option<&SrvLookup> {
        self.lookups.iter().find(|l| l.kind == kind)
    }
}

/// Order SRV records as clients try them: ascending priority; within a priority,
/// heavier weight first (the most likely pick of RFC 2782's weighted random
/// choice), then by name so the order is stable.
pub fn order_srv(mut records: Vec<SrvRecord>) -> Vec<SrvRecord> {
    records.sort_by(|a, b| {
        a.priority
            .cmp(&b.priority)
            .then(b.weight.cmp(&a.weight))
            .then(a.target.cmp(&b.target))
            .then(a.port.cmp(&b.port))
    });
    records
}

/// The `dns.*` findings decided from the answers alone. `outside` says the
/// resolver stands for a client outside the enterprise (then internal records
/// answering is a problem).
pub fn findings(d: &Discovery, outside: bool) -> Vec<Finding> {
    let mut out = Vec::new();
    let edge_name = SrvKind::CollabEdge.owner(&d.domain);
    match d.lookup(SrvKind::CollabEdge).map(|l| &l.answer) {
        Some(SrvAnswer::Found { .. }) => {}
        answer => {
            let why = d
                .lookup(SrvKind::CollabEdge)
                .map_or_else(|| "not looked up".to_owned(), SrvLookup::describe);
            let _ = answer;
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
        for t in l.targets() {
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
    use super::*;

    fn target(name: &str, port: u16, addrs: &[&str]) -> ResolvedTarget {
        ResolvedTarget {
            record: SrvRecord {
                priority: 10,
                weight: 10,
                port,
                target: name.into(),
            },
            addresses: addrs.iter().map(|a| a.parse().unwrap()).collect(),
            error: None,
        }
    }

    fn discovery(edge: SrvAnswer, uds: SrvAnswer) -> Discovery {
        Discovery {
            domain: "example.com".into(),
            resolver: "test".into(),
            lookups: vec![
                SrvLookup {
                    kind: SrvKind::CollabEdge,
                    name: "_collab-edge._tls.example.com".into(),
                    answer: edge,
                },
                SrvLookup {
                    kind: SrvKind::CiscoUds,
                    name: "_cisco-uds._tcp.example.com".into(),
                    answer: uds,
                },
            ],
        }
    }

    fn ids(f: &[Finding]) -> Vec<&str> {
        f.iter().map(|f| f.rule.id).collect()
    }

    #[test]
    fn srv_order_is_priority_then_weight() {
        let r = |p, w, t: &str| SrvRecord {
            priority: p,
            weight: w,
            port: 8443,
            target: t.into(),
        };
        let ordered = order_srv(vec![
            r(20, 0, "c"),
            r(10, 1, "b"),
            r(10, 60, "a2"),
            r(10, 60, "a1"),
        ]);
        let names: Vec<&str> = ordered.iter().map(|r| r.target.as_str()).collect();
        assert_eq!(names, ["a1", "a2", "b", "c"]);
    }

    #[test]
    fn collab_edge_missing_fires_on_nxdomain_and_timeout_not_on_records() {
        for answer in [SrvAnswer::NxDomain, SrvAnswer::NoData, SrvAnswer::Timeout] {
            let f = findings(&discovery(answer, SrvAnswer::NxDomain), true);
            assert!(ids(&f).contains(&"dns.collab-edge-missing"));
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
}
