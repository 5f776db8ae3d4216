//! `xmpp.*`: what the XMPP server offered before TLS.

use super::Handshake;
use crate::core::analysis::catalog as c;
use crate::core::analysis::finding::Finding;

/// STARTTLS offered and required?
pub fn check(hs: &Handshake<'_>, out: &mut Vec<Finding>) {
    let Some(x) = hs.obs.xmpp else { return };
    if !x.offered {
        out.push(
            Finding::new(&c::XMPP_STARTTLS_NOT_OFFERED, "the XMPP server did not offer STARTTLS in its stream features")
                .evidence("stream:features", Some("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>".into()), Some("no starttls".into()))
                .fix("enable TLS for client connections on the IM and Presence / XMPP server (XMPP client security mode)"),
        );
    } else if !x.required {
        out.push(
            Finding::new(&c::XMPP_STARTTLS_NOT_REQUIRED, "the XMPP server offers STARTTLS but does not require it: credentials may travel in the clear")
                .evidence("stream:features", Some("<starttls>…<required/></starttls>".into()), Some("<starttls/> without <required/>".into()))
                .fix("turn the XMPP client-to-server secure mode back on (IM and Presence: Security Settings, enable XMPP Client To IM/P Service Secure Mode)"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::core::observation::{Service, XmppStartTls};

    fn xmpp(offered: bool, required: bool) -> Case {
        let (case, _, _) = good_edge();
        let mut case = case.service(Service::Xmpp);
        case.xmpp = Some(XmppStartTls { offered, required });
        case
    }

    #[test]
    fn not_offered_and_not_required() {
        let report = xmpp(false, false).run();
        assert_fires(&report, "xmpp.starttls-not-offered");
        assert_quiet(&report, "xmpp.starttls-not-required");
        let report = xmpp(true, false).run();
        assert_fires(&report, "xmpp.starttls-not-required");
        assert_quiet(&report, "xmpp.starttls-not-offered");
        let report = xmpp(true, true).run();
        assert_quiet(&report, "xmpp.starttls-not-offered");
        assert_quiet(&report, "xmpp.starttls-not-required");
    }
}
