//! The rule catalogue: every rule's stable ID, what makes it fire, and its effect
//! on each client profile. This table is the data behind every verdict; detectors
//! only say that a rule fired (see `rules/`). It mirrors
//! `docs/rules.md` row for row (the design contract in `shared/design/rules.md`
//! first), and tests keep them in step.
//!
//! IDs are a public contract: users gate CI on them. Add rules; never rename one.

use serde::Serialize;

use super::profile::{Effect, Profile};

/// What a rule needs in order to be decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DecidedBy {
    /// The presented chain, the trust stores and the reference identity.
    Chain,
    /// Several handshakes together (cluster peers, services of one deployment).
    Peers,
    /// TLS or XMPP handshake parameters.
    Handshake,
    /// DNS answers.
    Dns,
    /// Fetching CRLs or OCSP responses.
    Online,
}

/// One catalogue entry.
#[derive(Debug, Serialize)]
pub struct Rule {
    /// Stable ID, `family.kebab-name`.
    pub id: &'static str,
    /// When it fires, in one line.
    pub fires_when: &'static str,
    /// Effect per profile, indexed by [`Profile::index`].
    pub effects: [Effect; 4],
    /// A qualifier for the effects (e.g. "fail is silent for Jabber").
    pub note: Option<&'static str>,
    /// What is needed to decide it.
    pub decided_by: DecidedBy,
}

impl Rule {
    /// The effect of this rule on `profile`.
    pub fn effect(&self, profile: Profile) -> Effect {
        self.effects[profile.index()]
    }

    /// The rule family: the part of the ID before the dot.
    pub fn family(&self) -> &'static str {
        self.id.split_once('.').map_or(self.id, |(f, _)| f)
    }
}

impl PartialEq for Rule {
    fn eq(&self, other: &Rule) -> bool {
        self.id == other.id
    }
}

impl Eq for Rule {}

/// Why the `x509.*` rules OpenSSL refuses fail for the phones, TelePresence and
/// Expressway-C, and only warn for Jabber.
const OPENSSL_REJECTS: &str = "ip-phone, tc-endpoint and expressway-c validate with OpenSSL, whose default verification (`openssl verify`, no -x509_strict) rejects such a chain; jabber: no platform validator is documented to reject it, so warn (the test suite checks each effect against openssl on an x509-limbo case)";
/// Why the `x509.*` rules OpenSSL accepts only warn.
const OPENSSL_ACCEPTS: &str = "OpenSSL's default verification accepts it (only strict validators such as webpki and -x509_strict refuse it), so it works for every profile today but breaks RFC 5280 or the CA/Browser Forum baseline requirements: warn (the test suite checks each effect against openssl on an x509-limbo case)";
/// Why a name found only in the CN beside a SAN fails the OpenSSL-based clients.
const CN_BESIDE_SAN: &str = "jabber checks the subject CN after the SAN dNSNames (000 and 001, \"Identifier Fields\"), so it only warns; ip-phone, tc-endpoint and expressway-c validate with OpenSSL, whose host-name check ignores the CN once a dNSName SAN exists (RFC 6125 6.4.4)";

use DecidedBy::{Chain, Dns, Handshake, Online, Peers};
use Effect::{Fail as F, NotApplicable as NA, Ok as OK, Prompt as P, Warn as W};

macro_rules! catalogue {
    ($( $name:ident = $id:literal, [$j:expr, $p:expr, $t:expr, $e:expr], $by:expr, $note:expr, $when:literal; )*) => {
        $(
            #[doc = concat!("`", $id, "`: ", $when)]
            pub static $name: Rule = Rule {
                id: $id,
                fires_when: $when,
                effects: [$j, $p, $t, $e],
                note: $note,
                decided_by: $by,
            };
        )*
        /// Every rule, in catalogue order.
        pub static ALL: &[&Rule] = &[$(&$name),*];
    };
}

