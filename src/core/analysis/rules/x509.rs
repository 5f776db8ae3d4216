//! `x509.*`: RFC 5280 and CA/Browser Forum structure of every certificate on
//! the path. Most requirements depend on the certificate's place (a leaf, a CA,
//! a root), so this is a path detector; the facts come from
//! [`Structure`](crate::core::x509::structure::Structure).
//!
//! What each defect does to each client is data in the catalogue: OpenSSL's
//! default verification (the phones, TelePresence, Expressway) refuses some and
//! accepts the rest; tests/cli/limbo.rs checks every effect against `openssl
//! verify` on an x509-limbo case.

use std::net::IpAddr;

use super::Scope;
use crate::core::analysis::catalog::{self as c, Rule};
use crate::core::analysis::finding::Finding;
use crate::core::x509::structure::oid;
use crate::core::x509::{CertInfo, KeyInfo, PathNode, SanEntry, SignatureHash};

/// Where a certificate sits on the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The server's own certificate.
    Leaf,
    /// An intermediate CA.
    Intermediate,
    /// The self-signed end, or a trust anchor.
    Root,
}

impl Role {
    fn is_ca(self) -> bool {
        self != Role::Leaf
    }
}

/// OpenSSL refuses to check more than this many (names × constraints) per
/// certificate (`NAME_CHECK_MAX` in crypto/x509/v3_ncons.c).
const OPENSSL_NAME_CHECK_MAX: usize = 1 << 20;

/// One certificate being judged, with what a finding about it needs.
struct Judged<'s, 'h, 'a> {
    s: &'s Scope<'h, 'a>,
    node: PathNode,
    cert: &'s CertInfo,
    role: Role,
}

impl Judged<'_, '_, '_> {
    fn finding(&self, rule: &'static Rule, message: String) -> Finding {
        Finding::new(rule, message).cert(self.s.cert_ref(self.node))
    }

    fn name(&self) -> String {
        let role = match self.role {
            Role::Leaf => "server certificate",
            Role::Intermediate => "intermediate CA",
            Role::Root => "root CA",
        };
        format!("{role} {}", self.cert.short_name())
    }
}

/// Judge every certificate on the path, then every issuing link.
pub fn check(s: &Scope<'_, '_>, out: &mut Vec<Finding>) {
    let certs: Vec<(PathNode, &CertInfo)> = s.path_certs().collect();
    for (k, (node, cert)) in certs.iter().enumerate() {
        let role = if k == 0 && *node == PathNode::Presented(0) {
            Role::Leaf
        } else if s.is_root(*node) {
            Role::Root
        } else {
            Role::Intermediate
        };
        let j = Judged {
            s,
            node: *node,
            cert,
            role,
        };
        encoding(&j, out);
        criticality(&j, out);
        key_identifiers(&j, out);
        ca_marks(&j, out);
        names(&j, out);
        keys_and_signatures(&j, out);
        if role.is_ca() {
            constraints_over(&j, &certs[..k], out);
        }
    }
    authority_key_links(s, out);
}

