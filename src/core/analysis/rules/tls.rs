//! `tls.*`: what the handshake itself negotiated, or why it did not complete.

use super::Handshake;
use crate::core::analysis::catalog as c;
use crate::core::analysis::finding::Finding;
use crate::core::observation::{Failure, Step};
use crate::core::tls::iana::Side;

/// What to do about a failure, by the step that failed and who ended it; a
/// capture that missed the handshake fires no finding at all (see `check`).
fn failure_fix(f: &Failure) -> &'static str {
    match (f.step, f.by) {
        (Step::Connect, _) => {
            "check that the server is up and listens on this port, and that no firewall or load balancer on the way drops the connection"
        }
        (Step::Starttls, _) => {
            "check the XMPP server's STARTTLS (the stream header's domain must be one it serves, and it must offer <starttls/>)"
        }
        (Step::TlsHandshake, Some(Side::Client)) => {
            "the client ended the handshake: its alert names why (unknown_ca or bad_certificate: it does not accept the chain; see the chain findings for the cause)"
        }
        // (A capture that missed the handshake, or a client that sent no
        // ClientHello, fires no finding.)
        (Step::TlsHandshake | Step::Capture | Step::ClientHello, _) => {
            "check that the server listens with TLS on this port and accepts TLS 1.2 with current cipher suites; the reason names what failed"
        }
    }
}

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
    // A capture that misses the server's side, or a client that never sent a
    // ClientHello, shows no failure of the server: the verdict says "not
    // judged" instead.
    if let Some(failure) = tls
        .failure
        .as_ref()
        .filter(|f| !matches!(f.step, Step::Capture | Step::ClientHello))
    {
        let step = match failure.step {
            Step::Connect => "connect",
            Step::Starttls => "XMPP STARTTLS",
            Step::TlsHandshake => "TLS handshake",
            Step::Capture | Step::ClientHello => "capture",
        };
        out.push(
            Finding::new(
                &c::TLS_HANDSHAKE_FAILED,
                format!("the TLS handshake did not complete: {failure}"),
            )
            .evidence(
                step,
                Some("a completed TLS handshake".into()),
                Some(failure.reason.clone()),
            )
            .fix(failure_fix(failure)),
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
        case.tls.failure = failure.map(|r| {
            crate::core::observation::Failure::new(
                crate::core::observation::Step::TlsHandshake,
                None,
                r,
            )
        });
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

    /// The fix follows the step and the side: a client's alert says the client
    /// refused; a capture that missed the server's side blames no one (the
    /// rule stays quiet and the verdict is "not judged").
    #[test]
    fn the_fix_names_the_failed_step_and_side() {
        use crate::core::observation::{Failure, Step};
        use crate::core::tls::iana::Side;
        let fix_for = |f: Failure| {
            let (mut case, _, _) = good_edge();
            case.tls.failure = Some(f);
            let report = case.run();
            assert_fires(&report, "tls.handshake-failed");
            report.handshakes[0]
                .findings
                .iter()
                .find(|f| f.rule.id == "tls.handshake-failed")
                .map(|f| f.fix.clone())
                .unwrap()
        };
        let client = fix_for(Failure::new(
            Step::TlsHandshake,
            Some(Side::Client),
            "the client sent a fatal unknown_ca alert",
        ));
        assert!(
            client.contains("the client ended the handshake"),
            "{client}"
        );
        let connect = fix_for(Failure::new(
            Step::Connect,
            Some(Side::Server),
            "connection refused",
        ));
        assert!(connect.contains("listens on this port"), "{connect}");
    }

    #[test]
    fn a_capture_without_the_server_side_is_not_judged_not_failed() {
        use crate::core::analysis::Profile;
        use crate::core::observation::{Failure, Step};
        let (mut case, _, _) = good_edge();
        case.presented.clear();
        case.tls.failure = Some(Failure::new(
            Step::Capture,
            None,
            "no ServerHello in the capture",
        ));
        let report = case.run();
        assert_quiet(&report, "tls.handshake-failed");
        let v = &report.handshakes[0].verdicts[&Profile::Jabber];
        assert_eq!(v.outcome.as_str(), "unknown");
        assert!(v.not_judged.as_deref().unwrap().contains("no ServerHello"));
    }

    /// A client that sent no ClientHello (plain HTTP to a TLS port) is not
    /// a server failure: nothing fires, every profile is unknown with why.
    #[test]
    fn a_client_without_a_client_hello_is_not_judged_not_failed() {
        use crate::core::analysis::Profile;
        use crate::core::observation::{Failure, Step};
        let (mut case, _, _) = good_edge();
        case.presented.clear();
        case.tls.failure = Some(Failure::new(
            Step::ClientHello,
            Some(crate::core::tls::iana::Side::Client),
            "the client sent no TLS ClientHello (its first bytes: \"GET / HTTP/1.1\")",
        ));
        let report = case.run();
        assert_quiet(&report, "tls.handshake-failed");
        for p in Profile::ALL {
            let v = &report.handshakes[0].verdicts[&p];
            assert_eq!(v.outcome.as_str(), "unknown", "{p:?}");
            assert!(
                v.not_judged
                    .as_deref()
                    .unwrap()
                    .contains("sent no TLS ClientHello")
            );
        }
    }
}
