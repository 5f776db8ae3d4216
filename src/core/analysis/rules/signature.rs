//! `signature.*`: digest algorithms on the path, and signatures edgetap cannot check.

use super::Scope;
use crate::core::analysis::catalog as c;
use crate::core::analysis::finding::Finding;
use crate::core::x509::SignatureHash;
use crate::core::x509::signature::SigCheck;

/// SHA-1/MD5 on any non-root certificate; unverifiable signatures.
pub fn check(s: &Scope<'_, '_>, out: &mut Vec<Finding>) {
    for (node, cert) in s.path_certs() {
        if s.is_root(node) {
            continue; // a root's self-signature is never checked by clients
        }
        let weak = match cert.signature_hash {
            SignatureHash::Sha1 => "SHA-1",
            SignatureHash::Md5 => "MD5",
            _ => continue,
        };
        out.push(
            Finding::new(&c::SIGNATURE_SHA1, format!("{} is signed with {weak} ({})", cert.short_name(), cert.signature_algorithm))
                .cert(s.cert_ref(node))
                .evidence("signatureAlgorithm", Some("SHA-256 or stronger".into()), Some(cert.signature_algorithm.clone()))
                .fix("have the CA reissue the certificate with SHA-256 (the Expressway CSR default since X8.5.1)"),
        );
    }
    for link in &s.path.links {
        if link.child == link.issuer {
            continue; // a root's own signature is not checked by clients
        }
        if let SigCheck::Unsupported(reason) = &link.signature {
            let child = s.cert_ref(link.child);
            out.push(
                Finding::new(&c::SIGNATURE_UNVERIFIABLE, format!("the signature on {} cannot be checked: {reason}", child.subject))
                    .cert(child)
                    .evidence("signature", Some("an algorithm edgetap verifies (RSA, ECDSA P-256/P-384, Ed25519)".into()), Some(reason.clone()))
                    .fix("reissue with an RSA SHA-256 signature; clients that cannot check this signature will reject the chain"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;

    // SHA-1 and DSA certificates cannot be made with rcgen; their firing tests are
    // in tests/openssl_fixtures.rs, on chains made by the openssl CLI.
    #[test]
    fn sha256_chain_is_quiet() {
        let (case, _, _) = good_edge();
        let report = case.run();
        assert_quiet(&report, "signature.sha1");
        assert_quiet(&report, "signature.unverifiable");
    }
}
