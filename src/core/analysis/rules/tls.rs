//! `tls.*`: what the handshake itself negotiated, or why it did not complete.

use super::Handshake;
use crate::core::analysis::catalog as c;
use crate::core::analysis::finding::Finding;

/// Version, cipher and failure.
pub fn check(hs: &Handshake<'_>, out: &mut Vec<Finding>) {
    let tls = &hs.obs.tls;
    if tls.chain_hidden {
        let how = if hs.obs.presented.is_empty() {
            "no side probe chain is available"
        } else {
            "the chain shown was fetched by a side probe to the same server and name"
        };
        out.push(
            Finding::new(&c::TLS_CERTIFICATE_NOT_VISIBLE, format!("TLS 1.3 encrypts the certificate in this handshake; {how}"))
                .evidence("Certificate message", Some("visible in the handshake".into()), Some("encrypted (TLS 1.3)".into()))
                .fix("nothing to fix on the server; to see the exact bytes, use intercept mode or a TLS 1.2 capture"),
        );
    }
    if let Some(reason) = &tls.failure {
        out.push(
            Finding::new(&c::TLS_HANDSHAKE_FAILED, format!("the TLS handshake did not complete: {reason}"))
                .evidence("handshake", Some("a completed TLS handshake".into()), Some(reason.clone()))
                .fix("check that the server listens with TLS on this port and accepts TLS 1.2 with current cipher suites; the reason names the step that failed"),
        );
    }
    if let Some(version) = tls.version
        && version.is_below_tls12()
    {
        out.push(
                Finding::new(&c::TLS_VERSION_BELOW_1_2, format!("the server negotiated {version}"))
                    .evidence("protocol version", Some("TLSv1.2 or TLSv1.3".into()), Some(version.name()))
                    .fix("enable TLS 1.2 (and 1.3) on the server and disable older versions; phones and Expressway-C refuse them"),
            );
    }
    if let Some(cipher) = tls.cipher
        && !cipher.is_aes256()
    {
        out.push(
            Finding::new(&c::TLS_CIPHER_NOT_AES256, format!("the session uses {cipher}, not AES-256"))
                .evidence("cipher suite", Some("an AES-256 suite".into()), Some(cipher.name()))
                .fix("prefer AES-256-GCM suites on the server; on-premises Jabber expects AES-256 between client and server"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::core::tls::iana::{CipherSuite, ProtocolVersion};

    fn with_tls(version: Option<u16>, cipher: Option<u16>, failure: Option<&str>) -> Case {
        let (mut case, _, _) = good_edge();
        case.tls.version = version.map(ProtocolVersion::Code);
        case.tls.cipher = cipher.map(CipherSuite);
        case.tls.failure = failure.map(str::to_owned);
        case
    }

    #[test]
    fn old_version_fires() {
        assert_fires(
            &with_tls(Some(0x0302), None, None).run(),
            "tls.version-below-1.2",
        );
        assert_quiet(
            &with_tls(Some(0x0303), None, None).run(),
            "tls.version-below-1.2",
        );
        assert_quiet(
            &with_tls(Some(0x0304), None, None).run(),
            "tls.version-below-1.2",
        );
    }

    #[test]
    fn non_aes256_cipher_warns_jabber_only() {
        let report = with_tls(None, Some(0x1301), None).run();
        assert_fires(&report, "tls.cipher-not-aes256");
        assert_eq!(
            report.handshakes[0].verdicts[&crate::core::analysis::Profile::Jabber]
                .outcome
                .as_str(),
            "warn"
        );
        assert_quiet(
            &with_tls(None, Some(0x1302), None).run(),
            "tls.cipher-not-aes256",
        );
    }

    #[test]
    fn refused_as_too_old_fires() {
        let (mut case, _, _) = good_edge();
        case.tls.version = Some(ProtocolVersion::BelowTls12);
        assert_fires(&case.run(), "tls.version-below-1.2");
    }

    #[test]
    fn hidden_chain_is_noted() {
        let (mut case, _, _) = good_edge();
        case.tls.chain_hidden = true;
        assert_fires(&case.run(), "tls.certificate-not-visible");
        let (case, _, _) = good_edge();
        assert_quiet(&case.run(), "tls.certificate-not-visible");
    }

    #[test]
    fn failure_fires_handshake_failed() {
        let report = with_tls(
            None,
            None,
            Some("connection reset by peer during the handshake"),
        )
        .run();
        assert_fires(&report, "tls.handshake-failed");
        assert_quiet(
            &with_tls(Some(0x0304), None, None).run(),
            "tls.handshake-failed",
        );
    }
}
