//! The structural facts of one certificate that RFC 5280 and the CA/Browser Forum
//! baseline requirements constrain: version, serial, which extensions appear and
//! with what criticality, the key identifiers, empty or duplicated extensions.
//!
//! Read once from the parsed certificate into plain values; the `x509.*`
//! detectors (`analysis/rules/x509.rs`) judge them against the certificate's
//! place in the path, since most requirements differ for a leaf, a CA and a root.

use serde::Serialize;
use x509_parser::extensions::{GeneralName, ParsedExtension, X509Extension};
use x509_parser::prelude::X509Certificate;

/// Extension OIDs the conformance rules look at, with their RFC 5280 names.
pub mod oid {
    /// authorityKeyIdentifier (RFC 5280 4.2.1.1).
    pub const AKI: &str = "2.5.29.35";
    /// subjectKeyIdentifier (4.2.1.2).
    pub const SKI: &str = "2.5.29.14";
    /// keyUsage (4.2.1.3).
    pub const KEY_USAGE: &str = "2.5.29.15";
    /// subjectAltName (4.2.1.6).
    pub const SAN: &str = "2.5.29.17";
    /// basicConstraints (4.2.1.9).
    pub const BASIC_CONSTRAINTS: &str = "2.5.29.19";
    /// nameConstraints (4.2.1.10).
    pub const NAME_CONSTRAINTS: &str = "2.5.29.30";
    /// cRLDistributionPoints (4.2.1.13).
    pub const CRL_DP: &str = "2.5.29.31";
    /// policyConstraints (4.2.1.11).
    pub const POLICY_CONSTRAINTS: &str = "2.5.29.36";
    /// extKeyUsage (4.2.1.12).
    pub const EKU: &str = "2.5.29.37";
    /// inhibitAnyPolicy (4.2.1.14).
    pub const INHIBIT_ANY_POLICY: &str = "2.5.29.54";
    /// authorityInfoAccess (4.2.2.1).
    pub const AIA: &str = "1.3.6.1.5.5.7.1.1";
    /// subjectInfoAccess (4.2.2.2).
    pub const SIA: &str = "1.3.6.1.5.5.7.1.11";

    /// The RFC 5280 name of an extension OID, or the OID itself.
    pub fn name(oid: &str) -> &str {
        match oid {
            AKI => "authorityKeyIdentifier",
            SKI => "subjectKeyIdentifier",
            KEY_USAGE => "keyUsage",
            SAN => "subjectAltName",
            BASIC_CONSTRAINTS => "basicConstraints",
            NAME_CONSTRAINTS => "nameConstraints",
            CRL_DP => "cRLDistributionPoints",
            POLICY_CONSTRAINTS => "policyConstraints",
            EKU => "extKeyUsage",
            INHIBIT_ANY_POLICY => "inhibitAnyPolicy",
            AIA => "authorityInfoAccess",
            SIA => "subjectInfoAccess",
            "2.5.29.32" => "certificatePolicies",
            "2.5.29.33" => "policyMappings",
            "2.5.29.18" => "issuerAltName",
            other => other,
        }
    }
}

/// One extension as it appears in the certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExtensionFlag {
    /// Dotted OID.
    pub oid: String,
    /// Marked critical.
    pub critical: bool,
}

/// The authorityKeyIdentifier's fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AuthorityKeyId {
    /// keyIdentifier, hex.
    pub key_id: Option<String>,
    /// authorityCertIssuer directory names, as DER (with the SEQUENCE header).
    #[serde(skip)]
    pub issuer_names_der: Vec<Vec<u8>>,
    /// authorityCertIssuer present at all (any name form).
    pub has_issuer: bool,
    /// authorityCertSerialNumber, hex of the INTEGER content.
    pub serial: Option<String>,
}

/// The structural facts of one certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Structure {
    /// The version field as encoded: 0 is v1, 2 is v3.
    pub version: u32,
    /// The serial number's INTEGER content octets, as encoded.
    #[serde(skip)]
    pub serial_octets: Vec<u8>,
    /// The subject has no attributes at all.
    pub subject_empty: bool,
    /// Every extension in order.
    pub extensions: Vec<ExtensionFlag>,
    /// OIDs that appear more than once.
    pub duplicate_extensions: Vec<String>,
    /// authorityKeyIdentifier, when present and decodable.
    pub aki: Option<AuthorityKeyId>,
    /// subjectKeyIdentifier, hex, when present and decodable.
    pub ski: Option<String>,
    /// Extensions present but holding nothing where at least one entry is required.
    pub empty_extensions: Vec<String>,
    /// Extensions whose value does not decode: (OID, reason).
    pub malformed_extensions: Vec<(String, String)>,
    /// Name-constraint subtree forms edgetap (and OpenSSL) cannot check: otherName, x400Address, ...
    pub unsupported_constraint_forms: Vec<String>,
    /// Permitted plus excluded subtrees of a nameConstraints extension.
    pub constraint_count: usize,
    /// iPAddress name-constraint subtrees: (address, mask) octets, permitted then excluded.
    #[serde(skip)]
    pub permitted_ip: Vec<(Vec<u8>, Vec<u8>)>,
    /// Excluded iPAddress subtrees.
    #[serde(skip)]
    pub excluded_ip: Vec<(Vec<u8>, Vec<u8>)>,
    /// An EC key given with explicit curve parameters instead of a named curve.
    pub ec_explicit_parameters: bool,
    /// A keyUsage extension is present (its keyCertSign bit is in `CertInfo`).
    pub key_usage_present: bool,
    /// The signature algorithm OID, dotted.
    pub signature_oid: String,
}

