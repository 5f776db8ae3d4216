//! `identity.*`: does the leaf name what the client asked for, in a field that
//! client checks?

use super::Handshake;
use crate::core::analysis::catalog as c;
use crate::core::analysis::finding::Finding;
use crate::core::observation::{ReferenceIdentity, Service};
use crate::core::x509::SanEntry;
use crate::core::x509::names::{self, NameField};

/// Match the reference identity against the leaf.
pub fn check(hs: &Handshake<'_>, out: &mut Vec<Finding>) {
    let Some(leaf) = hs.leaf() else { return };
    let reference = &hs.obs.reference_identity;
    let service = hs.obs.service;
    let matches = names::matches(leaf, reference, service);
    let cert = hs.cert_ref(0);
    let presented_names = || {
        let mut all: Vec<String> = leaf.san.iter().flatten().map(|e| e.as_text()).collect();
        all.extend(leaf.common_names.iter().map(|cn| format!("CN={cn}")));
        if all.is_empty() {
            "no names".to_owned()
        } else {
            all.join(", ")
        }
    };

    if matches.is_empty() {
        let finding = match (reference, service) {
            (ReferenceIdentity::Ip(ip), _) => Finding::new(
                &c::IDENTITY_IP_ADDRESS,
                format!("the client connected to {ip} but the certificate has no iPAddress SAN {ip}"),
            )
            .evidence("SAN iPAddress", Some(ip.to_string()), Some(presented_names()))
            .fix(format!(
                "configure clients with the server's FQDN ({}) instead of its IP address; public CAs do not issue IP identities",
                leaf.san_dns().next().map_or_else(|| leaf.short_name(), str::to_owned)
            )),
            (ReferenceIdentity::Dns(domain), Service::Xmpp) => Finding::new(
                &c::IDENTITY_XMPP_DOMAIN_MISSING,
                format!("the XMPP domain {domain} is not in xmppAddr, SRVName, dNSName or CN"),
            )
            .evidence("SAN xmppAddr/SRVName/dNSName, CN", Some(domain.clone()), Some(presented_names()))
            .fix(format!("add {domain} as a SAN (dNSName, or xmppAddr) on the cup-xmpp / Expressway-E certificate and have it re-signed")),
            (ReferenceIdentity::Dns(name), _) => Finding::new(
                &c::IDENTITY_MISMATCH,
                format!("{name} is not among the certificate's names"),
            )
            .evidence("SAN dNSName, CN", Some(name.clone()), Some(presented_names()))
            .fix(format!(
                "add {name} as a SAN on the server certificate, or point clients at a name the certificate carries"
            )),
        };
        out.push(finding.cert(cert));
        return;
    }

    if matches.iter().all(|m| m.wildcard) {
        let m = &matches[0];
        out.push(
            Finding::new(
                &c::IDENTITY_WILDCARD,
                format!("{reference} matches only the wildcard {} ({})", m.presented, m.field.label()),
            )
            .cert(cert.clone())
            .evidence(m.field.label(), Some(reference.to_string()), Some(m.presented.clone()))
            .fix(format!("list {reference} explicitly as a SAN dNSName; Expressway, CUCM and IM and Presence do not support wildcard certificates")),
        );
    }
    let san_names = leaf
        .san
        .iter()
        .flatten()
        .filter(|e| {
            matches!(
                e,
                SanEntry::Dns(_) | SanEntry::SrvName(_) | SanEntry::XmppAddr(_)
            )
        })
        .count();
    if san_names > 0 && matches.iter().all(|m| m.field == NameField::CommonName) {
        out.push(
            Finding::new(
                &c::IDENTITY_CN_IGNORED_WITH_SAN,
                format!("{reference} is only in the subject CN, and the certificate has {san_names} SAN name(s): clients that follow RFC 6125 never read the CN then"),
            )
            .cert(cert.clone())
            .evidence("SAN", Some(reference.to_string()), Some(presented_names()))
            .fix(format!("reissue the certificate with {reference} as a SAN dNSName; the phones, TelePresence endpoints and Expressway match only the SAN when it has names")),
        );
    }
    if matches.iter().all(|m| m.field == NameField::CommonName) {
        out.push(
            Finding::new(
                &c::IDENTITY_CN_ONLY,
                format!("{reference} is found only in the subject CN, not in the SAN"),
            )
            .cert(cert)
            .evidence("SAN", Some(reference.to_string()), Some(presented_names()))
            .fix(format!("reissue the certificate with {reference} also as a SAN dNSName; clients increasingly ignore the CN")),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::core::analysis::profile::Profile;
    use crate::core::observation::Service;
    use rcgen::SanType;

    fn self_contained(params: rcgen::CertificateParams, name: &str) -> Case {
        let root = root("Identity Root");
        Case::new(vec![leaf(params, &root)], name).public(vec![root.der()])
    }

    #[test]
    fn mismatch_fires_for_other_names_only() {
        let report = self_contained(
            leaf_params("expe.example.com", &["expe.example.com"]),
            "cucm.example.com",
        )
        .run();
        let profiles = assert_fires(&report, "identity.mismatch");
        assert_eq!(profiles.len(), 4);
        assert_eq!(
            report.handshakes[0].verdicts[&Profile::Jabber]
                .outcome
                .as_str(),
            "prompt"
        );
        let ok = self_contained(
            leaf_params("expe.example.com", &["expe.example.com"]),
            "EXPE.example.com.",
        )
        .run();
        assert_quiet(&ok, "identity.mismatch");
    }

    #[test]
    fn ip_literal_needs_ip_san() {
        let report = self_contained(
            leaf_params("cucm.example.com", &["cucm.example.com"]),
            "192.0.2.10",
        )
        .run();
        assert_fires(&report, "identity.ip-address");
        assert_quiet(&report, "identity.mismatch");
        let mut p = leaf_params("cucm.example.com", &["cucm.example.com"]);
        p.subject_alt_names
            .push(SanType::IpAddress("192.0.2.10".parse().unwrap()));
        assert_quiet(
            &self_contained(p, "192.0.2.10").run(),
            "identity.ip-address",
        );
        // A CN or dNSName spelling the IP does not count.
        let p = leaf_params("192.0.2.10", &["192.0.2.10"]);
        assert_fires(
            &self_contained(p, "192.0.2.10").run(),
            "identity.ip-address",
        );
    }

    #[test]
    fn xmpp_domain_via_xmpp_addr_srvname_or_dns() {
        let plain = leaf_params("cup.example.com", &["cup.example.com"]);
        let report = self_contained(plain, "example.com")
            .service(Service::Xmpp)
            .run();
        assert_fires(&report, "identity.xmpp-domain-missing");
        assert_quiet(&report, "identity.mismatch");
        let v = &report.handshakes[0].verdicts;
        assert_eq!(
            v[&Profile::IpPhone].rules,
            Vec::<&str>::new(),
            "n/a for phones"
        );

        let mut p = leaf_params("cup.example.com", &["cup.example.com"]);
        p.subject_alt_names.push(SanType::OtherName((
            vec![1, 3, 6, 1, 5, 5, 7, 8, 5],
            "example.com".into(),
        )));
        assert_quiet(
            &self_contained(p, "example.com")
                .service(Service::Xmpp)
                .run(),
            "identity.xmpp-domain-missing",
        );

        let dns = leaf_params("cup.example.com", &["cup.example.com", "example.com"]);
        assert_quiet(
            &self_contained(dns, "example.com")
                .service(Service::Xmpp)
                .run(),
            "identity.xmpp-domain-missing",
        );
    }

    #[test]
    fn xmpp_addr_does_not_count_for_http() {
        let mut p = leaf_params("cup.example.com", &["cup.example.com"]);
        p.subject_alt_names.push(SanType::OtherName((
            vec![1, 3, 6, 1, 5, 5, 7, 8, 5],
            "example.com".into(),
        )));
        assert_fires(&self_contained(p, "example.com").run(), "identity.mismatch");
    }

    #[test]
    fn wildcard_only_match_warns_and_fails_expressway() {
        let report = self_contained(
            leaf_params("*.example.com", &["*.example.com"]),
            "expe.example.com",
        )
        .run();
        assert_fires(&report, "identity.wildcard");
        assert_eq!(
            report.handshakes[0].verdicts[&Profile::ExpresswayC]
                .outcome
                .as_str(),
            "fail"
        );
        let exact = self_contained(
            leaf_params("expe.example.com", &["*.example.com", "expe.example.com"]),
            "expe.example.com",
        )
        .run();
        assert_quiet(&exact, "identity.wildcard");
    }

    #[test]
    fn cn_only_match_warns() {
        let report = self_contained(leaf_params("expe.example.com", &[]), "expe.example.com").run();
        assert_fires(&report, "identity.cn-only");
        assert_quiet(&report, "identity.mismatch");
        let san = self_contained(
            leaf_params("expe.example.com", &["expe.example.com"]),
            "expe.example.com",
        )
        .run();
        assert_quiet(&san, "identity.cn-only");
    }
}