/// Version, serial number, duplicated, undecodable and empty extensions.
fn encoding(j: &Judged<'_, '_, '_>, out: &mut Vec<Finding>) {
    let st = &j.cert.structure;
    // A trust anchor's version and serial are not checked by any client (old v1
    // roots with serial 0 are still in stores); everything below it is.
    if st.version != 2 && j.role != Role::Root {
        out.push(
            j.finding(&c::X509_VERSION_NOT_V3, format!("{} is an X.509 v{} certificate", j.name(), st.version + 1))
                .evidence("version", Some("v3 (2)".into()), Some(format!("v{} ({})", st.version + 1, st.version)))
                .fix("have the CA reissue it as an X.509 v3 certificate; the CA/Browser Forum requires v3 and strict validators refuse anything else"),
        );
    }
    let serial_fault = if st.serial_is_zero() {
        Some("zero")
    } else if st.serial_is_negative() {
        Some("negative")
    } else if st.serial_octets.len() > 20 {
        Some("longer than 20 octets")
    } else {
        None
    };
    if let Some(fault) = serial_fault.filter(|_| j.role != Role::Root) {
        out.push(
            j.finding(&c::X509_SERIAL_INVALID, format!("{} has a serial number that is {fault}", j.name()))
                .evidence(
                    "serialNumber",
                    Some("a positive integer of at most 20 octets (RFC 5280 4.1.2.2)".into()),
                    Some(format!("{} ({} octets)", crate::core::x509::cert::hex(&st.serial_octets), st.serial_octets.len())),
                )
                .fix("have the CA reissue the certificate with a positive serial number of at most 20 octets; strict validators refuse it"),
        );
    }
    for dup in &st.duplicate_extensions {
        out.push(
            j.finding(&c::X509_DUPLICATE_EXTENSION, format!("{} carries {} more than once", j.name(), oid::name(dup)))
                .evidence("extensions", Some(format!("one {}", oid::name(dup))), Some(format!("{} twice or more", oid::name(dup))))
                .fix("have the CA reissue the certificate with each extension once (RFC 5280 4.2); OpenSSL refuses the certificate"),
        );
    }
    for (ext, reason) in &st.malformed_extensions {
        // OpenSSL decodes these while verifying and marks the certificate
        // invalid when one fails; the others it only reads when asked to print.
        let read_when_verifying = [
            oid::BASIC_CONSTRAINTS,
            oid::KEY_USAGE,
            oid::EKU,
            oid::SKI,
            oid::AKI,
            oid::SAN,
            oid::NAME_CONSTRAINTS,
            oid::CRL_DP,
            oid::POLICY_CONSTRAINTS,
        ]
        .contains(&ext.as_str());
        let (rule, consequence) = if read_when_verifying {
            (
                &c::X509_EXTENSION_MALFORMED,
                "OpenSSL marks the whole certificate invalid",
            )
        } else {
            (
                &c::X509_INFORMATIONAL_EXTENSION_MALFORMED,
                "strict validators refuse the certificate",
            )
        };
        out.push(
            j.finding(rule, format!("{}: the {} extension does not decode", j.name(), oid::name(ext)))
                .evidence(oid::name(ext), Some("a DER value of the extension's ASN.1 type".into()), Some(reason.clone()))
                .fix(format!("have the CA reissue the certificate; the extension's value is not valid DER, and {consequence}")),
        );
    }
    for ext in &st.empty_extensions {
        out.push(
            j.finding(
                &c::X509_EXTENSION_EMPTY,
                format!(
                    "{}: the {} extension is present but empty",
                    j.name(),
                    oid::name(ext)
                ),
            )
            .evidence(
                oid::name(ext),
                Some("at least one entry".into()),
                Some("none".into()),
            )
            .fix(format!(
                "have the CA reissue the certificate with the {} extension filled in or left out",
                oid::name(ext)
            )),
        );
    }
}