#[rustfmt::skip]
catalogue! {
    // rule                                                  jabber ip-phone tc  exp-c
    CHAIN_SELF_SIGNED = "chain.self-signed",                 [P,  F,  F,  F ], Chain, None, "leaf is self-signed (subject = issuer, verifies with own key) and not itself trusted";
    CHAIN_UNTRUSTED_ROOT = "chain.untrusted-root",           [P,  F,  F,  F ], Chain, None, "a chain to a self-signed root is built but the root is in no trust store for that profile";
    CHAIN_MISSING_INTERMEDIATE = "chain.missing-intermediate", [P, F, F,  F ], Chain, None, "no issuer for some certificate among presented + trusted certs (server sent leaf only)";
    CHAIN_BAD_SIGNATURE = "chain.bad-signature",             [F,  F,  F,  F ], Chain, None, "a signature in the chain does not verify";
    CHAIN_OUT_OF_ORDER = "chain.out-of-order",               [W,  W,  W,  W ], Chain, None, "presented certificates are not in leaf-to-root order";
    CHAIN_ROOT_SENT = "chain.root-sent",                     [OK, OK, OK, OK], Chain, None, "server sends the self-signed root too (harmless, wasteful)";
    CHAIN_UNRELATED_CERT = "chain.unrelated-cert",           [W,  W,  W,  W ], Chain, None, "a presented certificate is not part of the path";
    VALIDITY_EXPIRED = "validity.expired",                   [P,  F,  F,  F ], Chain, None, "now > notAfter of any certificate on the path";
    VALIDITY_NOT_YET_VALID = "validity.not-yet-valid",       [P,  F,  F,  F ], Chain, None, "now < notBefore";
    VALIDITY_EXPIRES_SOON = "validity.expires-soon",         [W,  W,  W,  W ], Chain, None, "notAfter within 30 days (configurable)";
    VALIDITY_BEYOND_2050 = "validity.beyond-2050",           [W,  W,  W,  W ], Chain, None, "notAfter after 2050-01-01 (GeneralizedTime)";
    IDENTITY_MISMATCH = "identity.mismatch",                 [P,  F,  F,  F ], Chain, None, "reference identity matches no identifier field allowed for the service";
    IDENTITY_IP_ADDRESS = "identity.ip-address",             [P,  F,  F,  F ], Chain, None, "client connected by IP literal and the IP is not an iPAddress SAN";
    IDENTITY_XMPP_DOMAIN_MISSING = "identity.xmpp-domain-missing", [P, NA, NA, F], Chain, None, "service xmpp: XMPP domain absent from xmppAddr, SRVName, dNSName and CN";
    IDENTITY_WILDCARD = "identity.wildcard",                 [W,  W,  W,  F ], Chain, None, "identity matched only through a wildcard";
    IDENTITY_CN_ONLY = "identity.cn-only",                   [W,  W,  W,  W ], Chain, None, "name matched only via Subject CN (no SAN entry)";
    EDGE_DOMAIN_SAN_MISSING = "edge.domain-san-missing",     [P,  F,  F,  OK], Chain, None, "Expressway-E (edge) certificate lacks both `<domain>` and `collab-edge.<domain>` SAN";
    EDGE_SAN_OVER_999 = "edge.san-over-999",                 [W,  W,  W,  W ], Chain, None, "SAN extension text over 999 characters; lists the names Expressway ignores";
    EDGE_SHARED_KEY = "edge.shared-key",                     [W,  W,  W,  W ], Peers, None, "two different endpoints (cluster peers) present the same public key";
    EDGE_CLUSTER_SAN = "edge.cluster-san",                   [W,  W,  W,  W ], Peers, None, "peers of one SRV set: CN is not the common cluster FQDN or a peer FQDN is missing from its SAN";
    USAGE_EKU_CLIENT_AUTH_MISSING = "usage.eku-client-auth-missing", [OK, OK, OK, F], Chain, None, "EKU present without TLS Web Client auth";
    USAGE_EKU_SERVER_AUTH_MISSING = "usage.eku-server-auth-missing", [F, F, F, F],   Chain, None, "EKU present without TLS Web Server auth";
    USAGE_CA_BASIC_CONSTRAINTS_MISSING = "usage.ca-basic-constraints-missing", [W, W, W, F], Chain, None, "a CA certificate on the path lacks BasicConstraints";
    KEY_RSA_TOO_SMALL = "key.rsa-too-small",                 [W,  F,  F,  F ], Chain, None, "RSA key below 2048 bits";
    KEY_RSA_8192 = "key.rsa-8192",                           [W,  W,  W,  W ], Chain, None, "RSA key of 8192 bits or more (known Expressway trouble)";
    KEY_NOT_RSA = "key.not-rsa",                             [OK, W,  W,  W ], Chain, None, "non-RSA key (ECDSA note, DSA untested on Expressway)";
    SIGNATURE_SHA1 = "signature.sha1",                       [P,  F,  F,  F ], Chain, None, "any non-root certificate on the path signed with SHA-1 (or MD5)";
    SUBJECT_UNSUPPORTED_OID = "subject.unsupported-oid",     [W,  W,  W,  W ], Chain, None, "subject has an attribute OID Expressway does not support";
    REVOCATION_NO_INFO = "revocation.no-info",               [W,  OK, OK, OK], Chain, None, "neither CRL DP nor AIA OCSP carries an HTTP URL";
    REVOCATION_UNREACHABLE = "revocation.unreachable",       [F,  F,  F,  W ], Online, Some("Jabber fails silently: the user is not told why"), "CRL/OCSP URL given but cannot be fetched (online check enabled)";
    REVOCATION_REVOKED = "revocation.revoked",               [F,  F,  F,  F ], Online, None, "CRL/OCSP says revoked";
    TRUST_DUPLICATE_SELF_SIGNED_CN = "trust.duplicate-self-signed-cn", [OK, OK, OK, F], Peers, Some("Expressway-C can trust only one of them"), "two distinct self-signed certs with the same subject CN seen (tomcat vs CallManager, cup-xmpp vs tomcat)";
    TLS_VERSION_BELOW_1_2 = "tls.version-below-1.2",         [W,  F,  F,  F ], Handshake, None, "negotiated TLS 1.0/1.1, or SSL";
    TLS_CIPHER_NOT_AES256 = "tls.cipher-not-aes256",         [W,  OK, OK, OK], Handshake, None, "on-prem client-to-server session not AES-256";
    TLS_HANDSHAKE_FAILED = "tls.handshake-failed",           [F,  F,  F,  F ], Handshake, None, "handshake aborted (alert, reset, timeout): reason attached";
    TLS_CERTIFICATE_NOT_VISIBLE = "tls.certificate-not-visible", [OK, OK, OK, OK], Handshake, None, "TLS 1.3 passthrough: chain encrypted, fetched by a side probe instead";
    XMPP_STARTTLS_NOT_OFFERED = "xmpp.starttls-not-offered", [F,  NA, NA, F ], Handshake, None, "XMPP server did not offer STARTTLS";
    XMPP_STARTTLS_NOT_REQUIRED = "xmpp.starttls-not-required", [W, NA, NA, W ], Handshake, None, "STARTTLS offered but not required (secure mode off)";
    DNS_COLLAB_EDGE_MISSING = "dns.collab-edge-missing",     [F,  F,  F,  NA], Dns, None, "no `_collab-edge._tls.<domain>` SRV record";
    DNS_INTERNAL_SRV_EXPOSED = "dns.internal-srv-exposed",   [W,  W,  W,  NA], Dns, None, "`_cisco-uds._tcp` or `_cuplogin._tcp` answers on the resolver meant to be outside";
    DNS_TARGET_UNRESOLVABLE = "dns.target-unresolvable",     [F,  F,  F,  NA], Dns, None, "an SRV target has no A/AAAA";
    DNS_TARGET_NOT_IN_CERT = "dns.target-not-in-cert",       [P,  F,  F,  NA], Handshake, None, "the SRV target FQDN is not a SAN on the certificate it serves";
    DNS_UNEXPECTED_PORT = "dns.unexpected-port",             [W,  W,  W,  NA], Dns, None, "`_collab-edge` target port is not 8443";
    // Added by edgetap (not in rules.md): cases a validator meets that the table is silent on.
    DNS_LOOKUP_FAILED = "dns.lookup-failed",                 [W,  W,  W,  NA], Dns, None, "the resolver gave no answer for `_collab-edge._tls.<domain>` (timeout, SERVFAIL, REFUSED): whether the record exists is unknown, so discovery is not judged";
    CHAIN_MALFORMED_CERTIFICATE = "chain.malformed-certificate", [F, F, F,  F ], Chain, None, "a presented certificate cannot be decoded as X.509";
    CHAIN_ISSUER_NOT_CA = "chain.issuer-not-ca",             [F,  F,  F,  F ], Chain, None, "a certificate that issues another on the path is not a CA (BasicConstraints cA=FALSE or no keyCertSign)";
    CHAIN_DUPLICATE_CERT = "chain.duplicate-cert",           [OK, OK, OK, OK], Chain, None, "the same certificate is presented more than once (harmless, wasteful)";
    CHAIN_NAME_CONSTRAINTS = "chain.name-constraints",       [F,  F,  F,  F ], Chain, None, "the reference identity or a leaf dNSName violates a CA's NameConstraints";
    CHAIN_PATH_LEN_EXCEEDED = "chain.path-len-exceeded",     [F,  F,  F,  F ], Chain, None, "more intermediates follow a CA than its BasicConstraints pathLenConstraint allows";
    CHAIN_UNKNOWN_CRITICAL_EXTENSION = "chain.unknown-critical-extension", [F, F, F, F], Chain, None, "a certificate on the path has a critical extension clients do not understand";
    SIGNATURE_UNVERIFIABLE = "signature.unverifiable",       [W,  W,  W,  W ], Chain, None, "a signature on the path uses an algorithm or key size edgetap cannot check";
    IDENTITY_CN_IGNORED_WITH_SAN = "identity.cn-ignored-with-san", [W, F, F, F], Chain, Some(CN_BESIDE_SAN), "the name is only in the subject CN while the certificate has dNSName SANs: RFC 6125 clients do not read the CN then";
    // x509.*: RFC 5280 / CA/Browser Forum structure. Effects: see OPENSSL_REJECTS / OPENSSL_ACCEPTS.
    X509_VERSION_NOT_V3 = "x509.version-not-v3",             [W,  W,  W,  W ], Chain, Some(OPENSSL_ACCEPTS), "a certificate is not X.509 v3";
    X509_SERIAL_INVALID = "x509.serial-invalid",             [W,  W,  W,  W ], Chain, Some(OPENSSL_ACCEPTS), "a serial number is zero, negative or longer than 20 octets";
    X509_DUPLICATE_EXTENSION = "x509.duplicate-extension",   [W,  F,  F,  F ], Chain, Some(OPENSSL_REJECTS), "a certificate carries the same extension twice";
    X509_EXTENSION_MALFORMED = "x509.extension-malformed",   [W,  F,  F,  F ], Chain, Some(OPENSSL_REJECTS), "an extension clients read while verifying (basicConstraints, keyUsage, EKU, key identifiers, SAN, nameConstraints, CRL DP, policyConstraints) does not decode";
    X509_INFORMATIONAL_EXTENSION_MALFORMED = "x509.informational-extension-malformed", [W, W, W, W], Chain, Some(OPENSSL_ACCEPTS), "an extension clients do not read while verifying (AIA, SIA, certificatePolicies, others) does not decode";
    X509_EXTENSION_EMPTY = "x509.extension-empty",           [W,  W,  W,  W ], Chain, Some(OPENSSL_ACCEPTS), "an extension that needs at least one entry has none (AIA, EKU, SAN, CRL DP, nameConstraints)";
    X509_CRITICAL_NOT_ALLOWED = "x509.critical-not-allowed", [W,  F,  F,  F ], Chain, Some(OPENSSL_REJECTS), "an extension RFC 5280 requires to be non-critical is critical (AKI, SKI, AIA, SIA)";
    X509_CRITICAL_FLAG = "x509.critical-flag",               [W,  W,  W,  W ], Chain, Some(OPENSSL_ACCEPTS), "an extension that must be critical is not (basicConstraints of a CA, nameConstraints, policyConstraints, SAN with an empty subject), or one the CA/B Forum wants non-critical is critical (EKU, SAN beside a subject)";
    X509_AKI_MISSING = "x509.aki-missing",                   [W,  W,  W,  W ], Chain, Some(OPENSSL_ACCEPTS), "a certificate that is not self-signed has no authorityKeyIdentifier";
    X509_AKI_INCOMPLETE = "x509.aki-incomplete",             [W,  W,  W,  W ], Chain, Some(OPENSSL_ACCEPTS), "an authorityKeyIdentifier lacks its keyIdentifier, or carries authorityCertIssuer/serial the CA/B Forum forbids";
    X509_AKI_MISMATCH = "x509.aki-mismatch",                 [W,  F,  F,  F ], Chain, Some(OPENSSL_REJECTS), "an authorityKeyIdentifier does not identify the certificate's issuer on the path (keyIdentifier, issuer name or serial)";
    X509_SKI_MISSING = "x509.ski-missing",                   [W,  W,  W,  W ], Chain, Some(OPENSSL_ACCEPTS), "a CA certificate has no subjectKeyIdentifier";
    X509_CA_SUBJECT_EMPTY = "x509.ca-subject-empty",         [W,  F,  F,  F ], Chain, Some(OPENSSL_REJECTS), "a CA certificate has an empty subject";
    X509_LEAF_IS_CA = "x509.leaf-is-ca",                     [W,  W,  W,  W ], Chain, Some(OPENSSL_ACCEPTS), "the server certificate is marked as a CA (basicConstraints cA=TRUE or keyUsage keyCertSign)";
    X509_NAME_CONSTRAINTS_IN_LEAF = "x509.name-constraints-in-leaf", [W, W, W, W], Chain, Some(OPENSSL_ACCEPTS), "the server certificate carries nameConstraints, which only CAs may";
    X509_NAME_CONSTRAINTS_UNSUPPORTED = "x509.name-constraints-unsupported", [W, F, F, F], Chain, Some(OPENSSL_REJECTS), "a CA's nameConstraints use a name form clients cannot check (otherName, x400Address, ...)";
    X509_NAME_CONSTRAINTS_TOO_MANY = "x509.name-constraints-too-many", [W, F, F, F], Chain, Some(OPENSSL_REJECTS), "name constraints times names to check exceeds OpenSSL's limit (2^20), so it refuses the chain";
    X509_DNS_NAME_INVALID = "x509.dns-name-invalid",         [W,  W,  W,  W ], Chain, Some(OPENSSL_ACCEPTS), "a SAN dNSName or a dNSName constraint is not in preferred name syntax (underscore, leading dot, empty label, misplaced wildcard)";
    X509_CN_NOT_IN_SAN = "x509.cn-not-in-san",               [W,  W,  W,  W ], Chain, Some(OPENSSL_ACCEPTS), "the server certificate's CN is not character for character one of its SAN entries";
    X509_EKU_NOT_CABF = "x509.eku-not-cabf",                 [W,  W,  W,  W ], Chain, Some(OPENSSL_ACCEPTS), "the server certificate has no EKU or anyExtendedKeyUsage in it, or a root carries an EKU";
    X509_KEY_NOT_ALLOWED = "x509.key-not-allowed",           [W,  W,  W,  W ], Chain, Some(OPENSSL_ACCEPTS), "a key outside the CA/B Forum's list: DSA, a curve other than P-256/P-384/P-521, an RSA modulus not a multiple of 8 bits";
    X509_KEY_EXPLICIT_CURVE = "x509.key-explicit-curve",     [W,  F,  F,  F ], Chain, Some(OPENSSL_REJECTS), "an EC key is given with explicit curve parameters instead of a named curve";
    X509_SIGNATURE_ALGORITHM_NOT_ALLOWED = "x509.signature-algorithm-not-allowed", [W, W, W, W], Chain, Some(OPENSSL_ACCEPTS), "a certificate is signed with an algorithm outside the CA/B Forum's list (DSA, ...)";
}

