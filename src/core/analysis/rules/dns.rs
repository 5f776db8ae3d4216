//! `dns.*` rules decided on a handshake: does the certificate name the SRV target
//! the client looked up? (The rules decided on DNS answers alone are in
//! `core::discovery`.)

use super::Handshake;
use crate::core::analysis::catalog as c;
use crate::core::analysis::finding::Finding;
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
}
