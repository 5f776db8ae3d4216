//! What discovery learned, written back as DNS answers a capture can carry: one
//! response message per SRV look-up (the records in client order, the targets'
//! addresses as additional records; NXDOMAIN, NODATA, a "." target, a server
//! failure as the resolver reported them), each in a UDP frame from the
//! nameserver. Replay reads them back (`core::capture::dns`), so a probe's
//! capture carries the context its handshakes were judged with. A look-up that
//! timed out got no answer and gets no frame.

use std::net::{IpAddr, SocketAddr};

use etherparse::PacketBuilder;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::core::discovery::{Discovery, SrvAnswer};

fn name(s: &str) -> Option<Name> {
    Name::from_ascii(format!("{}.", s.trim_end_matches('.'))).ok()
}

/// One DNS response per look-up that got an answer, as wire bytes.
pub fn answer_messages(d: &Discovery) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (i, lookup) in d.lookups.iter().enumerate() {
        let Some(owner) = name(&lookup.name) else {
            continue;
        };
        let mut m = Message::new(0x4500 + i as u16, MessageType::Response, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.metadata.recursion_available = true;
        m.add_query(Query::query(owner.clone(), RecordType::SRV));
        m.metadata.response_code = match &lookup.answer {
            SrvAnswer::Found { targets } => {
                for t in targets {
                    let Some(target) = name(&t.record.target) else {
                        continue;
                    };
                    let srv = SRV::new(
                        t.record.priority,
                        t.record.weight,
                        t.record.port,
                        target.clone(),
                    );
                    m.add_answer(Record::from_rdata(owner.clone(), 60, RData::SRV(srv)));
                    for ip in &t.addresses {
                        let data = match ip {
                            IpAddr::V4(v4) => RData::A(A(*v4)),
                            IpAddr::V6(v6) => RData::AAAA(AAAA(*v6)),
                        };
                        m.add_additional(Record::from_rdata(target.clone(), 60, data));
                    }
                }
                ResponseCode::NoError
            }
            SrvAnswer::NotOffered => {
                let srv = SRV::new(0, 0, 0, Name::root());
                m.add_answer(Record::from_rdata(owner.clone(), 60, RData::SRV(srv)));
                ResponseCode::NoError
            }
            SrvAnswer::NxDomain => ResponseCode::NXDomain,
            SrvAnswer::NoData => ResponseCode::NoError,
            SrvAnswer::ServerFailure { .. } => ResponseCode::ServFail,
            SrvAnswer::Timeout | SrvAnswer::Error { .. } => continue,
        };
        if let Ok(bytes) = m.to_vec() {
            out.push(bytes);
        }
    }
    out
}

/// An Ethernet frame carrying `payload` in UDP from `src` to `dst`.
pub fn udp_frame(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let eth = PacketBuilder::ethernet2([0x02, 0, 0, 0, 0, 0x35], [0x02, 0, 0, 0, 0, 0x01]);
    let udp = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => eth.ipv4(s.octets(), d.octets(), 64),
        (s, d) => eth.ipv6(super::flow::v6(s), super::flow::v6(d), 64),
    }
    .udp(src.port(), dst.port());
    let mut bytes = Vec::with_capacity(udp.size(payload.len()));
    // Writing into a Vec cannot fail; a DNS message is far below the UDP limit.
    let _ = udp.write(&mut bytes, payload);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::capture::dns::CapturedDns;
    use crate::core::discovery::SrvKind;
    use crate::core::discovery::tests::{discovery, target};

    #[test]
    fn written_answers_read_back_as_the_same_discovery() {
        let edge = SrvAnswer::Found {
            targets: vec![
                target("expe1.example.com", 8443, &["192.0.2.1", "2001:db8::1"]),
                target("expe2.example.com", 8443, &["192.0.2.2"]),
            ],
        };
        let d = discovery(edge, SrvAnswer::NxDomain);
        let (server, client): (SocketAddr, SocketAddr) = (
            "192.0.2.53:53".parse().unwrap(),
            "192.0.2.7:41000".parse().unwrap(),
        );
        let mut replay = crate::core::capture::replay::Replay::new();
        for (i, m) in answer_messages(&d).iter().enumerate() {
            replay.frame(i as u64 + 1, 0.0, 1, &udp_frame(server, client, m));
        }
        let dns: CapturedDns = replay.take_dns();
        let back = dns.discoveries("x.pcapng");
        assert_eq!(back.len(), 1);
        let b = &back[0].discovery;
        assert_eq!(b.domain, "example.com");
        let (edge, again) = (
            d.lookup(SrvKind::CollabEdge).unwrap(),
            b.lookup(SrvKind::CollabEdge).unwrap(),
        );
        assert_eq!(again.answer, edge.answer);
        assert_eq!(
            b.lookup(SrvKind::CiscoUds).unwrap().answer,
            SrvAnswer::NxDomain
        );
    }
}