/// Extensions marked critical when they must not be, or the other way round.
fn criticality(j: &Judged<'_, '_, '_>, out: &mut Vec<Finding>) {
    let st = &j.cert.structure;
    for ext in st.extensions.iter().filter(|e| e.critical) {
        if [oid::AKI, oid::SKI, oid::AIA, oid::SIA].contains(&ext.oid.as_str()) {
            out.push(
                j.finding(&c::X509_CRITICAL_NOT_ALLOWED, format!("{}: {} is marked critical", j.name(), oid::name(&ext.oid)))
                    .evidence(oid::name(&ext.oid), Some("non-critical (RFC 5280 4.2.1 / 4.2.2)".into()), Some("critical".into()))
                    .fix("have the CA reissue the certificate with this extension non-critical; OpenSSL refuses it as critical"),
            );
        }
    }
    let mut must_be_critical: Vec<(&str, &str)> = Vec::new();
    let mut must_not_be_critical: Vec<(&str, &str)> = Vec::new();
    let flag = |o: &str| st.extension(o).map(|e| e.critical);
    if j.role.is_ca() && flag(oid::BASIC_CONSTRAINTS) == Some(false) {
        must_be_critical.push((
            oid::BASIC_CONSTRAINTS,
            "RFC 5280 4.2.1.9, in a CA certificate",
        ));
    }
    if flag(oid::NAME_CONSTRAINTS) == Some(false) {
        must_be_critical.push((oid::NAME_CONSTRAINTS, "RFC 5280 4.2.1.10"));
    }
    if flag(oid::POLICY_CONSTRAINTS) == Some(false) {
        must_be_critical.push((oid::POLICY_CONSTRAINTS, "RFC 5280 4.2.1.11"));
    }
    if flag(oid::INHIBIT_ANY_POLICY) == Some(false) {
        must_be_critical.push((oid::INHIBIT_ANY_POLICY, "RFC 5280 4.2.1.14"));
    }
    match (st.subject_empty, flag(oid::SAN)) {
        (true, Some(false)) => {
            must_be_critical.push((oid::SAN, "RFC 5280 4.2.1.6, with an empty subject"))
        }
        (false, Some(true)) if j.role == Role::Leaf => {
            must_not_be_critical.push((
                oid::SAN,
                "CA/Browser Forum BR 7.1.2.7.12, beside a non-empty subject",
            ));
        }
        _ => {}
    }
    if j.role == Role::Leaf && flag(oid::EKU) == Some(true) {
        must_not_be_critical.push((
            oid::EKU,
            "CA/Browser Forum BR 7.1.2.7.6, in a server certificate",
        ));
    }
    for (ext, (want, have)) in must_be_critical
        .iter()
        .map(|e| (e, ("critical", "non-critical")))
        .chain(
            must_not_be_critical
                .iter()
                .map(|e| (e, ("non-critical", "critical"))),
        )
    {
        let (o, rule) = ext;
        out.push(
            j.finding(
                &c::X509_CRITICAL_FLAG,
                format!("{}: {} is {have}", j.name(), oid::name(o)),
            )
            .evidence(
                oid::name(o),
                Some(format!("{want} ({rule})")),
                Some(have.into()),
            )
            .fix(format!(
                "have the CA reissue the certificate with {} marked {want}",
                oid::name(o)
            )),
        );
    }
}

/// authorityKeyIdentifier and subjectKeyIdentifier presence and shape.
fn key_identifiers(j: &Judged<'_, '_, '_>, out: &mut Vec<Finding>) {
    let st = &j.cert.structure;
    let undecodable = |o: &str| st.malformed_extensions.iter().any(|(m, _)| m == o);
    if !j.cert.self_issued && st.extension(oid::AKI).is_none() {
        out.push(
            j.finding(&c::X509_AKI_MISSING, format!("{} has no authorityKeyIdentifier", j.name()))
                .evidence("authorityKeyIdentifier", Some("the issuer's key identifier (RFC 5280 4.2.1.1)".into()), Some("absent".into()))
                .fix("have the CA reissue the certificate with an authorityKeyIdentifier; clients use it to pick the right issuer when names repeat"),
        );
    }
    if let Some(aki) = &st.aki {
        let mut faults = Vec::new();
        if aki.key_id.is_none() {
            faults.push("no keyIdentifier (RFC 5280 4.2.1.1)");
        }
        if aki.has_issuer || aki.serial.is_some() {
            faults.push("authorityCertIssuer/authorityCertSerialNumber (CA/Browser Forum BR 7.1.2.11.1 forbids them)");
        }
        if !faults.is_empty() {
            out.push(
                j.finding(&c::X509_AKI_INCOMPLETE, format!("{}: the authorityKeyIdentifier has {}", j.name(), faults.join(" and ")))
                    .evidence("authorityKeyIdentifier", Some("keyIdentifier only".into()), Some(faults.join("; ")))
                    .fix("have the CA reissue the certificate with an authorityKeyIdentifier holding only the issuer's keyIdentifier"),
            );
        }
    }
    if j.role.is_ca() && st.extension(oid::SKI).is_none() && !undecodable(oid::SKI) {
        out.push(
            j.finding(&c::X509_SKI_MISSING, format!("{} has no subjectKeyIdentifier", j.name()))
                .evidence("subjectKeyIdentifier", Some("present in every CA certificate (RFC 5280 4.2.1.2)".into()), Some("absent".into()))
                .fix("have the CA certificate reissued with a subjectKeyIdentifier; certificates it issues need it for their authorityKeyIdentifier"),
        );
    }
}

