//! An owned, analysis-ready summary of one X.509 certificate.
//!
//! x509-parser borrows from the DER; rules want plain values they can compare,
//! print and serialise. [`CertInfo::parse`] does that conversion once, and never
//! fails on a malformed extension: what cannot be read is recorded in
//! [`CertInfo::parse_warnings`] so the rest of the certificate still counts.

use std::net::IpAddr;

use serde::Serialize;
use thiserror::Error;
use time::OffsetDateTime;
use x509_parser::der_parser::asn1_rs::{Any, FromDer as _, Tag};
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::oid_registry::{
    OID_PKIX_ACCESS_DESCRIPTOR_CA_ISSUERS, OID_PKIX_ACCESS_DESCRIPTOR_OCSP, Oid, OidRegistry,
};
use x509_parser::prelude::X509Certificate;
use x509_parser::public_key::PublicKey;

/// OID of the SAN otherName id-on-xmppAddr (RFC 6120).
pub const OID_XMPP_ADDR: &str = "1.3.6.1.5.5.7.8.5";
/// OID of the SAN otherName id-on-dnsSRV, "SRVName" (RFC 4985).
pub const OID_SRV_NAME: &str = "1.3.6.1.5.5.7.8.7";

/// Why bytes could not be read as a certificate.
#[derive(Debug, Error)]
pub enum CertError {
    /// The DER does not decode as an X.509 certificate.
    #[error("not a valid X.509 certificate: {0}")]
    Malformed(String),
}

/// The public key of a certificate, as the rules need it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum KeyInfo {
    /// RSA with the modulus length in bits, counted from the modulus itself.
    Rsa {
        /// Modulus length in bits.
        bits: usize,
    },
    /// Elliptic-curve key on a named curve.
    Ec {
        /// Curve name ("P-256", "P-384", ...) or its OID.
        curve: String,
        /// Field size in bits.
        bits: usize,
    },
    /// Ed25519 or Ed448.
    Eddsa {
        /// "Ed25519" or "Ed448".
        curve: String,
    },
    /// DSA, with the public value size in bits.
    Dsa {
        /// Approximate size in bits.
        bits: usize,
    },
    /// Anything else, by algorithm OID.
    Other {
        /// The SPKI algorithm OID.
        oid: String,
    },
}

impl KeyInfo {
    /// Short human description: "RSA 2048", "EC P-256".
    pub fn describe(&self) -> String {
        match self {
            KeyInfo::Rsa { bits } => format!("RSA {bits}"),
            KeyInfo::Ec { curve, .. } => format!("EC {curve}"),
            KeyInfo::Eddsa { curve } => curve.clone(),
            KeyInfo::Dsa { bits } => format!("DSA {bits}"),
            KeyInfo::Other { oid } => format!("key {oid}"),
        }
    }
}

/// The digest behind a signature algorithm, for the SHA-1/MD5 rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureHash {
    /// MD2 or MD5.
    Md5,
    /// SHA-1.
    Sha1,
    /// SHA-224 or stronger, or an algorithm with a built-in hash (Ed25519).
    Strong,
    /// Not recognised.
    Unknown,
}

/// One entry of the subjectAltName extension, in certificate order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", content = "value", rename_all = "kebab-case")]
pub enum SanEntry {
    /// dNSName.
    Dns(String),
    /// iPAddress.
    Ip(IpAddr),
    /// otherName id-on-xmppAddr.
    XmppAddr(String),
    /// otherName SRVName, e.g. `_xmpp-client.example.com`.
    SrvName(String),
    /// rfc822Name, URI, other otherNames, directory names: kept for display only.
    Other(String),
}

impl SanEntry {
    /// The entry as OpenSSL prints it, which is how Expressway counts SAN length.
    pub fn as_text(&self) -> String {
        match self {
            SanEntry::Dns(d) => format!("DNS:{d}"),
            SanEntry::Ip(ip) => format!("IP Address:{ip}"),
            SanEntry::XmppAddr(x) => format!("othername:xmppAddr:{x}"),
            SanEntry::SrvName(s) => format!("othername:SRVName:{s}"),
            SanEntry::Other(o) => o.clone(),
        }
    }
}

