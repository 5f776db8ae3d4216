//! Detectors: code that decides whether catalogue rules fire. One module per rule
//! family; each only detects and explains, never decides what a profile does
//! (that is the catalogue's data).
//!
//! Three kinds of detector exist:
//! - handshake detectors look at one handshake, whatever the trust store;
//! - path detectors look at the path built against one trust store, and run once
//!   per store (public, public + enterprise); the engine merges their findings;
//! - peer detectors look at all handshakes of a run together.

use time::OffsetDateTime;

use super::catalog::Rule;
use super::finding::{CertRef, CertSource, Finding};
use crate::core::observation::Observation;
use crate::core::x509::{CertInfo, ChainPath, PathNode, StoreKind, TrustStore};

pub mod chain;
pub mod dns;
pub mod edge;
pub mod identity;
pub mod key;
pub mod revocation;
pub mod signature;
pub mod subject;
pub mod tls;
pub mod trust;
pub mod usage;
pub mod validity;
pub mod x509;
pub mod xmpp;

/// Settings that tune detectors.
#[derive(Debug, Clone)]
pub struct DetectorConfig {
    /// `validity.expires-soon` fires this many days ahead.
    pub expiry_warn_days: i64,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            expiry_warn_days: 30,
        }
    }
}

/// One handshake, parsed, as detectors see it.
#[derive(Debug)]
pub struct Handshake<'a> {
    /// The observation.
    pub obs: &'a Observation,
    /// Presented certificates that decoded, in the order sent (shared with
    /// the engine's cached judgement: a chain seen again is not copied).
    pub chain: std::sync::Arc<Vec<CertInfo>>,
    /// For each entry of `chain`, its position as sent.
    pub positions: Vec<usize>,
    /// Presented certificates that did not decode: (position, reason).
    pub malformed: Vec<(usize, String)>,
    /// The analysis time.
    pub now: OffsetDateTime,
    /// Detector settings.
    pub config: &'a DetectorConfig,
}

impl<'a> Handshake<'a> {
    /// Decode the observation's chain.
    pub fn new(obs: &'a Observation, now: OffsetDateTime, config: &'a DetectorConfig) -> Self {
        let mut chain = Vec::new();
        let mut hs = Handshake {
            obs,
            chain: Default::default(),
            positions: Vec::new(),
            malformed: Vec::new(),
            now,
            config,
        };
        for (position, der) in obs.presented.iter().enumerate() {
            match CertInfo::parse(der) {
                Ok(cert) => {
                    chain.push(cert);
                    hs.positions.push(position);
                }
                Err(e) => hs.malformed.push((position, e.to_string())),
            }
        }
        hs.chain = std::sync::Arc::new(chain);
        hs
    }

    /// The leaf: the first certificate sent, if it decoded.
    pub fn leaf(&self) -> Option<&CertInfo> {
        match self.positions.first() {
            Some(0) => self.chain.first(),
            _ => None,
        }
    }

    /// A reference to the `index`th decoded certificate.
    pub fn cert_ref(&self, index: usize) -> CertRef {
        let cert = &self.chain[index];
        CertRef {
            position: Some(self.positions[index]),
            subject: cert.subject.clone(),
            sha256: Some(cert.sha256.clone()),
            source: CertSource::Presented,
        }
    }
}

/// A handshake's path against one trust store.
#[derive(Debug)]
pub struct Scope<'h, 'a> {
    /// The handshake.
    pub hs: &'h Handshake<'a>,
    /// The store the path was built against.
    pub store: &'h TrustStore,
    /// Every anchor any profile trusts, to tell "this client lacks the root" from
    /// "nobody was given the issuer".
    pub known: &'h TrustStore,
    /// The path.
    pub path: &'h ChainPath,
}

impl Scope<'_, '_> {
    /// The certificate behind a node, if known.
    pub fn cert(&self, node: PathNode) -> Option<&CertInfo> {
        ChainPath::cert(node, &self.hs.chain, self.store)
    }

    /// Path nodes with their certificates (anchors without one are skipped).
    pub fn path_certs(&self) -> impl Iterator<Item = (PathNode, &CertInfo)> {
        self.path
            .nodes
            .iter()
            .filter_map(|n| self.cert(*n).map(|c| (*n, c)))
    }