/// CA-only marks: an empty CA subject, a leaf that says it is a CA, name
/// constraints in a leaf, an EKU where the CA/B Forum does not want one.
fn ca_marks(j: &Judged<'_, '_, '_>, out: &mut Vec<Finding>) {
    let cert = j.cert;
    let st = &cert.structure;
    if j.role.is_ca() && st.subject_empty {
        out.push(
            j.finding(&c::X509_CA_SUBJECT_EMPTY, format!("{} has an empty subject", j.name()))
                .evidence("subject", Some("a non-empty distinguished name (RFC 5280 4.1.2.6)".into()), Some("empty".into()))
                .fix("have the CA certificate reissued with a subject name; clients find an issuer by that name, so nothing chains to an empty one"),
        );
    }
    if j.role == Role::Leaf && !cert.self_issued {
        let mut marks = Vec::new();
        if cert.basic_constraints_ca == Some(true) {
            marks.push("basicConstraints cA=TRUE");
        }
        if cert.key_cert_sign == Some(true) {
            marks.push("keyUsage keyCertSign");
        }
        if !marks.is_empty() {
            out.push(
                j.finding(&c::X509_LEAF_IS_CA, format!("the server certificate {} is marked as a CA ({})", cert.short_name(), marks.join(", ")))
                    .evidence("basicConstraints / keyUsage", Some("cA=FALSE, no keyCertSign (CA/Browser Forum BR 7.1.2.7)".into()), Some(marks.join(", ")))
                    .fix("request the server certificate from a CSR for a server (TLS Web Server/Client authentication), not from a CA template"),
            );
        }
        if st.extension(oid::NAME_CONSTRAINTS).is_some() {
            out.push(
                j.finding(
                    &c::X509_NAME_CONSTRAINTS_IN_LEAF,
                    format!(
                        "the server certificate {} carries nameConstraints",
                        cert.short_name()
                    ),
                )
                .evidence(
                    "nameConstraints",
                    Some("only in CA certificates (RFC 5280 4.2.1.10)".into()),
                    Some("present".into()),
                )
                .fix("have the certificate reissued without nameConstraints"),
            );
        }
    }
    let eku_fault = match (j.role, &cert.eku) {
        (Role::Leaf, None) if !cert.self_issued => {
            Some(("absent", "serverAuth (and clientAuth for Expressway)"))
        }
        (Role::Leaf, Some(eku)) if eku.any => Some((
            "anyExtendedKeyUsage",
            "serverAuth and clientAuth, without anyExtendedKeyUsage",
        )),
        (Role::Root, Some(_)) => Some((
            "present in a root",
            "no extKeyUsage in a root (CA/Browser Forum BR 7.1.2.1.2)",
        )),
        _ => None,
    };
    if let Some((presented, expected)) = eku_fault {
        out.push(
            j.finding(&c::X509_EKU_NOT_CABF, format!("{}: extKeyUsage {presented}", j.name()))
                .evidence("extKeyUsage", Some(expected.into()), Some(presented.into()))
                .fix(if j.role == Role::Leaf {
                    "reissue the certificate from a CSR requesting TLS Web Server and TLS Web Client Authentication (the Expressway CSR page does this by default)"
                } else {
                    "have the root reissued without extKeyUsage, or ask the CA which root replaces it"
                }),
        );
    }
}