/// Look a rule up by ID.
pub fn by_id(id: &str) -> Option<&'static Rule> {
    ALL.iter().copied().find(|r| r.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_and_well_formed() {
        let mut seen = HashSet::new();
        for rule in ALL {
            assert!(seen.insert(rule.id), "duplicate rule id {}", rule.id);
            let (family, name) = rule.id.split_once('.').expect("family.name");
            assert!(
                !family.is_empty()
                    && family
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            );
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.'),
                "{} is not kebab-case",
                rule.id
            );
        }
    }

    /// Parse a rules table: (id, effect word per profile) per row.
    fn rows(text: &str) -> Vec<(String, Vec<String>)> {
        text.lines()
            .filter(|l| l.starts_with("| `"))
            .map(|line| {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                let effects = (0..Profile::ALL.len())
                    .map(|i| {
                        cells[3 + i]
                            .split_whitespace()
                            .next()
                            .unwrap_or("")
                            .to_owned()
                    })
                    .collect();
                (cells[1].trim_matches('`').to_owned(), effects)
            })
            .collect()
    }

    fn assert_effects(source: &str, id: &str, effects: &[String]) {
        let rule = by_id(id).unwrap_or_else(|| panic!("{source} has {id}, the catalogue does not"));
        for (profile, word) in Profile::ALL.iter().zip(effects) {
            assert_eq!(
                rule.effect(*profile).as_str(),
                word,
                "{id} for {profile}: {source} says {word:?}"
            );
        }
    }

    /// docs/rules.md (in the repository) is the published table: every catalogue
    /// rule, in order, with the same effects; the first 43 are the contract.
    #[test]
    fn catalogue_matches_docs_rules_md() {
        let rows = rows(include_str!("../../../docs/rules.md"));
        let ids: Vec<&str> = rows.iter().map(|(id, _)| id.as_str()).collect();
        let catalogue: Vec<&str> = ALL.iter().map(|r| r.id).collect();
        assert_eq!(
            ids, catalogue,
            "docs/rules.md drifted: run docs/refresh-rules.sh"
        );
        for (id, effects) in &rows {
            assert_effects("docs/rules.md", id, effects);
        }
        assert_eq!(
            ids[42], "dns.unexpected-port",
            "the 43 contract rows come first"
        );
    }

    /// The design's rules.md, when it sits beside the repository: every row is in
    /// the catalogue with the same effects (and among docs/rules.md's first 43).
    #[test]
    fn catalogue_keeps_the_design_contract() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/design/rules.md");
        let Ok(text) = std::fs::read_to_string(path) else {
            eprintln!(
                "\n*** {path} is absent: the design contract check is skipped; docs/rules.md was checked ***\n"
            );
            return;
        };
        let contract = rows(&text);
        assert_eq!(contract.len(), 43, "rules.md rows parsed");
        let published = rows(include_str!("../../../docs/rules.md"));
        for (id, effects) in &contract {
            assert_effects("rules.md", id, effects);
            assert!(
                published[..43].iter().any(|(p, _)| p == id),
                "{id} is not among docs/rules.md's contract rows"
            );
        }
    }
}