    /// A reference to a node's certificate.
    pub fn cert_ref(&self, node: PathNode) -> CertRef {
        match node {
            PathNode::Presented(i) => self.hs.cert_ref(i),
            PathNode::Anchor(i) => {
                let anchor = &self.store.anchors[i];
                CertRef {
                    position: None,
                    subject: anchor.subject.clone(),
                    sha256: anchor.cert.as_ref().map(|c| c.sha256.clone()),
                    source: match anchor.store {
                        StoreKind::Public => CertSource::PublicStore,
                        StoreKind::Enterprise => CertSource::EnterpriseStore,
                    },
                }
            }
        }
    }

    /// True when the node is the path's self-signed end or a self-issued anchor: a root.
    pub fn is_root(&self, node: PathNode) -> bool {
        let self_link = self
            .path
            .links
            .iter()
            .any(|l| l.child == node && l.issuer == node);
        let self_issued_anchor =
            matches!(node, PathNode::Anchor(_)) && self.cert(node).is_none_or(|c| c.self_issued);
        let anchored_self_issued = self.path.nodes.last() == Some(&node)
            && matches!(self.path.end, crate::core::x509::PathEnd::Anchored { .. })
            && self.cert(node).is_some_and(|c| c.self_issued);
        self_link || self_issued_anchor || anchored_self_issued
    }
}

