//! DNS answers seen in a capture: what a client starting up learned about where
//! its servers are (the SRV look-ups of `core::discovery`, and the A/AAAA
//! answers for their targets), read from UDP and TCP port 53 with
//! hickory-proto and turned into the same [`Discovery`] that `discover` builds.
//! A handshake to one of those targets then gets the context a live client had:
//! its SRV record, its cluster peers and, for `_collab-edge`, the edge domain.
//! What the capture does not show stays unknown: a target whose address
//! look-up was not captured is marked so, and kinds never asked are left out.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

use crate::core::discovery::{
    Discovery, ResolvedTarget, SrvAnswer, SrvKind, SrvLookup, SrvRecord, host_name, order_srv,
    srv_record,
};
use crate::core::observation::{Observation, ReferenceIdentity, Service};

/// Largest DNS-over-TCP backlog kept per direction before giving up on it.
const MAX_TCP_BACKLOG: usize = 128 * 1024;

/// One SRV answer as captured.
#[derive(Debug, Clone)]
struct SrvSeen {
    frame: u64,
    rcode: ResponseCode,
    records: Vec<SrvRecord>,
}

/// One name's address answers as captured.
#[derive(Debug, Clone, Default)]
struct AddressesSeen {
    addresses: Vec<IpAddr>,
    /// A negative answer (NXDOMAIN, SERVFAIL), when that is all there was.
    failure: Option<String>,
}

/// Everything DNS in one capture said.
#[derive(Debug, Default)]
pub struct CapturedDns {
    srv: BTreeMap<String, SrvSeen>,
    addresses: HashMap<String, AddressesSeen>,
    cnames: HashMap<String, String>,
    tcp: HashMap<(SocketAddr, SocketAddr), Vec<u8>>,
    /// DNS responses read.
    pub responses: u64,
    /// Port-53 payloads that were not DNS messages.
    pub undecodable: u64,
}

impl CapturedDns {
    /// A UDP payload from port 53, in frame `frame`.
    pub fn datagram(&mut self, frame: u64, payload: &[u8]) {
        self.message(frame, payload);
    }

    /// Reassembled bytes a DNS server sent over TCP (`flow` = server, client):
    /// messages with their two-byte length prefix, in any chunking.
    pub fn tcp_bytes(&mut self, frame: u64, flow: (SocketAddr, SocketAddr), bytes: &[u8]) {
        let mut buf = self.tcp.remove(&flow).unwrap_or_default();
        buf.extend_from_slice(bytes);
        let mut at = 0;
        while buf.len() >= at + 2 {
            let len = usize::from(u16::from_be_bytes([buf[at], buf[at + 1]]));
            if buf.len() < at + 2 + len {
                break;
            }
            self.message(frame, &buf[at + 2..at + 2 + len]);
            at += 2 + len;
        }
        buf.drain(..at);
        if !buf.is_empty() && buf.len() <= MAX_TCP_BACKLOG {
            self.tcp.insert(flow, buf);
        }
    }

    fn message(&mut self, frame: u64, bytes: &[u8]) {
        let Ok(msg) = Message::from_vec(bytes) else {
            self.undecodable += 1;
            return;
        };
        if msg.metadata.message_type != MessageType::Response {
            return;
        }
        self.responses += 1;
        let rcode = msg.metadata.response_code;
        for record in msg.answers.iter().chain(msg.additionals.iter()) {
            let owner = host_name(&record.name);
            match &record.data {
                RData::A(a) => self.address(owner, IpAddr::V4(a.0)),
                RData::AAAA(a) => self.address(owner, IpAddr::V6(a.0)),
                RData::CNAME(c) => {
                    self.cnames.insert(owner, host_name(&c.0));
                }
                _ => {}
            }
        }
        for q in &msg.queries {
            let name = host_name(q.name());
            match q.query_type() {
                RecordType::SRV
                    if SrvKind::ALL
                        .iter()
                        .any(|k| kind_and_domain(*k, &name).is_some()) =>
                {
                    let records = msg
                        .answers
                        .iter()
                        .filter_map(|r| match &r.data {
                            RData::SRV(s) => Some(srv_record(s)),
                            _ => None,
                        })
                        .collect();
                    self.srv.insert(
                        name,
                        SrvSeen {
                            frame,
                            rcode,
                            records,
                        },
                    );
                }
                RecordType::A | RecordType::AAAA if rcode != ResponseCode::NoError => {
                    let seen = self.addresses.entry(name).or_default();
                    if seen.addresses.is_empty() {
                        seen.failure = Some(format!("{rcode} in the capture"));
                    }
                }
                RecordType::A | RecordType::AAAA => {
                    self.addresses.entry(name).or_default();
                }
                _ => {}
            }
        }
    }