/// Name syntax: SAN dNSNames and dNSName constraints; the leaf's CN against its SAN.
fn names(j: &Judged<'_, '_, '_>, out: &mut Vec<Finding>) {
    let cert = j.cert;
    for name in cert.san_dns() {
        if let Some(fault) = dns_name_fault(name, true) {
            out.push(
                j.finding(&c::X509_DNS_NAME_INVALID, format!("{}: SAN dNSName {name:?} {fault}", j.name()))
                    .evidence("SAN dNSName", Some("letters, digits and hyphens in non-empty labels; `*` only as the whole leftmost label (RFC 5280 4.2.1.6)".into()), Some(name.to_owned()))
                    .fix("have the certificate reissued with the host's name in preferred name syntax; a name that breaks it is not matched by strict clients"),
            );
        }
    }
    for base in cert.permitted_dns.iter().chain(&cert.excluded_dns) {
        if let Some(fault) = dns_name_fault(base, false) {
            out.push(
                j.finding(&c::X509_DNS_NAME_INVALID, format!("{}: dNSName constraint {base:?} {fault}", j.name()))
                    .evidence("nameConstraints dNSName", Some("a domain name such as example.com, no leading dot or wildcard (RFC 5280 4.2.1.10)".into()), Some(base.clone()))
                    .fix("have the CA certificate reissued with the constraint written as a plain domain (example.com covers its subdomains)"),
            );
        }
    }
    if j.role != Role::Leaf {
        return;
    }
    let Some(san) = &cert.san else { return };
    for cn in &cert.common_names {
        let in_san = san.iter().any(|e| match e {
            SanEntry::Dns(d) => d == cn,
            SanEntry::Ip(ip) => {
                cn.parse::<IpAddr>().is_ok_and(|c| c == *ip) && cn == &ip.to_string()
            }
            _ => false,
        });
        if !in_san {
            out.push(
                j.finding(&c::X509_CN_NOT_IN_SAN, format!("the server certificate's CN {cn:?} is not one of its SAN entries"))
                    .evidence("subject CN", Some("a character-for-character copy of a SAN entry (CA/Browser Forum BR 7.1.4.3)".into()), Some(format!("CN={cn}; SAN {}", cert.san_text())))
                    .fix(format!("reissue the certificate with {cn} also as a SAN, spelled exactly as in the CN (same case, A-labels for internationalised names)")),
            );
        }
    }
}

/// Why a DNS name is not in preferred name syntax, if it is not. `san` allows a
/// leftmost `*` label; constraints allow none.
pub(crate) fn dns_name_fault(name: &str, san: bool) -> Option<&'static str> {
    if name.is_empty() {
        return (san).then_some("is empty");
    }
    if name.starts_with('.') {
        return Some("starts with a dot");
    }
    if name.ends_with('.') {
        return Some("ends with a dot");
    }
    if name.len() > 253 {
        return Some("is longer than 253 characters");
    }
    let labels: Vec<&str> = name.split('.').collect();
    for (i, label) in labels.iter().enumerate() {
        if label.is_empty() {
            return Some("has an empty label");
        }
        if *label == "*" {
            if !san || i != 0 {
                return Some("has a wildcard where none is allowed");
            }
            if labels.len() < 3 {
                return Some("is a wildcard over a top-level domain or less");
            }
            continue;
        }
        if label.len() > 63 {
            return Some("has a label longer than 63 characters");
        }
        if label.contains('*') {
            return Some("has a partial-label wildcard");
        }
        if label.contains('_') {
            return Some("contains an underscore");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Some("contains characters other than letters, digits and hyphens");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Some("has a label starting or ending with a hyphen");
        }
    }
    None
}

