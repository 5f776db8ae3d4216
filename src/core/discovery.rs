//! Service discovery as a Jabber client does it, without the network: the SRV
//! names to ask, the order clients try targets in (RFC 2782), and which
//! targets serve which service ([`Discovery::endpoints`], the one SRV policy
//! of `probe` and the proxy). The resolver shell fills [`Discovery`]; the
//! `dns.*` findings from it are in `analysis::rules::dns`.

use std::net::IpAddr;

use serde::Serialize;

use crate::core::observation::Service;

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
    /// The address look-up was not seen (a capture without it): whether the
    /// target resolves is unknown, not false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub not_seen: bool,
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

impl ResolvedTarget {
    /// What the target resolved to, as people read it: the addresses, or why
    /// there are none (the look-up failed, or a capture did not hold it).
    pub fn addresses_text(&self) -> String {
        if !self.addresses.is_empty() {
            self.addresses
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        } else if self.not_seen {
            "address look-up not seen".to_owned()
        } else {
            format!("no address: {}", self.error.as_deref().unwrap_or("none"))
        }
    }
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
    /// True when the resolver gave no verdict on the name (timeout, server
    /// failure, error): whether the record exists is unknown.
    pub fn unanswered(&self) -> bool {
        matches!(
            self.answer,
            SrvAnswer::Timeout | SrvAnswer::ServerFailure { .. } | SrvAnswer::Error { .. }
        )
    }

    /// The answer in words.
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

    /// Every target of the `kind` look-up, in client order, on its SRV port or
    /// on `port` when the service has a fixed port on that host.
    pub fn targets_of(&self, kind: SrvKind, port: Option<u16>) -> Vec<SrvEndpoint<'_>> {
        self.lookup(kind)
            .map(|lookup| {
                lookup
                    .targets()
                    .iter()
                    .map(|target| SrvEndpoint {
                        lookup,
                        target,
                        port: port.unwrap_or(target.record.port),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Where a client outside sends `service`, in the order it tries them: the
    /// one SRV policy, for `probe` and the proxy's SRV-derived listeners.
    /// - http: the `_collab-edge._tls` targets on their SRV port;
    /// - xmpp: the `_xmpp-client._tcp` targets, or else the edge hosts on 5222;
    /// - sip: the edge hosts on 5061.
    pub fn endpoints(&self, service: Service) -> Vec<SrvEndpoint<'_>> {
        match service {
            Service::Http => self.targets_of(SrvKind::CollabEdge, None),
            Service::Xmpp => {
                let xmpp = self.targets_of(SrvKind::XmppClient, None);
                if xmpp.is_empty() {
                    self.targets_of(SrvKind::CollabEdge, Some(5222))
                } else {
                    xmpp
                }
            }
            Service::Sip => self.targets_of(SrvKind::CollabEdge, Some(5061)),
        }
    }
}

/// A DNS name as edgetap compares names: lowercase, without the final dot.
pub fn host_name(name: &hickory_proto::rr::Name) -> String {
    name.to_ascii().trim_end_matches('.').to_ascii_lowercase()
}

/// An SRV record as DNS carries it (hickory's type, from a resolver or a
/// captured message), its target as [`host_name`] writes it.
pub fn srv_record(srv: &hickory_proto::rr::rdata::SRV) -> SrvRecord {
    SrvRecord {
        priority: srv.priority,
        weight: srv.weight,
        port: srv.port,
        target: host_name(&srv.target),
    }
}

/// One place a client connects to, from an SRV answer.
#[derive(Debug, Clone, Copy)]
pub struct SrvEndpoint<'a> {
    /// The look-up it came from (its name, its other targets).
    pub lookup: &'a SrvLookup,
    /// The SRV target and its addresses.
    pub target: &'a ResolvedTarget,
    /// The port to connect to.
    pub port: u16,
}

impl SrvEndpoint<'_> {
    /// The SRV context a handshake to this endpoint carries: the record set,
    /// this target and port, and every target of the set (the cluster peers).
    pub fn context(&self) -> crate::core::observation::SrvContext {
        crate::core::observation::SrvContext {
            name: self.lookup.name.clone(),
            target: self.target.record.target.clone(),
            port: self.port,
            peers: self
                .lookup
                .targets()
                .iter()
                .map(|t| t.record.target.clone())
                .collect(),
        }
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn target(name: &str, port: u16, addrs: &[&str]) -> ResolvedTarget {
        ResolvedTarget {
            record: SrvRecord {
                priority: 10,
                weight: 10,
                port,
                target: name.into(),
            },
            addresses: addrs.iter().map(|a| a.parse().unwrap()).collect(),
            error: None,
            not_seen: false,
        }
    }

    pub(crate) fn discovery(edge: SrvAnswer, uds: SrvAnswer) -> Discovery {
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

    #[test]
    fn one_srv_policy_per_service() {
        let edge = SrvAnswer::Found {
            targets: vec![target("expe.example.com", 8443, &["192.0.2.1"])],
        };
        let d = discovery(edge, SrvAnswer::NxDomain);
        let hosts = |s: Service| -> Vec<(String, u16)> {
            d.endpoints(s)
                .iter()
                .map(|e| (e.target.record.target.clone(), e.port))
                .collect()
        };
        assert_eq!(hosts(Service::Http), [("expe.example.com".into(), 8443)]);
        // No _xmpp-client records: XMPP goes to the edge on 5222, SIP on 5061.
        assert_eq!(hosts(Service::Xmpp), [("expe.example.com".into(), 5222)]);
        assert_eq!(hosts(Service::Sip), [("expe.example.com".into(), 5061)]);
        let mut with_xmpp = d.clone();
        with_xmpp.lookups.push(SrvLookup {
            kind: SrvKind::XmppClient,
            name: SrvKind::XmppClient.owner("example.com"),
            answer: SrvAnswer::Found {
                targets: vec![target("cup.example.com", 5222, &["192.0.2.9"])],
            },
        });
        let xmpp: Vec<String> = with_xmpp
            .endpoints(Service::Xmpp)
            .iter()
            .map(|e| e.target.record.target.clone())
            .collect();
        assert_eq!(xmpp, ["cup.example.com"]);
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
}