/// How a detector is run.
#[derive(Clone, Copy)]
pub enum Check {
    /// Once per handshake.
    Handshake(fn(&Handshake<'_>, &mut Vec<Finding>)),
    /// Once per handshake and trust store.
    Path(fn(&Scope<'_, '_>, &mut Vec<Finding>)),
    /// Once per run, over all handshakes; pushes into each handshake's list.
    Peers(fn(&[Handshake<'_>], &mut [Vec<Finding>])),
}

/// A detector and the rules it can fire.
pub struct Detector {
    /// The rules it decides.
    pub rules: &'static [&'static Rule],
    /// How it runs.
    pub check: Check,
}

use super::catalog as c;

/// Every detector, in report order.
pub static DETECTORS: &[Detector] = &[
    Detector {
        rules: &[&c::CHAIN_MALFORMED_CERTIFICATE, &c::CHAIN_DUPLICATE_CERT],
        check: Check::Handshake(chain::check_presented),
    },
    Detector {
        rules: &[
            &c::CHAIN_SELF_SIGNED,
            &c::CHAIN_UNTRUSTED_ROOT,
            &c::CHAIN_MISSING_INTERMEDIATE,
        ],
        check: Check::Path(chain::check_path_end),
    },
    Detector {
        rules: &[&c::CHAIN_BAD_SIGNATURE, &c::CHAIN_ISSUER_NOT_CA],
        check: Check::Path(chain::check_links),
    },
    Detector {
        rules: &[
            &c::CHAIN_OUT_OF_ORDER,
            &c::CHAIN_ROOT_SENT,
            &c::CHAIN_UNRELATED_CERT,
        ],
        check: Check::Path(chain::check_sent),
    },
    Detector {
        rules: &[&c::CHAIN_PATH_LEN_EXCEEDED],
        check: Check::Path(chain::check_path_len),
    },
    Detector {
        rules: &[&c::CHAIN_UNKNOWN_CRITICAL_EXTENSION],
        check: Check::Path(chain::check_critical_extensions),
    },
    Detector {
        rules: &[&c::CHAIN_NAME_CONSTRAINTS],
        check: Check::Path(chain::check_name_constraints),
    },
    Detector {
        rules: &[
            &c::VALIDITY_EXPIRED,
            &c::VALIDITY_NOT_YET_VALID,
            &c::VALIDITY_EXPIRES_SOON,
            &c::VALIDITY_BEYOND_2050,
        ],
        check: Check::Path(validity::check),
    },
    Detector {
        rules: &[
            &c::IDENTITY_MISMATCH,
            &c::IDENTITY_IP_ADDRESS,
            &c::IDENTITY_XMPP_DOMAIN_MISSING,
            &c::IDENTITY_WILDCARD,
            &c::IDENTITY_CN_ONLY,
            &c::IDENTITY_CN_IGNORED_WITH_SAN,
        ],
        check: Check::Handshake(identity::check),
    },
    Detector {
        rules: &[&c::EDGE_DOMAIN_SAN_MISSING, &c::EDGE_SAN_OVER_999],
        check: Check::Handshake(edge::check),
    },
    Detector {
        rules: &[
            &c::USAGE_EKU_CLIENT_AUTH_MISSING,
            &c::USAGE_EKU_SERVER_AUTH_MISSING,
        ],
        check: Check::Handshake(usage::check_eku),
    },
    Detector {
        rules: &[&c::USAGE_CA_BASIC_CONSTRAINTS_MISSING],
        check: Check::Path(usage::check_basic_constraints),
    },
    Detector {
        rules: &[&c::KEY_RSA_TOO_SMALL, &c::KEY_RSA_8192],
        check: Check::Path(key::check_sizes),
    },
    Detector {
        rules: &[&c::KEY_NOT_RSA],
        check: Check::Handshake(key::check_type),
    },
    Detector {
        rules: &[&c::SIGNATURE_SHA1, &c::SIGNATURE_UNVERIFIABLE],
        check: Check::Path(signature::check),
    },
    Detector {
        rules: &[&c::SUBJECT_UNSUPPORTED_OID],
        check: Check::Handshake(subject::check),
    },
    Detector {
        rules: &[&c::REVOCATION_NO_INFO],
        check: Check::Handshake(revocation::check),
    },
    Detector {
        rules: &[&c::REVOCATION_UNREACHABLE, &c::REVOCATION_REVOKED],
        check: Check::Handshake(revocation::check_online),
    },
    Detector {
        rules: &[
            &c::X509_VERSION_NOT_V3,
            &c::X509_SERIAL_INVALID,
            &c::X509_DUPLICATE_EXTENSION,
            &c::X509_EXTENSION_MALFORMED,
            &c::X509_INFORMATIONAL_EXTENSION_MALFORMED,
            &c::X509_EXTENSION_EMPTY,
            &c::X509_CRITICAL_NOT_ALLOWED,
            &c::X509_CRITICAL_FLAG,
            &c::X509_AKI_MISSING,
            &c::X509_AKI_INCOMPLETE,
            &c::X509_AKI_MISMATCH,
            &c::X509_SKI_MISSING,
            &c::X509_CA_SUBJECT_EMPTY,
            &c::X509_LEAF_IS_CA,
            &c::X509_NAME_CONSTRAINTS_IN_LEAF,
            &c::X509_NAME_CONSTRAINTS_UNSUPPORTED,
            &c::X509_NAME_CONSTRAINTS_TOO_MANY,
            &c::X509_DNS_NAME_INVALID,
            &c::X509_CN_NOT_IN_SAN,
            &c::X509_EKU_NOT_CABF,
            &c::X509_KEY_NOT_ALLOWED,
            &c::X509_KEY_EXPLICIT_CURVE,
            &c::X509_SIGNATURE_ALGORITHM_NOT_ALLOWED,
        ],
        check: Check::Path(x509::check),
    },
    Detector {
        rules: &[&c::TRUST_DUPLICATE_SELF_SIGNED_CN],
        check: Check::Peers(trust::check),
    },
    Detector {
        rules: &[&c::EDGE_SHARED_KEY],
        check: Check::Peers(edge::check_shared_key),
    },
    Detector {
        rules: &[&c::EDGE_CLUSTER_SAN],
        check: Check::Peers(edge::check_cluster_san),
    },
    Detector {
        rules: &[
            &c::TLS_HANDSHAKE_FAILED,
            &c::TLS_VERSION_BELOW_1_2,
            &c::TLS_CIPHER_NOT_AES256,
            &c::TLS_CERTIFICATE_NOT_VISIBLE,
        ],
        check: Check::Handshake(tls::check),
    },
    Detector {
        rules: &[
            &c::XMPP_STARTTLS_NOT_OFFERED,
            &c::XMPP_STARTTLS_NOT_REQUIRED,
        ],
        check: Check::Handshake(xmpp::check),
    },
    Detector {
        rules: &[&c::DNS_TARGET_NOT_IN_CERT],
        check: Check::Handshake(dns::check),
    },
];

#[cfg(test)]
pub(crate) mod testkit;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::analysis::catalog::{self, DecidedBy};

    /// Every rule decided from handshakes has exactly one detector. Rules decided by
    /// DNS answers alone live in `core::discovery`.
    #[test]
    fn every_handshake_rule_has_exactly_one_detector() {
        for rule in catalog::ALL {
            let count = DETECTORS
                .iter()
                .filter(|d| d.rules.iter().any(|r| r.id == rule.id))
                .count();
            let wanted = matches!(
                rule.decided_by,
                DecidedBy::Chain | DecidedBy::Peers | DecidedBy::Handshake | DecidedBy::Online
            );
            assert_eq!(
                count,
                usize::from(wanted),
                "{} detectors for {}",
                count,
                rule.id
            );
        }
    }
}