/// Keys and signature algorithms outside the CA/Browser Forum's lists.
fn keys_and_signatures(j: &Judged<'_, '_, '_>, out: &mut Vec<Finding>) {
    let cert = j.cert;
    if cert.structure.ec_explicit_parameters {
        out.push(
            j.finding(&c::X509_KEY_EXPLICIT_CURVE, format!("{} gives its EC key with explicit curve parameters", j.name()))
                .evidence("subjectPublicKeyInfo", Some("a named curve (P-256, P-384, P-521; RFC 5480)".into()), Some("explicit parameters".into()))
                .fix("generate the key on a named curve (or use RSA 2048) and have the certificate reissued; OpenSSL refuses explicit parameters"),
        );
    }
    let key_fault = match &cert.key {
        KeyInfo::Dsa { .. } => Some("DSA".to_owned()),
        KeyInfo::Ec { curve, .. }
            if !["P-256", "P-384", "P-521"].contains(&curve.as_str())
                && !cert.structure.ec_explicit_parameters =>
        {
            Some(format!("EC on {curve}"))
        }
        KeyInfo::Rsa { bits } if bits % 8 != 0 => Some(format!(
            "RSA with a {bits}-bit modulus, not a multiple of 8"
        )),
        KeyInfo::Other { oid } => Some(format!("algorithm {oid}")),
        _ => None,
    };
    if let Some(fault) = key_fault {
        out.push(
            j.finding(&c::X509_KEY_NOT_ALLOWED, format!("{} has a {fault} key", j.name()))
                .evidence("subjectPublicKeyInfo", Some("RSA (modulus a multiple of 8 bits, 2048 or more) or ECDSA P-256/P-384/P-521 (CA/Browser Forum BR 6.1.5)".into()), Some(fault))
                .fix("generate a new RSA 2048-bit key and CSR and have the certificate reissued"),
        );
    }
    let sig = cert.structure.signature_oid.as_str();
    const ALLOWED: &[&str] = &[
        "1.2.840.113549.1.1.11", // sha256WithRSAEncryption
        "1.2.840.113549.1.1.12", // sha384WithRSAEncryption
        "1.2.840.113549.1.1.13", // sha512WithRSAEncryption
        "1.2.840.113549.1.1.10", // RSASSA-PSS
        "1.2.840.10045.4.3.2",   // ecdsa-with-SHA256
        "1.2.840.10045.4.3.3",   // ecdsa-with-SHA384
        "1.2.840.10045.4.3.4",   // ecdsa-with-SHA512
        "1.3.101.112",           // Ed25519: not CA/B Forum, but no client refuses it for that
    ];
    // SHA-1 and MD5 have their own rule (signature.sha1).
    let weak_hash = matches!(
        cert.signature_hash,
        SignatureHash::Sha1 | SignatureHash::Md5
    );
    if !ALLOWED.contains(&sig) && !weak_hash {
        out.push(
            j.finding(&c::X509_SIGNATURE_ALGORITHM_NOT_ALLOWED, format!("{} is signed with {}", j.name(), cert.signature_algorithm))
                .evidence("signatureAlgorithm", Some("RSA PKCS#1 or PSS with SHA-256/384/512, or ECDSA with SHA-256/384/512 (CA/Browser Forum BR 7.1.3.2)".into()), Some(format!("{} ({sig})", cert.signature_algorithm)))
                .fix("have the certificate reissued by a CA key that signs with SHA-256 RSA or ECDSA"),
        );
    }
}

/// A CA's name constraints against the certificates below it: forms clients
/// cannot check, and more work than OpenSSL agrees to do.
fn constraints_over(
    j: &Judged<'_, '_, '_>,
    below: &[(PathNode, &CertInfo)],
    out: &mut Vec<Finding>,
) {
    let st = &j.cert.structure;
    for form in &st.unsupported_constraint_forms {
        let carried = below.iter().any(|(_, b)| {
            b.san.iter().flatten().any(|e| match (form.as_str(), e) {
                ("otherName", SanEntry::XmppAddr(_) | SanEntry::SrvName(_)) => true,
                ("otherName", SanEntry::Other(o)) => o.starts_with("othername:"),
                ("registeredID", SanEntry::Other(o)) => o.starts_with("Registered ID:"),
                ("otherName" | "registeredID", _) => false,
                _ => true,
            })
        });
        if carried {
            out.push(
                j.finding(&c::X509_NAME_CONSTRAINTS_UNSUPPORTED, format!("{} constrains {form} names, which a certificate below it carries and clients cannot check", j.name()))
                    .evidence("nameConstraints", Some("dNSName, iPAddress, rfc822Name, URI or directoryName subtrees".into()), Some(format!("{form} subtree")))
                    .fix("have the CA certificate reissued without constraints on that name form, or the server certificate without such names; OpenSSL refuses the chain"),
            );
        }
    }
    if st.constraint_count == 0 {
        return;
    }
    for (_, b) in below {
        let names = b.subject_attributes.len() + b.san.as_ref().map_or(0, Vec::len);
        if names > 0 && st.constraint_count > OPENSSL_NAME_CHECK_MAX / names {
            out.push(
                j.finding(&c::X509_NAME_CONSTRAINTS_TOO_MANY, format!("{} has {} name constraints and {} has {names} names: {} checks, over OpenSSL's limit", j.name(), st.constraint_count, b.short_name(), st.constraint_count * names))
                    .evidence("nameConstraints", Some(format!("constraints × names ≤ {OPENSSL_NAME_CHECK_MAX}")), Some(format!("{} × {names}", st.constraint_count)))
                    .fix("split the names over several certificates, or have the CA issue from a CA with fewer constraints; OpenSSL refuses the chain outright"),
            );
        }
    }
}