    fn address(&mut self, owner: String, ip: IpAddr) {
        let seen = self.addresses.entry(owner).or_default();
        seen.failure = None;
        if !seen.addresses.contains(&ip) {
            seen.addresses.push(ip);
        }
    }

    /// A name's addresses, through CNAMEs; None when no answer for it was seen.
    fn resolve(&self, name: &str) -> Option<&AddressesSeen> {
        let mut name = name;
        for _ in 0..8 {
            match self.addresses.get(name) {
                Some(seen) if !seen.addresses.is_empty() || seen.failure.is_some() => {
                    return Some(seen);
                }
                _ => {}
            }
            name = self.cnames.get(name)?;
        }
        None
    }

    /// True when no SRV answer of interest was captured.
    pub fn is_empty(&self) -> bool {
        self.srv.is_empty()
    }

    /// One [`Discovery`] per domain the capture shows SRV answers for, with
    /// the frame of each answer; `file` names where they were seen.
    pub fn discoveries(&self, file: &str) -> Vec<CapturedDiscovery> {
        let mut by_domain: BTreeMap<String, Vec<(SrvKind, &String, &SrvSeen)>> = BTreeMap::new();
        for (owner, seen) in &self.srv {
            for kind in SrvKind::ALL {
                if let Some(domain) = kind_and_domain(kind, owner) {
                    by_domain
                        .entry(domain.to_owned())
                        .or_default()
                        .push((kind, owner, seen));
                }
            }
        }
        by_domain
            .into_iter()
            .map(|(domain, mut seen)| {
                seen.sort_by_key(|(kind, _, _)| SrvKind::ALL.iter().position(|k| k == kind));
                let frames = seen
                    .iter()
                    .map(|(_, owner, s)| ((*owner).clone(), s.frame))
                    .collect();
                let lookups = seen
                    .into_iter()
                    .map(|(kind, owner, s)| SrvLookup {
                        kind,
                        name: owner.clone(),
                        answer: self.answer(s),
                    })
                    .collect();
                CapturedDiscovery {
                    discovery: Discovery {
                        domain,
                        resolver: format!("DNS answers captured in {file}"),
                        lookups,
                    },
                    frames,
                }
            })
            .collect()
    }

    fn answer(&self, s: &SrvSeen) -> SrvAnswer {
        match s.rcode {
            ResponseCode::NoError if s.records.is_empty() => SrvAnswer::NoData,
            ResponseCode::NoError if s.records.len() == 1 && s.records[0].target.is_empty() => {
                SrvAnswer::NotOffered
            }
            ResponseCode::NoError => SrvAnswer::Found {
                targets: order_srv(s.records.clone())
                    .into_iter()
                    .map(|record| {
                        let seen = self.resolve(&record.target);
                        ResolvedTarget {
                            addresses: seen.map(|a| a.addresses.clone()).unwrap_or_default(),
                            error: seen.and_then(|a| a.failure.clone()),
                            not_seen: seen.is_none(),
                            record,
                        }
                    })
                    .collect(),
            },
            ResponseCode::NXDomain => SrvAnswer::NxDomain,
            other => SrvAnswer::ServerFailure {
                detail: other.to_string(),
            },
        }
    }
}

/// The domain of an SRV owner name of `kind` (`_collab-edge._tls.example.com`
/// gives `example.com`).
fn kind_and_domain(kind: SrvKind, owner: &str) -> Option<&str> {
    owner
        .strip_prefix(kind.prefix())
        .and_then(|rest| rest.strip_prefix('.'))
        .filter(|d| !d.is_empty())
}

/// A discovery rebuilt from a capture, with the frame of each SRV answer.
#[derive(Debug, Clone)]
pub struct CapturedDiscovery {
    /// The look-ups, as `discover` would report them.
    pub discovery: Discovery,
    /// (SRV owner name, frame of its answer).
    pub frames: Vec<(String, u64)>,
}

