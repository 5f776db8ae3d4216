//! `usage.*`: extended key usage of the leaf, BasicConstraints of the CAs.

use super::{Handshake, Scope};
use crate::core::analysis::catalog as c;
use crate::core::analysis::finding::Finding;

/// Leaf EKU: Expressway needs both server and client authentication.
pub fn check_eku(hs: &Handshake<'_>, out: &mut Vec<Finding>) {
    let Some(leaf) = hs.leaf() else { return };
    let Some(eku) = &leaf.eku else { return };
    let present = {
        let mut p = Vec::new();
        if eku.server_auth {
            p.push("serverAuth")
        }
        if eku.client_auth {
            p.push("clientAuth")
        }
        if eku.any {
            p.push("anyExtendedKeyUsage")
        }
        if p.is_empty() {
            "neither serverAuth nor clientAuth".to_owned()
        } else {
            p.join(", ")
        }
    };
    if !eku.server_auth {
        out.push(
            Finding::new(&c::USAGE_EKU_SERVER_AUTH_MISSING, "the certificate's extended key usage does not allow TLS Web Server Authentication")
                .cert(hs.cert_ref(0))
                .evidence("extendedKeyUsage", Some("serverAuth (1.3.6.1.5.5.7.3.1)".into()), Some(present.clone()))
                .fix("reissue the certificate from a CSR requesting TLS Web Server and TLS Web Client Authentication (the Expressway CSR page does this by default)"),
        );
    }
    if !eku.client_auth {
        out.push(
            Finding::new(&c::USAGE_EKU_CLIENT_AUTH_MISSING, "the certificate's extended key usage does not allow TLS Web Client Authentication")
                .cert(hs.cert_ref(0))
                .evidence("extendedKeyUsage", Some("clientAuth (1.3.6.1.5.5.7.3.2)".into()), Some(present))
                .fix("reissue the certificate with TLS Web Client Authentication as well; Expressway refuses the upload and traversal zones cannot authenticate without it"),
        );
    }
}

/// Every CA on the path needs BasicConstraints for Expressway.
pub fn check_basic_constraints(s: &Scope<'_, '_>, out: &mut Vec<Finding>) {
    for (node, cert) in s.path_certs().skip(1) {
        if cert.basic_constraints_ca.is_none() {
            out.push(
                Finding::new(
                    &c::USAGE_CA_BASIC_CONSTRAINTS_MISSING,
                    format!("CA certificate {} has no BasicConstraints extension", cert.short_name()),
                )
                .cert(s.cert_ref(node))
                .evidence("basicConstraints", Some("cA=TRUE".into()), Some("absent".into()))
                .fix("reissue the CA certificate with BasicConstraints cA=TRUE (critical); Expressway's CA checking requires it"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use rcgen::{ExtendedKeyUsagePurpose as Eku, IsCa};

    fn with_eku(ekus: Vec<Eku>) -> Case {
        let root = root("EKU Root");
        let mut p = leaf_params("expe.example.com", &["expe.example.com"]);
        p.extended_key_usages = ekus;
        Case::new(vec![leaf(p, &root)], "expe.example.com").public(vec![root.der()])
    }

    #[test]
    fn server_only_eku_fails_expressway_c() {
        let report = with_eku(vec![Eku::ServerAuth]).run();
        assert_fires(&report, "usage.eku-client-auth-missing");
        assert_quiet(&report, "usage.eku-server-auth-missing");
        let v = &report.handshakes[0].verdicts;
        assert_eq!(
            v[&crate::core::analysis::Profile::ExpresswayC]
                .outcome
                .as_str(),
            "fail"
        );
        assert_eq!(
            v[&crate::core::analysis::Profile::Jabber].outcome.as_str(),
            "ok"
        );
    }

    #[test]
    fn client_only_eku_fails_everyone() {
        let report = with_eku(vec![Eku::ClientAuth]).run();
        assert_fires(&report, "usage.eku-server-auth-missing");
        assert_quiet(&report, "usage.eku-client-auth-missing");
    }

    #[test]
    fn both_or_no_eku_is_quiet() {
        for case in [
            with_eku(vec![Eku::ServerAuth, Eku::ClientAuth]),
            with_eku(vec![]),
        ] {
            let report = case.run();
            assert_quiet(&report, "usage.eku-server-auth-missing");
            assert_quiet(&report, "usage.eku-client-auth-missing");
        }
    }

    #[test]
    fn ca_without_basic_constraints() {
        let mut p = ca_params("Old Style Root");
        p.is_ca = IsCa::NoCa;
        p.key_usages = vec![];
        let root = root_with(p);
        let report = Case::new(
            vec![leaf(
                leaf_params("expe.example.com", &["expe.example.com"]),
                &root,
            )],
            "expe.example.com",
        )
        .public(vec![root.der()])
        .run();
        assert_fires(&report, "usage.ca-basic-constraints-missing");
        let (case, _, _) = good_edge();
        assert_quiet(&case.run(), "usage.ca-basic-constraints-missing");
    }
}