/// Extended key usage, when the extension is present.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Eku {
    /// TLS Web Server Authentication (1.3.6.1.5.5.7.3.1).
    pub server_auth: bool,
    /// TLS Web Client Authentication (1.3.6.1.5.5.7.3.2).
    pub client_auth: bool,
    /// anyExtendedKeyUsage.
    pub any: bool,
}

/// One attribute of the subject name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NameAttribute {
    /// Dotted OID.
    pub oid: String,
    /// Short name when known ("CN", "O"), else the OID.
    pub name: String,
    /// Value as text (lossy for non-string types).
    pub value: String,
}

/// An owned summary of one certificate.
#[derive(Debug, Clone, Serialize)]
pub struct CertInfo {
    /// The certificate DER.
    #[serde(skip)]
    pub der: Vec<u8>,
    /// Lowercase hex SHA-256 of the DER.
    pub sha256: String,
    /// Subject, RFC 4514-style text.
    pub subject: String,
    /// Issuer, RFC 4514-style text.
    pub issuer: String,
    /// Subject name DER (with its SEQUENCE header), for issuer matching.
    #[serde(skip)]
    pub subject_der: Vec<u8>,
    /// Issuer name DER (with its SEQUENCE header).
    #[serde(skip)]
    pub issuer_der: Vec<u8>,
    /// Subject common names.
    pub common_names: Vec<String>,
    /// Subject attributes in order.
    pub subject_attributes: Vec<NameAttribute>,
    /// Serial number, hex.
    pub serial: String,
    /// notBefore.
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// notAfter.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// The DER of the SubjectPublicKeyInfo, to compare keys across servers.
    #[serde(skip)]
    pub spki_der: Vec<u8>,
    /// The public key.
    pub key: KeyInfo,
    /// Signature algorithm name ("sha256WithRSAEncryption") or OID.
    pub signature_algorithm: String,
    /// The digest of the signature algorithm.
    pub signature_hash: SignatureHash,
    /// subjectAltName entries, `None` when the extension is absent.
    pub san: Option<Vec<SanEntry>>,
    /// Extended key usage, `None` when absent.
    pub eku: Option<Eku>,
    /// BasicConstraints cA flag, `None` when the extension is absent.
    pub basic_constraints_ca: Option<bool>,
    /// BasicConstraints pathLenConstraint.
    pub path_len: Option<u32>,
    /// KeyUsage keyCertSign bit, `None` when the extension is absent.
    pub key_cert_sign: Option<bool>,
    /// URIs from CRL distribution points.
    pub crl_urls: Vec<String>,
    /// OCSP URIs from authorityInfoAccess.
    pub ocsp_urls: Vec<String>,
    /// caIssuers URIs from authorityInfoAccess: where the issuer can be fetched.
    pub ca_issuer_urls: Vec<String>,
    /// Permitted dNSName subtrees of a NameConstraints extension.
    pub permitted_dns: Vec<String>,
    /// Excluded dNSName subtrees of a NameConstraints extension.
    pub excluded_dns: Vec<String>,
    /// OIDs of critical extensions edgetap (and most clients) do not understand.
    pub unknown_critical_extensions: Vec<String>,
    /// Subject equals issuer (byte-wise).
    pub self_issued: bool,
    /// Extensions that could not be decoded; the rest of the certificate still counts.
    pub parse_warnings: Vec<String>,
    /// Structural facts for the RFC 5280 / CA/B Forum conformance rules.
    #[serde(skip)]
    pub structure: super::structure::Structure,
}

impl CertInfo {
    /// Parse DER into a summary. Trailing bytes after the certificate are an error:
    /// a presented chain entry is exactly one certificate.
    pub fn parse(der: &[u8]) -> Result<CertInfo, CertError> {
        let (rest, cert) =
            X509Certificate::from_der(der).map_err(|e| CertError::Malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(CertError::Malformed(format!(
                "{} unexpected bytes after the certificate",
                rest.len()
            )));
        }
        Ok(summarise(der, &cert))
    }

    /// True when this certificate may act as a CA: BasicConstraints cA=TRUE, or a
    /// v1/no-BasicConstraints certificate (which old roots are).
    pub fn may_be_ca(&self) -> bool {
        self.basic_constraints_ca != Some(false)
    }