/// Give a captured handshake the context its client had from the captured DNS:
/// the SRV record whose target (by captured address, or by SNI) and port it
/// went to, the cluster peers, the `_collab-edge` domain, the XMPP domain when
/// the stream did not say it; the origin says where each came from. Returns
/// true when some context was found.
pub fn give_context(obs: &mut Observation, found: &[CapturedDiscovery]) -> bool {
    let (Some(ip), Some(port)) = (obs.endpoint.ip, obs.endpoint.port) else {
        return false;
    };
    let sni = obs.tls.sni.as_deref().map(str::to_ascii_lowercase);
    for c in found {
        let d = &c.discovery;
        let mut candidates = d.endpoints(obs.service);
        if obs.service == Service::Http {
            candidates.extend(d.targets_of(SrvKind::CiscoUds, None));
            candidates.extend(d.targets_of(SrvKind::CupLogin, None));
        }
        let Some(e) = candidates.into_iter().find(|e| {
            e.port == port
                && (e.target.addresses.contains(&ip)
                    || sni.as_deref() == Some(e.target.record.target.as_str()))
        }) else {
            continue;
        };
        let target = e.target.record.target.clone();
        let frame = c
            .frames
            .iter()
            .find(|(owner, _)| *owner == e.lookup.name)
            .map_or(0, |(_, f)| *f);
        obs.srv = Some(e.context());
        let mut said = format!(
            "; SRV {} -> {target}:{} from the capture's DNS answer (frame {frame})",
            e.lookup.name, e.port
        );
        if e.lookup.kind == SrvKind::CollabEdge && obs.edge_domain.is_none() {
            obs.edge_domain = Some(d.domain.clone());
            said += &format!(", so edge domain {}", d.domain);
        }
        if matches!(obs.reference_identity, ReferenceIdentity::Ip(_)) {
            let name = if obs.service == Service::Xmpp {
                d.domain.clone()
            } else {
                target.clone()
            };
            said += &format!(", so the client checked {name}");
            obs.reference_identity = ReferenceIdentity::parse(&name);
        }
        obs.endpoint.host = Some(target);
        obs.origin.locator += &said;
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::{OpCode, Query};
    use hickory_proto::rr::rdata::{A, CNAME, SRV};
    use hickory_proto::rr::{Name, Record};

    use super::*;
    use crate::core::observation::{Origin, SourceKind};

    fn name(s: &str) -> Name {
        Name::from_ascii(format!("{s}.")).unwrap()
    }

    fn response(q: &str, t: RecordType, rcode: ResponseCode, answers: Vec<Record>) -> Vec<u8> {
        let mut m = Message::new(7, MessageType::Response, OpCode::Query);
        m.metadata.response_code = rcode;
        m.add_query(Query::query(name(q), t));
        for a in answers {
            m.add_answer(a);
        }
        m.to_vec().unwrap()
    }

    fn srv(owner: &str, prio: u16, port: u16, target: &str) -> Record {
        Record::from_rdata(
            name(owner),
            60,
            RData::SRV(SRV::new(prio, 10, port, name(target))),
        )
    }

    fn a(host: &str, ip: [u8; 4]) -> Record {
        Record::from_rdata(
            name(host),
            60,
            RData::A(A::from(std::net::Ipv4Addr::from(ip))),
        )
    }

    /// A client's start-up: the edge SRV set over UDP, one target's address
    /// through a CNAME over TCP (split across segments), the internal look-ups
    /// refused, the second target's address never asked.
    fn captured() -> CapturedDns {
        let mut dns = CapturedDns::default();
        dns.datagram(
            3,
            &response(
                "_collab-edge._tls.example.com",
                RecordType::SRV,
                ResponseCode::NoError,
                vec![
                    srv(
                        "_collab-edge._tls.example.com",
                        10,
                        8443,
                        "expe1.example.com",
                    ),
                    srv(
                        "_collab-edge._tls.example.com",
                        20,
                        8443,
                        "expe2.example.com",
                    ),
                ],
            ),
        );
        dns.datagram(
            4,
            &response(
                "_cisco-uds._tcp.example.com",
                RecordType::SRV,
                ResponseCode::NXDomain,
                vec![],
            ),
        );
        let tcp = response(
            "expe1.example.com",
            RecordType::A,
            ResponseCode::NoError,
            vec![
                Record::from_rdata(
                    name("expe1.example.com"),
                    60,
                    RData::CNAME(CNAME(name("edge-a.example.net"))),
                ),
                a("edge-a.example.net", [192, 0, 2, 10]),
            ],
        );
        let framed = [&(tcp.len() as u16).to_be_bytes()[..], &tcp].concat();
        let flow: (SocketAddr, SocketAddr) = (
            "192.0.2.53:53".parse().unwrap(),
            "192.0.2.7:40000".parse().unwrap(),
        );
        for chunk in framed.chunks(5) {
            dns.tcp_bytes(6, flow, chunk);
        }
        dns.datagram(9, b"\x00\x01not dns");
        dns
    }

    #[test]
    fn captured_answers_become_a_discovery() {
        let dns = captured();
        assert_eq!((dns.responses, dns.undecodable), (3, 1));
        let found = dns.discoveries("c.pcap");
        assert_eq!(found.len(), 1);
        let d = &found[0].discovery;
        assert_eq!(d.domain, "example.com");
        assert_eq!(d.resolver, "DNS answers captured in c.pcap");
        let edge = d.lookup(SrvKind::CollabEdge).unwrap();
        let t = edge.targets();
        assert_eq!(t[0].record.target, "expe1.example.com");
        assert_eq!(
            t[0].addresses,
            vec!["192.0.2.10".parse::<IpAddr>().unwrap()]
        );
        assert!(!t[0].not_seen);
        assert!(t[1].not_seen && t[1].addresses.is_empty());
        assert_eq!(
            d.lookup(SrvKind::CiscoUds).unwrap().answer,
            SrvAnswer::NxDomain
        );
        assert!(
            d.lookup(SrvKind::XmppClient).is_none(),
            "never asked: left out"
        );
        assert_eq!(
            found[0].frames[0],
            ("_collab-edge._tls.example.com".into(), 3)
        );
    }

    fn handshake(ip: [u8; 4], port: u16, sni: Option<&str>) -> Observation {
        let reference = match sni {
            Some(n) => ReferenceIdentity::parse(n),
            None => ReferenceIdentity::Ip(IpAddr::from(ip)),
        };
        let mut obs = Observation::new(
            Service::Http,
            reference,
            Vec::new(),
            Origin {
                kind: SourceKind::Replay,
                at: None,
                locator: "c.pcap frame 20".into(),
            },
        );
        obs.endpoint.ip = Some(IpAddr::from(ip));
        obs.endpoint.port = Some(port);
        obs.tls.sni = sni.map(str::to_owned);
        obs
    }

    #[test]
    fn a_handshake_to_a_target_gets_its_context_and_says_where_from() {
        let found = captured().discoveries("c.pcap");
        // By captured address, without SNI: the client checked the target name.
        let mut obs = handshake([192, 0, 2, 10], 8443, None);
        assert!(give_context(&mut obs, &found));
        assert_eq!(obs.edge_domain.as_deref(), Some("example.com"));
        assert_eq!(obs.reference_identity.to_string(), "expe1.example.com");
        assert_eq!(obs.endpoint.host.as_deref(), Some("expe1.example.com"));
        let srv = obs.srv.as_ref().unwrap();
        assert_eq!(srv.peers, ["expe1.example.com", "expe2.example.com"]);
        assert!(
            obs.origin
                .locator
                .contains("_collab-edge._tls.example.com -> expe1.example.com:8443 from the capture's DNS answer (frame 3), so edge domain example.com"),
            "{}",
            obs.origin.locator
        );
        // By SNI, for the target whose address was not captured.
        let mut obs = handshake([198, 51, 100, 1], 8443, Some("EXPE2.example.com"));
        assert!(give_context(&mut obs, &found));
        assert_eq!(obs.reference_identity.to_string(), "expe2.example.com");
        assert_eq!(obs.endpoint.host.as_deref(), Some("expe2.example.com"));
        // Not a target: another port, another address and name.
        let mut obs = handshake([192, 0, 2, 10], 443, None);
        assert!(!give_context(&mut obs, &found));
        let mut obs = handshake([198, 51, 100, 1], 8443, Some("www.example.com"));
        assert!(!give_context(&mut obs, &found) && obs.edge_domain.is_none());
    }
}