impl Structure {
    /// The flag of extension `oid`, if present (the first one).
    pub fn extension(&self, oid: &str) -> Option<&ExtensionFlag> {
        self.extensions.iter().find(|e| e.oid == oid)
    }

    /// True when the serial number is zero.
    pub fn serial_is_zero(&self) -> bool {
        self.serial_octets.iter().all(|b| *b == 0)
    }

    /// True when the serial number is negative (its first octet has the sign bit).
    pub fn serial_is_negative(&self) -> bool {
        self.serial_octets.first().is_some_and(|b| b & 0x80 != 0)
    }
}

/// Read the structural facts of `cert`.
pub fn read(cert: &X509Certificate<'_>) -> Structure {
    let mut s = Structure {
        version: cert.version().0,
        serial_octets: cert.tbs_certificate.raw_serial().to_vec(),
        subject_empty: cert.subject().iter_attributes().next().is_none(),
        signature_oid: cert.signature_algorithm.algorithm.to_id_string(),
        ..Structure::default()
    };
    for ext in cert.extensions() {
        let oid = ext.oid.to_id_string();
        if s.extensions.iter().any(|e| e.oid == oid) && !s.duplicate_extensions.contains(&oid) {
            s.duplicate_extensions.push(oid.clone());
        }
        s.extensions.push(ExtensionFlag {
            oid: oid.clone(),
            critical: ext.critical,
        });
        read_extension(&mut s, &oid, ext);
    }
    let spki = &cert.public_key().algorithm;
    s.ec_explicit_parameters = spki.algorithm.to_id_string() == "1.2.840.10045.2.1"
        && spki
            .parameters
            .as_ref()
            .is_some_and(|p| p.tag() == x509_parser::der_parser::asn1_rs::Tag::Sequence);
    s
}

fn read_extension(s: &mut Structure, oid: &str, ext: &X509Extension<'_>) {
    match ext.parsed_extension() {
        ParsedExtension::AuthorityKeyIdentifier(aki) => {
            let names = aki.authority_cert_issuer.as_deref().unwrap_or(&[]);
            s.aki = Some(AuthorityKeyId {
                key_id: aki.key_identifier.as_ref().map(|k| super::cert::hex(k.0)),
                issuer_names_der: names
                    .iter()
                    .filter_map(|n| match n {
                        GeneralName::DirectoryName(name) => Some(name.as_raw().to_vec()),
                        _ => None,
                    })
                    .collect(),
                has_issuer: aki.authority_cert_issuer.is_some(),
                serial: aki.authority_cert_serial.map(super::cert::hex),
            });
        }
        ParsedExtension::SubjectKeyIdentifier(k) => s.ski = Some(super::cert::hex(k.0)),
        ParsedExtension::KeyUsage(_) => s.key_usage_present = true,
        ParsedExtension::AuthorityInfoAccess(aia) if aia.accessdescs.is_empty() => {
            s.empty_extensions.push(oid.to_owned());
        }
        ParsedExtension::ExtendedKeyUsage(eku)
            if !eku.any
                && !eku.server_auth
                && !eku.client_auth
                && eku.other.is_empty()
                && !eku.code_signing
                && !eku.email_protection
                && !eku.time_stamping
                && !eku.ocsp_signing =>
        {
            s.empty_extensions.push(oid.to_owned());
        }
        ParsedExtension::SubjectAlternativeName(san) if san.general_names.is_empty() => {
            s.empty_extensions.push(oid.to_owned());
        }
        ParsedExtension::CRLDistributionPoints(dps) if dps.points.is_empty() => {
            s.empty_extensions.push(oid.to_owned());
        }
        ParsedExtension::NameConstraints(nc) => {
            let permitted = nc.permitted_subtrees.as_deref().unwrap_or(&[]);
            let excluded = nc.excluded_subtrees.as_deref().unwrap_or(&[]);
            if permitted.is_empty() && excluded.is_empty() {
                s.empty_extensions.push(oid.to_owned());
            }
            s.constraint_count = permitted.len() + excluded.len();
            for sub in permitted.iter().chain(excluded) {
                let form = match sub.base {
                    GeneralName::OtherName(..) => Some("otherName"),
                    GeneralName::X400Address(_) => Some("x400Address"),
                    GeneralName::EDIPartyName(_) => Some("ediPartyName"),
                    GeneralName::RegisteredID(_) => Some("registeredID"),
                    GeneralName::Invalid(..) => Some("an undecodable form"),
                    _ => None,
                };
                if let Some(form) = form
                    && !s.unsupported_constraint_forms.iter().any(|f| f == form)
                {
                    s.unsupported_constraint_forms.push(form.to_owned());
                }
            }
            s.permitted_ip = ip_subtrees(permitted);
            s.excluded_ip = ip_subtrees(excluded);
        }
        ParsedExtension::ParseError { error } => {
            s.malformed_extensions
                .push((oid.to_owned(), error.to_string()));
        }
        _ => {}
    }
}

/// iPAddress subtrees as (address, mask): 8 octets for IPv4, 32 for IPv6
/// (RFC 5280 4.2.1.10); other lengths are kept whole so a detector can name them.
fn ip_subtrees(
    subtrees: &[x509_parser::extensions::GeneralSubtree<'_>],
) -> Vec<(Vec<u8>, Vec<u8>)> {
    subtrees
        .iter()
        .filter_map(|s| match s.base {
            GeneralName::IPAddress(bytes) => {
                let half = bytes.len() / 2;
                Some((bytes[..half].to_vec(), bytes[half..].to_vec()))
            }
            _ => None,
        })
        .collect()
}