    /// Display name for messages: the first CN, else the whole subject, else
    /// "(empty subject)".
    pub fn short_name(&self) -> String {
        match (self.common_names.first(), self.subject.is_empty()) {
            (Some(cn), _) if !cn.is_empty() => cn.clone(),
            (_, false) => self.subject.clone(),
            _ => "(empty subject)".to_owned(),
        }
    }

    /// dNSName SAN entries.
    pub fn san_dns(&self) -> impl Iterator<Item = &str> {
        self.san.iter().flatten().filter_map(|e| match e {
            SanEntry::Dns(d) => Some(d.as_str()),
            _ => None,
        })
    }

    /// The SAN as OpenSSL prints it ("DNS:a, DNS:b"), the text Expressway limits to 999 characters.
    pub fn san_text(&self) -> String {
        self.san
            .iter()
            .flatten()
            .map(SanEntry::as_text)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Lowercase hex SHA-256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

fn summarise(der: &[u8], cert: &X509Certificate<'_>) -> CertInfo {
    let mut info = names_dates_and_key(der, cert);
    for ext in cert.extensions() {
        read_extension(&mut info, ext);
    }
    info
}

/// Everything outside the extensions: names, serial, dates, key, signature.
fn names_dates_and_key(der: &[u8], cert: &X509Certificate<'_>) -> CertInfo {
    let registry = x509_parser::objects::oid_registry();
    let subject = cert.subject();
    let subject_attributes = subject
        .iter_attributes()
        .map(|a| NameAttribute {
            oid: a.attr_type().to_id_string(),
            name: short_attr_name(a.attr_type(), registry),
            value: a
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|_| hex(a.attr_value().data)),
        })
        .collect();
    let common_names = subject
        .iter_common_name()
        .filter_map(|a| a.as_str().ok().map(str::to_owned))
        .collect();
    CertInfo {
        der: der.to_vec(),
        sha256: sha256_hex(der),
        subject: name_text(subject),
        issuer: name_text(cert.issuer()),
        subject_der: subject.as_raw().to_vec(),
        issuer_der: cert.issuer().as_raw().to_vec(),
        common_names,
        subject_attributes,
        serial: cert.raw_serial_as_string().replace(':', ""),
        not_before: cert.validity().not_before.to_datetime(),
        not_after: cert.validity().not_after.to_datetime(),
        spki_der: cert.public_key().raw.to_vec(),
        key: key_info(cert, registry),
        signature_algorithm: oid_name(&cert.signature_algorithm.algorithm, registry),
        signature_hash: signature_hash(&cert.signature_algorithm.algorithm),
        san: None,
        eku: None,
        basic_constraints_ca: None,
        path_len: None,
        key_cert_sign: None,
        crl_urls: Vec::new(),
        ocsp_urls: Vec::new(),
        ca_issuer_urls: Vec::new(),
        permitted_dns: Vec::new(),
        excluded_dns: Vec::new(),
        unknown_critical_extensions: Vec::new(),
        self_issued: subject.as_raw() == cert.issuer().as_raw(),
        parse_warnings: Vec::new(),
        structure: super::structure::read(cert),
    }
}

/// One extension into the fields it decides; an undecodable one becomes a
/// parse warning, an unknown critical one is listed.
fn read_extension(info: &mut CertInfo, ext: &x509_parser::extensions::X509Extension<'_>) {
    if ext.critical && ext.parsed_extension().unsupported() {
        info.unknown_critical_extensions
            .push(ext.oid.to_id_string());
    }
    match ext.parsed_extension() {
        ParsedExtension::SubjectAlternativeName(san) => {
            info.san = Some(san.general_names.iter().map(san_entry).collect());
        }
        ParsedExtension::ExtendedKeyUsage(eku) => {
            info.eku = Some(Eku {
                server_auth: eku.server_auth,
                client_auth: eku.client_auth,
                any: eku.any,
            });
        }
        ParsedExtension::BasicConstraints(bc) => {
            info.basic_constraints_ca = Some(bc.ca);
            info.path_len = bc.path_len_constraint;
        }
        ParsedExtension::KeyUsage(ku) => info.key_cert_sign = Some(ku.key_cert_sign()),
        ParsedExtension::CRLDistributionPoints(dps) => {
            for dp in dps.iter() {
                if let Some(DistributionPointName::FullName(names)) = &dp.distribution_point {
                    info.crl_urls.extend(names.iter().filter_map(uri));
                }
            }
        }
        ParsedExtension::AuthorityInfoAccess(aia) => {
            info.ocsp_urls.extend(
                aia.iter()
                    .filter(|d| d.access_method == OID_PKIX_ACCESS_DESCRIPTOR_OCSP)
                    .filter_map(|d| uri(&d.access_location)),
            );
            info.ca_issuer_urls.extend(
                aia.iter()
                    .filter(|d| d.access_method == OID_PKIX_ACCESS_DESCRIPTOR_CA_ISSUERS)
                    .filter_map(|d| uri(&d.access_location)),
            );
        }
        ParsedExtension::NameConstraints(nc) => {
            info.permitted_dns = subtree_dns_names(&nc.permitted_subtrees);
            info.excluded_dns = subtree_dns_names(&nc.excluded_subtrees);
        }
        ParsedExtension::ParseError { error } => {
            info.parse_warnings.push(format!(
                "extension {} could not be decoded: {error}",
                ext.oid.to_id_string()
            ));
        }
        _ => {}
    }
}

/// The dNSName bases of NameConstraints subtrees, lowercased.
fn subtree_dns_names(
    subtrees: &Option<Vec<x509_parser::extensions::GeneralSubtree<'_>>>,
) -> Vec<String> {
    subtrees
        .iter()
        .flatten()
        .filter_map(|s| match s.base {
            GeneralName::DNSName(d) => Some(d.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

fn uri(name: &GeneralName<'_>) -> Option<String> {
    match name {
        GeneralName::URI(u) => Some((*u).to_owned()),
        _ => None,
    }
}

fn name_text(name: &x509_parser::x509::X509Name<'_>) -> String {
    name.to_string_with_registry(x509_parser::objects::oid_registry())
        .unwrap_or_else(|_| format!("(undecodable name, {} bytes)", name.as_raw().len()))
}

fn short_attr_name(oid: &Oid<'_>, registry: &OidRegistry<'_>) -> String {
    oid_name(oid, registry)
}

/// The registry's short name for an OID, else the dotted form.
pub(crate) fn oid_name(oid: &Oid<'_>, registry: &OidRegistry<'_>) -> String {
    x509_parser::objects::oid2sn(oid, registry)
        .map(str::to_owned)
        .unwrap_or_else(|_| oid.to_id_string())
}

fn san_entry(name: &GeneralName<'_>) -> SanEntry {
    match name {
        GeneralName::DNSName(d) => SanEntry::Dns((*d).to_owned()),
        GeneralName::IPAddress(bytes) => match bytes.len() {
            4 => SanEntry::Ip(IpAddr::from(
                <[u8; 4]>::try_from(*bytes).unwrap_or_default(),
            )),
            16 => SanEntry::Ip(IpAddr::from(
                <[u8; 16]>::try_from(*bytes).unwrap_or_default(),
            )),
            n => SanEntry::Other(format!("IP Address:<{n} bytes>")),
        },
        GeneralName::OtherName(oid, raw) => {
            let oid = oid.to_id_string();
            let value = other_name_value(raw);
            match (oid.as_str(), value) {
                (OID_XMPP_ADDR, Some(v)) => SanEntry::XmppAddr(v),
                (OID_SRV_NAME, Some(v)) => SanEntry::SrvName(v),
                (_, v) => SanEntry::Other(format!(
                    "othername:{oid}:{}",
                    v.unwrap_or_else(|| "<unsupported>".into())
                )),
            }
        }
        GeneralName::RFC822Name(m) => SanEntry::Other(format!("email:{m}")),
        GeneralName::URI(u) => SanEntry::Other(format!("URI:{u}")),
        GeneralName::DirectoryName(n) => SanEntry::Other(format!("DirName:{}", name_text(n))),
        GeneralName::RegisteredID(oid) => SanEntry::Other(format!("Registered ID:{oid}")),
        GeneralName::Invalid(tag, _) => SanEntry::Other(format!("<invalid entry, tag {tag}>")),
        _ => SanEntry::Other("<unsupported entry>".into()),
    }
}

/// The otherName value arrives as the `[0] EXPLICIT` wrapper; unwrap it and accept
/// UTF8String (xmppAddr) and IA5String (SRVName).
fn other_name_value(raw: &[u8]) -> Option<String> {
    let (_, outer) = Any::from_der(raw).ok()?;
    let (_, inner) = Any::from_der(outer.data).ok()?;
    match inner.tag() {
        Tag::Utf8String | Tag::Ia5String | Tag::PrintableString | Tag::VisibleString => {
            std::str::from_utf8(inner.data).ok().map(str::to_owned)
        }
        _ => None,
    }
}

fn key_info(cert: &X509Certificate<'_>, registry: &OidRegistry<'_>) -> KeyInfo {
    let spki = cert.public_key();
    let alg = spki.algorithm.algorithm.to_id_string();
    match (alg.as_str(), spki.parsed()) {
        (_, Ok(PublicKey::RSA(rsa))) => KeyInfo::Rsa {
            bits: bit_length(rsa.modulus),
        },
        (_, Ok(PublicKey::EC(point))) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|oid| match oid.to_id_string().as_str() {
                    "1.2.840.10045.3.1.7" => "P-256".to_owned(),
                    "1.3.132.0.34" => "P-384".to_owned(),
                    "1.3.132.0.35" => "P-521".to_owned(),
                    _ => oid_name(&oid, registry),
                })
                .unwrap_or_else(|| "unnamed curve".into());
            KeyInfo::Ec {
                curve,
                bits: point.key_size(),
            }
        }
        ("1.3.101.112", _) => KeyInfo::Eddsa {
            curve: "Ed25519".into(),
        },
        ("1.3.101.113", _) => KeyInfo::Eddsa {
            curve: "Ed448".into(),
        },
        (_, Ok(PublicKey::DSA(y))) => KeyInfo::Dsa {
            bits: bit_length(y),
        },
        _ => KeyInfo::Other { oid: alg },
    }
}

/// Bit length of a big-endian unsigned integer. x509-parser's own `key_size`
/// rounds to whole bytes (a 1023-bit modulus reads as 1016), so count it here.
pub(crate) fn bit_length(bytes: &[u8]) -> usize {
    let significant: &[u8] = match bytes.iter().position(|b| *b != 0) {
        Some(i) => &bytes[i..],
        None => return 0,
    };
    significant.len() * 8 - significant[0].leading_zeros() as usize
}

fn signature_hash(oid: &Oid<'_>) -> SignatureHash {
    match oid.to_id_string().as_str() {
        // md2, md4, md5 with RSA
        "1.2.840.113549.1.1.2" | "1.2.840.113549.1.1.3" | "1.2.840.113549.1.1.4" => {
            SignatureHash::Md5
        }
        // sha1WithRSAEncryption, the OIW alias, ecdsa-with-SHA1, dsa-with-sha1
        "1.2.840.113549.1.1.5" | "1.3.14.3.2.29" | "1.2.840.10045.4.1" | "1.2.840.10040.4.3" => {
            SignatureHash::Sha1
        }
        "1.2.840.113549.1.1.11"
        | "1.2.840.113549.1.1.12"
        | "1.2.840.113549.1.1.13"
        | "1.2.840.113549.1.1.14"
        | "1.2.840.10045.4.3.1"
        | "1.2.840.10045.4.3.2"
        | "1.2.840.10045.4.3.3"
        | "1.2.840.10045.4.3.4"
        | "2.16.840.1.101.3.4.3.1"
        | "2.16.840.1.101.3.4.3.2"
        | "1.3.101.112"
        | "1.3.101.113" => SignatureHash::Strong,
        // RSASSA-PSS carries its hash in parameters; every PSS profile in use is SHA-2.
        "1.2.840.113549.1.1.10" => SignatureHash::Strong,
        _ => SignatureHash::Unknown,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_is_lowercase_and_two_digits_a_byte() {
        assert_eq!(super::hex(&[0x00, 0x0f, 0xab, 0xff]), "000fabff");
        assert_eq!(super::hex(&[]), "");
    }

    use super::*;

    #[test]
    fn bit_length_counts_leading_bits() {
        assert_eq!(bit_length(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(bit_length(&[0x7f, 0xff]), 15);
        assert_eq!(bit_length(&[0x00]), 0);
    }

    #[test]
    fn garbage_is_a_clear_error() {
        let err = CertInfo::parse(b"not a certificate").unwrap_err();
        assert!(err.to_string().contains("not a valid X.509 certificate"));
    }
}
