//! `key.*`: key types and sizes Expressway and the phones handle.

use super::{Handshake, Scope};
use crate::core::analysis::catalog as c;
use crate::core::analysis::finding::Finding;
use crate::core::x509::KeyInfo;

/// RSA sizes on every certificate of the path.
pub fn check_sizes(s: &Scope<'_, '_>, out: &mut Vec<Finding>) {
    for (node, cert) in s.path_certs() {
        let KeyInfo::Rsa { bits } = cert.key else {
            continue;
        };
        if bits < 2048 {
            out.push(
                Finding::new(&c::KEY_RSA_TOO_SMALL, format!("{} has a {bits}-bit RSA key", cert.short_name()))
                    .cert(s.cert_ref(node))
                    .evidence("public key", Some("RSA 2048 bits or more".into()), Some(format!("RSA {bits}")))
                    .fix("generate a new 2048-bit (or 4096-bit) RSA key and CSR, and have the certificate reissued"),
            );
        } else if bits >= 8192 {
            out.push(
                Finding::new(&c::KEY_RSA_8192, format!("{} has an {bits}-bit RSA key", cert.short_name()))
                    .cert(s.cert_ref(node))
                    .evidence("public key", Some("RSA 2048 or 4096 bits".into()), Some(format!("RSA {bits}")))
                    .fix("reissue with a 2048- or 4096-bit RSA key; 8192-bit keys are a known Expressway trouble spot"),
            );
        }
    }
}

/// The server's own key type.
pub fn check_type(hs: &Handshake<'_>, out: &mut Vec<Finding>) {
    let Some(leaf) = hs.leaf() else { return };
    if !matches!(leaf.key, KeyInfo::Rsa { .. }) {
        out.push(
            Finding::new(&c::KEY_NOT_RSA, format!("the server key is {}, not RSA", leaf.key.describe()))
                .cert(hs.cert_ref(0))
                .evidence("public key", Some("RSA".into()), Some(leaf.key.describe()))
                .fix("use an RSA key for Expressway and UC server certificates; other key types are untested there and may not work with every endpoint"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;

    fn with_key_bits(bits: usize) -> Case {
        let root = root("Key Root");
        let key = fake_rsa_public_key(bits);
        let leaf = leaf_with_public_key(
            leaf_params("expe.example.com", &["expe.example.com"]),
            &root,
            &key,
        );
        Case::new(vec![leaf], "expe.example.com").public(vec![root.der()])
    }

    #[test]
    fn rsa_too_small_fires_below_2048() {
        let report = with_key_bits(1023).run();
        assert_fires(&report, "key.rsa-too-small");
        let f = report.handshakes[0]
            .findings
            .iter()
            .find(|f| f.rule.id == "key.rsa-too-small")
            .unwrap();
        assert_eq!(
            f.evidence.presented.as_deref(),
            Some("RSA 1023"),
            "odd sizes are counted exactly"
        );
        assert_quiet(&with_key_bits(2048).run(), "key.rsa-too-small");
    }

    #[test]
    fn rsa_8192_fires_at_8192() {
        assert_fires(&with_key_bits(8192).run(), "key.rsa-8192");
        assert_quiet(&with_key_bits(4096).run(), "key.rsa-8192");
    }

    #[test]
    fn not_rsa_fires_for_ecdsa_leaf() {
        let root = root("EC Root");
        let leaf = leaf_with_key(
            leaf_params("expe.example.com", &["expe.example.com"]),
            &root,
            &ec_key(),
        );
        let report = Case::new(vec![leaf], "expe.example.com")
            .public(vec![root.der()])
            .run();
        assert_fires(&report, "key.not-rsa");
        assert_eq!(
            report.handshakes[0].verdicts[&crate::core::analysis::Profile::Jabber]
                .outcome
                .as_str(),
            "ok"
        );
        let (case, _, _) = good_edge();
        assert_quiet(&case.run(), "key.not-rsa");
    }
}