/// Each issuing link: does the child's authorityKeyIdentifier name its issuer?
/// A self-signed root is its own issuer.
fn authority_key_links(s: &Scope<'_, '_>, out: &mut Vec<Finding>) {
    let mut pairs: Vec<(PathNode, PathNode)> =
        s.path.links.iter().map(|l| (l.child, l.issuer)).collect();
    // A trusted root ends the path without a link of its own; a self-issued
    // certificate in the middle (a key rollover) is signed by another key, so
    // only the last one is judged against itself.
    if let Some(last) = s.path.nodes.last()
        && s.cert(*last).is_some_and(|c| c.self_issued)
        && !pairs.contains(&(*last, *last))
    {
        pairs.push((*last, *last));
    }
    for (child_node, issuer_node) in pairs {
        let (Some(child), Some(issuer)) = (s.cert(child_node), s.cert(issuer_node)) else {
            continue;
        };
        let Some(aki) = &child.structure.aki else {
            continue;
        };
        let mut faults = Vec::new();
        if let (Some(kid), Some(ski)) = (&aki.key_id, &issuer.structure.ski)
            && kid != ski
        {
            faults.push((
                format!("keyIdentifier {kid}"),
                format!("keyIdentifier {ski} (the issuer's subjectKeyIdentifier)"),
            ));
        }
        let issuer_serial = crate::core::x509::cert::hex(&issuer.structure.serial_octets);
        if let Some(serial) = &aki.serial
            && *serial != issuer_serial
        {
            faults.push((
                format!("authorityCertSerialNumber {serial}"),
                format!("serial {issuer_serial}"),
            ));
        }
        if !aki.issuer_names_der.is_empty() && !aki.issuer_names_der.contains(&issuer.issuer_der) {
            faults.push((
                "an authorityCertIssuer that is not the issuer's own issuer name".to_owned(),
                format!("authorityCertIssuer {}", issuer.issuer),
            ));
        }
        if faults.is_empty() {
            continue;
        }
        let (presented, expected): (Vec<String>, Vec<String>) = faults.into_iter().unzip();
        let whose = if child_node == issuer_node {
            "its own key (it is self-signed)".to_owned()
        } else {
            issuer.short_name()
        };
        out.push(
            Finding::new(&c::X509_AKI_MISMATCH, format!("the authorityKeyIdentifier of {} does not identify {whose}", child.short_name()))
                .cert(s.cert_ref(child_node))
                .evidence("authorityKeyIdentifier", Some(expected.join("; ")), Some(presented.join("; ")))
                .fix("have the certificate reissued by its real issuer (its AKI then names that issuer's key); OpenSSL will not take a CA whose key identifier differs as the issuer"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::dns_name_fault;
    use rcgen::{ExtendedKeyUsagePurpose as Eku, KeyUsagePurpose, SanType, SerialNumber};

    /// Every rule this detector (or identity's CN check) can fire.
    fn conformance_rules(report: &crate::core::analysis::engine::Report) -> Vec<&'static str> {
        fired(report)
            .into_iter()
            .filter(|r| r.starts_with("x509.") || *r == "identity.cn-ignored-with-san")
            .collect()
    }

    /// A leaf from `params`, issued under a conforming root and intermediate.
    fn case_with_leaf(params: rcgen::CertificateParams, name: &str) -> Case {
        let root = root("Conforming Root");
        let inter = intermediate("Conforming Issuing CA", &root);
        Case::new(vec![leaf(params, &inter), inter.der()], name).public(vec![root.der()])
    }

    #[test]
    fn a_conforming_chain_is_quiet() {
        let (case, _, _) = good_edge();
        assert_eq!(conformance_rules(&case.run()), Vec::<&str>::new());
    }

    #[test]
    fn serial_zero_fires() {
        let mut p = leaf_params("expe.example.com", &["expe.example.com"]);
        p.serial_number = Some(SerialNumber::from(vec![0u8]));
        let report = case_with_leaf(p, "expe.example.com").run();
        assert_fires(&report, "x509.serial-invalid");
    }

    #[test]
    fn leaf_without_aki_fires_aki_missing() {
        let mut p = leaf_params("expe.example.com", &["expe.example.com"]);
        p.use_authority_key_identifier_extension = false;
        let report = case_with_leaf(p, "expe.example.com").run();
        assert_fires(&report, "x509.aki-missing");
        assert_quiet(&report, "x509.aki-mismatch");
    }

    #[test]
    fn leaf_marked_as_ca_fires() {
        let mut p = leaf_params("expe.example.com", &["expe.example.com"]);
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
        ];
        let report = case_with_leaf(p, "expe.example.com").run();
        assert_fires(&report, "x509.leaf-is-ca");
    }

    #[test]
    fn cn_outside_the_san_fires_and_a_copy_is_quiet() {
        let p = leaf_params("Expe.Example.com", &["expe.example.com"]);
        let report = case_with_leaf(p, "expe.example.com").run();
        assert_fires(&report, "x509.cn-not-in-san");
        let p = leaf_params("expe.example.com", &["expe.example.com"]);
        assert_quiet(
            &case_with_leaf(p, "expe.example.com").run(),
            "x509.cn-not-in-san",
        );
    }

    #[test]
    fn name_only_in_cn_beside_a_san_fails_phones_not_jabber() {
        use crate::core::analysis::Profile;
        let p = leaf_params("expe.example.com", &["other.example.com"]);
        let report = case_with_leaf(p, "expe.example.com").run();
        assert_fires(&report, "identity.cn-ignored-with-san");
        let v = &report.handshakes[0].verdicts;
        assert_eq!(v[&Profile::IpPhone].outcome.as_str(), "fail");
        assert_eq!(v[&Profile::Jabber].outcome.as_str(), "warn");
        // No SAN at all: the CN is read by everyone (identity.cn-only says so).
        let mut p = leaf_params("expe.example.com", &[]);
        p.subject_alt_names.clear();
        let report = case_with_leaf(p, "expe.example.com").run();
        assert_quiet(&report, "identity.cn-ignored-with-san");
        assert_fires(&report, "identity.cn-only");
    }

    #[test]
    fn any_eku_in_a_server_certificate_fires() {
        let mut p = leaf_params("expe.example.com", &["expe.example.com"]);
        p.extended_key_usages = vec![Eku::ServerAuth, Eku::ClientAuth, Eku::Any];
        let report = case_with_leaf(p, "expe.example.com").run();
        assert_fires(&report, "x509.eku-not-cabf");
    }

    #[test]
    fn underscore_in_a_san_fires() {
        let mut p = leaf_params("expe.example.com", &["expe.example.com"]);
        p.subject_alt_names.push(SanType::DnsName(
            "cup_xmpp.example.com".try_into().expect("ia5"),
        ));
        let report = case_with_leaf(p, "expe.example.com").run();
        assert_fires(&report, "x509.dns-name-invalid");
    }

    #[test]
    fn preferred_name_syntax() {
        for ok in [
            "example.com",
            "*.example.com",
            "a-b.example.com",
            "xn--n3h.com",
        ] {
            assert_eq!(dns_name_fault(ok, true), None, "{ok}");
        }
        for (bad, fault) in [
            ("foo_bar.example.com", "contains an underscore"),
            (".example.com", "starts with a dot"),
            ("*", "is a wildcard over a top-level domain or less"),
            ("*.com", "is a wildcard over a top-level domain or less"),
            ("f*.example.com", "has a partial-label wildcard"),
            ("a..example.com", "has an empty label"),
            (
                "-a.example.com",
                "has a label starting or ending with a hyphen",
            ),
            (
                "a b.example.com",
                "contains characters other than letters, digits and hyphens",
            ),
        ] {
            assert_eq!(dns_name_fault(bad, true), Some(fault), "{bad}");
        }
        assert_eq!(
            dns_name_fault("*.example.com", false),
            Some("has a wildcard where none is allowed")
        );
        assert_eq!(
            dns_name_fault("", false),
            None,
            "an empty constraint base is legal"
        );
    }
}
