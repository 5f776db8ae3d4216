//! Matching a reference identity against a certificate, the way the client profiles do.
//!
//! XMPP clients check the XMPP domain in xmppAddr, SRVName (`_xmpp-client.<domain>`),
//! dNSName and then the subject CN; HTTP and SIP clients check dNSName and then CN
//! (client-behaviour.md, "Reference identity"). A wildcard counts only as the whole
//! leftmost label and covers exactly one label. An IP literal matches only an
//! iPAddress entry.

use std::net::IpAddr;

use serde::Serialize;

use super::cert::{CertInfo, SanEntry};
use crate::core::observation::{ReferenceIdentity, Service};

/// The certificate field a name matched in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NameField {
    /// SAN otherName id-on-xmppAddr.
    XmppAddr,
    /// SAN otherName SRVName.
    SrvName,
    /// SAN dNSName.
    DnsName,
    /// SAN iPAddress.
    IpAddress,
    /// Subject common name.
    CommonName,
}

impl NameField {
    /// Human name of the field.
    pub fn label(self) -> &'static str {
        match self {
            NameField::XmppAddr => "SAN xmppAddr",
            NameField::SrvName => "SAN SRVName",
            NameField::DnsName => "SAN dNSName",
            NameField::IpAddress => "SAN iPAddress",
            NameField::CommonName => "subject CN",
        }
    }
}

/// One identifier that matched the reference identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NameMatch {
    /// Where it was found.
    pub field: NameField,
    /// The identifier as presented.
    pub presented: String,
    /// True when it matched only thanks to a leading `*.` label.
    pub wildcard: bool,
}

/// Every identifier of `cert` that matches `reference` for `service`, in the order
/// the client checks them.
pub fn matches(cert: &CertInfo, reference: &ReferenceIdentity, service: Service) -> Vec<NameMatch> {
    let sans = cert.san.as_deref().unwrap_or(&[]);
    let mut found = Vec::new();
    match reference {
        ReferenceIdentity::Ip(ip) => {
            for entry in sans {
                if let SanEntry::Ip(presented) = entry
                    && same_ip(presented, ip)
                {
                    found.push(NameMatch {
                        field: NameField::IpAddress,
                        presented: presented.to_string(),
                        wildcard: false,
                    });
                }
            }
        }
        ReferenceIdentity::Dns(name) => {
            if service == Service::Xmpp {
                let srv = format!("_xmpp-client.{name}");
                for entry in sans {
                    match entry {
                        SanEntry::XmppAddr(x) if dns_eq(x, name) => found.push(NameMatch {
                            field: NameField::XmppAddr,
                            presented: x.clone(),
                            wildcard: false,
                        }),
                        SanEntry::SrvName(s) if dns_eq(s, &srv) => found.push(NameMatch {
                            field: NameField::SrvName,
                            presented: s.clone(),
                            wildcard: false,
                        }),
                        _ => {}
                    }
                }
            }
            for entry in sans {
                if let SanEntry::Dns(d) = entry
                    && let Some(wildcard) = dns_matches(d, name)
                {
                    found.push(NameMatch {
                        field: NameField::DnsName,
                        presented: d.clone(),
                        wildcard,
                    });
                }
            }
            for cn in &cert.common_names {
                if let Some(wildcard) = dns_matches(cn, name) {
                    found.push(NameMatch {
                        field: NameField::CommonName,
                        presented: cn.clone(),
                        wildcard,
                    });
                }
            }
        }
    }
    found
}

/// `Some(false)` for an exact match, `Some(true)` for a leftmost-label wildcard match,
/// `None` otherwise. Partial-label (`f*.example.com`) and nested wildcards never match,
/// nor does `*.tld` (a wildcard needs two labels under it).
pub fn dns_matches(presented: &str, reference: &str) -> Option<bool> {
    let presented = normalise(presented);
    let reference = normalise(reference);
    if presented.is_empty() || reference.is_empty() {
        return None;
    }
    if presented == reference {
        return Some(false);
    }
    let suffix = presented.strip_prefix("*.")?;
    if suffix.contains('*') || !suffix.contains('.') {
        return None;
    }
    let (label, rest) = reference.split_once('.')?;
    (!label.is_empty() && rest == suffix).then_some(true)
}

fn dns_eq(a: &str, b: &str) -> bool {
    normalise(a) == normalise(b)
}

fn normalise(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

fn same_ip(a: &IpAddr, b: &IpAddr) -> bool {
    let canon = |ip: &IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(*ip),
        IpAddr::V4(_) => *ip,
    };
    canon(a) == canon(b)
}

/// RFC 5280 dNSName subtree: `base` matches itself and any subdomain; a leading
/// dot matches subdomains only; an empty base matches everything.
pub fn dns_within(name: &str, base: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let base = base.trim_end_matches('.').to_ascii_lowercase();
    if base.is_empty() {
        return true;
    }
    if let Some(sub) = base.strip_prefix('.') {
        return name.ends_with(&format!(".{sub}"));
    }
    let name = name
        .strip_prefix("*.")
        .map_or(name.clone(), |r| format!("x.{r}"));
    name == base || name.ends_with(&format!(".{base}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_only_as_whole_leftmost_label() {
        assert_eq!(dns_matches("*.example.com", "expe.example.com"), Some(true));
        assert_eq!(dns_matches("*.example.com", "example.com"), None);
        assert_eq!(dns_matches("*.example.com", "a.b.example.com"), None);
        assert_eq!(dns_matches("e*.example.com", "expe.example.com"), None);
        assert_eq!(dns_matches("*.*.example.com", "a.b.example.com"), None);
        assert_eq!(dns_matches("*.com", "example.com"), None);
        assert_eq!(
            dns_matches("ExpE.Example.com.", "expe.example.com"),
            Some(false)
        );
        assert_eq!(dns_matches("", "example.com"), None);
    }
}
